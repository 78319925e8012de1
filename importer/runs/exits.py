"""Exit codes: the one definition the CLI, ``RunSummary.exit_code``, ``--help`` and the
README's table (checked by ``tests/test_docs.py``) all follow."""

from enum import IntEnum


class ExitCode(IntEnum):
    """What a scheduler can act on; each code carries the sentence ``--help`` shows."""

    meaning: str

    def __new__(cls, value: int, meaning: str) -> "ExitCode":
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    OK = 0, "every row created, duplicate, invalid or rejected (ready in a dry run)"
    ROWS = 1, ("some rows failed or were skipped, or the API rejected every row it answered "
               "(or more than --max-rejected percent of them), or, with --strict, any row is "
               "invalid or rejected")
    USAGE = 2, "nothing was sent (bad arguments, input or mapping)"
    STOPPED = 3, ("the run was stopped (the breaker saw systematic rejections, the API refused "
                  "the token, Ctrl-C or SIGTERM)")


def epilog() -> str:
    """The exit codes as ``--help`` lists them."""
    return "exit codes: " + "; ".join(f"{code.value} {code.meaning}" for code in ExitCode)
