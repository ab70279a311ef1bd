"""Shared fixtures: a sample of Adult split into training and held-out files, and one model
trained on it once per test session (TFT and TensorFlow start-up make training per test slow)."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aepipe import datasets
from aepipe.logs import quiet_startup
from aepipe.table.schema import Column, Kind, Schema
from tests.helpers import train_sample_model, with_key_and_time

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
def sample_schema(adult_schema) -> Schema:
    """Adult's schema plus a key and an event timestamp, with `fnlwgt` as a float column."""
    columns = [Column("id", Kind.KEY, nullable=False), Column("event_ts", Kind.TIMESTAMP)]
    columns += [Column(c.name, Kind.NUMERIC, c.nullable) if c.name == "fnlwgt" else c
                for c in adult_schema.columns]
    return Schema(tuple(columns))


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


@pytest.fixture(scope="session")
def trained_model_dir(adult_files, sample_schema, tmp_path_factory) -> str:
    """One model trained on the Adult sample, shared by every test that needs a model."""
    return train_sample_model(adult_files["train"], sample_schema,
                              os.path.join(str(tmp_path_factory.mktemp("trained")), "model"))


@pytest.fixture(scope="session")
def trained_model(trained_model_dir):
    from aepipe.store.reader import ModelDirectory

    return ModelDirectory(trained_model_dir)


# Fixtures that train a model of their own, beyond the session's shared one: a test using one
# is slow (`make test-fast` leaves it out; `make test` and CI run everything).
TRAINING_FIXTURES = {"items_model", "keyed_training"}


def pytest_collection_modifyitems(items):
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
