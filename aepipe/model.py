"""The autoencoder: an undercomplete encoder/decoder over the transformed features (Keras 3).

Inputs are the transformed features of `aepipe.features`, as three matrices, one per role
(`Roles`): standardised values and 0/1 flags enter as they are, categories as one-hot vectors,
and the loss is computed on whole matrices, so a table of hundreds of columns costs a few
operations per step, not a few per column. The encoder compresses them into a short code;
the decoder emits one output per value (and, with quantile bins, a row of logits for the bin it
falls in), one logit per flag and a row of logits per category.
An item set enters as a multi-hot vector over its vocabulary, divided by its norm (with
`item_dropout` of its items hidden while training), and is reconstructed as in Mult-VAE (Liang
et al. 2018): a row of logits over the vocabulary, scored by the multinomial likelihood of the
set's items.
Each feature's reconstruction is scored with the loss that fits it (squared error, binary or
categorical cross-entropy, multinomial likelihood), divided by its `scale`: what that loss is
for a model that knows only the column's marginal distribution (the variance of a value, the
entropy of a category, a flag or a quantile bin, the items' frequencies; see
`marginal_scales`). So every term reads as the share of the column left
unexplained, whatever its kind or number of categories, and neither the numbers nor the
categories take the whole code. A column's error is the mean of its terms and a row's
reconstruction error the mean over its columns: the training loss and the exported `score`
signature are that same function.

The variational variant (as in keras-io's VAE example) has the encoder emit a mean and a log
variance per code dimension, trains on codes drawn from that posterior, and adds the KL
divergence from N(0, I), weighted by `beta` and divided by the number of columns so that it
keeps its ELBO proportion to the per-column mean above. Its code is the posterior mean; with a
small `beta` (TabSyn's choice) the KL term keeps the codes smooth and bounded without blurring
them, and sampling draws from a density fitted to the codes (`aepipe.prior`). With
`input_dropout`, the encoder's input is corrupted while training (a denoising autoencoder).
"""

from __future__ import annotations

import collections
from typing import Iterable, Mapping, Sequence

import keras
import numpy as np
from keras import layers, ops

from aepipe import marginal
from aepipe.features import Feature, Features, Role, bin_logits, null_flag

__all__ = ["Autoencoder", "VariationalAutoencoder", "Roles", "MODELS", "KL", "OUTPUTS", "VALUES",
           "FLAGS", "CATEGORIES", "ITEMS", "marginal_scales", "columns_of"]

KL = "__kl__"  # a model kind's per-row penalty (the VAE's KL divergence), beside its outputs
OUTPUTS = "__outputs__"  # the decoder's raw output matrix, in `Roles` order
# the model's input matrices
VALUES, FLAGS, CATEGORIES, ITEMS = "values", "flags", "categories", "items"
MIN_SCALE = 0.05  # floor of a loss term's scale: a near-constant column does not dominate


