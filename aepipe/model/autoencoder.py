"""The autoencoder: an undercomplete encoder and decoder over the transform's matrices (Keras 3).

The model takes the transform's output as it is, one matrix per group of columns (see
`aepipe.table.layout`), and computes its loss on whole matrices, so a table of hundreds of
columns costs a few operations per step, not a few per column.

The encoder reads the scalars (normal scores or standardised numbers, booleans as 0/1), the nullable
scalars' null flags, the categories one-hot and each item set multi-hot over its norm (as Mult-VAE's
input, Liang et al. 2018, with `item_dropout` of its items hidden while training), and compresses
them into a short code. The decoder emits, in the layout's output order, one output per scalar (a
value, or a boolean's logit), each value's quantile-bin logits and its mean in standardised original
units (`OriginalUnits`), each null flag's logit, each categorical's logits and each item set's
logits.

Each term is scored with the loss that fits it (squared error, binary or categorical
cross-entropy, Mult-VAE's multinomial likelihood) and divided by its `scale`: what that loss
is for a model that knows only the column's marginal distribution (`marginal_scales`). Every
term so reads as the share of its column left unexplained, whatever its kind or number of
categories, and neither the numbers nor the categories take the whole code. A column's error
is the mean of its terms, and a row's reconstruction error the mean over its columns: the
training loss and the exported `score` signature are that same function.

The variational variant (as in keras-io's VAE example) has the encoder emit a mean and a log
variance per code dimension, trains on codes drawn from that posterior, and adds the KL
divergence from N(0, I), weighted by `beta` and divided by the number of columns so that it
keeps its ELBO proportion to the per-column mean above. Its code is the posterior mean; with a
small `beta` (TabSyn's choice) the KL term keeps the codes smooth and bounded without blurring
them, and sampling draws from a density fitted to the codes (`aepipe.model.prior`). With
`input_dropout`, the encoder's input is corrupted while training (a denoising autoencoder).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import keras
import numpy as np
from keras import layers, ops

from aepipe.table.layout import (CATEGORIES, NULLS, SCALARS, Layout, bin_name, items_of,
                                  mean_name)
from aepipe.table.signatures import null_name
from aepipe.transform import marginal

__all__ = ["Autoencoder", "VariationalAutoencoder", "MODELS", "KL", "OUTPUTS", "MIN_SCALE",
           "OriginalUnits", "marginal_scales"]

KL = "__kl__"  # a model kind's per-row penalty (the VAE's KL divergence), beside its outputs
OUTPUTS = "__outputs__"  # the decoder's output matrix, in the layout's output order
MIN_SCALE = 0.05  # floor of a loss term's scale: a near-constant column does not dominate


class Autoencoder(keras.Model):
    """The plain autoencoder, and the base of every model kind. `call` returns the decoder's
    output matrix under OUTPUTS (and the kind's per-row `penalty`, if any, under KL).

    A kind fills in three hooks: how many encoder outputs make one code dimension
    (`code_outputs`), the code it trains on (`training_code`) and the penalty added to the loss
    (`penalty`).
    """

    code_outputs = 1

    def __init__(self, layout: Layout, *, code_size: int, hidden: Sequence[int],
                 scales: Mapping[str, float] | None = None,
                 statistics: Mapping[str, Mapping] | None = None, beta: float = 1.0,
                 input_dropout: float = 0.0, item_dropout: float = 0.0,
                 activation: str = "relu", seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.layout = layout
        self.scales = dict(scales or {})  # loss term -> its marginal-only value; 1 when absent
        self.term_weights = layout.term_weights(self.scales)
        self.code_size = code_size
        self.units = OriginalUnits(layout, statistics or {}) if len(layout.means) else None
        self.beta = beta
        self.corrupt = layers.Dropout(input_dropout, seed=seed)
        self.drop_items = layers.Dropout(item_dropout, seed=seed + 1)
        self.encoder = keras.Sequential(
            [layers.Dense(width, activation=activation) for width in hidden]
            + [layers.Dense(code_size * self.code_outputs, name="code")], name="encoder")
        self.decoder = keras.Sequential(
            [layers.Dense(width, activation=activation) for width in reversed(hidden)]
            + [layers.Dense(layout.outputs.width, name="outputs")], name="decoder")
        self.noise = keras.random.SeedGenerator(seed)

    # The encoder's side -----------------------------------------------------------------------

    def embed(self, inputs: dict, training: bool = False):
        """The encoder's input: the scalars, the nullable scalars' null flags, the categories
        one-hot, each item set multi-hot over its norm (`item_dropout` of it hidden while
        training)."""
        layout, parts = self.layout, []
        if layout.scalars:
            parts += [ops.cast(inputs[SCALARS], "float32"),
                      ops.take(ops.cast(inputs[NULLS], "float32"), layout.nullable, axis=1)]
        if layout.categoricals:
            index = ops.cast(inputs[CATEGORIES], "int32") + layout.category_offsets
            parts.append(_multi_hot(index, sum(layout.classes)))
        for chosen in self.item_sets(inputs):
            norm = ops.sqrt(ops.maximum(ops.sum(chosen, axis=1, keepdims=True), 1.0))
            parts.append(self.drop_items(chosen / norm, training=training))
        return ops.concatenate(parts, axis=-1)

    def item_sets(self, inputs: dict) -> list:
        """Each item set as a [batch, items] 0/1 matrix, from its padded indices (an item
        listed twice counts once; the padding index is the vocabulary's size)."""
        return [ops.minimum(_multi_hot(ops.cast(inputs[items_of(c.name)], "int32"),
                                       size + 1)[:, :size], 1.0)
                for c, size in zip(self.layout.item_sets, self.layout.items)]

    def encoder_outputs(self, inputs: dict, training: bool = False):
        """`code_outputs` values per code dimension: the code first, then what the kind adds."""
        return self.encoder(self.corrupt(self.embed(inputs, training), training=training),
                            training=training)

    def encode(self, inputs: dict, training: bool = False):
        """The code of each row (for the VAE, its posterior mean)."""
        return self.encoder_outputs(inputs, training)[:, :self.code_size]

    def call(self, inputs: dict, training: bool = False) -> dict:
        encoded = self.encoder_outputs(inputs, training)
        outputs = {OUTPUTS: self.decoder(self.training_code(encoded) if training
                                         else encoded[:, :self.code_size])}
        penalty = self.penalty(encoded)
        if penalty is not None:
            outputs[KL] = penalty
        return outputs

    def training_code(self, encoded):
        """Hook: the code the decoder learns from while training."""
        return encoded[:, :self.code_size]

    def penalty(self, encoded):
        """Hook: a per-row term added to the loss, weighted by `beta` per column; None: none."""
        return None

    # The loss ---------------------------------------------------------------------------------

    def reconstruction_error(self, inputs: dict, outputs):
        """Per row, the mean over columns of each column's mean scaled term, from the decoder's
        output matrix (or `call`'s outputs)."""
        if isinstance(outputs, dict):
            outputs = outputs[OUTPUTS]
        return ops.sum(self.terms(inputs, outputs) * self.term_weights, axis=-1)

    def column_errors(self, inputs: dict, outputs):
        """[batch, columns]: each column's part of `reconstruction_error` (in the layout's
        `columns` order); a row's parts sum to its error."""
        weighted = self.terms(inputs, outputs) * self.term_weights
        return ops.transpose(ops.segment_sum(ops.transpose(weighted), self.layout.term_columns,
                                             len(self.layout.columns)))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.reconstruction_error(x if y is None else y, y_pred)
        if KL in y_pred:
            loss = loss + self.beta * y_pred[KL] / len(self.layout.columns)
        return ops.mean(loss)

    def terms(self, inputs: dict, outputs):
        """Every loss term of every row, unscaled: [batch, terms] in the layout's term order.
        A null cell's value (and bin) costs nothing: its null flag says it is null."""
        layout, parts = self.layout, []
        if layout.scalars:
            parts += self._scalar_terms(inputs, outputs)
        if layout.categoricals:
            logits = outputs[:, layout.outputs.categories]
            index = ops.cast(inputs[CATEGORIES], "int32") + layout.category_offsets
            parts.append(_segment_logsumexp(logits, layout.category_segments,
                                            len(layout.categoricals))
                         - ops.take_along_axis(logits, index, axis=1))
        if layout.item_sets:
            parts.append(self._item_terms(inputs, outputs[:, layout.outputs.items]))
        return ops.concatenate(parts, axis=-1)

    def _scalar_terms(self, inputs: dict, outputs) -> list:
        """A value's squared error or a boolean's cross-entropy per scalar, then each value's
        bin cross-entropy and its mean's squared error in standardised original units, then
        each null flag's cross-entropy."""
        layout = self.layout
        target = ops.cast(inputs[SCALARS], "float32")
        nulls = ops.cast(inputs[NULLS], "float32")
        predicted = outputs[:, layout.outputs.scalars]
        present = 1.0 - nulls
        terms = [ops.where(layout.is_value, ops.square(target - predicted),
                           _binary_crossentropy(target, predicted)) * present]
        if layout.bins:
            values = ops.take(target, layout.values, axis=1)
            logits = ops.reshape(outputs[:, layout.outputs.bins],
                                 (-1, len(layout.values), layout.bins))
            terms.append(ops.take(present, layout.values, axis=1)
                         * _cross_entropy(logits, marginal.bin_of(values, layout.bins)))
        if self.units is not None:
            standard = self.units.standardised(ops.take(target, layout.means, axis=1))
            terms.append(ops.take(present, layout.means, axis=1)
                         * ops.square(standard - outputs[:, layout.outputs.means]))
        if len(layout.nullable):
            terms.append(_binary_crossentropy(ops.take(nulls, layout.nullable, axis=1),
                                              outputs[:, layout.outputs.nulls]))
        return terms

    def _item_terms(self, inputs: dict, logits):
        """Each item set's multinomial negative log-likelihood (Mult-VAE's): its number of
        items times the log-sum-exp of its logits, less the logits of its items."""
        layout = self.layout
        chosen = ops.concatenate(self.item_sets(inputs), axis=-1)
        columns = len(layout.item_sets)
        counts = ops.transpose(ops.segment_sum(ops.transpose(chosen), layout.item_segments,
                                               columns))
        picked = ops.transpose(ops.segment_sum(ops.transpose(chosen * logits),
                                               layout.item_segments, columns))
        return counts * _segment_logsumexp(logits, layout.item_segments, columns) - picked


class VariationalAutoencoder(Autoencoder):
    """The encoder emits a mean and a log variance per code dimension; training decodes a code
    drawn from that posterior and pays its KL divergence from N(0, I)."""

    code_outputs = 2

    def training_code(self, encoded):
        mean, log_variance = encoded[:, :self.code_size], encoded[:, self.code_size:]
        noise = keras.random.normal(ops.shape(mean), seed=self.noise)
        return mean + ops.exp(0.5 * log_variance) * noise

    def penalty(self, encoded):
        mean, log_variance = encoded[:, :self.code_size], encoded[:, self.code_size:]
        return -0.5 * ops.sum(
            1.0 + log_variance - ops.square(mean) - ops.exp(log_variance), axis=-1)


MODELS: dict[str, type[Autoencoder]] = {"ae": Autoencoder, "vae": VariationalAutoencoder}


class OriginalUnits:
    """The value scalars' normal scores back in their original units, standardised with the
    training rows' mean and deviation: the target of the decoder's `means`.

    The normal scores are made for sampling: they spread every column evenly, so the squared
    error of a score barely tells a capital gain of 99,999 (0.5% of Adult's rows, 13 standard
    deviations above the mean) from one of 15,024 (2.8 against 2.3). A code judged by how well it
    gives numbers back, as PCA's is, must weigh errors in the column's own units; the `means`
    output learns each number's conditional mean in those units, and `decode` reads it."""

    def __init__(self, layout: Layout, statistics: Mapping[str, Mapping]):
        stats = [statistics[layout.scalars[i].name] for i in layout.means]
        self.knots = marginal.column_knots(stats)
        self.mean = np.array([s["mean"] for s in stats], np.float32)
        self.std = marginal.divisor([s["std"] for s in stats])

    def standardised(self, scores):
        """[batch, means] normal scores as (x - mean) / std, x = F⁻¹(Φ(score))."""
        return (ops.transpose(marginal.from_normal(ops.transpose(scores), self.knots))
                - self.mean) / self.std


def _segment_logsumexp(logits, segments: np.ndarray, count: int):
    """[batch, count]: the log-sum-exp of each segment of a row's logits."""
    by_class = ops.transpose(logits)  # [classes, batch]: segments run along the first axis
    peak = ops.stop_gradient(ops.segment_max(by_class, segments, count))
    shifted = ops.exp(by_class - ops.take(peak, segments, axis=0))
    return ops.transpose(ops.log(ops.segment_sum(shifted, segments, count)) + peak)


def _multi_hot(index, classes: int):
    """A [batch, classes] matrix with a one at each of a row's [batch, k] class indices."""
    rows, k = ops.shape(index)[0], ops.shape(index)[1]
    row = ops.repeat(ops.arange(rows, dtype="int32"), k)
    cells = ops.stack([row, ops.reshape(index, (-1,))], axis=1)
    return ops.scatter(cells, ops.ones_like(row, "float32"), (rows, classes))


def _cross_entropy(logits, target):
    """Categorical cross-entropy over the last axis, from logits and class indices."""
    log_probabilities = logits - ops.logsumexp(logits, axis=-1, keepdims=True)
    return -ops.squeeze(ops.take_along_axis(
        log_probabilities, ops.expand_dims(ops.cast(target, "int32"), -1), axis=-1), -1)


def _binary_crossentropy(target, logit):
    """Numerically stable binary cross-entropy from a logit, per element."""
    return ops.relu(logit) - logit * target + ops.log1p(ops.exp(-ops.abs(logit)))


def marginal_scales(layout: Layout, batches: Iterable[dict[str, np.ndarray]]
                    ) -> dict[str, float]:
    """Each loss term's value for a model that predicts only the marginal distribution, by
    term name: the variance of a value, the entropy of a boolean, a quantile bin, a null flag
    or a category (values, booleans and bins over non-null rows), an item set's mean negative
    log-likelihood under the items' frequencies; floored at MIN_SCALE."""
    seen: dict[str, list] = {}
    item_counts = [np.zeros(size, np.int64) for size in layout.items]
    rows = 0
    for batch in batches:
        for name in (SCALARS, NULLS, CATEGORIES):
            if name in batch:
                seen.setdefault(name, []).append(batch[name])
        for counts, column in zip(item_counts, layout.item_sets):
            counts += _item_counts(batch[items_of(column.name)], len(counts))
        rows += len(next(iter(batch.values())))
    matrices = {name: np.concatenate(parts) for name, parts in seen.items()}
    scales: dict[str, float] = {}
    if layout.scalars:
        scales.update(_scalar_scales(layout, matrices[SCALARS], matrices[NULLS] > 0))
    for j, column in enumerate(layout.categoricals):
        scales[column.name] = _entropy(matrices[CATEGORIES][:, j])
    for column, counts in zip(layout.item_sets, item_counts):
        log_share = np.log(np.maximum(counts, 1) / max(counts.sum(), 1))
        scales[column.name] = (max(float(-(counts * log_share).sum() / rows), MIN_SCALE)
                               if rows else 1.0)
    return scales


def _scalar_scales(layout: Layout, values: np.ndarray, nulls: np.ndarray) -> dict[str, float]:
    scales = {}
    for j, column in enumerate(layout.scalars):
        present = values[~nulls[:, j], j]
        if not layout.is_value[j]:
            scales[column.name] = _entropy(present)
            continue
        scales[column.name] = max(float(np.var(present)), MIN_SCALE) if len(present) else 1.0
        if layout.bins:
            bins = np.asarray(marginal.bin_of(present.astype(np.float32), layout.bins))
            scales[bin_name(column.name)] = _entropy(bins)
            scales[mean_name(column.name)] = 1.0  # standardised with the training rows' own
    for j in layout.nullable:
        scales[null_name(layout.scalars[j].name)] = _entropy(nulls[:, j])
    return scales


def _entropy(classes: np.ndarray) -> float:
    if len(classes) == 0:
        return 1.0
    shares = np.bincount(np.asarray(classes, np.int64)) / len(classes)
    shares = shares[shares > 0]
    return max(float(-(shares * np.log(shares)).sum()), MIN_SCALE)


def _item_counts(padded: np.ndarray, size: int) -> np.ndarray:
    """How many rows hold each item, from [rows, longest] indices padded with `size`."""
    rows = np.repeat(np.arange(len(padded)), padded.shape[1])
    flat = padded.ravel()
    distinct = np.unique(np.stack([rows, flat], 1)[flat < size], axis=0)
    return np.bincount(distinct[:, 1], minlength=size)[:size]
