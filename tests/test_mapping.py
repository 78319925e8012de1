"""The mapping file: what it accepts, what it refuses (with the line), and how it binds."""

import json
from functools import reduce
from pathlib import Path

import jsonschema
import pytest
import yaml

from importer.errors import MappingError
from importer.mapping.binding import bind
from importer.mapping.spec import load_mapping
from importer.readers import ReadOptions, open_table
from importer.readers.layout import join


def load(tmp_path: Path, text: str):
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    return load_mapping(path)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(MappingError) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    assert "\n" not in message
    return message.removeprefix(str(tmp_path / "m.yaml"))


@pytest.mark.parametrize(("text", "message"), [
    ("version: 1\nfields:\n  email: {colum: E}\n",
     " line 3: unknown key 'colum' in field 'email' (did you mean 'column'?)"),
    ("version: 1\nfeilds:\n  email: E\n",
     " line 2: unknown key 'feilds' in the mapping file (did you mean 'fields'?)"),
    ("version: 1\nfields:\n  id: Customer ID\n",
     " line 3: 'id' is set by the server and cannot be imported; remove it (map the source id "
     "to external_id instead)"),
    ("version: 1\nfields:\n  email: A\n  email: B\n",
     " line 4: 'email' is given twice in 'fields' (first on line 3); keep one"),
    ("version: 1\nfields:\n  email: {column: E, transform: [lowr]}\n",
     " line 3: field 'email': unknown transform 'lowr' (did you mean 'lower'?)"),
    ("version: 1\nfields: !!python/object/apply:os.system [echo pwned]\n",
     " line 2: the tag !!python/object/apply:os.system is not allowed in a mapping file; "
     "remove it"),
    ("version: 2\nfields:\n  email: E\n", " line 1: only `version: 1` is supported"),
    ("fields:\n  email: E\n", " line 1: no 'version'; add `version: 1` at the top"),
    ("version: 1\nfields:\n  email: {column: E, value: x}\n",
     " line 3: field 'email' needs exactly one of column, value or template (found column, "
     "value)"),
    ("version: 1\nfields:\n  email: [E\n", " line 4: not valid YAML (expected ',' or ']', but "
     "got '<stream end>')"),
    ("version: 1\nfields:\n  phone: P\n", ": none of the required_any fields (email, "
     "first_name, last_name) is mapped, so every row would be invalid; map at least one of them"),
    ("", ": the mapping is empty; start from `routera-import init`"),
])
def test_bad_mappings_name_the_line_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    assert error(tmp_path, text) == message


def test_python_tags_are_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    error(tmp_path, f"version: 1\nfields:\n  email: !!python/object/apply:os.system "
                    f"['touch {marker}']\n")
    assert not marker.exists()


def test_yaml_1_1_surprises_are_kept_as_written(tmp_path: Path) -> None:
    mapping = load(tmp_path, "version: 1\nallow_unknown_fields: true\nfields:\n  email: E\n"
                             "  a: {value: NO}\n  b: {value: 01234}\n  c: {value: 12:30}\n"
                             "  d: {value: 2024-03-01}\n  e: {value: 1e3}\n  f: {value: ~}\n"
                             "  g: {column: G, default: off}\n")
    values = {f.name: f.value for f in mapping.fields}
    assert values == {"email": None, "a": "NO", "b": "01234", "c": "12:30", "d": "2024-03-01",
                      "e": "1e3", "f": None, "g": None}
    assert mapping.fields[-1].default == "off"


def _bind(tmp_path: Path, mapping_text: str, csv_text: str):
    (tmp_path / "in.csv").write_text(csv_text, encoding="utf-8")
    table = open_table(tmp_path / "in.csv", ReadOptions())
    return bind(load(tmp_path, mapping_text), table)[0], table


def test_headers_match_exactly_then_ignoring_case_and_spaces(tmp_path: Path) -> None:
    bound, table = _bind(tmp_path, "version: 1\nfields:\n  email: e-mail  address\n"
                         "  first_name: [Given name, First Name]\n",
                         "First Name, E-Mail Address ,FIRST NAME\nAda,a@x.io,Grace\n")
    batch = bound.apply(reduce(join, table.batches()))
    assert batch.fields(0) == {"email": "a@x.io", "first_name": "Ada"}


