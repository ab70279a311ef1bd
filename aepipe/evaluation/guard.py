"""A distance guard for synthetic data: drop synthetic rows that lie too close to a real row.

Distances are Euclidean in the model's input space (normal scores or standardised numbers, 0/1
flags, one-hot categories), so a categorical mismatch weighs as much as about 1.4 standard
deviations of a number. A synthetic row closer than `min_distance` to any reference row (the
training data) is dropped; `min_distance` 0 drops nothing, a small positive value drops exact and
near-exact copies.

What it protects against: publishing a synthetic row that reproduces (or nearly reproduces) a
real record, the leak a reader can spot by lookup. What it does not: membership or attribute
inference from the model's statistics, re-identification through combinations of plausible
values, or leaks in the model directory itself (which holds vocabularies and statistics). It is
not differential privacy.

The reference rows are read from the training files when the guard is built (the model directory
stores no training rows) and held in memory: rows x input width x 8 bytes per worker, and each
synthetic row is compared with every reference row. Both bound it to reference sets of up to a
few million cells per worker; past that, sample from a subset.
"""

from __future__ import annotations

import logging
from typing import Iterator

import numpy as np
import pyarrow as pa

from aepipe.errors import OptionsError
from aepipe.io import files as fileio
from aepipe.store.reader import ModelDirectory
from aepipe.table.rows import select, split_valid

__all__ = ["DistanceGuard", "model_space"]

_LOG = logging.getLogger(__name__)
_CHUNK_ROWS = 2048


class DistanceGuard:
    """Keeps the rows of a batch that lie at least `min_distance` from every reference row."""

    def __init__(self, model: ModelDirectory, reference: np.ndarray, min_distance: float):
        if min_distance < 0:
            raise OptionsError(f"--min-distance must not be negative (got {min_distance})")
        self._model = model
        self._reference = reference.astype(np.float64)
        self._reference_norms = np.sum(self._reference ** 2, axis=1)
        self.min_distance = min_distance

    @classmethod
    def from_files(cls, model: ModelDirectory, pattern: str, min_distance: float
                   ) -> "DistanceGuard":
        """A guard against the valid rows of the reference Parquet files."""
        parts = [model_space(model, batch) for batch in _valid_batches(model, pattern)]
        if not parts:
            raise OptionsError(f"the reference data {pattern} holds no usable rows")
        reference = np.concatenate(parts)
        _LOG.info("distance guard: %d reference rows, %d dimensions, min distance %g",
                  len(reference), reference.shape[1], min_distance)
        return cls(model, reference, min_distance)

    def nearest_distances(self, batch: pa.RecordBatch) -> np.ndarray:
        """Each row's distance to its nearest reference row."""
        rows = model_space(self._model, batch).astype(np.float64)
        nearest = np.empty(len(rows))
        for start in range(0, len(rows), _CHUNK_ROWS):
            chunk = rows[start:start + _CHUNK_ROWS]
            squared = (np.sum(chunk ** 2, axis=1)[:, None] + self._reference_norms[None, :]
                       - 2.0 * chunk @ self._reference.T)
            nearest[start:start + len(chunk)] = np.sqrt(np.maximum(squared.min(axis=1), 0.0))
        return nearest

    def keep(self, batch: pa.RecordBatch) -> np.ndarray:
        """A mask of the rows far enough from every reference row."""
        if self.min_distance == 0:
            return np.ones(batch.num_rows, bool)
        return self.nearest_distances(batch) >= self.min_distance


def model_space(model: ModelDirectory, batch: pa.RecordBatch) -> np.ndarray:
    """Rows in the model's input space (float32): the encoder's input matrix."""
    return model.transform(batch)


def _valid_batches(model: ModelDirectory, pattern: str) -> Iterator[pa.RecordBatch]:
    for path in fileio.match(pattern):
        for batch in fileio.parquet_file(path).iter_batches(batch_size=8192):
            valid, _ = split_valid(select(batch, model.schema), model.schema)
            if valid.num_rows:
                yield valid
