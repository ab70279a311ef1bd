"""The manifest as a typed record: it survives its JSON form, and a manifest of another
format version or with a field missing is refused with a message naming the directory."""

import dataclasses
import json

import pyarrow as pa
import pytest

from aepipe.errors import ModelDirError
from aepipe.store.manifest import FORMAT_VERSION, Manifest, TrainingRun
from aepipe.options import ModelOptions
from aepipe.table.schema import Column, Kind, Schema


@pytest.fixture
def manifest() -> Manifest:
    schema = Schema((Column("id", Kind.KEY, nullable=False), Column("age", Kind.INTEGER),
                     Column("city", Kind.CATEGORICAL)))
    run = TrainingRun(batch_size=32, steps_per_period=100, steps=300, best_step=200,
                      history={"loss": [0.9, 0.5, 0.6], "val_loss": [1.0, 0.7, 0.8]},
                      train_loss=0.5, validation_loss=0.7, fit_seconds=3.5)
    return Manifest(
        schema=schema,
        input_arrow_schema=pa.schema([("id", pa.string()), ("age", pa.int32()),
                                      ("city", pa.large_string())]),
        options=ModelOptions(code_size=4, hidden=(16, 8)), rows={"train": 90, "validation": 10},
        training=run, statistics={"age": {"mean": 40.0, "quantiles": [20.0, 60.0]}},
        vocabularies={"city": ["Oslo", "Lima"]}, loss_scales={"age": 1.0, "city": 0.69},
        score_percentiles={"50": 0.1, "99": 0.9}, residual_std={"age": 0.2},
        column_errors={"age": 0.3, "city": 0.1}, reconstruction={"age": {"r2": 0.9}},
        prior={"kind": "gaussian_mixture", "weights": [1.0]},
        passthrough_ranges={"id": [2, 5]}, value_ranges={"x": [0.5, 2.25]},
        files={"saved_model/saved_model.pb": "ab" * 32})


def test_the_manifest_survives_its_json_form(manifest):
    data = json.loads(json.dumps(manifest.to_dict()))
    assert data["format_version"] == FORMAT_VERSION
    assert data["options"]["hidden"] == [16, 8] and data["training"]["best_step"] == 200
    assert Manifest.from_dict(data, source="m") == manifest


def test_another_format_version_is_refused(manifest):
    data = dict(manifest.to_dict(), format_version=1)
    with pytest.raises(ModelDirError, match="m has format version 1.*retrain"):
        Manifest.from_dict(data, source="m")


def test_a_missing_field_is_named(manifest):
    data = manifest.to_dict()
    del data["vocabularies"], data["prior"]
    with pytest.raises(ModelDirError, match="manifest of m lacks vocabularies, prior"):
        Manifest.from_dict(data, source="m")
    assert dataclasses.replace(manifest, files={}).with_files({"a": "b"}).files == {"a": "b"}
