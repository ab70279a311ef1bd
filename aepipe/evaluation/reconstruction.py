"""How well a model reconstructs rows: the figures that say whether a code keeps the data.

For numeric and integer columns, the RMSE of decode(encode(x)) against x in standardised units
(divided by the training standard deviation), over non-null cells; for categorical and boolean
columns, the share of rows whose decoded value (null included) equals the input.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aepipe.store.reader import ModelDirectory
from aepipe.table.arrow import arrow_column
from aepipe.table.kinds import NUMBER_KINDS
from aepipe.table.schema import Column, Kind

__all__ = ["reconstruction_quality"]


def reconstruction_quality(model: ModelDirectory, batches: Iterable[pa.RecordBatch]
                           ) -> dict[str, dict[str, float]]:
    """Per-column reconstruction figures (of every modelled column but item sets), plus
    per-kind means under the key ``"by_kind"``."""
    columns = [c for c in model.schema.modelled if c.kind is not Kind.ITEMS]
    errors: dict[str, list[np.ndarray]] = {c.name: [] for c in columns}
    for batch in batches:
        code, _ = model.encode(batch)
        decoded = model.decode(code)
        for column in columns:
            real = batch.column(column.name)
            rebuilt = arrow_column(decoded, column, real.type)
            errors[column.name].append(_cell_errors(column, real, rebuilt, model))
    per_column = {c.name: _summary(c.kind, np.concatenate(errors[c.name])) for c in columns}
    by_kind: dict[str, list[float]] = {}
    for column in columns:
        for metric, value in per_column[column.name].items():
            by_kind.setdefault(f"{column.kind.value}_{metric}", []).append(value)
    return {"columns": per_column,
            "by_kind": {k: float(np.mean(v)) for k, v in by_kind.items()}}


def _cell_errors(column: Column, real: pa.Array, rebuilt: pa.Array,
                 model: ModelDirectory) -> np.ndarray:
    """Standardised errors (NaN where null) for numbers; 1.0 for a match (null included),
    0.0 otherwise."""
    is_null = np.asarray(real.is_null())
    if column.is_number:
        std = model.manifest.statistics[column.name]["std"] or 1.0
        error = (_floats(rebuilt) - _floats(real)) / std
        return np.where(is_null, np.nan, error)
    same = np.asarray(pc.fill_null(pc.equal(real, rebuilt), False))
    return np.where(is_null, np.asarray(rebuilt.is_null()), same).astype(np.float64)


def _floats(array: pa.Array) -> np.ndarray:
    return np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)


def _summary(kind: Kind, cells: np.ndarray) -> dict[str, float]:
    if kind in NUMBER_KINDS:
        return {"rmse": float(np.sqrt(np.nanmean(np.square(cells))))}
    return {"accuracy": float(np.mean(cells))}
