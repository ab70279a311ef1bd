"""Shared fixtures: a sample of Adult split into training and held-out files, and one model
trained on it once per test session (TFT and TensorFlow start-up make training per test slow)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aepipe import datasets
from aepipe.logs import quiet_startup
from aepipe.schema import Column, Kind, Schema

quiet_startup()

ROOT = os.path.dirname(os.path.dirname(__file__))
TRAIN_ROWS = 4000
HOLDOUT_ROWS = 1000


@pytest.fixture(scope="session")
def adult_table() -> pa.Table:
    return pq.read_table(datasets.adult_parquet())


@pytest.fixture(scope="session")
def adult_schema() -> Schema:
    return Schema.load(datasets.adult_schema())


@pytest.fixture(scope="session")
def sample_schema(adult_schema) -> Schema:
    """Adult's schema plus a key and an event timestamp, with `fnlwgt` as a float column."""
    columns = [Column("id", Kind.KEY, nullable=False), Column("event_ts", Kind.TIMESTAMP)]
    columns += [Column(c.name, Kind.NUMERIC, c.nullable) if c.name == "fnlwgt" else c
                for c in adult_schema.columns]
    return Schema(tuple(columns))


def with_key_and_time(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """Rows of Adult with the `sample_schema` extras: a string key and an event timestamp."""
    table = table.take(rows)
    table = table.set_column(table.schema.get_field_index("fnlwgt"), "fnlwgt",
                             table.column("fnlwgt").cast(pa.float64()))
    times = pa.array(1_700_000_000 + rows * 60, pa.timestamp("s", tz="UTC"))
    return table.add_column(0, "event_ts", times).add_column(
        0, "id", pa.array([f"row-{i}" for i in rows]))


@pytest.fixture(scope="session")
def adult_files(adult_table, tmp_path_factory) -> dict[str, str]:
    """A random sample of Adult with `sample_schema`'s columns: `train` (4,000 rows) and
    `holdout` (1,000 rows) Parquet files."""
    rows = np.random.default_rng(7).permutation(adult_table.num_rows)
    root = tmp_path_factory.mktemp("adult")
    files = {}
    for name, take in (("train", rows[:TRAIN_ROWS]),
                       ("holdout", rows[TRAIN_ROWS:TRAIN_ROWS + HOLDOUT_ROWS])):
        files[name] = str(root / f"{name}.parquet")
        pq.write_table(with_key_and_time(adult_table, np.sort(take)), files[name],
                       row_group_size=1500)
    return files


def train_sample_model(train_path: str, schema: Schema, model_dir: str, options=None) -> str:
    """Trains on the Adult sample through ValidateBatches and TrainAutoencoder (default
    options with seed 1, unless `options` says otherwise)."""
    from apache_beam.io.parquetio import ReadFromParquetBatched
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from aepipe.options import ModelOptions
    from aepipe.train import TrainAutoencoder
    from aepipe.validate import ValidateBatches, check_inputs

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


@pytest.fixture(scope="session")
def trained_model_dir(adult_files, sample_schema, tmp_path_factory) -> str:
    """One model trained on the Adult sample, shared by every test that needs a model."""
    return train_sample_model(adult_files["train"], sample_schema,
                              os.path.join(str(tmp_path_factory.mktemp("trained")), "model"))


@pytest.fixture(scope="session")
def trained_model(trained_model_dir):
    from aepipe.model_dir import ModelDirectory

    return ModelDirectory(trained_model_dir)


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
