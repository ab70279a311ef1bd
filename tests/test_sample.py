"""The sample job and the Sample transform, on the model trained once per session."""

import datetime
import glob
import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines.cli import main
from aepipe.store.reader import ModelDirectory
from aepipe.beam.sample import BLOCK_ROWS
from aepipe.options import SampleOptions
from pipelines.sample import sample

ROWS = 2 * BLOCK_ROWS + 1000  # three blocks, the last one partial


def read_sample(prefix) -> pa.Table:
    files = sorted(glob.glob(f"{prefix}-*-of-*.parquet"))
    assert files, f"no output at {prefix}"
    return pq.read_table(files).sort_by("id")


@pytest.fixture(scope="module")
def synthetic(trained_model_dir, tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("sample") / "synthetic")
    assert sample(model_dir=trained_model_dir,
                  options=SampleOptions(num_rows=ROWS, seed=11, key_prefix="syn-"),
                  output=prefix) == ROWS
    return read_sample(prefix)


def test_schema_equals_the_training_input(synthetic, adult_files):
    assert synthetic.schema.equals(pq.read_schema(adult_files["train"]), check_metadata=False)
    assert synthetic.num_rows == ROWS


def test_values_stay_in_their_training_domains(synthetic, trained_model):
    manifest = trained_model.manifest
    for name, vocabulary in manifest.vocabularies.items():
        assert set(synthetic.column(name).drop_null().to_pylist()) <= set(vocabulary), name
    for name in ("age", "fnlwgt", "hours_per_week"):
        values = synthetic.column(name).to_numpy()
        stats = manifest.statistics[name]
        assert stats["min"] <= values.min() and values.max() <= stats["max"], name
    keys = synthetic.column("id").to_pylist()
    assert len(set(keys)) == ROWS and all(k.startswith("syn-") for k in keys)
    low, high = manifest.passthrough_ranges["event_ts"]
    times = synthetic.column("event_ts").cast(pa.int64()).to_numpy()
    assert low <= times.min() and times.max() <= high


def test_numbers_of_few_values_take_training_values(synthetic, trained_model, adult_files):
    training = pq.read_table(adult_files["train"])
    grains = trained_model.manifest.value_grains
    with_levels = []
    for name in ("age", "education_num", "hours_per_week", "capital_gain", "fnlwgt"):
        counts = training.column(name).drop_null().to_pandas().value_counts()
        rare = counts[counts < 5].sum()
        common = len(counts) <= 100 and rare <= 0.001 * counts.sum()
        assert (grains[name]["levels"] is not None) == common, name
        if common:
            with_levels.append(name)
            assert set(synthetic.column(name).drop_null().to_pylist()) <= set(counts.index)
    assert with_levels  # the test data has such a column


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
    sample(model_dir=trained_model_dir,
           options=SampleOptions(num_rows=ROWS, seed=11, key_prefix="syn-"),
           output=str(tmp_path / "s3"), num_shards=3)
    assert len(glob.glob(str(tmp_path / "s3-*"))) == 3
    assert read_sample(tmp_path / "s3").equals(synthetic)


def test_a_different_seed_gives_different_rows(synthetic, trained_model_dir, tmp_path):
    sample(model_dir=trained_model_dir,
           options=SampleOptions(num_rows=ROWS, seed=12, key_prefix="syn-"),
           output=str(tmp_path / "other"))
    other = read_sample(tmp_path / "other")
    assert other.schema.equals(synthetic.schema)
    assert not other.column("fnlwgt").equals(synthetic.column("fnlwgt"))


@pytest.mark.slow
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
    # the workers' TensorFlow starts as quietly as the launcher's
    for noise in ("absl::InitializeLog", "oneDNN", "cudart_stub", "cuInit"):
        assert noise not in result.stderr, result.stderr[-4000:]


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

    from aepipe.beam.sample import Sample

    with TestPipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        batches = p | Sample(trained_model_dir, SampleOptions(num_rows=BLOCK_ROWS + 5, seed=3))
        sizes = batches | beam.Map(lambda b: b.num_rows)
        assert_that(sizes, equal_to([BLOCK_ROWS, 5]))


