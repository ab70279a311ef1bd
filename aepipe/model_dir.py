"""The model directory: built in a staging directory, published whole, opened for inference.

Layout::

    MODEL_DIR/
      manifest.json     what the model is: schema, options, statistics, losses, row counts,
                        and the SHA-256 of every other file
      saved_model/      the SavedModel with the `encode`, `decode` and `score` signatures
      transform_fn/     the tf.Transform output (transform graph, vocabularies, metadata)

A job builds the directory in a local staging directory (`staging_for`) and then publishes it
(`publish`). On a local file system the staging directory sits beside MODEL_DIR and is renamed
into place: a crashed job leaves either no model or the previous one. An object store (gs://,
s3://) has no rename and no directories, so publishing there deletes the previous model's
objects under the prefix MODEL_DIR/ (its manifest first), uploads the new files and writes the
manifest last: readers trust only a directory with a manifest, and the directory then holds
exactly the files its manifest lists. TensorFlow only ever reads and writes local copies, so
every Beam file system works, S3 included.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import posixpath
import shutil
import tempfile
import uuid
import weakref
from typing import Any

import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from aepipe import fileio
from aepipe.batches import to_model_inputs
from aepipe.errors import ModelDirError
from aepipe.features import Features
from aepipe.manifest import FORMAT_VERSION, Manifest

__all__ = ["FORMAT_VERSION", "prepare", "staging_for", "publish", "write_manifest",
           "read_manifest", "verify", "file_digests", "ModelDirectory", "load_shared"]

MANIFEST = "manifest.json"
SAVED_MODEL = "saved_model"
TRANSFORM_FN = "transform_fn"


def _has_files(path: str) -> bool:
    if fileio.is_local(path):
        return os.path.isdir(path) and bool(os.listdir(path)) or os.path.isfile(path)
    return bool(fileio.list_tree(path))


def prepare(model_dir: str, *, overwrite: bool = False) -> str:
    """Checks that `model_dir` may be written; returns its path (absolute when local)."""
    if fileio.is_local(model_dir):
        model_dir = os.path.abspath(model_dir)
    if _has_files(model_dir) and not overwrite:
        raise ModelDirError(f"model directory {model_dir} already holds files; choose another "
                            "path or pass --overwrite")
    parent, name = posixpath.split(model_dir.rstrip("/"))
    probe = posixpath.join(parent, f".{name}.writable-{uuid.uuid4().hex[:12]}")
    try:
        fileio.write_text(probe, "aepipe\n")  # not empty: S3 refuses an upload of no parts
        FileSystems.delete([probe])
    except Exception as e:  # the file system's own error says why (permissions, missing bucket)
        raise ModelDirError(f"cannot write the model directory {model_dir}: {e}") from None
    return model_dir


def staging_for(model_dir: str) -> str:
    """A fresh local directory to build the model in: beside `model_dir` when that is local
    (so that publishing is a rename), else a temporary directory."""
    if not fileio.is_local(model_dir):
        return tempfile.mkdtemp(prefix="aepipe-model-")
    parent, name = os.path.split(os.path.abspath(model_dir).rstrip("/"))
    staging = os.path.join(parent, f".{name}.staging-{uuid.uuid4().hex[:12]}")
    os.makedirs(staging)
    return staging


def publish(staging: str, model_dir: str) -> str:
    """Moves a complete local staging directory to `model_dir`, replacing what was there."""
    if fileio.is_local(model_dir):
        model_dir = os.path.abspath(model_dir)
        if os.path.exists(model_dir):
            retired = f"{staging}.replaced"
            os.replace(model_dir, retired)
            os.replace(staging, model_dir)
            shutil.rmtree(retired)
        else:
            os.replace(staging, model_dir)
        return model_dir
    _delete_model(model_dir)
    root = staging.rstrip("/") + "/"
    relative = sorted(p[len(root):] for p in fileio.list_tree(staging))
    relative.sort(key=lambda r: r == MANIFEST)  # the manifest lands last
    for r in relative:
        fileio.copy_files([root + r], [posixpath.join(model_dir, r)])
    shutil.rmtree(staging)
    return model_dir


def _delete_model(model_dir: str) -> None:
    """Deletes a published model on an object store: its manifest first, so that no reader
    trusts the directory while the rest goes."""
    manifest = posixpath.join(model_dir.rstrip("/"), MANIFEST)
    if FileSystems.exists(manifest):
        FileSystems.delete([manifest])
    fileio.delete_tree(model_dir)


def write_manifest(directory: str, manifest: Manifest) -> None:
    """Writes the manifest, last, with the SHA-256 of every other file in the directory."""
    manifest = manifest.with_files(file_digests(directory))
    fileio.write_text(posixpath.join(directory, MANIFEST),
                      json.dumps(manifest.to_dict(), indent=2))


def file_digests(directory: str) -> dict[str, str]:
    """SHA-256 of every file under `directory` but the manifest, by relative path."""
    root = directory.rstrip("/") + "/"
    digests = {}
    for metadata in FileSystems.match([root + "**"])[0].metadata_list:
        relative = metadata.path[len(root):]
        if relative == MANIFEST:
            continue
        digest = hashlib.sha256()
        with FileSystems.open(metadata.path) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        digests[relative] = digest.hexdigest()
    return dict(sorted(digests.items()))


def verify(model_dir: str, manifest: Manifest) -> None:
    """Refuses a model directory whose files differ from those its manifest lists."""
    expected = manifest.files
    if not expected:
        raise ModelDirError(f"model directory {model_dir} lists no file digests to verify; pass "
                            "--no-verify to use it anyway")
    found = file_digests(model_dir)
    problems = ([f"{p} changed" for p in expected if p in found and found[p] != expected[p]]
                + [f"{p} missing" for p in expected if p not in found]
                + [f"{p} added" for p in found if p not in expected])
    if problems:
        shown = ", ".join(problems[:3]) + (f" and {len(problems) - 3} more"
                                           if len(problems) > 3 else "")
        raise ModelDirError(f"model directory {model_dir} does not match its manifest ({shown}); "
                            "refusing to load it; pass --no-verify to use it anyway")


def read_manifest(model_dir: str) -> Manifest:
    """The manifest of a complete model directory, or a ModelDirError that says what is wrong."""
    path = posixpath.join(model_dir, MANIFEST)
    if not _has_files(model_dir):
        raise ModelDirError(f"model directory {model_dir} does not exist or is empty")
    try:
        data = json.loads(fileio.read_text(path))
    except FileNotFoundError:
        raise ModelDirError(f"model directory {model_dir} is incomplete: it has no {MANIFEST}"
                            ) from None
    except ValueError as e:
        raise ModelDirError(f"{path} is not valid JSON: {e}") from None
    return Manifest.from_dict(data, source=model_dir)


class ModelDirectory:
    """A published model, opened for inference without any of aepipe's training code.

    Unless `trust_model`, its SavedModel's ops are checked against the ops aepipe's export
    produces (`aepipe.trust`) here, before anything runs, and again on the local copy that is
    loaded when the model lives on an object store.
    """

    def __init__(self, path: str, *, verify_files: bool = False, trust_model: bool = False):
        self.path = path
        self.manifest = read_manifest(path)
        if verify_files:
            verify(path, self.manifest)
        self.schema = self.manifest.schema
        self.trust_model = trust_model
        if not trust_model:
            from aepipe import trust

            trust.check_saved_model(posixpath.join(path, SAVED_MODEL), model_dir=path)
        self._saved_model = None

    @property
    def code_size(self) -> int:
        return self.manifest.code_size

    @property
    def saved_model(self):
        """The loaded SavedModel (TensorFlow is imported and the model loaded on first use)."""
        if self._saved_model is None:
            import tensorflow as tf

            local = self._local_saved_model()
            if not self.trust_model and local != posixpath.join(self.path, SAVED_MODEL):
                from aepipe import trust

                trust.check_saved_model(local, model_dir=self.path)  # the bytes loaded
            self._saved_model = tf.saved_model.load(local)
        return self._saved_model

    def _local_saved_model(self) -> str:
        """The SavedModel's local path: on an object store, a copy made for this process (and
        deleted with this object), since TensorFlow reads neither s3:// nor every gs:// setup."""
        path = posixpath.join(self.path, SAVED_MODEL)
        if fileio.is_local(path):
            return path
        local = tempfile.mkdtemp(prefix="aepipe-saved-model-")
        weakref.finalize(self, shutil.rmtree, local, True)
        fileio.copy_tree(path, local)
        return local

    def encode(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
        """The code and the reconstruction error of every row of a (valid) batch."""
        outputs = self.saved_model.signatures["encode"](**_as_tensors(
            to_model_inputs(batch, self.schema)))
        return outputs["code"].numpy(), outputs["score"].numpy()

    def recommend(self, batch: pa.RecordBatch, *, top_k: int, exclude_seen: bool
                  ) -> dict[str, np.ndarray]:
        """Per item set column ``c`` of the model, the `top_k` likeliest items of every row of a
        (valid) batch (``c``, bytes), their probabilities (``c__score``) and how many of them
        to keep (``c__size``): see `aepipe.export`."""
        import tensorflow as tf

        outputs = self.saved_model.signatures["recommend"](
            **_as_tensors(to_model_inputs(batch, self.schema)),
            top_k=tf.constant(top_k, tf.int32), exclude_seen=tf.constant(exclude_seen))
        return _as_numpy(outputs)

    @functools.cached_property
    def features(self) -> Features:
        """The model's input features, with the vocabulary sizes it was trained with."""
        sizes = {name: len(values) for name, values in self.manifest.vocabularies.items()}
        return Features.of(self.schema, sizes)

    def transform(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        """The transformed features of a (valid) batch: what the encoder reads."""
        outputs = self.saved_model.signatures["transform"](**_as_tensors(
            to_model_inputs(batch, self.schema)))
        return _as_numpy(outputs)

    def decode(self, code: np.ndarray) -> dict[str, np.ndarray]:
        """Values and null masks in the original units for each row of `code`."""
        outputs = self.saved_model.signatures["decode"](code=np.asarray(code, np.float32))
        return _as_numpy(outputs)

    def sample(self, rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """`rows` synthetic rows (values and null masks in the original units) from the
        `sample` signature, its noise and uniform draws taken from `rng`."""
        signature = self.saved_model.signatures["sample"]
        width = signature.structured_input_signature[1]["uniform"].shape[1]
        noise = rng.standard_normal((rows, self.code_size), dtype=np.float32)
        uniform = rng.random((rows, width), dtype=np.float32)
        return _as_numpy(signature(noise=noise, uniform=uniform))


def load_shared(shared, path: str, *, trust_model: bool = False) -> ModelDirectory:
    """The model at `path`, loaded once per process through a Beam `Shared` handle (its ops
    checked first unless `trust_model`; see `ModelDirectory`)."""

    def load() -> ModelDirectory:
        model = ModelDirectory(path, trust_model=trust_model)
        model.saved_model  # noqa: B018  (load the SavedModel now, not on the first batch)
        return model

    return shared.acquire(load, tag=f"{path}|trusted" if trust_model else path)


def _as_numpy(outputs: dict[str, Any]) -> dict[str, np.ndarray]:
    return {name: tensor.numpy() for name, tensor in outputs.items()}


def _as_tensors(inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    import tensorflow as tf

    return {name: tf.constant(values) for name, values in inputs.items()}
