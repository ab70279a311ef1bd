"""The decoder's outputs in the original units: TensorFlow functions the exported signatures
call (`aepipe.model.export`).

Without uniform draws, flags, categories and quantile bins take their most likely value and numbers
the decoder's mean (`decode`): in original units where the decoder has them (its `means`, with
quantile bins), else its normal score's value. With them (`generate`, `sample`), flags, categories
and bins are drawn from the decoder's probabilities, which keeps null rates, rare categories and the
numbers' distributions at their rates, and numbers get normal noise with the residual deviation
measured on held-out rows.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import tensorflow as tf

from aepipe.table import signatures
from aepipe.transform import marginal

__all__ = ["Values", "flags", "choose", "item_set", "top_items"]


class Values(tf.Module):
    """The value scalars' statistics as [values, ...] constants, and their decoding from the
    decoder's outputs into original units, all columns at once."""

    def __init__(self, names: Sequence[str], statistics: Mapping[str, Mapping[str, Any]],
                 residual_std: Mapping[str, float]):
        super().__init__()
        stats = [statistics[name] for name in names]
        self._quantile = bool(stats) and "quantiles" in stats[0]
        self._residual_std = tf.constant([residual_std.get(n, 0.0) for n in names], tf.float32)
        if self._quantile:
            self._knots = marginal.column_knots(stats)
        self._moments = {k: tf.constant([s[k] for s in stats], tf.float32)
                         for k in ("mean", "std", "min", "max")}

    def original(self, values: tf.Tensor, bins: tf.Tensor | None, draws: tf.Tensor | None,
                 means: tf.Tensor | None = None) -> tf.Tensor:
        """[batch, values] in original units, from the decoder's values, bin logits
        ([batch, values, bins]; None without bins) and standardised means (None without);
        `draws` [batch, values, 3] uniforms: the bin, the noise and the position in the bin."""
        if draws is None and means is not None:  # decode: the decoder's mean in these units
            return self._unstandardised(means)
        if not self._quantile:
            return self._unstandardised(
                self._noisy(values, None if draws is None else draws[..., 1]))
        levels = self._level(values, bins, draws)
        return tf.transpose(marginal.from_level(tf.transpose(levels), self._knots))

    def _unstandardised(self, standard: tf.Tensor) -> tf.Tensor:
        """Standardised values in original units, within the training range."""
        moments = self._moments
        return tf.clip_by_value(standard * marginal.divisor(moments["std"]) + moments["mean"],
                                moments["min"], moments["max"])

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
        chosen = tf.cast(choose(logits, None if draws is None else draws[..., 0]), tf.float32)
        low, high = chosen / bins, (chosen + 1.0) / bins
        level = marginal.level(self._noisy(values, None if draws is None else draws[..., 1]))
        if draws is None:
            return tf.clip_by_value(level, low, high)
        inside = (level >= low) & (level < high)
        return tf.where(inside, level, low + draws[..., 2] * (high - low))


def flags(logits: tf.Tensor, uniform: tf.Tensor | None) -> tf.Tensor:
    """True where a flag is likely (no draws) or where its uniform draw falls under its odds."""
    if uniform is None:
        return logits > 0.0
    return uniform < tf.sigmoid(logits)


def choose(logits: tf.Tensor, uniform: tf.Tensor | None) -> tf.Tensor:
    """The most likely class (over the last axis), or one drawn by inverting the softmax's
    cumulative distribution with `uniform` (the logits' shape less the last axis)."""
    if uniform is None:
        return tf.argmax(logits, axis=-1)
    cumulative = tf.cumsum(tf.nn.softmax(logits), axis=-1)
    drawn = tf.reduce_sum(tf.cast(cumulative < uniform[..., None], tf.int64), axis=-1)
    return tf.minimum(drawn, tf.cast(tf.shape(logits)[-1] - 1, tf.int64))


def item_set(logits: tf.Tensor, size: tf.Tensor, uniform: tf.Tensor | None
             ) -> tuple[tf.Tensor, tf.Tensor]:
    """Sets of the decoded size (at least one item, at most the vocabulary), as the indices of
    their items one set after the other and each set's size: the likeliest items, or items drawn
    from the decoder's probabilities without replacement (the Gumbel-top-k trick, its noise a
    hash of the row's uniform draw and the item)."""
    classes = logits.shape[1]
    size = tf.cast(tf.clip_by_value(tf.round(size), 1.0, float(classes)), tf.int32)
    if uniform is not None:
        logits = logits + _gumbel(uniform, classes)
    best = tf.math.top_k(logits, k=tf.reduce_max(tf.concat([size, [1]], 0))).indices
    kept = tf.range(tf.shape(best)[1])[None, :] < size[:, None]
    return tf.boolean_mask(best, kept), tf.cast(size, tf.int64)


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


def top_items(name: str, scores: tf.Tensor, chosen: tf.Tensor, vocabulary: tf.Tensor,
              top_k: tf.Tensor, exclude_seen: tf.Tensor, *, logits: bool
              ) -> dict[str, tf.Tensor]:
    """The `recommend` signature's outputs for item set column `name`, from each row's scores
    over its vocabulary ([batch, items]) and its own items (`chosen`, 0/1): the `top_k`
    best-scored items (less the row's own with `exclude_seen`), their scores (with `logits`,
    their probabilities among the items that may be recommended), and how many of the k are
    real (fewer where too few are left)."""
    size = scores.shape[1]
    left = tf.where(exclude_seen, size - tf.reduce_sum(chosen, axis=1), float(size))
    scores = tf.where(exclude_seen & (chosen > 0), -np.inf, scores)
    best = tf.math.top_k(scores, k=tf.minimum(top_k, size))
    values = best.values
    if logits:
        values = tf.exp(values - tf.reduce_logsumexp(scores, axis=1, keepdims=True))
    return {name: tf.gather(vocabulary, best.indices),
            signatures.score_name(name): values,
            signatures.size_name(name): tf.cast(
                tf.minimum(tf.cast(top_k, tf.float32), left), tf.int32)}
