"""Options of a training run: the model's shape and how it is fitted."""

from __future__ import annotations

import dataclasses

from aepipe.errors import OptionsError

__all__ = ["ModelOptions", "MODELS", "NUMERIC_TRANSFORMS"]

MODELS = ("ae", "vae")  # a plain autoencoder with a fitted prior, or a variational one
NUMERIC_TRANSFORMS = ("quantile", "standard")  # see aepipe.marginal; or (x - mean) / std


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """How the autoencoder is shaped and trained.

    `model` "vae" trains a variational autoencoder whose KL term weighs `beta` and samples from
    N(0, I); "ae" samples from a Gaussian mixture fitted to its codes. `input_dropout` corrupts
    the encoder's input while training (a denoising autoencoder). `numeric` is how numeric
    columns enter the model: their normal scores ("quantile") or standardised.
    """

    model: str = "vae"
    beta: float = 0.5
    input_dropout: float = 0.0
    numeric: str = "quantile"
    code_size: int = 8
    hidden: tuple[int, ...] = (64, 32)
    epochs: int = 100
    batch_size: int = 256
    learning_rate: float = 1e-3
    patience: int = 10
    validation_fraction: float = 0.1
    seed: int = 0
    top_k: int = 1000

    def __post_init__(self):
        if self.code_size < 1 or any(h < 1 for h in self.hidden):
            raise OptionsError("code size and hidden layer widths must be positive")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise OptionsError("epochs, batch size and learning rate must be positive")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise OptionsError("the validation fraction must be in [0, 1)")
        if self.model not in MODELS or self.numeric not in NUMERIC_TRANSFORMS:
            raise OptionsError(f"the model must be one of {', '.join(MODELS)} and the numeric "
                               f"transform one of {', '.join(NUMERIC_TRANSFORMS)}")
        if self.beta < 0 or not 0.0 <= self.input_dropout < 1.0:
            raise OptionsError("beta must not be negative and input dropout must be in [0, 1)")
