"""aepipe.metrics keeps SDMetrics 0.32.0's definitions: checked against the figures sdmetrics
itself gave for small random tables (tests/sdmetrics_reference; sdmetrics needs pandas < 3, so
it cannot be installed beside our pins), and pinned by hand-computed values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from aepipe import metrics
from aepipe.schema import Column, Kind, Schema

SCHEMA = Schema((Column("x", Kind.NUMERIC), Column("y", Kind.NUMERIC),
                 Column("n", Kind.INTEGER), Column("c", Kind.CATEGORICAL),
                 Column("d", Kind.CATEGORICAL), Column("b", Kind.BOOLEAN)))
TYPES = {"x": pa.float64(), "y": pa.float64(), "n": pa.float64(), "c": pa.string(),
         "d": pa.string(), "b": pa.bool_()}
CASES = json.loads((Path(__file__).parent / "sdmetrics_reference" / "cases.json").read_text())
TOLERANCE = 1e-9


def frame(columns: dict, schema: Schema = SCHEMA) -> pd.DataFrame:
    types = {c.name: TYPES.get(c.name) for c in schema.columns}
    return metrics.evaluation_frame(
        pa.table({name: pa.array(values, types[name]) for name, values in columns.items()}),
        schema)


def same(expected) -> pytest.approx:
    """Equal to TOLERANCE, NaN (None in the reference) equal to NaN."""
    return pytest.approx(math.nan if expected is None else expected, abs=TOLERANCE,
                         nan_ok=True)


@pytest.fixture(scope="module", params=range(len(CASES)), ids=lambda i: f"case{i}")
def case(request) -> dict:
    case = CASES[request.param]
    return {**case, **{name: frame(case[name]) for name in ("real", "synthetic", "holdout")}}


def test_column_shapes_match_sdmetrics(case):
    shapes = metrics.column_shapes(case["real"], case["synthetic"], SCHEMA)
    assert {d["column"]: d["score"] for d in shapes["columns"]} == {
        name: same(score) for name, score in case["shapes"].items()}
    assert shapes["score"] == same(case["column_shapes"])


def test_column_pair_trends_match_sdmetrics(case):
    trends = metrics.column_pair_trends(case["real"], case["synthetic"], SCHEMA)
    assert trends["score"] == same(case["column_pair_trends"])
    assert trends["score_all_pairs"] == same(case["column_pair_trends_all_pairs"])
    assert len(trends["pairs"]) == len(case["pairs"]) == 15
    for mine, theirs in zip(trends["pairs"], case["pairs"]):
        assert (mine["columns"], mine["metric"]) == (theirs["columns"], theirs["metric"])
        assert mine["meets_threshold"] == theirs["meets_threshold"], mine
        if theirs["meets_threshold"]:  # below a threshold, sdmetrics leaves the score NaN
            assert mine["score"] == same(theirs["score"]), mine
        if mine["metric"] == "CorrelationSimilarity":
            assert mine["real_correlation"] == same(theirs["real_correlation"]), mine
        elif theirs["real_association"] is not None:
            assert mine["real_association"] == same(theirs["real_association"]), mine


def test_quality_score_matches_sdmetrics(case):
    assert metrics.quality(case["real"], case["synthetic"], SCHEMA)["score"] == same(
        case["score"])


def test_dcr_matches_sdmetrics(case):
    for rows, expected in (("synthetic", "dcr_synthetic"), ("holdout", "dcr_holdout")):
        np.testing.assert_allclose(metrics.dcr(case[rows], case["real"], SCHEMA),
                                   case[expected], rtol=0, atol=TOLERANCE)
    figures = metrics.privacy(training=case["real"], synthetic=case["synthetic"],
                              holdout=case["holdout"], schema=SCHEMA)
    assert figures["dcr_overfitting_protection"]["score"] == same(
        case["dcr_overfitting_protection"])


def test_sparse_contingency_counts_equal_the_dense_ones(case, monkeypatch):
    dense = metrics.column_pair_trends(case["real"], case["synthetic"], SCHEMA)
    monkeypatch.setattr(metrics, "_DENSE_TABLE_CELLS", 0)
    sparse = metrics.column_pair_trends(case["real"], case["synthetic"], SCHEMA)
    for first, second in zip(dense["pairs"], sparse["pairs"]):
        for key in ("score", "real_association"):
            assert first.get(key) == pytest.approx(second.get(key), abs=1e-12, nan_ok=True)


def test_identical_tables_score_one_on_every_shape_and_trend():
    real = frame(CASES[0]["real"])
    figures = metrics.quality(real, real.copy(), SCHEMA)
    assert [d["score"] for d in figures["column_shapes"]["columns"]] == [1.0] * 6
    assert all(p["score"] == pytest.approx(1.0) for p in figures["column_pair_trends"]["pairs"])
    assert figures["score"] == figures["column_pair_trends"]["score_all_pairs"] == 1.0


def test_disjoint_categories_give_tv_complement_zero_but_for_the_regularisation():
    score = metrics.tv_complement(pd.Series(["a"] * 4 + ["b"] * 6), pd.Series(["c"] * 5))
    assert score == pytest.approx(1e-6 / (10 + 1e-6), abs=1e-15)  # 'c' counts 1e-6 in real


def test_tv_complement_leaves_nulls_out():
    real = pd.Series(["a", "a", "b", "b", None, None])
    assert metrics.tv_complement(real, pd.Series(["a", "b", "b", "b"])) == pytest.approx(0.75)


def test_ks_complement_of_a_known_shift():
    real = np.arange(100) / 100
    assert metrics.ks_complement(real, real + 0.3) == pytest.approx(0.7, abs=1e-12)
    with_nulls = np.concatenate([real + 0.3, [np.nan] * 50])
    assert metrics.ks_complement(real, with_nulls) == pytest.approx(0.7, abs=1e-12)
    rng = np.random.default_rng(0)
    sampled = metrics.ks_complement(rng.random(20_000), rng.random(20_000) + 0.3)
    assert sampled == pytest.approx(0.7, abs=0.03)


def test_a_column_without_values_scores_nan_and_is_left_out_of_the_mean():
    schema = Schema((Column("x", Kind.NUMERIC), Column("c", Kind.CATEGORICAL)))
    real = frame({"x": [1.0, 2.0], "c": [None, None]}, schema)
    shapes = metrics.column_shapes(real, real.copy(), schema)
    assert math.isnan(shapes["columns"][1]["score"]) and shapes["score"] == 1.0
    assert shapes["columns"][1]["real_null_share"] == 1.0


def test_correlation_similarity_of_opposite_correlations_is_zero():
    x = np.arange(10.0)
    figures = metrics.correlation_similarity(np.c_[x, x], np.c_[x, -x])
    assert figures == {"score": pytest.approx(0.0), "real_correlation": pytest.approx(1.0),
                       "synthetic_correlation": pytest.approx(-1.0)}
    assert math.isnan(metrics.correlation_similarity(np.c_[x, x], np.c_[x, x * 0])["score"])


def test_contingency_similarity_counts_null_as_a_value():
    real = pd.DataFrame({"a": ["p", "p", "q", "q"], "b": ["x", "x", "y", "y"]})
    synthetic = pd.DataFrame({"a": ["p", "p", "q", "q"], "b": ["x", "y", "y", "y"]})
    assert metrics.contingency_similarity(real, synthetic)["score"] == pytest.approx(0.75)
    real = pd.DataFrame({"a": ["p", "p"], "b": [None, "x"]})
    synthetic = pd.DataFrame({"a": ["p", "p"], "b": ["x", "x"]})
    assert metrics.contingency_similarity(real, synthetic)["score"] == pytest.approx(0.5)


def test_discretize_gives_the_maximum_and_null_the_last_code():
    codes = metrics.discretize(np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, np.nan]))
    assert codes.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 11]


def test_mixed_pairs_bin_each_table_on_its_own_range():
    schema = Schema((Column("x", Kind.NUMERIC), Column("c", Kind.CATEGORICAL)))
    x = np.arange(100.0)
    labels = ["low"] * 50 + ["high"] * 50
    real = frame({"x": x, "c": labels}, schema)
    synthetic = frame({"x": 2 * x + 1000, "c": labels}, schema)
    pair = metrics.column_pair_trends(real, synthetic, schema)["pairs"][0]
    assert pair["metric"] == "ContingencySimilarity" and pair["score"] == pytest.approx(1.0)


def test_pairs_below_the_thresholds_count_only_in_the_all_pairs_mean():
    schema = Schema((Column("x", Kind.NUMERIC), Column("y", Kind.NUMERIC)))
    rng = np.random.default_rng(1)
    real = frame({"x": rng.random(500), "y": rng.random(500)}, schema)
    figures = metrics.quality(real, real.copy(), schema)
    trends = figures["column_pair_trends"]
    assert not trends["pairs"][0]["meets_threshold"] and math.isnan(trends["score"])
    assert trends["score_all_pairs"] == 1.0
    assert figures["score"] == figures["column_shapes"]["score"]
    unthresholded = metrics.column_pair_trends(real, real.copy(), schema,
                                               correlation_threshold=0)
    assert unthresholded["score"] == 1.0


def test_exact_copy_share():
    table = frame(CASES[0]["real"])
    assert metrics.exact_copy_share(table, table.copy(), SCHEMA) == 1.0
    shifted = table.assign(y=table["y"] + 1000)
    assert metrics.exact_copy_share(shifted, table, SCHEMA) == 0.0
    half = pd.concat([table.iloc[:100], shifted.iloc[100:]], ignore_index=True)
    assert metrics.exact_copy_share(half, table, SCHEMA) == 0.5


def test_dcr_of_identical_rows_is_zero():
    table = frame(CASES[1]["real"])
    assert not metrics.dcr(table, table.copy(), SCHEMA).any()


def test_dcr_by_hand():
    schema = Schema((Column("x", Kind.NUMERIC), Column("c", Kind.CATEGORICAL)))
    reference = frame({"x": [0.0, 10.0], "c": ["a", "b"]}, schema)
    rows = frame({"x": [5.0, None, 40.0], "c": ["a", "a", None]}, schema)
    # (|5-0|/10 + 0)/2; (null vs value 1 + 0)/2; (capped 1 + null vs value 1)/2
    assert metrics.dcr(rows, reference, schema).tolist() == [0.25, 0.5, 1.0]
    constant = frame({"x": [3.0, 3.0], "c": ["a", "a"]}, schema)
    rows = frame({"x": [3.0, 3.5], "c": ["a", "a"]}, schema)
    assert metrics.dcr(rows, constant, schema).tolist() == [0.0, 0.5]  # range 0: 0 or 1


def test_privacy_of_a_copy_of_the_training_rows():
    training, holdout = frame(CASES[0]["real"]), frame(CASES[0]["holdout"])
    figures = metrics.privacy(training=training, synthetic=training.copy(), holdout=holdout,
                              schema=SCHEMA, query_rows=50, reference_rows=1000)
    assert figures["exact_copies"] == {"synthetic_share": 1.0, "holdout_share": 0.0}
    assert figures["dcr"]["median_synthetic_to_training"] == 0.0 == figures["dcr"]["ratio"]
    assert figures["dcr"]["query_rows"] == 50 and figures["dcr"]["reference_rows"] == 200
    assert figures["dcr_overfitting_protection"]["score"] < 0.5


def toy_rows(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    x = rng.normal(size=rows)
    return pd.DataFrame({"x": x, "c": rng.choice(["u", "v", None], rows),
                         "label": np.where(x > 0.3, "yes", "no"),
                         "amount": 2 * x + rng.normal(0, 0.05, rows)})


TOY_SCHEMA = Schema((Column("x", Kind.NUMERIC), Column("c", Kind.CATEGORICAL),
                     Column("label", Kind.CATEGORICAL), Column("amount", Kind.NUMERIC)))


@pytest.mark.parametrize("target, metric", [("label", "f1"), ("amount", "r2")])
def test_ml_efficacy_of_synthetic_rows_equal_to_the_real_ones(target, metric):
    rng = np.random.default_rng(3)
    training, holdout = toy_rows(rng, 400), toy_rows(rng, 200)
    figures = metrics.ml_efficacy(training=training, synthetic=training.copy(),
                                  holdout=holdout, schema=TOY_SCHEMA, target=target, seed=0)
    assert figures["task"]["metric"] == metric
    assert figures["real"][metric] > 0.9 and figures["ratio"] == pytest.approx(1.0)
    if metric == "f1":
        assert figures["task"]["positive_label"] == "yes"  # the rarer class
        assert figures["real"]["accuracy"] > 0.9


def test_ml_efficacy_of_one_class_predicts_that_class():
    rng = np.random.default_rng(4)
    training, holdout = toy_rows(rng, 200), toy_rows(rng, 100)
    synthetic = training.assign(label="no")
    figures = metrics.ml_efficacy(training=training, synthetic=synthetic, holdout=holdout,
                                  schema=TOY_SCHEMA, target="label")
    assert figures["synthetic"]["f1"] == 0.0 and figures["ratio"] == 0.0


def test_ml_efficacy_without_targets_to_learn_from_is_nan():
    rng = np.random.default_rng(5)
    training, holdout = toy_rows(rng, 100), toy_rows(rng, 50)
    figures = metrics.ml_efficacy(training=training, synthetic=training.assign(label=None),
                                  holdout=holdout, schema=TOY_SCHEMA, target="label")
    assert figures["rows"]["synthetic"] == 100 and figures["real"]["f1"] > 0.5
    assert all(math.isnan(v) for v in [*figures["synthetic"].values(), figures["ratio"]])


def test_evaluation_frame_types():
    schema = Schema((Column("n", Kind.INTEGER), Column("b", Kind.BOOLEAN),
                     Column("k", Kind.CATEGORICAL), Column("d", Kind.CATEGORICAL),
                     Column("id", Kind.KEY)))
    table = pa.table({"n": pa.array([1, None], pa.int32()), "b": [True, None], "k": [7, 8],
                      "d": pa.array(["p", None]).dictionary_encode(), "id": ["r1", "r2"]})
    result = metrics.evaluation_frame(table, schema)
    assert list(result.columns) == ["n", "b", "k", "d"]
    assert result["n"].dtype == np.float64 and math.isnan(result["n"][1])
    assert result["b"].tolist()[0] == "true" and pd.isna(result["b"][1])
    assert result["k"].tolist() == ["7", "8"] and result["d"][0] == "p"
