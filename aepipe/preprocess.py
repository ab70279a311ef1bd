"""The tf.Transform preprocessing: what is analysed over the full dataset, and how each row is
transformed into model features (see `aepipe.features` for the feature layout).

Analysis costs the same number of analyzers whatever the number of columns: the numeric,
integer and boolean columns are stacked into one [batch, columns] matrix (nulls as NaN, which
TFT's analyzers skip) and each statistic is one analyzer over it with
``reduce_instance_dims=False``; the categorical columns' vocabularies are one analyzer
(`aepipe.vocabulary`), and each item set column's vocabulary one more. An item set's size joins
the numbers, so that it is analysed, modelled and decoded as an integer column.

Besides the features, the preprocessing function outputs each analyzer's result as a constant
(``__stat__<group>__<statistic>``, one vector per group of columns). TFT keeps no inverse of its
transform; these outputs let the exported model read the means, deviations and ranges back
from the transform graph itself, so the decoder and the manifest use exactly the numbers the
encoder used (`read_statistics`). They are never written with the transformed rows
(`statistic_outputs` lists them for `TransformDataset(exclude_outputs=...)`).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.tfxio import tensor_adapter

from aepipe import marginal, vocabulary
from aepipe.batches import (CATEGORY_FEED, CATEGORY_NULL_FEED, SCALAR_FEED, feed_columns,
                            item_feed, tft_feed_schema)
from aepipe.features import null_flag
from aepipe.options import ModelOptions
from aepipe.schema import Column, Kind, Schema, set_size

__all__ = ["tensor_adapter_config", "preprocessing_fn", "feed_tensors", "feature_sources",
           "statistic_outputs", "read_statistics", "read_vocabularies", "STATISTICS", "SCALARS",
           "NULLS", "CATEGORIES"]

STATISTICS = ("mean", "std", "min", "max", "null_rate", "quantiles")
# The row features, one matrix per kind, so that the graph's outputs do not grow with the
# columns: numbers and booleans as the model sees them, their nulls, category indices.
SCALARS, NULLS, CATEGORIES = "__scalars__", "__nulls__", "__categories__"
_STAT_PREFIX = "__stat__"
_SCALAR, _CATEGORICAL = "scalar", "categorical"


def tensor_adapter_config(schema: Schema) -> tensor_adapter.TensorAdapterConfig:
    """Tells TFT to read each per-kind list column of the feed as a dense [batch, columns]
    tensor, and each item set column as a [batch, None] sparse one."""
    feed = tft_feed_schema(schema)
    scalars, categoricals, items = feed_columns(schema)
    widths = {SCALAR_FEED: len(scalars), CATEGORY_FEED: len(categoricals),
              CATEGORY_NULL_FEED: len(categoricals)}
    representations = {
        name: schema_pb2.TensorRepresentation(
            dense_tensor=schema_pb2.TensorRepresentation.DenseTensor(
                column_name=name, shape=schema_pb2.FixedShape(
                    dim=[schema_pb2.FixedShape.Dim(size=widths[name])])))
        for name in widths if name in feed.names
    }
    representations.update({
        item_feed(c.name): schema_pb2.TensorRepresentation(
            varlen_sparse_tensor=schema_pb2.TensorRepresentation.VarLenSparseTensor(
                column_name=item_feed(c.name)))
        for c in items})
    return tensor_adapter.TensorAdapterConfig(feed, representations)


def preprocessing_fn(schema: Schema, *, top_k: int,
                     item_top_k: int = ModelOptions.item_top_k, numeric: str = "quantile"
                     ) -> Callable[[dict], dict]:
    """The TFT preprocessing function for a schema; `top_k` caps each categorical vocabulary,
    `item_top_k` each item set's, and `numeric` ("quantile" or "standard") says how numeric
    columns are scaled."""
    scalars, categoricals, items = feed_columns(schema)

    def fn(inputs: dict) -> dict:
        outputs: dict[str, tf.Tensor] = {}
        if scalars:
            outputs.update(_scalars(scalars, inputs[SCALAR_FEED], numeric))
        if categoricals:
            outputs.update(_categoricals(inputs[CATEGORY_FEED],
                                         inputs[CATEGORY_NULL_FEED] > 0, top_k))
        for column in items:
            outputs.update(_items(column.name, inputs[item_feed(column.name)], item_top_k))
        return outputs

    return fn


def feed_tensors(raw: Mapping[str, tf.Tensor], schema: Schema) -> dict[str, tf.Tensor]:
    """The TFT feed (`aepipe.batches.to_tft_feed`) as tensors, from the raw signature's
    per-column values and null masks (``c``, ``c__null``), and item set columns' items and
    sizes (``c``, ``c__size``)."""
    scalars, categoricals, items = feed_columns(schema)
    feed = {}
    if scalars:
        feed[SCALAR_FEED] = tf.stack([
            tf.cast(raw[c.name], tf.float32) if c.name not in schema.names else
            tf.where(raw[null_flag(c.name)], np.nan, tf.cast(raw[c.name], tf.float32))
            for c in scalars], axis=1)
    if categoricals:
        feed[CATEGORY_FEED] = tf.stack([
            tf.where(raw[null_flag(c.name)], b"", raw[c.name]) for c in categoricals], axis=1)
        feed[CATEGORY_NULL_FEED] = tf.stack([
            tf.cast(raw[null_flag(c.name)], tf.int64) for c in categoricals], axis=1)
    for column in items:
        feed[item_feed(column.name)] = tf.RaggedTensor.from_row_lengths(
            raw[column.name], raw[set_size(column).name], validate=False).to_sparse()
    return feed


def feature_sources(schema: Schema) -> dict[str, tuple[str, int | None]]:
    """Where each model feature (`aepipe.features`) lies in the preprocessing outputs: the
    output matrix and the column in it (None: the whole output, an item set's)."""
    scalars, categoricals, items = feed_columns(schema)
    sources: dict[str, tuple[str, int | None]] = {}
    for i, column in enumerate(scalars):
        sources[column.name] = (SCALARS, i)
        if column.nullable:
            sources[null_flag(column.name)] = (NULLS, i)
    sources.update({c.name: (CATEGORIES, i) for i, c in enumerate(categoricals)})
    sources.update({c.name: (item_feed(c.name), None) for c in items})
    return sources


def statistic_outputs(schema: Schema, *, numeric: str = "quantile") -> list[str]:
    """The names of the preprocessing outputs that carry analyzer results, not row features."""
    scalars, categoricals, items = feed_columns(schema)
    names = []
    if scalars:
        names += [_stat(_SCALAR, k) for k in STATISTICS
                  if k != "quantiles" or numeric == "quantile"]
    if categoricals:
        names += [_stat(_CATEGORICAL, k) for k in ("null_rate", "sizes", "tokens")]
    names += [_stat(item_feed(c.name), "tokens") for c in items]
    return names


def read_statistics(transformed: Mapping[str, np.ndarray], schema: Schema
                    ) -> dict[str, dict[str, float | list[float]]]:
    """Each modelled column's statistics (an item set's are its size's, named for the size),
    from one row of the preprocessing outputs."""
    row = {name: np.asarray(value)[0] for name, value in transformed.items()
           if name.startswith(_STAT_PREFIX)}
    scalars, categoricals, _ = feed_columns(schema)
    statistics: dict[str, dict[str, float | list[float]]] = {}
    for i, column in enumerate(scalars):
        statistics[column.name] = {k: float(row[_stat(_SCALAR, k)][i])
                                   for k in STATISTICS if k != "quantiles"}
    quantiles = row.get(_stat(_SCALAR, "quantiles"))
    if quantiles is not None:
        for column, boundaries in zip(scalars, quantiles.reshape(len(scalars), -1)):
            if column.kind is not Kind.BOOLEAN:
                statistics[column.name]["quantiles"] = boundaries.tolist()
    for i, column in enumerate(categoricals):
        statistics[column.name] = {"null_rate": float(row[_stat(_CATEGORICAL, "null_rate")][i])}
    return statistics


def read_vocabularies(transformed: Mapping[str, np.ndarray], schema: Schema
                      ) -> dict[str, list[str]]:
    """Each categorical and item set column's vocabulary, most frequent first, from one row
    of the preprocessing outputs."""
    _, columns, items = feed_columns(schema)
    vocabularies = {c.name: _text(np.asarray(transformed[_stat(item_feed(c.name), "tokens")])
                                  [0]) for c in items}
    if not columns:
        return vocabularies
    sizes = np.asarray(transformed[_stat(_CATEGORICAL, "sizes")])[0]
    tokens = np.asarray(transformed[_stat(_CATEGORICAL, "tokens")])[0]
    ends = np.cumsum(sizes)
    vocabularies.update({column.name: _text(tokens[end - size:end])
                         for column, size, end in zip(columns, sizes, ends)})
    return vocabularies


def _text(tokens: np.ndarray) -> list[str]:
    return [t.decode("utf-8", "replace") for t in tokens]


def _stat(group: str, statistic: str) -> str:
    return f"{_STAT_PREFIX}{group}__{statistic}"


def _repeat(value: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
    """A constant, flattened, repeated on `rows` rows."""
    return tf.repeat(tf.reshape(value, [1, -1]), rows, axis=0)


def _scalars(columns: list[Column], values: tf.Tensor, numeric: str) -> dict[str, tf.Tensor]:
    """Numeric, integer and boolean columns ([batch, columns], NaN for null), analysed
    together: one float feature each (a boolean's 0/1, a number's normal score or standardised
    value, 0 where null) and a null indicator each."""
    is_null = tf.cast(tf.math.is_nan(values), tf.float32)
    statistics = {"mean": tft.mean(values, reduce_instance_dims=False),
                  "std": tf.sqrt(tft.var(values, reduce_instance_dims=False)),
                  "min": tft.min(tf.where(is_null > 0.0, np.inf, values),
                                 reduce_instance_dims=False),
                  "max": tft.max(tf.where(is_null > 0.0, -np.inf, values),
                                 reduce_instance_dims=False),
                  "null_rate": tft.mean(is_null, reduce_instance_dims=False)}
    is_boolean = [c.kind is Kind.BOOLEAN for c in columns]
    features = tf.where(is_boolean, values, _scaled(values, statistics, numeric))
    features = tf.where(is_null > 0.0, 0.0, features)
    outputs = {SCALARS: features, NULLS: is_null}
    rows = tf.shape(values)[0]
    outputs.update({_stat(_SCALAR, k): _repeat(v, rows) for k, v in statistics.items()})
    return outputs


def _scaled(values: tf.Tensor, statistics: dict, numeric: str) -> tf.Tensor:
    """Every column as the model would see it if it were numeric: its normal score where
    quantiles are computed (they join `statistics`), else standardised."""
    if numeric == "quantile":
        statistics["quantiles"] = tft.quantiles(values, marginal.QUANTILES, marginal.EPSILON,
                                                reduce_instance_dims=False)
        knots = marginal.knots(statistics["quantiles"], statistics["min"], statistics["max"])
        return tf.transpose(marginal.to_normal(tf.transpose(values), knots))
    std = statistics["std"]
    return (values - statistics["mean"]) / tf.where(std > 0.0, std, 1.0)


def _categoricals(values: tf.Tensor, is_null: tf.Tensor, top_k: int) -> dict[str, tf.Tensor]:
    """A vocabulary index per cell of the categorical columns ([batch, columns] strings and
    null indicators), where V is the out-of-vocabulary bucket and V + 1 stands for null; the
    vocabularies and null rates of all columns are analysed together."""
    vocabularies = vocabulary.analyze(values, is_null, top_k=top_k)
    outputs = {CATEGORIES: vocabulary.lookup(vocabularies, values, is_null)}
    rows = tf.shape(values)[0]
    outputs[_stat(_CATEGORICAL, "null_rate")] = _repeat(
        tft.mean(tf.cast(is_null, tf.float32), reduce_instance_dims=False), rows)
    outputs[_stat(_CATEGORICAL, "sizes")] = _repeat(vocabularies.sizes, rows)
    outputs[_stat(_CATEGORICAL, "tokens")] = _repeat(vocabularies.tokens, rows)
    return outputs


def _items(name: str, sets: tf.SparseTensor, top_k: int) -> dict[str, tf.Tensor]:
    """An item set column ([batch, None] strings): the vocabulary of its `top_k` most frequent
    items, and each set as the vocabulary indices of its items in it."""
    items = sets.values[:, None]
    absent = tf.zeros_like(items, tf.bool)
    vocabularies = vocabulary.analyze(items, absent, top_k=top_k, name=f"items_{name}")
    index = vocabulary.lookup(vocabularies, items, absent)[:, 0]
    known = index < vocabularies.sizes[0]
    rows = sets.dense_shape[0]
    indices = tf.RaggedTensor.from_value_rowids(
        tf.boolean_mask(index, known), tf.boolean_mask(sets.indices[:, 0], known), nrows=rows,
        validate=False)
    return {item_feed(name): indices.to_sparse(),
            _stat(item_feed(name), "tokens"): _repeat(vocabularies.tokens, rows)}
