"""aepipe.evaluation.metrics keeps SDMetrics 0.32.0's definitions. Its per-column and per-pair scores are
sdmetrics' own metrics; what it does around them (the numeric columns binned for mixed pairs,
the thresholds, the means) and its own DCR are checked here against what sdmetrics itself gives
for the same small random tables (its QualityReport, calculate_dcr and
DCROverfittingProtection, run live), and pinned by hand-computed values."""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from aepipe.evaluation import metrics
from aepipe.table.schema import Column, Kind, Schema

SCHEMA = Schema((Column("x", Kind.NUMERIC), Column("y", Kind.NUMERIC),
                 Column("n", Kind.INTEGER), Column("c", Kind.CATEGORICAL),
                 Column("d", Kind.CATEGORICAL), Column("b", Kind.BOOLEAN)))
TYPES = {"x": pa.float64(), "y": pa.float64(), "n": pa.float64(), "c": pa.string(),
         "d": pa.string(), "b": pa.bool_()}
SDTYPES = {"x": "numerical", "y": "numerical", "n": "numerical", "c": "categorical",
           "d": "categorical", "b": "boolean"}
METADATA = {"columns": {name: {"sdtype": sdtype} for name, sdtype in SDTYPES.items()}}
TOLERANCE = 1e-9


def frame(columns: dict | pd.DataFrame, schema: Schema = SCHEMA) -> pd.DataFrame:
    """An evaluation frame (through Arrow, as `aepipe evaluate` reads its inputs)."""
    if isinstance(columns, pd.DataFrame):
        columns = {name: columns[name].astype(object).where(columns[name].notna(), None)
                   for name in columns.columns}
    types = {c.name: TYPES.get(c.name) for c in schema.columns}
    return metrics.evaluation_frame(
        pa.table({name: pa.array(list(values), types[name])
                  for name, values in columns.items()}), schema)


def random_table(rng: np.random.Generator, rows: int, shift: float) -> pd.DataFrame:
    """Correlated numbers with nulls, an integer column, categories tied to the numbers (one
    only when shifted), nulls in a category column, a boolean; as sdmetrics takes them."""
    x = np.round(rng.normal(shift, 1, rows), 4)
    y = np.round(0.8 * x + rng.normal(0, 0.6, rows), 4)
    n = rng.integers(0, 20, rows).astype(float)
    x[rng.random(rows) < 0.1] = np.nan
    n[rng.random(rows) < 0.05] = np.nan
    categories = ["a", "b", "c", "d"] + (["z"] if shift else [])
    c = np.where(x > 0.5, "a", rng.choice(categories, rows)).astype(object)
    c[rng.random(rows) < 0.1] = None
    d = np.where(y > 0, rng.choice(["p", "q"], rows), rng.choice(["p", "q", "r"], rows))
    b = rng.random(rows) < 0.3 + 0.2 * shift
    return pd.DataFrame({"x": x, "y": y, "n": n, "c": c, "d": d.astype(object), "b": b})


def random_case(seed: int) -> dict[str, pd.DataFrame]:
    """Real, synthetic and held-out tables; case 3 has a constant synthetic column and half
    the real categories null, case 4 synthetic rows equal to the real ones."""
    rng = np.random.default_rng(seed)
    real, synthetic = random_table(rng, 200, 0.0), random_table(rng, 150, 0.3 * seed)
    holdout = random_table(rng, 120, 0.0)
    if seed == 3:
        synthetic["n"] = 3.0                       # a constant column: correlation undefined
        real.loc[real.index[:100], "c"] = None     # half the real categories null
    if seed == 4:
        synthetic = real.copy()
    return {"real": real, "synthetic": synthetic, "holdout": holdout}


def quality_report(real: pd.DataFrame, synthetic: pd.DataFrame, *, thresholds: bool):
    """sdmetrics' own single-table QualityReport; without thresholds every pair counts."""
    from sdmetrics.reports.single_table import QualityReport

    report = QualityReport()
    if not thresholds:
        report.real_correlation_threshold = report.real_association_threshold = 0
    report.generate(real, synthetic, METADATA, verbose=False)
    return report


def same(expected) -> pytest.approx:
    """Equal to TOLERANCE, NaN (or None) equal to NaN."""
    return pytest.approx(math.nan if expected is None or pd.isna(expected) else expected,
                         abs=TOLERANCE, nan_ok=True)


@pytest.fixture(scope="module", params=range(5), ids=lambda i: f"case{i}")
def case(request) -> dict:
    """A random case: sdmetrics' tables (`raw`), ours, and sdmetrics' reports on them."""
    raw = random_case(request.param)
    logging.getLogger("sdmetrics").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. pearsonr on a constant column
        reports = {thresholds: quality_report(raw["real"], raw["synthetic"],
                                              thresholds=thresholds)
                   for thresholds in (True, False)}
    return {"raw": raw, "reports": reports, **{name: frame(table) for name, table in raw.items()}}


def test_quality_matches_sdmetrics_quality_report(case):
    report = case["reports"][True]
    figures = metrics.quality(case["real"], case["synthetic"], SCHEMA)
    properties = report.get_properties().set_index("Property")["Score"]
    assert figures["score"] == same(report.get_score())
    assert figures["column_shapes"]["score"] == same(properties["Column Shapes"])
    assert figures["column_pair_trends"]["score"] == same(properties["Column Pair Trends"])
    unthresholded = case["reports"][False].get_properties().set_index("Property")["Score"]
    assert figures["column_pair_trends"]["score_all_pairs"] == same(
        unthresholded["Column Pair Trends"])


