"""How a model is fitted, checked against plain loops and scikit-learn: the loss scales that
balance column kinds, the step schedule that fits the table's size, the warning when training
stopped while still improving, and the mixture prior's EM."""

import logging
import math

import numpy as np
import pytest
import tensorflow as tf

from aepipe import options
from aepipe.errors import OptionsError
from aepipe.model import autoencoder, prior
from aepipe.model.autoencoder import MIN_SCALE, marginal_scales
from aepipe.model.fitting import Schedule, _warn_if_still_improving
from aepipe.model.prior import GaussianMixturePrior
from aepipe.options import ModelOptions
from aepipe.table.layout import CATEGORIES, NULLS, SCALARS, Layout, items_of
from aepipe.table.schema import Column, Kind, Schema
from aepipe.transform import marginal


def _entropy(values) -> float:
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return -sum(c / len(values) * math.log(c / len(values)) for c in counts.values())


def test_loss_scales_are_what_the_marginal_alone_would_cost():
    layout = Layout.of(Schema((Column("income", Kind.NUMERIC, nullable=True),
                               Column("colour", Kind.CATEGORICAL))), {"colour": 3})
    rng = np.random.default_rng(0)
    values = rng.normal(2.0, 3.0, 1000).astype(np.float32)
    null = (rng.random(1000) < 0.2).astype(np.float32)
    colours = rng.choice(4, 1000, p=[0.7, 0.2, 0.05, 0.05])
    batches = [{SCALARS: values[i:i + 300, None], NULLS: null[i:i + 300, None],
                CATEGORIES: colours[i:i + 300, None]} for i in range(0, 1000, 300)]
    scales = marginal_scales(layout, batches)
    present = [float(v) for v, n in zip(values, null) if n == 0]
    mean = sum(present) / len(present)
    assert scales["income"] == pytest.approx(sum((v - mean) ** 2 for v in present)
                                             / len(present), rel=1e-5)
    assert scales["income__null"] == pytest.approx(_entropy(null.tolist()))
    assert scales["colour"] == pytest.approx(_entropy(colours.tolist()))
    constant = marginal_scales(Layout.of(Schema((Column("colour", Kind.CATEGORICAL),)),
                                         {"colour": 3}),
                               [{CATEGORIES: np.zeros((10, 1), np.int64)}])
    assert constant == {"colour": MIN_SCALE}


def test_an_item_sets_scale_is_its_mean_log_loss_under_item_frequencies():
    layout = Layout.of(Schema((Column("basket", Kind.ITEMS, nullable=False),)), {"basket": 5})
    sets = [[0, 1], [1], [1, 2, 2], [3, 1]]
    pad = 5
    batches = [{SCALARS: np.zeros((2, 1), np.float32), NULLS: np.zeros((2, 1), np.float32),
                items_of("basket"): np.array([s + [pad] * (3 - len(s)) for s in part])}
               for part in (sets[:2], sets[2:])]
    scales = marginal_scales(layout, batches)
    counts: dict[int, int] = {}
    for items in sets:
        for item in set(items):
            counts[item] = counts.get(item, 0) + 1
    total = sum(counts.values())
    expected = sum(-math.log(counts[i] / total) for items in sets
                   for i in set(items)) / len(sets)
    assert scales["basket"] == pytest.approx(expected)


def _log_softmax(logits: list[float]) -> list[float]:
    peak = max(logits)
    total = math.log(sum(math.exp(x - peak) for x in logits)) + peak
    return [x - total for x in logits]


