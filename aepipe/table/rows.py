"""Rows as record batches: which rows a model can use, the dead-letter layout, row hashes.

Everything here is vectorised over whole record batches; nothing loops over rows except to
write the reason of a rejected row.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aepipe.errors import SchemaError
from aepipe.table.schema import Column, Kind, Schema

__all__ = ["REASON", "select", "split_valid", "rejected_schema", "as_table", "row_hashes"]

REASON = "reject_reason"


def select(batch: pa.RecordBatch, schema: Schema) -> pa.RecordBatch:
    """The schema's columns, in schema order; a missing column is a SchemaError naming it."""
    missing = [c.name for c in schema.columns
               if c.kind is not Kind.IGNORE and c.name not in batch.schema.names]
    if missing:
        raise SchemaError(f"input rows lack column(s) {missing} that the schema lists")
    names = [c.name for c in schema.columns if c.kind is not Kind.IGNORE]
    return batch.select(names)


def split_valid(batch: pa.RecordBatch, schema: Schema) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """Splits a batch into rows a model can use and rejected rows with a reason column.

    A row is rejected for a null where the schema forbids nulls, a NaN or infinity in a
    numeric column, a value with a fraction in an integer column stored as floats, or an item
    set that is null, empty or holds a null item. Unseen categories
    are not errors: the vocabulary maps them to its out-of-vocabulary bucket.
    """
    problems = {c.name: _problems(batch.column(c.name), c) for c in schema.columns
                if c.name in batch.schema.names}
    problems = {name: mask for name, mask in problems.items() if mask is not None}
    if not problems:
        return batch, _with_reasons(batch.slice(0, 0), [])
    bad = np.logical_or.reduce(list(problems.values()))
    if not bad.any():
        return batch, _with_reasons(batch.slice(0, 0), [])
    reasons = [
        "; ".join(f"{name}: {_describe(batch.column(name), row)}"
                  for name, mask in problems.items() if mask[row])
        for row in np.flatnonzero(bad)
    ]
    return batch.filter(pa.array(~bad)), _with_reasons(batch.filter(pa.array(bad)), reasons)


def _problems(array: pa.Array, column: Column) -> np.ndarray | None:
    if column.kind is Kind.ITEMS:
        return _item_set_problems(array)
    mask = None
    if not column.nullable and array.null_count:
        mask = np.asarray(array.is_null())
    if column.is_number and pa.types.is_floating(array.type):
        bad = pc.invert(pc.is_finite(array))
        if column.kind is Kind.INTEGER:
            bad = pc.or_(bad, pc.not_equal(array, pc.round(array)))
        bad = np.asarray(pc.fill_null(bad, False))
        if bad.any():
            mask = bad if mask is None else mask | bad
    return mask


def _item_set_problems(array: pa.Array) -> np.ndarray | None:
    """Rows whose item set is null or empty, or holds a null item."""
    sizes = np.asarray(pc.fill_null(pc.list_value_length(array), 0))
    mask = sizes == 0
    items = pc.list_flatten(array)
    if items.null_count:
        rows = np.asarray(pc.list_parent_indices(array))
        mask[rows[np.asarray(items.is_null())]] = True
    return mask if mask.any() else None


def _describe(array: pa.Array, row: int) -> str:
    value = array[row].as_py()
    if value is None:
        return "null where the schema forbids nulls"
    if isinstance(value, list):
        return "a null item in the set" if value else "an empty item set"
    if math.isfinite(value):
        return f"{value} is not a whole number"
    return f"{value} is not finite"


def _with_reasons(batch: pa.RecordBatch, reasons: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        batch.columns + [pa.array(reasons, pa.string())],
        schema=batch.schema.append(pa.field(REASON, pa.string())),
    )


def as_table(batch: pa.RecordBatch) -> pa.Table:
    """A one-batch table: what Beam's WriteToParquetBatched writes."""
    return pa.Table.from_batches([batch])


def rejected_schema(input_schema: pa.Schema) -> pa.Schema:
    """The Arrow schema of the dead-letter output for inputs of `input_schema`."""
    return input_schema.append(pa.field(REASON, pa.string()))


def row_hashes(table: pa.Table) -> np.ndarray:
    """A 64-bit hash of each row's contents (pandas' hash of the row); an item set's part is
    the sum of its items' hashes, so its order does not matter."""
    frame = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if not pa.types.is_list(column.type):
            frame[name] = column.to_pandas()
            continue
        hashes = np.zeros(len(column), np.uint64)
        np.add.at(hashes, pc.list_parent_indices(column).to_numpy(),
                  pd.util.hash_array(pc.list_flatten(column).to_numpy(zero_copy_only=False)))
        frame[name] = hashes
    return pd.util.hash_pandas_object(pd.DataFrame(frame), index=False).to_numpy()
