"""Guessing a schema from Parquet files: what `aepipe infer-schema` writes for a user to review.

Kinds are guesses from the Arrow types and a sample of the rows: floats are numeric, but a
float column whose values are all whole numbers is integer (Parquet stores a whole-number column
with nulls as float: clock times, counts, years); integers are integer, but an integer column
whose values are all distinct is a key when its name says so (`id`, `user_id`, `key`) or the
sample has at least KEY_SAMPLE_ROWS rows; booleans are boolean, dates and timestamps timestamp;
strings are categorical unless nearly every value is distinct, which makes them a key; lists of
strings or integers are item sets. Anything else nested, or binary, is ignored. A column is
nullable when the sample has nulls (never an item set: see `Kind.ITEMS`). What was guessed from
the values rather than the type is said in `notes`, which the schema file carries as comments.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aepipe.errors import InputError
from aepipe.table.kinds import MODELLED_KINDS, Kind, is_item_set_type, is_string_type
from aepipe.table.schema import Column, Schema, modelable_name

__all__ = ["ColumnSample", "Guess", "infer_schema", "guess_from_files", "infer_from_files",
           "infer_for_evaluation", "SAMPLE_ROWS", "KEY_SAMPLE_ROWS"]

SAMPLE_ROWS = 100_000
KEY_SAMPLE_ROWS = 1_000  # all-distinct integers in a sample this large are a key, whatever
# the column's name
_KEY_DISTINCT_RATIO = 0.9
_KEY_NAME = re.compile(r"(^|_)(id|key|uuid)$", re.IGNORECASE)
WHOLE_FLOATS = "whole numbers stored as floats: integer"
DISTINCT_INTEGERS = "every value distinct: a key"


@dataclasses.dataclass(frozen=True)
class ColumnSample:
    """What a sample of rows says of a column."""

    rows: int = 0
    nulls: int = 0
    distinct_ratio: float = 0.0  # distinct values / non-null values
    whole: bool = False  # every non-null value a finite whole number (for floats)


@dataclasses.dataclass(frozen=True)
class Guess:
    """A guessed schema, and per column what was guessed from the values (for comments)."""

    schema: Schema
    notes: dict[str, str]


def infer_schema(arrow_schema: pa.Schema, samples: Mapping[str, ColumnSample]) -> Guess:
    """A schema guessed from an Arrow schema and what a sample says of each column."""
    columns, notes = [], {}
    for field in arrow_schema:
        column, note = _infer_column(field, samples.get(field.name, ColumnSample()))
        columns.append(column)
        if note:
            notes[field.name] = note
    return Guess(Schema(tuple(columns)), notes)


def _infer_column(field: pa.Field, sample: ColumnSample) -> tuple[Column, str | None]:
    t = pa.types
    kind, note = Kind.IGNORE, None
    if t.is_floating(field.type):
        kind, note = ((Kind.INTEGER, WHOLE_FLOATS) if sample.whole and sample.nulls < sample.rows
                      else (Kind.NUMERIC, None))
    elif t.is_integer(field.type):
        kind = Kind.INTEGER
        if sample.distinct_ratio == 1.0 and sample.nulls == 0 and (
                _KEY_NAME.search(field.name) or sample.rows >= KEY_SAMPLE_ROWS):
            kind, note = Kind.KEY, DISTINCT_INTEGERS
    elif t.is_boolean(field.type):
        kind = Kind.BOOLEAN
    elif t.is_timestamp(field.type) or t.is_date(field.type):
        kind = Kind.TIMESTAMP
    elif is_string_type(field.type):
        kind = Kind.KEY if sample.distinct_ratio > _KEY_DISTINCT_RATIO else Kind.CATEGORICAL
    elif is_item_set_type(field.type):
        kind = Kind.ITEMS
    if kind in MODELLED_KINDS and not modelable_name(field.name):
        kind, note = Kind.IGNORE, None
    return Column(name=field.name, kind=kind,
                  nullable=sample.nulls > 0 and kind is not Kind.ITEMS), note


def guess_from_files(pattern: str, *, sample_rows: int = SAMPLE_ROWS) -> Guess:
    """A schema guessed from the first file's columns and a sample of up to `sample_rows`
    rows, with notes."""
    from aepipe.io import files  # Beam's file systems: not at the top, for a fast --help

    paths = files.match(pattern)
    arrow_schema = files.parquet_file(paths[0]).schema_arrow
    sample = _sample(paths, arrow_schema, sample_rows)
    if sample.num_rows == 0:
        raise InputError(f"the input {pattern} holds no rows to infer a schema from")
    return infer_schema(arrow_schema, {name: _column_sample(sample.column(name))
                                       for name in sample.column_names})


def infer_from_files(pattern: str, *, sample_rows: int = SAMPLE_ROWS) -> Schema:
    """`guess_from_files`' schema."""
    return guess_from_files(pattern, sample_rows=sample_rows).schema


def infer_for_evaluation(pattern: str) -> Schema:
    """`infer_from_files`' guess, with dictionary columns as categories: training cannot read
    them, so the guess ignores them, but evaluation decodes them."""
    from aepipe.io import files

    guessed = infer_from_files(pattern)
    footer = files.parquet_file(files.match(pattern)[0])
    fields = footer.schema_arrow
    footer.close(force=True)
    columns = []
    for column in guessed.columns:
        arrow_type = fields.field(column.name).type
        if (column.kind is Kind.IGNORE and pa.types.is_dictionary(arrow_type)
                and Kind.CATEGORICAL.accepts(arrow_type.value_type)
                and modelable_name(column.name)):
            column = Column(column.name, Kind.CATEGORICAL, column.nullable)
        columns.append(column)
    return Schema(tuple(columns))


def _sample(paths: Sequence[str], arrow_schema: pa.Schema, rows: int) -> pa.Table:
    from aepipe.io import files

    tables, taken = [], 0
    for path in paths:
        for batch in files.parquet_file(path).iter_batches(batch_size=min(rows, 65_536)):
            tables.append(pa.Table.from_batches([batch]).cast(arrow_schema))
            taken += batch.num_rows
            if taken >= rows:
                return pa.concat_tables(tables).slice(0, rows)
    return pa.concat_tables(tables) if tables else arrow_schema.empty_table()


def _column_sample(column: pa.ChunkedArray) -> ColumnSample:
    present = column.drop_null()
    if len(present) == 0 or pa.types.is_nested(column.type):
        return ColumnSample(len(column), column.null_count)
    whole = False
    if pa.types.is_floating(column.type):
        values = present.to_numpy()
        whole = bool(np.isfinite(values).all() and (values == np.round(values)).all())
    return ColumnSample(len(column), column.null_count, len(pc.unique(present)) / len(present),
                        whole)
