"""Windows and macOS (issue 12 part 5): no POSIX-only module may be needed to import or run.

CI runs on Linux, so Windows is approached from here: a ``sitecustomize`` makes the POSIX-only
modules unimportable (``fcntl``, ``pwd``, ``grp``, ``termios``, ``resource``) and removes the
POSIX-only functions and constants (``os.fchmod``, ``os.O_NOFOLLOW``, ``os.getuid``, the signals
Windows lacks) before the CLI starts in a subprocess. A dry run and a real run against the
built-in sandbox must then work end to end.
"""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from importer.runs.lock import ResultsLock
from tests.conftest import PLAIN_MAPPING, TOKEN, read_results, write_csv

WINDOWS_LIKE = textwrap.dedent("""\
    import importlib.abc, os, signal, sys

    BLOCKED = {"fcntl", "pwd", "grp", "termios", "resource"}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in BLOCKED:
                raise ImportError(f"No module named {name!r} (blocked: not on Windows)")
            return None

    sys.meta_path.insert(0, Blocker())
    for name in BLOCKED:
        sys.modules.pop(name, None)
    for name in ("fchmod", "fchown", "lchmod", "O_NOFOLLOW", "getuid", "geteuid", "getgid"):
        if hasattr(os, name):
            delattr(os, name)
    for name in ("SIGHUP", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGPIPE", "SIGQUIT"):
        if hasattr(signal, name):
            delattr(signal, name)
    """)
EXPORT = ("Customer ID,First Name,Last Name,Email,Zip\n1,Ann,Lee,ann@example.com,02134\n"
          "2,Bo,,bo@example.com,\n3,,,,\n")


@pytest.fixture
def windows_like(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WINDOWS_LIKE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path]),
           "ROUTERA_API_TOKEN": TOKEN}
    env.pop("ROUTERA_API_URL", None)
    return env


def cli(env: dict[str, str], cwd: Path, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "importer", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_simulation_really_removes_the_posix_modules(windows_like, tmp_path) -> None:
    probe = ("import os, signal\n"
             "try:\n    import fcntl\nexcept ImportError:\n    pass\n"
             "else:\n    raise SystemExit(1)\n"
             "assert not hasattr(os, 'fchmod') and not hasattr(os, 'O_NOFOLLOW')\n"
             "assert not hasattr(signal, 'SIGHUP')\n")
    result = subprocess.run([sys.executable, "-c", probe], env=windows_like, cwd=tmp_path,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_dry_run_and_sandbox_run_without_posix_modules(windows_like, tmp_path) -> None:
    export = write_csv(tmp_path / "export.csv", EXPORT)
    (tmp_path / "m.yaml").write_text(PLAIN_MAPPING, encoding="utf-8")
    dry = cli(windows_like, tmp_path, "run", export, "--mapping", "m.yaml", "--dry-run",
              "--results", "dry.csv")
    assert dry.returncode == 0, dry.stderr
    assert "Traceback" not in dry.stderr and "Warning" not in dry.stderr
    assert [r["status"] for r in read_results(tmp_path / "dry.csv")] == [
        "ready", "ready", "invalid"]
    real = cli(windows_like, tmp_path, "run", export, "--mapping", "m.yaml", "--sandbox",
               "--results", "r.xlsx", "--summary-json", "s.json")
    assert real.returncode == 0, real.stderr
    assert "Traceback" not in real.stderr and "Warning" not in real.stderr
    assert "cannot lock r.xlsx.lock" in real.stdout + real.stderr
    assert (tmp_path / "s.json").exists() and (tmp_path / "r.xlsx.journal").exists()


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path: Path) -> None:
    """The same promise as the old flock: a killed run never blocks the next one."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
         "from importer.runs.lock import ResultsLock\n"
         f"with ResultsLock(Path({str(tmp_path / 'r.csv')!r})):\n"
         "    print('held', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(Exception, match=rf"another run \(pid {holder.pid}\)"):
            ResultsLock(tmp_path / "r.csv").__enter__()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with ResultsLock(tmp_path / "r.csv") as lock:
        assert lock.note == ""
