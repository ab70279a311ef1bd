"""Every categorical column's vocabulary from one tf.Transform analyzer, and the lookup that the
transform applies with it.

tf.Transform's own `vocabulary` is an analyzer per column (a chain of Beam stages, a lookup
table and an asset file each), so a table with hundreds of categorical columns gets hundreds
of them. Here one Beam combine counts the values of every column at once and keeps each
column's `top_k` most frequent (ties broken as tf.Transform does: the larger value first).
A value is known by its 64-bit fingerprint, and the transform finds its index by a binary
search among its column's sorted fingerprints: plain tensors, no tables, no asset files.
"""

from __future__ import annotations

import dataclasses
import operator

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

__all__ = ["Vocabularies", "analyze", "lookup"]

_SPACE = 2**63 - 1  # fingerprints fall in [0, _SPACE); _SPACE pads a column's sorted row


@dataclasses.dataclass(frozen=True)
class Vocabularies:
    """The analyzer's results, as tensors of the transform graph.

    `fingerprints` and `indices` are [columns, width]: each column's fingerprints in ascending
    order (padded with _SPACE) and the vocabulary index of each; `sizes` is [columns];
    `tokens` holds every column's vocabulary, most frequent first, one column after the other.
    """

    fingerprints: tf.Tensor
    indices: tf.Tensor
    sizes: tf.Tensor
    tokens: tf.Tensor


def _fingerprint(values: tf.Tensor) -> tf.Tensor:
    return tf.strings.to_hash_bucket_fast(values, _SPACE)


def analyze(values: tf.Tensor, is_null: tf.Tensor, *, top_k: int,
            name: str = "vocabularies") -> Vocabularies:
    """The vocabularies of the columns of a [batch, columns] string tensor (`is_null` marks the
    cells to leave out); `name` tells one call's analyzer from another's."""
    columns = values.shape[1]
    outputs = tft.experimental.ptransform_analyzer(
        _batch_counts(values, is_null), _CountValues(top_k, columns),
        output_dtypes=[tf.int64, tf.int64, tf.int64, tf.string],
        output_shapes=[[columns, None], [columns, None], [columns], [None]],
        name=name)
    return Vocabularies(*outputs)


def _batch_counts(values: tf.Tensor, is_null: tf.Tensor) -> list[tf.Tensor]:
    """A batch's distinct (column, fingerprint) pairs, their counts and values: what the Beam
    combine receives, far smaller than the batch's strings (which Beam would pickle one by
    one)."""
    column = tf.broadcast_to(tf.range(values.shape[1], dtype=tf.int64)[None, :],
                             tf.shape(values, out_type=tf.int64))
    present = tf.logical_not(is_null)
    strings = tf.boolean_mask(values, present)
    pairs = tf.stack([tf.boolean_mask(column, present),
                      tf.boolean_mask(_fingerprint(values), present)], axis=1)
    distinct, index = tf.raw_ops.UniqueV2(x=pairs, axis=[0])
    found = tf.shape(distinct)[0]
    counts = tf.math.unsorted_segment_sum(tf.ones_like(index, tf.int64), index, found)
    first = tf.math.unsorted_segment_min(tf.range(tf.size(index)), index, found)
    return [distinct[:, 0], distinct[:, 1], counts, tf.gather(strings, first)]


def lookup(vocabularies: Vocabularies, values: tf.Tensor, is_null: tf.Tensor) -> tf.Tensor:
    """Each cell's index in its column's vocabulary of V values: V when the value is not in
    it, V + 1 where the cell is null."""
    wanted = tf.transpose(_fingerprint(values))  # [columns, batch]
    table = vocabularies.fingerprints
    position = tf.minimum(tf.searchsorted(table, wanted), tf.shape(table)[1] - 1)
    found = tf.gather(table, position, batch_dims=1) == wanted
    sizes = vocabularies.sizes[:, None]
    index = tf.where(found, tf.gather(vocabularies.indices, position, batch_dims=1), sizes)
    return tf.transpose(tf.where(tf.transpose(is_null), sizes + 1, index))


class _CountValues(beam.PTransform):
    """Each batch's distinct (column, fingerprint, count, value) in; the four arrays of
    `Vocabularies` out, each a PCollection of one element."""

    def __init__(self, top_k: int, columns: int):
        super().__init__()
        self._top_k, self._columns = top_k, columns

    def expand(self, batches):
        counted = batches | "Count" >> beam.CombineGlobally(
            _ValueCounts(self._top_k, self._columns))
        return tuple(counted | f"Take{i}" >> beam.Map(operator.itemgetter(i)) for i in range(4))


class _ValueCounts(beam.CombineFn):
    """Per column, the distinct fingerprints seen, their counts and their values.

    An accumulator is None (nothing seen) or a list with, per column, three aligned arrays:
    fingerprints (ascending, distinct), counts and values.
    """

    def __init__(self, top_k: int, columns: int):
        self._top_k, self._columns = top_k, columns

    def create_accumulator(self):
        return None

    def add_input(self, accumulator, batch):
        columns, fingerprints, counts, values = (np.asarray(a) for a in batch)
        order = np.argsort(columns, kind="stable")
        bounds = np.searchsorted(columns[order], np.arange(self._columns + 1))
        seen = [_distinct(*(a[order[start:end]] for a in (fingerprints, counts, values)))
                for start, end in zip(bounds[:-1], bounds[1:])]
        return self.merge_accumulators([accumulator, seen])

    def merge_accumulators(self, accumulators):
        parts = [a for a in accumulators if a is not None]
        if len(parts) < 2:
            return parts[0] if parts else None
        return [_distinct(*(np.concatenate(arrays) for arrays in zip(*columns)))
                for columns in zip(*parts)]

    def extract_output(self, accumulator):
        nothing = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, object))
        columns = accumulator or [nothing] * self._columns
        kept = [self._most_frequent(*column) for column in columns]
        width = max([len(f) for f, _ in kept] + [1])
        fingerprints = np.full((len(kept), width), _SPACE, np.int64)
        indices = np.zeros((len(kept), width), np.int64)
        for j, (found, tokens) in enumerate(kept):
            order = np.argsort(found, kind="stable")
            fingerprints[j, :len(found)] = found[order]
            indices[j, :len(found)] = order
        sizes = np.array([len(tokens) for _, tokens in kept], np.int64)
        tokens = np.array([t for _, column in kept for t in column] or [], dtype=object)
        return fingerprints, indices, sizes, tokens

    def _most_frequent(self, fingerprints, counts, values):
        """The top_k values by count, ties by the larger value, with their fingerprints."""
        order = sorted(range(len(values)), key=lambda i: (counts[i], values[i]), reverse=True)
        kept = np.array(order[:self._top_k], np.int64)
        return fingerprints[kept], [values[i] for i in kept]


def _distinct(fingerprints: np.ndarray, counts: np.ndarray, values: np.ndarray):
    """Equal fingerprints merged: their counts summed, the first one's value kept."""
    unique, first, inverse = np.unique(fingerprints, return_index=True, return_inverse=True)
    return unique, np.bincount(inverse, weights=counts, minlength=len(unique)).astype(
        np.int64), values[first]