def test_the_distance_guard_drops_copies_and_keeps_distant_rows(trained_model, adult_files):
    from aepipe.evaluation.guard import DistanceGuard, model_space

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
    caplog.set_level(logging.INFO)
    rows = 3000
    assert main(["sample", "--model-dir", trained_model_dir, "--num-rows", str(rows),
                 "--seed", "4", "--output", str(tmp_path / "guarded"),
                 "--min-distance", "1.0", "--real", adult_files["train"]]) == 0
    kept = read_sample(tmp_path / "guarded")
    dropped = rows - kept.num_rows
    assert any(r.getMessage() == f"dropped {dropped} synthetic rows closer than 1 to a "
               "training row" for r in caplog.records)
    assert 0 < dropped < rows
    # The oracle: the same rows without the guard, and each one's nearest training row by brute
    # force over the transform signature's outputs (not by aepipe.evaluation.guard).
    assert main(["sample", "--model-dir", trained_model_dir, "--num-rows", str(rows),
                 "--seed", "4", "--output", str(tmp_path / "unguarded")]) == 0
    everything = read_sample(tmp_path / "unguarded")
    nearest = _nearest_distances(_input_space(trained_model, everything),
                                 _input_space(trained_model, pq.read_table(adult_files["train"])))
    kept_keys = set(kept.column("id").to_pylist())
    is_kept = np.array([key in kept_keys for key in everything.column("id").to_pylist()])
    assert kept.equals(everything.filter(pa.array(is_kept)))
    clear = np.abs(nearest - 1.0) > 1e-6  # closer calls may go either way in float arithmetic
    np.testing.assert_array_equal(is_kept[clear], nearest[clear] >= 1.0)
    assert (nearest[is_kept] >= 1.0 - 1e-6).all()


def _input_space(model, table: pa.Table) -> np.ndarray:
    """Rows as the encoder reads them: the `transform` signature's output."""
    signature = model.saved_model.signatures["transform"]
    parts = [signature(**model.inputs(batch))["features"].numpy()
             for batch in table.to_batches(max_chunksize=4096)]
    return np.concatenate(parts).astype(np.float64)


