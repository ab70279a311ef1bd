"""Fitting the autoencoder on transformed Parquet files, streamed through tf.data.

Memory stays bounded whatever the number of rows: batches are read a row group at a time and
shuffled within a window of a fixed number of rows, in an order that depends only on the seed,
the epoch and the rows' contents (for training sets that fit one window, not on the runner).
"""

from __future__ import annotations

import dataclasses
import logging
import posixpath
import time
from typing import Iterator, Sequence

import keras
import numpy as np
import pyarrow as pa
import tensorflow as tf

from aepipe import export, fileio, marginal
from aepipe.batches import row_hashes
from aepipe.export import analysis_results
from aepipe.features import Features, Role, null_flag
from aepipe.manifest import Manifest, TrainingRun
from aepipe.model import (CATEGORIES, FLAGS, ITEMS, MODELS, OUTPUTS, VALUES, Autoencoder,
                          Roles, marginal_scales)
from aepipe.options import ModelOptions
from aepipe.prior import PRIORS, Prior
from aepipe.model_dir import SAVED_MODEL, TRANSFORM_FN
from aepipe.schema import Kind, Schema

__all__ = ["TrainingData", "FitResult", "fit", "fit_and_export"]

_LOG = logging.getLogger(__name__)
SHUFFLE_WINDOW_ROWS = 262_144
SCORE_SAMPLE_ROWS = 200_000
PRIOR_SAMPLE_ROWS = 50_000  # EM: about 0.15 s per iteration at 128 components
SCORE_PERCENTILES = (50, 75, 90, 95, 99, 99.5, 99.9)
MIN_STEPS_PER_PASS = 8
VALIDATION_STEPS = 100
VALIDATION_BATCH = 4096
RECALL_AT = 20  # a table with item sets is validated on its recommendations' recall at 20
MISSED = "val_missed"


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """Transformed training and validation files, and the features they hold."""

    features: Features
    train_files: Sequence[str]
    validation_files: Sequence[str]

    @property
    def train_rows(self) -> int:
        return _count_rows(self.train_files)

    @property
    def validation_rows(self) -> int:
        return _count_rows(self.validation_files)


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


def fit(data: TrainingData, options: ModelOptions) -> FitResult:
    """Trains an autoencoder, with early stopping on the validation files when there are any;
    `options` has its shape set (`ModelOptions.for_table`)."""
    keras.utils.set_random_seed(options.seed)
    layout = data.features.with_bins(marginal.BINS if options.numeric == "quantile" else 0)
    schedule = Schedule.of(data.train_rows, options)
    scales = marginal_scales(layout, _first_rows(data.train_files, layout, SCORE_SAMPLE_ROWS,
                                                 None))
    model = MODELS[options.model](layout, code_size=options.code_size, hidden=options.hidden,
                                  scales=scales, beta=options.beta,
                                  input_dropout=options.input_dropout,
                                  item_dropout=options.item_dropout,
                                  activation=options.activation, seed=options.seed)
    model.compile(optimizer=keras.optimizers.Adam(options.learning_rate))
    train = _dataset(model.roles, data.train_files, schedule.batch_size, options.seed,
                     shuffle=True)
    validation, validation_steps = None, None
    monitor, callbacks = "loss", [_PeriodLog(schedule)]
    if data.validation_rows:
        validation = _dataset(model.roles, data.validation_files, VALIDATION_BATCH,
                              options.seed, shuffle=False, hide_items=options.item_dropout)
        validation_steps = -(-data.validation_rows // VALIDATION_BATCH)
        monitor = "val_loss"
        if model.roles.items:
            monitor = MISSED
            callbacks.insert(0, _MissedItems(validation, validation_steps))
    callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=options.patience,
                                                   mode="min", restore_best_weights=True))
    _LOG.info("training: up to %d steps of %d rows (%.1f passes over %d rows), validating "
              "every %d steps", schedule.steps, schedule.batch_size,
              schedule.steps / schedule.steps_per_pass, data.train_rows, schedule.period)
    started = time.perf_counter()
    history = model.fit(train, validation_data=validation, epochs=schedule.periods,
                        steps_per_epoch=schedule.period, validation_steps=validation_steps,
                        callbacks=callbacks, shuffle=False, verbose=0)
    losses = {k: [float(v) for v in values] for k, values in history.history.items()}
    best = int(np.argmin(losses[monitor]))
    _warn_if_still_improving(losses[monitor], best, schedule, options)
    return FitResult(model, losses, best, schedule, time.perf_counter() - started)


