"""The mapping file: which spreadsheet column feeds which API field, and how.

The YAML is composed into nodes (never constructed into objects) with every implicit type
resolver removed, so ``value: NO`` stays the text ``NO`` and ``value: 01234`` stays ``01234``:
constants reach the API exactly as written. Walking nodes also gives every error a line number
and lets duplicate keys, aliases and foreign tags be refused instead of silently resolved.
"""

import difflib
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from importer.errors import MappingError
from importer.mapping import transforms
from importer.mapping.fields import SERVER_SET_FIELDS, did_you_mean, standard_fields
from importer.mapping.transforms import Transform
from importer.readers.encodings import normalise_encoding
from importer.readers.text import DELIMITERS

FORBIDDEN_FIELDS = SERVER_SET_FIELDS
DEFAULT_REQUIRED_ANY = ("email", "first_name", "last_name")
TOP_KEYS = ("version", "object", "sheet", "header_row", "encoding", "delimiter", "fields",
            "required_any", "custom_fields", "allow_unknown_fields")
BOOLEANS = {"true": True, "false": False}
DELIMITER_WORDS = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|", "\\t": "\t"}
FIELD_KEYS = ("column", "value", "template", "transform", "default")
SOURCE_KEYS = ("column", "value", "template")
MAX_BYTES = 1 << 20
MAX_NODES = 20_000
STANDARD_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null",
                                                    "seq", "map")}
OBJECT_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
NULL_TEXT = ("", "~")
TEMPLATE_COLUMN = re.compile(r"\{([^{}]+)\}")


class _TextLoader(yaml.SafeLoader):
    """Safe loading with no implicit types: every plain scalar is the text that was written."""

    yaml_implicit_resolvers: dict[str, Any] = {}  # noqa: RUF012


@dataclass(frozen=True)
class FieldSpec:
    """Where one API field's value comes from: columns, a constant or a template."""

    name: str
    line: int
    columns: tuple[str, ...] = ()
    value: str | None = None
    template: str | None = None
    transforms: tuple[Transform, ...] = ()
    default: str | None = None
    transform_names: tuple[str, ...] = ()

    def source(self) -> str:
        """Where the value comes from, in words (for check-mapping)."""
        if self.value is not None:
            return f"the value {self.value!r}"
        if self.template is not None:
            return f"the template {self.template!r}"
        return "column " + " or ".join(repr(c) for c in self.columns)


@dataclass(frozen=True)
class ColumnMapping:
    """A validated mapping file, version 1."""

    path: Path
    digest: str
    fields: tuple[FieldSpec, ...]
    required_any: tuple[str, ...] = DEFAULT_REQUIRED_ANY
    object: str = "contacts"
    sheet: str | None = None
    header_row: int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    custom_fields: tuple[str, ...] = ()
    allow_unknown_fields: bool = False

    @property
    def known_fields(self) -> tuple[str, ...]:
        """The fields the API is known to accept: the object's standard ones and the
        account's custom fields listed in the mapping."""
        return standard_fields(self.object) + self.custom_fields


def load_mapping(path: Path) -> ColumnMapping:
    """Read and validate a mapping file; every problem is a ``MappingError`` with its line."""
    data = _read(path)
    root = _compose(path, data)
    mapping = _Builder(path).mapping(root)
    return replace(mapping, digest=_digest(root))