def test_column_shapes_match_sdmetrics_details(case):
    details = case["reports"][True].get_details("Column Shapes")
    shapes = metrics.column_shapes(case["real"], case["synthetic"], SCHEMA)["columns"]
    assert [(d["column"], d["metric"]) for d in shapes] == list(
        zip(details["Column"], details["Metric"]))
    assert [d["score"] for d in shapes] == [same(score) for score in details["Score"]]


def test_column_pair_trends_match_sdmetrics_details(case):
    """The thresholded report gives each pair's real correlation or association and whether
    it counts (and leaves the score out below a threshold); the unthresholded one every
    pair's score and synthetic correlation."""
    thresholded, everything = (case["reports"][t].get_details("Column Pair Trends")
                               for t in (True, False))
    pairs = metrics.column_pair_trends(case["real"], case["synthetic"], SCHEMA)["pairs"]
    assert len(pairs) == len(thresholded) == len(everything) == 15
    for mine, (_, theirs), (_, all_pairs) in zip(pairs, thresholded.iterrows(),
                                                 everything.iterrows()):
        assert (mine["columns"], mine["metric"]) == (
            [theirs["Column 1"], theirs["Column 2"]], theirs["Metric"])
        assert mine["meets_threshold"] == (theirs["Meets Threshold?"] is True), mine
        assert mine["score"] == same(all_pairs["Score"]), mine
        if theirs["Meets Threshold?"] is True:
            assert mine["score"] == same(theirs["Score"]), mine
        if mine["metric"] == "CorrelationSimilarity":
            assert mine["real_correlation"] == same(theirs["Real Correlation"]), mine
            assert mine["synthetic_correlation"] == same(
                all_pairs["Synthetic Correlation"]), mine
        else:
            assert mine["real_association"] == same(theirs["Real Association"]), mine


def test_dcr_matches_sdmetrics(case):
    from sdmetrics.single_table import DCROverfittingProtection
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    raw = case["raw"]
    for rows in ("synthetic", "holdout"):
        np.testing.assert_allclose(metrics.dcr(case[rows], case["real"], SCHEMA),
                                   calculate_dcr(raw[rows], raw["real"], METADATA),
                                   rtol=0, atol=TOLERANCE)
    figures = metrics.privacy(training=case["real"], synthetic=case["synthetic"],
                              holdout=case["holdout"], schema=SCHEMA)
    assert figures["dcr_overfitting_protection"]["score"] == same(
        DCROverfittingProtection.compute(raw["real"], raw["synthetic"], raw["holdout"],
                                         METADATA, None))


def test_identical_tables_score_one_on_every_shape_and_trend():
    real = frame(random_case(0)["real"])
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
    one_complete_row = np.c_[[1.0, 2.0, np.nan], [5.0, np.nan, 6.0]]
    figures = metrics.correlation_similarity(one_complete_row, np.c_[x, x][:3])
    assert all(math.isnan(v) for v in figures.values())


def test_contingency_similarity_counts_null_as_a_value():
    real = pd.DataFrame({"a": ["p", "p", "q", "q"], "b": ["x", "x", "y", "y"]})
    synthetic = pd.DataFrame({"a": ["p", "p", "q", "q"], "b": ["x", "y", "y", "y"]})
    assert metrics.contingency_similarity(real, synthetic)["score"] == pytest.approx(0.75)
    real = pd.DataFrame({"a": ["p", "p"], "b": [None, "x"]})
    synthetic = pd.DataFrame({"a": ["p", "p"], "b": ["x", "x"]})
    assert metrics.contingency_similarity(real, synthetic)["score"] == pytest.approx(0.5)


def test_contingency_similarity_gives_cramers_v_and_scores_pairs_without_association():
    real = pd.DataFrame({"a": ["p", "p", "q", "q"], "b": ["x", "x", "y", "y"]})
    assert metrics.contingency_similarity(real, real.copy()) == {
        "score": pytest.approx(1.0), "real_association": pytest.approx(1.0)}
    independent = pd.DataFrame({"a": ["p", "p", "q", "q"], "b": ["x", "y", "x", "y"]})
    figures = metrics.contingency_similarity(independent, real)  # V = 0: sdmetrics skips it
    assert figures == {"score": pytest.approx(0.5), "real_association": pytest.approx(0.0)}
    one_row = pd.DataFrame({"a": ["p", "p"], "b": ["x", "y"]})
    figures = metrics.contingency_similarity(one_row, one_row.copy())
    assert figures["score"] == pytest.approx(1.0) and math.isnan(figures["real_association"])


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
    table = frame(random_case(0)["real"])
    assert metrics.exact_copy_share(table, table.copy(), SCHEMA) == 1.0
    shifted = table.assign(y=table["y"] + 1000)
    assert metrics.exact_copy_share(shifted, table, SCHEMA) == 0.0
    half = pd.concat([table.iloc[:100], shifted.iloc[100:]], ignore_index=True)
    assert metrics.exact_copy_share(half, table, SCHEMA) == 0.5


def test_dcr_of_identical_rows_is_zero():
    table = frame(random_case(1)["real"])
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
    training, holdout = (frame(random_case(0)[name]) for name in ("real", "holdout"))
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
