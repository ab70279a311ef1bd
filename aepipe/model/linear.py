"""EASE and EDLAE: a linear item-to-item autoencoder in closed form, for item sets alone.

EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data") reconstructs a user's
multi-hot item vector x as x B, with B the items x items matrix that minimises
||X - X B||² + λ||B||² under a zero diagonal (no item may explain itself):

    P = (G + Λ)^-1,  B = I - P diagMat(1 / diag(P)),  G = X^T X

EDLAE (Steck 2020, "Autoencoders that don't overfit towards the identity") replaces λI by
Λ = p / (1 - p) diagMat(diag(G)) + λI, the L2 penalty that emphasised dropout of rate p on the
input amounts to; p = 0 is EASE. Each item's scores are then divided by its count to the power
`popularity`, which corrects the ranking's lean towards popular items.

G is a sum over rows, so Beam computes it in one combine on any runner
(`aepipe.beam.gram`); the solve runs on one worker and holds a few items x items matrices
(EASE_MAX_ITEMS at most). λ is chosen on the validation rows: with a fifth of each validation
row's items hidden, the λ whose recommendations rank the hidden items best (NDCG@100), found on
a coarse-to-fine grid of powers of ten; the model is then refitted on the training and
validation rows together, λ scaled by their number of rows.

A linear model has no code: its directory serves `recommend` and refuses `encode` and `sample`
by name. Measured on MovieLens 100K against EASE and Mult-VAE: docs/recommend.md.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from aepipe.model import decoding
from aepipe.options import ModelOptions
from aepipe.table import signatures
from aepipe.table.layout import Layout, items_of
from aepipe.transform.feed import feed_tensors

__all__ = ["weights", "choose_l2", "fit", "ndcg", "split_hidden", "LinearModule",
           "HIDDEN_SHARE", "RANK_DEPTH"]

_LOG = logging.getLogger(__name__)
HIDDEN_SHARE = 0.2  # of each validation row's items, hidden and to be found
RANK_DEPTH = 100  # NDCG@100
VALIDATION_ROWS = 5_000  # the most validation rows the search scores
_DECADES = tuple(float(10 ** k) for k in range(0, 6))


def weights(gram: np.ndarray, *, l2: float, dropout: float, popularity: float) -> np.ndarray:
    """B (items x items, float32) from G = X^T X: EDLAE's closed form, zero diagonal, each
    column divided by its item's count to the power `popularity`."""
    counts = np.diag(gram).astype(np.float64)
    system = np.array(gram, np.float64)
    system[np.diag_indices_from(system)] += dropout / (1.0 - dropout) * counts + l2
    inverse = np.linalg.inv(system)
    b = inverse / -np.diag(inverse)
    np.fill_diagonal(b, 0.0)
    b *= np.maximum(counts, 1.0)[None, :] ** -popularity
    return b.astype(np.float32)


def ndcg(scores: np.ndarray, shown: np.ndarray, hidden: np.ndarray,
         depth: int = RANK_DEPTH) -> float:
    """The mean over rows with hidden items of NDCG@depth: the hidden items' discounted gain
    among the `depth` best-scored items not shown, over the ideal."""
    depth = min(depth, scores.shape[1])
    ranked = np.argsort(-np.where(shown, -np.inf, scores), axis=1)[:, :depth]
    discounts = 1.0 / np.log2(np.arange(2, depth + 2))
    gain = (np.take_along_axis(hidden, ranked, axis=1) * discounts).sum(axis=1)
    wanted = hidden.sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(wanted, depth) - 1]
    rows = wanted > 0
    return float(np.mean(gain[rows] / ideal[rows])) if rows.any() else 0.0


