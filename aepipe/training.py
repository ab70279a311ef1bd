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
import pandas as pd
import pyarrow as pa
import tensorflow as tf

from aepipe import export, fileio, marginal
from aepipe.export import transform_statistics
from aepipe.features import Features, Role, null_flag
from aepipe.model import Autoencoder
from aepipe.options import ModelOptions
from aepipe.prior import GaussianMixturePrior
from aepipe.model_dir import SAVED_MODEL, TRANSFORM_FN
from aepipe.schema import Kind, Schema, arrow_schema_to_json

__all__ = ["TrainingData", "FitResult", "fit", "fit_and_export"]

_LOG = logging.getLogger(__name__)
SHUFFLE_WINDOW_ROWS = 262_144
SCORE_SAMPLE_ROWS = 200_000
PRIOR_SAMPLE_ROWS = 100_000
SCORE_PERCENTILES = (50, 75, 90, 95, 99, 99.5, 99.9)


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
    history: dict[str, list[float]]
    best_epoch: int
    seconds: float


def fit(data: TrainingData, options: ModelOptions) -> FitResult:
    """Trains an autoencoder, with early stopping on the validation files when there are any."""
    keras.utils.set_random_seed(options.seed)
    layout = data.features.with_bins(marginal.BINS if options.numeric == "quantile" else 0)
    model = Autoencoder(layout, code_size=options.code_size, hidden=options.hidden,
                        variational=options.model == "vae", beta=options.beta,
                        input_dropout=options.input_dropout, seed=options.seed)
    model.compile(optimizer=keras.optimizers.Adam(options.learning_rate))
    train = _dataset(data.features, data.train_files, data.train_rows, options, shuffle=True)
    validation = None
    callbacks: list[keras.callbacks.Callback] = [_EpochLog(options.epochs, data.train_rows)]
    monitor = "loss"
    if data.validation_rows:
        validation = _dataset(data.features, data.validation_files, data.validation_rows,
                              options, shuffle=False)
        monitor = "val_loss"
    callbacks.append(keras.callbacks.EarlyStopping(
        monitor=monitor, patience=options.patience, restore_best_weights=True))
    started = time.perf_counter()
    history = model.fit(train, validation_data=validation, epochs=options.epochs,
                        callbacks=callbacks, shuffle=False, verbose=0)
    losses = {k: [float(v) for v in values] for k, values in history.history.items()}
    best = int(np.argmin(losses[monitor]))
    return FitResult(model, losses, best, time.perf_counter() - started)


