"""Writes cases.json: small random tables and the figures sdmetrics 0.32.0 gives for them.

sdmetrics 0.32.0 requires pandas < 3, so it cannot sit in our virtualenv (pandas 3.1); this
script runs in a scratch one, and tests/test_metrics.py compares aepipe.metrics with its output:

    python3.11 -m venv /tmp/sdm && /tmp/sdm/bin/pip install sdmetrics==0.32.0
    /tmp/sdm/bin/python tests/sdmetrics_reference/generate.py
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sdmetrics.reports import QualityReport
from sdmetrics.single_column import KSComplement, TVComplement
from sdmetrics.single_table import DCROverfittingProtection
from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

KINDS = {"x": "numerical", "y": "numerical", "n": "numerical", "c": "categorical",
         "d": "categorical", "b": "boolean"}
METADATA = {"columns": {name: {"sdtype": sdtype} for name, sdtype in KINDS.items()}}


def table(rng: np.random.Generator, rows: int, shift: float) -> pd.DataFrame:
    """Correlated numbers with nulls, an integer column, categories tied to the numbers (one
    only when shifted), nulls in a category column, a boolean."""
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


def as_json(frame: pd.DataFrame) -> dict:
    return {name: [None if pd.isna(v) else (bool(v) if isinstance(v, (bool, np.bool_)) else v)
                   for v in frame[name].tolist()] for name in frame.columns}


def pair_trends(real: pd.DataFrame, synthetic: pd.DataFrame, thresholds: bool) -> tuple:
    report = QualityReport()
    if not thresholds:
        report.real_correlation_threshold = report.real_association_threshold = 0
    report.generate({"t": real}, {"t": synthetic}, {"tables": {"t": METADATA}}, verbose=False)
    properties = report.get_properties()
    return report, dict(zip(properties["Property"], properties["Score"]))


def case(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    real, synthetic = table(rng, 200, 0.0), table(rng, 150, 0.3 * seed)
    holdout = table(rng, 120, 0.0)
    if seed == 3:
        synthetic["n"] = 3.0                       # a constant column: correlation undefined
        real.loc[real.index[:100], "c"] = None     # half the real categories null
    if seed == 4:
        synthetic = real.copy()
    report, properties = pair_trends(real, synthetic, thresholds=True)
    _, all_pairs = pair_trends(real, synthetic, thresholds=False)
    details = report.get_details("Column Pair Trends", "t")
    return {
        "real": as_json(real), "synthetic": as_json(synthetic), "holdout": as_json(holdout),
        "shapes": {name: (KSComplement if sdtype == "numerical" else TVComplement).compute(
            real[name], synthetic[name]) for name, sdtype in KINDS.items()},
        "column_shapes": properties["Column Shapes"],
        "column_pair_trends": properties["Column Pair Trends"],
        "column_pair_trends_all_pairs": all_pairs["Column Pair Trends"],
        "score": report.get_score(),
        "pairs": [{"columns": [row["Column 1"], row["Column 2"]], "metric": row["Metric"],
                   "score": row["Score"], "real_correlation": row["Real Correlation"],
                   "real_association": row["Real Association"],
                   "meets_threshold": bool(row["Meets Threshold?"] is True)}
                  for _, row in details.iterrows()],
        "dcr_synthetic": calculate_dcr(synthetic, real, METADATA).tolist(),
        "dcr_holdout": calculate_dcr(holdout, real, METADATA).tolist(),
        "dcr_overfitting_protection": DCROverfittingProtection.compute(
            real, synthetic, holdout, METADATA, None),
    }


def main() -> None:
    warnings.filterwarnings("ignore")
    cases = [case(seed) for seed in range(5)]
    text = json.dumps(cases, default=float).replace("NaN", "null")
    Path(__file__).with_name("cases.json").write_text(text)


if __name__ == "__main__":
    main()