def _cross_entropy(logit: float, target: float) -> float:
    p = 1.0 / (1.0 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_the_reconstruction_error_is_the_mean_over_columns_of_scaled_terms():
    """The vectorised loss against a plain loop over rows, columns and terms, reading the
    decoder's outputs at the positions the layout's documentation gives."""
    schema = Schema((Column("income", Kind.NUMERIC, nullable=True),
                     Column("colour", Kind.CATEGORICAL), Column("basket", Kind.ITEMS, False),
                     Column("age", Kind.INTEGER, nullable=False),
                     Column("member", Kind.BOOLEAN, nullable=False),
                     Column("size", Kind.CATEGORICAL, nullable=False),
                     Column("shelf", Kind.ITEMS, False)))
    bins = 4
    layout = Layout.of(schema, {"colour": 3, "size": 1, "basket": 6, "shelf": 4}, bins=bins)
    # The documented output order: a scalar each (income, age, member, basket__size,
    # shelf__size), the value scalars' bins, then their means, the nullable scalars' null
    # logits (income),
    # the categoricals' logits (colour: 3 + 2, size: 1 + 2), the item sets' (6, 4).
    scalars = ["income", "age", "member", "basket__size", "shelf__size"]
    values = ["income", "age", "basket__size", "shelf__size"]
    bin_at = {name: 5 + bins * i for i, name in enumerate(values)}
    mean_at = {name: 5 + bins * 4 + i for i, name in enumerate(values)}
    null_at = 5 + bins * 4 + 4
    categories = {"colour": (null_at + 1, 5), "size": (null_at + 6, 3)}
    item_at = {"basket": (null_at + 9, 6), "shelf": (null_at + 15, 4)}
    width = null_at + 19
    owner = {"basket__size": "basket__size", "shelf__size": "shelf__size"}
    scales = {"income": 0.5, "income__bins": 1.2, "income__null": 0.3, "age": 2.0,
              "age__bins": 1.1, "member": 0.6, "colour": 1.4, "size": 0.9, "basket": 2.5,
              "shelf": 1.5, "basket__size": 0.7, "basket__size__bins": 1.3,
              "shelf__size": 0.8, "shelf__size__bins": 1.6, "income__mean": 0.9,
              "age__mean": 1.3, "basket__size__mean": 0.6, "shelf__size__mean": 1.7}
    rng = np.random.default_rng(1)
    statistics = {}
    for name in values:
        sample = rng.lognormal(2.0, 1.0, 5_000)
        statistics[name] = {"quantiles": np.quantile(sample, np.arange(1, 1000) / 1000).tolist(),
                            "min": sample.min(), "max": sample.max(),
                            "mean": sample.mean(), "std": sample.std()}
    model = autoencoder.Autoencoder(layout, code_size=2, hidden=(4,), scales=scales,
                                    statistics=statistics)
    rows = 6
    baskets = [[0, 5], [2], [1, 1, 3], [4, 0, 2, 5], [3], [5, 1]]
    shelves = [[1], [0, 3], [2], [], [3, 3], [0]]
    target = rng.normal(size=(rows, 5)).astype(np.float32)
    target[:, 2] = rng.integers(0, 2, rows)  # member is 0/1
    nulls = np.zeros((rows, 5), np.float32)
    nulls[[1, 4], 0] = 1.0
    target[[1, 4], 0] = 0.0
    inputs = {SCALARS: target, NULLS: nulls,
              CATEGORIES: np.stack([rng.integers(0, 5, rows), rng.integers(0, 3, rows)], 1),
              items_of("basket"): _padded(baskets, 6), items_of("shelf"): _padded(shelves, 4)}
    raw = rng.normal(size=(rows, width)).astype(np.float32)
    assert layout.outputs.width == width
    got = np.asarray(model.reconstruction_error(inputs, raw))

    for r in range(rows):
        columns: dict[str, list[float]] = {}
        for j, name in enumerate(scalars):
            null = nulls[r, j] == 1
            if name == "member":
                terms = {name: _cross_entropy(raw[r, j], target[r, j])}
            else:
                level = 0.5 * math.erfc(-float(target[r, j]) / math.sqrt(2.0))
                b = min(int(level * bins), bins - 1)
                logits = list(raw[r, bin_at[name]:bin_at[name] + bins])
                stats = statistics[name]
                x = float(marginal.from_normal(  # the transform's inverse: tests/test_marginal
                    tf.constant([target[r, j]]), marginal.knots(
                        tf.constant(stats["quantiles"], tf.float32), stats["min"],
                        stats["max"])).numpy()[0])
                standard = (x - stats["mean"]) / stats["std"]
                terms = {name: 0.0 if null else (float(target[r, j]) - float(raw[r, j])) ** 2,
                         name + "__bins": 0.0 if null else -_log_softmax(logits)[b],
                         name + "__mean": 0.0 if null
                         else (standard - float(raw[r, mean_at[name]])) ** 2}
            if name == "income":
                terms["income__null"] = _cross_entropy(raw[r, null_at], nulls[r, 0])
            for term, value in terms.items():
                columns.setdefault(owner.get(name, name), []).append(value / scales[term])
        for j, (name, (start, classes)) in enumerate(categories.items()):
            logits = list(raw[r, start:start + classes])
            columns[name] = [-_log_softmax(logits)[int(inputs[CATEGORIES][r, j])]
                             / scales[name]]
        for name, sets in (("basket", baskets), ("shelf", shelves)):
            start, classes = item_at[name]
            log_p = _log_softmax(list(raw[r, start:start + classes]))
            columns[name] = [-sum(log_p[i] for i in set(sets[r])) / scales[name]]
        expected = sum(sum(t) / len(t) for t in columns.values()) / len(columns)
        assert got[r] == pytest.approx(expected, rel=1e-4)
        # each column's part of the error, in the layout's column order: scalars (the item
        # sets' sizes among them), categoricals, item sets
        parts = np.asarray(model.column_errors(inputs, raw))[r]
        order = ["income", "age", "member", "basket__size", "shelf__size", "colour", "size",
                 "basket", "shelf"]
        assert parts == pytest.approx([sum(columns[c]) / len(columns[c]) / len(columns)
                                       for c in order], rel=1e-4, abs=1e-7)


def _padded(sets: list[list[int]], pad: int) -> np.ndarray:
    longest = max(len(s) for s in sets)
    return np.array([s + [pad] * (longest - len(s)) for s in sets], np.int64)


@pytest.mark.parametrize("rows, epochs, batch, period, periods", [
    (35_000, None, 256, 137, 73),     # Adult-sized: full batches, a pass per validation
    (240, None, 30, 100, 100),        # penguins-sized: 8 steps a pass, as many steps in all
    (2_000, 1, 250, 8, 1),            # --epochs 1: one pass, one validation
    (5, None, 1, 100, 100),           # fewer rows than MIN_STEPS_PER_PASS: one per step
])
def test_the_schedule_fits_the_table(rows, epochs, batch, period, periods):
    schedule = Schedule.of(rows, ModelOptions(steps=10_000, epochs=epochs))
    assert (schedule.batch_size, schedule.period, schedule.periods) == (batch, period, periods)
    assert schedule.steps_per_pass == -(-rows // batch)
    assert schedule.steps <= 10_000 + period


def test_a_warning_when_training_ran_out_of_steps_while_improving(caplog):
    schedule = Schedule(batch_size=256, steps_per_pass=100, period=100, periods=20)
    options = ModelOptions(patience=10)
    with caplog.at_level(logging.WARNING, logger="aepipe.model.fitting"):
        _warn_if_still_improving(list(np.linspace(1.0, 0.5, 20)), 19, schedule, options)
        assert "still improving" in caplog.text and "step 2000 of 2000" in caplog.text
        caplog.clear()
        _warn_if_still_improving([1.0] * 5 + [0.5] * 15, 5, schedule, options)  # converged
        _warn_if_still_improving(list(np.linspace(1.0, 0.5, 12)), 11, schedule, options)
    assert caplog.text == ""  # the second stopped early: fewer periods than scheduled


def test_the_mixture_prior_fits_as_well_as_scikit_learn():
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.normal(0, 1, (3000, 3)),
                            rng.normal(4, 0.5, (2000, 3)) * [1, 2, 1],
                            rng.multivariate_normal([-3, 3, 0], np.diag([0.3, 0.1, 1]), 1000)])
    ours = GaussianMixturePrior.fit_em(codes, components=3, seed=0)
    theirs = GaussianMixture(3, reg_covar=1e-4, random_state=0, n_init=3).fit(codes)
    assert _log_likelihood(ours, codes) == pytest.approx(theirs.score(codes), abs=0.01)
    assert sorted(ours.weights) == pytest.approx(sorted(theirs.weights_), abs=0.01)


