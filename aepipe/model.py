"""The autoencoder: an undercomplete encoder/decoder over the transformed features (Keras 3).

Inputs are the transformed features of `aepipe.features`: standardised values and 0/1 flags
enter as they are, categories as one-hot vectors. The encoder compresses them into a short code;
the decoder emits one output per value (and, with quantile bins, a row of logits for the bin it
falls in), one logit per flag and a row of logits per category.
Each feature's reconstruction is scored with the loss that fits it (squared error, binary or
categorical cross-entropy), divided by its `scale`: what that loss is for a model that knows only
the column's marginal distribution (the variance of a value, the entropy of a category, a flag or
a quantile bin; see `marginal_scales`). So every term reads as the share of the column left
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

from typing import Iterable, Mapping, Sequence

import keras
import numpy as np
from keras import layers, ops

from aepipe import marginal
from aepipe.features import Features, Role, bin_logits, null_flag

__all__ = ["Autoencoder", "VariationalAutoencoder", "MODELS", "KL", "marginal_scales"]

KL = "__kl__"  # a model kind's per-row penalty (the VAE's KL divergence), beside its outputs
MIN_SCALE = 0.05  # floor of a loss term's scale: a near-constant column does not dominate


class Autoencoder(keras.Model):
    """The plain autoencoder, and the base of every model kind: an encoder and a decoder over a
    `Features` layout, with the scaled reconstruction loss. `call` returns the decoder's raw
    outputs (and the kind's per-row `penalty`, if any, under `KL`).

    A kind fills in three hooks: how many encoder outputs make one code dimension
    (`code_outputs`), the code it trains on (`training_code`) and the penalty added to the loss
    (`penalty`).
    """

    code_outputs = 1

    def __init__(self, features: Features, *, code_size: int, hidden: Sequence[int],
                 scales: Mapping[str, float] | None = None, beta: float = 1.0,
                 input_dropout: float = 0.0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.layout = features
        self.scales = dict(scales or {})  # loss term -> its marginal-only value; 1 when absent
        self.columns = len({f.column.name for f in features})
        self.code_size = code_size
        self.beta = beta
        self.corrupt = layers.Dropout(input_dropout, seed=seed)
        self.encoder = keras.Sequential(
            [layers.Dense(width, activation="relu") for width in hidden]
            + [layers.Dense(code_size * self.code_outputs, name="code")],
            name="encoder",
        )
        self.decoder = keras.Sequential(
            [layers.Dense(width, activation="relu") for width in reversed(hidden)]
            + [layers.Dense(features.output_width, name="outputs")],
            name="decoder",
        )
        self.noise = keras.random.SeedGenerator(seed)

    def embed(self, inputs: dict) -> keras.KerasTensor:
        """The encoder's input vector: values and flags as they are, categories one-hot."""
        parts = []
        for feature in self.layout:
            x = inputs[feature.name]
            if feature.role is Role.CATEGORY:
                parts.append(ops.one_hot(ops.cast(x, "int32"), feature.classes))
            else:
                parts.append(ops.expand_dims(ops.cast(x, "float32"), -1))
        return ops.concatenate(parts, axis=-1)

    def encode(self, inputs: dict, training: bool = False):
        """The code of each row (for the VAE, its posterior mean)."""
        return self.encoder_outputs(inputs, training)[:, :self.code_size]

    def encoder_outputs(self, inputs: dict, training: bool = False):
        """`code_outputs` values per code dimension: the code first, then what the kind adds."""
        return self.encoder(self.corrupt(self.embed(inputs), training=training),
                            training=training)

    def decode(self, code) -> dict:
        """Raw decoder outputs per feature: values, logits of flags, logits of categories."""
        outputs = self.decoder(code)
        split, start = {}, 0
        for feature in self.layout:
            piece = outputs[:, start:start + feature.width]
            split[feature.name] = piece if feature.role is Role.CATEGORY else piece[:, 0]
            if feature.bins:
                split[bin_logits(feature.name)] = piece[:, 1:]
            start += feature.width
        return split

    def call(self, inputs: dict, training: bool = False) -> dict:
        encoded = self.encoder_outputs(inputs, training)
        outputs = self.decode(self.training_code(encoded) if training
                              else encoded[:, :self.code_size])
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

    def reconstruction_error(self, inputs: dict, outputs: dict):
        """Per row, the mean over columns of each column's mean scaled reconstruction loss.

        A value's squared error (and its bin's cross-entropy) does not count where the value is
        null (its flag says so).
        """
        columns: dict[str, list] = {}
        for name, column, term in self._terms(inputs, outputs):
            columns.setdefault(column, []).append(term / self.scales.get(name, 1.0))
        return ops.mean(ops.stack([ops.mean(ops.stack(terms, axis=-1), axis=-1)
                                   for terms in columns.values()], axis=-1), axis=-1)

    def _terms(self, inputs: dict, outputs: dict):
        """(term name, column, per-row loss) for every loss term of every feature."""
        for feature in self.layout:
            target, output = inputs[feature.name], outputs[feature.name]
            column = feature.column.name
            if feature.role is Role.CATEGORY:
                yield feature.name, column, keras.losses.sparse_categorical_crossentropy(
                    ops.cast(target, "int32"), output, from_logits=True)
            elif feature.role is Role.FLAG:
                yield feature.name, column, _binary_crossentropy(
                    ops.cast(target, "float32"), output)
            else:
                target = ops.cast(target, "float32")
                yield feature.name, column, _masked(inputs, feature.name,
                                                    ops.square(target - output))
                if feature.bins:
                    yield bin_logits(feature.name), column, _masked(
                        inputs, feature.name, keras.losses.sparse_categorical_crossentropy(
                            marginal.bin_of(target, feature.bins),
                            outputs[bin_logits(feature.name)], from_logits=True))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.reconstruction_error(x, y_pred)
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


def _masked(inputs: dict, name: str, error):
    """A value's error, zero where the value is null (its flag says so)."""
    flag = null_flag(name)
    if flag in inputs:
        error = error * (1.0 - ops.cast(inputs[flag], "float32"))
    return error


def _binary_crossentropy(target, logit):
    """Numerically stable binary cross-entropy from a logit, per element."""
    return ops.relu(logit) - logit * target + ops.log1p(ops.exp(-ops.abs(logit)))


def marginal_scales(features: Features, batches: Iterable[dict[str, np.ndarray]]
                    ) -> dict[str, float]:
    """Each loss term's value for a model that predicts only the marginal distribution: the
    variance of a value (over non-null rows), the entropy of a category, a flag or a quantile
    bin; floored at MIN_SCALE."""
    rows: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        for feature in features:
            values = np.asarray(batch[feature.name])
            present = np.asarray(batch.get(null_flag(feature.name), np.zeros(len(values)))) == 0
            if feature.role is Role.VALUE:
                rows.setdefault(feature.name, []).append(values[present].astype(np.float64))
                if feature.bins:
                    bins = np.asarray(marginal.bin_of(values.astype(np.float32), feature.bins))
                    rows.setdefault(bin_logits(feature.name), []).append(bins[present])
            else:
                rows.setdefault(feature.name, []).append(values.astype(np.int64))
    scales = {}
    for feature in features:
        scales[feature.name] = _scale(feature.role, rows.get(feature.name, []))
        if feature.bins:
            scales[bin_logits(feature.name)] = _scale(Role.CATEGORY,
                                                      rows.get(bin_logits(feature.name), []))
    return scales


def _scale(role: Role, parts: list[np.ndarray]) -> float:
    values = np.concatenate(parts) if parts else np.zeros(0)
    if len(values) == 0:
        return 1.0
    if role is Role.VALUE:
        return max(float(np.var(values)), MIN_SCALE)
    shares = np.bincount(values.astype(np.int64)) / len(values)
    shares = shares[shares > 0]
    return max(float(-(shares * np.log(shares)).sum()), MIN_SCALE)
