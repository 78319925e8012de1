"""A first mapping for an export, written from its headers (``routera-import init``).

Headers are matched to the API's known fields by a normalised name (case, spaces and
punctuation ignored) and common synonyms from real exports. Every column that matches nothing
is listed as a comment, so nothing is silently left out of the import.
"""

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from importer.readers import ReadOptions, Table, open_table

KNOWN_FIELDS: dict[str, tuple[str, ...]] = {
    "external_id": ("externalid", "customerid", "customerno", "customernumber", "custid",
                    "clientid", "clientnumber", "accountid", "contactid", "recordid", "crmid",
                    "memberid", "id", "kundennummer", "kundennr", "reference", "ref"),
    "first_name": ("firstname", "givenname", "forename", "first", "fname", "vorname", "prenom",
                   "nombre"),
    "last_name": ("lastname", "surname", "familyname", "last", "lname", "nachname", "nom",
                  "apellido", "apellidos"),
    "email": ("email", "emailaddress", "mail", "emailid", "workemail", "businessemail",
              "primaryemail", "courriel", "correo", "emailadresse"),
    "phone": ("phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone", "cell",
              "cellphone", "mobilenumber", "telefon", "telefono", "handy"),
    "company": ("company", "companyname", "organisation", "organization", "org", "employer",
                "accountname", "business", "firma", "unternehmen", "societe", "empresa"),
    "job_title": ("jobtitle", "title", "position", "role", "job", "designation"),
    "city": ("city", "town", "locality", "ort", "stadt", "ville", "ciudad"),
    "country": ("country", "countryname", "nation", "land", "pays", "pais"),
    "website_url": ("websiteurl", "website", "web", "url", "homepage", "site", "webaddress"),
}
FULL_NAME = ("fullname", "name", "contactname", "customername", "displayname")
EMAIL_TRANSFORM = "[trim, lower]"
PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9 _.()/-]*$")


def normalised(name: str) -> str:
    """``E-mail Address`` -> ``emailaddress``: only letters and digits, case-folded."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


@dataclass(frozen=True)
class Draft:
    """The mapping lines and what could not be matched."""

    fields: list[tuple[str, str]]
    unmatched: list[str]
    split_name: str | None


def draft(headers: list[str], custom_fields: tuple[str, ...] = ()) -> Draft:
    """Match headers to fields: each field and each header is used at most once."""
    candidates = {name: {normalised(s) for s in synonyms} | {normalised(name)}
                  for name, synonyms in KNOWN_FIELDS.items()}
    candidates.update({name: {normalised(name)} for name in custom_fields})
    taken: dict[str, str] = {}
    used: set[int] = set()
    for name, names in candidates.items():
        for index, header in enumerate(headers):
            if index not in used and header and normalised(header) in names:
                taken[name] = header
                used.add(index)
                break
    split = None
    if "first_name" not in taken and "last_name" not in taken:
        split = next((h for i, h in enumerate(headers)
                      if i not in used and normalised(h) in FULL_NAME), None)
        if split is not None:
            used.add(headers.index(split))
    unmatched = [h for i, h in enumerate(headers) if h and i not in used]
    ordered = [(name, taken[name]) for name in candidates if name in taken]
    return Draft(ordered, unmatched, split)


def init_mapping(path: Path, options: ReadOptions, custom_fields: tuple[str, ...] = ()) -> str:
    """A version 1 mapping for the export at ``path``; raises ``InputError`` if unreadable."""
    table = open_table(path, options)
    if options.header_row is None:
        table.use_header_row(likely_header_row(table))
    return render(table, draft(table.headers, custom_fields), options.sheet)


def likely_header_row(table: Table) -> int:
    """The first row with at least half as many filled cells as the fullest row near the top:
    a title block above the headers ("Contacts export", a date) has far fewer."""
    rows = list(table.top_rows())
    fullest = max(len(cells) for _, cells in rows)
    wanted = max(1, math.ceil(fullest / 2))
    return next(number for number, cells in rows if len(cells) >= wanted)


def render(table: Table, result: Draft, sheet: str | None) -> str:
    """The mapping file text, ready to save and edit."""
    lines = [f"# Mapping written by `routera-import init` from {table.path.name}.",
             "# Check it, then: routera-import check-mapping THIS_FILE "
             f"{table.path.name}",
             "version: 1"]
    if sheet:
        lines.append(f"sheet: {_text(sheet)}")
    if table.header_row != 1:
        lines.append(f"header_row: {table.header_row}")
    lines.append("fields:")
    for name, header in result.fields:
        if name == "email":
            lines += [f"  {name}:", f"    column: {_text(header)}",
                      f"    transform: {EMAIL_TRANSFORM}"]
        else:
            lines.append(f"  {name}: {_text(header)}")
    if result.split_name:
        for part in ("first", "last"):
            lines += [f"  {part}_name:", f"    column: {_text(result.split_name)}",
                      f"    transform: [{{split_name: {part}}}]"]
    if not (result.fields or result.split_name):
        lines.append("  # no column matched a known field; map at least email, first_name or "
                     "last_name")
    lines.append("required_any: [email, first_name, last_name]")
    if result.unmatched:
        lines.append("# Columns not imported (add `api_field: Column` under fields: for any "
                     "the account has):")
        lines += [f"#   {_text(header)}" for header in result.unmatched]
    return "\n".join(lines) + "\n"


def _text(value: str) -> str:
    """A YAML scalar that reads back as exactly this text."""
    return value if PLAIN.match(value) else json.dumps(value, ensure_ascii=False)
