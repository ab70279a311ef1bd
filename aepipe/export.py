"""The exported SavedModel: the TFT transform and the autoencoder behind its signatures.

- ``encode``: raw features -> ``code`` (and ``score``, since both need the same transform);
- ``decode``: ``code`` -> values in the original units and categories, with null masks;
- ``generate``: ``code`` and ``uniform`` draws (`Feature.draws` per feature) -> the same, with
  flags, categories and quantile bins drawn from the decoder's probabilities instead of taking
  the most likely one, and numbers given the decoder's residual noise;
- ``sample``: standard normal ``noise`` (one per code dimension) and ``uniform`` draws (one
  for the prior's mixture component, then `generate`'s) -> synthetic rows: the noise becomes a
  code drawn from the prior fitted to the training codes (`aepipe.prior`), then `generate`;
- ``score``: raw features -> ``score``, the per-row reconstruction error;
- ``transform``: raw features -> the model's input features (the TFT output), for inspection.

Raw features are, per modelled column ``c``, the values ``c`` (float32 numeric, int64 integer,
bool boolean, string categorical; anything at null positions) and the mask ``c__null``. The
decoder's outputs use the same names. It loads with `tf.saved_model.load` alone.
"""

from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf

from aepipe import marginal
from aepipe.features import STATISTICS, bin_logits, null_flag, stat_name
from aepipe.model import Autoencoder
from aepipe.prior import Prior
from aepipe.schema import Kind, Schema

__all__ = ["AutoencoderModule", "transform_statistics", "save"]

_TF_DTYPES = {Kind.NUMERIC: tf.float32, Kind.INTEGER: tf.int64, Kind.BOOLEAN: tf.bool,
              Kind.CATEGORICAL: tf.string}


def _feed_dtype(kind: Kind) -> tf.DType:
    """The dtype TFT reads a column as: booleans are fed as 0/1 integers."""
    return tf.int64 if kind is Kind.BOOLEAN else _TF_DTYPES[kind]


def raw_signature(schema: Schema) -> dict[str, tf.TensorSpec]:
    spec = {}
    for column in schema.modelled:
        spec[column.name] = tf.TensorSpec([None], _TF_DTYPES[column.kind], name=column.name)
        flag = null_flag(column.name)
        spec[flag] = tf.TensorSpec([None], tf.bool, name=flag)
    return spec


def transform_statistics(tft_layer: Any, schema: Schema
                         ) -> dict[str, dict[str, float | list[float]]]:
    """Reads back the analyzers' results from the transform: one all-null row carries them."""
    one_null_row = {
        c.name: tf.sparse.SparseTensor(
            tf.zeros([0, 2], tf.int64),
            tf.zeros([0], _feed_dtype(c.kind)),
            [1, 1])
        for c in schema.modelled
    }
    transformed = tft_layer(one_null_row)
    statistics: dict[str, dict[str, float | list[float]]] = {}
    for column in schema.modelled:
        names = {k: stat_name(column.name, k) for k in STATISTICS}
        statistics[column.name] = {k: transformed[n][0].numpy().tolist()
                                   for k, n in names.items() if n in transformed}
    return statistics


