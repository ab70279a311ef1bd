"""Synthetic-data quality figures with SDMetrics 0.32.0's definitions.

The per-column and per-pair scores are sdmetrics' own metrics; the aggregation around them is
ours, as SDMetrics' Quality Report does it, so that the report can show every column and pair,
both thresholds and the null shares (tests/test_metrics.py checks it against sdmetrics'
`QualityReport` on the same tables):

- Column Shapes: `sdmetrics.single_column.KSComplement` (1 - the two-sample Kolmogorov-Smirnov
  statistic of the non-null values) for numeric and integer columns, `TVComplement` (1 - the
  total variation distance of the non-null category frequencies) for categorical and boolean
  ones. The score is the mean over columns; a column without non-null values scores NaN and is
  skipped.
- Column Pair Trends: `sdmetrics.column_pairs.CorrelationSimilarity` (Pearson) for numeric
  pairs; `ContingencySimilarity` (null a value of its own) for the others, a numeric column
  first cut into the 10 bins of ``np.histogram_bin_edges`` over its own non-null values (the
  real and the synthetic table each with their own edges) and coded with ``np.digitize``, as
  the Quality Report does. The score is the mean over the pairs that meet the Quality Report's
  thresholds: |r_real| > 0.5 for numeric pairs, Cramer's V of the real contingency table > 0.3
  (as `ContingencySimilarity` computes it) for the others. ``score_all_pairs`` is the mean
  over every pair.
- Quality score: the mean of the two (NaN-skipping), as ``QualityReport.get_score()``.

Unlike the Quality Report, which subsamples contingency pairs to 50,000 rows with an unseeded
random draw, these functions use every row they are given.

ML efficacy and privacy stay ours (see `ml_efficacy` and `privacy`). sdmetrics' efficacy
metrics train other models; its DCR (`dcr_utils.calculate_dcr`) gives the same distances as
`dcr` but took 20 s instead of 0.34 s for 1,000 against 10,000 Adult rows (60x), its
DCROverfittingProtection 4.4 s instead of 0.9 s for `privacy`, and its NewRowSynthesis, the
exact-copy share, about 460 s (extrapolated) instead of 0.04 s at 40,000 rows.

sdmetrics is imported on first use, not with this module.

Tables are pandas DataFrames of a schema's modelled columns, as `evaluation_frame` makes them:
numbers as float64 with NaN for null, categories and booleans as strings with NaN for null.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from aepipe.table.schema import Column, Schema

__all__ = ["evaluation_frame", "is_continuous", "ks_complement", "tv_complement",
           "column_shapes", "discretize", "correlation_similarity", "contingency_similarity",
           "column_pair_trends", "quality", "ml_efficacy", "exact_copy_share", "dcr", "privacy",
           "figures", "CORRELATION_THRESHOLD", "ASSOCIATION_THRESHOLD"]

CORRELATION_THRESHOLD = 0.5
ASSOCIATION_THRESHOLD = 0.3
# ContingencySimilarity computes Cramer's V only under a positive threshold (and leaves out the
# score of a pair at or under it): the smallest one makes it compute V for every pair.
_ANY_ASSOCIATION = float(np.finfo(np.float64).tiny)
_DCR_CHUNK_CELLS = 4_000_000
_HGB_MAX_CATEGORIES = 254


def is_continuous(column: Column) -> bool:
    """Numeric and integer columns are continuous; categorical and boolean ones discrete."""
    return column.is_number


def evaluation_frame(table: pa.Table, schema: Schema) -> pd.DataFrame:
    """The schema's modelled columns of `table`: continuous ones as float64, discrete ones as
    strings (booleans as "true"/"false", dictionaries decoded), NaN for null."""
    columns = {}
    for column in schema.modelled:
        values = table.column(column.name)
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        values = values.cast(pa.float64() if is_continuous(column) else pa.string())
        columns[column.name] = values.to_pandas()
    return pd.DataFrame(columns)


# Column Shapes -----------------------------------------------------------------------------

def ks_complement(real: np.ndarray, synthetic: np.ndarray) -> float:
    """sdmetrics' KSComplement: 1 - the KS statistic of the non-null values (rounded to 14
    decimals); NaN if either has none."""
    from sdmetrics.single_column import KSComplement

    return float(KSComplement.compute(real, synthetic))


def tv_complement(real: pd.Series, synthetic: pd.Series) -> float:
    """sdmetrics' TVComplement: 1 - the total variation distance of the non-null category
    frequencies; NaN if either has none. A category only the synthetic data has counts 1e-6 in
    the real data (sdmetrics' regularisation), so disjoint categories score about
    1e-6 / len(real), not exactly 0."""
    from sdmetrics.errors import IncomputableMetricError
    from sdmetrics.single_column import TVComplement

    try:
        return float(TVComplement.compute(real, synthetic))
    except IncomputableMetricError:  # no non-null values on one side
        return float("nan")


def column_shapes(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> dict:
    """Column Shapes: per column its metric, score and null shares, and the mean score."""
    details = []
    for column in schema.modelled:
        real_values, synthetic_values = real[column.name], synthetic[column.name]
        if is_continuous(column):
            metric, score = "KSComplement", ks_complement(real_values, synthetic_values)
        else:
            metric, score = "TVComplement", tv_complement(real_values, synthetic_values)
        details.append({"column": column.name, "kind": column.kind.value, "metric": metric,
                        "score": score, "real_null_share": _null_share(real_values),
                        "synthetic_null_share": _null_share(synthetic_values)})
    return {"score": _nanmean(d["score"] for d in details), "columns": details}


# Column Pair Trends ------------------------------------------------------------------------

def discretize(values: np.ndarray) -> np.ndarray:
    """Bin codes of a numeric column as the Quality Report makes them for mixed pairs: the 10
    `np.histogram_bin_edges` of the non-null values, then `np.digitize` (null -> 11)."""
    values = np.asarray(values, np.float64)
    return np.digitize(values, bins=np.histogram_bin_edges(values[~np.isnan(values)]))


def correlation_similarity(real: np.ndarray | pd.DataFrame, synthetic: np.ndarray | pd.DataFrame
                           ) -> dict[str, float]:
    """sdmetrics' CorrelationSimilarity, 1 - |r_real - r_synthetic| / 2 (Pearson, on the rows
    where both columns are present), of two two-column tables (NaN for null), with both
    coefficients. All NaN when a column of either table holds one distinct value, or either
    table has fewer than two complete rows; the score NaN when a coefficient is undefined."""
    from sdmetrics.column_pairs import CorrelationSimilarity
    from sdmetrics.errors import ConstantInputError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant on the complete rows: r is NaN
            breakdown = CorrelationSimilarity.compute_breakdown(real, synthetic)
    except (ConstantInputError, ValueError):  # as the Quality Report, which scores them NaN
        nan = float("nan")
        return {"score": nan, "real_correlation": nan, "synthetic_correlation": nan}
    return {"score": float(breakdown["score"]), "real_correlation": float(breakdown["real"]),
            "synthetic_correlation": float(breakdown["synthetic"])}


def contingency_similarity(real: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, float]:
    """sdmetrics' ContingencySimilarity, 1 - the total variation distance of the joint
    frequencies of two discrete columns (null a value of its own), and Cramer's V of the real
    contingency table as it computes it for the Quality Report's threshold (NaN when the table
    has fewer than two rows or columns)."""
    from sdmetrics.column_pairs import ContingencySimilarity

    breakdown = ContingencySimilarity.compute_breakdown(
        real, synthetic, real_association_threshold=_ANY_ASSOCIATION)
    score = breakdown["score"]
    if np.isnan(score):  # left out for a Cramer's V of 0 or undefined: score it all the same
        score = ContingencySimilarity.compute(real, synthetic)
    return {"score": float(score), "real_association": float(breakdown["real_association"])}


def column_pair_trends(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *,
                       correlation_threshold: float = CORRELATION_THRESHOLD,
                       association_threshold: float = ASSOCIATION_THRESHOLD) -> dict:
    """Column Pair Trends: every pair of modelled columns, the thresholded mean score (the
    Quality Report's) and the mean over all pairs. Thresholds of 0 count every pair."""
    coded = _contingency_frames(real, synthetic, schema)
    pairs = []
    for first, second in itertools.combinations(schema.modelled, 2):
        names = [first.name, second.name]
        if is_continuous(first) and is_continuous(second):
            pair = {"metric": "CorrelationSimilarity",
                    **correlation_similarity(real[names], synthetic[names])}
            pair["meets_threshold"] = bool(abs(pair["real_correlation"]) > correlation_threshold
                                           or correlation_threshold <= 0)
        else:
            pair = {"metric": "ContingencySimilarity", **contingency_similarity(
                coded[0][names], coded[1][names])}
            pair["meets_threshold"] = bool(pair["real_association"] > association_threshold
                                           or association_threshold <= 0)
        pairs.append({"columns": names, **pair})
    return {"score": _nanmean(p["score"] for p in pairs if p["meets_threshold"]),
            "score_all_pairs": _nanmean(p["score"] for p in pairs),
            "correlation_threshold": correlation_threshold,
            "association_threshold": association_threshold, "pairs": pairs}


def quality(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *,
            correlation_threshold: float = CORRELATION_THRESHOLD,
            association_threshold: float = ASSOCIATION_THRESHOLD) -> dict:
    """Column Shapes, Column Pair Trends and their mean, the Quality Report's overall score."""
    shapes = column_shapes(real, synthetic, schema)
    trends = column_pair_trends(real, synthetic, schema,
                                correlation_threshold=correlation_threshold,
                                association_threshold=association_threshold)
    return {"score": _nanmean([shapes["score"], trends["score"]]), "column_shapes": shapes,
            "column_pair_trends": trends}


def _contingency_frames(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables as ContingencySimilarity gets them in the Quality Report: numeric columns as
    `discretize` codes, each table on its own edges. Categories are given as integer codes
    shared by both tables (null a code of its own): the same counts as the strings, the same
    figures in half the time (pandas groups integers faster than strings)."""
    frames = ({}, {})
    for column in schema.modelled:
        values = real[column.name], synthetic[column.name]
        codes = ([discretize(v.to_numpy()) for v in values] if is_continuous(column)
                 else _shared_codes(values))
        for frame, part in zip(frames, codes):
            frame[column.name] = part
    return pd.DataFrame(frames[0]), pd.DataFrame(frames[1])


# ML efficacy --------------------------------------------------------------------------------

def ml_efficacy(*, training: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame,
                schema: Schema, target: str, seed: int = 0) -> dict:
    """Trains one gradient-boosting model on the real training rows and one on the synthetic
    rows, and scores both on the real held-out rows.

    A categorical or boolean target is classification: F1 of the real training data's rarer
    class for two classes (SDMetrics' BinaryClassifier metrics score F1 too), macro F1 for more
    (as SDMetrics' MulticlassClassifier metrics), accuracy alongside. A numeric or integer
    target is regression, scored by R^2 (as SDMetrics' regression metrics). `ratio` is the
    synthetic model's score over the real model's. Rows with a null target are left out.
    """
    column = schema[target]
    features = [c for c in schema.modelled if c.name != target]
    vocabularies = {c.name: _top_categories(training[c.name]) for c in features
                    if not is_continuous(c)}
    test_x, test_y = _xy(holdout, features, vocabularies, target)
    task = _task(column, training[target])
    scores = {}
    for name, rows in (("real", training), ("synthetic", synthetic)):
        x, y = _xy(rows, features, vocabularies, target)
        predicted = (_fit_predict(x, y, test_x, features, column, seed)
                     if len(y) and len(test_y) else None)
        scores[name] = _scores(task, test_y, predicted)
    metric = task["metric"]
    return {"target": target, "task": task, "model": _model_name(column), "seed": seed,
            "rows": {"real": int(len(training)), "synthetic": int(len(synthetic)),
                     "holdout": int(len(test_y))},
            "real": scores["real"], "synthetic": scores["synthetic"],
            "ratio": _ratio(scores["synthetic"][metric], scores["real"][metric])}


def _task(column: Column, training_target: pd.Series) -> dict:
    if is_continuous(column):
        return {"kind": "regression", "metric": "r2"}
    counts = training_target.dropna().value_counts()
    if len(counts) == 2:
        rarer = counts.sort_index().sort_values(kind="stable").index[0]
        return {"kind": "classification", "metric": "f1", "positive_label": str(rarer)}
    return {"kind": "classification", "metric": "f1_macro"}


def _top_categories(values: pd.Series) -> pd.Index:
    counts = values.dropna().value_counts()
    return counts.sort_index().sort_values(ascending=False, kind="stable").index[
        :_HGB_MAX_CATEGORIES]


def _xy(rows: pd.DataFrame, features: Sequence[Column], vocabularies: dict[str, pd.Index],
        target: str) -> tuple[np.ndarray, np.ndarray]:
    """Features as floats (categories as codes of the training vocabulary, rarer ones one
    'other' code, null NaN) and the target, for the rows whose target is present."""
    rows = rows[rows[target].notna()]
    x = np.empty((len(rows), len(features)))
    for i, column in enumerate(features):
        values = rows[column.name]
        if is_continuous(column):
            x[:, i] = values.to_numpy(np.float64)
            continue
        vocabulary = vocabularies[column.name]
        codes = vocabulary.get_indexer(values).astype(np.float64)
        codes[codes < 0] = len(vocabulary)
        x[:, i] = np.where(values.isna().to_numpy(), np.nan, codes)
    return x, rows[target].to_numpy()


def _fit_predict(x: np.ndarray, y: np.ndarray, test_x: np.ndarray, features: Sequence[Column],
                 column: Column, seed: int) -> np.ndarray:
    """One thread: the same figures whatever the machine, and no OpenMP threads spinning
    against each other on a shared one (5x slower on two busy cores)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    if not is_continuous(column) and len(np.unique(y)) == 1:
        return np.full(len(test_x), y[0], dtype=object)  # SDMetrics predicts the one class
    model_class = (HistGradientBoostingRegressor if is_continuous(column)
                   else HistGradientBoostingClassifier)
    categorical = np.array([not is_continuous(c) for c in features], bool)
    model = model_class(random_state=seed,
                        categorical_features=categorical if categorical.any() else None)
    with threadpool_limits(limits=1):
        return model.fit(x, y).predict(test_x)


def _scores(task: dict, truth: np.ndarray, predicted: np.ndarray | None) -> dict[str, float]:
    """The task's metric (and accuracy for classification); NaN without predictions (no rows
    with a target to train or to test on)."""
    from sklearn.metrics import accuracy_score, f1_score, r2_score

    if predicted is None:
        names = ["r2"] if task["kind"] == "regression" else [task["metric"], "accuracy"]
        return dict.fromkeys(names, float("nan"))
    if task["kind"] == "regression":
        return {"r2": float(r2_score(truth, predicted))}
    truth, predicted = truth.astype(str), np.asarray(predicted).astype(str)
    if task["metric"] == "f1":
        f1 = f1_score(truth, predicted, labels=[task["positive_label"]], average="macro",
                      zero_division=0.0)
    else:
        f1 = f1_score(truth, predicted, average="macro", zero_division=0.0)
    return {task["metric"]: float(f1), "accuracy": float(accuracy_score(truth, predicted))}


def _model_name(column: Column) -> str:
    kind = "Regressor" if is_continuous(column) else "Classifier"
    return f"sklearn HistGradientBoosting{kind}"


def figures(*, real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame,
            schema: Schema, training: pd.DataFrame | None = None, target: str | None = None,
            seed: int = 0) -> dict:
    """Quality (real against synthetic), ML efficacy (when a target is given) and privacy.

    `training` is the real rows the model saw, the reference for ML efficacy and privacy; it
    defaults to `real`. `holdout` is real rows it did not see.
    """
    training = real if training is None else training
    efficacy = None
    if target is not None:
        efficacy = ml_efficacy(training=training, synthetic=synthetic, holdout=holdout,
                               schema=schema, target=target, seed=seed)
    return {"quality": quality(real, synthetic, schema), "ml_efficacy": efficacy,
            "privacy": privacy(training=training, synthetic=synthetic, holdout=holdout,
                               schema=schema, seed=seed)}


# Privacy ------------------------------------------------------------------------------------

def exact_copy_share(rows: pd.DataFrame, reference: pd.DataFrame, schema: Schema) -> float:
    """The share of `rows` equal, in every modelled column (null equal to null), to some row of
    `reference`. Rows are compared by a 64-bit hash of their values."""
    if not len(rows):
        return float("nan")
    encoded = _encode_rows([rows, reference], schema.modelled)
    hashes = [pd.util.hash_pandas_object(pd.DataFrame(dict(enumerate(table))), index=False)
              for table in encoded]
    return float(np.isin(hashes[0].to_numpy(), hashes[1].to_numpy()).mean())


def dcr(rows: pd.DataFrame, reference: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Each row's distance to its closest `reference` row, SDMetrics' DCR: the mean over
    modelled columns of |a - b| / (the reference column's range), capped at 1 (with a range of
    0: 0 if equal, else 1), for numbers, and 0 if equal else 1 for categories; a null is at
    distance 0 from a null and 1 from a value."""
    columns = schema.modelled
    query, ref = _encode_rows([rows, reference], columns)
    ranges = [np.nanmax(r) - np.nanmin(r) if is_continuous(c) and not np.isnan(r).all()
              else float("nan") for c, r in zip(columns, ref)]
    nearest = np.empty(len(rows))
    step = max(1, _DCR_CHUNK_CELLS // max(1, len(reference)))
    for start in range(0, len(rows), step):
        total = np.zeros((min(step, len(rows) - start), len(reference)))
        for column, q, r, span in zip(columns, query, ref, ranges):
            q = q[start:start + step, None]
            total += (_numeric_distance(q, r[None, :], span) if is_continuous(column)
                      else (q != r[None, :]))
        nearest[start:start + len(total)] = total.min(axis=1, initial=np.inf)
    return nearest / len(columns)


def privacy(*, training: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame,
            schema: Schema, seed: int = 0, query_rows: int = 1000,
            reference_rows: int = 10_000) -> dict:
    """Exact copies and distances to closest record, for synthetic rows and, as the baseline,
    real held-out rows, both against the real training rows.

    Exact-copy shares use every row. DCRs use seeded samples of at most `query_rows` synthetic
    and held-out rows, against at most `reference_rows` training rows; and, for SDMetrics'
    DCROverfittingProtection (the share of synthetic rows closer to the training rows than to
    the held-out rows, and its score min(1, 2 * (1 - share))), as many held-out rows.
    """
    rng = np.random.default_rng(seed)
    train_ref, holdout_ref = (_sample(t, reference_rows, rng) for t in (training, holdout))
    synthetic_q, holdout_q = (_sample(t, query_rows, rng) for t in (synthetic, holdout))
    synthetic_dcr = dcr(synthetic_q, train_ref, schema)
    holdout_dcr = dcr(holdout_q, train_ref, schema)
    closer = float(np.mean(synthetic_dcr < dcr(synthetic_q, holdout_ref, schema)))
    medians = {"synthetic": float(np.median(synthetic_dcr)),
               "holdout": float(np.median(holdout_dcr))}
    return {
        "exact_copies": {"synthetic_share": exact_copy_share(synthetic, training, schema),
                         "holdout_share": exact_copy_share(holdout, training, schema)},
        "dcr": {"median_synthetic_to_training": medians["synthetic"],
                "median_holdout_to_training": medians["holdout"],
                "ratio": _ratio(medians["synthetic"], medians["holdout"]),
                "query_rows": len(synthetic_q), "reference_rows": len(train_ref), "seed": seed},
        "dcr_overfitting_protection": {"closer_to_training": closer,
                                       "score": min(1.0, 2.0 * (1.0 - closer))},
    }


def _encode_rows(tables: Sequence[pd.DataFrame], columns: Sequence[Column]
                 ) -> list[list[np.ndarray]]:
    """Per table, per column: float64 numbers (NaN for null, -0.0 as 0.0) or category codes
    shared by the tables (null a code of its own)."""
    encoded: list[list[np.ndarray]] = [[] for _ in tables]
    for column in columns:
        if is_continuous(column):
            parts = [t[column.name].to_numpy(np.float64) + 0.0 for t in tables]
        else:
            parts = _shared_codes([t[column.name] for t in tables])
        for table_columns, part in zip(encoded, parts):
            table_columns.append(part)
    return encoded


def _numeric_distance(a: np.ndarray, b: np.ndarray, span: float) -> np.ndarray:
    diff = np.abs(a - b)
    distance = (diff > 0).astype(np.float64) if span == 0 else np.minimum(diff / span, 1.0)
    a_null, b_null = np.isnan(a), np.isnan(b)
    if a_null.any() or b_null.any():
        distance = np.where(a_null | b_null, (a_null != b_null).astype(np.float64), distance)
    return distance


def _sample(table: pd.DataFrame, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(table) <= rows:
        return table
    return table.iloc[np.sort(rng.choice(len(table), rows, replace=False))]


# Shared helpers -----------------------------------------------------------------------------

def _shared_codes(series: Sequence[pd.Series]) -> list[np.ndarray]:
    """Integer codes of values over several series, one code space, null a code of its own."""
    codes, _ = pd.factorize(pd.concat(list(series), ignore_index=True), use_na_sentinel=False)
    bounds = np.cumsum([0] + [len(s) for s in series])
    return [codes[start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]


def _null_share(values: pd.Series) -> float:
    return float(values.isna().mean()) if len(values) else float("nan")


def _nanmean(values) -> float:
    values = np.array(list(values), np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")
