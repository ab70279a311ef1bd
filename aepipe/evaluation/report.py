"""The evaluation report: every figure in report.json, and a self-contained report.html.

    REPORT_DIR/
      report.json    inputs, schema, model, quality (per column and per pair), ML efficacy,
                     privacy, and the plots' paths; NaN is written as null
      report.html    headline figures, tables and plots; inline CSS, no script, no network
      plots/*.png    real against synthetic for every evaluated column, and the correlation
                     heat maps

The HTML refers to the plots by relative paths (``plots/NAME.png``), so the directory can be
copied or served as it is. Plots are drawn with matplotlib's object API (a `Figure` rendered by
Agg), which leaves the process's pyplot state alone. Local paths and gs:// go through Beam's
file systems.
"""

from __future__ import annotations

import html
import io
import json
import math
import posixpath
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from apache_beam.io.filesystems import FileSystems
from matplotlib.figure import Figure

from aepipe.io import files as fileio
from aepipe.evaluation.metrics import is_continuous
from aepipe.table.schema import Column, Schema

__all__ = ["write_report", "render_html", "REPORT_JSON", "REPORT_HTML", "PLOTS_DIR"]

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
PLOTS_DIR = "plots"
_TOP_CATEGORIES = 10
_HISTOGRAM_BINS = 30
_COLORS = {"real": "#4c72b0", "synthetic": "#dd8452"}
_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
td { font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; }
.note { color: #555; font-size: 0.9em; }
"""


def write_report(report_dir: str, report: dict[str, Any], *, real: pd.DataFrame,
                 synthetic: pd.DataFrame, schema: Schema) -> str:
    """Writes the plots, report.json (`report` plus the plots' paths) and report.html into
    `report_dir`; returns the HTML's path."""
    pairs = report["quality"]["column_pair_trends"]["pairs"]
    report = {**report, "plots": _write_plots(report_dir, real, synthetic, schema, pairs)}
    fileio.write_text(posixpath.join(report_dir, REPORT_JSON),
                      json.dumps(_jsonable(report), indent=2, allow_nan=False))
    path = posixpath.join(report_dir, REPORT_HTML)
    fileio.write_text(path, render_html(report))
    return path


def render_html(report: dict[str, Any]) -> str:
    """The report as one HTML page; plots are referred to by their relative paths."""
    body = "".join([
        "<h1>Synthetic data evaluation</h1>",
        _section("Headline figures", _headline(report)),
        _section("Inputs", _inputs(report)),
        _section("Column shapes", _shapes(report)),
        _section("Column pair trends", _pair_trends(report)),
        _section("Machine-learning efficacy", _efficacy(report)),
        _section("Privacy", _privacy(report)),
        _section("Definitions", _DEFINITIONS),
    ])
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>aepipe evaluate</title><style>{_CSS}</style></head>"
            f"<body>{body}</body></html>\n")


# Plots -------------------------------------------------------------------------------------

def _write_plots(report_dir: str, real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema,
                 pairs: Sequence[dict]) -> dict[str, Any]:
    columns = {}
    for i, column in enumerate(schema.modelled):
        relative = f"{PLOTS_DIR}/column_{i:02d}_{column.name}.png"
        _write_png(report_dir, relative,
                   _column_figure(column, real[column.name], synthetic[column.name]))
        columns[column.name] = relative
    figure = _correlation_figure(schema, pairs)
    correlation = None
    if figure is not None:
        correlation = f"{PLOTS_DIR}/correlation.png"
        _write_png(report_dir, correlation, figure)
    return {"columns": columns, "correlation": correlation}


def _write_png(report_dir: str, relative: str, figure: Figure) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    with FileSystems.create(posixpath.join(report_dir, relative)) as f:
        f.write(buffer.getvalue())


def _column_figure(column: Column, real: pd.Series, synthetic: pd.Series) -> Figure:
    figure = Figure(figsize=(5.2, 3.2), layout="constrained")
    axes = figure.subplots()
    if is_continuous(column):
        _histogram(axes, real, synthetic)
    else:
        _category_bars(axes, real, synthetic)
    axes.set_title(f"{column.name} ({column.kind.value})", fontsize=10)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)
    return figure


def _histogram(axes, real: pd.Series, synthetic: pd.Series) -> None:
    """Densities over shared bins; the legend gives each side's null share."""
    values = {name: series.dropna().to_numpy() for name, series in
              (("real", real), ("synthetic", synthetic))}
    edges = np.histogram_bin_edges(np.concatenate(list(values.values())), bins=_HISTOGRAM_BINS)
    for name, series in (("real", real), ("synthetic", synthetic)):
        if len(values[name]):
            axes.hist(values[name], bins=edges, density=True, alpha=0.55,
                      color=_COLORS[name], label=f"{name} (null {series.isna().mean():.1%})")
    axes.set_ylabel("density", fontsize=8)


