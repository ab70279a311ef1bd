"""Helpers the tests share: Adult rows with a key and a timestamp, training a model the way a
user's pipeline would, killing a training run midway."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import numpy as np
import pyarrow as pa

from aepipe.table.schema import Schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def with_key_and_time(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """Rows of Adult with the `sample_schema` extras: a string key and an event timestamp."""
    table = table.take(rows)
    table = table.set_column(table.schema.get_field_index("fnlwgt"), "fnlwgt",
                             table.column("fnlwgt").cast(pa.float64()))
    times = pa.array(1_700_000_000 + rows * 60, pa.timestamp("s", tz="UTC"))
    return table.add_column(0, "event_ts", times).add_column(
        0, "id", pa.array([f"row-{i}" for i in rows]))


def train_sample_model(train_path: str, schema: Schema, model_dir: str, options=None) -> str:
    """Trains on the Adult sample through ValidateBatches and TrainAutoencoder (default
    options with seed 1, unless `options` says otherwise)."""
    from apache_beam.io.parquetio import ReadFromParquetBatched
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from aepipe.options import ModelOptions
    from aepipe.beam.train import TrainAutoencoder
    from aepipe.beam.validate import ValidateBatches, check_inputs

    summary = check_inputs(train_path, schema)
    with TestPipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        valid, rejected = (p | ReadFromParquetBatched(train_path)
                           | ValidateBatches(schema, summary.arrow_schema))
        published = valid | TrainAutoencoder(
            schema=schema, model_dir=model_dir, input_arrow_schema=summary.arrow_schema,
            options=options or ModelOptions(seed=1))
        assert_that(published, equal_to([os.path.abspath(model_dir)]))
        assert_that(rejected, equal_to([]), label="NoRejectedRows")
    return model_dir


def kill_training_at_first_validation(*args: str) -> None:
    """Runs `python -m pipelines.train ARGS --epochs 50 --patience 50` and kills its whole
    process group with SIGKILL as soon as it logs its first validation."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.train", *args, "--epochs", "50", "--patience", "50"],
        stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    for line in process.stderr:
        if re.search(r"step \d+/\d+: loss", line):
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before its first validation"


def evaluate(*, synthetic: str, output: str, model_dir: str | None = None,
             schema: str | None = None, overwrite: bool = False, **options):
    """`aepipe.evaluation.evaluate.evaluate` with its options as keywords (real, holdout,
    target, max_rows, seed), as the command line gives them."""
    from aepipe.evaluation.evaluate import evaluate as run
    from aepipe.options import EvaluateOptions

    return run(synthetic=synthetic, output=output, options=EvaluateOptions(**options),
               model_dir=model_dir, schema=schema, overwrite=overwrite)
