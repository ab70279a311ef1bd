"""The autoencoder: an undercomplete encoder/decoder over the transformed features (Keras 3).

Inputs are the transformed features of `aepipe.features`: standardised values and 0/1 flags
enter as they are, categories as one-hot vectors. The encoder compresses them into a short code;
the decoder emits one output per value, one logit per flag and a row of logits per category.
Each feature's reconstruction is scored with the loss that fits it (squared error, binary or
categorical cross-entropy), and a row's reconstruction error is the mean over its features:
the training loss and the exported `score` signature are that same function.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers, ops

from aepipe.features import Features, Role, null_flag

__all__ = ["Autoencoder"]


class Autoencoder(keras.Model):
    """Encoder and decoder over a `Features` layout; `call` returns the decoder's raw outputs."""

    def __init__(self, features: Features, *, code_size: int, hidden: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        self.layout = features
        self.encoder = keras.Sequential(
            [layers.Dense(width, activation="relu") for width in hidden]
            + [layers.Dense(code_size, name="code")],
            name="encoder",
        )
        self.decoder = keras.Sequential(
            [layers.Dense(width, activation="relu") for width in reversed(hidden)]
            + [layers.Dense(features.output_width, name="outputs")],
            name="decoder",
        )

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

    def encode(self, inputs: dict):
        return self.encoder(self.embed(inputs))

    def decode(self, code) -> dict:
        """Raw decoder outputs per feature: values, logits of flags, logits of categories."""
        outputs = self.decoder(code)
        split, start = {}, 0
        for feature in self.layout:
            piece = outputs[:, start:start + feature.width]
            split[feature.name] = piece if feature.role is Role.CATEGORY else piece[:, 0]
            start += feature.width
        return split

    def call(self, inputs: dict) -> dict:
        return self.decode(self.encode(inputs))

    def reconstruction_error(self, inputs: dict, outputs: dict):
        """Per row, the mean over features of each feature's reconstruction loss.

        A value's squared error does not count where the value is null (its flag says so).
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
                terms.append(self._masked_squared_error(inputs, feature.name, target, output))
        return ops.mean(ops.stack(terms, axis=-1), axis=-1)

    def _masked_squared_error(self, inputs, name, target, output):
        error = ops.square(ops.cast(target, "float32") - output)
        flag = null_flag(name)
        if flag in inputs:
            error = error * (1.0 - ops.cast(inputs[flag], "float32"))
        return error

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return ops.mean(self.reconstruction_error(x, y_pred))


def _binary_crossentropy(target, logit):
    """Numerically stable binary cross-entropy from a logit, per element."""
    return ops.relu(logit) - logit * target + ops.log1p(ops.exp(-ops.abs(logit)))