def _dataset(features: Features, files: Sequence[str], rows: int, options: ModelOptions, *,
             shuffle: bool) -> tf.data.Dataset:
    signature = {
        f.name: tf.TensorSpec([None], tf.int64 if f.role is Role.CATEGORY else tf.float32)
        for f in features
    }
    epochs = iter(range(1 << 30))

    def batches() -> Iterator[dict[str, np.ndarray]]:
        rng = np.random.default_rng([options.seed, next(epochs)]) if shuffle else None
        yield from _batches(files, features.names, options.batch_size, rng)

    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(
        -(-rows // options.batch_size)))
    return dataset.map(lambda x: (x, x)).prefetch(2)


def _batches(files: Sequence[str], names: Sequence[str], batch_size: int,
             rng: np.random.Generator | None) -> Iterator[dict[str, np.ndarray]]:
    """Batches of rows from the files' row groups; shuffled within a window when `rng` is set."""
    window: list[pa.Table] = []
    rows = 0
    for table in _row_groups(files, names, rng):
        window.append(table)
        rows += table.num_rows
        if rows >= SHUFFLE_WINDOW_ROWS:
            yield from _split(pa.concat_tables(window), batch_size, rng)
            window, rows = [], 0
    if window:
        yield from _split(pa.concat_tables(window), batch_size, rng)


def _row_groups(files: Sequence[str], names: Sequence[str],
                rng: np.random.Generator | None) -> Iterator[pa.Table]:
    groups = [(path, i) for path in files for i in range(fileio.parquet_file(path).num_row_groups)]
    order = rng.permutation(len(groups)) if rng is not None else range(len(groups))
    for k in order:
        path, i = groups[k]
        yield fileio.parquet_file(path).read_row_group(i, columns=list(names))


def _split(table: pa.Table, batch_size: int,
           rng: np.random.Generator | None) -> Iterator[dict[str, np.ndarray]]:
    """Batches of a window's rows: sorted by content, then permuted when `rng` is set.

    Sorting first makes the order independent of how the runner laid the rows out in files,
    so a window holding the whole training set trains the same model on any runner.
    """
    columns = {name: table.column(name).to_numpy() for name in table.column_names}
    order = np.argsort(pd.util.hash_pandas_object(pd.DataFrame(columns), index=False)
                       .to_numpy(), kind="stable")
    if rng is not None:
        order = order[rng.permutation(table.num_rows)]
    for start in range(0, table.num_rows, batch_size):
        rows = order[start:start + batch_size]
        yield {name: values[rows] for name, values in columns.items()}


def _first_rows(files: Sequence[str], features: Features, limit: int,
                rng: np.random.Generator | None) -> Iterator[dict[str, np.ndarray]]:
    """Batches of the files' rows (shuffled when `rng` is set) until `limit` rows are out."""
    rows = 0
    for batch in _batches(files, features.names, 4096, rng):
        yield batch
        rows += len(batch[features.names[0]])
        if rows >= limit:
            return


def fit_prior(model: Autoencoder, files: Sequence[str], features: Features, seed: int
              ) -> GaussianMixturePrior:
    """The sampling prior: the VAE's own N(0, I), or for the plain autoencoder a mixture fitted
    to the codes of up to PRIOR_SAMPLE_ROWS training rows."""
    if model.variational:
        return GaussianMixturePrior.standard_normal(model.code_size)
    codes = [np.asarray(model.encode(batch)) for batch in _first_rows(
        files, features, PRIOR_SAMPLE_ROWS, np.random.default_rng(seed))]
    return GaussianMixturePrior.fit(np.concatenate(codes), seed=seed)


def reconstruction_figures(model: Autoencoder, files: Sequence[str], features: Features
                           ) -> tuple[dict[str, float], dict[str, float]]:
    """On up to SCORE_SAMPLE_ROWS rows: percentiles of the per-row reconstruction error
    (`ae_score`, what `encode --flag-above` compares new rows with), and each value feature's
    residual deviation (the noise sampling adds to the decoder's mean)."""
    scores = []
    residuals: dict[str, list[np.ndarray]] = {
        f.name: [] for f in features if f.role is Role.VALUE}
    for batch in _first_rows(files, features, SCORE_SAMPLE_ROWS, None):
        outputs = model(batch)
        scores.append(np.asarray(model.reconstruction_error(batch, outputs)))
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


class _EpochLog(keras.callbacks.Callback):
    """Logs one line per epoch: losses and throughput."""

    def __init__(self, epochs: int, rows: int):
        super().__init__()
        self._epochs, self._rows, self._started = epochs, rows, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = time.perf_counter() - self._started
        validation = f", val_loss {logs['val_loss']:.4f}" if "val_loss" in logs else ""
        _LOG.info("epoch %d/%d: loss %.4f%s (%.1f s, %.0f rows/s)", epoch + 1, self._epochs,
                  logs.get("loss", float("nan")), validation, seconds,
                  self._rows / max(seconds, 1e-9))


def fit_and_export(data: TrainingData, *, schema: Schema, staging: str, options: ModelOptions,
                   arrow_schema: pa.Schema, passthrough_ranges: dict) -> dict:
    """Fits the model on `data`, writes the SavedModel into `staging`, returns the manifest."""
    import tensorflow_transform as tft

    tft_output = tft.TFTransformOutput(posixpath.join(staging, TRANSFORM_FN))
    vocabularies = {
        c.name: [v.decode("utf-8", "replace") for v in tft_output.vocabulary_by_name(c.name)]
        for c in schema.modelled if c.kind is Kind.CATEGORICAL
    }
    features = Features.of(schema, {name: len(v) for name, v in vocabularies.items()})
    data = dataclasses.replace(data, features=features)
    _LOG.info("training on %d rows (%d for validation), %d features, code size %d",
              data.train_rows, data.validation_rows, len(features.items), options.code_size)
    result = fit(data, options)
    percentiles, residual_std = reconstruction_figures(
        result.model, data.validation_files or data.train_files, data.features)
    tft_layer = tft_output.transform_features_layer()
    statistics = transform_statistics(tft_layer, schema)
    export.save(export.AutoencoderModule(tft_layer=tft_layer, model=result.model, schema=schema,
                                         statistics=statistics, vocabularies=vocabularies,
                                         residual_std=residual_std),
                posixpath.join(staging, SAVED_MODEL))
    return {
        "schema": schema.to_dict(),
        "input_arrow_schema": arrow_schema_to_json(arrow_schema),
        "options": dataclasses.asdict(options),
        "rows": {"train": data.train_rows, "validation": data.validation_rows},
        "history": result.history,
        "best_epoch": result.best_epoch + 1,
        "train_loss": result.history["loss"][result.best_epoch],
        "validation_loss": result.history.get("val_loss", [None] * (result.best_epoch + 1))[
            result.best_epoch],
        "fit_seconds": round(result.seconds, 3),
        "statistics": statistics,
        "vocabularies": vocabularies,
        "score_percentiles": percentiles,
        "residual_std": residual_std,
        "prior": fit_prior(result.model, data.train_files, data.features,
                           options.seed).to_dict(),
        "passthrough_ranges": passthrough_ranges,
    }
