"""Guessing a schema from Parquet files: what `aepipe infer-schema` writes for a user to review.

Kinds are guesses from the Arrow types and a sample of the rows: floats are numeric, integers
integer, booleans boolean, dates and timestamps timestamp; strings are categorical unless nearly
every value is distinct, which makes them a key; lists of strings or integers are item sets.
Anything else nested, or binary, is ignored. A column is nullable when the sample has nulls
(never an item set: see `Kind.ITEMS`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from aepipe.errors import InputError
from aepipe.table.kinds import MODELLED_KINDS, Kind, is_item_set_type, is_string_type
from aepipe.table.schema import Column, Schema, modelable_name

__all__ = ["infer_schema", "infer_from_files", "infer_for_evaluation", "SAMPLE_ROWS"]

SAMPLE_ROWS = 100_000
_KEY_DISTINCT_RATIO = 0.9


def infer_schema(arrow_schema: pa.Schema, *, null_counts: Mapping[str, int],
                 distinct_ratios: Mapping[str, float]) -> Schema:
    """A schema guessed from an Arrow schema and a sample's null counts and distinct ratios."""
    return Schema(tuple(
        _infer_column(field, null_counts.get(field.name, 0), distinct_ratios.get(field.name, 0.0))
        for field in arrow_schema))


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
        kind = Kind.KEY if distinct_ratio > _KEY_DISTINCT_RATIO else Kind.CATEGORICAL
    elif is_item_set_type(field.type):
        kind = Kind.ITEMS
    if kind in MODELLED_KINDS and not modelable_name(field.name):
        kind = Kind.IGNORE
    return Column(name=field.name, kind=kind,
                  nullable=null_count > 0 and kind is not Kind.ITEMS)


def infer_from_files(pattern: str, *, sample_rows: int = SAMPLE_ROWS) -> Schema:
    """A schema guessed from the first file's columns and a sample of up to `sample_rows` rows."""
    from aepipe.io import files  # Beam's file systems: not at the top, for a fast --help

    paths = files.match(pattern)
    arrow_schema = files.parquet_file(paths[0]).schema_arrow
    sample = _sample(paths, arrow_schema, sample_rows)
    if sample.num_rows == 0:
        raise InputError(f"the input {pattern} holds no rows to infer a schema from")
    null_counts = {name: sample.column(name).null_count for name in sample.column_names}
    ratios = {name: _distinct_ratio(sample.column(name)) for name in sample.column_names}
    return infer_schema(arrow_schema, null_counts=null_counts, distinct_ratios=ratios)


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


def _distinct_ratio(column: pa.ChunkedArray) -> float:
    present = len(column) - column.null_count
    if present == 0 or pa.types.is_nested(column.type):
        return 0.0
    return len(pc.unique(column.drop_null())) / present
