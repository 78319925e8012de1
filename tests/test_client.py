"""The HTTP client: one request, classified; the token only ever in the Authorization header."""

import json
from pathlib import Path

import pytest
import requests
import responses

from importer.errors import ConfigError
from importer.sending.client import Kind, RecordsClient, Target, Timeouts, check_base_url
from importer.sending.deadlines import build_session

URL = "https://api.example.test"
TOKEN = "secret-token-abc123"


@pytest.fixture
def client() -> RecordsClient:
    return RecordsClient(Target(URL, TOKEN), build_session(URL, 2), Timeouts(1, 1))


@responses.activate
def test_created_sends_fields_with_the_bearer_token(client: RecordsClient) -> None:
    responses.post(f"{URL}/contacts", status=201, json={"id": "c-1", "email": "a@x.io"})
    attempt = client.create({"email": "a@x.io", "postal_code": "02134"})
    assert (attempt.kind, attempt.status, attempt.record_id) == (Kind.ANSWERED, 201, "c-1")
    sent = responses.calls[0].request
    assert json.loads(sent.body) == {"fields": {"email": "a@x.io", "postal_code": "02134"}}
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["User-Agent"].startswith("routera-import/")


@responses.activate
def test_netrc_never_replaces_the_token(client: RecordsClient, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".netrc").write_text("machine api.example.test login u password p\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    responses.post(f"{URL}/contacts", status=201, json={"id": "c-1"})
    client.create({"email": "a@x.io"})
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
def test_server_messages_are_short_single_line_and_token_free(client: RecordsClient) -> None:
    responses.post(f"{URL}/contacts", status=400,
                   json={"error": f"bad field\n'x' (token {TOKEN} rejected) " + "y" * 500})
    attempt = client.create({"email": "a@x.io"})
    assert attempt.status == 400
    assert TOKEN not in attempt.message
    assert "\n" not in attempt.message
    assert attempt.message.startswith("bad field 'x' (token [token] rejected) yyy")
    assert len(attempt.message) == 300


@pytest.mark.parametrize(("error", "kind"), [
    (requests.exceptions.ConnectTimeout("connect timed out"), Kind.NOT_SENT),
    (requests.exceptions.ReadTimeout("read timed out"), Kind.AMBIGUOUS),
    (requests.exceptions.ConnectionError("Connection aborted."), Kind.AMBIGUOUS),
    (requests.exceptions.SSLError("certificate verify failed"), Kind.FATAL),
])
@responses.activate
def test_network_failures_say_whether_the_server_may_have_seen_the_row(
        client: RecordsClient, error: Exception, kind: Kind) -> None:
    responses.post(f"{URL}/contacts", body=error)
    assert client.create({"email": "a@x.io"}).kind == kind


def test_connection_refused_means_nothing_was_sent() -> None:
    client = RecordsClient(Target("http://127.0.0.1:9", TOKEN),
                            build_session("http://127.0.0.1:9", 1), Timeouts(1, 1))
    attempt = client.create({"email": "a@x.io"})
    assert attempt.kind == Kind.NOT_SENT
    assert attempt.message.startswith("could not connect")


@pytest.mark.parametrize(("url", "problem"), [
    ("http://api.routera.io", "refusing plain http:// for api.routera.io"),
    ("ftp://x", "is not an http(s) URL"),
    ("https://user:pw@api.routera.io", "must not contain a user name or password"),
    ("https://api.routera.io/?x=1", "must not have a query string"),
])
def test_unsafe_api_urls_are_refused(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        check_base_url(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "http://localhost:1/api",
                                 "http://[::1]:80", "https://api.routera.io/"])
def test_loopback_http_and_any_https_are_allowed(url: str) -> None:
    assert check_base_url(url) == url.rstrip("/")


def test_the_token_is_not_in_reprs() -> None:
    target = Target(URL, TOKEN)
    client = RecordsClient(target, build_session(URL, 1), Timeouts())
    assert TOKEN not in repr(target) + repr(client) + repr(vars(client))
