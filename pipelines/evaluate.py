"""Evaluate synthetic rows against the real rows they imitate: quality, ML efficacy, privacy.

    aepipe evaluate --real PATTERN --synthetic PATTERN --output REPORT_DIR [--model-dir DIR]
                    [--schema SCHEMA.yaml] [--holdout PATTERN] [--target COLUMN]
                    [--max-rows N] [--seed S] [--overwrite]

Writes REPORT_DIR/report.json, REPORT_DIR/report.html and REPORT_DIR/plots/*.png (see
aepipe.report); the figures have SDMetrics' definitions (see aepipe.metrics). The columns and
their kinds come from --schema, else from --model-dir's manifest, else they are guessed from the
real files as `aepipe infer-schema` does (dictionary columns decoded, as categories), so data
made by other tools can be evaluated too. Only modelled columns are evaluated.

`--real` is what the synthetic rows imitate, the training rows. `--holdout` is real rows the
model did not see; without it, the real rows are split 80/20 with the seed into a training
reference and held-out rows, for the ML-efficacy and privacy figures. Each input is read whole
and subsampled (seeded) to --max-rows. It runs in this process (pandas, scikit-learn), not as a
Beam pipeline.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import sys
import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pyarrow as pa

from aepipe import __version__
from aepipe.errors import InputError, OptionsError, SchemaError
from aepipe.schema import Column, Kind, Schema
from pipelines.arguments import add_overwrite

if TYPE_CHECKING:
    import pandas as pd

    from aepipe.model_dir import ModelDirectory
# pandas, scikit-learn, matplotlib, Beam's file systems and TensorFlow are imported where the
# job runs, not here: `--help` and argument errors answer without them.

_LOG = logging.getLogger("aepipe")
HOLDOUT_SHARE = 0.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--real", required=True,
                        help="the real Parquet files the synthetic rows imitate (training rows)")
    parser.add_argument("--synthetic", required=True, help="the synthetic Parquet files")
    parser.add_argument("--output", required=True, help="the report directory")
    parser.add_argument("--model-dir", default=None,
                        help="the model directory: its schema, and its facts in the report")
    parser.add_argument("--schema", default=None,
                        help="a schema file (instead of the model's or a guessed one)")
    parser.add_argument("--holdout", default=None,
                        help="real Parquet files the model did not see (default: 20%% of "
                             "--real, split with the seed)")
    parser.add_argument("--target", default=None,
                        help="a modelled column to predict, for the ML-efficacy figures")
    parser.add_argument("--max-rows", type=int, default=100_000,
                        help="rows read per input at most (a seeded sample)")
    parser.add_argument("--seed", type=int, default=0)
    add_overwrite(parser)


def run(args: argparse.Namespace, beam_args: Sequence[str]) -> dict[str, Any]:
    if beam_args:
        raise OptionsError(f"aepipe evaluate does not know {' '.join(beam_args)}")
    return evaluate(real=args.real, synthetic=args.synthetic, output=args.output,
                    model_dir=args.model_dir, schema=args.schema, holdout=args.holdout,
                    target=args.target, max_rows=args.max_rows, seed=args.seed,
                    overwrite=args.overwrite)


def evaluate(*, real: str, synthetic: str, output: str, model_dir: str | None = None,
             schema: str | None = None, holdout: str | None = None, target: str | None = None,
             max_rows: int = 100_000, seed: int = 0, overwrite: bool = False) -> dict[str, Any]:
    """Reads the inputs, computes every figure, writes the report; returns report.json's
    content (without the plots' paths)."""
    from aepipe import fileio, metrics
    from aepipe.model_dir import ModelDirectory
    from aepipe.report import write_report
    from pipelines.common import pipeline_options

    pipeline_options(())  # the file systems' options: s3:// paths need them
    if max_rows < 2:
        raise OptionsError(f"--max-rows must be at least 2 (got {max_rows})")
    # Only the manifest is read: the SavedModel never runs here, so its ops are not checked.
    model = ModelDirectory(model_dir, trust_model=True) if model_dir else None
    evaluated, source = _schema(schema, model, real)
    if target is not None and target not in {c.name for c in evaluated.modelled}:
        raise OptionsError(f"--target {target!r} is not an evaluated column (one of: "
                           f"{', '.join(c.name for c in evaluated.modelled)})")
    fileio.refuse_existing_directory(output, overwrite=overwrite)
    started = time.perf_counter()
    frames, files = {}, {}
    for i, (name, pattern) in enumerate((("real", real), ("synthetic", synthetic),
                                         ("holdout", holdout))):
        if pattern is not None:
            frames[name], files[name] = read_rows(pattern, evaluated, max_rows=max_rows,
                                                  seed=_seed(seed, i))
    training, held_out, holdout_source = _training_and_holdout(frames, seed)
    figures = metrics.figures(real=frames["real"], synthetic=frames["synthetic"],
                              training=training, holdout=held_out, schema=evaluated,
                              target=target, seed=seed)
    report = {"aepipe_version": __version__,
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "inputs": {"files": files, "holdout_source": holdout_source,
                         "training_rows": len(training), "holdout_rows": len(held_out),
                         "max_rows": max_rows, "seed": seed},
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
    import pandas as pd

    from aepipe import fileio

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
    from aepipe import fileio, metrics

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
        schema, source = _inferred(real), f"inferred from {real}"
    sets = [c.name for c in schema.modelled if c.kind is Kind.ITEMS]
    if sets:
        _LOG.info("not evaluating item set column(s) %s: the quality and privacy figures are "
                  "for tabular columns", ", ".join(sets))
    evaluated = tuple(c for c in schema.modelled if c.kind is not Kind.ITEMS)
    if not evaluated:
        raise SchemaError(f"{source}: no column to evaluate; item set columns are not "
                          "evaluated (their recommendations are: see benchmarks/recommend.py)")
    return Schema(evaluated), source


def _inferred(pattern: str) -> Schema:
    """`aepipe infer-schema`'s guess, with dictionary columns as categories: training cannot
    read them, so infer_schema ignores them, but evaluation decodes them."""
    from aepipe import fileio
    from pipelines.infer_schema import infer_from_files

    guessed = infer_from_files(pattern)
    footer = fileio.parquet_file(fileio.match(pattern)[0])
    fields = footer.schema_arrow
    footer.close(force=True)
    columns = []
    for column in guessed.columns:
        arrow_type = fields.field(column.name).type
        category = Column(column.name, Kind.CATEGORICAL, column.nullable)
        if (column.kind is Kind.IGNORE and pa.types.is_dictionary(arrow_type)
                and category.accepts(arrow_type.value_type) and _modelable(category)):
            column = category
        columns.append(column)
    return Schema(tuple(columns))


def _modelable(column: Column) -> bool:
    try:
        Schema((column,))
    except SchemaError:
        return False
    return True


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
            "training": training}


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


def main(argv: Sequence[str] | None = None) -> int:
    from aepipe.cli import run_job

    return run_job("pipelines.evaluate", argv)


if __name__ == "__main__":
    sys.exit(main())
