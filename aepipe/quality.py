"""How well a model reconstructs rows: the figures that say whether a code keeps the data.

For numeric and integer columns, the RMSE of decode(encode(x)) against x in standardised units
(divided by the training standard deviation), over non-null cells; for categorical and boolean
columns, the share of rows whose decoded value (null included) equals the input.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pyarrow as pa

from aepipe.batches import as_text, to_model_inputs
from aepipe.features import null_flag
from aepipe.model_dir import ModelDirectory
from aepipe.schema import Kind

__all__ = ["reconstruction_quality"]


def reconstruction_quality(model: ModelDirectory, batches: Iterable[pa.RecordBatch]
                           ) -> dict[str, dict[str, float]]:
    """Per-column reconstruction figures (of every modelled column but item sets), plus
    per-kind means under the key ``"by_kind"``."""
    errors: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        inputs = to_model_inputs(batch, model.schema)
        code, _ = model.encode(batch)
        decoded = model.decode(code)
        for column in model.schema.modelled:
            if column.kind is Kind.ITEMS:
                continue
            errors.setdefault(column.name, []).append(
                _cell_errors(column.kind, column.name, inputs, decoded, model))
    per_column = {name: _summary(model.schema[name].kind, np.concatenate(parts))
                  for name, parts in errors.items()}
    by_kind: dict[str, list[float]] = {}
    for name, figures in per_column.items():
        for metric, value in figures.items():
            by_kind.setdefault(f"{model.schema[name].kind.value}_{metric}", []).append(value)
    return {"columns": per_column,
            "by_kind": {k: float(np.mean(v)) for k, v in by_kind.items()}}


def _cell_errors(kind: Kind, name: str, inputs: dict, decoded: dict,
                 model: ModelDirectory) -> np.ndarray:
    """Standardised errors (NaN where null) for numbers; 1.0 for a match, 0.0 otherwise."""
    is_null, decoded_null = inputs[null_flag(name)], decoded[null_flag(name)]
    if kind in (Kind.NUMERIC, Kind.INTEGER):
        std = model.manifest.statistics[name]["std"] or 1.0
        error = (decoded[name].astype(np.float64) - inputs[name]) / std
        return np.where(is_null, np.nan, error)
    values = decoded[name]
    if values.dtype == object:
        values = as_text(values)
    same_value = values == inputs[name]
    return np.where(is_null, decoded_null, ~decoded_null & same_value).astype(np.float64)


def _summary(kind: Kind, cells: np.ndarray) -> dict[str, float]:
    if kind in (Kind.NUMERIC, Kind.INTEGER):
        return {"rmse": float(np.sqrt(np.nanmean(np.square(cells))))}
    return {"accuracy": float(np.mean(cells))}