class Autoencoder(keras.Model):
    """The plain autoencoder, and the base of every model kind: an encoder and a decoder over a
    `Features` layout, with the scaled reconstruction loss. `call` returns the decoder's raw
    output matrix under OUTPUTS (and the kind's per-row `penalty`, if any, under `KL`).

    A kind fills in three hooks: how many encoder outputs make one code dimension
    (`code_outputs`), the code it trains on (`training_code`) and the penalty added to the loss
    (`penalty`).
    """

    code_outputs = 1

    def __init__(self, features: Features, *, code_size: int, hidden: Sequence[int],
                 scales: Mapping[str, float] | None = None, beta: float = 1.0,
                 input_dropout: float = 0.0, item_dropout: float = 0.0,
                 activation: str = "relu", seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.layout = features
        self.scales = dict(scales or {})  # loss term -> its marginal-only value; 1 when absent
        self.columns = len({f.column.name for f in features})
        self.roles = Roles(features, self.scales)
        self.code_size = code_size
        self.beta = beta
        self.corrupt = layers.Dropout(input_dropout, seed=seed)
        self.drop_items = layers.Dropout(item_dropout, seed=seed + 1)
        self.encoder = keras.Sequential(
            [layers.Dense(width, activation=activation) for width in hidden]
            + [layers.Dense(code_size * self.code_outputs, name="code")],
            name="encoder",
        )
        self.decoder = keras.Sequential(
            [layers.Dense(width, activation=activation) for width in reversed(hidden)]
            + [layers.Dense(features.output_width, name="outputs")],
            name="decoder",
        )
        self.noise = keras.random.SeedGenerator(seed)

    def embed(self, inputs: dict, training: bool = False) -> keras.KerasTensor:
        """The encoder's input vector: values and flags as they are, categories one-hot, item
        sets multi-hot over their norm (as Mult-VAE's input), with `item_dropout` while
        training."""
        roles = self.roles
        parts = [ops.cast(inputs[role], "float32") for role, features in
                 ((VALUES, roles.values), (FLAGS, roles.flags)) if features]
        if roles.categories:
            parts.append(_multi_hot(ops.cast(inputs[CATEGORIES], "int32") + roles.offsets,
                                    roles.classes))
        if roles.items:
            chosen = roles.item_sets(inputs)
            norm = ops.sqrt(ops.maximum(roles.item_counts(chosen), 1.0))
            parts.append(self.drop_items(chosen / ops.take(norm, roles.item_segments, axis=1),
                                         training=training))
        return ops.concatenate(parts, axis=-1)

    def encode(self, inputs: dict, training: bool = False):
        """The code of each row (for the VAE, its posterior mean)."""
        return self.encoder_outputs(inputs, training)[:, :self.code_size]

    def encoder_outputs(self, inputs: dict, training: bool = False):
        """`code_outputs` values per code dimension: the code first, then what the kind adds."""
        return self.encoder(self.corrupt(self.embed(inputs, training), training=training),
                            training=training)

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

    def reconstruction_error(self, inputs: dict, outputs):
        """Per row, the mean over columns of each column's mean scaled reconstruction loss,
        from the decoder's raw output matrix (or `call`'s outputs).

        A value's squared error (and its bin's cross-entropy) does not count where the value is
        null (its flag says so).
        """
        if isinstance(outputs, dict):
            outputs = outputs[OUTPUTS]
        return ops.sum(self.roles.terms(inputs, outputs) * self.roles.weights, axis=-1)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.reconstruction_error(x if y is None else y, y_pred)
        if KL in y_pred:
            loss = loss + self.beta * y_pred[KL] / self.columns
        return ops.mean(loss)


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


class Roles:
    """The features by role, so that the input and the loss treat each role as one matrix.

    The model's inputs are up to four matrices (`inputs` builds them from per-feature arrays):
    VALUES [batch, values], FLAGS [batch, flags] (booleans and null flags), CATEGORIES
    [batch, categories] (class indices), each in feature order, and ITEMS [batch, longest set]
    (every item set column's items, each column's indices offset by its `item_offsets`, padded
    with `item_classes`).

    The decoder's output matrix holds, in this order: one value per VALUE feature, then their
    quantile-bin logits (`bins` each), one logit per FLAG, each CATEGORY's logits, then each
    item set's logits (one per item). `weights` puts every loss term (in `terms` order: values,
    bins, flags, categories, item sets) over its scale and its column's number of terms and the
    number of columns, so that the weighted sum of a row's terms is the mean over columns of
    each column's mean scaled term.
    """

    def __init__(self, features: Features, scales: Mapping[str, float]):
        self.values = [f for f in features if f.role is Role.VALUE]
        self.flags = [f for f in features if f.role is Role.FLAG]
        self.categories = [f for f in features if f.role is Role.CATEGORY]
        self.bins = self.values[0].bins if self.values else 0
        flags = [f.name for f in self.flags]
        # per value, the index of its null flag among the flags (len(flags): none)
        self.null_flags = np.array([flags.index(null_flag(f.name)) if null_flag(f.name) in flags
                                    else len(flags) for f in self.values], "int32")
        sizes = [f.classes for f in self.categories]
        self.offsets = np.cumsum([0] + sizes[:-1]).astype("int32")
        self.classes = int(sum(sizes))
        self.segments = np.repeat(np.arange(len(sizes)), sizes).astype("int32")
        self.items = [f for f in features if f.role is Role.ITEMS]
        sizes = [f.classes for f in self.items]
        self.item_offsets = np.cumsum([0] + sizes[:-1]).astype("int32")
        self.item_classes = int(sum(sizes))
        self.item_segments = np.repeat(np.arange(len(sizes)), sizes).astype("int32")
        terms = (self.values + (self.values if self.bins else []) + self.flags
                 + self.categories + self.items)
        names = ([f.name for f in self.values] + [bin_logits(f.name) for f in self.values
                                                   if self.bins] + flags
                 + [f.name for f in self.categories + self.items])
        per_column = collections.Counter(f.column.name for f in terms)
        columns = len(per_column)
        self.weights = np.array([1.0 / (scales.get(name, 1.0) * per_column[f.column.name]
                                        * columns) for f, name in zip(terms, names)], "float32")

    def parts(self, outputs) -> dict:
        """The output matrix by role: "values" [batch, values], "bins" [batch, values, bins]
        (None without bins), "flags" [batch, flags], "categories" [batch, classes], "items"
        [batch, item classes]."""
        values, flags, bins = len(self.values), len(self.flags), self.bins
        start = values * (1 + bins)
        end = start + flags + self.classes
        return {"values": outputs[:, :values],
                "bins": ops.reshape(outputs[:, values:start], (-1, values, bins)) if bins
                else None,
                "flags": outputs[:, start:start + flags],
                "categories": outputs[:, start + flags:end],
                "items": outputs[:, end:]}

    def split(self, outputs) -> dict:
        """The output matrix as raw outputs per feature (and bin logits per value)."""
        by_role = self.parts(outputs)
        split = dict(zip([f.name for f in self.values], columns_of(by_role["values"])))
        if self.bins:
            split.update(zip([bin_logits(f.name) for f in self.values],
                             columns_of(by_role["bins"])))
        split.update(zip([f.name for f in self.flags], columns_of(by_role["flags"])))
        logits, bounds = by_role["categories"], self.offsets[1:].tolist()
        split.update(zip([f.name for f in self.categories],
                         ops.split(logits, bounds, axis=1) if bounds else [logits]))
        split.update(zip([f.name for f in self.items], self.split_items(by_role["items"])))
        return split

    def split_items(self, matrix) -> list:
        """A [batch, item classes] matrix (logits, or sets as 0/1) as one per item set."""
        if not self.items:
            return []
        bounds = self.item_offsets[1:].tolist()
        return ops.split(matrix, bounds, axis=1) if bounds else [matrix]

    def inputs(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A model's input matrices from per-feature arrays (an item set's: an array of
        arrays of indices)."""
        rows = len(next(iter(columns.values())))

        def stack(features: list[Feature], dtype) -> np.ndarray:
            if not features:
                return np.zeros((rows, 0), dtype)
            return np.stack([np.asarray(columns[f.name], dtype) for f in features], axis=1)

        inputs = {VALUES: stack(self.values, np.float32), FLAGS: stack(self.flags, np.float32),
                  CATEGORIES: stack(self.categories, np.int64)}
        if self.items:
            inputs[ITEMS] = self._padded([columns[f.name] for f in self.items], rows)
        return inputs

    def _padded(self, sets: list[np.ndarray], rows: int) -> np.ndarray:
        """Item sets (per column, an array of index arrays) as one [rows, longest] matrix of
        offset indices, padded with `item_classes`."""
        lengths = np.stack([[len(s) for s in column] for column in sets], axis=1)
        matrix = np.full((rows, max(int(lengths.sum(axis=1).max(initial=0)), 1)),
                         self.item_classes, np.int64)
        start = np.zeros(rows, np.int64)
        for j, (column, offset) in enumerate(zip(sets, self.item_offsets)):
            row = np.repeat(np.arange(rows), lengths[:, j])
            flat = np.concatenate(list(column) + [np.zeros(0, np.int64)]).astype(np.int64)
            ends = np.cumsum(lengths[:, j])
            within = np.arange(len(flat)) - np.repeat(ends - lengths[:, j], lengths[:, j])
            matrix[row, start[row] + within] = flat + offset
            start += lengths[:, j]
        return matrix

    def item_sets(self, inputs: dict):
        """The item sets as one [batch, item classes] 0/1 matrix (an item listed twice counts
        once)."""
        index = ops.cast(inputs[ITEMS], "int32")
        return ops.minimum(_multi_hot(index, self.item_classes + 1)[:, :self.item_classes], 1.0)

    def item_counts(self, chosen):
        """[batch, item set columns]: how many items each set of a 0/1 matrix holds."""
        return ops.transpose(ops.segment_sum(ops.transpose(chosen), self.item_segments,
                                             len(self.items)))

    def terms(self, inputs: dict, outputs):
        """Every loss term of every row, unscaled: [batch, terms] in `weights` order."""
        by_role, terms = self.parts(outputs), []
        flags = ops.cast(inputs[FLAGS], "float32")
        if self.values:
            target = ops.cast(inputs[VALUES], "float32")
            padded = ops.concatenate([flags, ops.zeros_like(target[:, :1])], axis=1)
            present = 1.0 - ops.take(padded, self.null_flags, axis=1)
            terms.append(ops.square(target - by_role["values"]) * present)
            if self.bins:
                terms.append(present * _cross_entropy(by_role["bins"],
                                                      marginal.bin_of(target, self.bins)))
        if self.flags:
            terms.append(_binary_crossentropy(flags, by_role["flags"]))
        if self.categories:
            terms.append(self._category_terms(inputs, by_role["categories"]))
        if self.items:
            terms.append(self._item_terms(inputs, by_role["items"]))
        return ops.concatenate(terms, axis=-1)

    def _category_terms(self, inputs: dict, logits):
        """Each category's cross-entropy: the log-sum-exp of its column's logits (a segment of
        the row) less the logit of its class."""
        log_total = _segment_logsumexp(logits, self.segments, len(self.categories))
        index = ops.cast(inputs[CATEGORIES], "int32") + self.offsets
        return log_total - ops.take_along_axis(logits, index, axis=1)

    def _item_terms(self, inputs: dict, logits):
        """Each item set's multinomial negative log-likelihood (Mult-VAE's): its number of
        items times the log-sum-exp of its column's logits, less the logits of its items."""
        columns = len(self.items)
        chosen = self.item_sets(inputs)
        log_total = _segment_logsumexp(logits, self.item_segments, columns)
        picked = ops.transpose(ops.segment_sum(ops.transpose(chosen * logits),
                                               self.item_segments, columns))
        return self.item_counts(chosen) * log_total - picked


