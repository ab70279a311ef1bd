"""Fitting the autoencoder on the transformed files, and everything a model directory records
of the fit: the step schedule, the losses, the reconstruction-error percentiles, the residual
noise, the prior over the codes (`fit_and_export`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import posixpath
import time
from typing import Any, Mapping, NamedTuple, Sequence

import keras
import numpy as np
import pyarrow as pa
import tensorflow as tf

from aepipe.model import data, export, linear
from aepipe.model.autoencoder import MODELS, OUTPUTS, Autoencoder, marginal_scales
from aepipe.model.calibration import calibrate
from aepipe.model.prior import PRIORS, Prior
from aepipe.options import ModelOptions
from aepipe.store.manifest import SAVED_MODEL, TRANSFORM_FN, Manifest, TrainingRun
from aepipe.table.layout import CATEGORIES, NULLS, SCALARS, Layout, items_of
from aepipe.table.schema import Schema
from aepipe.transform import marginal

__all__ = ["TrainingData", "FitResult", "Schedule", "fit", "fit_and_export", "learning_rate"]

_LOG = logging.getLogger(__name__)
SCORE_SAMPLE_ROWS = 200_000
PRIOR_SAMPLE_ROWS = 50_000  # EM: about 1.5 s per step at 434 components (Adult's 35,233 rows)
SCORE_PERCENTILES = (50, 75, 90, 95, 99, 99.5, 99.9)
MIN_STEPS_PER_PASS = 8
VALIDATION_STEPS = 100
VALIDATION_BATCH = 4096
RECALL_AT = 20  # a table with item sets is validated on its recommendations' recall at 20
MISSED = "val_missed"
FINAL_LEARNING_RATE = 0.01  # the cosine decay's last rate, as a share of the first


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """Transformed training and validation files, and the layout of their matrices."""

    layout: Layout
    train_files: Sequence[str]
    validation_files: Sequence[str]

    @property
    def train_rows(self) -> int:
        return data.count_rows(self.train_files)

    @property
    def validation_rows(self) -> int:
        return data.count_rows(self.validation_files)


@dataclasses.dataclass(frozen=True)
class FitResult:
    model: Autoencoder
    history: dict[str, list[float]]  # per validation period
    best_period: int
    schedule: "Schedule"
    seconds: float


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How many steps of how many rows, validated how often: fitted to the table's size.

    A small table gets smaller batches (at least MIN_STEPS_PER_PASS steps per pass over its
    rows) and many passes, so that it gets as many optimisation steps as a large one; a period
    (Keras' "epoch": one validation and one log line) is a pass or VALIDATION_STEPS steps,
    whichever is more.
    """

    batch_size: int
    steps_per_pass: int
    period: int  # steps between validations
    periods: int

    @classmethod
    def of(cls, rows: int, options: ModelOptions) -> "Schedule":
        rows = max(rows, 1)
        batch = max(1, min(options.batch_size, rows // MIN_STEPS_PER_PASS))
        steps_per_pass = -(-rows // batch)
        steps = options.steps
        if options.epochs is not None:
            steps = min(steps, options.epochs * steps_per_pass)
        period = min(max(steps_per_pass, VALIDATION_STEPS), steps)
        return cls(batch, steps_per_pass, period, -(-steps // period))

    @property
    def steps(self) -> int:
        return self.period * self.periods


def fit(training: TrainingData, options: ModelOptions, statistics: Mapping[str, Mapping]
        ) -> FitResult:
    """Trains an autoencoder, with early stopping on the validation files when there are any;
    `options` has its shape set (`ModelOptions.for_table`); `statistics` are the transform's
    (`aepipe.transform.preprocess.read_statistics`)."""
    keras.utils.set_random_seed(options.seed)
    layout = training.layout
    schedule = Schedule.of(training.train_rows, options)
    scales = marginal_scales(layout, data.first_rows(training.train_files, layout,
                                                     SCORE_SAMPLE_ROWS))
    model = MODELS[options.model](layout, code_size=options.code_size, hidden=options.hidden,
                                  scales=scales, statistics=statistics, beta=options.beta,
                                  input_dropout=options.input_dropout,
                                  item_dropout=options.item_dropout,
                                  activation=options.activation, seed=options.seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate(options, schedule)))
    train = data.dataset(training.train_files, layout, schedule.batch_size, options.seed,
                         shuffle=True)
    validation, validation_steps = None, None
    monitor, callbacks = "loss", [_PeriodLog(schedule)]
    if training.validation_rows:
        validation = data.dataset(training.validation_files, layout, VALIDATION_BATCH,
                                  options.seed, shuffle=False, hide_items=options.item_dropout)
        validation_steps = -(-training.validation_rows // VALIDATION_BATCH)
        monitor = "val_loss"
        if layout.item_sets:
            monitor = MISSED
            callbacks.insert(0, _MissedItems(validation, validation_steps))
    callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=options.patience,
                                                   mode="min", restore_best_weights=True))
    _LOG.info("training: up to %d steps of %d rows (%.1f passes over %d rows), validating "
              "every %d steps", schedule.steps, schedule.batch_size,
              schedule.steps / schedule.steps_per_pass, training.train_rows, schedule.period)
    started = time.perf_counter()
    history = model.fit(train, validation_data=validation, epochs=schedule.periods,
                        steps_per_epoch=schedule.period, validation_steps=validation_steps,
                        callbacks=callbacks, shuffle=False, verbose=0)
    losses = {k: [float(v) for v in values] for k, values in history.history.items()}
    best = int(np.argmin(losses[monitor]))
    _warn_if_still_improving(losses[monitor], best, schedule, options)
    return FitResult(model, losses, best, schedule, time.perf_counter() - started)


def learning_rate(options: ModelOptions, schedule: Schedule
                  ) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Adam's learning rate: `options.learning_rate` times the square root of the batch's
    share of `options.batch_size` (a small table's smaller batches are noisier: Adam's
    square-root scaling rule, Malladi et al. 2022), held (decay "constant") or falling along a
    half cosine to FINAL_LEARNING_RATE of it at the schedule's last step (SGDR's schedule,
    Loshchilov & Hutter 2017, without restarts).

    A large table's model is still improving when its step budget runs out; a rate that starts
    three times higher and then falls reaches a lower loss in the same steps (Adult's
    validation loss 0.084 -> 0.066, docs/train.md). A small table stops early on its validation
    loss long before the rate falls, and its batches of a few dozen rows start near 0.001."""
    first = options.learning_rate * math.sqrt(schedule.batch_size / options.batch_size)
    if options.learning_rate_decay == "constant":
        return first
    return keras.optimizers.schedules.CosineDecay(first, schedule.steps,
                                                  alpha=FINAL_LEARNING_RATE)


def _warn_if_still_improving(losses: list[float], best: int, schedule: Schedule,
                             options: ModelOptions) -> None:
    """Warns when training ran out of steps while the monitored loss was still improving."""
    if len(losses) < schedule.periods or len(losses) - 1 - best >= max(1, options.patience // 2):
        return
    _LOG.warning("the %s loss was still improving when training stopped at its step budget "
                 "(best at step %d of %d): more --steps (or --epochs) may give a better model",
                 "validation" if options.validation_fraction else "training",
                 (best + 1) * schedule.period, schedule.steps)


def fit_prior(model: Autoencoder, files: Sequence[str], options: ModelOptions) -> Prior:
    """The sampling prior of kind `options.prior`, fitted to the codes (for the VAE, the
    posterior means) of up to PRIOR_SAMPLE_ROWS training rows, its weights then calibrated to
    those rows' column and pair frequencies (`options.prior_calibration`)."""
    batches = list(data.first_rows(files, model.layout, PRIOR_SAMPLE_ROWS,
                                   np.random.default_rng(options.seed)))
    prior = PRIORS[options.prior].fit(
        np.concatenate([np.asarray(model.encode(batch)) for batch in batches]), options)
    return calibrate(prior, model.decoder, model.layout, batches,
                     calibration=options.prior_calibration, seed=options.seed)


@dataclasses.dataclass(frozen=True)
class HeldOutFigures:
    """What the manifest records of the model on held-out rows."""

    score_percentiles: dict[str, float]  # of ae_score: what --flag-above compares with
    residual_std: dict[str, float]  # per value scalar: the noise sampling adds
    column_errors: dict[str, float]  # per column, its mean part of ae_score (--explain)
    reconstruction: dict[str, dict[str, float]]  # per column: what its code keeps


def held_out_figures(model: Autoencoder, files: Sequence[str]) -> HeldOutFigures:
    """The model's figures on up to SCORE_SAMPLE_ROWS rows of `files` (see `HeldOutFigures`).

    A column's reconstruction is what `decode` gives: a number's R² over non-null rows (in
    its original units where the decoder has means, else of its normal score or standardised
    value), a boolean's or a category's accuracy (the decoder's likeliest value). The residual
    deviations are of the normal scores (or standardised values), which sampling adds noise
    to."""
    layout = model.layout
    parts, residuals, units, hits = [], [], [], []
    for batch in data.first_rows(files, layout, SCORE_SAMPLE_ROWS):
        outputs = model(batch)[OUTPUTS]
        parts.append(np.asarray(model.column_errors(batch, outputs)))
        outputs = np.asarray(outputs)
        if layout.scalars:
            error = batch[SCALARS] - outputs[:, layout.outputs.scalars]
            error[batch[NULLS] > 0] = np.nan
            residuals.append(np.stack([error, batch[SCALARS]], axis=-1))
        if model.units is not None:
            target = np.asarray(model.units.standardised(batch[SCALARS][:, layout.means]))
            error = target - outputs[:, layout.outputs.means]
            error[batch[NULLS][:, layout.means] > 0] = np.nan
            units.append(np.stack([error, target], axis=-1))
        hits.append(_category_hits(layout, batch, outputs))
    errors = np.concatenate(parts)
    values = np.percentile(errors.sum(axis=1), SCORE_PERCENTILES)
    reconstruction, rms = _reconstruction(layout, residuals, hits, units)
    return HeldOutFigures({str(q): float(v) for q, v in zip(SCORE_PERCENTILES, values)}, rms,
                          dict(zip(layout.columns, map(float, errors.mean(axis=0)))),
                          reconstruction)


def _category_hits(layout: Layout, batch: dict, outputs: np.ndarray) -> np.ndarray:
    """[rows, categoricals]: whether the decoder's likeliest class is the row's."""
    logits = outputs[:, layout.outputs.categories]
    found = [np.argmax(logits[:, start:start + classes], axis=1)
             for start, classes in zip(layout.category_offsets, layout.classes)]
    if not found:
        return np.zeros((len(outputs), 0), bool)
    return np.stack(found, axis=1) == batch[CATEGORIES]


def _reconstruction(layout: Layout, residuals: list[np.ndarray], hits: list[np.ndarray],
                    units: list[np.ndarray]
                    ) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Per column its R² (of the decoder's means in original units where it has them, else
    of the normal scores or standardised values) or accuracy, and per value scalar its
    residual deviation (of the normal scores or standardised values: what sampling adds)."""
    figures: dict[str, dict[str, float]] = {}
    rms: dict[str, float] = {}
    if residuals:
        both = np.concatenate(residuals)
        decoded = dict(zip(layout.means, np.moveaxis(np.concatenate(units), 1, 0))
                       ) if units else {}
        for j, column in enumerate(layout.scalars):
            present = ~np.isnan(both[:, j, 0])
            error, target = both[present, j, 0], both[present, j, 1]
            if not layout.is_value[j]:  # a boolean's logit is right on the right side of 0
                right = (target - error > 0) == (target > 0.5)
                figures[column.name] = {"accuracy": float(right.mean()) if len(right) else 1.0}
                continue
            figures[column.name] = {"r2": _r2(decoded.get(j, both[:, j]))}
            rms[column.name] = float(np.sqrt(np.mean(error ** 2))) if len(error) else 0.0
    found = np.concatenate(hits) if hits else np.zeros((0, 0), bool)
    for j, column in enumerate(layout.categoricals):
        figures[column.name] = {"accuracy": float(found[:, j].mean()) if len(found) else 1.0}
    return figures, rms


def _r2(residuals: np.ndarray) -> float:
    """R² from [rows, 2] (error, target) pairs, NaN errors (nulls) left out; 1 for a constant."""
    present = residuals[~np.isnan(residuals[:, 0])]
    mse = float(np.mean(present[:, 0] ** 2)) if len(present) else 0.0
    variance = float(np.var(present[:, 1])) if len(present) else 0.0
    return 1.0 - mse / variance if variance > 0 else 1.0


class _MissedItems(keras.callbacks.Callback):
    """After each validation, the share of the validation rows' hidden items (see
    `aepipe.model.data.dataset`) that their top RECALL_AT recommendations miss, as MISSED:
    1 - recall@20, averaged over rows and item set columns. A table with item sets stops early
    on it rather than on the validation loss, which turns up long before the rankings stop
    improving (the model grows too sure of its likeliest items: measured on MovieLens 100K,
    the loss was best after 200 steps)."""

    def __init__(self, validation: tf.data.Dataset, steps: int):
        super().__init__()
        self._validation, self._steps = validation, steps

    def on_epoch_end(self, epoch, logs=None):
        model, recalls = self.model, []
        layout = model.layout
        for shown, full in self._validation.take(self._steps):
            logits = np.asarray(model(shown)[OUTPUTS][:, layout.outputs.items])
            bounds = layout.item_offsets[1:]
            for scores, visible, wanted in zip(np.split(logits, bounds, axis=1),
                                               model.item_sets(shown), model.item_sets(full)):
                visible, wanted = np.asarray(visible) > 0, np.asarray(wanted) > 0
                recalls.append(_recall(scores, visible, wanted & ~visible))
        if logs is not None:
            logs[MISSED] = 1.0 - float(np.mean(np.concatenate(recalls)))


def _recall(scores: np.ndarray, visible: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Per row with hidden items, the share of them (at most RECALL_AT) among the RECALL_AT
    best-scored items that are not visible."""
    k = min(RECALL_AT, scores.shape[1])
    best = np.argpartition(np.where(visible, -np.inf, scores), -k, axis=1)[:, -k:]
    found = np.take_along_axis(hidden, best, axis=1).sum(axis=1)
    wanted = hidden.sum(axis=1)
    return (found / np.maximum(np.minimum(wanted, k), 1))[wanted > 0]


class _PeriodLog(keras.callbacks.Callback):
    """Logs one line per validation period: steps done, losses and throughput."""

    def __init__(self, schedule: Schedule):
        super().__init__()
        self._schedule, self._started = schedule, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = time.perf_counter() - self._started
        schedule = self._schedule
        validation = f", val_loss {logs['val_loss']:.4f}" if "val_loss" in logs else ""
        if MISSED in logs:
            validation += f", recall@{RECALL_AT} of hidden items {1.0 - logs[MISSED]:.4f}"
        _LOG.info("step %d/%d: loss %.4f%s (%.1f s, %.0f rows/s)",
                  (epoch + 1) * schedule.period, schedule.steps,
                  logs.get("loss", float("nan")), validation, seconds,
                  schedule.period * schedule.batch_size / max(seconds, 1e-9))


class Fitted(NamedTuple):
    """A fitted model of either family: its SavedModel module and what the manifest says of
    the fit."""

    module: Any
    options: ModelOptions  # with what the fit settled (EASE's L2 weight)
    run: TrainingRun
    loss_scales: dict[str, float]
    held_out: HeldOutFigures | None  # None for --model ease
    prior: dict[str, Any]


def fit_and_export(training: TrainingData, *, schema: Schema, staging: str,
                   options: ModelOptions, arrow_schema: pa.Schema, passthrough_ranges: dict,
                   value_ranges: dict, value_grains: dict,
                   grams: tuple[Any, Any] | None = None) -> Manifest:
    """Fits the model on `training` (`options` resolved for the table: `for_table`), writes
    the SavedModel into `staging`, returns the manifest. `grams` are the training and
    validation rows' item Gram matrices, which `--model ease` is fitted on."""
    import tensorflow_transform as tft

    tft_layer = tft.TFTransformOutput(
        posixpath.join(staging, TRANSFORM_FN)).transform_features_layer()
    statistics, vocabularies = export.analysis_results(tft_layer, training.layout)
    layout = Layout.of(schema, {name: len(v) for name, v in vocabularies.items()},
                       bins=marginal.BINS if options.numeric == "quantile" else 0)
    training = dataclasses.replace(training, layout=layout)
    _LOG.info("training %s on %d rows (%d for validation), %d columns", options.model,
              training.train_rows, training.validation_rows, len(layout.columns))
    if options.model == "ease":
        fitted = _fit_linear(training, options, tft_layer, vocabularies, grams)
    else:
        fitted = _fit_autoencoder(training, options, tft_layer, statistics, vocabularies)
    export.save(fitted.module, posixpath.join(staging, SAVED_MODEL))
    return Manifest(
        schema=schema,
        input_arrow_schema=arrow_schema,
        options=fitted.options,
        rows={"train": training.train_rows, "validation": training.validation_rows},
        training=fitted.run,
        statistics=statistics,
        vocabularies=vocabularies,
        loss_scales=fitted.loss_scales,
        **dataclasses.asdict(fitted.held_out or HeldOutFigures({}, {}, {}, {})),
        prior=fitted.prior,
        passthrough_ranges=passthrough_ranges,
        value_ranges=value_ranges,
        value_grains=value_grains,
    )


def _fit_autoencoder(training: TrainingData, options: ModelOptions, tft_layer: Any,
                     statistics: dict, vocabularies: dict) -> Fitted:
    result = fit(training, options, statistics)
    held_out = held_out_figures(result.model, training.validation_files or training.train_files)
    prior = fit_prior(result.model, training.train_files, options)
    module = export.AutoencoderModule(tft_layer=tft_layer, model=result.model,
                                      statistics=statistics, vocabularies=vocabularies,
                                      residual_std=held_out.residual_std, prior=prior)
    best, schedule = result.best_period, result.schedule
    run = TrainingRun(
        batch_size=schedule.batch_size, steps_per_period=schedule.period,
        steps=len(result.history["loss"]) * schedule.period,
        best_step=(best + 1) * schedule.period, history=result.history,
        train_loss=result.history["loss"][best],
        validation_loss=result.history["val_loss"][best] if "val_loss" in result.history
        else None,
        fit_seconds=round(result.seconds, 3))
    return Fitted(module, options, run, result.model.scales, held_out, prior.to_dict())


def _fit_linear(training: TrainingData, options: ModelOptions, tft_layer: Any,
                vocabularies: dict, grams: tuple[Any, Any] | None) -> Fitted:
    """EASE/EDLAE on the item Gram matrices (see `aepipe.model.linear`)."""
    layout = training.layout
    column, size = layout.item_sets[0], layout.items[0]
    train_gram, validation_gram = (_dense(g, size) for g in grams)
    validation = None
    if training.validation_rows:
        validation = np.concatenate([
            multi_hot(batch[items_of(column.name)], size) for batch in data.first_rows(
                training.validation_files, layout, linear.VALIDATION_ROWS)])
    b, l2, history, seconds = linear.fit(train_gram, validation_gram, validation,
                                         training.train_rows, training.validation_rows,
                                         options)
    module = linear.LinearModule(tft_layer=tft_layer, layout=layout, b=b,
                                 vocabulary=vocabularies[column.name])
    run = TrainingRun(batch_size=0, steps_per_period=0, steps=0, best_step=0, history=history,
                      train_loss=None, validation_loss=None, fit_seconds=round(seconds, 3))
    return Fitted(module, dataclasses.replace(options, ease_l2=l2), run, {}, None, {})


def _dense(gram: Any, size: int) -> np.ndarray:
    """A (sparse) Gram matrix as a dense [size, size] one (items no row held are zeros)."""
    dense = np.zeros((size, size), np.float64)
    if gram is not None:
        found = gram.toarray()[:size, :size]
        dense[:found.shape[0], :found.shape[1]] = found
    return dense


def multi_hot(padded: np.ndarray, size: int) -> np.ndarray:
    """Sets of indices ([rows, longest], padded with `size`) as [rows, size] booleans."""
    sets = np.zeros((len(padded), size + 1), bool)
    sets[np.arange(len(padded))[:, None], padded] = True
    return sets[:, :size]
