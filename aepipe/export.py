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
- ``transform``: raw features -> the model's input features (the TFT output), for inspection;
- ``recommend`` (with item set columns): raw features, ``top_k`` and ``exclude_seen`` -> per
  item set column ``c``, the ``c`` [batch, k] items the decoder finds likeliest (those in the
  input left out with ``exclude_seen``), their probabilities ``c__score`` among the items it
  may recommend, and how many of the k are real, ``c__size`` (fewer where too few items are
  left to recommend).

Raw features are, per modelled column ``c``, the values ``c`` (float32 numeric, int64 integer,
bool boolean, string categorical; anything at null positions) and the mask ``c__null``; per
item set column, its items ``c`` (strings, one set after the other) and each set's size
``c__size``. The decoder's outputs use the same names. It loads with `tf.saved_model.load`
alone.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import tensorflow as tf

from aepipe import marginal
from aepipe.features import null_flag
from aepipe.model import CATEGORIES, FLAGS, ITEMS, OUTPUTS, VALUES, Autoencoder, columns_of
from aepipe.batches import item_feed
from aepipe.preprocess import feature_sources, feed_tensors, read_statistics, read_vocabularies
from aepipe.prior import Prior
from aepipe.schema import Kind, Schema, set_size

__all__ = ["AutoencoderModule", "analysis_results", "save"]

_TF_DTYPES = {Kind.NUMERIC: tf.float32, Kind.INTEGER: tf.int64, Kind.BOOLEAN: tf.bool,
              Kind.CATEGORICAL: tf.string, Kind.ITEMS: tf.string}
TOP_K, EXCLUDE_SEEN = "top_k", "exclude_seen"  # the recommend signature's own inputs


def raw_signature(schema: Schema) -> dict[str, tf.TensorSpec]:
    spec = {}
    for column in schema.modelled:
        spec[column.name] = tf.TensorSpec([None], _TF_DTYPES[column.kind], name=column.name)
        second = (set_size(column).name, tf.int64) if column.kind is Kind.ITEMS else (
            null_flag(column.name), tf.bool)
        spec[second[0]] = tf.TensorSpec([None], second[1], name=second[0])
    return spec


