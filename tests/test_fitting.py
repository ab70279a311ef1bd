"""How a model is fitted, checked against plain loops and scikit-learn: the loss scales that
balance column kinds, the step schedule that fits the table's size, the warning when training
stopped while still improving, and the mixture prior's EM."""

import logging
import math

import numpy as np
import pytest

from aepipe import model, options, prior
from aepipe.errors import OptionsError
from aepipe.features import Feature, Features, Role
from aepipe.model import MIN_SCALE, marginal_scales
from aepipe.options import ModelOptions
from aepipe.prior import GaussianMixturePrior
from aepipe.schema import Column, Kind
from aepipe.training import Schedule, _warn_if_still_improving


def _entropy(values) -> float:
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return -sum(c / len(values) * math.log(c / len(values)) for c in counts.values())


def test_loss_scales_are_what_the_marginal_alone_would_cost():
    income = Column("income", Kind.NUMERIC, nullable=True)
    colour = Column("colour", Kind.CATEGORICAL)
    features = Features((Feature("income", income, Role.VALUE),
                         Feature("income__null", income, Role.FLAG),
                         Feature("colour", colour, Role.CATEGORY, classes=5)))
    rng = np.random.default_rng(0)
    values = rng.normal(2.0, 3.0, 1000).astype(np.float32)
    null = (rng.random(1000) < 0.2).astype(np.float32)
    colours = rng.choice(4, 1000, p=[0.7, 0.2, 0.05, 0.05])
    batches = [{"income": values[i:i + 300], "income__null": null[i:i + 300],
                "colour": colours[i:i + 300]} for i in range(0, 1000, 300)]
    scales = marginal_scales(features, batches)
    present = [float(v) for v, n in zip(values, null) if n == 0]
    mean = sum(present) / len(present)
    assert scales["income"] == pytest.approx(sum((v - mean) ** 2 for v in present)
                                             / len(present), rel=1e-5)
    assert scales["income__null"] == pytest.approx(_entropy(null.tolist()))
    assert scales["colour"] == pytest.approx(_entropy(colours.tolist()))
    constant = marginal_scales(Features((Feature("colour", colour, Role.CATEGORY, 5),)),
                               [{"colour": np.zeros(10, np.int64)}])
    assert constant == {"colour": MIN_SCALE}


def test_an_item_sets_scale_is_its_mean_log_loss_under_item_frequencies():
    basket = Column("basket", Kind.ITEMS, nullable=False)
    sets = [np.array([0, 1]), np.array([1]), np.array([1, 2, 2]), np.array([3, 1])]
    scales = marginal_scales(Features((Feature("basket", basket, Role.ITEMS, classes=5),)),
                             [{"basket": np.array(sets[:2] + [None], object)[:2]},
                              {"basket": np.array(sets[2:] + [None], object)[:2]}])
    counts: dict[int, int] = {}
    for items in sets:
        for item in set(items.tolist()):
            counts[item] = counts.get(item, 0) + 1
    total = sum(counts.values())
    expected = sum(-math.log(counts[i] / total) for items in sets
                   for i in set(items.tolist())) / len(sets)
    assert scales["basket"] == pytest.approx(expected)


def _log_softmax(logits: list[float]) -> list[float]:
    peak = max(logits)
    total = math.log(sum(math.exp(x - peak) for x in logits)) + peak
    return [x - total for x in logits]


