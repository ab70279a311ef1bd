"""Shared fixtures: a sample of Adult split into training and held-out files, and one model
trained on it once per test session (TFT and TensorFlow start-up make training per test slow)."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aepipe import datasets
from aepipe.cli import quiet_startup
from aepipe.schema import Schema

quiet_startup()

TRAIN_ROWS = 4000
HOLDOUT_ROWS = 1000


@pytest.fixture(scope="session")
def adult_table() -> pa.Table:
    return pq.read_table(datasets.adult_parquet())


@pytest.fixture(scope="session")
def adult_schema() -> Schema:
    return Schema.load(datasets.adult_schema())


@pytest.fixture(scope="session")
def adult_files(adult_table, tmp_path_factory) -> dict[str, str]:
    """A random sample of Adult: `train` (4,000 rows) and `holdout` (1,000 rows) Parquet files."""
    rows = np.random.default_rng(7).permutation(adult_table.num_rows)
    root = tmp_path_factory.mktemp("adult")
    files = {}
    for name, take in (("train", rows[:TRAIN_ROWS]),
                       ("holdout", rows[TRAIN_ROWS:TRAIN_ROWS + HOLDOUT_ROWS])):
        files[name] = str(root / f"{name}.parquet")
        pq.write_table(adult_table.take(np.sort(take)), files[name], row_group_size=1500)
    return files


@pytest.fixture(scope="session")
def trained_model_dir(adult_files, adult_schema, tmp_path_factory) -> str:
    """One model trained on the Adult sample through the TrainAutoencoder transform."""
    from apache_beam.io.parquetio import ReadFromParquetBatched
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from aepipe.options import ModelOptions
    from aepipe.train import TrainAutoencoder
    from aepipe.validate import ValidateBatches, check_inputs

    model_dir = os.path.join(str(tmp_path_factory.mktemp("trained")), "model")
    summary = check_inputs(adult_files["train"], adult_schema)
    with TestPipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        valid, rejected = (p | ReadFromParquetBatched(adult_files["train"])
                           | ValidateBatches(adult_schema, summary.arrow_schema))
        published = valid | TrainAutoencoder(
            schema=adult_schema, model_dir=model_dir, input_arrow_schema=summary.arrow_schema,
            options=ModelOptions(seed=1))
        assert_that(published, equal_to([os.path.abspath(model_dir)]))
        assert_that(rejected, equal_to([]), label="NoRejectedRows")
    return model_dir


@pytest.fixture(scope="session")
def trained_model(trained_model_dir):
    from aepipe.model_dir import ModelDirectory

    return ModelDirectory(trained_model_dir)