class AutoencoderModule(tf.Module):
    """Holds the TFT layer, the autoencoder and the constants the decoder needs."""

    def __init__(self, *, tft_layer: Any, model: Autoencoder, schema: Schema,
                 statistics: Mapping[str, Mapping[str, float | list[float]]],
                 vocabularies: Mapping[str, list[str]], residual_std: Mapping[str, float],
                 prior: Prior):
        super().__init__()
        self.tft_layer = tft_layer
        self.model = model
        self._schema = schema
        self._statistics = {c: {k: tf.constant(v, tf.float32) for k, v in s.items()}
                            for c, s in statistics.items()}
        self._vocabularies = {c: tf.constant(v if v else [""], tf.string)
                              for c, v in vocabularies.items()}
        self._vocabulary_sizes = {c: len(v) for c, v in vocabularies.items()}
        self._residual_std = {c: tf.constant(v, tf.float32) for c, v in residual_std.items()}
        self._prior = prior
        signature = raw_signature(schema)
        self.encode = tf.function(self._encode, input_signature=[signature])
        self.score = tf.function(self._score, input_signature=[signature])
        self.transform = tf.function(self._features, input_signature=[signature])
        code = tf.TensorSpec([None, model.code_size], tf.float32, name="code")
        self._draws = sum(f.draws for f in model.layout)
        self.decode = tf.function(self._decode, input_signature=[code])
        self.generate = tf.function(self._generate, input_signature=[
            code, tf.TensorSpec([None, self._draws], tf.float32, name="uniform")])
        self.sample = tf.function(self._sample, input_signature=[
            tf.TensorSpec([None, model.code_size], tf.float32, name="noise"),
            tf.TensorSpec([None, prior.draws + self._draws], tf.float32, name="uniform")])

    def _transform(self, raw: dict) -> dict:
        sparse = {}
        for column in self._schema.modelled:
            values = tf.cast(raw[column.name], _feed_dtype(column.kind))
            is_null = raw[null_flag(column.name)]
            present = tf.where(tf.logical_not(is_null))
            sparse[column.name] = tf.SparseTensor(
                tf.concat([present, tf.zeros_like(present)], axis=1),
                tf.gather_nd(values, present),
                tf.stack([tf.shape(values, out_type=tf.int64)[0], 1]))
        return self.tft_layer(sparse)

    def _features(self, raw: dict) -> dict:
        transformed = self._transform(raw)
        return {name: transformed[name] for name in self.model.layout.names}

    def _encode(self, raw: dict) -> dict:
        features = self._transform(raw)
        code = self.model.encode(features)
        score = self.model.reconstruction_error(features, self.model.decode(code))
        return {"code": code, "score": score}

    def _score(self, raw: dict) -> dict:
        return {"score": self._encode(raw)["score"]}

    def _decode(self, code: tf.Tensor) -> dict:
        return self._original_units(self.model.decode(code), draws=None)

    def _generate(self, code: tf.Tensor, uniform: tf.Tensor) -> dict:
        draws = iter(tf.unstack(uniform, num=self._draws, axis=1))
        return self._original_units(self.model.decode(code), draws=draws)

    def _sample(self, noise: tf.Tensor, uniform: tf.Tensor) -> dict:
        """A code from the prior, decoded as `generate` does."""
        draws = self._prior.draws
        return self._generate(self._prior.codes(noise, uniform[:, :draws]), uniform[:, draws:])

    def _original_units(self, outputs: dict, draws) -> dict:
        """Decoder outputs as values and null masks in the original units and categories.

        Without `draws`, flags, categories and quantile bins take their most likely value and
        numbers the decoder's mean; with them (`Feature.draws` uniforms per feature, in feature
        order), flags, categories and bins are drawn from the decoder's probabilities, which
        keeps null rates, rare categories and the numbers' distributions at their rates, and
        numbers get normal noise with the residual deviation measured on validation rows.
        """
        decoded: dict[str, tf.Tensor] = {}
        for column in self._schema.modelled:
            value = outputs[column.name]
            flag = null_flag(column.name)
            if column.kind is Kind.CATEGORICAL:
                decoded[column.name], decoded[flag] = self._category(
                    column.name, column.nullable, value, draws)
                continue
            decoded[column.name] = (_flag(value, draws) if column.kind is Kind.BOOLEAN
                                    else self._scalar(column.kind, column.name, outputs, draws))
            decoded[flag] = (_flag(outputs[flag], draws) if flag in outputs
                             else tf.zeros_like(value, tf.bool))
        return decoded

    def _scalar(self, kind: Kind, name: str, outputs: dict, draws) -> tf.Tensor:
        stats = self._statistics[name]
        if "quantiles" in stats:
            knots = marginal.knots(stats["quantiles"], stats["min"], stats["max"])
            original = marginal.from_level(self._level(name, outputs, draws), knots)
        else:
            std = tf.where(stats["std"] > 0.0, stats["std"], 1.0)
            value = self._noisy(name, outputs[name], draws)
            original = tf.clip_by_value(value * std + stats["mean"], stats["min"], stats["max"])
        return tf.cast(tf.round(original), tf.int64) if kind is Kind.INTEGER else original

    def _noisy(self, name: str, value: tf.Tensor, draws) -> tf.Tensor:
        if draws is None:
            return value
        return value + self._residual_std[name] * tf.math.ndtri(
            tf.clip_by_value(next(draws), 1e-6, 1.0 - 1e-6))

    def _level(self, name: str, outputs: dict, draws) -> tf.Tensor:
        """Where a value lies in its column's distribution: in the bin drawn (or the likeliest),
        at the decoder's noisy value where that falls in the bin, else at a drawn position."""
        logits = outputs[bin_logits(name)]
        bins = tf.cast(tf.shape(logits)[1], tf.float32)
        chosen = tf.cast(_choose(logits, None if draws is None else next(draws)), tf.float32)
        low, high = chosen / bins, (chosen + 1.0) / bins
        level = marginal.level(self._noisy(name, outputs[name], draws))
        inside = (level >= low) & (level < high)
        if draws is None:
            return tf.clip_by_value(level, low, high)
        return tf.where(inside, level, low + next(draws) * (high - low))

    def _category(self, name: str, nullable: bool, logits: tf.Tensor, draws
                  ) -> tuple[tf.Tensor, tf.Tensor]:
        """A known category or null (never the out-of-vocabulary bucket)."""
        size = max(self._vocabulary_sizes[name], 1)
        allowed = logits[:, :size]
        if nullable:
            allowed = tf.concat([allowed, logits[:, size + 1:size + 2]], axis=1)
        choice = _choose(allowed, None if draws is None else next(draws))
        return tf.gather(self._vocabularies[name], tf.minimum(choice, size - 1)), choice == size


def _flag(logit: tf.Tensor, draws) -> tf.Tensor:
    """True where the flag is likely (no draws) or where a uniform draw falls under its odds."""
    if draws is None:
        return logit > 0.0
    return next(draws) < tf.sigmoid(logit)


def _choose(logits: tf.Tensor, uniform: tf.Tensor | None) -> tf.Tensor:
    """The most likely class, or one drawn by inverting the softmax's cumulative distribution."""
    if uniform is None:
        return tf.argmax(logits, axis=-1)
    cumulative = tf.cumsum(tf.nn.softmax(logits), axis=-1)
    drawn = tf.reduce_sum(tf.cast(cumulative < uniform[:, None], tf.int64), axis=-1)
    return tf.minimum(drawn, tf.cast(tf.shape(logits)[1] - 1, tf.int64))


def save(module: AutoencoderModule, path: str) -> None:
    tf.saved_model.save(module, path, signatures={
        "encode": module.encode, "decode": module.decode, "generate": module.generate,
        "sample": module.sample, "score": module.score, "transform": module.transform})

