"""What the ledger stores instead of secrets and whole rows: one-way fingerprints.

- A destination is the API endpoint plus a fingerprint of the account the token speaks for, so
  two accounts on the same API keep separate ledgers and the token itself is never written
  anywhere. A JWT is renewed routinely for the same account, so for a JWT the fingerprint is of
  its identifying claims (issuer and account, tenant or organisation, else subject), read
  without verifying the signature (the API verifies it; the ledger only needs a name). Any
  other token is fingerprinted whole.
- A row is found again by its keys, the way the API recognises a repeat: the email ignoring
  case, the external_id and the website_url, each exactly. A row with none of them is found by
  the fingerprint of its exact fields.
- Each field sent is fingerprinted on its own too, so a later row with the same key can say
  which fields changed since the import without the ledger keeping their values.
"""

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import chain

KEY_FIELDS = ("email", "external_id", "website_url")
_TOKEN_LABEL = b"routera-import ledger token\x00"
_ACCOUNT_LABEL = b"routera-import ledger account\x00"
ACCOUNT_CLAIMS = ("account_id", "account", "acct", "tenant_id", "tenant", "tid", "org_id",
                  "organization_id", "organisation_id", "org", "organization", "workspace_id",
                  "company_id")
"""JWT claims that name the account a token acts for, in order of preference; ``sub`` (the
subject) is used when none is present."""
JWT_PREFIX = "jwt:"
ACCOUNT_PREFIX = "account:"
ACCOUNT_ENV = "ROUTERA_LEDGER_ACCOUNT"
_SEPARATOR = "\x1f"


@dataclass(frozen=True, slots=True)
class Destination:
    """Where records were created: the ledger keeps one set of entries per destination."""

    endpoint: str
    token_print: str

    @property
    def digest(self) -> str:
        return _hex(f"{self.endpoint}\n{self.token_print}", 16)


def destination(endpoint: str, token: str, account: str = "") -> Destination:
    """The destination of ``endpoint`` reached with ``token`` (an empty token for the sandbox,
    which is identified by its database file instead). ``account`` (``ROUTERA_LEDGER_ACCOUNT``)
    names the account outright, for opaque tokens that are renewed: it replaces the token."""
    if account:
        printed = hashlib.sha256(_ACCOUNT_LABEL + b"named\x00" + account.encode()).hexdigest()
        return Destination(endpoint, ACCOUNT_PREFIX + printed[:16])
    if not token:
        return Destination(endpoint, "")
    claimed = jwt_account(token)
    if claimed is not None:
        printed = hashlib.sha256(_ACCOUNT_LABEL + claimed.encode()).hexdigest()[:16]
        return Destination(endpoint, JWT_PREFIX + printed)
    return Destination(endpoint, hashlib.sha256(_TOKEN_LABEL + token.encode()).hexdigest()[:16])


def jwt_account(token: str) -> str | None:
    """The identifying claims of a JWT as one string (``iss`` and the account claim), or None
    when the token is not a readable JWT or names no account or subject. Not verified: only
    hashed, never stored, shown or trusted for anything else."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        return None
    header, claims = _json_part(parts[0]), _json_part(parts[1])
    if header is None or claims is None or "alg" not in header:
        return None
    name = next((c for c in ACCOUNT_CLAIMS if claims.get(c) not in (None, "")), None)
    if name is None and claims.get("sub") in (None, ""):
        return None
    chosen = name or "sub"
    return json.dumps([claims.get("iss"), chosen, claims[chosen]], sort_keys=True, default=str)


def _json_part(part: str) -> dict[str, object] | None:
    """One base64url-encoded JSON object of a JWT, or None."""
    try:
        data = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


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


def fields_key(fields_print: str, occurrence: int = 1) -> str:
    """The lookup key of a keyless row: its exact fields, and which occurrence of them in its
    file it is. Two identical keyless rows are two people: the n-th occurrence in one file
    matches only the n-th occurrence recorded before, so each record answers for one row."""
    return f"fields:{fields_print}" if occurrence <= 1 else f"fields:{fields_print}#{occurrence}"


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
