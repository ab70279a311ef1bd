"""Properties of a number's grain (aepipe.table.grain) against plain loops and decimal text."""

from decimal import Decimal

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from aepipe.table.grain import (MAX_DECIMALS, MAX_LEVELS, MAX_RARE_SHARE, MIN_LEVEL_ROWS, Grain,
                                GrainCounts)

# numbers as a CSV writes them: an integer and a count of decimals, parsed from their text
TEXTS = st.tuples(st.integers(-10**7, 10**7), st.integers(0, MAX_DECIMALS + 2)).map(
    lambda md: f"{Decimal(md[0]).scaleb(-md[1])}")


def _decimals_written(text: str) -> int:
    return max(0, -Decimal(text).normalize().as_tuple().exponent)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.none() | TEXTS, max_size=60), st.integers(0, 60), st.integers(0, 60))
def test_counts_merge_to_the_whole_and_measure_what_a_loop_measures(texts, cut, other_cut):
    values = [None if t is None else float(t) for t in texts]
    lo, hi = sorted((min(cut, len(values)), min(other_cut, len(values))))
    parts = [GrainCounts.of(pa.array(values[a:b], pa.float64()))
             for a, b in ((0, lo), (lo, hi), (hi, len(values)))]
    whole = GrainCounts.of(pa.array(values, pa.float64()))
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert merged.grain() == whole.grain()
    assert merged.rows == whole.rows

    present = [v for v in values if v is not None]
    grain = whole.grain()
    if not present:
        assert grain == Grain(None, None)
        return
    written = max(_decimals_written(t) for t in texts if t is not None)
    assert grain.decimals == (written if written <= MAX_DECIMALS else None)
    tally: dict = {}
    for v in present:
        tally[v] = tally.get(v, 0) + 1
    rare = sum(n for n in tally.values() if n < MIN_LEVEL_ROWS)
    few = len(tally) <= MAX_LEVELS and rare <= MAX_RARE_SHARE * len(present)
    assert grain.levels == (tuple(sorted(tally)) if few else None)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20, unique=True),
       st.lists(st.none() | st.floats(-2e6, 2e6), max_size=40))
def test_sampled_values_take_the_nearest_level(levels, sampled):
    levels = sorted(levels)
    out = Grain(tuple(levels), 0).apply(pa.array(sampled, pa.float64())).to_pylist()
    for x, y in zip(sampled, out):
        if x is None:
            assert y is None
        else:
            assert y in levels and abs(x - y) == min(abs(x - level) for level in levels)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, MAX_DECIMALS), st.lists(st.none() | st.floats(-1e5, 1e5), max_size=40))
def test_sampled_values_are_written_with_the_columns_decimals(decimals, sampled):
    out = Grain(None, decimals).apply(pa.array(sampled, pa.float64())).to_pylist()
    for x, y in zip(sampled, out):
        assert (x is None) == (y is None)
        if x is not None:
            assert _decimals_written(repr(y)) <= decimals
            assert abs(x - y) <= 0.5 * 10.0 ** -decimals * (1 + 1e-9)


def test_integers_keep_their_levels_and_type():
    values = pa.array([1, 5, 5, 9, None] * 10, pa.int64())
    grain = GrainCounts.of(values).grain()
    assert grain == Grain((1, 5, 9), 0)
    assert grain.apply(pa.array([3, 4, 12, None], pa.int64())).equals(
        pa.array([1, 5, 9, None], pa.int64()))


def test_a_grain_survives_its_manifest_form():
    grain = GrainCounts.of(pa.array(np.arange(40) / 4)).grain()
    assert grain == Grain(None, 2)  # 40 values seen once each: no levels
    assert Grain.from_dict(grain.to_dict()) == grain
