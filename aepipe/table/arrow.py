"""Arrow columns to the signatures' raw tensors and back, without a Python object per value.

Numbers and booleans cross through numpy (nulls filled with a placeholder and masked by
``c__null``). Strings cross as one buffer each way: an Arrow string array's data buffer becomes
one scalar string tensor, cut into values by `tf.strings.substr` at the array's offsets; a
string tensor becomes one buffer again through `tf.strings.reduce_join`, with offsets from
`tf.strings.length`. Converting value by value (numpy object arrays of Python strings, then
bytes decoded one by one) cost more than the model itself on a busy machine.

TensorFlow is imported when a function runs, not with the module.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aepipe.table import signatures
from aepipe.table.kinds import Kind, is_string_type
from aepipe.table.schema import Column

__all__ = ["signature_inputs", "arrow_column", "string_tensor", "string_array", "as_strings"]

_PLACEHOLDERS = {Kind.NUMERIC: 0.0, Kind.INTEGER: 0, Kind.BOOLEAN: False}  # at null positions


def signature_inputs(batch: pa.RecordBatch, columns: Sequence[Column]) -> dict[str, Any]:
    """The raw inputs of the `encode`, `score`, `transform` and `recommend` signatures for the
    modelled `columns` of a (valid) batch, as tensors (see `aepipe.table.signatures`)."""
    import tensorflow as tf

    inputs = {}
    for column in columns:
        array = _combined(batch.column(column.name))
        if column.kind is Kind.ITEMS:
            sizes = pc.fill_null(pc.list_value_length(array), 0)
            inputs[column.name] = string_tensor(pc.list_flatten(array))
            inputs[signatures.size_name(column.name)] = tf.constant(
                sizes.to_numpy(zero_copy_only=False).astype(np.int64))
            continue
        inputs[signatures.null_name(column.name)] = tf.constant(
            np.asarray(array.is_null().to_numpy(zero_copy_only=False), bool))
        if column.kind is Kind.CATEGORICAL:
            inputs[column.name] = string_tensor(array)
            continue
        filled = pc.fill_null(array, _PLACEHOLDERS[column.kind])
        inputs[column.name] = tf.constant(filled.to_numpy(zero_copy_only=False).astype(
            signatures.DTYPES[column.kind], copy=False))
    return inputs


def arrow_column(outputs: Mapping[str, Any], column: Column, arrow_type: pa.DataType
                 ) -> pa.Array:
    """A modelled column of `arrow_type` from the raw outputs of `decode`, `generate` or
    `sample` (tensors or arrays): the inverse of `signature_inputs` for one column."""
    if column.kind is Kind.ITEMS:
        sizes = np.asarray(outputs[signatures.size_name(column.name)])
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
        items = string_array(outputs[column.name])
        return pa.ListArray.from_arrays(pa.array(offsets), items).cast(arrow_type)
    values = outputs[column.name]
    is_null = np.asarray(outputs[signatures.null_name(column.name)], bool)
    if column.kind is Kind.CATEGORICAL:
        array = string_array(values)
    else:
        array = pa.array(np.asarray(values))
    if is_null.any():
        array = pc.if_else(pa.array(is_null), pa.scalar(None, array.type), array)
    return array.cast(arrow_type)


def string_tensor(array: pa.Array) -> Any:
    """A [len(array)] string tensor of an Arrow array's values (strings, or codes cast to
    strings; nulls as empty strings), from its data buffer in one copy."""
    import tensorflow as tf

    array = pc.fill_null(as_strings(array), "")
    if pa.types.is_large_string(array.type):
        array = array.cast(pa.string())
    _, offsets, data = array.buffers()
    offsets = np.frombuffer(offsets, np.int32, len(array) + 1, array.offset * 4)
    blob = data.to_pybytes() if data is not None else b""
    return tf.strings.substr(tf.constant(blob), offsets[:-1], np.diff(offsets))


def string_array(tensor: Any) -> pa.StringArray:
    """An Arrow string array of a string tensor's values (flattened), from one joined buffer."""
    import tensorflow as tf

    tensor = tf.reshape(tensor, [-1])
    lengths = tf.strings.length(tensor).numpy()
    offsets = np.zeros(len(lengths) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    blob = tf.strings.reduce_join(tensor).numpy()
    return pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets), pa.py_buffer(blob))


def as_strings(array: pa.Array) -> pa.Array:
    """Categorical codes (integers, booleans) as strings: vocabularies are built over
    strings, whatever the input."""
    return array if is_string_type(array.type) else pc.cast(array, pa.string())


def _combined(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
