"""The tf.Transform preprocessing: what is analysed over the full dataset, and how each row is
transformed into model features (see `aepipe.features` for the feature layout).

Besides the features, the preprocessing function outputs each analyzer's result as a constant
column (``__stat__<column>__<statistic>``). TFT keeps no inverse of its transform; these outputs
let the exported model read the means, deviations and ranges back from the transform graph
itself, so the decoder and the manifest use exactly the numbers the encoder used.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.tfxio import tensor_adapter

from aepipe import marginal
from aepipe.batches import tft_feed_schema
from aepipe.features import null_flag, stat_name
from aepipe.schema import Column, Kind, Schema

__all__ = ["tensor_adapter_config", "preprocessing_fn"]


def tensor_adapter_config(schema: Schema) -> tensor_adapter.TensorAdapterConfig:
    """Tells TFT to read each list column of the feed as a [batch, 0 or 1] SparseTensor."""
    representations = {
        c.name: schema_pb2.TensorRepresentation(
            varlen_sparse_tensor=schema_pb2.TensorRepresentation.VarLenSparseTensor(
                column_name=c.name))
        for c in schema.modelled
    }
    return tensor_adapter.TensorAdapterConfig(tft_feed_schema(schema), representations)


def preprocessing_fn(schema: Schema, *, top_k: int, numeric: str = "quantile"
                     ) -> Callable[[dict], dict]:
    """The TFT preprocessing function for a schema; `top_k` caps each vocabulary and `numeric`
    ("quantile" or "standard") says how numeric columns are scaled."""

    def fn(inputs: dict) -> dict:
        outputs: dict[str, tf.Tensor] = {}
        for column in schema.modelled:
            sparse = inputs[column.name]
            if column.kind is Kind.CATEGORICAL:
                outputs.update(_categorical(column, sparse, top_k))
            else:
                outputs.update(_scalar(column, sparse, numeric))
        return outputs

    return fn


def _dense(sparse: tf.SparseTensor, default) -> tf.Tensor:
    return tf.squeeze(tft.sparse_tensor_to_dense_with_shape(sparse, [None, 1], default), axis=1)


def _is_null(sparse: tf.SparseTensor) -> tf.Tensor:
    present = tf.SparseTensor(sparse.indices, tf.ones_like(sparse.indices[:, 0], tf.float32),
                              sparse.dense_shape)
    return 1.0 - _dense(present, 0.0)


def _broadcast(value: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """A constant (scalar or vector) repeated on every row of `like`."""
    value = tf.cast(value, tf.float32)
    if value.shape.rank == 0:
        return tf.fill(tf.shape(like), value)
    return tf.zeros_like(like)[:, None] + tf.reshape(value, [1, -1])


def _scalar(column: Column, sparse: tf.SparseTensor, numeric: str) -> dict[str, tf.Tensor]:
    """Numeric, integer and boolean columns: one float value plus an optional null flag."""
    values = tf.cast(sparse, tf.float32)
    is_null = _is_null(values)
    dense = _dense(values, 0.0)
    statistics = {"mean": tft.mean(values), "std": tf.sqrt(tft.var(values)),
                  "min": tft.min(values), "max": tft.max(values), "null_rate": tft.mean(is_null)}
    if column.kind is Kind.BOOLEAN:
        feature = dense
    else:
        if numeric == "quantile":
            statistics["quantiles"] = tf.reshape(tft.quantiles(
                values.values, marginal.QUANTILES, marginal.EPSILON), [-1])
        feature = tf.where(is_null > 0.0, 0.0, _scaled(dense, statistics))
    outputs = {column.name: feature}
    if column.nullable:
        outputs[null_flag(column.name)] = is_null
    outputs.update({stat_name(column.name, k): _broadcast(v, is_null)
                    for k, v in statistics.items()})
    return outputs


def _scaled(dense: tf.Tensor, statistics: dict) -> tf.Tensor:
    """A numeric column as the model sees it: its normal score where quantiles were computed,
    else standardised."""
    if "quantiles" in statistics:
        knots = marginal.knots(statistics["quantiles"], statistics["min"], statistics["max"])
        return marginal.to_normal(dense, knots)
    std = statistics["std"]
    return (dense - statistics["mean"]) / tf.where(std > 0.0, std, 1.0)


def _categorical(column: Column, sparse: tf.SparseTensor, top_k: int) -> dict[str, tf.Tensor]:
    """A vocabulary index; V is the out-of-vocabulary bucket and V + 1 stands for null."""
    index = tft.compute_and_apply_vocabulary(
        sparse, top_k=top_k, num_oov_buckets=1, vocab_filename=column.name)
    null_index = tf.cast(tft.get_num_buckets_for_transformed_feature(index), tf.int64)
    feature = _dense(index, null_index)
    is_null = _is_null(sparse)
    return {column.name: feature,
            stat_name(column.name, "null_rate"): _broadcast(tft.mean(is_null), is_null)}
