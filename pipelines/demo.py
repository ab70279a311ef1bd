"""Run the whole aepipe flow on the embedded Adult census dataset.

    aepipe demo [--workdir DIR] [Beam options]

Splits Adult 80/20 (fixed seed), trains on the 80%, and reports the reconstruction quality on the
held-out 20%.
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
import pyarrow.parquet as pq

from aepipe import datasets
from aepipe.options import ModelOptions
from aepipe.schema import Schema
from pipelines.train import train

_LOG = logging.getLogger("aepipe")
HOLDOUT_FRACTION = 0.2
SPLIT_SEED = 0


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

    train_path, holdout_path = split_adult(args.workdir)
    model_dir = train(input_pattern=train_path, schema=Schema.load(datasets.adult_schema()),
                      model_dir=os.path.join(args.workdir, "model"), options=ModelOptions(),
                      beam_args=beam_args, overwrite=True)
    model = ModelDirectory(model_dir)
    quality = reconstruction_quality(
        model, pq.read_table(holdout_path).to_batches(max_chunksize=8192))
    manifest = model.manifest
    _LOG.info("model: %s (code size %d, best epoch %d of %d, validation loss %.4f)",
              os.path.abspath(model_dir), model.code_size, manifest["best_epoch"],
              len(manifest["history"]["loss"]), manifest["validation_loss"])
    _LOG.info("held-out reconstruction (%s): %s", holdout_path, json.dumps(
        {k: round(v, 4) for k, v in quality["by_kind"].items()}))


def main(argv: Sequence[str] | None = None) -> int:
    from aepipe.cli import run_job

    return run_job("pipelines.demo", argv)


if __name__ == "__main__":
    sys.exit(main())
