"""The quantile ("normal score") transform of numeric columns, and its inverse.

A numeric value ``x`` enters the model as ``z = Φ⁻¹(F(x))``, where ``F`` is the training data's
cumulative distribution, kept as ``QUANTILES + 1`` knots (the minimum, TFT's quantile boundaries,
the maximum; fewer for a table of few rows: `thinned`) with straight lines between them. Whatever
the column's shape (skewed, heavy-tailed, multi-modal), the model sees a standard normal feature,
and decoding through ``F⁻¹`` gives that shape back: a point mass, such as the zeros of a
zero-inflated column, is a run of equal knots, so every ``z`` that falls in its stretch of ``F``
decodes to exactly that value. A value equal to tied knots takes the middle of their stretch. Knots
a tenth of a percent apart make a spike of a few tenths of a percent such a run too (Adult's capital
gains top-coded at 99,999: 0.5% of the rows), and cost no more to find than a hundred: the sketch's
rank error (EPSILON), not the number of knots read from it, sets its size.

Inside a bucket ``F`` is a straight line, except in the first and the last: a column's extreme
bucket often spans a few far outliers (a diamond 58.9 mm wide where 99% are under 8.4 mm), and a
straight line to them would put the bucket's whole mass uniformly between the last knot but one
and the maximum, far more outliers than the data has. There ``F`` follows an exponential tail,
truncated at the extreme, whose scale is the neighbouring bucket's width over ln 2 (an
exponential tail's bucket of the same mass one step in is that wide): nearly a straight line
where the neighbour is as wide as the bucket, a straight line where the neighbour is empty.

The decoder also predicts which of ``BINS`` equal-probability bins of ``F`` a value falls in.
Sampling draws the bin from those probabilities and keeps the decoder's value where it lies in that
bin, or draws a position within the bin where it does not: the column's distribution then follows
the bin probabilities, however blurred the decoder's mean is (what TVAE's mode-specific
normalisation does with the modes of a Gaussian mixture).

Both directions are TensorFlow functions: the forward one runs inside the TFT preprocessing
function, the inverse inside the exported decoder.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import tensorflow as tf

__all__ = ["QUANTILES", "EPSILON", "BINS", "ROWS_PER_BUCKET", "MIN_BUCKETS", "thinned",
           "knots", "column_knots", "divisor", "to_normal", "from_normal", "level", "from_level",
           "bin_of"]

QUANTILES = 1000
BINS = 10
EPSILON = 1.0 / 400  # the quantile sketch's rank error: a quarter of a percent
ROWS_PER_BUCKET = 10  # a table of fewer than QUANTILES * 10 rows gets fewer buckets (thinned)
MIN_BUCKETS = 100  # but never fewer than this many
_EDGE = 1e-3  # F is clipped to [_EDGE, 1 - _EDGE], so z stays within ±3.09
_STRAIGHT = 1e-4  # an edge bucket at most this many tail scales wide is a straight line
_STEEPEST = 1e4  # the steepest tail: a bucket at most this many scales wide


def thinned(boundaries: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
    """[columns, QUANTILES - 1] boundaries kept at every s-th level, s the smallest divisor of
    QUANTILES that leaves at least ROWS_PER_BUCKET rows a bucket (at most QUANTILES / MIN_BUCKETS).

    Knots finer than the rows make every training value a run of tied knots, and sampling then
    writes only values it has seen: on penguins (275 rows) 1,000 knots gave a synthetic row
    equal to a training row, where 100 gave none."""
    strides = [s for s in range(1, QUANTILES // MIN_BUCKETS + 1) if QUANTILES % s == 0]
    enough = tf.constant([QUANTILES // s * ROWS_PER_BUCKET for s in strides], tf.int64)
    stride = tf.gather(strides, tf.minimum(
        tf.reduce_sum(tf.cast(enough > tf.cast(rows, tf.int64), tf.int32)), len(strides) - 1))
    return boundaries[..., stride - 1::stride]


def knots(boundaries: tf.Tensor, minimum: tf.Tensor, maximum: tf.Tensor) -> tf.Tensor:
    """The cumulative distribution's knots, at levels 0, 1/Q, ..., 1: [Q + 1] for one column,
    [columns, Q + 1] from [columns, Q - 1] boundaries and [columns] minima and maxima."""
    def edge(value):
        return tf.expand_dims(tf.cast(value, tf.float32), -1)

    return tf.concat([edge(minimum), tf.cast(boundaries, tf.float32), edge(maximum)], axis=-1)


def column_knots(statistics: Sequence[Mapping[str, Any]]) -> tf.Tensor:
    """[columns, Q + 1] knots from each column's transform statistics (its "quantiles",
    "min" and "max"), as the model directory's manifest keeps them."""
    return knots(tf.constant([s["quantiles"] for s in statistics], tf.float32),
                 [s["min"] for s in statistics], [s["max"] for s in statistics])


