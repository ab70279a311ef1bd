"""Vectorised operations on Arrow record batches: row checks, the TFT feed and model inputs.

Everything on the hot path moves whole record batches; nothing here loops over rows except to
write the reason of a rejected row.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aepipe.errors import SchemaError
from aepipe.features import null_flag
from aepipe.schema import SIZE_SUFFIX, Column, Kind, Schema, is_string_type, set_size

__all__ = [
    "REASON",
    "select",
    "split_valid",
    "SCALAR_FEED",
    "CATEGORY_FEED",
    "CATEGORY_NULL_FEED",
    "FeedColumns",
    "feed_columns",
    "item_feed",
    "item_sets",
    "tft_feed_schema",
    "to_tft_feed",
    "to_model_inputs",
    "rejected_schema",
    "as_table",
    "from_model_outputs",
    "as_text",
    "row_hashes",
]

REASON = "reject_reason"

_INPUT_DTYPES = {
    Kind.NUMERIC: np.dtype(np.float32),
    Kind.INTEGER: np.dtype(np.int64),
    Kind.BOOLEAN: np.dtype(np.bool_),
    Kind.CATEGORICAL: np.dtype(object),
}
_PLACEHOLDERS = {Kind.NUMERIC: 0.0, Kind.INTEGER: 0, Kind.BOOLEAN: False, Kind.CATEGORICAL: ""}


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
    numeric column, or an item set that is null, empty or holds a null item. Unseen categories
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
    if column.kind is Kind.NUMERIC and pa.types.is_floating(array.type):
        not_finite = np.asarray(pc.fill_null(pc.invert(pc.is_finite(array)), False))
        if not_finite.any():
            mask = not_finite if mask is None else mask | not_finite
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


# The TFT feed: one list column per kind of column, each row holding every column's value, so
# that the transform graph's inputs do not grow with the number of columns; and one per item
# set column, each row holding its set.
SCALAR_FEED = "__scalars__"  # numeric, integer and boolean columns as float32, NaN for null
CATEGORY_FEED = "__categories__"  # categorical columns as bytes, b"" for null
CATEGORY_NULL_FEED = "__category_nulls__"  # 1 where a categorical cell is null, else 0


def item_feed(name: str) -> str:
    """The feed column of an item set column (its items as bytes), and the preprocessing
    output of the same name (the vocabulary indices of those items)."""
    return f"__items__{name}"


class FeedColumns(NamedTuple):
    """The modelled columns by how the feed carries them: `scalars` (numeric, integer and
    boolean columns, then each item set's size, `schema.set_size`), `categoricals`, `items`."""

    scalars: list[Column]
    categoricals: list[Column]
    items: list[Column]


def feed_columns(schema: Schema) -> FeedColumns:
    """The modelled columns in the feed's order."""
    items = [c for c in schema.modelled if c.kind is Kind.ITEMS]
    return FeedColumns(
        [c for c in schema.modelled if c.kind not in (Kind.CATEGORICAL, Kind.ITEMS)]
        + [set_size(c) for c in items],
        [c for c in schema.modelled if c.kind is Kind.CATEGORICAL], items)


def tft_feed_schema(schema: Schema) -> pa.Schema:
    """The Arrow schema TFT reads: a list column per kind, as wide as that kind's columns, and
    a list column per item set column."""
    scalars, categoricals, items = feed_columns(schema)
    fields = [pa.field(SCALAR_FEED, pa.list_(pa.float32()))] if scalars else []
    if categoricals:
        fields += [pa.field(CATEGORY_FEED, pa.list_(pa.binary())),
                   pa.field(CATEGORY_NULL_FEED, pa.list_(pa.int64()))]
    fields += [pa.field(item_feed(c.name), pa.list_(pa.binary())) for c in items]
    return pa.schema(fields)


def to_tft_feed(batch: pa.RecordBatch, schema: Schema) -> pa.RecordBatch:
    """The columns of a batch as the feed's rows (see `tft_feed_schema`)."""
    scalars, categoricals, items = feed_columns(schema)
    arrays = []
    if scalars:
        values = np.stack([_float_values(_scalar_column(batch, c)) for c in scalars], axis=1)
        arrays.append(_rows(pa.array(values.ravel(), pa.float32()), len(scalars)))
    if categoricals:
        columns = [pc.cast(_as_strings(batch.column(c.name)), pa.binary()) for c in categoricals]
        nulls = np.stack([np.asarray(c.is_null()) for c in columns], axis=1)
        filled = pa.concat_arrays([c.fill_null(b"") for c in columns])
        row_major = (np.arange(len(columns))[None, :] * batch.num_rows
                     + np.arange(batch.num_rows)[:, None]).ravel()
        arrays += [_rows(filled.take(pa.array(row_major)), len(columns)),
                   _rows(pa.array(nulls.ravel().astype(np.int64)), len(columns))]
    arrays += [pc.cast(pc.cast(batch.column(c.name), pa.list_(pa.string())),
                       pa.list_(pa.binary())) for c in items]
    return pa.RecordBatch.from_arrays(arrays, schema=tft_feed_schema(schema))


def _scalar_column(batch: pa.RecordBatch, column: Column) -> pa.Array:
    """A scalar column of the feed: the batch's own, or the sizes of its item sets."""
    if column.name in batch.schema.names:
        return batch.column(column.name)
    return pc.list_value_length(batch.column(column.name.removesuffix(SIZE_SUFFIX)))


def item_sets(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """An item set column as the signatures take it: every item as a string, one set after
    the other, and each set's size."""
    items = pc.cast(pc.list_flatten(array), pa.string())
    sizes = pc.fill_null(pc.list_value_length(array), 0)
    return (items.to_numpy(zero_copy_only=False).astype(object),
            sizes.to_numpy(zero_copy_only=False).astype(np.int64))


def _float_values(array: pa.Array) -> np.ndarray:
    """A column's values as float32, NaN for null."""
    if pa.types.is_boolean(array.type):
        array = pc.cast(array, pa.int8())
    as_float = pc.cast(array, pa.float32(), safe=False)  # integers round as TFT's cast did
    return np.asarray(as_float.to_numpy(zero_copy_only=False), np.float32)


def _rows(values: pa.Array, width: int) -> pa.ListArray:
    """Flat row-major values as a list column of `width` values per row."""
    offsets = np.arange(0, len(values) + 1, width, dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _as_strings(array: pa.Array) -> pa.Array:
    """Categorical codes as strings: vocabularies are built over strings, whatever the input."""
    if is_string_type(array.type):
        return array
    return pc.cast(array, pa.string())


def to_model_inputs(batch: pa.RecordBatch, schema: Schema) -> dict[str, np.ndarray]:
    """The inputs of the exported `encode` and `score` signatures for a batch.

    Each modelled column gives its values (nulls filled with a placeholder) and a boolean null
    mask named ``<column>__null``; an item set column its items and sizes (`item_sets`), the
    sizes named ``<column>__size``.
    """
    inputs: dict[str, np.ndarray] = {}
    for column in schema.modelled:
        array = batch.column(column.name)
        if column.kind is Kind.ITEMS:
            inputs[column.name], inputs[set_size(column).name] = item_sets(array)
            continue
        inputs[null_flag(column.name)] = np.asarray(array.is_null())
        inputs[column.name] = _filled_values(array, column)
    return inputs


def _filled_values(array: pa.Array, column: Column) -> np.ndarray:
    if column.kind is Kind.CATEGORICAL:
        array = _as_strings(array)
    filled = pc.fill_null(array, _PLACEHOLDERS[column.kind])
    return filled.to_numpy(zero_copy_only=False).astype(_INPUT_DTYPES[column.kind], copy=False)


def from_model_outputs(outputs: dict[str, np.ndarray], column: Column,
                       arrow_type: pa.DataType) -> pa.Array:
    """A column's values and null mask (or items and sizes), as signatures take and return
    them, as an Arrow array of `arrow_type`: the inverse of `to_model_inputs` for one column."""
    if column.kind is Kind.ITEMS:
        sizes = outputs[set_size(column).name]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
        items = pa.array(as_text(outputs[column.name]), pa.string())
        return pa.ListArray.from_arrays(pa.array(offsets), items).cast(arrow_type)
    values, is_null = outputs[column.name], outputs[null_flag(column.name)]
    if column.kind is Kind.CATEGORICAL:
        values = as_text(values)
    return pa.array(values, mask=np.asarray(is_null, bool)).cast(arrow_type)


def as_text(values: np.ndarray) -> np.ndarray:
    """Strings as TensorFlow returns them (bytes) as Python strings; strings stay as they are."""
    return np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                     for v in values], dtype=object)


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
