"""CI runs exactly the README's test command, so what a developer runs is what CI checks."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_test_command() -> str:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split(
        "## Set-up: the two commands", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.+?)\n```", section, re.DOTALL)
    assert len(commands) == 2, "the set-up section has exactly two commands"
    return commands[1]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    command = _readme_test_command()
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in lines


def test_the_test_command_lints_type_checks_and_tests() -> None:
    steps = [step.strip() for step in _readme_test_command().split("&&")]
    assert steps[1:] == [".venv/bin/pip install -q -e '.[test]'", ".venv/bin/ruff check .",
                         ".venv/bin/mypy --strict importer", ".venv/bin/python -m pytest -q"]
