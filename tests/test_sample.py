"""The sample job and the Sample transform, on the model trained once per session."""

import glob
import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aepipe.cli import main
from aepipe.sample import BLOCK_ROWS
from pipelines.sample import sample

ROWS = 2 * BLOCK_ROWS + 1000  # three blocks, the last one partial


def read_sample(prefix) -> pa.Table:
    files = sorted(glob.glob(f"{prefix}-*-of-*.parquet"))
    assert files, f"no output at {prefix}"
    return pq.read_table(files).sort_by("id")


@pytest.fixture(scope="module")
def synthetic(trained_model_dir, tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("sample") / "synthetic")
    assert sample(model_dir=trained_model_dir, num_rows=ROWS, seed=11, output=prefix,
                  key_prefix="syn-") == ROWS
    return read_sample(prefix)


def test_schema_equals_the_training_input(synthetic, adult_files):
    assert synthetic.schema.equals(pq.read_schema(adult_files["train"]), check_metadata=False)
    assert synthetic.num_rows == ROWS


def test_values_stay_in_their_training_domains(synthetic, trained_model):
    manifest = trained_model.manifest
    for name, vocabulary in manifest["vocabularies"].items():
        assert set(synthetic.column(name).drop_null().to_pylist()) <= set(vocabulary), name
    for name in ("age", "fnlwgt", "hours_per_week"):
        values = synthetic.column(name).to_numpy()
        stats = manifest["statistics"][name]
        assert stats["min"] <= values.min() and values.max() <= stats["max"], name
    keys = synthetic.column("id").to_pylist()
    assert len(set(keys)) == ROWS and all(k.startswith("syn-") for k in keys)
    low, high = manifest["passthrough_ranges"]["event_ts"]
    times = synthetic.column("event_ts").cast(pa.int64()).to_numpy()
    assert low <= times.min() and times.max() <= high


def test_null_rates_follow_training(synthetic, adult_files):
    # Training has about 5.6% nulls in workclass and occupation and 1.8% in native_country.
    # With 17,384 rows the sampling error alone is under 0.2 points; the rest is how well the
    # decoder's null probability is calibrated: about 1 point below training here (4.8% vs 5.8%).
    # 2.5 points leaves room for that and still fails a sampler that drops or doubles nulls.
    real = pq.read_table(adult_files["train"])
    for name in ("workclass", "occupation", "native_country"):
        real_rate = real.column(name).null_count / real.num_rows
        synthetic_rate = synthetic.column(name).null_count / synthetic.num_rows
        assert synthetic_rate == pytest.approx(real_rate, abs=0.025), name
    for name in ("age", "education", "income"):
        assert synthetic.column(name).null_count == 0


def test_category_frequencies_are_close(synthetic, adult_files):
    real = pq.read_table(adult_files["train"])
    for name in ("sex", "income", "relationship"):
        real_freq = _frequencies(real.column(name))
        synthetic_freq = _frequencies(synthetic.column(name))
        total_variation = 0.5 * sum(abs(real_freq.get(k, 0) - synthetic_freq.get(k, 0))
                                    for k in set(real_freq) | set(synthetic_freq))
        assert total_variation < 0.15, (name, real_freq, synthetic_freq)


def _frequencies(column) -> dict:
    values, counts = np.unique(np.array(column.to_pylist(), dtype=object), return_counts=True)
    return dict(zip(values, counts / counts.sum()))


def test_same_seed_same_rows_whatever_the_shards(synthetic, trained_model_dir, tmp_path):
    sample(model_dir=trained_model_dir, num_rows=ROWS, seed=11, output=str(tmp_path / "s3"),
           shards=3, key_prefix="syn-")
    assert len(glob.glob(str(tmp_path / "s3-*"))) == 3
    assert read_sample(tmp_path / "s3").equals(synthetic)


def test_a_different_seed_gives_different_rows(synthetic, trained_model_dir, tmp_path):
    sample(model_dir=trained_model_dir, num_rows=ROWS, seed=12, output=str(tmp_path / "other"),
           key_prefix="syn-")
    other = read_sample(tmp_path / "other")
    assert other.schema.equals(synthetic.schema)
    assert not other.column("fnlwgt").equals(synthetic.column("fnlwgt"))


def test_multi_processing_gives_the_same_rows(synthetic, trained_model_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.sample", "--model-dir", trained_model_dir,
         "--num-rows", str(ROWS), "--seed", "11", "--key-prefix", "syn-",
         "--output", str(tmp_path / "mp"), "--direct_running_mode=multi_processing",
         "--direct_num_workers=2"],
        capture_output=True, text=True, timeout=600,
        cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.returncode == 0, result.stderr[-4000:]
    assert read_sample(tmp_path / "mp").equals(synthetic)


