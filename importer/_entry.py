"""The console script's first code: it takes SIGINT/SIGTERM before anything heavy is imported.

Starting the program imports numpy, requests and the readers, which takes a noticeable moment
on a loaded machine. A Ctrl-C or a scheduler's SIGTERM in that moment used to end in a
``KeyboardInterrupt`` traceback and exit 130/143. Catching the signal here turns it into the
documented answer: one line and exit 3, nothing sent. The handler also stays in place after a run,
so a late signal (a second Ctrl-C while the summary is printed) cannot change the exit code that
the summary already announced.
"""

import signal
import sys
import threading
from types import FrameType

_SIGNALS = ("SIGINT", "SIGTERM", "SIGBREAK")
received: list[int] = []


def _remember(signum: int, frame: FrameType | None) -> None:
    received.append(signum)


def install() -> None:
    """Record the stop signals instead of raising; only the main thread may set handlers."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in _SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _remember)


def main() -> int:
    """``routera-import``: the command line, with signals watched from the first instruction."""
    install()
    from importer.cli import main as cli_main
    from importer.runs.exits import ExitCode

    try:
        if received:
            name = signal.Signals(received[0]).name
            print(f"routera-import: stopped by {name} while starting; nothing was read or sent",
                  file=sys.stderr, flush=True)
            return int(ExitCode.STOPPED)
        return cli_main()
    finally:
        _ignore_from_now()


def _ignore_from_now() -> None:
    """The exit code is decided: ignore the stop signals until the process is gone.

    Interpreter shutdown puts Python-level handlers back to the default, so a second Ctrl-C in
    that last moment killed the process (status -2) after the summary had announced exit 3. An
    ignored signal stays ignored through shutdown."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in _SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
