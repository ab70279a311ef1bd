"""Encode's output directory reads as one table with the usual readers, dead letters or not.

Rejected rows go to a directory beside the output's (`out-rejected/`), never into it, and no
dead-letter file is written when no row was rejected. The oracle is pyarrow reading the shards
the job wrote, by name.
"""

import glob
import math
import os

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aepipe.errors import OutputError
from pipelines.encode import encode


def shards(directory) -> pa.Table:
    return pq.read_table(sorted(glob.glob(os.path.join(directory, "codes-0*-of-*.parquet"))))


@pytest.fixture(scope="module")
def with_rejected_rows(trained_model_dir, adult_files, tmp_path_factory):
    """Encode of 300 held-out rows, 2 of them bad: `root/features/codes-*` and the
    dead letters in `root/features-rejected/`."""
    root = tmp_path_factory.mktemp("readers")
    table = pq.read_table(adult_files["holdout"]).slice(0, 300)
    weights = table.column("fnlwgt").to_pylist()
    weights[3] = weights[10] = math.nan
    table = table.set_column(table.schema.get_field_index("fnlwgt"), "fnlwgt",
                             pa.array(weights, pa.float64()))
    pq.write_table(table, root / "in.parquet")
    counters = encode(input_pattern=str(root / "in.parquet"), model_dir=trained_model_dir,
                      output=str(root / "features" / "codes"))
    assert counters == {"rows_read": 300, "rows_rejected": 2, "rows_written": 298}
    return root


def test_dead_letters_are_written_outside_the_output_directory(with_rejected_rows):
    root = with_rejected_rows
    assert all(name.startswith("codes-0") for name in os.listdir(root / "features"))
    dead = pq.read_table(glob.glob(str(root / "features-rejected" / "codes-*.parquet")))
    assert dead.num_rows == 2 and "reject_reason" in dead.column_names


def test_no_dead_letter_file_when_nothing_was_rejected(trained_model_dir, adult_files,
                                                       tmp_path):
    counters = encode(input_pattern=adult_files["holdout"], model_dir=trained_model_dir,
                      output=str(tmp_path / "features" / "codes"),
                      rejected=str(tmp_path / "dead" / "codes"))
    assert counters["rows_rejected"] == 0
    assert sorted(os.listdir(tmp_path)) == ["features"]


@pytest.mark.parametrize("reader", ["pandas", "polars", "duckdb"])
def test_the_output_directory_reads_as_it_is(reader, with_rejected_rows):
    directory = str(with_rejected_rows / "features")
    expected = shards(directory).to_pandas()
    if reader == "pandas":
        got = pd.read_parquet(directory)
    elif reader == "polars":
        got = pl.read_parquet(os.path.join(directory, "*.parquet")).to_pandas()
    else:
        got = duckdb.sql(f"SELECT * FROM read_parquet('{directory}/*.parquet')").df()
    assert list(got.columns) == list(expected.columns)
    assert len(got) == 298 and got["ae_score"].notna().all()
    got = got.sort_values("id").reset_index(drop=True)
    expected = expected.sort_values("id").reset_index(drop=True)
    for name in ("id", "ae_0", "ae_7", "ae_score"):
        assert got[name].tolist() == expected[name].tolist(), name


def test_a_relative_prefix_in_the_working_directory(trained_model_dir, adult_files, tmp_path,
                                                    monkeypatch):
    """`--output codes`: Beam's local file system matches `codes-*` only as `./codes-*`."""
    monkeypatch.chdir(tmp_path)
    encode(input_pattern=adult_files["holdout"], model_dir=trained_model_dir, output="codes")
    written = sorted(os.listdir(tmp_path))
    assert written and all(name.startswith("codes-0") for name in written)
    with pytest.raises(OutputError, match="already holds"):
        encode(input_pattern=adult_files["holdout"], model_dir=trained_model_dir,
               output="codes")
