"""Bad input ends in one clear message and exit status 2, or in dead-letter rows that balance."""

import glob
import logging
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from aepipe import datasets
from pipelines.cli import main

SCHEMA = datasets.adult_schema()


def train(tmp_path, input_path, *extra):
    return main(["train", "--input", str(input_path), "--schema", SCHEMA,
                 "--model-dir", str(tmp_path / "model"), *extra])


def error_of(caplog) -> str:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    return errors[0]


@pytest.fixture
def small_adult(adult_table, tmp_path):
    def write(table=None, name="part.parquet"):
        path = tmp_path / name
        pq.write_table(adult_table.slice(0, 300) if table is None else table, path)
        return path
    return write


def test_a_missing_column_stops_the_job_naming_file_and_column(small_adult, adult_table,
                                                               tmp_path, caplog):
    path = small_adult(adult_table.slice(0, 300).drop_columns(["occupation"]))
    assert train(tmp_path, path) == 2
    message = error_of(caplog)
    assert str(path) in message and "'occupation'" in message and "missing" in message
    assert not (tmp_path / "model").exists()


def test_a_wrong_type_stops_the_job_naming_file_and_column(small_adult, adult_table, tmp_path,
                                                           caplog):
    table = adult_table.slice(0, 300)
    table = table.set_column(0, "age", pc.cast(table.column("age"), pa.string()))
    path = small_adult(table)
    assert train(tmp_path, path) == 2
    message = error_of(caplog)
    assert str(path) in message and "'age'" in message and "string" in message


def test_the_second_file_is_checked_too(small_adult, adult_table, tmp_path, caplog):
    small_adult(name="a.parquet")
    bad = small_adult(adult_table.slice(0, 10).drop_columns(["race"]), name="b.parquet")
    assert train(tmp_path, tmp_path / "*.parquet") == 2
    assert str(bad) in error_of(caplog)


def test_an_empty_input_is_refused(small_adult, adult_table, tmp_path, caplog):
    path = small_adult(adult_table.slice(0, 0))
    assert train(tmp_path, path) == 2
    assert "holds no rows" in error_of(caplog)


def test_a_missing_input_path_is_refused(tmp_path, caplog):
    assert train(tmp_path, tmp_path / "nowhere" / "*.parquet") == 2
    assert "no input files match" in error_of(caplog)


def test_a_file_that_is_not_parquet_is_refused(tmp_path, caplog):
    path = tmp_path / "notes.parquet"
    path.write_text("just text")
    assert train(tmp_path, path) == 2
    assert str(path) in error_of(caplog) and "not a readable Parquet file" in error_of(caplog)


def test_a_model_dir_that_cannot_be_written_is_refused(small_adult, tmp_path, caplog):
    path = small_adult()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(["train", "--input", str(path), "--schema", SCHEMA,
                 "--model-dir", str(blocker / "model")])
    assert code == 2
    assert "cannot write the model directory" in error_of(caplog)


def test_an_existing_model_dir_is_not_clobbered(small_adult, tmp_path, caplog):
    path = small_adult()
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "keep.txt").write_text("precious")
    assert train(tmp_path, path) == 2
    assert "--overwrite" in error_of(caplog)
    assert (tmp_path / "model" / "keep.txt").read_text() == "precious"


def test_bad_model_options_are_refused(small_adult, tmp_path, caplog):
    assert train(tmp_path, small_adult(), "--validation-fraction", "1.5") == 2
    assert "validation fraction" in error_of(caplog)


def test_training_when_every_row_is_rejected_says_so(small_adult, adult_table, tmp_path,
                                                     caplog):
    table = adult_table.slice(0, 50)
    table = table.set_column(0, "age", pa.nulls(50, pa.int64()))
    assert train(tmp_path, small_adult(table), "--epochs", "1") == 2
    assert "every input row was rejected" in error_of(caplog)
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
def test_multi_processing_training_dead_letters_bad_rows(adult_table, tmp_path):
    """End to end through the CLI on DirectRunner's multi_processing mode (pickling, setup())."""
    table = adult_table.slice(0, 1200)
    ages = table.column("age").to_pylist()
    for row in (3, 500, 1100):
        ages[row] = None  # `age` is not nullable in the Adult schema
    table = table.set_column(0, "age", pa.array(ages, pa.int64()))
    pq.write_table(table, tmp_path / "part.parquet", row_group_size=400)
    model_dir = tmp_path / "model"
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.train", "--input", str(tmp_path / "part.parquet"),
         "--schema", SCHEMA, "--model-dir", str(model_dir), "--epochs", "2",
         "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
        capture_output=True, text=True, timeout=600,
        cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.returncode == 0, result.stderr[-4000:]
    assert "read 1,200, rejected 3" in result.stderr
    assert (model_dir / "manifest.json").exists()
    rejected = pq.read_table(glob.glob(str(tmp_path / "model-rejected*.parquet")))
    assert rejected.num_rows == 3
    assert set(rejected.column("reject_reason").to_pylist()) == {
        "age: null where the schema forbids nulls"}
    assert "Traceback" not in result.stderr
