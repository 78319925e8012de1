"""What the ledger stores instead of secrets and whole rows: one-way fingerprints.

- A destination is the API endpoint plus a fingerprint of the token, so two accounts on the same
  API keep separate ledgers and the token itself is never written anywhere.
- A row is found again by its keys, the way the API recognises a repeat: the email ignoring
  case, the external_id and the website_url, each exactly. A row with none of them is found by
  the fingerprint of its exact fields.
- Each field sent is fingerprinted on its own too, so a later row with the same key can say
  which fields changed since the import without the ledger keeping their values.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import chain

KEY_FIELDS = ("email", "external_id", "website_url")
_TOKEN_LABEL = b"routera-import ledger token\x00"
_SEPARATOR = "\x1f"


@dataclass(frozen=True, slots=True)
class Destination:
    """Where records were created: the ledger keeps one set of entries per destination."""

    endpoint: str
    token_print: str

    @property
    def digest(self) -> str:
        return _hex(f"{self.endpoint}\n{self.token_print}", 16)


def destination(endpoint: str, token: str) -> Destination:
    """The destination of ``endpoint`` reached with ``token`` (an empty token for the sandbox,
    which is identified by its database file instead)."""
    if not token:
        return Destination(endpoint, "")
    return Destination(endpoint, hashlib.sha256(_TOKEN_LABEL + token.encode()).hexdigest()[:16])


def key_values(fields: Mapping[str, str]) -> tuple[str, str, str]:
    """The row's email (case-folded, as the API compares it), external_id and website_url."""
    email = fields.get("email") or ""
    return (email.casefold(), fields.get("external_id") or "", fields.get("website_url") or "")


def single_keys(keys: tuple[str, str, str]) -> list[str]:
    """Lookup keys that each, alone, identify a record: ``email:ada@example.com``."""
    return [f"{name}:{value}" for name, value in zip(KEY_FIELDS, keys, strict=True) if value]


def combined_key(keys: tuple[str, str, str]) -> str:
    """One lookup key for all of a row's keys together (empty when it has fewer than two).

    A 409 says that *some* key of the row is taken, not which: such a record is recorded under
    the combination only, so it matches a later row with exactly the same keys and nothing else.
    """
    if sum(1 for value in keys if value) < 2:
        return ""
    return "keys:" + _hex(_SEPARATOR.join(keys), 16)


def fields_key(fields_print: str) -> str:
    """The lookup key of a keyless row: its exact fields."""
    return f"fields:{fields_print}"


def fields_print(fields: Mapping[str, str]) -> str:
    """A fingerprint of exactly the fields sent (names and values, in any order).

    Names and values are joined with NUL, which no value can hold (the readers refuse text
    with NUL bytes, and XML cannot carry one), so different fields never join the same way.
    """
    return _hex("\x00".join(chain.from_iterable(sorted(fields.items()))), 16)


def field_prints(fields: Mapping[str, str]) -> dict[str, str]:
    """One short fingerprint per field, to name the fields that changed since an import."""
    return {name: _hex(f"{name}{_SEPARATOR}{value}", 8) for name, value in fields.items()}


def changed_fields(before: Mapping[str, str], fields: Mapping[str, str]) -> list[str]:
    """Names of fields added, removed or given another value since ``before`` was printed."""
    now = field_prints(fields)
    names: Iterable[str] = set(before) | set(now)
    return sorted(name for name in names if before.get(name) != now.get(name))


def _hex(text: str, size: int) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=size).hexdigest()