def analysis_results(tft_layer: Any, schema: Schema
                     ) -> tuple[dict[str, dict[str, float | list[float]]], dict[str, list[str]]]:
    """The analyzers' results, read back from the transform (one all-null row carries them):
    each modelled column's statistics, and each categorical column's vocabulary."""
    one_null_row = {}
    for column in schema.modelled:
        if column.kind is Kind.ITEMS:
            one_null_row[column.name] = tf.zeros([0], tf.string)
            one_null_row[set_size(column).name] = tf.zeros([1], tf.int64)
            continue
        one_null_row[column.name] = tf.zeros([1], _TF_DTYPES[column.kind])
        one_null_row[null_flag(column.name)] = tf.ones([1], tf.bool)
    transformed = {k: v.numpy() for k, v in tft_layer(feed_tensors(one_null_row, schema)).items()
                   if isinstance(v, tf.Tensor)}
    return read_statistics(transformed, schema), read_vocabularies(transformed, schema)


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
        roles = model.roles
        self._values = _ValueColumns(roles.values, statistics, residual_std)
        self._vocabularies = {c: tf.constant(v if v else [""], tf.string)
                              for c, v in vocabularies.items()}
        self._vocabulary_sizes = {c: len(v) for c, v in vocabularies.items()}
        self._draw_index = _draw_positions(model)
        self._sources = feature_sources(schema)
        self._prior = prior
        signature = raw_signature(schema)
        self.encode = tf.function(self._encode, input_signature=[signature], autograph=False)
        self.score = tf.function(self._score, input_signature=[signature], autograph=False)
        self.transform = tf.function(self._features, input_signature=[signature],
                                     autograph=False)
        code = tf.TensorSpec([None, model.code_size], tf.float32, name="code")
        self._draws = sum(f.draws for f in model.layout)
        self.decode = tf.function(self._decode, input_signature=[code], autograph=False)
        self.generate = tf.function(self._generate, autograph=False, input_signature=[
            code, tf.TensorSpec([None, self._draws], tf.float32, name="uniform")])
        self.sample = tf.function(self._sample, autograph=False, input_signature=[
            tf.TensorSpec([None, model.code_size], tf.float32, name="noise"),
            tf.TensorSpec([None, prior.draws + self._draws], tf.float32, name="uniform")])
        self.recommend = tf.function(self._recommend, autograph=False, input_signature=[
            signature, tf.TensorSpec([], tf.int32, name=TOP_K),
            tf.TensorSpec([], tf.bool, name=EXCLUDE_SEEN)]) if model.roles.items else None

    def _transform(self, raw: dict) -> dict:
        return self.tft_layer(feed_tensors(raw, self._schema))

    def _features(self, raw: dict) -> dict:
        """The model's input features, taken from the preprocessing's per-kind matrices (an
        item set as a 0/1 row over its vocabulary)."""
        transformed = self._transform(raw)
        columns = {name: columns_of(transformed[name]) for name, index in
                   self._sources.values() if index is not None}
        features = {name: columns[matrix][index] for name, (matrix, index)
                    in self._sources.items() if index is not None}
        roles = self.model.roles
        if roles.items:
            features.update(zip([f.name for f in roles.items], roles.split_items(
                roles.item_sets(self._model_inputs(transformed)))))
        return {name: features[name] for name in self.model.layout.names}

    def _encode(self, raw: dict) -> dict:
        inputs = self._model_inputs(self._transform(raw))
        code = self.model.encode(inputs)
        score = self.model.reconstruction_error(inputs, self.model.decoder(code))
        return {"code": code, "score": score}

    def _model_inputs(self, transformed: dict) -> dict:
        """The model's input matrices, gathered from the preprocessing's per-kind ones."""
        roles, rows = self.model.roles, tf.shape(transformed[next(iter(transformed))])[0]
        inputs = {}
        if roles.items:
            inputs[ITEMS] = tf.concat([
                tf.sparse.to_dense(transformed[item_feed(f.column.name)],
                                   default_value=roles.item_classes - offset) + offset
                for f, offset in zip(roles.items, roles.item_offsets.tolist())], axis=1)
        for role, features, dtype in ((VALUES, roles.values, tf.float32),
                                      (FLAGS, roles.flags, tf.float32),
                                      (CATEGORIES, roles.categories, tf.int64)):
            sources = [self._sources[f.name] for f in features]
            matrices = sorted({matrix for matrix, _ in sources})
            starts = dict(zip(matrices, np.cumsum(
                [0] + [transformed[m].shape[1] for m in matrices[:-1]]).tolist()))
            inputs[role] = tf.gather(
                tf.concat([tf.cast(transformed[m], dtype) for m in matrices], axis=1),
                [starts[m] + i for m, i in sources], axis=1) if features else tf.zeros(
                [rows, 0], dtype)
        return inputs

    def _score(self, raw: dict) -> dict:
        return {"score": self._encode(raw)["score"]}

    def _recommend(self, raw: dict, top_k: tf.Tensor, exclude_seen: tf.Tensor) -> dict:
        """Per item set column, its `top_k` likeliest items for each row (see the module)."""
        roles = self.model.roles
        inputs = self._model_inputs(self._transform(raw))
        logits = roles.split_items(roles.parts(self.model(inputs)[OUTPUTS])["items"])
        seen = roles.split_items(roles.item_sets(inputs))
        recommended = {}
        for feature, scores, chosen in zip(roles.items, logits, seen):
            name, classes = feature.column.name, feature.classes
            left = tf.where(exclude_seen, classes - tf.reduce_sum(chosen, axis=1), classes)
            scores = tf.where(exclude_seen & (chosen > 0), -np.inf, scores)
            best = tf.math.top_k(scores, k=tf.minimum(top_k, classes))
            recommended[name] = tf.gather(self._vocabularies[name], best.indices)
            recommended[f"{name}__score"] = tf.exp(
                best.values - tf.reduce_logsumexp(scores, axis=1, keepdims=True))
            recommended[set_size(feature.column).name] = tf.cast(
                tf.minimum(tf.cast(top_k, tf.float32), left), tf.int32)
        return recommended

    def _decode(self, code: tf.Tensor) -> dict:
        return self._original_units(self.model.decoder(code), uniform=None)

    def _generate(self, code: tf.Tensor, uniform: tf.Tensor) -> dict:
        return self._original_units(self.model.decoder(code), uniform=uniform)

    def _sample(self, noise: tf.Tensor, uniform: tf.Tensor) -> dict:
        """A code from the prior, decoded as `generate` does."""
        draws = self._prior.draws
        return self._generate(self._prior.codes(noise, uniform[:, :draws]), uniform[:, draws:])

    def _original_units(self, raw: tf.Tensor, uniform: tf.Tensor | None) -> dict:
        """The decoder's output matrix as values and null masks in the original units and
        categories.

        Without `uniform` draws, flags, categories and quantile bins take their most likely
        value and numbers the decoder's mean; with them (`Feature.draws` per feature, in
        feature order), flags, categories and bins are drawn from the decoder's probabilities,
        which keeps null rates, rare categories and the numbers' distributions at their rates,
        and numbers get normal noise with the residual deviation measured on validation rows.
        """
        roles = self.model.roles
        outputs = roles.parts(raw)
        values = self._values.original(outputs, self._draws_of(roles.values, uniform))
        flags = _flags(outputs["flags"], self._draws_of(roles.flags, uniform))
        value_of = dict(zip([f.name for f in roles.values], columns_of(values)))
        flag_of = dict(zip([f.name for f in roles.flags], columns_of(flags)))
        category_at = {f.name: (int(offset), f.classes)
                       for f, offset in zip(roles.categories, roles.offsets)}
        item_logits = dict(zip([f.name for f in roles.items],
                               roles.split_items(outputs["items"])))
        decoded: dict[str, tf.Tensor] = {}
        for column in self._schema.modelled:
            name, flag = column.name, null_flag(column.name)
            if column.kind is Kind.ITEMS:
                size = set_size(column).name
                decoded[name], decoded[size] = self._item_set(
                    name, item_logits[name], value_of[size],
                    None if uniform is None else uniform[:, self._draw_index[name]])
                continue
            if column.kind is Kind.CATEGORICAL:
                start, classes = category_at[name]
                decoded[name], decoded[flag] = self._category(
                    name, column.nullable, outputs["categories"][:, start:start + classes],
                    None if uniform is None else uniform[:, self._draw_index[name]])
                continue
            if column.kind is Kind.BOOLEAN:
                decoded[name] = flag_of[name]
            else:
                value = value_of[name]
                decoded[name] = (tf.cast(tf.round(value), tf.int64)
                                 if column.kind is Kind.INTEGER else value)
            decoded[flag] = (flag_of[flag] if flag in flag_of
                             else tf.zeros_like(raw[:, 0], tf.bool))
        return decoded

    def _draws_of(self, features, uniform: tf.Tensor | None) -> tf.Tensor | None:
        """The [batch, features, draws] uniform draws of features that take the same number."""
        if uniform is None or not features:
            return None
        first = [self._draw_index[f.name] for f in features]
        return tf.stack([tf.gather(uniform, [i + k for i in first], axis=1)
                         for k in range(features[0].draws)], axis=-1)

    def _category(self, name: str, nullable: bool, logits: tf.Tensor,
                  uniform: tf.Tensor | None) -> tuple[tf.Tensor, tf.Tensor]:
        """A known category or null (never the out-of-vocabulary bucket)."""
        size = max(self._vocabulary_sizes[name], 1)
        allowed = logits[:, :size]
        if nullable:
            allowed = tf.concat([allowed, logits[:, size + 1:size + 2]], axis=1)
        choice = _choose(allowed, uniform)
        return tf.gather(self._vocabularies[name], tf.minimum(choice, size - 1)), choice == size


    def _item_set(self, name: str, logits: tf.Tensor, size: tf.Tensor,
                  uniform: tf.Tensor | None) -> tuple[tf.Tensor, tf.Tensor]:
        """Sets of the decoded size (at least one item, at most the vocabulary): the likeliest
        items, or items drawn from the decoder's probabilities without replacement (the
        Gumbel-top-k trick, its noise a hash of the row's uniform draw and the item)."""
        classes = max(self._vocabulary_sizes[name], 1)
        logits = logits[:, :classes]
        size = tf.cast(tf.clip_by_value(tf.round(size), 1.0, float(classes)), tf.int32)
        if uniform is not None:
            logits = logits + _gumbel(uniform, classes)
        best = tf.math.top_k(logits, k=tf.reduce_max(tf.concat([size, [1]], 0))).indices
        kept = tf.range(tf.shape(best)[1])[None, :] < size[:, None]
        items = tf.gather(self._vocabularies[name], tf.boolean_mask(best, kept))
        return items, tf.cast(size, tf.int64)


