"""The tf.Transform preprocessing: what is analysed over the full dataset, and how each row is
transformed into the model's input matrices (see `aepipe.table.layout`).

Analysis costs the same number of analyzers whatever the number of columns: each statistic of
the scalars (numeric, integer and boolean columns and item set sizes, one [batch, scalars]
matrix with nulls as NaN, which tf.Transform's analyzers skip) is one analyzer with
``reduce_instance_dims=False``; the categorical columns' vocabularies are one analyzer
(`aepipe.transform.vocabulary`), and each item set column's vocabulary one more.

Besides the row matrices, the preprocessing function outputs each analyzer's result as a
constant (``__stat__<group>__<statistic>``, one vector per group). tf.Transform keeps no inverse
of its transform; these outputs let the exported model read the means, deviations and ranges
back from the transform graph itself, so the decoder and the manifest use exactly the numbers
the encoder used (`read_statistics`). They are never written with the transformed rows
(`statistic_outputs` lists them for `TransformDataset(exclude_outputs=...)`).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from aepipe.table.kinds import Kind
from aepipe.table.layout import CATEGORIES, NULLS, SCALARS, Layout, items_of
from aepipe.transform import marginal, vocabulary
from aepipe.transform.feed import CATEGORY_NULLS

__all__ = ["preprocessing_fn", "statistic_outputs", "read_statistics", "read_vocabularies",
           "STATISTICS"]

STATISTICS = ("mean", "std", "min", "max", "null_rate", "quantiles")
_STAT_PREFIX = "__stat__"
_SCALAR, _CATEGORICAL = "scalar", "categorical"


def preprocessing_fn(layout: Layout, *, vocabulary_size: int, item_vocabulary_size: int,
                     numeric: str = "quantile") -> Callable[[dict], dict]:
    """The tf.Transform preprocessing function of a layout; `vocabulary_size` caps each
    categorical vocabulary, `item_vocabulary_size` each item set's, and `numeric` ("quantile"
    or "standard") says how numeric columns are scaled."""

    def fn(inputs: dict) -> dict:
        outputs: dict[str, tf.Tensor] = {}
        if layout.scalars:
            outputs.update(_scalars(layout, inputs[SCALARS], numeric))
        if layout.categoricals:
            outputs.update(_categoricals(inputs[CATEGORIES], inputs[CATEGORY_NULLS] > 0,
                                         vocabulary_size))
        for column in layout.item_sets:
            outputs.update(_items(column.name, inputs[items_of(column.name)],
                                  item_vocabulary_size))
        return outputs

    return fn


def statistic_outputs(layout: Layout, *, numeric: str = "quantile") -> list[str]:
    """The names of the preprocessing outputs that carry analyzer results, not row features."""
    names = []
    if layout.scalars:
        names += [_stat(_SCALAR, k) for k in STATISTICS
                  if k != "quantiles" or numeric == "quantile"]
    if layout.categoricals:
        names += [_stat(_CATEGORICAL, k) for k in ("null_rate", "sizes", "tokens")]
    names += [_stat(items_of(c.name), "tokens") for c in layout.item_sets]
    return names


def read_statistics(transformed: Mapping[str, np.ndarray], layout: Layout
                    ) -> dict[str, dict[str, float | list[float]]]:
    """Each scalar's and categorical's statistics, from one row of the preprocessing outputs."""
    row = {name: np.asarray(value)[0] for name, value in transformed.items()
           if name.startswith(_STAT_PREFIX)}
    statistics: dict[str, dict[str, float | list[float]]] = {}
    for i, column in enumerate(layout.scalars):
        statistics[column.name] = {k: float(row[_stat(_SCALAR, k)][i])
                                   for k in STATISTICS if k != "quantiles"}
    quantiles = row.get(_stat(_SCALAR, "quantiles"))
    if quantiles is not None:
        for column, boundaries in zip(layout.scalars,
                                      quantiles.reshape(len(layout.scalars), -1)):
            if column.kind is not Kind.BOOLEAN:
                statistics[column.name]["quantiles"] = boundaries.tolist()
    for i, column in enumerate(layout.categoricals):
        statistics[column.name] = {"null_rate": float(row[_stat(_CATEGORICAL, "null_rate")][i])}
    return statistics


def read_vocabularies(transformed: Mapping[str, np.ndarray], layout: Layout
                      ) -> dict[str, list[str]]:
    """Each categorical and item set column's vocabulary, most frequent first, from one row
    of the preprocessing outputs."""
    vocabularies = {c.name: _text(np.asarray(transformed[_stat(items_of(c.name), "tokens")])
                                  [0]) for c in layout.item_sets}
    if not layout.categoricals:
        return vocabularies
    sizes = np.asarray(transformed[_stat(_CATEGORICAL, "sizes")])[0]
    tokens = np.asarray(transformed[_stat(_CATEGORICAL, "tokens")])[0]
    ends = np.cumsum(sizes)
    vocabularies.update({column.name: _text(tokens[end - size:end])
                         for column, size, end in zip(layout.categoricals, sizes, ends)})
    return vocabularies


def _text(tokens: np.ndarray) -> list[str]:
    return [t.decode("utf-8", "replace") for t in tokens]


def _stat(group: str, statistic: str) -> str:
    return f"{_STAT_PREFIX}{group}__{statistic}"


def _repeat(value: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
    """A constant, flattened, repeated on `rows` rows."""
    return tf.repeat(tf.reshape(value, [1, -1]), rows, axis=0)


def _scalars(layout: Layout, values: tf.Tensor, numeric: str) -> dict[str, tf.Tensor]:
    """The scalars ([batch, scalars], NaN for null), analysed together: one float each (a
    boolean's 0/1, a number's normal score or standardised value, 0 where null) and a null
    indicator each."""
    is_null = tf.cast(tf.math.is_nan(values), tf.float32)
    statistics = {"mean": tft.mean(values, reduce_instance_dims=False),
                  "std": tf.sqrt(tft.var(values, reduce_instance_dims=False)),
                  "min": tft.min(tf.where(is_null > 0.0, np.inf, values),
                                 reduce_instance_dims=False),
                  "max": tft.max(tf.where(is_null > 0.0, -np.inf, values),
                                 reduce_instance_dims=False),
                  "null_rate": tft.mean(is_null, reduce_instance_dims=False)}
    features = tf.where(layout.is_value, _scaled(values, statistics, numeric), values)
    features = tf.where(is_null > 0.0, 0.0, features)
    outputs = {SCALARS: features, NULLS: is_null}
    rows = tf.shape(values)[0]
    outputs.update({_stat(_SCALAR, k): _repeat(v, rows) for k, v in statistics.items()})
    return outputs


def _scaled(values: tf.Tensor, statistics: dict, numeric: str) -> tf.Tensor:
    """Every column as the model would see it if it were numeric: its normal score where
    quantiles are computed (they join `statistics`), else standardised."""
    if numeric == "quantile":
        statistics["quantiles"] = marginal.thinned(
            tft.quantiles(values, marginal.QUANTILES, marginal.EPSILON,
                          reduce_instance_dims=False),
            tft.size(values[:, :1]))
        knots = marginal.knots(statistics["quantiles"], statistics["min"], statistics["max"])
        return tf.transpose(marginal.to_normal(tf.transpose(values), knots))
    return (values - statistics["mean"]) / marginal.divisor(statistics["std"])


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
    return {items_of(name): indices.to_sparse(),
            _stat(items_of(name), "tokens"): _repeat(vocabularies.tokens, rows)}
