"""Value transforms a mapping can apply, in order, to a field's text.

Each transform takes non-empty text and returns text, or ``None`` when nothing is left; a value
it cannot handle raises ``ValueError`` with a message for the row's results. Transforms are
built once per mapping and then applied to whole columns of a batch.
"""

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

Transform = Callable[[str], str | None]

SIMPLE: dict[str, Transform] = {
    "trim": str.strip,
    "lower": str.lower,
    "upper": str.upper,
    "title": str.title,
}
SPLIT_PARTS = ("first", "last")
NON_DIGITS = re.compile(r"[^0-9]")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T[\d:.]+)?$")


def names() -> list[str]:
    """Every transform name, for error hints and the README."""
    return [*SIMPLE, "digits", "date", "map", "split_name"]


def build(name: str, argument: Any) -> Transform:
    """A transform from its mapping-file form; raises ``ValueError`` naming what is wrong."""
    if name in SIMPLE or name == "digits":
        if argument is not None:
            raise ValueError(f"transform {name!r} takes no argument")
        return SIMPLE.get(name, digits)
    if name == "date":
        return _date(argument)
    if name == "map":
        return _lookup(argument)
    if name == "split_name":
        return _split_name(argument)
    raise ValueError(f"unknown transform {name!r}")


def digits(text: str) -> str | None:
    """Phone-style: keep the digits and a leading plus sign."""
    kept = NON_DIGITS.sub("", text)
    if not kept:
        return None
    return "+" + kept if text.lstrip().startswith("+") else kept


def _date(argument: Any) -> Transform:
    formats = [argument] if isinstance(argument, str) else argument
    if not formats or not all(isinstance(f, str) and _readable(f) for f in formats):
        raise ValueError("transform 'date' needs input formats that strptime understands, "
                         "such as \"%d/%m/%Y\" (or a list of them)")

    def parse(text: str) -> str:
        if ISO_DATE.match(text):
            return text
        for fmt in formats:
            try:
                parsed = dt.datetime.strptime(text, fmt)
            except ValueError:
                continue
            has_time = any(code in fmt for code in ("%H", "%I", "%M", "%S"))
            return parsed.isoformat() if has_time else parsed.date().isoformat()
        raise ValueError(f"{text!r} is not a date in the format {' or '.join(formats)}")

    return parse


def _readable(fmt: str) -> bool:
    """A format strptime can read back what strftime wrote with it (so ``%Q`` is refused)."""
    if "%" not in fmt:
        return False
    sample = dt.datetime(2001, 2, 3, 4, 5, 6)
    try:
        return dt.datetime.strptime(sample.strftime(fmt), fmt) is not None
    except ValueError:
        return False


def _lookup(argument: Any) -> Transform:
    if not isinstance(argument, dict) or not argument:
        raise ValueError("transform 'map' needs a table such as "
                         "{\"Y\": \"true\", \"N\": \"false\"}")
    exact = {str(k).strip(): v for k, v in argument.items()}
    folded = {k.casefold(): v for k, v in exact.items()}

    def look_up(text: str) -> str | None:
        if text in exact:
            return exact[text] or None
        if text.casefold() in folded:
            return folded[text.casefold()] or None
        raise ValueError(f"{text!r} is not in the map ({', '.join(list(exact)[:8])})")

    return look_up


def _split_name(argument: Any) -> Transform:
    if argument not in SPLIT_PARTS:
        raise ValueError("transform 'split_name' needs 'first' or 'last'")

    def split(text: str) -> str | None:
        if "," in text:
            last, _, first = text.partition(",")
        else:
            first, _, last = text.strip().rpartition(" ")
            if not first:
                first, last = last, ""
        part = first if argument == "first" else last
        return part.strip() or None

    return split
