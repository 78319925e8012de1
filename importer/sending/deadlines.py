"""The one place that builds the HTTP session: pooling, TLS, proxies and per-request deadlines.

Retries are deliberately not configured here: re-sending a POST is only safe when the API can
recognise the repeat, which is a per-row decision the runner makes (see ``delivery``).
"""

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from importer import __version__

USER_AGENT = f"routera-import/{__version__}"


@dataclass(eq=False)
class Watch:
    """One request's overall deadline."""

    deadline: float
    done: bool = False
    expired: bool = False
    conn: "_Watched | None" = field(default=None, repr=False)


class Deadlines:
    """Shuts down the socket of any request that outlives its deadline.

    Socket timeouts restart with every byte received, so a server that trickles bytes could
    hold a worker forever; a deadline covers the whole request, headers and body.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextmanager
    def watch(self, seconds: float) -> Iterator[Watch]:
        """Everything sent by this thread inside the block must finish within ``seconds``."""
        entry = Watch(time.monotonic() + seconds)
        _CURRENT.watch = (self, entry)
        with self._cond:
            earliest = not self._heap or entry.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (entry.deadline, next(self._order), entry))
            self._start()
            if earliest:
                self._cond.notify()
        try:
            yield entry
        finally:
            _CURRENT.watch = None
            with self._cond:
                entry.done = True

    def attach(self, entry: Watch, conn: "_Watched") -> None:
        with self._cond:
            entry.conn = conn
            conn.routera_watch = entry

    def expire_all(self) -> None:
        """Cut every request of this run in flight now (a second Ctrl-C)."""
        with self._cond:
            for _, _, entry in self._heap:
                if not entry.done:
                    self._expire(entry)

    def close(self) -> None:
        """End the watching thread (a run is over); a library caller running many imports in
        one process must not collect one idle thread per run."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _start(self) -> None:
        if self._closed:
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                self._expire(heapq.heappop(self._heap)[2])

    @staticmethod
    def _expire(entry: Watch) -> None:
        entry.expired = True
        conn = entry.conn
        if conn is not None and conn.routera_watch is entry:
            sock = getattr(conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


_CURRENT = threading.local()
"""The (deadlines, watch) of the request this thread is making, for its connection to join."""


class _Watched:
    """A connection that knows the deadline of the request it is serving."""

    routera_watch: Watch | None = None


def _attach(conn: _Watched) -> None:
    """Called by a connection as it starts a request, so the deadline knows its socket."""
    current = getattr(_CURRENT, "watch", None)
    if current is not None:
        owner, entry = current
        owner.attach(entry, conn)


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    def request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        _attach(self)
        return super().request(*args, **kwargs)


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    def request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        _attach(self)
        return super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool,
                                                   "https": _WatchedHTTPSPool}


def build_session(base_url: str, pool_size: int) -> requests.Session:
    """A pooled session that only ever sends the bearer token the client sets.

    ``trust_env`` is off so ``~/.netrc`` can never replace the Authorization header; an HTTPS
    proxy from the environment is still honoured (the tunnel keeps the token encrypted), but
    never for plain-HTTP loopback URLs, where a proxy would see the token in clear text.
    """
    session = requests.Session()
    session.trust_env = False
    adapter = _Adapter(pool_connections=2, pool_maxsize=pool_size + 2, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or True
    if urlsplit(base_url).scheme == "https":
        proxies = requests.utils.get_environ_proxies(base_url)
        if proxies.get("https"):
            session.proxies = {"https": proxies["https"]}
    return session