def _category_bars(axes, real: pd.Series, synthetic: pd.Series) -> None:
    """Shares of the real data's top categories, then 'other' and null, side by side."""
    top = list(real.value_counts().index[:_TOP_CATEGORIES])
    shares = {name: _category_shares(series, top) for name, series in
              (("real", real), ("synthetic", synthetic))}
    labels = [label for label in shares["real"] if
              label in top or shares["real"][label] or shares["synthetic"][label]]
    positions = np.arange(len(labels))
    for offset, name in ((-0.2, "real"), (0.2, "synthetic")):
        axes.barh(positions + offset, [shares[name][label] for label in labels], height=0.4,
                  color=_COLORS[name], label=name)
    axes.set_yticks(positions, [str(label)[:24] for label in labels], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("share of rows", fontsize=8)


def _category_shares(values: pd.Series, top: Sequence[str]) -> dict[str, float]:
    total = max(len(values), 1)
    counts = values.value_counts()
    shares = {label: counts.get(label, 0) / total for label in top}
    shares["(other)"] = counts[~counts.index.isin(top)].sum() / total
    shares["(null)"] = values.isna().sum() / total
    return shares


def _correlation_figure(schema: Schema, pairs: Sequence[dict]) -> Figure | None:
    """Pearson correlations of the numeric columns, real and synthetic side by side."""
    names = [c.name for c in schema.modelled if is_continuous(c)]
    if len(names) < 2:
        return None
    index = {name: i for i, name in enumerate(names)}
    matrices = {side: np.eye(len(names)) for side in ("real", "synthetic")}
    for pair in pairs:
        if pair["metric"] != "CorrelationSimilarity":
            continue
        i, j = (index[name] for name in pair["columns"])
        for side in matrices:
            matrices[side][i, j] = matrices[side][j, i] = pair[f"{side}_correlation"]
    size = 2.5 + 0.5 * len(names)
    figure = Figure(figsize=(2 * size + 1.5, size + 1.0), layout="constrained")
    image = None
    for axes, side in zip(figure.subplots(1, 2), matrices):
        image = axes.imshow(matrices[side], vmin=-1, vmax=1, cmap="RdBu_r")
        axes.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
        axes.set_yticks(range(len(names)), names, fontsize=8)
        axes.set_title(f"{side} (Pearson r)", fontsize=10)
        if len(names) <= 12:
            for (i, j), value in np.ndenumerate(matrices[side]):
                axes.text(j, i, _number(value, ".2f"), ha="center", va="center", fontsize=7,
                          color="white" if abs(value) > 0.6 else "black")
    figure.colorbar(image, ax=figure.axes, shrink=0.8)
    return figure


# HTML --------------------------------------------------------------------------------------

def _headline(report: dict) -> str:
    quality, privacy = report["quality"], report["privacy"]
    trends = quality["column_pair_trends"]
    counted = sum(p["meets_threshold"] for p in trends["pairs"])
    rows = [
        ("Quality score (SDMetrics Quality Report)", _number(quality["score"])),
        ("Column Shapes", _number(quality["column_shapes"]["score"])),
        (f"Column Pair Trends ({counted} of {len(trends['pairs'])} pairs meet the thresholds)",
         _number(trends["score"])),
        ("Column Pair Trends, all pairs", _number(trends["score_all_pairs"])),
    ]
    efficacy = report.get("ml_efficacy")
    if efficacy:
        metric = efficacy["task"]["metric"]
        rows.append((f"ML efficacy {metric}: synthetic / real", _number(efficacy["ratio"])))
    rows += [
        ("Exact copies of training rows: synthetic (held-out baseline)",
         f"{_percent(privacy['exact_copies']['synthetic_share'])} "
         f"({_percent(privacy['exact_copies']['holdout_share'])})"),
        ("Median DCR synthetic / median DCR held-out", _number(privacy["dcr"]["ratio"])),
        ("DCR overfitting protection", _number(privacy["dcr_overfitting_protection"]["score"])),
    ]
    return _table(("figure", "value"), rows)


def _inputs(report: dict) -> str:
    inputs = report["inputs"]
    rows = [(name, item["pattern"], item["files"], item["rows"], item["rows_used"])
            for name, item in inputs["files"].items()]
    parts = [_table(("input", "pattern", "files", "rows", "rows used"), rows),
             _paragraph(f"Held-out rows: {inputs['holdout_source']}. Training reference: "
                        f"{inputs['training_rows']} rows. Seed {inputs['seed']}, at most "
                        f"{inputs['max_rows']} rows per input."),
             _paragraph(f"Schema ({report['schema']['source']}): " + ", ".join(
                 f"{c['name']} ({c['kind']})" for c in report["schema"]["columns"]))]
    if report.get("model"):
        parts.append(_table(("model", "value"), [(k, json.dumps(_jsonable(v)))
                                                 for k, v in report["model"].items()]))
    return "".join(parts)


def _shapes(report: dict) -> str:
    details = report["quality"]["column_shapes"]["columns"]
    rows = [(d["column"], d["kind"], d["metric"], _number(d["score"]),
             _percent(d["real_null_share"]), _percent(d["synthetic_null_share"]))
            for d in details]
    table = _table(("column", "kind", "metric", "score", "null (real)", "null (synthetic)"),
                   rows)
    plots = report["plots"]["columns"]
    figures = "".join(_figure(plots[d["column"]], f"{d['column']}: {d['metric']} "
                                                  f"{_number(d['score'])}") for d in details)
    return table + f'<div class="plots">{figures}</div>'


def _pair_trends(report: dict) -> str:
    trends = report["quality"]["column_pair_trends"]
    parts = []
    if report["plots"]["correlation"]:
        parts.append(_figure(report["plots"]["correlation"], "Pearson r of the numeric columns"))
    parts.append(_paragraph(
        f"Thresholds: |r_real| > {trends['correlation_threshold']} for numeric pairs, Cramer's "
        f"V > {trends['association_threshold']} for the others; pairs below them are listed "
        "but not counted in the score. Lowest scores first."))
    pairs = sorted(trends["pairs"], key=lambda p: _sort_key(p["score"]))
    rows = [(" / ".join(p["columns"]), p["metric"], _number(p["score"]),
             _number(p.get("real_correlation")), _number(p.get("synthetic_correlation")),
             _number(p.get("real_association")), "yes" if p["meets_threshold"] else "no")
            for p in pairs]
    parts.append(_table(("pair", "metric", "score", "r real", "r synthetic", "V real",
                         "counted"), rows))
    return "".join(parts)


def _efficacy(report: dict) -> str:
    efficacy = report.get("ml_efficacy")
    if not efficacy:
        return _paragraph("No --target column: not computed.")
    task = efficacy["task"]
    about = [("target", efficacy["target"]), ("model", efficacy["model"]),
             ("task", task["kind"]), ("metric", task["metric"])]
    if "positive_label" in task:
        about.append(("positive label", task["positive_label"]))
    about += [(f"{name} rows", count) for name, count in efficacy["rows"].items()]
    scores = [(metric, _number(efficacy["real"][metric]), _number(efficacy["synthetic"][metric]))
              for metric in efficacy["real"]]
    return (_table(("", ""), about)
            + _table(("metric on real held-out rows", "trained on real", "trained on synthetic"),
                     scores)
            + _paragraph(f"Ratio synthetic / real ({task['metric']}): "
                         f"{_number(efficacy['ratio'])}"))


def _privacy(report: dict) -> str:
    privacy = report["privacy"]
    copies, distances = privacy["exact_copies"], privacy["dcr"]
    overfitting = privacy["dcr_overfitting_protection"]
    rows = [("synthetic rows that copy a training row", _percent(copies["synthetic_share"])),
            ("held-out rows that copy a training row (baseline)",
             _percent(copies["holdout_share"])),
            ("median DCR synthetic -> training",
             _number(distances["median_synthetic_to_training"])),
            ("median DCR held-out -> training",
             _number(distances["median_holdout_to_training"])),
            ("ratio", _number(distances["ratio"])),
            ("synthetic rows closer to training than to held-out",
             _percent(overfitting["closer_to_training"])),
            ("DCR overfitting protection score", _number(overfitting["score"]))]
    return _table(("figure", "value"), rows) + _paragraph(
        f"DCRs on {distances['query_rows']} sampled rows against {distances['reference_rows']} "
        f"sampled training rows (seed {distances['seed']}).")


_DEFINITIONS = """<p class="note">Definitions are SDMetrics 0.32.0's. KSComplement: 1 - the
two-sample Kolmogorov-Smirnov statistic on non-null values. TVComplement: 1 - the total
variation distance of non-null category frequencies. CorrelationSimilarity: 1 - |r_real -
r_synthetic| / 2 (Pearson). ContingencySimilarity: 1 - the total variation distance of the joint
frequencies (null a value; numbers cut into 10 equal-width bins). Quality score: the mean of
Column Shapes and Column Pair Trends. DCR: the mean over columns of |a - b| / range (capped at
1) for numbers and 0/1 for categories, to the closest training row. DCR overfitting protection:
min(1, 2 x the share of synthetic rows closer to held-out rows than to training rows).</p>"""


def _section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>{body}"


def _paragraph(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _figure(source: str, caption: str) -> str:
    return (f'<figure><img src="{html.escape(source)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(value))}</td>" for value in row)
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value: float | None, spec: str = ".3f") -> str:
    """A figure as text; '-' for a missing (NaN) one."""
    if value is None or not math.isfinite(value):
        return "-"
    return format(value, spec)


def _percent(value: float | None) -> str:
    return _number(value, ".2%")


def _sort_key(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else math.inf


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars as Python ones, NaN and infinities as None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
