"""The README documents the whole public contract (sqlite-utils' ``tests/test_docs.py`` idea):
every command, every flag of every command, every error code and every exit code."""

import argparse
import re
from pathlib import Path

import pytest

from importer.cli import build_parser
from importer.rows.problems import Code
from importer.runs.exits import ExitCode

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def _flags() -> list[tuple[str, str]]:
    return sorted({(name, flag) for name, command in _commands().items()
                   for action in command._actions for flag in action.option_strings
                   if flag.startswith("--") and flag != "--help"})


def _mentioned(word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", README) is not None


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_command_is_documented(command: str) -> None:
    assert f"routera-import {command}" in README


@pytest.mark.parametrize(("command", "flag"), _flags())
def test_every_flag_is_documented(command: str, flag: str) -> None:
    assert _mentioned(flag), f"{command} {flag} is not in the README"


@pytest.mark.parametrize("code", list(Code))
def test_every_error_code_is_documented(code: Code) -> None:
    assert f"| `{code}` |" in README


def test_the_exit_code_table_has_exactly_the_exit_codes() -> None:
    section = README.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    listed = [int(n) for n in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)]
    assert listed == [code.value for code in ExitCode]


def test_help_lists_the_exit_codes_from_their_definition() -> None:
    help_text = " ".join(_commands()["run"].format_help().split())
    for code in ExitCode:
        assert f"{code.value} {code.meaning}" in help_text


def test_every_summary_fact_is_documented() -> None:
    from importer.runs.summary import SummaryFacts

    for name in SummaryFacts.__annotations__:
        assert f"`{name}`" in README, name