def divisor(std) -> tf.Tensor:
    """A standard deviation to divide by: 1 where a column is constant (0), so standardising
    it gives zeros rather than NaN."""
    std = tf.cast(std, tf.float32)
    return tf.where(std > 0.0, std, 1.0)


def to_normal(x: tf.Tensor, knots: tf.Tensor) -> tf.Tensor:
    """Φ⁻¹(F(x)) for a [rows] tensor and [Q + 1] knots, or [columns, rows] and
    [columns, Q + 1]."""
    size = tf.shape(knots)[-1]
    buckets = tf.cast(size - 1, tf.float32)
    left = tf.searchsorted(knots, x, side="left")
    right = tf.searchsorted(knots, x, side="right")
    lower = tf.clip_by_value(left, 1, size - 1) - 1
    between = tf.cast(lower, tf.float32) + _share(x, *_bucket(knots, lower))
    tied = tf.cast(left + right - 1, tf.float32) / 2.0
    position = tf.where(right > left, tied, between)
    return tf.math.ndtri(tf.clip_by_value(position / buckets, _EDGE, 1.0 - _EDGE))


def level(z: tf.Tensor) -> tf.Tensor:
    """Φ(z): where a normal score lies in the column's distribution, in [0, 1]."""
    return 0.5 * tf.math.erfc(-z / math.sqrt(2.0))


def bin_of(z: tf.Tensor, bins: int = BINS) -> tf.Tensor:
    """The equal-probability bin (0 .. bins - 1) a normal score falls in."""
    return tf.clip_by_value(tf.cast(tf.floor(level(z) * bins), tf.int64), 0, bins - 1)


def from_normal(z: tf.Tensor, knots: tf.Tensor) -> tf.Tensor:
    """F⁻¹(Φ(z)): the inverse of `to_normal`, flat over runs of tied knots."""
    return from_level(level(z), knots)


def from_level(levels: tf.Tensor, knots: tf.Tensor) -> tf.Tensor:
    """F⁻¹ at levels in [0, 1]: [rows] levels and [Q + 1] knots, or [columns, rows] and
    [columns, Q + 1]."""
    buckets = tf.shape(knots)[-1] - 1
    position = tf.clip_by_value(levels * tf.cast(buckets, tf.float32), 0.0,
                                tf.cast(buckets, tf.float32))
    lower = tf.clip_by_value(tf.cast(tf.floor(position), tf.int32), 0, buckets - 1)
    return _value(position - tf.cast(lower, tf.float32), *_bucket(knots, lower))


def _bucket(knots: tf.Tensor, lower: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """For values in buckets `lower` (shaped as the values): each bucket's lower and upper knot,
    and its width over its tail's scale where it is the first (> 0) or the last (< 0) bucket, 0
    (a straight line) elsewhere and where the neighbouring bucket is empty."""
    batch_dims = knots.shape.rank - 1
    low = tf.gather(knots, lower, batch_dims=batch_dims)
    high = tf.gather(knots, lower + 1, batch_dims=batch_dims)

    def ratio(width, neighbour):
        steep = tf.math.divide_no_nan(width * math.log(2.0), neighbour)
        return tf.expand_dims(tf.minimum(steep, _STEEPEST), -1)

    first = ratio(knots[..., 1] - knots[..., 0], knots[..., 2] - knots[..., 1])
    last = ratio(knots[..., -1] - knots[..., -2], knots[..., -2] - knots[..., -3])
    buckets = tf.shape(knots)[-1] - 1
    return low, high, tf.where(lower == 0, first, tf.where(lower == buckets - 1, -last, 0.0))


def _share(x: tf.Tensor, low: tf.Tensor, high: tf.Tensor, steep: tf.Tensor) -> tf.Tensor:
    """How much of its bucket's mass lies below `x`, in [0, 1] (0 for an empty bucket)."""
    along = tf.math.divide_no_nan(x - low, high - low)
    outward = tf.where(steep > 0, 1.0 - along, along)  # the distance from the inner edge
    rate = tf.maximum(tf.abs(steep), _STRAIGHT)
    curved = tf.math.expm1(-outward * rate) / tf.math.expm1(-rate)
    mass = tf.where(tf.abs(steep) > _STRAIGHT, curved, outward)
    return tf.where(steep > 0, 1.0 - mass, mass)


def _value(share: tf.Tensor, low: tf.Tensor, high: tf.Tensor, steep: tf.Tensor) -> tf.Tensor:
    """The inverse of `_share`: the value below which `share` of its bucket's mass lies."""
    mass = tf.where(steep > 0, 1.0 - share, share)  # from the inner edge outward
    rate = tf.maximum(tf.abs(steep), _STRAIGHT)
    curved = -tf.math.log1p(mass * tf.math.expm1(-rate)) / rate
    outward = tf.clip_by_value(tf.where(tf.abs(steep) > _STRAIGHT, curved, mass), 0.0, 1.0)
    along = tf.where(steep > 0, 1.0 - outward, outward)
    return low + along * (high - low)
