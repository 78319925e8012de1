"""The API's own field names: the one place they are written down.

The contacts API accepts its standard fields plus the custom fields configured in the account
(no documented call lists those, so the mapping names them under ``custom_fields``). Fields the
server sets itself are refused in a create request.
"""

import difflib
from collections.abc import Iterable

STANDARD_FIELDS = ("external_id", "first_name", "last_name", "email", "phone", "company",
                   "job_title", "city", "country", "website_url", "contact_owner")
"""The contacts object's standard fields (the API reference and the sandbox)."""
SERVER_SET_FIELDS = ("id", "created_at", "updated_at", "archived", "archived_by")
"""Set by the server; forbidden in ``fields``."""
STANDARD_OBJECT = "contacts"


def standard_fields(object_name: str) -> tuple[str, ...]:
    """The standard fields of an object type; only contacts' are known to this tool."""
    return STANDARD_FIELDS if object_name == STANDARD_OBJECT else ()


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'email'?)`` for a near miss such as ``emial``, else nothing."""
    options = [c for c in choices if c != name]
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if not close:
        close = [c for c in options if c.casefold() == name.casefold()][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""
