"""A first mapping for an export, written from its headers (``routera-import init``).

Headers are matched to the API's known fields by a normalised name (case, spaces and
punctuation ignored) and common synonyms from real exports (HubSpot, Salesforce, Mailchimp,
German, French and Spanish exports). What is left is matched by similarity (the standard
library's ``difflib``, enough for typos and spelling variants: ``E-mail Adress``, ``Frist
Name``); each line says how sure the match is, so a person checks the weak ones. Every column
that matches nothing is listed as a comment, so nothing is silently left out of the import.
"""

import json
import math
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

from importer.errors import InputError
from importer.readers import ReadOptions, Table, open_table

KNOWN_FIELDS: dict[str, tuple[str, ...]] = {
    "external_id": ("externalid", "customerid", "customerno", "customernumber", "custid",
                    "clientid", "clientnumber", "accountid", "contactid", "recordid", "crmid",
                    "memberid", "memberno", "membernumber", "membershipnumber", "contactno",
                    "contactnumber", "id", "kundennummer", "kundennr", "reference", "ref"),
    "first_name": ("firstname", "givenname", "forename", "first", "fname", "vorname", "prenom",
                   "nombre"),
    "last_name": ("lastname", "surname", "familyname", "last", "lname", "nachname", "nom",
                  "apellido", "apellidos"),
    "email": ("email", "emailaddress", "mail", "emailid", "workemail", "businessemail",
              "primaryemail", "courriel", "correo", "emailadresse"),
    "phone": ("phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone", "cell",
              "cellphone", "mobilenumber", "businessphone", "workphone", "telefon", "telefono",
              "handy", "telephonenumber"),
    "company": ("company", "companyname", "organisation", "organization", "org", "employer",
                "accountname", "business", "firma", "unternehmen", "societe", "empresa"),
    "job_title": ("jobtitle", "title", "position", "role", "job", "designation"),
    "city": ("city", "town", "locality", "mailingcity", "billingcity", "addresscity", "ort",
             "stadt", "wohnort", "ville", "ciudad", "localidad"),
    "country": ("country", "countryname", "countryregion", "mailingcountry", "billingcountry",
                "addresscountry", "nation", "land", "pays", "pais"),
    "website_url": ("websiteurl", "website", "web", "url", "homepage", "site", "webaddress"),
}
CUSTOM_FIELDS: dict[str, tuple[str, ...]] = {
    "postal_code": ("postalcode", "postcode", "zip", "zipcode", "zippostalcode",
                    "mailingzippostalcode", "billingzippostalcode", "mailingpostalcode",
                    "plz", "postleitzahl", "cp", "codepostal", "codigopostal", "cap"),
}
"""Synonyms of custom fields many accounts have; used when ``--fields`` names the field."""
FULL_NAME = ("fullname", "name", "contactname", "customername", "displayname")
SIMILAR_ENOUGH = 0.8
SHORTEST_FUZZY = 4
EMAIL_TRANSFORM = "[trim, lower]"
PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9 _.()/-]*$")


