"""The encoded output in a real Feast feature store (no mocks): `feast apply` on a local repo,
point-in-time historical retrieval from the file offline store, materialisation into SQLite and
online retrieval, each checked against the encoded Parquet read with pyarrow.

Feast is part of the `test` extra (and `aepipe[feast]`); the module is skipped without it.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("feast")

from feast import FeatureStore  # noqa: E402
from feast.types import Array, Bool, Float32, String  # noqa: E402

from aepipe.errors import AepipeError, SchemaError  # noqa: E402
from aepipe.integrations.feast import FeastNotInstalled, feature_view  # noqa: E402
from pipelines.encode import encode  # noqa: E402

VIEW = "adult_codes"
CODE_SIZE = 8
FEATURES = [f"ae_{i}" for i in range(CODE_SIZE)] + ["ae_score"]


@pytest.fixture(scope="module")
def codes_dir(trained_model_dir, adult_files, tmp_path_factory) -> str:
    """encode's output directory, as the job wrote it."""
    root = tmp_path_factory.mktemp("feast_codes")
    encode(input_pattern=adult_files["holdout"], model_dir=trained_model_dir,
           output=str(root / "codes" / "part"))
    return str(root / "codes")


@pytest.fixture(scope="module")
def oracle(codes_dir) -> dict[str, dict]:
    """Every encoded row by key, read with pyarrow alone."""
    table = _read_shards(codes_dir)
    rows = table.to_pylist()
    assert len({r["id"] for r in rows}) == len(rows)
    return {r["id"]: r for r in rows}