def _nearest_distances(rows: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each row's Euclidean distance to its nearest reference row, by brute force."""
    nearest = np.empty(len(rows))
    for start in range(0, len(rows), 16):
        differences = rows[start:start + 16, None, :] - reference[None, :, :]
        nearest[start:start + 16] = np.sqrt((differences ** 2).sum(axis=2)).min(axis=1)
    return nearest


def test_a_minimum_distance_without_reference_is_refused(trained_model_dir, tmp_path, caplog):
    assert main(["sample", "--model-dir", trained_model_dir, "--num-rows", "5", "--seed", "1",
                 "--output", str(tmp_path / "x"), "--min-distance", "1"]) == 2
    assert "--real" in error_of(caplog)


# Training keys that naive fresh keys would repeat: integers 0..N-1 (shuffled), and strings
# "0", "1", … and "syn-0", "syn-1", … (what index keys with no prefix or "syn-" would be).
KEYED_ROWS = 600


@pytest.fixture(scope="module")
def keyed_training(tmp_path_factory) -> tuple[str, pa.Table]:
    from aepipe.options import ModelOptions
    from aepipe.table.schema import Column, Kind, Schema
    from tests.helpers import train_sample_model

    rng = np.random.default_rng(5)
    half = KEYED_ROWS // 2
    table = pa.table({
        "cust": pa.array(rng.permutation(KEYED_ROWS), pa.int64()),
        "sid": pa.array([str(i) for i in range(half)] + [f"syn-{i}" for i in range(half)]),
        "day": pa.array(rng.integers(19_000, 19_400, KEYED_ROWS).astype(np.int32)
                        ).cast(pa.date32()),
        "x": pa.array(rng.normal(size=KEYED_ROWS)),
        "c": pa.array(rng.choice(["a", "b", "c"], KEYED_ROWS)),
    })
    root = tmp_path_factory.mktemp("keyed")
    pq.write_table(table, root / "train.parquet")
    schema = Schema((Column("cust", Kind.KEY, False), Column("sid", Kind.KEY, False),
                     Column("day", Kind.TIMESTAMP), Column("x", Kind.NUMERIC),
                     Column("c", Kind.CATEGORICAL)))
    # a plain autoencoder on standardised numbers: the options whose samples once left the
    # training range
    options = ModelOptions(model="ae", numeric="standard", seed=1, epochs=2, hidden=(8,),
                           code_size=2)
    model_dir = train_sample_model(str(root / "train.parquet"), schema, str(root / "model"),
                                   options)
    return model_dir, table


def test_the_manifest_records_key_and_timestamp_ranges(keyed_training):
    model_dir, table = keyed_training
    recorded = ModelDirectory(model_dir).manifest.passthrough_ranges
    days = [(d - datetime.date(1970, 1, 1)).days for d in table.column("day").to_pylist()]
    assert recorded == {"cust": [0, KEYED_ROWS - 1],
                        "sid": [min(map(len, table.column("sid").to_pylist())),
                                max(map(len, table.column("sid").to_pylist()))],
                        "day": [min(days), max(days)]}


def test_sampled_numbers_stay_within_the_exact_training_range(keyed_training, tmp_path):
    model_dir, table = keyed_training
    x = table.column("x").to_numpy()
    assert ModelDirectory(model_dir).manifest.value_ranges == {"x": [x.min(), x.max()]}
    assert sample(model_dir=model_dir, options=SampleOptions(num_rows=20_000, seed=3),
                  output=str(tmp_path / "s")) == 20_000
    sampled = pq.read_table(sorted(glob.glob(str(tmp_path / "s-*.parquet")))).column("x")
    assert x.min() <= pc.min(sampled).as_py() and pc.max(sampled).as_py() <= x.max()


@pytest.mark.parametrize("prefix", [None, "", "syn-"])
def test_fresh_keys_never_equal_a_training_key(keyed_training, tmp_path, prefix):
    model_dir, table = keyed_training
    rows = 2 * KEYED_ROWS + 7
    options = {} if prefix is None else {"key_prefix": prefix}
    assert sample(model_dir=model_dir, options=SampleOptions(num_rows=rows, seed=2, **options),
                  output=str(tmp_path / "s")) == rows
    synthetic = pq.read_table(sorted(glob.glob(str(tmp_path / "s-*.parquet"))))
    assert synthetic.schema.equals(table.schema, check_metadata=False)  # dates stay dates
    for name in ("cust", "sid"):
        keys = synthetic.column(name).to_pylist()
        assert None not in keys and len(set(keys)) == rows, name
        assert not set(keys) & set(table.column(name).to_pylist()), name
    expected_prefix = "syn-" if prefix is None else prefix
    assert all(k.startswith(expected_prefix) for k in synthetic.column("sid").to_pylist())


def test_fresh_integer_keys_past_the_type_maximum_are_refused(keyed_training):
    from aepipe.errors import OptionsError
    from aepipe.beam.sample import BlockSampler

    model = ModelDirectory(keyed_training[0])
    model.manifest.passthrough_ranges["cust"] = [0, 2**63 - 11]
    BlockSampler(model, SampleOptions(num_rows=10, seed=1))  # 2**63 - 10 … 2**63 - 1 fit
    with pytest.raises(OptionsError, match="'cust'"):
        BlockSampler(model, SampleOptions(num_rows=11, seed=1))


def test_a_model_trained_before_key_ranges_were_recorded_is_refused(keyed_training):
    from aepipe.errors import ModelDirError
    from aepipe.beam.sample import BlockSampler

    model = ModelDirectory(keyed_training[0])
    del model.manifest.passthrough_ranges["sid"]
    with pytest.raises(ModelDirError, match="'sid'.*retrain"):
        BlockSampler(model, SampleOptions(num_rows=10, seed=1))