def _segment_logsumexp(logits, segments: np.ndarray, count: int):
    """[batch, count]: the log-sum-exp of each segment of a row's logits."""
    by_class = ops.transpose(logits)  # [classes, batch]: segments run along the first axis
    peak = ops.stop_gradient(ops.segment_max(by_class, segments, count))
    shifted = ops.exp(by_class - ops.take(peak, segments, axis=0))
    return ops.transpose(ops.log(ops.segment_sum(shifted, segments, count)) + peak)


def columns_of(matrix) -> list:
    """A matrix's columns (along its second axis), from one op rather than one slice each."""
    return ops.unstack(matrix, axis=1) if matrix.shape[1] else []


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


def marginal_scales(features: Features, batches: Iterable[dict[str, np.ndarray]]
                    ) -> dict[str, float]:
    """Each loss term's value for a model that predicts only the marginal distribution: the
    variance of a value (over non-null rows), the entropy of a category, a flag or a quantile
    bin, an item set's mean negative log-likelihood under the items' frequencies; floored at
    MIN_SCALE."""
    rows: dict[str, list[np.ndarray]] = {}
    sets: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        for feature in features:
            if feature.role is Role.ITEMS:
                sets.setdefault(feature.name, []).extend(batch[feature.name])
                continue
            values = np.asarray(batch[feature.name])
            present = np.asarray(batch.get(null_flag(feature.name), np.zeros(len(values)))) == 0
            if feature.role is Role.VALUE:
                rows.setdefault(feature.name, []).append(values[present].astype(np.float64))
                if feature.bins:
                    bins = np.asarray(marginal.bin_of(values.astype(np.float32), feature.bins))
                    rows.setdefault(bin_logits(feature.name), []).append(bins[present])
            else:
                rows.setdefault(feature.name, []).append(values.astype(np.int64))
    scales = {f.name: _set_scale(sets.get(f.name, []), f.classes)
              for f in features if f.role is Role.ITEMS}
    for feature in features:
        if feature.role is Role.ITEMS:
            continue
        scales[feature.name] = _scale(feature.role, rows.get(feature.name, []))
        if feature.bins:
            scales[bin_logits(feature.name)] = _scale(Role.CATEGORY,
                                                      rows.get(bin_logits(feature.name), []))
    return scales


def _set_scale(sets: list[np.ndarray], classes: int) -> float:
    if not sets:
        return 1.0
    counts = np.bincount(np.concatenate([np.unique(s) for s in sets]).astype(np.int64),
                         minlength=classes)
    log_share = np.log(np.maximum(counts, 1) / max(counts.sum(), 1))
    return max(float(-(counts * log_share).sum() / len(sets)), MIN_SCALE)


def _scale(role: Role, parts: list[np.ndarray]) -> float:
    values = np.concatenate(parts) if parts else np.zeros(0)
    if len(values) == 0:
        return 1.0
    if role is Role.VALUE:
        return max(float(np.var(values)), MIN_SCALE)
    shares = np.bincount(values.astype(np.int64)) / len(values)
    shares = shares[shares > 0]
    return max(float(-(shares * np.log(shares)).sum()), MIN_SCALE)
