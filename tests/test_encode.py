"""The encode job and the Encode transform, on the model trained once per session."""

import datetime
import glob
import json
import logging
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.cli import main
from aepipe.beam.encode import Encode, EncodeOptions
from aepipe.beam.validate import check_inputs
from pipelines.encode import encode

CODE_COLUMNS = [f"ae_{i}" for i in range(8)]


def read_output(prefix) -> pa.Table:
    return pq.read_table(sorted(glob.glob(f"{prefix}-[0-9]*-of-*.parquet")))


@pytest.fixture(scope="module")
def encoded(trained_model_dir, adult_files, tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("encoded") / "codes")
    counters = encode(input_pattern=adult_files["holdout"], model_dir=trained_model_dir,
                      output=prefix)
    return prefix, counters


def test_output_contract_columns_types_and_rows(encoded, adult_files):
    prefix, counters = encoded
    table = read_output(prefix)
    source = pq.read_table(adult_files["holdout"])
    assert table.column_names == ["id", "event_ts", *CODE_COLUMNS, "ae_score"]
    assert table.schema.field("event_ts").type == source.schema.field("event_ts").type
    assert all(table.schema.field(c).type == pa.float32() for c in CODE_COLUMNS + ["ae_score"])
    assert table.num_rows == source.num_rows
    assert sorted(table.column("id").to_pylist()) == sorted(source.column("id").to_pylist())
    assert len(set(table.column("id").to_pylist())) == table.num_rows  # each row exactly once
    times = dict(zip(source.column("id").to_pylist(), source.column("event_ts").to_pylist()))
    assert all(times[i] == t for i, t in zip(table.column("id").to_pylist(),
                                             table.column("event_ts").to_pylist()))
    assert counters["rows_read"] == counters["rows_written"] == source.num_rows
    assert counters["rows_rejected"] == 0


def test_codes_equal_calling_the_saved_model_directly(encoded, trained_model, adult_files):
    prefix, _ = encoded
    table = read_output(prefix)
    source = pq.read_table(adult_files["holdout"]).combine_chunks().to_batches()[0]
    code, score = trained_model.encode(source)
    by_id = {key: row for row, key in enumerate(source.column("id").to_pylist())}
    order = [by_id[key] for key in table.column("id").to_pylist()]
    encoded_codes = np.stack([table.column(c).to_numpy() for c in CODE_COLUMNS], axis=1)
    np.testing.assert_allclose(encoded_codes, code[order], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(table.column("ae_score").to_numpy(), score[order], rtol=1e-5)


def test_encode_transform_in_a_test_pipeline(trained_model_dir, adult_files, sample_schema):
    import apache_beam as beam

    summary = check_inputs(adult_files["holdout"], sample_schema)
    batch = pq.read_table(adult_files["holdout"]).slice(0, 10).combine_chunks().to_batches()[0]
    options = EncodeOptions(code_as_list=True, flag_above=99, passthrough=("age",))
    with TestPipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        out = (p | beam.Create([batch])
               | Encode(trained_model_dir, summary.arrow_schema, options=options))
        shape = out | beam.Map(lambda b: (b.schema.names, b.num_rows,
                                          str(b.schema.field("ae_code").type)))
        assert_that(shape, equal_to([(["id", "event_ts", "age", "ae_code", "ae_score",
                                       "ae_anomaly"], 10, "fixed_size_list<item: float>[8]")]))


def test_bad_rows_go_to_the_dead_letter_output_and_counts_balance(trained_model_dir,
                                                                 adult_files, tmp_path):
    table = pq.read_table(adult_files["holdout"]).slice(0, 200)
    weights = table.column("fnlwgt").to_pylist()
    ages = table.column("age").to_pylist()
    weights[5], weights[6], ages[7] = math.nan, math.inf, None
    table = table.set_column(table.schema.get_field_index("fnlwgt"), "fnlwgt",
                             pa.array(weights, pa.float64()))
    table = table.set_column(table.schema.get_field_index("age"), "age",
                             pa.array(ages, pa.int64()))
    pq.write_table(table, tmp_path / "in.parquet")
    counters = encode(input_pattern=str(tmp_path / "in.parquet"), model_dir=trained_model_dir,
                      output=str(tmp_path / "codes" / "out"))
    assert counters == {"rows_read": 200, "rows_rejected": 3, "rows_written": 197}
    rejected = pq.read_table(glob.glob(str(tmp_path / "codes-rejected" / "out-*.parquet")))
    assert rejected.column_names[:3] == ["id", "event_ts", "age"]
    assert dict(zip(rejected.column("id").to_pylist(),
                    rejected.column("reject_reason").to_pylist())) == {
        table.column("id")[5].as_py(): "fnlwgt: nan is not finite",
        table.column("id")[6].as_py(): "fnlwgt: inf is not finite",
        table.column("id")[7].as_py(): "age: null where the schema forbids nulls"}
    assert read_output(tmp_path / "codes" / "out").num_rows == 197


def test_unseen_categories_are_encoded_not_rejected(trained_model_dir, adult_files, tmp_path):
    table = pq.read_table(adult_files["holdout"]).slice(0, 50)
    index = table.schema.get_field_index("workclass")
    table = table.set_column(index, "workclass", pa.array(["Martian"] * 50))
    pq.write_table(table, tmp_path / "in.parquet")
    counters = encode(input_pattern=str(tmp_path / "in.parquet"), model_dir=trained_model_dir,
                      output=str(tmp_path / "out"))
    assert counters["rows_written"] == 50 and counters["rows_rejected"] == 0
    assert np.isfinite(read_output(tmp_path / "out").column("ae_score").to_numpy()).all()


def test_a_file_that_does_not_match_the_model_is_refused(trained_model_dir, adult_files,
                                                         tmp_path, caplog):
    table = pq.read_table(adult_files["holdout"]).drop_columns(["race"])
    pq.write_table(table, tmp_path / "other.parquet")
    code = main(["encode", "--input", str(tmp_path / "other.parquet"), "--model-dir",
                 trained_model_dir, "--output", str(tmp_path / "out")])
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "'race'" in errors[0] and "other.parquet" in errors[0]
    assert not glob.glob(str(tmp_path / "out*"))


def test_a_missing_or_incomplete_model_dir_is_refused(adult_files, tmp_path, caplog):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "saved_model").mkdir()
    for model_dir, message in ((tmp_path / "none", "does not exist"),
                               (tmp_path / "half", "incomplete")):
        caplog.clear()
        code = main(["encode", "--input", adult_files["holdout"], "--model-dir",
                     str(model_dir), "--output", str(tmp_path / "out")])
        assert code == 2
        assert message in caplog.records[-1].getMessage()


