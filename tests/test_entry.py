"""Signals from the first instruction: one line and exit 3, never a traceback (issue 9, F10)."""

import signal
import subprocess
import sys
from pathlib import Path

from conftest import write_csv


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, timeout=60)


def test_a_signal_while_starting_is_one_line_and_exit_3(tmp_path: Path,
                                                       mapping_file: Path) -> None:
    data = write_csv(tmp_path / "in.csv", "First Name,Email\nAda,ada@example.com\n")
    for name in ("SIGINT", "SIGTERM"):
        code = ("import os, signal, sys; import importer._entry as entry; entry.install(); "
                f"os.kill(os.getpid(), signal.{name}); "
                f"sys.argv = ['routera-import', 'run', {str(data)!r}, '--mapping', "
                f"{str(mapping_file)!r}, '--sandbox']; sys.exit(entry.main())")
        done = _run(code, tmp_path)
        assert done.returncode == 3, (name, done.stderr)
        assert done.stderr.strip().splitlines() == [
            f"routera-import: stopped by {name} while starting; nothing was read or sent"]
        assert "Traceback" not in done.stderr
        assert not (tmp_path / "in.results.csv").exists()


def test_after_install_a_late_signal_cannot_raise() -> None:
    code = ("import os, signal; import importer._entry as entry; entry.install(); "
            "os.kill(os.getpid(), signal.SIGINT); print('still here', entry.received)")
    done = _run(code, Path.cwd())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"still here [{int(signal.SIGINT)}]"


def test_once_the_exit_code_is_decided_stop_signals_are_ignored_through_shutdown() -> None:
    """F10a: shutdown restores default handlers, so a late Ctrl-C killed the process (-2)."""
    code = ("import signal, sys; import importer._entry as entry; "
            "sys.argv = ['routera-import', '--version']\n"
            "try:\n    entry.main()\nexcept SystemExit:\n    pass\n"
            "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN, "
            "signal.getsignal(signal.SIGTERM) is signal.SIG_IGN)")
    done = _run(code, Path.cwd())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True True"
