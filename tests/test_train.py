"""The model directory contract, checked on the model trained once per session."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest

from aepipe.store.manifest import FORMAT_VERSION
from aepipe.evaluation.reconstruction import reconstruction_quality

# Measured on this sample (4,000 training rows, default options: the VAE, seed 1): integer RMSE
# about 0.5 standardised units, other numbers about 0.25, categorical accuracy about 0.8 on the
# held-out rows (the plain autoencoder reconstructs better: tests/test_models.py). The bounds
# leave room for run-to-run noise but fail a model that learned nothing: predicting the mean
# gives RMSE 1.0, and the most frequent category gives an accuracy of about 0.6 on Adult.
MAX_NUMERIC_RMSE = 0.65
MIN_CATEGORICAL_ACCURACY = 0.75


def test_model_directory_layout(trained_model_dir):
    assert sorted(os.listdir(trained_model_dir)) == ["manifest.json", "saved_model",
                                                     "transform_fn"]
    siblings = os.listdir(os.path.dirname(trained_model_dir))
    assert not [s for s in siblings if "staging" in s], "the staging directory was left behind"


def test_manifest_records_what_later_jobs_need(trained_model, sample_schema):
    manifest = trained_model.manifest
    assert manifest.format_version == FORMAT_VERSION and manifest.aepipe_version
    assert manifest.schema == sample_schema
    assert manifest.rows["train"] + manifest.rows["validation"] == 4000
    assert 0 < manifest.rows["validation"] < 800
    run = manifest.training
    assert len(run.history["loss"]) == len(run.history["val_loss"]) >= 2
    assert run.validation_loss == min(run.history["val_loss"])
    assert run.steps == len(run.history["loss"]) * run.steps_per_period >= run.best_step
    assert manifest.options.code_size == 8
    assert set(manifest.vocabularies["sex"]) == {"Male", "Female"}
    assert manifest.input_arrow_schema.names == list(sample_schema.names)
    percentiles = list(manifest.score_percentiles.values())
    assert percentiles == sorted(percentiles) and percentiles[0] > 0


def test_statistics_are_those_of_the_training_rows(trained_model, adult_files):
    manifest = trained_model.manifest
    rows = pq.read_table(adult_files["train"])
    age = rows.column("age").to_numpy().astype(np.float64)
    stats = manifest.statistics["age"]
    # TFT analyses the training split only, so the figures are close to, not equal to, all rows.
    assert stats["mean"] == pytest.approx(age.mean(), rel=0.02)
    assert stats["std"] == pytest.approx(age.std(), rel=0.05)
    assert age.min() <= stats["min"] and stats["max"] <= age.max()
    occupation_nulls = rows.column("occupation").null_count / rows.num_rows
    assert manifest.statistics["occupation"]["null_rate"] == pytest.approx(
        occupation_nulls, abs=0.01)


def test_signatures_are_present_with_named_inputs(trained_model):
    signatures = trained_model.saved_model.signatures
    assert set(signatures) == {"encode", "decode", "generate", "sample", "complete", "score",
                               "transform"}
    _, encode_inputs = signatures["encode"].structured_input_signature
    assert {"age", "age__null", "workclass", "workclass__null"} <= set(encode_inputs)
    assert set(signatures["encode"].structured_outputs) == {"code", "score", "column_errors"}
    _, sample_inputs = signatures["sample"].structured_input_signature
    assert sample_inputs["noise"].shape.as_list() == [None, 8]
    generate_draws = signatures["generate"].structured_input_signature[1]["uniform"].shape[1]
    assert sample_inputs["uniform"].shape.as_list() == [None, 1 + generate_draws]
    assert set(signatures["sample"].structured_outputs) == set(
        signatures["generate"].structured_outputs)
    _, complete_inputs = signatures["complete"].structured_input_signature
    assert {"age", "age__null", "workclass", "workclass__null"} <= set(complete_inputs)
    assert complete_inputs["noise"].shape.as_list() == [None, 64 * 8]  # 64 candidate codes
    assert complete_inputs["uniform"].shape.as_list() == [None, 2 * 64 + generate_draws]
    assert set(signatures["complete"].structured_outputs) == set(
        signatures["generate"].structured_outputs)


def test_decode_returns_original_units_and_types(trained_model, adult_files):
    holdout = pq.read_table(adult_files["holdout"]).to_batches()[0]
    code, score = trained_model.encode(holdout)
    assert code.shape == (holdout.num_rows, 8) and code.dtype == np.float32
    assert score.shape == (holdout.num_rows,) and np.all(score >= 0)
    decoded = {name: tensor.numpy() for name, tensor in trained_model.decode(code).items()}
    assert decoded["age"].dtype == np.int64
    stats = trained_model.manifest.statistics["age"]
    assert stats["min"] <= decoded["age"].min() and decoded["age"].max() <= stats["max"]
    vocabulary = set(trained_model.manifest.vocabularies["education"])
    assert {v.decode() for v in decoded["education"]} <= vocabulary
    assert decoded["workclass__null"].dtype == np.bool_


def test_decode_inverts_encode_on_held_out_rows(trained_model, adult_files):
    quality = reconstruction_quality(trained_model, pq.read_table(adult_files["holdout"])
                                     .to_batches(max_chunksize=400))
    print(json.dumps(quality["by_kind"]))
    assert quality["by_kind"]["integer_rmse"] < MAX_NUMERIC_RMSE
    assert quality["by_kind"]["numeric_rmse"] < MAX_NUMERIC_RMSE
    assert quality["by_kind"]["categorical_accuracy"] > MIN_CATEGORICAL_ACCURACY


def test_null_and_unseen_categories_stay_distinguishable(trained_model):
    import tensorflow as tf

    size = len(trained_model.manifest.vocabularies["workclass"])
    inputs = {name: tf.constant(values) for name, values in _one_row(trained_model).items()}
    inputs["workclass"] = tf.constant(["Never-seen-before", ""])
    inputs["workclass__null"] = tf.constant([False, True])
    features = trained_model.saved_model.signatures["transform"](**inputs)["features"].numpy()
    # The encoder's input, as documented: the scalars, the nullable scalars' null flags, then
    # each categorical one-hot over its vocabulary, the out-of-vocabulary bucket and null.
    scalars = [c for c in trained_model.schema.modelled
               if c.kind.value in ("numeric", "integer", "boolean")]
    start = len(scalars) + sum(c.nullable for c in scalars)
    categoricals = [c.name for c in trained_model.schema.modelled
                    if c.kind.value == "categorical"]
    assert categoricals[0] == "workclass"
    one_hot = features[:, start:start + size + 2]
    assert one_hot.argmax(axis=1).tolist() == [size, size + 1]  # OOV bucket, then null
    assert one_hot.sum(axis=1).tolist() == [1.0, 1.0]


def _one_row(model):
    """Two rows of valid raw inputs for every modelled column."""
    values = {"integer": np.array([30, 40], np.int64), "numeric": np.array([1.0, 2.0], np.float32),
              "categorical": np.array(["x", "y"], object)}
    inputs = {}
    for column in model.schema.modelled:
        inputs[column.name] = values[column.kind.value]
        inputs[column.name + "__null"] = np.array([False, False])
    return inputs


def test_model_loads_in_a_fresh_process_without_aepipe(trained_model_dir):
    script = textwrap.dedent(f"""
        import sys
        import tensorflow as tf
        model = tf.saved_model.load({os.path.join(trained_model_dir, "saved_model")!r})
        code = tf.zeros([2, 8])
        decoded = model.signatures["decode"](code=code)
        assert decoded["age"].dtype == tf.int64, decoded["age"].dtype
        assert not [m for m in sys.modules if m.startswith(("aepipe", "tensorflow_transform"))]
        print("ok", sorted(decoded)[:2])
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, cwd="/", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")
