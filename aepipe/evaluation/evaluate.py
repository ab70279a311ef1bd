"""Evaluate synthetic rows against the real rows they imitate: quality, ML efficacy, privacy.

The figures have SDMetrics' definitions (see `aepipe.evaluation.metrics`) and go into a report
directory (`aepipe.evaluation.report`). The columns and their kinds come from a schema file,
else from a model directory's manifest, else they are guessed from the real files as `aepipe
infer-schema` does (dictionary columns decoded, as categories), so data made by other tools can
be evaluated too. Only modelled columns are evaluated.

The real rows are what the synthetic rows imitate, the training rows. The held-out rows are real
rows the model did not see; without them, the real rows are split 80/20 with the seed into a
training reference and held-out rows, for the ML-efficacy and privacy figures. Each input is
read whole and subsampled (seeded) to `max_rows`. It runs in this process (pandas,
scikit-learn), not as a Beam pipeline.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from aepipe import __version__
from aepipe.errors import InputError, OptionsError, SchemaError
from aepipe.evaluation import metrics
from aepipe.evaluation.report import write_report
from aepipe.io import files as fileio
from aepipe.options import EvaluateOptions
from aepipe.store.reader import ModelDirectory
from aepipe.table.inference import infer_for_evaluation
from aepipe.table.schema import Kind, Schema

__all__ = ["evaluate", "read_rows", "HOLDOUT_SHARE"]

_LOG = logging.getLogger("aepipe")
HOLDOUT_SHARE = 0.2


def evaluate(*, synthetic: str, output: str, options: EvaluateOptions,
             model_dir: str | None = None, schema: str | None = None,
             overwrite: bool = False) -> dict[str, Any]:
    """Reads the inputs, computes every figure, writes the report; returns report.json's
    content (without the plots' paths)."""
    # Only the manifest is read: the SavedModel never runs here, so its ops are not checked.
    model = ModelDirectory(model_dir, trust_model=True) if model_dir else None
    evaluated, source = _schema(schema, model, options.real)
    target, seed = options.target, options.seed
    if target is not None and target not in {c.name for c in evaluated.modelled}:
        raise OptionsError(f"--target {target!r} is not an evaluated column (one of: "
                           f"{', '.join(c.name for c in evaluated.modelled)})")
    fileio.refuse_existing_directory(output, overwrite=overwrite)
    started = time.perf_counter()
    frames, files = {}, {}
    for i, (name, pattern) in enumerate((("real", options.real), ("synthetic", synthetic),
                                         ("holdout", options.holdout))):
        if pattern is not None:
            frames[name], files[name] = read_rows(pattern, evaluated, max_rows=options.max_rows,
                                                  seed=_seed(seed, i))
    training, held_out, holdout_source = _training_and_holdout(frames, seed)
    figures = metrics.figures(real=frames["real"], synthetic=frames["synthetic"],
                              training=training, holdout=held_out, schema=evaluated,
                              target=target, seed=seed)
    report = {"aepipe_version": __version__,
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "inputs": {"files": files, "holdout_source": holdout_source,
                         "training_rows": len(training), "holdout_rows": len(held_out),
                         "max_rows": options.max_rows, "seed": seed},
              "schema": {"source": source, **evaluated.to_dict()},
              "model": _model_facts(model), **figures}
    path = write_report(output, report, real=frames["real"], synthetic=frames["synthetic"],
                        schema=evaluated)
    _log_headline(report, path, time.perf_counter() - started)
    return report


def read_rows(pattern: str, schema: Schema, *, max_rows: int, seed: int
              ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The schema's modelled columns of every matched file as one evaluation frame, subsampled
    (seeded) to `max_rows`, and what was read. A missing column, or one of a type its kind
    cannot take, is an InputError naming the file and the column."""
    paths = fileio.match(pattern)
    frame = pd.concat([_read_file(path, schema) for path in paths], ignore_index=True)
    if frame.empty:
        raise InputError(f"the input {pattern} holds no rows ({len(paths)} file(s))")
    rows = len(frame)
    if rows > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
        frame = frame.iloc[keep].reset_index(drop=True)
    return frame, {"pattern": pattern, "files": len(paths), "rows": rows,
                   "rows_used": len(frame)}


def _read_file(path: str, schema: Schema) -> pd.DataFrame:
    footer = fileio.parquet_file(path)
    try:
        fields = footer.schema_arrow
        for column in schema.modelled:
            if column.name not in fields.names:
                raise InputError(f"{path}: column {column.name!r} ({column.kind.value}) is "
                                 "missing")
            arrow_type = _decoded(fields.field(column.name).type)
            if not column.accepts(arrow_type):
                raise InputError(f"{path}: column {column.name!r} has type {arrow_type}, "
                                 f"which a {column.kind.value} column cannot take")
        table = footer.read(columns=[c.name for c in schema.modelled])
    finally:
        footer.close(force=True)  # it does not own the file object it reads, so force
    return metrics.evaluation_frame(table, schema)


def _schema(schema_file: str | None, model: ModelDirectory | None, real: str
            ) -> tuple[Schema, str]:
    """The evaluated columns (the modelled ones but item sets, which the tabular metrics do
    not cover) and where their kinds came from."""
    if schema_file:
        schema, source = Schema.load(schema_file), f"schema file {schema_file}"
    elif model is not None:
        schema, source = model.schema, f"model directory {model.path}"
    else:
        schema, source = infer_for_evaluation(real), f"inferred from {real}"
    sets = [c.name for c in schema.modelled if c.kind is Kind.ITEMS]
    if sets:
        _LOG.info("not evaluating item set column(s) %s: the quality and privacy figures are "
                  "for tabular columns", ", ".join(sets))
    evaluated = tuple(c for c in schema.modelled if c.kind is not Kind.ITEMS)
    if not evaluated:
        raise SchemaError(f"{source}: no column to evaluate; item set columns are not "
                          "evaluated (their recommendations are: see benchmarks/recommend.py)")
    return Schema(evaluated), source


def _decoded(arrow_type: pa.DataType) -> pa.DataType:
    return arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type


def _training_and_holdout(frames: dict[str, pd.DataFrame], seed: int
                          ) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The real rows as the training reference and the held-out rows: --holdout's, or a seeded
    80/20 split of the real rows."""
    real = frames["real"]
    if "holdout" in frames:
        return real, frames["holdout"], "the --holdout files"
    held_out = int(round(HOLDOUT_SHARE * len(real)))
    if held_out < 1 or held_out == len(real):
        raise InputError(f"--real has {len(real)} rows, too few to split held-out rows off; "
                         "pass --holdout")
    order = np.random.default_rng(_seed(seed, 3)).permutation(len(real))
    return (real.iloc[np.sort(order[held_out:])], real.iloc[np.sort(order[:held_out])],
            f"{HOLDOUT_SHARE:.0%} of the --real rows (seeded split)")


def _seed(seed: int, stream: int) -> int:
    """Independent, reproducible seeds for the inputs' samples and the split."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def _model_facts(model: ModelDirectory | None) -> dict[str, Any] | None:
    if model is None:
        return None
    manifest = model.manifest
    training = {k: v for k, v in dataclasses.asdict(manifest.training).items() if k != "history"}
    return {"path": model.path, "aepipe_version": manifest.aepipe_version,
            "options": dataclasses.asdict(manifest.options), "rows": manifest.rows,
            "training": training, "reconstruction": manifest.reconstruction}


def _log_headline(report: dict[str, Any], path: str, seconds: float) -> None:
    quality, privacy = report["quality"], report["privacy"]
    _LOG.info("quality score %.3f (column shapes %.3f, column pair trends %.3f)",
              quality["score"], quality["column_shapes"]["score"],
              quality["column_pair_trends"]["score"])
    efficacy = report["ml_efficacy"]
    if efficacy:
        metric = efficacy["task"]["metric"]
        _LOG.info("ML efficacy (%s of %s): real %.3f, synthetic %.3f, ratio %.3f", metric,
                  efficacy["target"], efficacy["real"][metric], efficacy["synthetic"][metric],
                  efficacy["ratio"])
    _LOG.info("exact copies of training rows: synthetic %.2f%%, held-out %.2f%%; median DCR "
              "ratio synthetic / held-out %.3f",
              100 * privacy["exact_copies"]["synthetic_share"],
              100 * privacy["exact_copies"]["holdout_share"], privacy["dcr"]["ratio"])
    _LOG.info("evaluated in %.1f s: %s", seconds, path)
