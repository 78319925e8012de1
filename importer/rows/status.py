"""A row's final state: its own module because both problem codes and outcomes name it."""

from enum import StrEnum


class Status(StrEnum):
    """A row's final state; a public contract (results files, summaries, exit codes)."""

    CREATED = "created"
    DUPLICATE = "duplicate"
    INVALID = "invalid"
    REJECTED = "rejected"
    FAILED = "failed"
    SKIPPED = "skipped"
    READY = "ready"
