"""One create request to the API, and what it tells us about whether the record now exists.

The client never retries and never raises for HTTP or network trouble: it classifies each
attempt (answered, certainly not sent, maybe processed, or hopeless) and leaves the decision
to the runner. It is the only code that holds the token, and it scrubs it from everything it
returns.
"""

import ipaddress
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit

import requests
import urllib3

from importer.errors import ConfigError
from importer.sending.deadlines import Deadlines

DEFAULT_API_URL = "https://api.routera.io"
MAX_BODY = 65_536
MAX_MESSAGE = 300
MESSAGE_KEYS = ("error", "message", "detail", "errors", "title")


@dataclass(frozen=True)
class Target:
    """Where requests go and the token they carry (never shown in a repr or a message)."""

    base_url: str
    token: str = field(repr=False)
    object: str = "contacts"
    name: str = ""

    @property
    def identity(self) -> str:
        """What the journal records as "where rows went" (a sandbox's port changes per run)."""
        return self.name or self.endpoint

    @property
    def endpoint(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.object}"

    def redact(self, text: str) -> str:
        return redact(text, self.token)


MIN_SECRET = 4
"""Shorter "tokens" are not real ones, and masking them would garble ordinary words."""


def redact(text: str, token: str) -> str:
    """``text`` with every occurrence of the token masked: every line the importer prints or
    records passes through here (server messages, the CLI's output, the JSON summary)."""
    token = token.strip()
    return text.replace(token, "[token]") if len(token) >= MIN_SECRET else text


def check_base_url(url: str) -> str:
    """Refuse URLs that would send the token in clear text or to a user@host in the URL."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018
    except ValueError as exc:
        raise ConfigError(f"API URL {url!r} is not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"API URL {url!r} is not an http(s) URL such as {DEFAULT_API_URL}")
    if parts.username or parts.password:
        raise ConfigError("the API URL must not contain a user name or password; the token is "
                          "taken from ROUTERA_API_TOKEN")
    if parts.query or parts.fragment:
        raise ConfigError(f"API URL {url!r} must not have a query string or fragment")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"refusing plain http:// for {parts.hostname}: the token would cross "
                          "the network unencrypted; use https://")
    return url.strip().rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Kind(StrEnum):
    """What one attempt tells us about the record."""

    ANSWERED = "answered"
    NOT_SENT = "not-sent"
    AMBIGUOUS = "ambiguous"
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class Attempt:
    """The result of one request: an HTTP answer, or why there was none."""

    kind: Kind
    status: int | None = None
    record_id: str = ""
    message: str = ""
    retry_after: str | None = None
    reached: bool = False
    """For a fatal failure: the request may have reached the server before it broke."""


class Sender(Protocol):
    """What delivery needs from a client: one create request, classified.

    ``RecordsClient`` is the real one; tests script answers through this seam instead of
    patching HTTP, and ``create`` must not raise for anything the network or server does.
    """

    def create(self, fields: dict[str, str]) -> Attempt: ...


@dataclass(frozen=True)
class Timeouts:
    """Seconds: to connect, between bytes of the answer, and for the whole request."""

    connect: float = 5.0
    read: float = 30.0

    @property
    def total(self) -> float:
        return self.connect + self.read


class _Bearer(requests.auth.AuthBase):
    """Set as ``auth`` (not a plain header) so requests never consults ~/.netrc."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_Bearer([token])"


