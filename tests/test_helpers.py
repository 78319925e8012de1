"""The one helper each for writing a file whole, pacing fsyncs and masking the token."""

import os
from pathlib import Path

import pytest

from importer.results import files
from importer.results.files import SyncClock, written_whole
from importer.sending.client import redact


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    target.write_text("yesterday")
    with pytest.raises(RuntimeError), written_whole(target) as stream:
        stream.write(b"half")
        raise RuntimeError("disk full")
    assert target.read_text() == "yesterday"
    with written_whole(target) as stream:
        stream.write(b"today")
    assert target.read_text() == "today"
    assert not (tmp_path / ".s.json.partial").exists()
    if os.name == "posix":
        assert target.stat().st_mode & 0o777 == 0o600


def test_fsyncs_are_paced(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(files.time, "monotonic", lambda: now[0])
    clock = SyncClock()
    now[0] += files.SYNC_EVERY / 2
    assert not clock.due()
    now[0] += files.SYNC_EVERY / 2
    assert clock.due() and not clock.due()


@pytest.mark.parametrize(("text", "token", "shown"), [
    ("Bearer abcd1234 refused", "abcd1234", "Bearer [token] refused"),
    ("twice: abcd1234abcd1234", " abcd1234\n", "twice: [token][token]"),
    ("a b c", "a", "a b c"),
    ("nothing", "", "nothing"),
])
def test_the_token_is_masked_wherever_it_appears(text: str, token: str, shown: str) -> None:
    assert redact(text, token) == shown
