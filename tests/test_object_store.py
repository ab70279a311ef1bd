"""Train, encode, sample and evaluate on gs:// against a real GCS emulator, and on s3:// against
moto's S3.

The emulator (gcp-storage-emulator, a separate process the tests start) speaks the GCS JSON API
that Beam's own `GCSFileSystem` uses, batch requests included. Object stores have no
directories: deleting `gs://b/m` deletes nothing but an object of exactly that name, and a
rename is a copy and a delete. These tests check what a user relies on there: a published model
holds exactly the files its manifest lists (no transformed training rows), `--overwrite`
leaves no file of the old model behind, and a killed run publishes nothing.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems

from aepipe.io.files import list_tree
from aepipe.store.reader import ModelDirectory
from aepipe.options import ModelOptions, SampleOptions
from tests.helpers import kill_training_at_first_validation

pytestmark = pytest.mark.slow  # models trained on emulated object stores
BUCKET = "gs://aepipe-test"


@pytest.fixture(scope="module")
def gcs():
    """A GCS emulator on a free local port, with STORAGE_EMULATOR_HOST pointing at it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
         "--port", str(port), "--default-bucket", BUCKET.removeprefix("gs://"), "--in-memory",
         "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1)
            break
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, "emulator did not start"
            time.sleep(0.2)
    saved = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    yield BUCKET
    server.terminate()
    server.wait(timeout=10)
    if saved is None:
        del os.environ["STORAGE_EMULATOR_HOST"]
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = saved


def _train(adult_files, sample_schema, model_dir, **options):
    from pipelines.train import train

    return train(input_pattern=adult_files["train"], schema=sample_schema, model_dir=model_dir,
                 options=ModelOptions(epochs=2, seed=1, **options), overwrite=True)


def _relative(root: str) -> list[str]:
    return [p[len(root) + 1:] for p in list_tree(root)]


def _manifest(model_dir: str) -> dict:
    with FileSystems.open(f"{model_dir}/manifest.json") as f:
        return json.loads(f.read())


@pytest.fixture(scope="module")
def gcs_model(gcs, adult_files, sample_schema):
    return _train(adult_files, sample_schema, f"{gcs}/models/adult")


def test_a_published_model_holds_exactly_the_files_its_manifest_lists(gcs, gcs_model):
    files = _relative(gcs_model)
    assert sorted(files) == sorted([*_manifest(gcs_model)["files"], "manifest.json"])
    assert not [f for f in files if f.endswith(".parquet") or "_work" in f or "tft" in f]
    assert all(p.startswith(f"{gcs}/models/adult/") for p in list_tree(f"{gcs}/models")), \
        "nothing beside the model: no staging, no work files, no empty dead letters"
    ModelDirectory(gcs_model, verify_files=True)


def test_retraining_with_overwrite_leaves_nothing_of_the_old_model(gcs, adult_files,
                                                                   sample_schema):
    model_dir = f"{gcs}/models/retrained"
    _train(adult_files, sample_schema, model_dir)
    before = _manifest(model_dir)["files"]
    with FileSystems.create(f"{model_dir}/saved_model/variables/variables.data-00001-of-00002"
                            ) as f:
        f.write(b"a shard of an older, differently sharded model")
    _train(adult_files, sample_schema, model_dir, code_size=4)
    after = _manifest(model_dir)
    assert after["options"]["code_size"] == 4 and after["files"] != before
    assert sorted(_relative(model_dir)) == sorted([*after["files"], "manifest.json"])
    ModelDirectory(model_dir, verify_files=True)


def test_encode_sample_and_evaluate_read_and_write_gs(gcs, gcs_model, adult_files, tmp_path):
    from pipelines.encode import encode
    from tests.helpers import evaluate
    from pipelines.sample import sample

    holdout = f"{gcs}/data/holdout.parquet"
    with open(adult_files["holdout"], "rb") as source, FileSystems.create(holdout) as f:
        f.write(source.read())
    counters = encode(input_pattern=holdout, model_dir=gcs_model, output=f"{gcs}/codes/part")
    assert counters == {"rows_read": 1000, "rows_rejected": 0, "rows_written": 1000}
    codes = list_tree(f"{gcs}/codes")
    assert codes and all(os.path.basename(p).startswith("part-0") for p in codes)
    assert not list_tree(f"{gcs}/codes-rejected")
    table = pq.read_table(FileSystems.open(codes[0]))
    assert "ae_0" in table.column_names

    assert sample(model_dir=gcs_model, options=SampleOptions(num_rows=500, seed=3),
                  output=f"{gcs}/synthetic/rows") == 500
    synthetic = list_tree(f"{gcs}/synthetic")
    assert sum(pq.read_metadata(FileSystems.open(p)).num_rows for p in synthetic) == 500

    report = f"{gcs}/report"
    evaluate(real=adult_files["train"], synthetic=f"{gcs}/synthetic/rows-*.parquet",
             holdout=holdout, model_dir=gcs_model, output=report, target="income")
    assert {"report.json", "report.html"} <= set(_relative(report))


def test_a_killed_training_run_publishes_nothing(gcs, adult_files, sample_schema, tmp_path):
    (tmp_path / "schema.yaml").write_text(sample_schema.to_yaml())
    model_dir = f"{gcs}/models/killed"
    kill_training_at_first_validation("--input", adult_files["train"], "--schema",
                                 str(tmp_path / "schema.yaml"), "--model-dir", model_dir)
    assert list_tree(model_dir) == []
    others = [p for p in list_tree(f"{gcs}/models")
              if not p.startswith((f"{gcs}/models/adult/", f"{gcs}/models/retrained/"))]
    dead_letters = [p for p in others if os.path.basename(p).startswith("killed-rejected-")]
    assert [p for p in others if p not in dead_letters and "/beam-temp-" not in p] == []
    assert all(pq.read_metadata(FileSystems.open(p)).num_rows == 0 for p in dead_letters), \
        "a run killed before its end may leave the empty dead-letter shard it would have removed"


@pytest.fixture
def s3(monkeypatch):
    """S3 as moto emulates it, behind botocore, with Beam's S3 file system in front: a bucket
    and fake credentials, for this test only."""
    from moto import mock_aws

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        import boto3

        boto3.client("s3").create_bucket(Bucket="aepipe-test")
        yield "s3://aepipe-test"


def test_train_retrain_encode_and_sample_on_s3(s3, adult_files, sample_schema):
    from pipelines.encode import encode
    from pipelines.sample import sample

    model_dir = f"{s3}/models/adult"
    _train(adult_files, sample_schema, model_dir)
    with FileSystems.create(f"{model_dir}/saved_model/variables/variables.data-00001-of-00002"
                            ) as f:
        f.write(b"a shard of an older, differently sharded model")
    _train(adult_files, sample_schema, model_dir, code_size=4)
    assert sorted(_relative(model_dir)) == sorted([*_manifest(model_dir)["files"],
                                                   "manifest.json"])
    assert [p for p in list_tree(s3) if not p.startswith(f"{model_dir}/")] == []
    counters = encode(input_pattern=adult_files["holdout"], model_dir=model_dir,
                      output=f"{s3}/codes/part")
    assert counters["rows_written"] == 1000
    assert pq.read_table(FileSystems.open(list_tree(f"{s3}/codes")[0])).schema.names[-1] == \
        "ae_score"
    assert sample(model_dir=model_dir, options=SampleOptions(num_rows=300, seed=1),
                  output=f"{s3}/synthetic/rows") == 300
