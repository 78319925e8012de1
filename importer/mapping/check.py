"""What ``routera-import check-mapping`` reports: a mapping's validity, and its fit to a file."""

from dataclasses import dataclass, field
from pathlib import Path

from importer.mapping.binding import BoundMapping, bind
from importer.mapping.spec import ColumnMapping, FieldSpec, load_mapping
from importer.readers import ReadOptions, describe, open_table


@dataclass
class MappingCheck:
    """A valid mapping and, when a file was given, where each field's value comes from."""

    mapping: ColumnMapping
    source: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_mapping(path: Path, input_path: Path | None,
                  options: ReadOptions | None = None) -> MappingCheck:
    """Raises ``MappingError`` (or ``InputError``) exactly as a run would, before sending."""
    mapping = load_mapping(path)
    options = options or ReadOptions()
    check = MappingCheck(mapping, notes=_field_notes(mapping))
    if input_path is None:
        check.fields = [(spec.name, _described(spec, None)) for spec in mapping.fields]
        return check
    table = open_table(input_path, options.with_defaults(
        mapping.sheet, mapping.header_row, mapping.encoding, mapping.delimiter))
    bound, note = bind(mapping, table)
    check.source = describe(table)
    check.notes += [note] if note else []
    check.fields = [(spec.name, _described(spec, bound)) for spec in mapping.fields]
    used = set(bound.columns_used)
    check.unmatched = [h for i, h in enumerate(table.headers) if h and i not in used]
    return check


def _field_notes(mapping: ColumnMapping) -> list[str]:
    """How field names were checked, so a person knows what the check did not cover."""
    if mapping.allow_unknown_fields:
        return ["allow_unknown_fields: field names are sent unchecked (the API decides)"]
    if mapping.custom_fields:
        return [f"custom fields of the account: {', '.join(mapping.custom_fields)}"]
    return []


def _described(spec: FieldSpec, bound: BoundMapping | None) -> str:
    text = spec.source()
    if bound is not None and spec.name in bound.column_of:
        index = bound.column_of[spec.name]
        text = f"column {bound.headers[index]!r} ({bound.label(index)})"
    if spec.transform_names:
        text += f", then {', '.join(spec.transform_names)}"
    if spec.default is not None:
        text += f", default {spec.default!r}"
    return text
