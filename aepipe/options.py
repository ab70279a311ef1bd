"""Options of a training run: the model's shape and how it is fitted."""

from __future__ import annotations

import dataclasses

from aepipe.errors import OptionsError

__all__ = ["ModelOptions", "MODELS", "NUMERIC_TRANSFORMS", "PRIORS", "ACTIVATIONS"]

MODELS = ("ae", "vae")  # aepipe.model.MODELS: a plain autoencoder or a variational one
PRIORS = ("gaussian_mixture",)  # aepipe.prior.PRIORS: densities fitted to the codes
NUMERIC_TRANSFORMS = ("quantile", "standard")  # see aepipe.marginal; or (x - mean) / std
ACTIVATIONS = ("relu", "tanh")  # of the hidden layers
# The shape a model takes when its options leave it unset: one for tables of ordinary columns
# (chosen on four tables, see README "Quality"), one for tables with an item set column
# (Mult-VAE's: one tanh layer of 600, a code of 200; measured on MovieLens 100K, see README
# "Recommend", where tanh found 0.06 more NDCG@100 than relu).
TABLE_SHAPE = {"code_size": 8, "hidden": (128, 64), "activation": "relu", "beta": 0.01}
ITEM_SET_SHAPE = {"code_size": 200, "hidden": (600,), "activation": "tanh", "beta": 0.001}


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """How the autoencoder is shaped and trained.

    The shape (`code_size`, `hidden`, `activation`, `beta`) left as None takes the default of
    the table's kind, TABLE_SHAPE or ITEM_SET_SHAPE (`for_table`).

    `model` "vae" trains a variational autoencoder whose KL term weighs `beta` (small by
    default: a regulariser that keeps the codes smooth, not a prior to sample from); "ae" a
    plain one. Either samples from a Gaussian mixture of `prior_components` fitted to its codes.
    `input_dropout` corrupts the encoder's input while training (a denoising autoencoder);
    `item_dropout` drops items from the item sets the encoder reads while training, so that the
    model learns to find a set's other items (Mult-VAE's 0.5).
    `numeric` is how numeric columns enter the model: their normal scores ("quantile") or
    standardised.

    Training runs for at most `steps` optimisation steps of `batch_size` rows (fewer rows per
    step when the table is small, so that a pass has at least `MIN_STEPS_PER_PASS` steps),
    validates every pass or every `VALIDATION_STEPS` steps, whichever is more, and stops after
    `patience` validations without improvement. `epochs`, when given, also caps the passes over
    the training rows.
    """

    model: str = "vae"
    beta: float | None = None
    input_dropout: float = 0.0
    numeric: str = "quantile"
    code_size: int | None = None
    hidden: tuple[int, ...] | None = None
    activation: str | None = None
    steps: int = 10_000
    epochs: int | None = None
    batch_size: int = 256
    learning_rate: float = 1e-3
    patience: int = 10
    validation_fraction: float = 0.1
    prior: str = "gaussian_mixture"
    prior_components: int = 128
    seed: int = 0
    top_k: int = 1000  # the most values a categorical column's vocabulary keeps
    item_top_k: int = 20_000  # the most items an item set column's vocabulary keeps
    item_dropout: float = 0.5

    def __post_init__(self):
        if (self.code_size or 1) < 1 or any(h < 1 for h in self.hidden or ()):
            raise OptionsError("code size and hidden layer widths must be positive")
        if (self.steps < 1 or self.batch_size < 1 or self.learning_rate <= 0
                or (self.epochs is not None and self.epochs < 1)):
            raise OptionsError("steps, epochs, batch size and learning rate must be positive")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise OptionsError("the validation fraction must be in [0, 1)")
        if self.activation not in (None, *ACTIVATIONS):
            raise OptionsError(f"the activation must be one of {', '.join(ACTIVATIONS)}")
        if self.model not in MODELS or self.numeric not in NUMERIC_TRANSFORMS:
            raise OptionsError(f"the model must be one of {', '.join(MODELS)} and the numeric "
                               f"transform one of {', '.join(NUMERIC_TRANSFORMS)}")
        if (self.beta or 0.0) < 0 or not (0.0 <= self.input_dropout < 1.0
                                 and 0.0 <= self.item_dropout < 1.0):
            raise OptionsError("beta must not be negative and input and item dropout must be "
                               "in [0, 1)")
        if self.top_k < 1 or self.item_top_k < 1:
            raise OptionsError("--top-k and --item-top-k must be positive")
        if self.prior not in PRIORS or self.prior_components < 1:
            raise OptionsError(f"the prior must be one of {', '.join(PRIORS)}, with at least "
                               "one component")

    def for_table(self, *, item_sets: bool) -> "ModelOptions":
        """These options with the unset shape options at the defaults of a table with (or
        without) item set columns."""
        defaults = ITEM_SET_SHAPE if item_sets else TABLE_SHAPE
        return dataclasses.replace(self, **{name: value for name, value in defaults.items()
                                            if getattr(self, name) is None})