def normalised(name: str) -> str:
    """``E-mail Address`` -> ``emailaddress``: only letters and digits, case-folded."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


@dataclass(frozen=True)
class Match:
    """How a header was matched: ``confidence`` in percent, ``how`` in words."""

    header: str
    confidence: int
    how: str


@dataclass(frozen=True)
class Draft:
    """The mapping lines and what could not be matched."""

    fields: list[tuple[str, str]]
    unmatched: list[str]
    split_name: str | None
    matches: dict[str, Match] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)
    """Unmatched header -> a custom field it looks like (to pass with ``--fields``)."""
    custom_fields: tuple[str, ...] = ()


def draft(headers: list[str], custom_fields: tuple[str, ...] = ()) -> Draft:
    """Match headers to fields: each field and each header is used at most once.

    First exact names and synonyms, field by field; then, for what is left, the most similar
    pair first, as long as it is similar enough.
    """
    candidates = {name: {normalised(s) for s in synonyms} | {normalised(name)}
                  for name, synonyms in KNOWN_FIELDS.items()}
    candidates.update({name: {normalised(name)} | set(CUSTOM_FIELDS.get(name, ()))
                       for name in custom_fields})
    matches: dict[str, Match] = {}
    used: set[int] = set()
    for name, names in candidates.items():
        for index, header in enumerate(headers):
            if index not in used and header and normalised(header) in names:
                how = "same name" if normalised(header) == normalised(name) else "synonym"
                matches[name] = Match(header, 100, how)
                used.add(index)
                break
    _similar(headers, candidates, matches, used)
    taken = {name: match.header for name, match in matches.items()}
    split = None
    if "first_name" not in taken and "last_name" not in taken:
        split = next((h for i, h in enumerate(headers)
                      if i not in used and normalised(h) in FULL_NAME), None)
        if split is not None:
            used.add(headers.index(split))
    unmatched = [h for i, h in enumerate(headers) if h and i not in used]
    ordered = [(name, taken[name]) for name in candidates if name in taken]
    return Draft(ordered, unmatched, split, matches, _custom_hints(unmatched, custom_fields),
                 custom_fields)


def _similar(headers: list[str], candidates: dict[str, set[str]], matches: dict[str, Match],
             used: set[int]) -> None:
    """Pair the remaining headers and fields by similarity, best pair first."""
    pairs = []
    for name, names in candidates.items():
        if name in matches:
            continue
        for index, header in enumerate(headers):
            key = normalised(header)
            if index in used or len(key) < SHORTEST_FUZZY:
                continue
            score, like = max((SequenceMatcher(None, key, n).ratio(), n) for n in names)
            if score >= SIMILAR_ENOUGH:
                pairs.append((score, name, index, like))
    for score, name, index, like in sorted(pairs, key=lambda p: (-p[0], p[2])):
        if name in matches or index in used:
            continue
        matches[name] = Match(headers[index], int(score * 100), f"similar to {like!r}")
        used.add(index)


def _custom_hints(unmatched: list[str], custom_fields: tuple[str, ...]) -> dict[str, str]:
    """Headers that look like a custom field many accounts have, when it was not named."""
    hints = {}
    for header in unmatched:
        for name, synonyms in CUSTOM_FIELDS.items():
            if name not in custom_fields and normalised(header) in synonyms:
                hints[header] = name
    return hints


def init_mapping(path: Path, options: ReadOptions, custom_fields: tuple[str, ...] = ()) -> str:
    """A version 1 mapping for the export at ``path``; raises ``InputError`` if unreadable."""
    table = open_table(path, options)
    if options.header_row is None:
        table.use_header_row(likely_header_row(table))
    result = draft(table.headers, custom_fields)
    if not (result.fields or result.split_name) and table.other_sheets:
        return _from_another_sheet(path, table, options, custom_fields)
    return render(table, result, options.sheet)


def _from_another_sheet(path: Path, first: Table, options: ReadOptions,
                        custom_fields: tuple[str, ...]) -> str:
    """The first visible sheet has no known column ("Read me"): the one other visible sheet
    that has some is drafted, with its name in the mapping; several are refused."""
    found = []
    for open_sheet in first.other_sheets:
        table = open_sheet()
        if options.header_row is None:
            table.use_header_row(likely_header_row(table))
        result = draft(table.headers, custom_fields)
        if result.fields or result.split_name:
            found.append((table, result))
    if len(found) > 1:
        names = ", ".join(repr(table.sheet) for table, _ in found)
        raise InputError(f"{path}: sheet {first.sheet!r} has no known column, and several "
                         f"sheets do ({names}); choose one with --sheet")
    if not found:
        return render(first, draft(first.headers, custom_fields), options.sheet)
    table, result = found[0]
    return render(table, result, table.sheet)


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
        note = _confidence(result.matches.get(name))
        if name == "email":
            lines += [f"  {name}:{note}", f"    column: {_text(header)}",
                      f"    transform: {EMAIL_TRANSFORM}"]
        else:
            lines.append(f"  {name}: {_text(header)}{note}")
    if result.split_name:
        for part in ("first", "last"):
            lines += [f"  {part}_name:", f"    column: {_text(result.split_name)}",
                      f"    transform: [{{split_name: {part}}}]"]
    if not (result.fields or result.split_name):
        lines.append("  # no column matched a known field; map at least email, first_name or "
                     "last_name")
    lines.append("required_any: [email, first_name, last_name]")
    if result.custom_fields:
        names = ", ".join(_text(name) for name in result.custom_fields)
        lines.append(f"custom_fields: [{names}]   # the account's own fields (from --fields)")
    if result.unmatched:
        lines.append("# Columns not imported (add `api_field: Column` under fields: for any "
                     "the account has):")
        lines += [f"#   {_text(header)}{_hint(result.hints.get(header))}"
                  for header in result.unmatched]
    return "\n".join(lines) + "\n"


def _confidence(match: Match | None) -> str:
    """``  # 100% synonym``; a guess by similarity says to check it."""
    if match is None:
        return ""
    check = "" if match.confidence == 100 else ": check it"
    return f"  # {match.confidence}% {match.how}{check}"


def _hint(field_name: str | None) -> str:
    if field_name is None:
        return ""
    return (f"  (looks like the custom field {field_name}: if the account has it, run init "
            f"with --fields {field_name})")


def _text(value: str) -> str:
    """A YAML scalar that reads back as exactly this text."""
    return value if PLAIN.match(value) else json.dumps(value, ensure_ascii=False)