def _warn_if_still_improving(losses: list[float], best: int, schedule: Schedule,
                             options: ModelOptions) -> None:
    """Warns when training ran out of steps while the monitored loss was still improving."""
    if len(losses) < schedule.periods or len(losses) - 1 - best >= max(1, options.patience // 2):
        return
    _LOG.warning("the %s loss was still improving when training stopped at its step budget "
                 "(best at step %d of %d): more --steps (or --epochs) may give a better model",
                 "validation" if options.validation_fraction else "training",
                 (best + 1) * schedule.period, schedule.steps)


def _dataset(roles: Roles, files: Sequence[str], batch_size: int, seed: int, *,
             shuffle: bool, hide_items: float = 0.0) -> tf.data.Dataset:
    """The files' rows in batches of (input, target) matrices, one pass each time the dataset
    is iterated; the training set repeats, each pass in its own order.

    With `hide_items`, that share of every item set's items (the same ones on every pass) is
    hidden from the input but kept in the target: the validation loss then measures how well
    the model finds items it was not shown, which is what its recommendations are for, rather
    than how well it copies its input."""
    widths = {VALUES: len(roles.values), FLAGS: len(roles.flags),
              CATEGORIES: len(roles.categories)}
    signature = {role: tf.TensorSpec([None, width],
                                     tf.int64 if role == CATEGORIES else tf.float32)
                 for role, width in widths.items()}
    if roles.items:
        signature[ITEMS] = tf.TensorSpec([None, None], tf.int64)
    names = [f.name for f in roles.values + roles.flags + roles.categories + roles.items]
    passes = iter(range(1 << 30))

    def batches() -> Iterator[dict[str, np.ndarray]]:
        rng = np.random.default_rng([seed, next(passes)]) if shuffle else None
        yield from _batches(files, names, batch_size, rng, roles.inputs)

    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    if shuffle:
        dataset = dataset.repeat()
    if not (hide_items and roles.items):
        return dataset.map(lambda x: (x, x)).prefetch(2)

    def hide(x: dict, index: tf.Tensor) -> tuple[dict, dict]:
        draw = tf.random.stateless_uniform(tf.shape(x[ITEMS]), seed=[seed, index])
        hidden = dict(x, **{ITEMS: tf.where(draw < hide_items, tf.constant(
            roles.item_classes, tf.int64), x[ITEMS])})
        return hidden, x

    return dataset.enumerate().map(lambda i, x: hide(x, i)).prefetch(2)


def _batches(files: Sequence[str], names: Sequence[str], batch_size: int,
             rng: np.random.Generator | None, stack=None) -> Iterator[dict[str, np.ndarray]]:
    """Batches of rows from the files' row groups, shuffled within a window when `rng` is set;
    per feature, or as the matrices `stack` makes of a window's columns."""
    window: list[pa.Table] = []
    rows = 0
    for table in _row_groups(files, names, rng):
        window.append(table)
        rows += table.num_rows
        if rows >= SHUFFLE_WINDOW_ROWS:
            yield from _split(pa.concat_tables(window), batch_size, rng, stack)
            window, rows = [], 0
    if window:
        yield from _split(pa.concat_tables(window), batch_size, rng, stack)


def _row_groups(files: Sequence[str], names: Sequence[str],
                rng: np.random.Generator | None) -> Iterator[pa.Table]:
    groups = [(path, i) for path in files for i in range(fileio.parquet_file(path).num_row_groups)]
    order = rng.permutation(len(groups)) if rng is not None else range(len(groups))
    for k in order:
        path, i = groups[k]
        yield fileio.parquet_file(path).read_row_group(i, columns=list(names))


def _split(table: pa.Table, batch_size: int, rng: np.random.Generator | None,
           stack=None) -> Iterator[dict[str, np.ndarray]]:
    """Batches of a window's rows: sorted by content, then permuted when `rng` is set.

    Sorting first makes the order independent of how the runner laid the rows out in files,
    so a window holding the whole training set trains the same model on any runner.
    """
    columns = {name: table.column(name).to_numpy() for name in table.column_names}
    order = np.argsort(row_hashes(table), kind="stable")
    if rng is not None:
        order = order[rng.permutation(table.num_rows)]
    arrays = stack(columns) if stack is not None else columns
    for start in range(0, table.num_rows, batch_size):
        rows = order[start:start + batch_size]
        yield {name: values[rows] for name, values in arrays.items()}


def _first_rows(files: Sequence[str], features: Features, limit: int,
                rng: np.random.Generator | None) -> Iterator[dict[str, np.ndarray]]:
    """Batches of the files' rows (shuffled when `rng` is set) until `limit` rows are out."""
    rows = 0
    for batch in _batches(files, features.names, 4096, rng):
        yield batch
        rows += len(batch[features.names[0]])
        if rows >= limit:
            return


def fit_prior(model: Autoencoder, files: Sequence[str], features: Features,
              options: ModelOptions) -> Prior:
    """The sampling prior of kind `options.prior`, fitted to the codes (for the VAE, the
    posterior means) of up to PRIOR_SAMPLE_ROWS training rows."""
    codes = [np.asarray(model.encode(model.roles.inputs(batch))) for batch in _first_rows(
        files, features, PRIOR_SAMPLE_ROWS, np.random.default_rng(options.seed))]
    return PRIORS[options.prior].fit(np.concatenate(codes), options)


def reconstruction_figures(model: Autoencoder, files: Sequence[str], features: Features
                           ) -> tuple[dict[str, float], dict[str, float]]:
    """On up to SCORE_SAMPLE_ROWS rows: percentiles of the per-row reconstruction error
    (`ae_score`, what `encode --flag-above` compares new rows with), and each value feature's
    residual deviation (the noise sampling adds to the decoder's mean)."""
    scores = []
    residuals: dict[str, list[np.ndarray]] = {
        f.name: [] for f in features if f.role is Role.VALUE}
    for batch in _first_rows(files, features, SCORE_SAMPLE_ROWS, None):
        inputs = model.roles.inputs(batch)
        raw = model(inputs)[OUTPUTS]
        scores.append(np.asarray(model.reconstruction_error(inputs, raw)))
        outputs = model.roles.split(raw)
        for name, errors in residuals.items():
            present = batch.get(null_flag(name), np.zeros_like(batch[name])) == 0
            errors.append((batch[name] - np.asarray(outputs[name]))[present])
    values = np.percentile(np.concatenate(scores), SCORE_PERCENTILES)
    percentiles = {str(q): float(v) for q, v in zip(SCORE_PERCENTILES, values)}
    return percentiles, {name: _root_mean_square(np.concatenate(errors))
                         for name, errors in residuals.items()}


def _root_mean_square(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(values ** 2))) if len(values) else 0.0


