"""A real PostgreSQL server for the ledger tests, started once per test session.

It runs from the machine's PostgreSQL binaries (Debian's ``postgresql`` package, which
``.ci/run`` installs when missing) in a temporary folder on a free loopback port, as the
``postgres`` user when the tests run as root (PostgreSQL refuses to run as root). Tests that
need it are skipped, with the reason, only when no binaries can be found at all.
"""

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_counter = itertools.count()


def _binaries() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(command: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *command] if owner else command


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """A throwaway server on a free loopback port; yields its base URL, then stops it and
    deletes its files. Raises ``FileNotFoundError`` when there are no binaries."""
    binaries = _binaries()
    if binaries is None:
        raise FileNotFoundError("PostgreSQL binaries not found (apt-get install postgresql)")
    owner = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="routera-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if owner:
        shutil.chown(root, owner)
        shutil.chown(sockets, owner)
    port = _free_port()
    try:
        subprocess.run(_as_owner([str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
                                  "-A", "trust", "-E", "UTF8", "--no-sync"], owner),
                       check=True, capture_output=True)
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_owner([str(binaries / "pg_ctl"), "-D", str(data), "-o", options,
                                  "-l", str(root / "log"), "-w", "-t", "60", "start"], owner),
                       check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_owner([str(binaries / "pg_ctl"), "-D", str(data), "-m",
                                      "immediate", "stop"], owner), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The server's base URL (``postgresql://postgres@127.0.0.1:PORT``)."""
    if _binaries() is None:
        pytest.skip("PostgreSQL binaries not found (apt-get install postgresql; .ci/run does)")
    with running_postgres() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    import psycopg

    name = f"ledger_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    yield f"{postgres_server}/{name}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as db, \
            contextlib.suppress(psycopg.Error):
        for _ in range(50):
            try:
                db.execute(f"DROP DATABASE {name} WITH (FORCE)")
                break
            except psycopg.errors.ObjectInUse:
                time.sleep(0.1)
