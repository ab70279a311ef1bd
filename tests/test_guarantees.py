"""Outputs are never half-written or clobbered, and models are verified before they are used."""

import pytest
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq

from aepipe import datasets
from pipelines.cli import main
from tests.helpers import ROOT, kill_training_at_first_validation


def test_the_manifest_lists_a_digest_of_every_file(trained_model_dir):
    manifest = json.loads(open(os.path.join(trained_model_dir, "manifest.json")).read())
    on_disk = sorted(os.path.relpath(os.path.join(d, f), trained_model_dir)
                     for d, _, files in os.walk(trained_model_dir) for f in files)
    assert sorted(manifest["files"]) == [p for p in on_disk if p != "manifest.json"]
    assert all(len(digest) == 64 for digest in manifest["files"].values())


def test_a_changed_model_file_is_refused_unless_no_verify(trained_model_dir, adult_files,
                                                          tmp_path, caplog):
    copy = tmp_path / "model"
    shutil.copytree(trained_model_dir, copy)
    with open(copy / "transform_fn" / "transformed_metadata" / "schema.pbtxt", "a") as f:
        f.write("# tampered\n")
    args = ["encode", "--input", adult_files["holdout"], "--model-dir", str(copy)]
    assert main([*args, "--output", str(tmp_path / "a")]) == 2
    message = caplog.records[-1].getMessage()
    assert "does not match its manifest" in message
    assert "transform_fn/transformed_metadata/schema.pbtxt changed" in message
    assert not glob.glob(str(tmp_path / "a-*"))
    assert main([*args, "--output", str(tmp_path / "b"), "--no-verify"]) == 0
    assert pq.read_table(glob.glob(str(tmp_path / "b-0*.parquet"))).num_rows == 1000


@pytest.mark.slow
def test_a_training_run_killed_midway_leaves_no_model_and_a_rerun_succeeds(adult_files,
                                                                            tmp_path):
    model_dir = tmp_path / "model"
    args = ["--input", adult_files["train"], "--schema", str(tmp_path / "schema.yaml"),
            "--model-dir", str(model_dir)]
    _write_sample_schema(tmp_path / "schema.yaml", adult_files["train"])
    kill_training_at_first_validation(*args)
    assert not model_dir.exists(), "a killed run published a model directory"
    rerun = subprocess.run([sys.executable, "-m", "pipelines.train", *args, "--epochs", "2"],
                           capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (model_dir / "manifest.json").exists()


@pytest.mark.slow
def test_a_killed_retraining_leaves_the_previous_model_intact(trained_model_dir, adult_files,
                                                             tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(trained_model_dir, model_dir)
    before = (model_dir / "manifest.json").read_text()
    _write_sample_schema(tmp_path / "schema.yaml", adult_files["train"])
    kill_training_at_first_validation("--input", adult_files["train"], "--schema",
                                 str(tmp_path / "schema.yaml"), "--model-dir", str(model_dir),
                                 "--overwrite")
    assert (model_dir / "manifest.json").read_text() == before
    assert main(["sample", "--model-dir", str(model_dir), "--num-rows", "10", "--seed", "1",
                 "--output", str(tmp_path / "s")]) == 0


def _write_sample_schema(path, parquet_path):
    """The schema of the session's sample files (Adult's, with a key and a timestamp)."""
    from aepipe.table.inference import infer_from_files

    schema = infer_from_files(parquet_path)
    assert schema["id"].kind.value == "key"
    path.write_text(schema.to_yaml())


def test_the_shipped_schema_is_the_one_in_schemas():
    assert os.path.realpath(os.path.join(ROOT, "schemas", "adult.yaml")) == os.path.realpath(
        datasets.adult_schema())


@pytest.mark.slow
def test_retraining_in_multi_processing_mode_gives_the_same_model(
        trained_model_dir, adult_files, sample_schema, tmp_path):
    """The session's model was trained in memory; the same data, options and seed in
    DirectRunner's multi_processing mode with 2 workers give the same model."""
    from aepipe.store.reader import ModelDirectory

    sample_schema.save(str(tmp_path / "schema.yaml"))
    again = tmp_path / "again"
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.train", "--input", adult_files["train"], "--schema",
         str(tmp_path / "schema.yaml"), "--model-dir", str(again), "--seed", "1",
         "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
        capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = (json.loads(open(os.path.join(d, "manifest.json")).read())
                     for d in (trained_model_dir, again))
    for key in ("statistics", "vocabularies", "rows", "loss_scales", "score_percentiles",
                "prior"):
        assert first[key] == second[key], key
    assert first["training"]["history"] == second["training"]["history"]
    batch = pq.read_table(adult_files["holdout"]).combine_chunks().to_batches()[0]
    first_code, first_score = ModelDirectory(trained_model_dir).encode(batch)
    second_code, second_score = ModelDirectory(str(again)).encode(batch)
    np.testing.assert_array_equal(first_code, second_code)
    np.testing.assert_array_equal(first_score, second_score)


def test_encoding_twice_gives_identical_output(trained_model_dir, adult_files, tmp_path):
    for name in ("one", "two"):
        assert main(["encode", "--input", adult_files["holdout"], "--model-dir",
                     trained_model_dir, "--output", str(tmp_path / name)]) == 0
    one, two = (pq.read_table(sorted(glob.glob(str(tmp_path / f"{n}-0*.parquet"))))
                for n in ("one", "two"))
    assert one.sort_by("id").equals(two.sort_by("id"))
