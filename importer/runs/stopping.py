"""Asking a run to stop: once to stop taking rows, twice to cut requests in flight."""

import threading
from collections.abc import Callable


class Stop(threading.Event):
    """A stop flag the run checks between rows, plus what a second request forces.

    The first ``request`` lets requests in flight finish (each is bounded by its deadline) and
    records every unsent row as skipped; a second one runs the callbacks the run registered,
    which cut its requests in flight (their outcome then becomes unknown).
    """

    def __init__(self) -> None:
        super().__init__()
        self._forced: list[Callable[[], None]] = []

    def request(self) -> None:
        if self.is_set():
            for force in list(self._forced):
                force()
        self.set()

    def on_force(self, callback: Callable[[], None]) -> None:
        self._forced.append(callback)
