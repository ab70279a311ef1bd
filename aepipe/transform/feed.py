"""The tf.Transform feed: one list column per group of the layout, so that the transform graph's
inputs do not grow with the number of columns.

- SCALARS: every scalar's value as float32, NaN for null (an item set's size counted from it);
- CATEGORIES: every categorical column's value as bytes, b"" for null, and CATEGORY_NULLS, 1
  where the cell is null;
- per item set column, `items_of(column)`: its items as bytes.

The feed is built from Arrow record batches when training (`to_feed`: tfx-bsl reads them with
`tensor_adapter_config`, no per-row dicts) and from the signatures' raw tensors inside the
exported model (`feed_tensors`), so that both go through the same transform graph.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.tfxio import tensor_adapter

from aepipe.table import signatures
from aepipe.table.arrow import as_strings
from aepipe.table.layout import CATEGORIES, SCALARS, Layout, items_of

__all__ = ["CATEGORY_NULLS", "feed_schema", "to_feed", "tensor_adapter_config", "feed_tensors"]

CATEGORY_NULLS = "__category_nulls__"


def feed_schema(layout: Layout) -> pa.Schema:
    """The Arrow schema tf.Transform reads: a list column per group, as wide as its columns,
    and a list column per item set column."""
    fields = [pa.field(SCALARS, pa.list_(pa.float32()))] if layout.scalars else []
    if layout.categoricals:
        fields += [pa.field(CATEGORIES, pa.list_(pa.binary())),
                   pa.field(CATEGORY_NULLS, pa.list_(pa.int64()))]
    fields += [pa.field(items_of(c.name), pa.list_(pa.binary())) for c in layout.item_sets]
    return pa.schema(fields)


def to_feed(batch: pa.RecordBatch, layout: Layout) -> pa.RecordBatch:
    """A record batch's modelled columns as the feed's rows."""
    arrays = []
    if layout.scalars:
        values = np.stack([_float_values(_scalar(batch, c.name, layout))
                           for c in layout.scalars], axis=1)
        arrays.append(_rows(pa.array(values.ravel(), pa.float32()), len(layout.scalars)))
    if layout.categoricals:
        columns = [pc.cast(as_strings(batch.column(c.name)), pa.binary())
                   for c in layout.categoricals]
        nulls = np.stack([np.asarray(c.is_null()) for c in columns], axis=1)
        filled = pa.concat_arrays([c.fill_null(b"") for c in columns])
        row_major = (np.arange(len(columns))[None, :] * batch.num_rows
                     + np.arange(batch.num_rows)[:, None]).ravel()
        arrays += [_rows(filled.take(pa.array(row_major)), len(columns)),
                   _rows(pa.array(nulls.ravel().astype(np.int64)), len(columns))]
    arrays += [pc.cast(pc.cast(batch.column(c.name), pa.list_(pa.string())),
                       pa.list_(pa.binary())) for c in layout.item_sets]
    return pa.RecordBatch.from_arrays(arrays, schema=feed_schema(layout))


def tensor_adapter_config(layout: Layout) -> tensor_adapter.TensorAdapterConfig:
    """Tells tf.Transform to read each group's list column as a dense [batch, columns] tensor,
    and each item set's as a [batch, None] sparse one."""
    widths = {SCALARS: len(layout.scalars), CATEGORIES: len(layout.categoricals),
              CATEGORY_NULLS: len(layout.categoricals)}
    schema = feed_schema(layout)
    representations = {
        name: schema_pb2.TensorRepresentation(
            dense_tensor=schema_pb2.TensorRepresentation.DenseTensor(
                column_name=name, shape=schema_pb2.FixedShape(
                    dim=[schema_pb2.FixedShape.Dim(size=width)])))
        for name, width in widths.items() if name in schema.names}
    representations.update({
        items_of(c.name): schema_pb2.TensorRepresentation(
            varlen_sparse_tensor=schema_pb2.TensorRepresentation.VarLenSparseTensor(
                column_name=items_of(c.name)))
        for c in layout.item_sets})
    return tensor_adapter.TensorAdapterConfig(schema, representations)


def feed_tensors(raw: Mapping[str, tf.Tensor], layout: Layout) -> dict[str, tf.Tensor]:
    """The feed as tensors, from the signatures' raw inputs."""
    feed = {}
    if layout.scalars:
        feed[SCALARS] = tf.stack([
            tf.cast(raw[c.name], tf.float32) if c.name in layout.counted_sets else
            tf.where(raw[signatures.null_name(c.name)], np.nan, tf.cast(raw[c.name], tf.float32))
            for c in layout.scalars], axis=1)
    if layout.categoricals:
        nulls = [raw[signatures.null_name(c.name)] for c in layout.categoricals]
        feed[CATEGORIES] = tf.stack([tf.where(null, b"", raw[c.name])
                                     for c, null in zip(layout.categoricals, nulls)], axis=1)
        feed[CATEGORY_NULLS] = tf.stack([tf.cast(null, tf.int64) for null in nulls], axis=1)
    for column in layout.item_sets:
        feed[items_of(column.name)] = tf.RaggedTensor.from_row_lengths(
            raw[column.name], raw[signatures.size_name(column.name)], validate=False).to_sparse()
    return feed


def _scalar(batch: pa.RecordBatch, name: str, layout: Layout) -> pa.Array:
    """A scalar column of the batch, or the sizes of the item sets it counts."""
    if name in batch.schema.names:
        return batch.column(name)
    return pc.list_value_length(batch.column(layout.counted_sets[name]))


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