def split_hidden(sets: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows' multi-hot sets ([rows, items] bool) as shown and hidden items: HIDDEN_SHARE of each
    row's items, by a seeded draw per cell."""
    draw = np.random.default_rng(seed).random(sets.shape)
    hidden = sets & (draw < HIDDEN_SHARE)
    return sets & ~hidden, hidden


def choose_l2(gram: np.ndarray, validation: np.ndarray, options: ModelOptions
              ) -> tuple[float, dict[str, list[float]]]:
    """The λ whose weights, fitted on `gram`, rank the validation rows' hidden items best, and
    every λ tried with its NDCG@100. `validation` is the rows' multi-hot sets."""
    shown, hidden = split_hidden(validation[:VALIDATION_ROWS], options.seed)
    tried: dict[float, float] = {}

    def score(l2: float) -> float:
        if l2 not in tried:
            b = weights(gram, l2=l2, dropout=options.ease_dropout,
                        popularity=options.ease_popularity)
            tried[l2] = ndcg(shown.astype(np.float32) @ b, shown, hidden)
        return tried[l2]

    best = max(_DECADES, key=score)
    for step in (0.5, 0.25):
        best = max((best * 10 ** -step, best, best * 10 ** step), key=score)
    history = {"l2": list(tried), "validation_ndcg@100": list(tried.values())}
    _LOG.info("ease: L2 %s chosen, validation NDCG@%d %.4f (%d values tried)", f"{best:g}",
              RANK_DEPTH, tried[best], len(tried))
    return best, history


def fit(train_gram: np.ndarray, validation_gram: np.ndarray | None,
        validation: np.ndarray | None, train_rows: int, validation_rows: int,
        options: ModelOptions) -> tuple[np.ndarray, float, dict[str, list[float]], float]:
    """The weights refitted on every row, the λ they use, the search's history, the seconds.

    λ is `options.ease_l2`, or chosen on the validation rows and scaled to the rows of the
    refit (the penalty is a prior worth so many rows)."""
    started = time.perf_counter()
    history: dict[str, list[float]] = {}
    gram = train_gram
    if options.ease_l2 is not None:
        l2 = options.ease_l2
    elif validation is not None and validation.any():
        l2, history = choose_l2(train_gram, validation, options)
        l2 *= (train_rows + validation_rows) / max(train_rows, 1)
    else:
        l2 = _DECADES[2]
        _LOG.warning("ease: no validation rows to choose the L2 weight on; using %g (set "
                     "--ease-l2)", l2)
    if validation_gram is not None:
        gram = train_gram + validation_gram
    b = weights(gram, l2=l2, dropout=options.ease_dropout, popularity=options.ease_popularity)
    return b, l2, history, time.perf_counter() - started


class LinearModule(tf.Module):
    """The tf.Transform layer and B behind the `recommend` signature: a row's scores are its
    multi-hot set times B."""

    def __init__(self, *, tft_layer: Any, layout: Layout, b: np.ndarray,
                 vocabulary: Sequence[str]):
        super().__init__()
        self.tft_layer = tft_layer
        self._layout = layout
        self._column = layout.item_sets[0]
        self.b = tf.Variable(b, trainable=False, name="b")
        self._vocabulary = tf.constant(list(vocabulary) or [""], tf.string)
        raw = {name: tf.TensorSpec([None], tf.as_dtype(dtype), name=name)
               for name, dtype in signatures.raw_columns(layout.modelled).items()}
        self.recommend = tf.function(self._recommend, autograph=False, input_signature=[
            raw, tf.TensorSpec([], tf.int32, name=signatures.TOP_K),
            tf.TensorSpec([], tf.bool, name=signatures.EXCLUDE_SEEN)])

    def signatures(self) -> dict[str, Any]:
        return {signatures.RECOMMEND: self.recommend}

    def _recommend(self, raw: dict, top_k: tf.Tensor, exclude_seen: tf.Tensor) -> dict:
        """The `top_k` best-scored items of each row (see `aepipe.model.decoding.top_items`),
        with their scores x B: higher is better, but they are no probabilities."""
        name, size = self._column.name, self._layout.items[0]
        transformed = self.tft_layer(feed_tensors(raw, self._layout))
        index = tf.sparse.to_dense(transformed[items_of(name)], default_value=size)
        chosen = tf.math.bincount(tf.cast(index, tf.int32), minlength=size + 1,
                                  maxlength=size + 1, binary_output=True, axis=-1,
                                  dtype=tf.float32)[:, :size]
        return decoding.top_items(name, tf.matmul(chosen, self.b), chosen, self._vocabulary,
                                  top_k, exclude_seen, logits=False)