def test_existing_output_is_refused_without_overwrite(encoded, trained_model_dir, adult_files,
                                                      caplog):
    prefix, _ = encoded
    code = main(["encode", "--input", adult_files["holdout"], "--model-dir", trained_model_dir,
                 "--output", prefix])
    assert code == 2 and "--overwrite" in caplog.records[-1].getMessage()


def test_flag_above_needs_a_recorded_percentile_range(trained_model_dir, adult_files, tmp_path,
                                                      caplog):
    code = main(["encode", "--input", adult_files["holdout"], "--model-dir", trained_model_dir,
                 "--output", str(tmp_path / "out"), "--flag-above", "10"])
    assert code == 2 and "--flag-above" in caplog.records[-1].getMessage()


@pytest.mark.slow
def test_multi_processing_encode(trained_model_dir, adult_files, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.encode", "--input", adult_files["holdout"],
         "--model-dir", trained_model_dir, "--output", str(tmp_path / "out"),
         "--flag-above", "99", "--direct_running_mode=multi_processing",
         "--direct_num_workers=2"],
        capture_output=True, text=True, timeout=600,
        cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.returncode == 0, result.stderr[-4000:]
    table = read_output(tmp_path / "out")
    assert table.num_rows == 1000
    flagged = table.column("ae_anomaly").to_numpy(zero_copy_only=False).mean()
    assert 0.0 <= flagged < 0.05  # about 1% of training rows score above the 99th percentile