class RecordsClient:
    """Creates records of one object type with a session it is given (tests pass their own)."""

    def __init__(self, target: Target, session: requests.Session, timeouts: Timeouts) -> None:
        self.target = target
        self.session = session
        self.timeouts = timeouts
        self._auth = _Bearer(target.token)
        self.deadlines = Deadlines()
        self._template = session.prepare_request(requests.Request(
            "POST", target.endpoint, data=b"", auth=self._auth,
            headers={"Content-Type": "application/json; charset=utf-8"}))

    def create(self, fields: dict[str, str]) -> Attempt:
        with self.deadlines.watch(self.timeouts.total) as watch:
            try:
                response = self._post(fields)
            except requests.RequestException as exc:
                return self._failure(exc, watch.expired, reached=watch.conn is not None)
            try:
                content = response.raw.read(MAX_BODY + 1, decode_content=True) or b""
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                return self._cut(response, "the answer was cut off" if not watch.expired else
                                 f"no complete answer within {self.timeouts.total:g} s "
                                 f"(deadline)", exc)
            finally:
                response.close()
        if len(content) > MAX_BODY:
            return self._cut(response, f"the answer was larger than {MAX_BODY:,} bytes", None)
        return self._answer(response, content)

    def _cut(self, response: requests.Response, what: str,
             exc: BaseException | None) -> Attempt:
        """The status arrived but not the whole body: a success whose record id we cannot
        read may still have created the record, so it is ambiguous; any other status keeps
        its meaning."""
        status = response.status_code
        detail = self.shorten(f"HTTP {status}, {what}" + (f": {_root(exc)}" if exc else ""))
        if 200 <= status < 300:
            return Attempt(Kind.AMBIGUOUS, status, "", detail)
        return Attempt(Kind.ANSWERED, status, "", detail, response.headers.get("Retry-After"))

    def close(self) -> None:
        """Stop watching deadlines; the session belongs to whoever passed it in."""
        self.deadlines.close()

    def _post(self, fields: dict[str, str]) -> requests.Response:
        """Send through the session's adapter with a request prepared once.

        ``Session.post`` merges settings, environment and cookies for every call, about a
        third of the client's CPU per row; none of it changes between rows here, and redirects
        are never followed (a POST must not turn into a GET elsewhere).
        """
        request = self._template.copy()
        request.body = json.dumps({"fields": fields}, ensure_ascii=False).encode("utf-8")
        request.headers["Content-Length"] = str(len(request.body))
        session = self.session
        adapter = session.get_adapter(request.url or self.target.endpoint)
        return adapter.send(request, stream=True, cert=session.cert, proxies=session.proxies,
                            verify=True if session.verify is None else session.verify,
                            timeout=(self.timeouts.connect, self.timeouts.read))

    def _answer(self, response: requests.Response, content: bytes) -> Attempt:
        data = _json(content)
        if data is None and 200 <= response.status_code < 300 and _says_json(response):
            return Attempt(Kind.AMBIGUOUS, response.status_code, "", self.shorten(
                f"HTTP {response.status_code} with a damaged JSON body: {content[:80]!r}"))
        record_id = ""
        if isinstance(data, dict) and data.get("id") is not None:
            record_id = str(data["id"])
        message = "" if 200 <= response.status_code < 300 else self._message(data, content)
        if 300 <= response.status_code < 400:
            location = response.headers.get("Location", "")
            message = self.shorten(f"the API redirected (HTTP {response.status_code}) to "
                                   f"{location[:120]!r}; check --api-url")
        return Attempt(Kind.ANSWERED, response.status_code, record_id, message,
                       response.headers.get("Retry-After"))

    def _message(self, data: object, content: bytes) -> str:
        if isinstance(data, dict):
            found = next((data[k] for k in MESSAGE_KEYS if data.get(k)), None)
            text = found if isinstance(found, str) else json.dumps(found or data,
                                                                    ensure_ascii=False)
        else:
            text = content.decode("utf-8", errors="replace")
        return self.shorten(text)

    def shorten(self, text: str) -> str:
        """One line, secret-free and short enough for a results cell."""
        text = " ".join(self.target.redact(text).split())
        return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"

    def _failure(self, exc: requests.RequestException, expired: bool, reached: bool) -> Attempt:
        """What the exception says about the server; a connection never made stays "not
        sent" even when the deadline (or a second Ctrl-C) cut it.

        ``reached``: the connection had started sending the request (TLS is set up before
        that), so a TLS failure from then on may come after the server did the work.
        """
        if isinstance(exc, requests.exceptions.SSLError):
            reached = reached and not _before_sending(exc)
            when = "after the request was sent" if reached else "while connecting"
            return Attempt(Kind.FATAL, message=self.shorten(f"TLS failed {when}: {_root(exc)}"),
                           reached=reached)
        if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.ProxyError) \
                or (isinstance(exc, requests.exceptions.ConnectionError) and _before_sending(exc)):
            return Attempt(Kind.NOT_SENT, message=self.shorten(f"could not connect: {_root(exc)}"))
        if expired:
            return Attempt(Kind.AMBIGUOUS, message=f"no complete answer within "
                           f"{self.timeouts.total:g} s (deadline)")
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return Attempt(Kind.AMBIGUOUS, message=f"no answer within {self.timeouts.read:g} s")
        if isinstance(exc, requests.exceptions.ConnectionError
                      | requests.exceptions.ChunkedEncodingError):
            return Attempt(Kind.AMBIGUOUS, message=self.shorten(
                f"connection lost after sending: {_root(exc)}"))
        return Attempt(Kind.FATAL, message=self.shorten(f"request failed: {_root(exc)}"))


def _before_sending(exc: BaseException) -> bool:
    """True when the connection was never established, so the server saw nothing."""
    seen: BaseException | None = exc
    for _ in range(12):
        if seen is None:
            return False
        if isinstance(seen, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
            return True
        if isinstance(seen, urllib3.exceptions.MaxRetryError):
            seen = seen.reason
            continue
        seen = seen.__cause__ or seen.__context__ or (seen.args[0] if seen.args and isinstance(
            seen.args[0], BaseException) else None)
    return False


def _root(exc: BaseException) -> str:
    """The innermost cause's text: the part that says what actually went wrong."""
    seen = exc
    for _ in range(12):
        inner = getattr(seen, "reason", None) or (seen.args[0] if seen.args and isinstance(
            seen.args[0], BaseException) else None)
        if not isinstance(inner, BaseException) or inner is seen:
            break
        seen = inner
    return str(seen)


def _says_json(response: requests.Response) -> bool:
    return "json" in response.headers.get("Content-Type", "").lower()


def _json(content: bytes) -> object:
    try:
        return json.loads(content)
    except ValueError:
        return None