def _log_likelihood(mixture: GaussianMixturePrior, codes: np.ndarray) -> float:
    """The mean log-density of the codes under a mixture, by a plain loop over components."""
    densities = np.zeros(len(codes))
    for weight, mean, covariance in zip(mixture.weights, mixture.means, mixture.covariances):
        centred = codes - mean
        mahalanobis = np.einsum("nd,de,ne->n", centred, np.linalg.inv(covariance), centred)
        normaliser = np.sqrt((2 * np.pi) ** codes.shape[1] * np.linalg.det(covariance))
        densities += weight * np.exp(-0.5 * mahalanobis) / normaliser
    return float(np.mean(np.log(densities)))


def test_samples_from_the_mixture_follow_its_components():
    """The prior inside the SavedModel draws a component by its weight, then its normal."""
    mixture = GaussianMixturePrior(np.array([0.25, 0.75]), np.array([[-5.0, 0.0], [5.0, 1.0]]),
                                   np.array([np.eye(2) * 0.25, [[1.0, 0.5], [0.5, 1.0]]]))
    rng = np.random.default_rng(0)
    codes = np.asarray(mixture.codes(rng.standard_normal((20_000, 2), dtype=np.float32),
                                     rng.random((20_000, 1), dtype=np.float32)))
    second = codes[:, 0] > 0
    assert second.mean() == pytest.approx(0.75, abs=0.01)
    np.testing.assert_allclose(np.cov(codes[second].T), [[1.0, 0.5], [0.5, 1.0]], atol=0.05)
    np.testing.assert_allclose(codes[~second].std(axis=0), [0.5, 0.5], atol=0.02)


