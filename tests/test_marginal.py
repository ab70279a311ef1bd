"""The quantile transform of numeric columns: shapes that survive the round trip."""

import numpy as np
import pytest
import tensorflow as tf

from aepipe.transform import marginal


def _knots(values: np.ndarray) -> tf.Tensor:
    boundaries = np.quantile(values, np.arange(1, marginal.QUANTILES) / marginal.QUANTILES)
    return marginal.knots(boundaries, values.min(), values.max())


def _zero_inflated(rows: int = 20_000) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.where(rng.random(rows) < 0.92, 0.0, rng.lognormal(8, 1, rows)).astype(np.float32)


def test_a_point_mass_takes_the_middle_of_its_stretch_and_decodes_exactly():
    values = _zero_inflated()
    knots = _knots(values)
    scores = marginal.to_normal(tf.constant(values), knots).numpy()
    zeros = scores[values == 0]
    share = np.mean(values == 0)
    # every zero gets one score, near Φ⁻¹(share / 2) (knots are 1% apart)
    assert np.ptp(zeros) == 0
    assert marginal.level(zeros[:1]).numpy()[0] == pytest.approx(share / 2, abs=0.01)
    decoded = marginal.from_normal(tf.constant(scores), knots).numpy()
    assert np.all(decoded[values == 0] == 0)


def test_normal_draws_decode_into_the_columns_distribution():
    values = _zero_inflated()
    knots = _knots(values)
    draws = np.random.default_rng(1).standard_normal(50_000).astype(np.float32)
    decoded = marginal.from_normal(tf.constant(draws), knots).numpy()
    assert np.mean(decoded == 0) == pytest.approx(np.mean(values == 0), abs=0.01)
    for q in (0.95, 0.99):
        assert np.quantile(decoded, q) == pytest.approx(np.quantile(values, q), rel=0.05)


def test_skewed_values_come_back_in_order_and_close():
    values = np.random.default_rng(2).lognormal(12, 0.5, 10_000).astype(np.float32)
    knots = _knots(values)
    scores = marginal.to_normal(tf.constant(values), knots).numpy()
    assert abs(scores.mean()) < 0.05 and scores.std() == pytest.approx(1.0, abs=0.1)
    assert np.all(np.diff(scores[np.argsort(values)]) >= 0)
    decoded = marginal.from_normal(tf.constant(scores), knots).numpy()
    inner = (values > np.quantile(values, 0.01)) & (values < np.quantile(values, 0.99))
    np.testing.assert_allclose(decoded[inner], values[inner], rtol=1e-3)


def test_out_of_range_values_are_clipped_to_the_edges():
    knots = _knots(np.arange(100, dtype=np.float32))
    scores = marginal.to_normal(tf.constant([-50.0, 500.0]), knots).numpy()
    assert np.all(np.isfinite(scores)) and scores[0] < -3 and scores[1] > 3


def test_bins_split_the_distribution_in_equal_parts():
    scores = tf.constant(np.random.default_rng(3).standard_normal(100_000).astype(np.float32))
    counts = np.bincount(marginal.bin_of(scores).numpy(), minlength=marginal.BINS)
    np.testing.assert_allclose(counts / counts.sum(), 1 / marginal.BINS, atol=0.01)


def test_a_far_outlier_does_not_spread_the_last_percent_up_to_it():
    # diamonds' widths: 99% under 8.4 mm, one of 58.9 mm; a straight line from the 99th
    # percentile to the maximum would sample one value in 200 above 33 mm
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.normal(5.7, 1.1, 43_000), [31.8, 58.9]]).astype(np.float32)
    knots = _knots(values)
    draws = rng.standard_normal(200_000).astype(np.float32)
    decoded = marginal.from_normal(tf.constant(draws), knots).numpy()
    for q in (0.001, 0.999):
        assert np.quantile(decoded, q) == pytest.approx(np.quantile(values, q), abs=0.3)
    assert np.mean(decoded > 12.0) < 1e-4 and decoded.max() <= values.max()


def test_every_value_within_the_clipped_levels_comes_back_edge_buckets_included():
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.lognormal(3, 1, 5_000), [1e5]]).astype(np.float32)
    knots = _knots(values)
    scores = marginal.to_normal(tf.constant(values), knots)
    kept = (np.abs(scores.numpy()) < 3.0) & (np.abs(values) > 0)
    decoded = marginal.from_normal(scores, knots).numpy()
    assert kept.mean() > 0.99
    np.testing.assert_allclose(decoded[kept], values[kept], rtol=1e-3)


def test_a_spike_of_half_a_percent_at_the_maximum_decodes_exactly():
    # Adult's capital gains: 92% zeros, a long tail, and 0.5% top-coded at 99,999
    rng = np.random.default_rng(6)
    values = _zero_inflated()
    values[rng.random(len(values)) < 0.005] = 99_999.0
    knots = _knots(values)
    scores = marginal.to_normal(tf.constant(values), knots)
    decoded = marginal.from_normal(scores, knots).numpy()
    np.testing.assert_array_equal(decoded[values == 99_999.0], 99_999.0)


@pytest.mark.parametrize("rows", [5, 275, 999, 2_400, 9_999, 10_000, 1_000_000])
def test_thinned_knots_keep_equal_buckets_of_enough_rows(rows):
    levels = np.arange(1, marginal.QUANTILES) / marginal.QUANTILES  # each boundary its level
    kept = marginal.thinned(tf.constant([levels]), rows).numpy()[0]
    buckets = len(kept) + 1
    # a plain loop: the most equal buckets (a divisor of QUANTILES, at least MIN_BUCKETS)
    # that leave ROWS_PER_BUCKET rows each
    expected = max([b for b in range(marginal.MIN_BUCKETS, marginal.QUANTILES + 1)
                    if marginal.QUANTILES % b == 0 and b * marginal.ROWS_PER_BUCKET <= rows]
                   or [marginal.MIN_BUCKETS])
    assert buckets == expected
    np.testing.assert_allclose(kept, np.arange(1, buckets) / buckets)
