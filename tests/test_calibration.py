"""The mixture prior's weights calibrated to the training rows' frequencies
(`aepipe.model.calibration`), checked against closed forms on decoders whose every component
decodes to one known outcome."""

import numpy as np
import pytest

from aepipe.model import calibration
from aepipe.model.calibration import calibrate, outcomes
from aepipe.model.prior import GaussianMixturePrior
from aepipe.table.layout import CATEGORIES, NULLS, SCALARS, Layout
from aepipe.table.schema import Column, Kind, Schema

SURE = 30.0  # a logit that makes an outcome certain


def _mixture(means, weights) -> GaussianMixturePrior:
    means = np.asarray(means, float)
    covariances = np.stack([np.eye(means.shape[1]) * 1e-4] * len(means))
    return GaussianMixturePrior(np.asarray(weights, float), means, covariances)


def test_one_column_weights_reach_its_frequencies_less_the_anchor():
    """Component 0 decodes to red, 1 to blue; rows 80% red: the EM fixed point with A = I is
    w = (t + a w0) / (1 + a), a = ANCHOR."""
    layout = Layout.of(Schema((Column("colour", Kind.CATEGORICAL),)), {"colour": 2})

    def decoder(codes):
        logits = np.zeros((len(codes), layout.outputs.width), np.float32)
        logits[np.arange(len(codes)), layout.outputs.categories.start + (codes[:, 0] > 0)] = SURE
        return logits

    rows = {CATEGORIES: np.array([[0]] * 80 + [[1]] * 20)}
    fitted = calibrate(_mixture([[-5.0], [5.0]], [0.5, 0.5]), decoder, layout, [rows],
                       calibration="columns")
    a = calibration.ANCHOR
    expected = (np.array([0.8, 0.2]) + a * 0.5) / (1 + a)
    np.testing.assert_allclose(fitted.weights, expected, atol=1e-4)
    assert fitted.calibration["divergence_after"] < fitted.calibration["divergence_before"]


def _two_flags():
    layout = Layout.of(Schema((Column("a", Kind.BOOLEAN, nullable=False),
                               Column("b", Kind.BOOLEAN, nullable=False))))
    corners = [[0, 0], [0, 1], [1, 0], [1, 1]]

    def decoder(codes):
        logits = np.zeros((len(codes), layout.outputs.width), np.float32)
        logits[:, layout.outputs.scalars] = np.where(codes > 0.5, SURE, -SURE)
        return logits

    # the rows: a == b, half of them true; the mixture: one component per corner, evenly
    rows = {SCALARS: np.array([[0.0, 0.0]] * 50 + [[1.0, 1.0]] * 50, np.float32),
            NULLS: np.zeros((100, 2), np.float32)}
    return layout, decoder, _mixture(corners, [0.25] * 4), rows


def test_pairs_move_weight_to_the_combinations_the_rows_hold():
    """Each column alone is already 50/50 under even weights, so calibrating columns leaves
    the weights; their pair is only ever (0, 0) or (1, 1), which calibrating pairs finds."""
    layout, decoder, mixture, rows = _two_flags()
    columns = calibrate(mixture, decoder, layout, [rows], calibration="columns")
    np.testing.assert_allclose(columns.weights, 0.25, atol=1e-3)
    pairs = calibrate(mixture, decoder, layout, [rows], calibration="pairs")
    assert pairs.weights[0] + pairs.weights[3] > 0.95
    assert pairs.weights[0] == pytest.approx(pairs.weights[3], abs=1e-3)
    assert calibrate(mixture, decoder, layout, [rows], calibration="none") is mixture


def test_outcomes_read_nulls_flags_and_categories_as_a_loop_does():
    layout = Layout.of(Schema((Column("flag", Kind.BOOLEAN, nullable=True),
                               Column("colour", Kind.CATEGORICAL))), {"colour": 2})
    flags, nulls, colours = [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0, 3, 1]
    batch = {SCALARS: np.array([[f] for f in flags], np.float32),
             NULLS: np.array([[n] for n in nulls], np.float32),
             CATEGORIES: np.array([[c] for c in colours])}
    expected = [[0 if n else 1 + int(f), c] for f, n, c in zip(flags, nulls, colours)]
    assert outcomes(layout, batch).tolist() == expected
