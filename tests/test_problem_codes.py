"""Each problem code's facts live on its definition; the README's table is checked against them."""

import inspect
import re
from pathlib import Path

import pytest

from importer.rows.outcomes import Outcome
from importer.rows.problems import Code, code_of
from importer.rows.status import Status

README = Path(__file__).resolve().parent.parent / "README.md"


def _table_rows(text: str) -> list[str]:
    section = text.split("## Troubleshooting: error codes", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if re.match(r"\| `[a-z-]+` \|", line)]


def test_readme_table_is_exactly_the_codes_in_order() -> None:
    expected = [f"| `{code}` | {code.status} | {code.description} | {code.action} |"
                for code in Code]
    assert _table_rows(README.read_text(encoding="utf-8")) == expected


@pytest.mark.parametrize("code", list(Code))
def test_every_template_fills_and_keeps_clear_of_the_constructors_names(code: Code) -> None:
    reserved = set(inspect.signature(Outcome.problem).parameters) - {"params"}
    assert not code.params() & reserved
    outcome = Outcome.problem(7, code, **{name: f"<{name}>" for name in code.params()})
    assert outcome.status == code.status and outcome.code == code
    assert all(f"<{name}>" in outcome.error for name in code.params())


def test_a_missing_template_value_is_an_error_not_a_blank() -> None:
    with pytest.raises(KeyError):
        Code.INVALID_EMAIL.message()


def test_codes_read_back_from_files() -> None:
    assert all(code_of(code.value) is code for code in Code)
    assert code_of("from-a-newer-version") == "from-a-newer-version"


def test_no_code_ends_a_row_as_created_or_ready() -> None:
    assert {code.status for code in Code} <= set(Status) - {Status.CREATED, Status.READY}
