"""Where a run's rows go: nowhere (a dry run), the in-process sandbox, or the real API."""

import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from importer.errors import ConfigError
from importer.sandbox import Sandbox
from importer.sending.client import DEFAULT_API_URL, Target, check_base_url

TOKEN_ENV = "ROUTERA_API_TOKEN"
URL_ENV = "ROUTERA_API_URL"
SANDBOX_DB = Path(".routera-sandbox.db")


@contextmanager
def destination(*, dry_run: bool, sandbox: bool, sandbox_db: Path | None, api_url: str | None,
                object_name: str,
                environ: Mapping[str, str]) -> Iterator[tuple[Target | None, str]]:
    """The target (None for a dry run) and how to describe it in the summary.

    The sandbox is never chosen silently: only ``--sandbox`` starts it, and the description
    says plainly that it is not the real API.
    """
    if dry_run:
        yield None, "dry run: nothing was sent"
        return
    token = environ.get(TOKEN_ENV, "").strip()
    if sandbox:
        db = sandbox_db or SANDBOX_DB
        with Sandbox(db, token=token or secrets.token_urlsafe(24)) as api:
            yield (Target(api.url, api.token, object_name, sandbox_name(db, object_name)),
                   f"SANDBOX at {api.url} (database {db}), not the real API")
        return
    url = check_base_url(api_url or environ.get(URL_ENV) or DEFAULT_API_URL)
    yield Target(url, _checked(token), object_name), url


def sandbox_name(db: Path, object_name: str) -> str:
    """What identifies a sandbox destination across runs (its port changes every time)."""
    return f"sandbox:{db.resolve()}/{object_name}"


def _checked(token: str) -> str:
    if not token:
        raise ConfigError(f"{TOKEN_ENV} is not set; export the API token first (or try "
                          "--sandbox or --dry-run)")
    if any(ch.isspace() or ord(ch) < 32 for ch in token):
        raise ConfigError(f"{TOKEN_ENV} contains spaces or control characters; copy the token "
                          "again")
    return token
