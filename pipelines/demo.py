"""Run the whole aepipe flow on the embedded Adult census dataset.

    aepipe demo [--workdir DIR] [Beam options]

Splits Adult 80/20 (fixed seed), trains on the 80%, encodes the held-out 20%, samples as many
synthetic rows as there are training rows, reports the reconstruction quality on the held-out
rows and real against synthetic distributions for a few columns, and ends with the evaluation
report of the synthetic rows (quality, ML efficacy on `income`, privacy; HTML with plots).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aepipe import datasets
from aepipe.options import ModelOptions
from aepipe.schema import Schema
from pipelines.train import train

_LOG = logging.getLogger("aepipe")
HOLDOUT_FRACTION = 0.2
SHOWN_COLUMNS = ("age", "workclass", "education", "hours_per_week", "income")
SPLIT_SEED = 0
TARGET = "income"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default="aepipe-demo",
                        help="where the demo writes its data, model and outputs")


def split_adult(workdir: str) -> tuple[str, str]:
    """Writes Adult's training (80%) and held-out (20%) rows, chosen with a fixed seed."""
    table = pq.read_table(datasets.adult_parquet())
    holdout = np.random.default_rng(SPLIT_SEED).random(table.num_rows) < HOLDOUT_FRACTION
    paths = []
    for name, mask in (("train", ~holdout), ("holdout", holdout)):
        os.makedirs(os.path.join(workdir, name), exist_ok=True)
        path = os.path.join(workdir, name, "adult.parquet")
        pq.write_table(table.filter(pa.array(mask)), path)
        paths.append(path)
    return paths[0], paths[1]


def run(args: argparse.Namespace, beam_args: Sequence[str]) -> None:
    from aepipe.model_dir import ModelDirectory
    from aepipe.quality import reconstruction_quality
    from pipelines.encode import encode
    from pipelines.evaluate import evaluate
    from pipelines.sample import sample

    train_path, holdout_path = split_adult(args.workdir)
    model_dir = train(input_pattern=train_path, schema=Schema.load(datasets.adult_schema()),
                      model_dir=os.path.join(args.workdir, "model"), options=ModelOptions(),
                      beam_args=beam_args, overwrite=True)
    encoded_prefix = os.path.join(args.workdir, "encoded", "adult")
    encoded = encode(input_pattern=holdout_path, model_dir=model_dir, output=encoded_prefix,
                     beam_args=beam_args, overwrite=True)
    real = pq.read_table(train_path)
    synthetic_prefix = os.path.join(args.workdir, "synthetic", "adult")
    sampled = sample(model_dir=model_dir, num_rows=real.num_rows, seed=SPLIT_SEED,
                     output=synthetic_prefix, beam_args=beam_args, overwrite=True)
    model = ModelDirectory(model_dir)
    quality = reconstruction_quality(
        model, pq.read_table(holdout_path).to_batches(max_chunksize=8192))
    run = model.manifest.training
    _LOG.info("model: %s (code size %d, best at step %d of %d, validation loss %.4f)",
              os.path.abspath(model_dir), model.code_size, run.best_step, run.steps,
              run.validation_loss)
    _LOG.info("held-out reconstruction: %s", json.dumps(
        {k: round(v, 4) for k, v in quality["by_kind"].items()}))
    _LOG.info("outputs: %d training rows, %d encoded rows (%s), %d synthetic rows (%s)",
              real.num_rows, encoded["rows_written"], os.path.dirname(encoded_prefix),
              sampled, os.path.dirname(synthetic_prefix))
    synthetic = pq.read_table(os.path.dirname(synthetic_prefix))
    for column in SHOWN_COLUMNS:
        _LOG.info("%s", side_by_side(real.column(column), synthetic.column(column), column))
    report_dir = os.path.join(args.workdir, "report")
    evaluate(real=train_path, synthetic=os.path.dirname(synthetic_prefix), holdout=holdout_path,
             model_dir=model_dir, target=TARGET, output=report_dir, seed=SPLIT_SEED,
             overwrite=True)
    _LOG.info("evaluation report: %s", os.path.abspath(os.path.join(report_dir, "report.html")))


def side_by_side(real: pa.ChunkedArray, synthetic: pa.ChunkedArray, name: str) -> str:
    """A few lines comparing a column's real and synthetic distributions."""
    lines = [f"{name:<18} {'real':>12} {'synthetic':>12}"]
    if pa.types.is_integer(real.type) or pa.types.is_floating(real.type):
        for label, q in (("p10", 10), ("median", 50), ("p90", 90)):
            lines.append(f"  {label:<16} {np.percentile(real.drop_null(), q):>12,.1f} "
                         f"{np.percentile(synthetic.drop_null(), q):>12,.1f}")
        lines.append(f"  {'mean':<16} {pc.mean(real).as_py():>12,.1f} "
                     f"{pc.mean(synthetic).as_py():>12,.1f}")
        return "\n".join(lines)
    real_share, synthetic_share = _shares(real), _shares(synthetic)
    for value in sorted(real_share, key=real_share.get, reverse=True)[:5]:
        lines.append(f"  {str(value)[:16]:<16} {real_share[value]:>12.1%} "
                     f"{synthetic_share.get(value, 0.0):>12.1%}")
    return "\n".join(lines)


def _shares(column: pa.ChunkedArray) -> dict:
    counts = pc.value_counts(column).to_pylist()
    return {c["values"] if c["values"] is not None else "(null)": c["counts"] / len(column)
            for c in counts}


def main(argv: Sequence[str] | None = None) -> int:
    from aepipe.cli import run_job

    return run_job("pipelines.demo", argv)


if __name__ == "__main__":
    sys.exit(main())
