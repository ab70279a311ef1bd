"""A number's grain: the values a sampled number may take, so that synthetic numbers are
written as the training input writes them.

The decoder works in float32 and between the quantile knots it draws continuous values, so
without a grain a wind speed recorded in whole knots (35 values: 0, 3.45234, 4.60312, ... mph)
comes out as 8.055459976 where the data holds 8.05546, and as 7.1 between two recorded speeds;
a temperature recorded to 0.01 comes out with float32's digits. The grain is measured on the
training rows, exactly as the input holds them:

- a column with at most `MAX_LEVELS` distinct values, each seen in at least `MIN_LEVEL_ROWS`
  rows but for at most `MAX_RARE_SHARE` of the values, keeps them (its *levels*), and a sampled
  value takes the nearest one: TabularARGN's rule for treating a number as discrete. A small
  table's sparse values (penguins' 76 bill depths in 275 rows) are no levels: taking only those
  would copy training values without making the shape any truer;
- otherwise a column written with at most `MAX_DECIMALS` decimals keeps that many, and a sampled
  value is rounded to them;
- otherwise the sampled value is left as the decoder gives it.

`GrainCounts` is what the grain is measured from: merging the counts of two parts of a table
gives the counts of the whole (a Beam CombineFn's accumulator, `aepipe.beam.train`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["MAX_LEVELS", "MIN_LEVEL_ROWS", "MAX_RARE_SHARE", "MAX_DECIMALS", "Grain",
           "GrainCounts"]

MAX_LEVELS = 100
MIN_LEVEL_ROWS = 5
MAX_RARE_SHARE = 0.001
MAX_DECIMALS = 6
_TOLERANCE = 1e-9  # relative: a value is written with d decimals if it is that close to them


@dataclasses.dataclass(frozen=True)
class Grain:
    """A column's distinct values where few (ascending), and the fewest decimals writing every
    value where at most `MAX_DECIMALS` do (None: more, or not measured)."""

    levels: tuple[Any, ...] | None
    decimals: int | None

    def apply(self, values: pa.Array) -> pa.Array:
        """`values` (sampled, of the column's type) on the grain: each at its nearest level, or
        rounded to the decimals; nulls stay null."""
        if self.levels:
            return _nearest(values, np.asarray(self.levels))
        if self.decimals is not None and pa.types.is_floating(values.type):
            return pc.round(values, ndigits=self.decimals)
        return values

    def to_dict(self) -> dict[str, Any]:
        return {"levels": None if self.levels is None else list(self.levels),
                "decimals": self.decimals}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Grain":
        levels = data.get("levels")
        return cls(None if levels is None else tuple(levels), data.get("decimals"))


@dataclasses.dataclass(frozen=True)
class GrainCounts:
    """What a column's grain is measured from: the rows of each distinct value (None: more than
    MAX_LEVELS values), the decimals writing every value, the rows with a value."""

    counts: Mapping[Any, int] | None = dataclasses.field(default_factory=dict)
    decimals: int | None = 0
    rows: int = 0

    @classmethod
    def of(cls, values: pa.Array | pa.ChunkedArray) -> "GrainCounts":
        """The counts of one part of a column (nulls aside)."""
        present = pc.drop_null(values)
        tallies = pc.value_counts(present)
        distinct = tallies.field("values")
        counts = (dict(zip(distinct.to_pylist(), tallies.field("counts").to_pylist()))
                  if len(distinct) <= MAX_LEVELS else None)
        decimals = (0 if pa.types.is_integer(present.type)
                    else _decimals(np.asarray(distinct.cast(pa.float64()))))
        return cls(counts, decimals, len(present))

    def merge(self, other: "GrainCounts") -> "GrainCounts":
        """The counts of both parts together."""
        counts = None
        if self.counts is not None and other.counts is not None:
            counts = dict(self.counts)
            for value, rows in other.counts.items():
                counts[value] = counts.get(value, 0) + rows
            counts = counts if len(counts) <= MAX_LEVELS else None
        decimals = (None if self.decimals is None or other.decimals is None
                    else max(self.decimals, other.decimals))
        return GrainCounts(counts, decimals, self.rows + other.rows)

    def grain(self) -> Grain:
        """The column's grain: levels where few and common, else the decimals (None where no
        value was seen)."""
        if not self.rows:
            return Grain(None, None)
        rare = sum(rows for rows in (self.counts or {}).values() if rows < MIN_LEVEL_ROWS)
        if self.counts is not None and rare <= MAX_RARE_SHARE * self.rows:
            return Grain(tuple(sorted(self.counts)), self.decimals)
        return Grain(None, self.decimals)


def _decimals(values: np.ndarray) -> int | None:
    """The fewest decimals (up to MAX_DECIMALS) that write every value, or None."""
    tolerance = _TOLERANCE * np.maximum(1.0, np.abs(values))
    for decimals in range(MAX_DECIMALS + 1):
        if np.all(np.abs(values - np.round(values, decimals)) <= tolerance):
            return decimals
    return None


def _nearest(values: pa.Array, levels: np.ndarray) -> pa.Array:
    """Each value replaced by the nearest of the ascending `levels` (ties to the lower)."""
    numbers = np.asarray(pc.fill_null(values, 0).cast(pa.float64()))
    upper = np.minimum(np.searchsorted(levels, numbers), len(levels) - 1)
    lower = np.maximum(upper - 1, 0)
    below = np.abs(numbers - levels[lower]) <= np.abs(levels[upper] - numbers)
    snapped = pa.array(np.where(below, levels[lower], levels[upper])).cast(values.type)
    return pc.if_else(values.is_null(), pa.scalar(None, values.type), snapped)
