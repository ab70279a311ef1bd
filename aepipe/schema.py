"""The schema file: which columns a model reads, what kind each one is, and whether it may be null.

A schema is the contract between a dataset and a model. It is small and human-edited (YAML), is
copied into every model's manifest, and is checked against the Arrow schema of every input file
before a job does any work.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import re
from typing import Any, Mapping

import pyarrow as pa
import yaml

from aepipe.errors import SchemaError

__all__ = ["Kind", "Column", "Schema", "MODELLED_KINDS", "infer_schema", "arrow_schema_to_json",
           "arrow_schema_from_json", "is_string_type", "is_item_set_type", "set_size"]

# Suffixes of derived features and signature inputs, which column names may not end with: a
# column's null indicator, and an item set's size.
NULL_SUFFIX = "__null"
SIZE_SUFFIX = "__size"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Kind(str, enum.Enum):
    """What a column is, which decides how it is transformed, modelled and decoded."""

    NUMERIC = "numeric"
    INTEGER = "integer"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    KEY = "key"
    TIMESTAMP = "timestamp"
    IGNORE = "ignore"
    ITEMS = "items"  # a set of items (list<string> or list<int64>), as in recommendation


MODELLED_KINDS = frozenset({Kind.NUMERIC, Kind.INTEGER, Kind.CATEGORICAL, Kind.BOOLEAN,
                            Kind.ITEMS})
PASSTHROUGH_KINDS = frozenset({Kind.KEY, Kind.TIMESTAMP})


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    nullable: bool = True

    @property
    def modelled(self) -> bool:
        return self.kind in MODELLED_KINDS

    def accepts(self, arrow_type: pa.DataType) -> bool:
        """Whether a Parquet column of `arrow_type` can feed this column."""
        t = pa.types
        if self.kind is Kind.NUMERIC:
            return t.is_floating(arrow_type) or t.is_integer(arrow_type)
        if self.kind is Kind.INTEGER:
            return t.is_integer(arrow_type)
        if self.kind is Kind.CATEGORICAL:
            return (is_string_type(arrow_type) or t.is_integer(arrow_type)
                    or t.is_boolean(arrow_type))
        if self.kind is Kind.BOOLEAN:
            return t.is_boolean(arrow_type)
        if self.kind is Kind.TIMESTAMP:
            return t.is_timestamp(arrow_type) or t.is_date(arrow_type)
        if self.kind is Kind.ITEMS:
            return is_item_set_type(arrow_type)
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind.value, "nullable": self.nullable}


@dataclasses.dataclass(frozen=True)
class Schema:
    """An ordered list of columns with unique names."""

    columns: tuple[Column, ...]

    def __post_init__(self):
        seen = set()
        for column in self.columns:
            if column.name in seen:
                raise SchemaError(f"column {column.name!r} is listed twice")
            seen.add(column.name)
            if column.modelled and (not _NAME.match(column.name)
                                    or column.name.endswith((NULL_SUFFIX, SIZE_SUFFIX))):
                raise SchemaError(
                    f"column {column.name!r}: a modelled column's name must match "
                    f"{_NAME.pattern} and not end with {NULL_SUFFIX!r} or {SIZE_SUFFIX!r}; "
                    "mark it 'ignore' or rename it"
                )
        if not self.modelled:
            raise SchemaError("the schema has no modelled column (numeric, integer, "
                              "categorical, boolean or items)")

    @property
    def modelled(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.modelled)

    @property
    def passthrough(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.kind in PASSTHROUGH_KINDS)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def __getitem__(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "schema") -> "Schema":
        if not isinstance(data, Mapping) or not isinstance(data.get("columns"), list):
            raise SchemaError(f"{source}: expected a mapping with a 'columns' list")
        return cls(tuple(_column_from_dict(entry, source, i)
                         for i, entry in enumerate(data["columns"])))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def load(cls, path: str) -> "Schema":
        """Reads and validates a schema file (local or any Beam file system)."""
        from aepipe import fileio

        try:
            text = fileio.read_text(path)
        except FileNotFoundError:
            raise SchemaError(f"schema file {path} does not exist") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SchemaError(f"{path}: not valid YAML: {e}") from None
        try:
            return cls.from_dict(data, source=path)
        except SchemaError as e:
            raise SchemaError(f"{path}: {e}" if not str(e).startswith(path) else str(e)) from None

    def save(self, path: str) -> None:
        from aepipe import fileio

        fileio.write_text(path, self.to_yaml())


def _column_from_dict(entry: Any, source: str, index: int) -> Column:
    if not isinstance(entry, Mapping) or "name" not in entry or "kind" not in entry:
        raise SchemaError(f"{source}: column #{index + 1} needs a 'name' and a 'kind'")
    unknown = set(entry) - {"name", "kind", "nullable"}
    if unknown:
        raise SchemaError(f"column {entry['name']!r}: unknown field(s) {sorted(unknown)}")
    try:
        kind = Kind(entry["kind"])
    except ValueError:
        kinds = ", ".join(k.value for k in Kind)
        raise SchemaError(
            f"column {entry['name']!r}: unknown kind {entry['kind']!r} (one of: {kinds})"
        ) from None
    nullable = entry.get("nullable", kind is not Kind.ITEMS)
    if not isinstance(nullable, bool):
        raise SchemaError(f"column {entry['name']!r}: 'nullable' must be true or false")
    if kind is Kind.ITEMS and nullable:
        raise SchemaError(f"column {entry['name']!r}: an item set column cannot be nullable; "
                          "a row whose set is null or empty goes to the dead letters")
    return Column(name=str(entry["name"]), kind=kind, nullable=nullable)


def is_string_type(arrow_type: pa.DataType) -> bool:
    """Whether an Arrow type holds strings (string or large_string)."""
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def is_item_set_type(arrow_type: pa.DataType) -> bool:
    """Whether an Arrow type holds sets of items: a list of strings or of integers."""
    t = pa.types
    return ((t.is_list(arrow_type) or t.is_large_list(arrow_type))
            and (is_string_type(arrow_type.value_type) or t.is_integer(arrow_type.value_type)))


def set_size(column: Column) -> Column:
    """The integer column an item set column derives: how many items each set holds. It is
    modelled like any integer column, so that sampling draws how many items to draw."""
    return Column(column.name + SIZE_SUFFIX, Kind.INTEGER, nullable=False)


def infer_schema(
    arrow_schema: pa.Schema,
    *,
    null_counts: Mapping[str, int],
    distinct_ratios: Mapping[str, float],
) -> Schema:
    """Guesses a schema from an Arrow schema and a sample's null counts and distinct ratios.

    Floats are numeric, integers integer, booleans boolean, dates and timestamps timestamp;
    strings are categorical unless nearly every value is distinct, which makes them a key;
    lists of strings or integers are item sets. Anything else nested, or binary, is ignored. A
    column is nullable when the sample has nulls (never an item set: see `Kind.ITEMS`).
    """
    return Schema(tuple(
        _infer_column(field, null_counts.get(field.name, 0), distinct_ratios.get(field.name, 0.0))
        for field in arrow_schema
    ))


def _infer_column(field: pa.Field, null_count: int, distinct_ratio: float) -> Column:
    t = pa.types
    kind = Kind.IGNORE
    if t.is_floating(field.type):
        kind = Kind.NUMERIC
    elif t.is_integer(field.type):
        kind = Kind.INTEGER
    elif t.is_boolean(field.type):
        kind = Kind.BOOLEAN
    elif t.is_timestamp(field.type) or t.is_date(field.type):
        kind = Kind.TIMESTAMP
    elif is_string_type(field.type):
        kind = Kind.KEY if distinct_ratio > 0.9 else Kind.CATEGORICAL
    elif is_item_set_type(field.type):
        kind = Kind.ITEMS
    if kind in MODELLED_KINDS and (not _NAME.match(field.name)
                                   or field.name.endswith((NULL_SUFFIX, SIZE_SUFFIX))):
        kind = Kind.IGNORE
    return Column(name=field.name, kind=kind,
                  nullable=null_count > 0 and kind is not Kind.ITEMS)



def arrow_schema_to_json(arrow_schema: pa.Schema) -> dict[str, Any]:
    """An Arrow schema as readable types plus its exact IPC serialisation (base64)."""
    return {
        "fields": [{"name": f.name, "type": str(f.type)} for f in arrow_schema],
        "ipc": base64.b64encode(arrow_schema.serialize().to_pybytes()).decode("ascii"),
    }


def arrow_schema_from_json(data: Mapping[str, Any]) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(data["ipc"])))
