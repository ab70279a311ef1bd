"""The schema file: which columns a model reads, what kind each one is, and whether it may be null.

A schema is the contract between a dataset and a model. It is small and human-edited (YAML), is
copied into every model's manifest, and is checked against the Arrow schema of every input file
before a job does any work.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from typing import Any, Mapping

import pyarrow as pa
import yaml

from aepipe.errors import SchemaError
from aepipe.table.kinds import MODELLED_KINDS, NUMBER_KINDS, PASSTHROUGH_KINDS, Kind
from aepipe.table.signatures import RESERVED_SUFFIXES

__all__ = ["Kind", "Column", "Schema", "arrow_schema_to_json", "arrow_schema_from_json",
           "modelable_name"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    nullable: bool = True

    @property
    def modelled(self) -> bool:
        return self.kind in MODELLED_KINDS

    @property
    def is_number(self) -> bool:
        """Numeric or integer: modelled as a number, its statistics in the manifest."""
        return self.kind in NUMBER_KINDS

    def accepts(self, arrow_type: pa.DataType) -> bool:
        """Whether a Parquet column of `arrow_type` can feed this column."""
        return self.kind.accepts(arrow_type)

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
            if column.modelled and not modelable_name(column.name):
                raise SchemaError(
                    f"column {column.name!r}: a modelled column's name must match "
                    f"{_NAME.pattern} and not end with "
                    f"{' or '.join(map(repr, RESERVED_SUFFIXES))}; mark it 'ignore' or rename it"
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

    def to_yaml(self, comments: Mapping[str, str] | None = None) -> str:
        """The schema file; `comments` (column -> text) go after their columns' entries."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        for name, comment in (comments or {}).items():
            entry = yaml.safe_dump([self[name].to_dict()], sort_keys=False)
            text = text.replace(entry, entry.rstrip("\n") + f"  # {comment}\n", 1)
        return text

    @classmethod
    def load(cls, path: str) -> "Schema":
        """Reads and validates a schema file (local or any Beam file system)."""
        from aepipe.io import files

        try:
            text = files.read_text(path)
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

    def save(self, path: str, comments: Mapping[str, str] | None = None) -> None:
        from aepipe.io import files

        files.write_text(path, self.to_yaml(comments))


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



def modelable_name(name: str) -> bool:
    """Whether a modelled column may take this name: the signatures' inputs are named after
    their columns (see aepipe.table.signatures)."""
    return bool(_NAME.match(name)) and not name.endswith(RESERVED_SUFFIXES)


def arrow_schema_to_json(arrow_schema: pa.Schema) -> dict[str, Any]:
    """An Arrow schema as readable types plus its exact IPC serialisation (base64)."""
    return {
        "fields": [{"name": f.name, "type": str(f.type)} for f in arrow_schema],
        "ipc": base64.b64encode(arrow_schema.serialize().to_pybytes()).decode("ascii"),
    }


def arrow_schema_from_json(data: Mapping[str, Any]) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(data["ipc"])))
