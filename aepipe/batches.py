"""Vectorised operations on Arrow record batches: row checks, the TFT feed and model inputs.

Everything on the hot path moves whole record batches; nothing here loops over rows except to
write the reason of a rejected row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aepipe.errors import SchemaError
from aepipe.features import null_flag
from aepipe.schema import Column, Kind, Schema, is_string_type

__all__ = [
    "REASON",
    "select",
    "split_valid",
    "tft_feed_schema",
    "to_tft_feed",
    "to_model_inputs",
    "rejected_schema",
    "as_table",
    "from_model_outputs",
    "as_text",
]

REASON = "reject_reason"

_INPUT_DTYPES = {
    Kind.NUMERIC: np.dtype(np.float32),
    Kind.INTEGER: np.dtype(np.int64),
    Kind.BOOLEAN: np.dtype(np.bool_),
    Kind.CATEGORICAL: np.dtype(object),
}
_PLACEHOLDERS = {Kind.NUMERIC: 0.0, Kind.INTEGER: 0, Kind.BOOLEAN: False, Kind.CATEGORICAL: ""}
_FEED_TYPES = {
    Kind.NUMERIC: pa.float32(),
    Kind.INTEGER: pa.int64(),
    Kind.BOOLEAN: pa.int64(),
    Kind.CATEGORICAL: pa.binary(),
}


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

    A row is rejected for a null where the schema forbids nulls, or a NaN or infinity in a
    numeric column. Unseen categories are not errors: the vocabulary maps them to its
    out-of-vocabulary bucket.
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
    mask = None
    if not column.nullable and array.null_count:
        mask = np.asarray(array.is_null())
    if column.kind is Kind.NUMERIC and pa.types.is_floating(array.type):
        not_finite = np.asarray(pc.fill_null(pc.invert(pc.is_finite(array)), False))
        if not_finite.any():
            mask = not_finite if mask is None else mask | not_finite
    return mask


def _describe(array: pa.Array, row: int) -> str:
    value = array[row].as_py()
    return "null where the schema forbids nulls" if value is None else f"{value} is not finite"


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


def tft_feed_schema(schema: Schema) -> pa.Schema:
    """The Arrow schema TFT reads: one list column per modelled column (empty list for null)."""
    return pa.schema([pa.field(c.name, pa.list_(_FEED_TYPES[c.kind])) for c in schema.modelled])


def to_tft_feed(batch: pa.RecordBatch, schema: Schema) -> pa.RecordBatch:
    """Turns plain columns into the list columns tfx-bsl wants: null -> [], value -> [value]."""
    return pa.RecordBatch.from_arrays(
        [_as_list(_feed_values(batch.column(c.name), c)) for c in schema.modelled],
        schema=tft_feed_schema(schema),
    )


def _feed_values(array: pa.Array, column: Column) -> pa.Array:
    if column.kind is Kind.CATEGORICAL:
        return pc.cast(_as_strings(array), pa.binary())
    if column.kind is Kind.BOOLEAN:
        return pc.cast(array, pa.int64())
    return pc.cast(array, _FEED_TYPES[column.kind])


def _as_list(values: pa.Array) -> pa.ListArray:
    present = np.asarray(values.is_valid())
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(present, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values.drop_null())


def _as_strings(array: pa.Array) -> pa.Array:
    """Categorical codes as strings: vocabularies are built over strings, whatever the input."""
    if is_string_type(array.type):
        return array
    return pc.cast(array, pa.string())


def to_model_inputs(batch: pa.RecordBatch, schema: Schema) -> dict[str, np.ndarray]:
    """The inputs of the exported `encode` and `score` signatures for a batch.

    Each modelled column gives its values (nulls filled with a placeholder) and a boolean null
    mask named ``<column>__null``.
    """
    inputs: dict[str, np.ndarray] = {}
    for column in schema.modelled:
        array = batch.column(column.name)
        inputs[null_flag(column.name)] = np.asarray(array.is_null())
        inputs[column.name] = _filled_values(array, column)
    return inputs


def _filled_values(array: pa.Array, column: Column) -> np.ndarray:
    if column.kind is Kind.CATEGORICAL:
        array = _as_strings(array)
    filled = pc.fill_null(array, _PLACEHOLDERS[column.kind])
    return filled.to_numpy(zero_copy_only=False).astype(_INPUT_DTYPES[column.kind], copy=False)


def from_model_outputs(values: np.ndarray, is_null: np.ndarray, column: Column,
                       arrow_type: pa.DataType) -> pa.Array:
    """A column of values and a null mask (as signatures take and return them) as an Arrow
    array of `arrow_type`: the inverse of `to_model_inputs` for one column."""
    if column.kind is Kind.CATEGORICAL:
        values = as_text(values)
    return pa.array(values, mask=np.asarray(is_null, bool)).cast(arrow_type)


def as_text(values: np.ndarray) -> np.ndarray:
    """Strings as TensorFlow returns them (bytes) as Python strings; strings stay as they are."""
    return np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                     for v in values], dtype=object)