def test_every_model_and_prior_option_names_a_kind():
    assert set(options.MODELS) == set(autoencoder.MODELS) | {"ease"}  # ease: model.linear
    assert set(options.PRIORS) == set(prior.PRIORS)
    assert all(issubclass(kind, autoencoder.Autoencoder)
               for kind in autoencoder.MODELS.values())
    assert all(issubclass(kind, prior.Prior) for kind in prior.PRIORS.values())
    with pytest.raises(OptionsError, match="prior"):
        ModelOptions(prior="diffusion")


def test_unset_shape_options_take_the_default_of_the_tables_kind():
    from aepipe.options import ITEM_SET_SHAPE, TABLE_SHAPE

    for item_sets, shape in ((False, TABLE_SHAPE), (True, ITEM_SET_SHAPE)):
        resolved = ModelOptions().for_table(item_sets=item_sets)
        assert {name: getattr(resolved, name) for name in shape} == shape
    assert ModelOptions().for_table(item_sets=False).model == "vae"
    assert ModelOptions().for_table(item_sets=True, only_item_sets=True).model == "ease"
    chosen = ModelOptions(model="vae", code_size=3, hidden=(5,), activation="relu", beta=0.5,
                          learning_rate=0.02)
    assert chosen.for_table(item_sets=True, only_item_sets=True) == chosen


def test_the_learning_rate_falls_along_a_half_cosine_to_a_hundredth_over_the_budget():
    from aepipe.model.fitting import learning_rate

    options = ModelOptions(learning_rate=0.004, batch_size=256)
    budget = Schedule(batch_size=256, steps_per_pass=100, period=100, periods=10)
    small = Schedule(batch_size=64, steps_per_pass=8, period=100, periods=10)  # a small table
    for schedule, first in ((budget, 0.004), (small, 0.002)):  # sqrt(64 / 256) = 1/2
        rate = learning_rate(options, schedule)
        for step in (0, 250, 500, 999, 1000):
            cosine = 0.5 * (1.0 + math.cos(math.pi * step / 1000))
            assert float(rate(step)) == pytest.approx(first * (0.01 + 0.99 * cosine), rel=1e-5)
    constant = ModelOptions(learning_rate=0.004, learning_rate_decay="constant")
    assert learning_rate(constant, budget) == 0.004
    assert learning_rate(constant, small) == pytest.approx(0.002)
    with pytest.raises(OptionsError, match="decay"):
        ModelOptions(learning_rate_decay="linear")


def test_validation_recall_counts_hidden_items_among_the_best_unseen_ones():
    from aepipe.model.fitting import RECALL_AT, _recall

    rng = np.random.default_rng(3)
    rows, items = 40, 60
    scores = rng.normal(size=(rows, items))
    visible = rng.random((rows, items)) < 0.2
    hidden = ~visible & (rng.random((rows, items)) < 0.3)
    hidden[0] = False  # a row with nothing hidden is not scored
    expected = []
    for r in range(rows):
        ranked = sorted((i for i in range(items) if not visible[r, i]),
                        key=lambda i: -scores[r, i])[:RECALL_AT]
        wanted = int(hidden[r].sum())
        if wanted:
            expected.append(sum(hidden[r, i] for i in ranked) / min(wanted, RECALL_AT))
    assert _recall(scores, visible, hidden) == pytest.approx(expected)
