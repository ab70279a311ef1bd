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
from aepipe.table.grain import Grain
from aepipe.table.kinds import Kind, is_string_type
from aepipe.table.schema import Column

__all__ = ["signature_inputs", "arrow_columns", "arrow_column", "string_tensor", "string_array",
           "string_arrays", "as_strings"]

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


def arrow_columns(outputs: Mapping[str, Any], columns: Sequence[Column],
                  arrow_types: Sequence[pa.DataType],
                  ranges: Mapping[str, Sequence[Any]] | None = None,
                  grains: Mapping[str, Grain] | None = None) -> list[pa.Array]:
    """Modelled columns of the given Arrow types from the raw outputs of `decode`, `generate`
    or `sample` (tensors or arrays): the inverse of `signature_inputs`. Every string output
    crosses in one buffer (`string_arrays`). A number with a grain (in `grains`) is put on it
    (`aepipe.table.grain`), and one with a range ([low, high] in `ranges`) kept within it, in
    its own type: the decoder's float32 arithmetic may land a hair outside a float64 column's
    range."""
    strings = [c.name for c in columns if c.kind in (Kind.CATEGORICAL, Kind.ITEMS)]
    as_text = dict(zip(strings, string_arrays([outputs[name] for name in strings])))
    arrays = [_arrow_column(outputs, as_text, column, arrow_type)
              for column, arrow_type in zip(columns, arrow_types)]
    grains = grains or {}
    arrays = [grains[column.name].apply(array) if column.name in grains else array
              for array, column in zip(arrays, columns)]
    return [_within(array, (ranges or {}).get(column.name))
            for array, column in zip(arrays, columns)]


def arrow_column(outputs: Mapping[str, Any], column: Column, arrow_type: pa.DataType
                 ) -> pa.Array:
    """One modelled column of `arrow_type` from the raw outputs (see `arrow_columns`)."""
    return arrow_columns(outputs, [column], [arrow_type])[0]


def _within(array: pa.Array, bounds: Sequence[Any] | None) -> pa.Array:
    if bounds is None:
        return array
    low, high = (pa.scalar(bound).cast(array.type) for bound in bounds)
    # skip_nulls=False: by default Arrow takes the bound where the value is null
    return pc.max_element_wise(pc.min_element_wise(array, high, skip_nulls=False), low,
                               skip_nulls=False)


def _arrow_column(outputs: Mapping[str, Any], as_text: Mapping[str, pa.StringArray],
                  column: Column, arrow_type: pa.DataType) -> pa.Array:
    if column.kind is Kind.ITEMS:
        sizes = np.asarray(outputs[signatures.size_name(column.name)])
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), as_text[column.name]).cast(arrow_type)
    is_null = np.asarray(outputs[signatures.null_name(column.name)], bool)
    if column.kind is Kind.CATEGORICAL:
        array = as_text[column.name]
    else:
        array = pa.array(np.asarray(outputs[column.name]))
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
    return string_arrays([tensor])[0]


def string_arrays(tensors: Sequence[Any]) -> list[pa.StringArray]:
    """Arrow string arrays of string tensors' values (each flattened): three TensorFlow ops for
    them all (concatenated, their lengths, one joined buffer), then zero-copy slices."""
    import tensorflow as tf

    if not tensors:
        return []
    flat = [tf.reshape(t, [-1]) if len(t.shape) != 1 else t for t in tensors]
    joined = flat[0] if len(flat) == 1 else tf.concat(flat, axis=0)
    lengths = tf.strings.length(joined).numpy()
    offsets = np.zeros(len(lengths) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    blob = tf.strings.reduce_join(joined).numpy()
    everything = pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets),
                                             pa.py_buffer(blob))
    starts = np.cumsum([0] + [int(t.shape[0]) for t in flat])
    return [everything.slice(start, end - start) for start, end in zip(starts[:-1], starts[1:])]


def as_strings(array: pa.Array) -> pa.Array:
    """Categorical codes (integers, booleans) as strings: vocabularies are built over
    strings, whatever the input."""
    return array if is_string_type(array.type) else pc.cast(array, pa.string())


def _combined(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
