"""Every bad input to `aepipe encode` ends one of two ways: refused without writing output, with
a message naming the file (and the column), or completed with read = written + rejected.

All are refused before the pipeline starts but a corrupt data page, which shows only when read:
that job fails, removes its temporary files and names the file and row group."""

import glob
import os
import logging

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines.cli import main

ROWS = 120


def _rows(files):
    return pq.read_table(files["holdout"]).slice(0, ROWS)


def _write(table, path, **kwargs):
    pq.write_table(table, path, **kwargs)
    return path


def truncated(files, d):
    path = _write(_rows(files), d / "t.parquet")
    path.write_bytes(path.read_bytes()[:-100])
    return path


def corrupt_pages(files, d):
    path = _write(_rows(files), d / "c.parquet")
    data = bytearray(path.read_bytes())
    data[len(data) // 10:len(data) // 2] = b"\xab" * (len(data) // 2 - len(data) // 10)
    path.write_bytes(bytes(data))
    with pytest.raises(Exception):
        pq.read_table(path)  # the footer is intact; the data pages are not
    return path


def not_parquet(files, d):
    (d / "n.parquet").write_text("id,age\n1,2\n")
    return d / "n.parquet"


def empty_file(files, d):
    (d / "e.parquet").write_bytes(b"")
    return d / "e.parquet"


def empty_directory(files, d):
    (d / "empty").mkdir()
    return d / "empty"


def missing_column(files, d):
    return _write(_rows(files).drop_columns(["occupation"]), d / "m.parquet")


def wrong_type(files, d):
    table = _rows(files)
    i = table.schema.get_field_index("hours_per_week")
    return _write(table.set_column(i, "hours_per_week",
                                   pc.cast(table.column(i), pa.string())), d / "w.parquet")


def integer_as_float(files, d):
    table = _rows(files)
    i = table.schema.get_field_index("age")
    return _write(table.set_column(i, "age", pc.cast(table.column(i), pa.float64())),
                  d / "f.parquet")


def fractional_integers(files, d):
    """An integer column stored as floats, three of whose values have a fraction."""
    table = _rows(files)
    i = table.schema.get_field_index("age")
    ages = pc.cast(table.column(i), pa.float64()).to_numpy().copy()
    ages[[1, 5, 9]] += 0.5
    return _write(table.set_column(i, "age", pa.array(ages)), d / "g.parquet")


def extra_column(files, d):
    table = _rows(files)
    return _write(table.append_column("comment", pa.array(["x"] * ROWS)), d / "x.parquet")


def huge_category(files, d):
    table = _rows(files)
    i = table.schema.get_field_index("occupation")
    values = table.column(i).to_pylist()
    values[0] = "y" * 1_000_000
    return _write(table.set_column(i, "occupation", pa.array(values)), d / "h.parquet")


def zero_row_group(files, d):
    table = _rows(files)
    with pq.ParquetWriter(d / "z.parquet", table.schema) as writer:
        writer.write_table(table.slice(0, 0))
        writer.write_table(table)
    assert pq.ParquetFile(d / "z.parquet").metadata.row_group(0).num_rows == 0
    return d / "z.parquet"


def bad_values(files, d):
    table = _rows(files)
    weights = table.column("fnlwgt").to_pylist()
    weights[0], weights[1] = float("nan"), float("-inf")
    ages = table.column("age").to_pylist()
    ages[2] = None
    table = table.set_column(table.schema.get_field_index("fnlwgt"), "fnlwgt",
                             pa.array(weights, pa.float64()))
    return _write(table.set_column(table.schema.get_field_index("age"), "age",
                                   pa.array(ages, pa.int64())), d / "b.parquet")


REFUSED = [
    (truncated, "not a readable Parquet file"),
    (corrupt_pages, "row group 0 cannot be read"),
    (not_parquet, "not a readable Parquet file"),
    (empty_file, "not a readable Parquet file"),
    (empty_directory, "no input files match"),
    (missing_column, "'occupation' (categorical) is missing"),
    (wrong_type, "'hours_per_week' has type string"),
]
COMPLETED = [  # (case, rows written, rows rejected)
    (integer_as_float, ROWS, 0),  # whole numbers stored as floats: an integer column
    (fractional_integers, ROWS - 3, 3),
    (extra_column, ROWS, 0),
    (huge_category, ROWS, 0),
    (zero_row_group, ROWS, 0),
    (bad_values, ROWS - 3, 3),
]


def _encode(model_dir, path, out):
    return main(["encode", "--input", str(path), "--model-dir", model_dir, "--output", str(out)])


@pytest.mark.parametrize("case, message", REFUSED, ids=[c.__name__ for c, _ in REFUSED])
def test_refused_before_writing(case, message, trained_model_dir, adult_files, tmp_path, caplog):
    path = case(adult_files, tmp_path)
    assert _encode(trained_model_dir, path, tmp_path / "out") == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and message in errors[0], errors
    if case is not empty_directory:
        assert str(path) in errors[0]
    assert not glob.glob(str(tmp_path / "out*")) and not glob.glob(str(tmp_path / "beam-temp*"))


@pytest.mark.parametrize("case, written, rejected", COMPLETED,
                         ids=[c.__name__ for c, _, _ in COMPLETED])
def test_completed_with_balanced_counts(case, written, rejected, trained_model_dir, adult_files,
                                        tmp_path, caplog):
    caplog.set_level(logging.INFO)
    path = case(adult_files, tmp_path)
    assert _encode(trained_model_dir, path, tmp_path / "codes" / "out") == 0
    counts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rows:")]
    assert counts == [f"rows: read {ROWS:,}, rejected {rejected:,}, written {written:,}"]
    out = pq.read_table(glob.glob(str(tmp_path / "codes" / "out-0*.parquet")))
    dead = glob.glob(str(tmp_path / "codes-rejected" / "out-*.parquet"))
    assert os.listdir(tmp_path / "codes") == [os.path.basename(p) for p in
                                              glob.glob(str(tmp_path / "codes" / "out-0*"))]
    assert (out.num_rows, pq.read_table(dead).num_rows if dead else 0) == (written, rejected)
    assert bool(dead) == bool(rejected), "a dead-letter file exactly when rows were rejected"
    if case is extra_column:
        assert any("ignoring column(s) not in the schema: comment" in r.getMessage()
                   for r in caplog.records)