def _gumbel(uniform: tf.Tensor, classes: int) -> tf.Tensor:
    """[batch, classes] standard Gumbel noise, a function of each row's uniform draw: a 32-bit
    integer hash (lowbias32) of the draw's bits and the class index, as a uniform number."""
    seed = tf.cast(tf.cast(tf.clip_by_value(uniform, 0.0, 1.0) * 16_777_215.0, tf.int64),
                   tf.uint32)
    x = (seed[:, None] * tf.constant(0x9E3779B1, tf.uint32)
         + tf.cast(tf.range(classes), tf.uint32))
    for shift, multiplier in ((16, 0x7FEB352D), (15, 0x846CA68B)):
        x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, shift))
        x = x * tf.constant(multiplier, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    u = (tf.cast(tf.bitwise.right_shift(x, 8), tf.float32) + 0.5) / 16_777_216.0
    return -tf.math.log(-tf.math.log(u))


class _ValueColumns(tf.Module):
    """The value features' statistics as [values, ...] constants, and their decoding from the
    decoder's outputs into original units, all columns at once."""

    def __init__(self, features, statistics: Mapping[str, Mapping[str, Any]],
                 residual_std: Mapping[str, float]):
        super().__init__()
        stats = [statistics[f.column.name] for f in features]
        self._quantile = bool(stats) and "quantiles" in stats[0]
        self._residual_std = tf.constant([residual_std.get(f.name, 0.0) for f in features],
                                         tf.float32)
        if self._quantile:
            self._knots = marginal.knots(tf.constant([s["quantiles"] for s in stats], tf.float32),
                                         [s["min"] for s in stats], [s["max"] for s in stats])
        else:
            self._moments = {k: tf.constant([s[k] for s in stats], tf.float32)
                             for k in ("mean", "std", "min", "max")}

    def original(self, outputs: dict, draws: tf.Tensor | None) -> tf.Tensor:
        """[batch, values] in original units; `draws` [batch, values, 3 or 1] uniforms:
        the bin, the noise and the position in the bin (or only the noise, without bins)."""
        if not self._quantile:
            moments = self._moments
            std = tf.where(moments["std"] > 0.0, moments["std"], 1.0)
            value = self._noisy(outputs["values"], None if draws is None else draws[..., 0])
            return tf.clip_by_value(value * std + moments["mean"], moments["min"],
                                    moments["max"])
        levels = self._level(outputs["values"], outputs["bins"], draws)
        return tf.transpose(marginal.from_level(tf.transpose(levels), self._knots))

    def _noisy(self, value: tf.Tensor, uniform: tf.Tensor | None) -> tf.Tensor:
        if uniform is None:
            return value
        return value + self._residual_std * tf.math.ndtri(
            tf.clip_by_value(uniform, 1e-6, 1.0 - 1e-6))

    def _level(self, values: tf.Tensor, logits: tf.Tensor, draws: tf.Tensor | None
               ) -> tf.Tensor:
        """Where each value lies in its column's distribution: in the bin drawn (or the
        likeliest), at the decoder's noisy value where that falls in the bin, else at a drawn
        position."""
        bins = tf.cast(tf.shape(logits)[-1], tf.float32)
        chosen = tf.cast(_choose(logits, None if draws is None else draws[..., 0]), tf.float32)
        low, high = chosen / bins, (chosen + 1.0) / bins
        level = marginal.level(self._noisy(values, None if draws is None else draws[..., 1]))
        if draws is None:
            return tf.clip_by_value(level, low, high)
        inside = (level >= low) & (level < high)
        return tf.where(inside, level, low + draws[..., 2] * (high - low))


def _draw_positions(model: Autoencoder) -> dict[str, int]:
    """Where each feature's uniform draws start in `generate`'s `uniform` input."""
    positions, start = {}, 0
    for feature in model.layout:
        positions[feature.name] = start
        start += feature.draws
    return positions


def _flags(logits: tf.Tensor, draws: tf.Tensor | None) -> tf.Tensor:
    """True where a flag is likely (no draws) or where its uniform draw falls under its odds."""
    if draws is None:
        return logits > 0.0
    return draws[..., 0] < tf.sigmoid(logits)


def _choose(logits: tf.Tensor, uniform: tf.Tensor | None) -> tf.Tensor:
    """The most likely class (over the last axis), or one drawn by inverting the softmax's
    cumulative distribution with `uniform` (the logits' shape less the last axis)."""
    if uniform is None:
        return tf.argmax(logits, axis=-1)
    cumulative = tf.cumsum(tf.nn.softmax(logits), axis=-1)
    drawn = tf.reduce_sum(tf.cast(cumulative < uniform[..., None], tf.int64), axis=-1)
    return tf.minimum(drawn, tf.cast(tf.shape(logits)[-1] - 1, tf.int64))


def save(module: AutoencoderModule, path: str) -> None:
    signatures = {"encode": module.encode, "decode": module.decode, "generate": module.generate,
                  "sample": module.sample, "score": module.score, "transform": module.transform}
    if module.recommend is not None:
        signatures["recommend"] = module.recommend
    tf.saved_model.save(module, path, signatures=signatures)