def test_zero_rows_writes_one_empty_typed_file(trained_model_dir, adult_files, tmp_path):
    assert main(["sample", "--model-dir", trained_model_dir, "--num-rows", "0", "--seed", "1",
                 "--output", str(tmp_path / "empty")]) == 0
    table = pq.read_table(glob.glob(str(tmp_path / "empty-*.parquet")))
    assert table.num_rows == 0
    assert table.schema.equals(pq.read_schema(adult_files["train"]), check_metadata=False)


def error_of(caplog) -> str:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    return errors[0]


def test_a_negative_row_count_is_refused(trained_model_dir, tmp_path, caplog):
    assert main(["sample", "--model-dir", trained_model_dir, "--num-rows", "-5", "--seed", "1",
                 "--output", str(tmp_path / "neg")]) == 2
    assert "--num-rows must not be negative" in error_of(caplog)
    assert not glob.glob(str(tmp_path / "neg*"))


def test_a_model_dir_from_another_version_is_refused(trained_model_dir, tmp_path, caplog):
    copy = tmp_path / "old-model"
    shutil.copytree(trained_model_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert main(["sample", "--model-dir", str(copy), "--num-rows", "5", "--seed", "1",
                 "--output", str(tmp_path / "out")]) == 2
    assert "format version 99" in error_of(caplog)


def test_a_missing_model_dir_is_refused(tmp_path, caplog):
    assert main(["sample", "--model-dir", str(tmp_path / "nothing"), "--num-rows", "5",
                 "--seed", "1", "--output", str(tmp_path / "out")]) == 2
    assert "does not exist" in error_of(caplog)


def test_sample_transform_in_a_test_pipeline(trained_model_dir):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from aepipe.sample import Sample

    with TestPipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        batches = p | Sample(trained_model_dir, num_rows=BLOCK_ROWS + 5, seed=3)
        sizes = batches | beam.Map(lambda b: b.num_rows)
        assert_that(sizes, equal_to([BLOCK_ROWS, 5]))


def test_the_distance_guard_drops_copies_and_keeps_distant_rows(trained_model, adult_files):
    from aepipe.privacy import DistanceGuard, model_space

    real = pq.read_table(adult_files["train"]).combine_chunks().to_batches()[0]
    guard = DistanceGuard(trained_model, model_space(trained_model, real.slice(0, 100)), 0.5)
    copies = real.slice(10, 5)
    assert not guard.keep(copies).any()
    np.testing.assert_allclose(guard.nearest_distances(copies), 0.0, atol=1e-6)
    others = real.slice(2000, 200)
    expected = np.array([np.sqrt(((model_space(trained_model, others.slice(i, 1))
                                   - model_space(trained_model, real.slice(0, 100))) ** 2)
                                 .sum(axis=1)).min() for i in range(others.num_rows)])
    np.testing.assert_allclose(guard.nearest_distances(others), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(guard.keep(others), expected >= 0.5)


def test_sampling_with_a_minimum_distance_reports_what_it_dropped(trained_model_dir, trained_model,
                                                                  adult_files, tmp_path, caplog):
    from aepipe.privacy import DistanceGuard

    caplog.set_level(logging.INFO)
    rows = 3000
    assert main(["sample", "--model-dir", trained_model_dir, "--num-rows", str(rows),
                 "--seed", "4", "--output", str(tmp_path / "guarded"),
                 "--min-distance", "1.0", "--reference", adult_files["train"]]) == 0
    kept = read_sample(tmp_path / "guarded")
    dropped = rows - kept.num_rows
    assert any(r.getMessage() == f"dropped {dropped} synthetic rows closer than 1 to a "
               "reference row" for r in caplog.records)
    assert 0 < dropped < rows
    guard = DistanceGuard.from_files(trained_model, adult_files["train"], 1.0)
    assert (guard.nearest_distances(kept.combine_chunks().to_batches()[0]) >= 1.0).all()


def test_a_minimum_distance_without_reference_is_refused(trained_model_dir, tmp_path, caplog):
    assert main(["sample", "--model-dir", trained_model_dir, "--num-rows", "5", "--seed", "1",
                 "--output", str(tmp_path / "x"), "--min-distance", "1"]) == 2
    assert "--reference" in error_of(caplog)