@pytest.fixture(scope="module")
def store(trained_model_dir, codes_dir, tmp_path_factory) -> FeatureStore:
    """A local Feast repo (file offline store, SQLite online store and registry, all in a
    temporary directory) whose definitions come from `aepipe.integrations.feast`, applied with the
    `feast apply` command line."""
    repo = tmp_path_factory.mktemp("feast_repo")
    (repo / "feature_store.yaml").write_text(textwrap.dedent(f"""\
        project: aepipe_test
        provider: local
        registry: {repo / "data" / "registry.db"}
        online_store:
          type: sqlite
          path: {repo / "data" / "online.db"}
        offline_store:
          type: file
        entity_key_serialization_version: 3
        """))
    (repo / "definitions.py").write_text(textwrap.dedent(f"""\
        from aepipe.integrations.feast import feature_view

        definitions = feature_view({trained_model_dir!r}, {codes_dir!r}, name={VIEW!r},
                                   entity_name="adult")
        adult = definitions.entities[0]
        adult_codes_source = definitions.source
        adult_codes = definitions.view
        """))
    feast_cli = os.path.join(os.path.dirname(sys.executable), "feast")
    command = [feast_cli] if os.path.exists(feast_cli) else [sys.executable, "-m", "feast.cli.cli"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
         os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([*command, "apply"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return FeatureStore(repo_path=str(repo))


def _read_shards(codes_dir) -> pa.Table:
    return pq.read_table(sorted(glob.glob(os.path.join(codes_dir, "part-[0-9]*-of-*.parquet"))))


def _sample_keys(oracle, n=40, seed=0) -> list[str]:
    keys = sorted(oracle)
    return [keys[i] for i in np.random.default_rng(seed).choice(len(keys), n, replace=False)]


def _assert_rows_equal(got: dict[str, list], keys: list[str], oracle) -> None:
    for feature in FEATURES:
        expected = np.array([oracle[k][feature] for k in keys], np.float32)
        np.testing.assert_allclose(np.asarray(got[feature], np.float64).astype(np.float32),
                                   expected, rtol=1e-6, atol=0, err_msg=feature)


def test_the_output_directory_holds_only_the_encoded_shards(codes_dir):
    # Feast's FileSource reads every file of the directory as one table: a dead-letter shard
    # (another schema) beside the codes makes it fail.
    names = sorted(os.listdir(codes_dir))
    assert names and all(n.startswith("part-") and "rejected" not in n for n in names), names


def test_feast_apply_registers_the_definitions_from_the_manifest(store):
    view = store.get_feature_view(VIEW)
    assert [f.name for f in view.features] == FEATURES
    assert all(f.dtype == Float32 for f in view.features)
    assert [c.name for c in view.entity_columns] == ["id"]
    assert view.entity_columns[0].dtype == String
    assert view.batch_source.timestamp_field == "event_ts"
    entity = store.get_entity("adult")
    assert entity.join_key == "id"


def test_historical_features_equal_the_parquet_point_in_time(store, oracle):
    import pandas as pd

    keys = _sample_keys(oracle)
    seen = [oracle[k]["event_ts"] + datetime.timedelta(hours=1) for k in keys]
    too_early = keys[:5]  # asked for before their event: a point-in-time join finds nothing
    entity_df = pd.DataFrame({
        "id": keys + too_early,
        "event_timestamp": pd.to_datetime(
            seen + [oracle[k]["event_ts"] - datetime.timedelta(seconds=1) for k in too_early],
            utc=True),
        "row": range(len(keys) + len(too_early)),
    })
    frame = store.get_historical_features(
        entity_df=entity_df, features=[f"{VIEW}:{f}" for f in FEATURES]).to_df()
    frame = frame.sort_values("row").reset_index(drop=True)
    found = frame[frame["row"] < len(keys)]
    assert found["id"].tolist() == keys
    _assert_rows_equal({f: found[f].tolist() for f in FEATURES}, keys, oracle)
    # Feast 0.67's file store leaves out an entity row with no feature row at or before its
    # timestamp (other stores return it with nulls): either way, no value from its future
    assert frame[frame["row"] >= len(keys)][FEATURES].isna().all().all()


def test_materialized_online_features_equal_the_parquet(store, oracle):
    times = [r["event_ts"] for r in oracle.values()]
    store.materialize(start_date=min(times) - datetime.timedelta(seconds=1),
                      end_date=max(times) + datetime.timedelta(seconds=1))
    keys = _sample_keys(oracle, seed=1)
    got = store.get_online_features(features=[f"{VIEW}:{f}" for f in FEATURES],
                                    entity_rows=[{"id": k} for k in keys + ["no-such-row"]]
                                    ).to_dict()
    assert got["id"] == keys + ["no-such-row"]
    _assert_rows_equal({f: v[:len(keys)] for f, v in got.items()}, keys, oracle)
    assert all(got[f][-1] is None for f in FEATURES)


def test_feature_view_follows_the_encode_options(trained_model_dir, tmp_path):
    definitions = feature_view(trained_model_dir, str(tmp_path), name="v", code_as_list=True,
                               flag_above=99, ttl=datetime.timedelta(days=7),
                               tags={"team": "risk"}, online=False)
    entity, = definitions.entities
    assert (entity.name, entity.join_key) == ("id", "id")
    view = definitions.view
    assert [(f.name, f.dtype) for f in view.features] == [
        ("ae_code", Array(Float32)), ("ae_score", Float32), ("ae_anomaly", Bool)]
    assert view.features[0].vector_length == CODE_SIZE
    assert view.ttl == datetime.timedelta(days=7) and not view.online
    assert view.tags["team"] == "risk" and view.tags["aepipe_code_size"] == str(CODE_SIZE)
    assert definitions.source.path == str(tmp_path)
    assert definitions.objects() == [entity, definitions.source, view]


def _model_without(trained_model_dir, tmp_path, kind: str) -> str:
    """A copy of the model's manifest whose schema has no column of `kind`."""
    with open(os.path.join(trained_model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    for column in manifest["schema"]["columns"]:
        if column["kind"] == kind:
            column["kind"] = "ignore"
    model_dir = tmp_path / f"no_{kind}"
    model_dir.mkdir()
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    return str(model_dir)


@pytest.mark.parametrize("kind, words", [("key", "no key column"),
                                         ("timestamp", "no timestamp column")])
def test_a_schema_without_key_or_timestamp_is_refused(trained_model_dir, tmp_path, kind, words):
    with pytest.raises(SchemaError, match=words):
        feature_view(_model_without(trained_model_dir, tmp_path, kind), str(tmp_path),
                     name="v")


def test_without_feast_the_message_says_how_to_install_it(trained_model_dir, tmp_path,
                                                          monkeypatch):
    monkeypatch.setitem(sys.modules, "feast", None)  # `import feast` raises ImportError
    with pytest.raises(FeastNotInstalled, match=r"aepipe\[feast\]") as raised:
        feature_view(trained_model_dir, str(tmp_path), name="v")
    assert isinstance(raised.value, AepipeError) and isinstance(raised.value, ImportError)


def test_the_encoded_parquet_is_what_feast_was_given(codes_dir, oracle, adult_files):
    # the oracle is the encode output itself: typed as the contract says
    table = _read_shards(codes_dir)
    source = pq.read_schema(adult_files["holdout"])
    assert table.schema.field("id").type == pa.string()
    assert table.schema.field("event_ts").type == source.field("event_ts").type
    assert pa.types.is_timestamp(source.field("event_ts").type)
    assert all(table.schema.field(f).type == pa.float32() for f in FEATURES)
    assert table.num_rows == len(oracle)