def _read(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise MappingError(f"{path}: is a folder; give the mapping's .yaml file")
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise MappingError(f"{path}: no such mapping file; check the --mapping path") from exc
    except OSError as exc:
        raise MappingError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if len(data) > MAX_BYTES:
        raise MappingError(f"{path}: is {len(data):,} bytes; a mapping file is a short YAML "
                           "file, check the --mapping path")
    return data


def _compose(path: Path, data: bytes) -> yaml.Node:
    try:
        text = data.decode("utf-8-sig")
        nodes = list(yaml.compose_all(text, Loader=_TextLoader))
    except UnicodeDecodeError as exc:
        raise MappingError(f"{path}: is not UTF-8 text; save the mapping as UTF-8") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" line {mark.line + 1}" if mark else ""
        raise MappingError(f"{path}{line}: not valid YAML ({exc.problem or exc.context})") from exc
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML ({exc})") from exc
    if not nodes or nodes[0] is None:
        raise MappingError(f"{path}: the mapping is empty; start from `routera-import init`")
    if len(nodes) > 1:
        raise MappingError(f"{path} line {nodes[1].start_mark.line + 1}: holds more than one "
                           "YAML document; keep one mapping per file")
    return nodes[0]


class _Builder:
    """Turns the node tree into a ``ColumnMapping``, checking each key where it is written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: set[int] = set()

    def fail(self, node: yaml.Node, message: str) -> MappingError:
        return MappingError(f"{self.path} line {node.start_mark.line + 1}: {message}")

    def mapping(self, root: yaml.Node) -> ColumnMapping:
        self._check_tree(root)
        top = self.pairs(root, "the mapping file", TOP_KEYS)
        if "version" not in top:
            raise self.fail(root, "no 'version'; add `version: 1` at the top")
        if self.text(top["version"], "version") != "1":
            raise self.fail(top["version"], "only `version: 1` is supported")
        if "fields" not in top:
            raise self.fail(root, "no 'fields'; list the API fields and the columns that feed them")
        fields = tuple(self.field_spec(k, v) for k, v in self.field_nodes(top["fields"]))
        object_name = self.object_name(top.get("object"))
        custom = self.custom_fields(top.get("custom_fields"))
        if not self.flag(top.get("allow_unknown_fields"), "allow_unknown_fields"):
            self.check_known(top["fields"], object_name, custom)
        return ColumnMapping(
            path=self.path,
            digest="",
            fields=fields,
            required_any=self.required_any(top.get("required_any"), fields),
            object=object_name,
            custom_fields=custom,
            allow_unknown_fields=self.flag(top.get("allow_unknown_fields"),
                                           "allow_unknown_fields"),
            sheet=self.optional_text(top.get("sheet"), "sheet"),
            header_row=self.header_row(top.get("header_row")),
            encoding=self.encoding(top.get("encoding")),
            delimiter=self.delimiter(top.get("delimiter")),
        )

    def custom_fields(self, node: yaml.Node | None) -> tuple[str, ...]:
        """The account's custom field names, as the API spells them."""
        if node is None:
            return ()
        items = node.value if isinstance(node, yaml.SequenceNode) else None
        if items is None:
            raise self.fail(node, "custom_fields must be a list of the account's custom field "
                            "names, such as [lead_source, postal_code]")
        names = []
        for item in items:
            name = self.text(item, "a custom field name").strip()
            if not name:
                raise self.fail(item, "a custom field name is empty")
            if name in FORBIDDEN_FIELDS:
                raise self.fail(item, f"{name!r} is set by the server, not a custom field; "
                                "remove it")
            names.append(name)
        return tuple(names)

    def flag(self, node: yaml.Node | None, what: str) -> bool:
        text = self.optional_text(node, what)
        if node is None or text is None:
            return False
        if text.strip().lower() not in BOOLEANS:
            raise self.fail(node, f"{what} must be true or false, not {text!r}")
        return BOOLEANS[text.strip().lower()]

    def check_known(self, fields: yaml.Node, object_name: str,
                    custom: tuple[str, ...]) -> None:
        """Every field must be one the API accepts: a standard field of the object or one of
        the account's custom fields. A misspelt name would otherwise be sent with every row
        and rejected by the API every time."""
        known = standard_fields(object_name) + custom
        for key_node, _ in fields.value:
            name = self.text(key_node, "a field name").strip()
            if name in known:
                continue
            where = (f"a standard field of {object_name}" if standard_fields(object_name)
                     else f"listed under custom_fields (the fields of {object_name!r} are not "
                     "known to this tool)")
            raise self.fail(key_node, f"field {name!r} is not {where}"
                            f"{did_you_mean(name, known)}; correct the name, or, if the "
                            f"account has a custom field {name!r}, list it: "
                            f"custom_fields: [{name}] (allow_unknown_fields: true turns this "
                            "check off)")

    def _check_tree(self, root: yaml.Node) -> None:
        """Refuse foreign tags and aliases anywhere, before any value is read."""
        count = 0
        stack = [root]
        while stack:
            node = stack.pop()
            count += 1
            if id(node) in self._seen or count > MAX_NODES:
                raise self.fail(node, "uses YAML aliases (&anchor / *alias) or is too large; "
                                "write each value out")
            self._seen.add(id(node))
            if node.tag not in STANDARD_TAGS:
                raise self.fail(node, f"the tag {node.tag.replace('tag:yaml.org,2002:', '!!')} "
                                "is not allowed in a mapping file; remove it")
            if isinstance(node, yaml.MappingNode):
                stack.extend(n for pair in node.value for n in pair)
            elif isinstance(node, yaml.SequenceNode):
                stack.extend(node.value)

    def pairs(self, node: yaml.Node, what: str,
              allowed: tuple[str, ...] | None) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a set of `key: value` lines")
        found: dict[str, yaml.Node] = {}
        keys: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = self.text(key_node, "a key")
            if key in found:
                raise self.fail(key_node, f"{key!r} is given twice in {what} (first on line "
                                f"{keys[key].start_mark.line + 1}); keep one")
            if allowed is not None and key not in allowed:
                raise self.fail(key_node, f"unknown key {key!r} in {what}{_hint(key, allowed)}")
            found[key], keys[key] = value_node, key_node
        return found

    def field_nodes(self, node: yaml.Node) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode) or not node.value:
            raise self.fail(node, "'fields' must list at least one `api_field: Column Name`")
        self.pairs(node, "'fields'", None)
        yield from node.value

    def field_spec(self, key_node: yaml.Node, node: yaml.Node) -> FieldSpec:
        name = self.text(key_node, "a field name").strip()
        line = key_node.start_mark.line + 1
        if not name:
            raise self.fail(key_node, "a field name is empty")
        if name in FORBIDDEN_FIELDS:
            raise self.fail(key_node, f"{name!r} is set by the server and cannot be imported; "
                            "remove it (map the source id to external_id instead)")
        if isinstance(node, yaml.ScalarNode | yaml.SequenceNode):
            return FieldSpec(name, line, columns=self.columns(node, name))
        keys = self.pairs(node, f"field {name!r}", FIELD_KEYS)
        sources = [k for k in SOURCE_KEYS if k in keys]
        if len(sources) != 1:
            raise self.fail(node, f"field {name!r} needs exactly one of column, value or "
                            f"template (found {', '.join(sources) or 'none'})")
        return FieldSpec(
            name,
            line,
            columns=self.columns(keys["column"], name) if "column" in keys else (),
            value=self.optional_text(keys.get("value"), f"{name}.value"),
            template=self.template(keys.get("template"), name),
            transforms=self.transform_list(keys.get("transform"), name),
            default=(self.optional_text(keys.get("default"), f"{name}.default") or "").strip()
            or None,
            transform_names=self.transform_names(keys.get("transform")),
        )

    def columns(self, node: yaml.Node, name: str) -> tuple[str, ...]:
        if isinstance(node, yaml.SequenceNode):
            if not node.value:
                raise self.fail(node, f"field {name!r}: the column list is empty")
            return tuple(self.column_name(n, name) for n in node.value)
        return (self.column_name(node, name),)

    def column_name(self, node: yaml.Node, name: str) -> str:
        column = self.text(node, f"field {name!r}'s column").strip()
        if not column:
            raise self.fail(node, f"field {name!r} has an empty column name")
        return column

    def template(self, node: yaml.Node | None, name: str) -> str | None:
        text = self.optional_text(node, f"{name}.template")
        if node is None or text is None:
            return None
        if not template_parts(text)[1]:
            raise self.fail(node, f"field {name!r}: the template names no column; write "
                            "columns as {Column Name}, as in \"{First Name} {Last Name}\"")
        return text

    def transform_list(self, node: yaml.Node | None, name: str) -> tuple[Transform, ...]:
        if node is None:
            return ()
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        return tuple(self.transform(item, name) for item in items)

    def transform_names(self, node: yaml.Node | None) -> tuple[str, ...]:
        if node is None:
            return ()
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        return tuple(item.value if isinstance(item, yaml.ScalarNode) else
                     f"{item.value[0][0].value}: ..." for item in items)

    def transform(self, node: yaml.Node, name: str) -> Transform:
        if isinstance(node, yaml.ScalarNode):
            kind, argument = self.text(node, "a transform"), None
        else:
            pairs = self.pairs(node, f"field {name!r}'s transform", None)
            if len(pairs) != 1:
                raise self.fail(node, f"field {name!r}: write each transform as a name or as "
                                "`name: argument`")
            ((kind, arg_node),) = pairs.items()
            argument = self.plain(arg_node)
        try:
            return transforms.build(kind.strip(), argument)
        except ValueError as exc:
            hint = _hint(kind, transforms.names()) if kind not in transforms.names() else ""
            raise self.fail(node, f"field {name!r}: {exc}{hint}") from exc

    def required_any(self, node: yaml.Node | None,
                     fields: tuple[FieldSpec, ...]) -> tuple[str, ...]:
        names: tuple[str, ...]
        if node is None:
            names = DEFAULT_REQUIRED_ANY
        elif isinstance(node, yaml.SequenceNode) and node.value:
            names = tuple(self.text(n, "required_any").strip() for n in node.value)
        else:
            raise self.fail(node, "required_any must be a list of field names, such as "
                            "[email, first_name, last_name]")
        if not {f.name for f in fields} & set(names):
            message = (f"none of the required_any fields ({', '.join(names)}) is mapped, so "
                       "every row would be invalid; map at least one of them")
            raise self.fail(node, message) if node else MappingError(f"{self.path}: {message}")
        return names

    def object_name(self, node: yaml.Node | None) -> str:
        name = self.optional_text(node, "object") or "contacts"
        if node is not None and not OBJECT_NAME.match(name):
            raise self.fail(node, f"object {name!r} must be a lowercase API object name such "
                            "as contacts")
        return name

    def header_row(self, node: yaml.Node | None) -> int | None:
        text = self.optional_text(node, "header_row")
        if node is None or text is None:
            return None
        if not text.isdigit() or int(text) < 1:
            raise self.fail(node, f"header_row must be a row number (1 or more), not {text!r}")
        return int(text)

    def encoding(self, node: yaml.Node | None) -> str | None:
        """A text encoding Python knows, by any usual name (``MS-DOS``, ``x-mac-roman``)."""
        text = self.optional_text(node, "encoding")
        if node is None or text is None:
            return None
        try:
            return normalise_encoding(text)
        except LookupError:
            raise self.fail(node, f"unknown encoding {text!r}; use a name such as utf-8, "
                            "cp1252, cp1250, MS-DOS (cp850) or x-mac-roman") from None

    def delimiter(self, node: yaml.Node | None) -> str | None:
        text = self.optional_text(node, "delimiter")
        if node is None or text is None:
            return None
        value = DELIMITER_WORDS.get(text.lower(), text)
        if value not in DELIMITERS:
            raise self.fail(node, f"delimiter must be one of , ; tab | (not {text!r})")
        return value

    def optional_text(self, node: yaml.Node | None, what: str) -> str | None:
        if node is None:
            return None
        if isinstance(node, yaml.ScalarNode) and node.style is None and node.value in NULL_TEXT:
            return None
        return self.text(node, what)

    def text(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{what} must be a single value, not a list or a block")
        return str(node.value)

    def plain(self, node: yaml.Node) -> Any:
        """A transform argument as plain text, lists and dicts (nothing else can appear)."""
        if isinstance(node, yaml.SequenceNode):
            return [self.plain(n) for n in node.value]
        if isinstance(node, yaml.MappingNode):
            return {k: self.optional_text(v, k) or "" for k, v in
                    self.pairs(node, "the table", None).items()}
        return self.optional_text(node, "a transform argument")


def _digest(root: yaml.Node) -> str:
    """A fingerprint of what the mapping says, not how it is written: comments, key order and
    quoting do not change it, so editing a comment does not invalidate earlier results."""
    def plain(node: yaml.Node) -> object:
        if isinstance(node, yaml.MappingNode):
            return sorted((plain(k), plain(v)) for k, v in node.value)
        if isinstance(node, yaml.SequenceNode):
            return [plain(n) for n in node.value]
        return node.value

    text = json.dumps(plain(root), ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def template_parts(template: str) -> tuple[list[str], list[str]]:
    """Literal texts and column names of a template: ``"{First} {Last}"`` -> (["", " ", ""], ...).

    There is always one more literal than columns; ``{{`` and ``}}`` stand for braces.
    """
    pieces = TEMPLATE_COLUMN.split(template.replace("{{", "\0").replace("}}", "\1"))
    literals = [p.replace("\0", "{").replace("\1", "}") for p in pieces[0::2]]
    return literals, [p.strip() for p in pieces[1::2]]


def _hint(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f"; expected one of: {', '.join(choices)}"
