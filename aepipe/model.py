"""The autoencoder: an undercomplete encoder/decoder over the transformed features (Keras 3).

Inputs are the transformed features of `aepipe.features`: standardised values and 0/1 flags
enter as they are, categories as one-hot vectors. The encoder compresses them into a short code;
the decoder emits one output per value (and, with quantile bins, a row of logits for the bin it
falls in), one logit per flag and a row of logits per category.
Each feature's reconstruction is scored with the loss that fits it (squared error, binary or
categorical cross-entropy), and a row's reconstruction error is the mean over its features:
the training loss and the exported `score` signature are that same function.

The variational variant (as in keras-io's VAE example) has the encoder emit a mean and a log
variance per code dimension, trains on codes drawn from that posterior, and adds the KL
divergence from N(0, I), weighted by `beta` and divided by the number of features so that it
keeps its ELBO proportion to the per-feature mean above. Its code is the posterior mean. With
`input_dropout`, the encoder's input is corrupted while training (a denoising autoencoder).
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers, ops

from aepipe import marginal
from aepipe.features import Features, Role, bin_logits, null_flag

__all__ = ["Autoencoder", "KL"]

KL = "__kl__"  # the VAE's per-row KL divergence, beside the decoder's outputs


class Autoencoder(keras.Model):
    """Encoder and decoder over a `Features` layout; `call` returns the decoder's raw outputs."""

    def __init__(self, features: Features, *, code_size: int, hidden: Sequence[int],
                 variational: bool = False, beta: float = 1.0, input_dropout: float = 0.0,
                 seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.layout = features
        self.code_size = code_size
        self.variational = variational
        self.beta = beta
        self.corrupt = layers.Dropout(input_dropout, seed=seed)
        self.encoder = keras.Sequential(
            [layers.Dense(width, activation="relu") for width in hidden]
            + [layers.Dense(code_size * (2 if variational else 1), name="code")],
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
        return self.posterior(inputs, training)[0]

    def posterior(self, inputs: dict, training: bool = False):
        """The code's mean and, for the VAE, its log variance (None for the plain model)."""
        hidden = self.encoder(self.corrupt(self.embed(inputs), training=training),
                              training=training)
        if not self.variational:
            return hidden, None
        return hidden[:, :self.code_size], hidden[:, self.code_size:]

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
        mean, log_variance = self.posterior(inputs, training)
        if log_variance is None:
            return self.decode(mean)
        code = mean
        if training:
            noise = keras.random.normal(ops.shape(mean), seed=self.noise)
            code = mean + ops.exp(0.5 * log_variance) * noise
        outputs = self.decode(code)
        outputs[KL] = -0.5 * ops.sum(
            1.0 + log_variance - ops.square(mean) - ops.exp(log_variance), axis=-1)
        return outputs

    def reconstruction_error(self, inputs: dict, outputs: dict):
        """Per row, the mean over features of each feature's reconstruction loss.

        A value's squared error (and its bin's cross-entropy) does not count where the value is
        null (its flag says so).
        """
        terms = []
        for feature in self.layout:
            target, output = inputs[feature.name], outputs[feature.name]
            if feature.role is Role.CATEGORY:
                terms.append(keras.losses.sparse_categorical_crossentropy(
                    ops.cast(target, "int32"), output, from_logits=True))
            elif feature.role is Role.FLAG:
                terms.append(_binary_crossentropy(ops.cast(target, "float32"), output))
            else:
                target = ops.cast(target, "float32")
                terms.append(_masked(inputs, feature.name, ops.square(target - output)))
                if feature.bins:
                    terms.append(_masked(inputs, feature.name, (
                        keras.losses.sparse_categorical_crossentropy(
                            marginal.bin_of(target, feature.bins),
                            outputs[bin_logits(feature.name)], from_logits=True))))
        return ops.mean(ops.stack(terms, axis=-1), axis=-1)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.reconstruction_error(x, y_pred)
        if KL in y_pred:
            loss = loss + self.beta * y_pred[KL] / len(self.layout.items)
        return ops.mean(loss)


def _masked(inputs: dict, name: str, error):
    """A value's error, zero where the value is null (its flag says so)."""
    flag = null_flag(name)
    if flag in inputs:
        error = error * (1.0 - ops.cast(inputs[flag], "float32"))
    return error


def _binary_crossentropy(target, logit):
    """Numerically stable binary cross-entropy from a logit, per element."""
    return ops.relu(logit) - logit * target + ops.log1p(ops.exp(-ops.abs(logit)))
