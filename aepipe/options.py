"""Every job's options, one typed record per job: the vocabulary the command line, the
PTransforms and the manifest share.

Each field is declared once, with its default and its help (`option`); `pipelines.arguments`
makes the command line's flags from these fields (``vocabulary_size`` is
``--vocabulary-size``), so an option's name and meaning live here only. The records check
their own ranges and raise OptionsError, so a PTransform built in a user's own pipeline refuses a
bad option as the command line does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aepipe.errors import OptionsError

__all__ = ["option", "REQUIRED", "ModelOptions", "EncodeOptions", "SampleOptions",
           "RecommendOptions", "EvaluateOptions", "InferSchemaOptions", "MODELS",
           "NUMERIC_TRANSFORMS", "PRIORS", "CALIBRATIONS", "ACTIVATIONS", "DECAYS", "TABLE_SHAPE",
           "ITEM_SET_SHAPE", "EASE_MAX_ITEMS"]

# aepipe.model.autoencoder.MODELS: a plain autoencoder or a variational one; and EASE/EDLAE, a
# linear item-to-item autoencoder in closed form (aepipe.model.linear), for item sets alone
MODELS = ("ae", "vae", "ease")
EASE_MAX_ITEMS = 20_000  # EASE solves an items x items system on one worker
PRIORS = ("gaussian_mixture",)  # aepipe.model.prior.PRIORS: densities fitted to the codes
# how aepipe.model.calibration refits the mixture's weights: to the frequencies of each column
# and each pair of columns, of each column, or not at all
CALIBRATIONS = ("pairs", "columns", "none")
NUMERIC_TRANSFORMS = ("quantile", "standard")  # see aepipe.transform.marginal; or standardised
ACTIVATIONS = ("relu", "tanh")  # of the hidden layers
# how the learning rate falls over the step budget (aepipe.model.fitting.learning_rate)
DECAYS = ("cosine", "constant")
# The shape a model takes when its options leave it unset: one for tables of ordinary columns
# (chosen on four tables, see docs/train.md), one for tables with an item set column
# (Mult-VAE's: one tanh layer of 600, a code of 200; measured on MovieLens 100K, see
# docs/recommend.md, where tanh found 0.06 more NDCG@100 than relu). A table's model takes
# 10,000 steps to converge and starts faster (docs/train.md); an item set's stops after a few
# hundred, at Mult-VAE's rate.
TABLE_SHAPE = {"code_size": 8, "hidden": (128, 64), "activation": "relu", "beta": 0.01,
               "learning_rate": 3e-3}
ITEM_SET_SHAPE = {"code_size": 200, "hidden": (600,), "activation": "tanh", "beta": 0.001,
                  "learning_rate": 1e-3}


REQUIRED = dataclasses.MISSING
PASSTHROUGH_HELP = ("more input columns to copy to the output, comma-separated (after keys and "
                    "timestamps)")


def option(default: Any, help: str, **cli: Any) -> Any:
    """A field of an options record: its default (REQUIRED: none), its help, and how the
    command line reads it (`choices`, `metavar`)."""
    return dataclasses.field(default=default, metadata={"help": help, **cli})


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelOptions:
    """`aepipe train`: how the autoencoder is shaped and trained.

    The shape (`code_size`, `hidden`, `activation`, `beta`) and the `learning_rate` left as
    None take the default of the table's kind, TABLE_SHAPE or ITEM_SET_SHAPE (`for_table`).

    Training runs for at most `steps` optimisation steps of `batch_size` rows (fewer rows per
    step when the table is small, so that a pass has several steps), validates every pass or
    every 100 steps, whichever is more, and stops after `patience` validations without
    improvement.
    """

    model: str | None = option(None, "vae: a variational autoencoder with a small KL weight; "
                               "ae: a plain autoencoder (both sample from a density fitted to "
                               "the codes); ease: a linear item-to-item model in closed form, "
                               "for a table of one item set column (default: ease for such a "
                               "table, else vae)", choices=MODELS)
    beta: float | None = option(None, "weight of the VAE's KL term (1 is the ELBO; default "
                                f"{TABLE_SHAPE['beta']}, {ITEM_SET_SHAPE['beta']} with item "
                                "sets)")
    input_dropout: float = option(0.0, "dropout rate on the encoder's input while training "
                                  "(a denoising autoencoder)")
    numeric: str = option("quantile", "how numeric columns enter the model: quantile (normal "
                          "scores, keeps skewed and zero-inflated shapes) or standard",
                          choices=NUMERIC_TRANSFORMS)
    code_size: int | None = option(None, f"default {TABLE_SHAPE['code_size']}, "
                                   f"{ITEM_SET_SHAPE['code_size']} with item sets")
    hidden: tuple[int, ...] | None = option(
        None, "hidden layer widths of the encoder, comma-separated; the decoder mirrors them "
        "(default 128,64; 600 with item sets)")
    activation: str | None = option(None, f"of the hidden layers (default "
                                    f"{TABLE_SHAPE['activation']}, "
                                    f"{ITEM_SET_SHAPE['activation']} with item sets)",
                                    choices=ACTIVATIONS)
    steps: int = option(10_000, "most optimisation steps (small tables get smaller batches "
                        "and more passes, so as many steps as large ones)")
    epochs: int | None = option(None, "most passes over the training rows (default: no cap)")
    batch_size: int = option(256, "rows per step (fewer when a pass would have under 8 steps)")
    learning_rate: float | None = option(
        None, f"Adam's learning rate at the first step (default {TABLE_SHAPE['learning_rate']}, "
        f"{ITEM_SET_SHAPE['learning_rate']} with item sets), times the square root of the "
        "batch's share of --batch-size where a small table gets smaller batches")
    learning_rate_decay: str = option(
        "cosine", "how the learning rate falls over the step budget: along a half cosine to a "
        "hundredth of it (cosine), or not at all (constant)", choices=DECAYS)
    patience: int = option(10, "validations without improvement before stopping (one per "
                           "pass or per 100 steps, whichever is more)")
    validation_fraction: float = option(0.1, "share of the rows held out for validation, "
                                        "chosen by a hash of their values")
    prior: str = option("gaussian_mixture", "the density fitted to the codes that sampling "
                        "draws from", choices=PRIORS)
    prior_calibration: str = option(
        "pairs", "refit the mixture's weights to the training rows' frequencies of each column "
        "and each pair of columns (pairs), of each column (columns), or not (none)",
        choices=CALIBRATIONS)
    prior_components: int = option(512, "most components of the Gaussian mixture fitted to "
                                   "the codes (fewer on small tables: at most one per 81 "
                                   "training rows at code size 8)")
    seed: int = option(0, "seed of the weights' initialisation, the batches' order and the "
                       "prior's fit")
    vocabulary_size: int = option(4096, "most frequent categories kept per categorical "
                                  "column (the others share an out-of-vocabulary class, "
                                  "which sampling never writes)")
    item_vocabulary_size: int = option(20_000, "most frequent items kept per item set column")
    item_dropout: float = option(0.5, "share of a set's items hidden from the encoder while "
                                 "training")
    ease_l2: float | None = option(None, "--model ease: the L2 weight (lambda); default: the "
                                   "value whose recommendations find most of the validation "
                                   "rows' hidden items")
    ease_dropout: float = option(0.7, "--model ease: the emphasised dropout of EDLAE (Steck "
                                 "2020), a per-item L2 weight; 0 is EASE")
    ease_popularity: float = option(0.2, "--model ease: an item's scores are divided by its "
                                    "count to this power; 0 leaves them")

    def __post_init__(self):
        if (self.code_size or 1) < 1 or any(h < 1 for h in self.hidden or ()):
            raise OptionsError("code size and hidden layer widths must be positive")
        if (self.steps < 1 or self.batch_size < 1 or (self.learning_rate or 1.0) <= 0
                or (self.epochs is not None and self.epochs < 1)):
            raise OptionsError("steps, epochs, batch size and learning rate must be positive")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise OptionsError("the validation fraction must be in [0, 1)")
        if self.activation not in (None, *ACTIVATIONS):
            raise OptionsError(f"the activation must be one of {', '.join(ACTIVATIONS)}")
        if self.learning_rate_decay not in DECAYS:
            raise OptionsError(f"the learning rate decay must be one of {', '.join(DECAYS)}")
        if self.model not in (None, *MODELS) or self.numeric not in NUMERIC_TRANSFORMS:
            raise OptionsError(f"the model must be one of {', '.join(MODELS)} and the numeric "
                               f"transform one of {', '.join(NUMERIC_TRANSFORMS)}")
        if (self.beta or 0.0) < 0 or not (0.0 <= self.input_dropout < 1.0
                                          and 0.0 <= self.item_dropout < 1.0):
            raise OptionsError("beta must not be negative and input and item dropout must be "
                               "in [0, 1)")
        if self.vocabulary_size < 1 or self.item_vocabulary_size < 1:
            raise OptionsError("--vocabulary-size and --item-vocabulary-size must be positive")
        if self.prior_calibration not in CALIBRATIONS:
            raise OptionsError(f"the prior calibration must be one of {', '.join(CALIBRATIONS)}")
        if self.prior not in PRIORS or self.prior_components < 1:
            raise OptionsError(f"the prior must be one of {', '.join(PRIORS)}, with at least "
                               "one component")
        if (self.ease_l2 or 0.0) < 0 or not 0.0 <= self.ease_dropout < 1.0:
            raise OptionsError("--ease-l2 must not be negative and --ease-dropout must be in "
                               "[0, 1)")
        if self.model == "ease" and self.item_vocabulary_size > EASE_MAX_ITEMS:
            raise OptionsError(f"--model ease solves an items x items system on one worker: "
                               f"at most {EASE_MAX_ITEMS:,} items (--item-vocabulary-size "
                               f"{self.item_vocabulary_size:,})")

    def for_table(self, *, item_sets: bool, only_item_sets: bool = False) -> "ModelOptions":
        """These options with the unset ones at the defaults of a table with (or without) item
        set columns, or of item sets alone."""
        defaults = dict(ITEM_SET_SHAPE if item_sets else TABLE_SHAPE,
                        model="ease" if only_item_sets else "vae")
        return dataclasses.replace(self, **{name: value for name, value in defaults.items()
                                            if getattr(self, name) is None})


@dataclasses.dataclass(frozen=True, kw_only=True)
class EncodeOptions:
    """`aepipe encode`: what the encoded output holds besides the codes and scores."""

    passthrough: tuple[str, ...] = option((), PASSTHROUGH_HELP)
    code_as_list: bool = option(False, "one fixed_size_list<float32> column ae_code instead "
                                "of ae_0 ... ae_{k-1}")
    flag_above: float | None = option(None, "add ae_anomaly: ae_score above this percentile "
                                      "of training's", metavar="PERCENTILE")
    explain: bool = option(False, "add ae_share_<column> per modelled column: its share of "
                           "ae_score, which columns made the row unusual")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SampleOptions:
    """`aepipe sample`: how many rows, from which seed, with which fresh keys, and how far
    from the training rows."""

    num_rows: int | None = option(None, "how many synthetic rows (not with --conditions)")
    seed: int = option(REQUIRED, "the same model, number of rows (or conditions) and seed give "
                       "the same rows on any runner")
    conditions: str | None = option(None, "Parquet files of rows of fixed values: one synthetic "
                                    "row per row (or its integer num_rows column), with the "
                                    "row's non-null cells kept and the others drawn given them")
    key_prefix: str = option("syn-", "prefix of the fresh values of string key columns; they "
                             "are zero-padded to be longer than any training key")
    min_distance: float = option(0.0, "drop synthetic rows closer than this to a --real row "
                                 "(Euclidean, in the model's input space)")
    real: str | None = option(None, "the training Parquet files, for --min-distance")

    def __post_init__(self):
        if (self.num_rows is None) == (self.conditions is None):
            raise OptionsError("give --num-rows or --conditions (one of them)")
        if self.num_rows is not None and self.num_rows < 0:
            raise OptionsError(f"--num-rows must not be negative (got {self.num_rows})")
        if self.min_distance < 0:
            raise OptionsError(f"--min-distance must not be negative (got {self.min_distance})")
        if self.min_distance and not self.real:
            raise OptionsError("--min-distance needs --real, the training data")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecommendOptions:
    """`aepipe recommend`: how many items to recommend per row, and from which item set
    column."""

    top_k: int = option(20, "items to recommend per row")
    exclude_seen: bool = option(False, "never recommend an item the row already holds")
    column: str | None = option(None, "the item set column to recommend from (default: the "
                                "model's only one)")
    passthrough: tuple[str, ...] = option((), PASSTHROUGH_HELP)

    def __post_init__(self):
        if self.top_k < 1:
            raise OptionsError(f"--top-k must be positive (got {self.top_k})")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluateOptions:
    """`aepipe evaluate`: which real rows, which target, how many rows, which seed."""

    real: str = option(REQUIRED, "the real Parquet files the synthetic rows imitate (the "
                       "training rows)")
    holdout: str | None = option(None, "real Parquet files the model did not see (default: a "
                                 "fifth of --real, split with the seed)")
    target: str | None = option(None, "a modelled column to predict, for the ML-efficacy "
                                "figures")
    max_rows: int = option(100_000, "rows read per input at most (a seeded sample)")
    seed: int = option(0, "seed of the samples and of the split")

    def __post_init__(self):
        if self.max_rows < 2:
            raise OptionsError(f"--max-rows must be at least 2 (got {self.max_rows})")


@dataclasses.dataclass(frozen=True, kw_only=True)
class InferSchemaOptions:
    """`aepipe infer-schema`: how many rows the guess reads."""

    sample_rows: int = option(100_000, "rows read to count nulls and distinct values")
