"""Options of a training run: the model's shape and how it is fitted."""

from __future__ import annotations

import dataclasses

from aepipe.errors import OptionsError

__all__ = ["ModelOptions"]


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """How the autoencoder is shaped and trained."""

    code_size: int = 8
    hidden: tuple[int, ...] = (64, 32)
    epochs: int = 100
    batch_size: int = 256
    learning_rate: float = 1e-3
    patience: int = 5
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