def test_missing_column_lists_the_headers_that_exist(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as caught:
        _bind(tmp_path, "version: 1\nfields:\n  email: Email\n", "Mail,Name\nx,y\n")
    assert str(caught.value) == (f"{tmp_path / 'm.yaml'} line 3: field 'email' maps column "
                                 "'Email', which is not in in.csv; its headers are: Mail, Name")


def test_a_repeated_header_is_an_error_only_when_mapped(tmp_path: Path) -> None:
    csv_text = "Email,Name,Email\na@x.io,Ada,b@x.io\n"
    _bind(tmp_path, "version: 1\nfields:\n  first_name: Name\n", csv_text)
    with pytest.raises(MappingError, match=r"column 'Email' appears 2 times in in.csv "
                       r"\(columns A and C\); rename one of them in the file"):
        _bind(tmp_path, "version: 1\nfields:\n  email: Email\n", csv_text)


def test_constants_defaults_and_transforms(tmp_path: Path) -> None:
    bound, table = _bind(tmp_path, """\
version: 1
custom_fields: [lead_source]
fields:
  email: {column: Email, transform: [trim, lower]}
  company: {column: Company, default: Unknown}
  lead_source: {value: nightly-migration}
  last_name: {column: Name, transform: [upper]}
""", "Email,Company,Name\n  ADA@X.IO ,,lovelace\nb@x.io,Acme,\n")
    batch = bound.apply(reduce(join, table.batches()))
    assert batch.fields(0) == {"email": "ada@x.io", "company": "Unknown",
                               "lead_source": "nightly-migration", "last_name": "LOVELACE"}
    assert batch.fields(1) == {"email": "b@x.io", "company": "Acme",
                               "lead_source": "nightly-migration"}


SCHEMA = Path(__file__).parent.parent / "mappings" / "mapping.schema.json"
EXAMPLES = sorted((Path(__file__).parent.parent / "mappings").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_mappings_are_valid_for_the_loader_and_the_editor_schema(example: Path) -> None:
    load_mapping(example)
    jsonschema.validate(yaml.safe_load(example.read_text(encoding="utf-8")),
                        json.loads(SCHEMA.read_text(encoding="utf-8")))


@pytest.mark.parametrize("text", [
    "version: 1\nfields:\n  email: {colum: E}\n",
    "version: 1\nfields:\n  id: Customer ID\n",
    "version: 1\nfields:\n  email: {column: E, value: x}\n",
    "version: 1\nfields:\n  email: {column: E, transform: [lowr]}\n",
    "version: 2\nfields:\n  email: E\n",
    "version: 1\nfields: {}\n",
])
def test_the_editor_schema_refuses_what_the_loader_refuses(tmp_path: Path, text: str) -> None:
    error(tmp_path, text)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(text), json.loads(SCHEMA.read_text(encoding="utf-8")))


def test_templates_join_columns_without_touching_values(tmp_path: Path) -> None:
    bound, table = _bind(tmp_path, "version: 1\ncustom_fields: [notes]\nfields:\n"
                         "  first_name: {template: \"{Last}, {First}\"}\n"
                         "  notes: {template: \"Ref {Id}\"}\n",
                         'Last,First,Id\nKing,Ada  Augusta,7\n,Grace,\n"O\nBrien",,\n')
    batch = bound.apply(reduce(join, table.batches()))
    assert batch.values["first_name"] == ["King, Ada  Augusta", "Grace", "O\nBrien"]
    assert batch.values["notes"] == ["Ref 7", None, None]


def test_an_empty_default_is_no_default_and_bad_date_formats_are_refused(
        tmp_path: Path) -> None:
    mapping = load(tmp_path, "version: 1\nfields:\n  email: {column: E, default: '  '}\n")
    assert mapping.fields[0].default is None
    assert "needs input formats that strptime understands" in error(
        tmp_path, "version: 1\nfields:\n  email: {column: E, transform: [{date: '%Q'}]}\n")