def test_the_reconstruction_error_is_the_mean_over_columns_of_scaled_terms():
    """The vectorised loss against a plain loop over rows, columns and terms."""
    income = Column("income", Kind.NUMERIC, nullable=True)
    age = Column("age", Kind.INTEGER)
    member = Column("member", Kind.BOOLEAN)
    colour, size = Column("colour", Kind.CATEGORICAL), Column("size", Kind.CATEGORICAL)
    basket, shelf = Column("basket", Kind.ITEMS, False), Column("shelf", Kind.ITEMS, False)
    bins = 4
    features = Features((Feature("income", income, Role.VALUE, bins=bins),
                         Feature("colour", colour, Role.CATEGORY, classes=5),
                         Feature("basket", basket, Role.ITEMS, classes=6),
                         Feature("income__null", income, Role.FLAG),
                         Feature("age", age, Role.VALUE, bins=bins),
                         Feature("member", member, Role.FLAG),
                         Feature("size", size, Role.CATEGORY, classes=3),
                         Feature("shelf", shelf, Role.ITEMS, classes=4)))
    scales = {"income": 0.5, "income__bins": 1.2, "income__null": 0.3, "age": 2.0,
              "age__bins": 1.1, "member": 0.6, "colour": 1.4, "size": 0.9, "basket": 2.5,
              "shelf": 1.5}
    autoencoder = model.Autoencoder(features, code_size=2, hidden=(4,), scales=scales)
    rng = np.random.default_rng(1)
    rows = 6
    inputs = {"income": rng.normal(size=rows).astype(np.float32),
              "income__null": np.array([0, 1, 0, 0, 1, 0], np.float32),
              "age": rng.normal(size=rows).astype(np.float32),
              "member": rng.integers(0, 2, rows).astype(np.float32),
              "colour": rng.integers(0, 5, rows), "size": rng.integers(0, 3, rows),
              "basket": np.array([np.array(s) for s in ([0, 5], [2], [1, 1, 3], [4, 0, 2, 5],
                                                        [3], [5, 1])] + [None], object)[:-1],
              "shelf": np.array([np.array(s) for s in ([1], [0, 3], [2], [], [3, 3], [0])]
                                + [None], object)[:-1]}
    raw = rng.normal(size=(rows, features.output_width)).astype(np.float32)
    outputs = autoencoder.roles.split(raw)
    got = np.asarray(autoencoder.reconstruction_error(autoencoder.roles.inputs(inputs), raw))

    for r in range(rows):
        columns: dict[str, list[float]] = {}
        for f in features:
            out = np.asarray(outputs[f.name])[r]
            target = inputs[f.name][r]
            if f.role is Role.CATEGORY:
                terms = {f.name: -_log_softmax(list(out))[int(target)]}
            elif f.role is Role.ITEMS:  # Mult-VAE's multinomial log-likelihood of the set
                terms = {f.name: -sum(_log_softmax(list(out))[i] for i in set(target.tolist()))}
            elif f.role is Role.FLAG:
                p = 1.0 / (1.0 + math.exp(-float(out)))
                terms = {f.name: -(target * math.log(p) + (1 - target) * math.log(1 - p))}
            else:
                null = f.name == "income" and inputs["income__null"][r] == 1
                level = 0.5 * math.erfc(-float(target) / math.sqrt(2.0))
                b = min(int(level * bins), bins - 1)
                logits = list(np.asarray(outputs[f.name + "__bins"])[r])
                terms = {f.name: 0.0 if null else (float(target) - float(out)) ** 2,
                         f.name + "__bins": 0.0 if null else -_log_softmax(logits)[b]}
            for name, term in terms.items():
                columns.setdefault(f.column.name, []).append(term / scales[name])
        expected = sum(sum(t) / len(t) for t in columns.values()) / len(columns)
        assert got[r] == pytest.approx(expected, rel=1e-4)


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
    with caplog.at_level(logging.WARNING, logger="aepipe.training"):
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
    log_density = ours._log_densities(codes)
    ours_score = np.mean(np.log(np.exp(log_density).sum(axis=1)))
    theirs = GaussianMixture(3, reg_covar=1e-4, random_state=0, n_init=3).fit(codes)
    assert ours_score == pytest.approx(theirs.score(codes), abs=0.01)
    assert sorted(ours.weights) == pytest.approx(sorted(theirs.weights_), abs=0.01)


def test_every_model_and_prior_option_names_a_kind():
    assert set(options.MODELS) == set(model.MODELS)
    assert set(options.PRIORS) == set(prior.PRIORS)
    assert all(issubclass(kind, model.Autoencoder) for kind in model.MODELS.values())
    assert all(issubclass(kind, prior.Prior) for kind in prior.PRIORS.values())
    with pytest.raises(OptionsError, match="prior"):
        ModelOptions(prior="diffusion")


def test_unset_shape_options_take_the_default_of_the_tables_kind():
    from aepipe.options import ITEM_SET_SHAPE, TABLE_SHAPE

    for item_sets, shape in ((False, TABLE_SHAPE), (True, ITEM_SET_SHAPE)):
        resolved = ModelOptions().for_table(item_sets=item_sets)
        assert {name: getattr(resolved, name) for name in shape} == shape
    chosen = ModelOptions(code_size=3, hidden=(5,), activation="relu", beta=0.5)
    assert chosen.for_table(item_sets=True) == chosen


def test_validation_recall_counts_hidden_items_among_the_best_unseen_ones():
    from aepipe.training import RECALL_AT, _recall

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