def _model_with_ignored_label(trained_model_dir, directory) -> str:
    """A copy of the session model whose schema also lists `label` as kind ignore (never
    modelled, so the SavedModel is the same; the manifest is not among the checked files)."""
    shutil.copytree(trained_model_dir, directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["schema"]["columns"].append({"name": "label", "kind": "ignore", "nullable": False})
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return str(directory)


def test_passthrough_copies_ignored_and_unlisted_input_columns(trained_model_dir, adult_files,
                                                                tmp_path):
    source = pq.read_table(adult_files["holdout"]).slice(0, 300)
    source = (source.append_column("label", pa.array([None if i % 11 == 0 else f"L{i % 7}"
                                                      for i in range(300)]))
              .append_column("note", pa.array(np.arange(300) * 0.25)))  # in no schema
    pq.write_table(source, tmp_path / "in.parquet")
    model_dir = _model_with_ignored_label(trained_model_dir, tmp_path / "model")
    assert main(["encode", "--input", str(tmp_path / "in.parquet"), "--model-dir", model_dir,
                 "--output", str(tmp_path / "out"), "--passthrough", "label,note,age"]) == 0
    table = read_output(tmp_path / "out")
    assert table.column_names[:5] == ["id", "event_ts", "label", "note", "age"]
    assert table.num_rows == 300  # a null in an ignored column rejects nothing
    kept = ["id", "label", "note", "age"]
    assert table.select(kept).sort_by("id").equals(source.select(kept).sort_by("id"))


def test_passthrough_of_a_column_the_input_lacks_is_refused(trained_model_dir, adult_files,
                                                            tmp_path, caplog):
    code = main(["encode", "--input", adult_files["holdout"], "--model-dir", trained_model_dir,
                 "--output", str(tmp_path / "out"), "--passthrough", "nosuch"])
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "'nosuch'" in errors[0] and "holdout.parquet" in errors[0]
    assert not glob.glob(str(tmp_path / "out*"))


@pytest.mark.parametrize("date_type", [pa.date32(), pa.date64()])
def test_date_timestamps_are_written_as_utc_microsecond_timestamps(trained_model_dir,
                                                                   adult_files, tmp_path,
                                                                   date_type):
    source = pq.read_table(adult_files["holdout"]).slice(0, 100)
    days = [None if i % 9 == 0 else datetime.date(2020, 1, 1) + datetime.timedelta(days=37 * i)
            for i in range(100)]
    source = source.set_column(source.schema.get_field_index("event_ts"), "event_ts",
                               pa.array(days, date_type))
    pq.write_table(source, tmp_path / "in.parquet")
    encode(input_pattern=str(tmp_path / "in.parquet"), model_dir=trained_model_dir,
           output=str(tmp_path / "out"))
    table = read_output(tmp_path / "out")
    assert table.schema.field("event_ts").type == pa.timestamp("us", tz="UTC")
    midnight = {key: None if day is None else datetime.datetime.combine(
        day, datetime.time(), tzinfo=datetime.timezone.utc)
        for key, day in zip(source.column("id").to_pylist(), days)}
    assert {key: time for key, time in zip(table.column("id").to_pylist(),
                                           table.column("event_ts").to_pylist())} == midnight


def test_explain_shares_ae_score_and_blames_a_corrupted_column(
        trained_model_dir, trained_model, adult_files, tmp_path):
    """Rows whose education is another row's: that column takes the largest share of
    ae_score for most of the rows it changed; every row's shares sum to 1."""
    from aepipe.options import EncodeOptions

    table = pq.read_table(adult_files["holdout"]).slice(0, 300)
    education = table.schema.get_field_index("education")
    values = table.column("education").to_numpy(zero_copy_only=False)
    changed = np.roll(values, 7)
    table = table.set_column(education, "education", pa.array(changed))
    pq.write_table(table, tmp_path / "odd.parquet")
    encode(input_pattern=str(tmp_path / "odd.parquet"), model_dir=trained_model_dir,
           output=str(tmp_path / "codes"), options=EncodeOptions(explain=True))
    codes = pq.read_table(glob.glob(str(tmp_path / "codes-*.parquet"))).to_pandas()
    shares = codes[[c for c in codes.columns if c.startswith("ae_share_")]]
    assert len(shares.columns) == len(trained_model.manifest.column_errors) == 15
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-5)
    blamed = shares.idxmax(axis=1)[values != changed]
    assert (blamed == "ae_share_education").mean() > 0.5


def test_the_encoder_model_gives_the_codes_and_fine_tunes(trained_model_dir, trained_model,
                                                          adult_files):
    """The Keras encoder computes the `encode` signature's codes from the same raw columns,
    and a head fitted on it moves the encoder's own weights."""
    import keras

    from aepipe import encoder_model

    batch = pq.read_table(adult_files["holdout"]).to_batches(max_chunksize=256)[0]
    inputs = trained_model.inputs(batch)
    encoder = encoder_model(trained_model_dir)
    expected, _ = trained_model.encode(batch)
    np.testing.assert_allclose(encoder(inputs), expected, rtol=1e-5, atol=1e-5)
    head = keras.layers.Dense(1, activation="sigmoid")(encoder.output)
    classifier = keras.Model(encoder.input, head)
    classifier.compile(keras.optimizers.Adam(0.01), "binary_crossentropy")
    labels = np.asarray(batch.column("income").to_pylist()) == ">50K"
    before = [keras.ops.convert_to_numpy(w) for w in encoder.trainable_weights]
    classifier.fit(inputs, labels.astype(np.float32), epochs=2, batch_size=64, verbose=0)
    assert any(not np.allclose(b, keras.ops.convert_to_numpy(a)) for b, a in zip(before,
                                                                 encoder.trainable_weights))
    assert not encoder_model(trained_model_dir, trainable=False).trainable_weights