def _count_rows(files: Sequence[str]) -> int:
    return sum(fileio.parquet_file(path).metadata.num_rows for path in files)


class _MissedItems(keras.callbacks.Callback):
    """After each validation, the share of the validation rows' hidden items (see `_dataset`)
    that their top RECALL_AT recommendations miss, as MISSED: 1 - recall@20, averaged over
    rows and item set columns. A table with item sets stops early on it rather than on the
    validation loss, which turns up long before the rankings stop improving (the model grows
    too sure of its likeliest items: measured on MovieLens 100K, the loss was best after 200
    steps)."""

    def __init__(self, validation: tf.data.Dataset, steps: int):
        super().__init__()
        self._validation, self._steps = validation, steps

    def on_epoch_end(self, epoch, logs=None):
        roles, recalls = self.model.roles, []
        for shown, full in self._validation.take(self._steps):
            logits = roles.split_items(roles.parts(self.model(shown)[OUTPUTS])["items"])
            seen = roles.split_items(roles.item_sets(shown))
            for scores, visible, wanted in zip(logits, seen, roles.split_items(
                    roles.item_sets(full))):
                recalls.append(_recall(np.asarray(scores), np.asarray(visible) > 0,
                                       np.asarray(wanted) - np.asarray(visible) > 0))
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


def fit_and_export(data: TrainingData, *, schema: Schema, staging: str, options: ModelOptions,
                   arrow_schema: pa.Schema, passthrough_ranges: dict) -> Manifest:
    """Fits the model on `data`, writes the SavedModel into `staging`, returns the manifest
    (whose options have the shape the table's kind gives the unset ones)."""
    import tensorflow_transform as tft

    options = options.for_table(item_sets=any(c.kind is Kind.ITEMS for c in schema.modelled))
    tft_layer = tft.TFTransformOutput(
        posixpath.join(staging, TRANSFORM_FN)).transform_features_layer()
    statistics, vocabularies = analysis_results(tft_layer, schema)
    features = Features.of(schema, {name: len(v) for name, v in vocabularies.items()})
    data = dataclasses.replace(data, features=features)
    _LOG.info("training on %d rows (%d for validation), %d features, code size %d",
              data.train_rows, data.validation_rows, len(features.items), options.code_size)
    result = fit(data, options)
    percentiles, residual_std = reconstruction_figures(
        result.model, data.validation_files or data.train_files, data.features)
    prior = fit_prior(result.model, data.train_files, data.features, options)
    export.save(export.AutoencoderModule(tft_layer=tft_layer, model=result.model, schema=schema,
                                         statistics=statistics, vocabularies=vocabularies,
                                         residual_std=residual_std, prior=prior),
                posixpath.join(staging, SAVED_MODEL))
    best, schedule = result.best_period, result.schedule
    return Manifest(
        schema=schema,
        input_arrow_schema=arrow_schema,
        options=options,
        rows={"train": data.train_rows, "validation": data.validation_rows},
        training=TrainingRun(
            batch_size=schedule.batch_size, steps_per_period=schedule.period,
            steps=len(result.history["loss"]) * schedule.period,
            best_step=(best + 1) * schedule.period, history=result.history,
            train_loss=result.history["loss"][best],
            validation_loss=result.history["val_loss"][best] if "val_loss" in result.history
            else None,
            fit_seconds=round(result.seconds, 3)),
        statistics=statistics,
        vocabularies=vocabularies,
        loss_scales=result.model.scales,
        score_percentiles=percentiles,
        residual_std=residual_std,
        prior=prior.to_dict(),
        passthrough_ranges=passthrough_ranges,
    )
