"""The model directory: staged while it is written, published whole, opened for inference.

Layout::

    MODEL_DIR/
      manifest.json     what the model is: schema, options, statistics, losses, row counts
      saved_model/      the SavedModel with the `encode`, `decode` and `score` signatures
      transform_fn/     the tf.Transform output (transform graph, vocabularies, metadata)

A job writes into a hidden staging directory beside MODEL_DIR and renames it into place only
when the manifest, written last, is there: a crashed job never leaves a half model behind.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import posixpath
import uuid
from typing import Any

import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from aepipe import __version__, fileio
from aepipe.batches import to_model_inputs
from aepipe.errors import ModelDirError
from aepipe.features import Features
from aepipe.schema import Schema

__all__ = ["FORMAT_VERSION", "prepare", "publish", "write_manifest", "read_manifest", "verify",
           "file_digests", "ModelDirectory", "load_shared"]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SAVED_MODEL = "saved_model"
TRANSFORM_FN = "transform_fn"


def _is_local(path: str) -> bool:
    return "://" not in path


def _has_files(path: str) -> bool:
    if _is_local(path):
        return os.path.isdir(path) and bool(os.listdir(path)) or os.path.isfile(path)
    return bool(FileSystems.match([posixpath.join(path, "**")])[0].metadata_list)


def prepare(model_dir: str, *, overwrite: bool = False) -> str:
    """Checks that `model_dir` may be written and returns a fresh staging directory for it."""
    if _is_local(model_dir):
        model_dir = os.path.abspath(model_dir)
    if _has_files(model_dir) and not overwrite:
        raise ModelDirError(f"model directory {model_dir} already holds files; choose another "
                            "path or pass --overwrite")
    parent, name = posixpath.split(model_dir.rstrip("/"))
    staging = posixpath.join(parent, f".{name}.staging-{uuid.uuid4().hex[:12]}")
    try:
        FileSystems.mkdirs(staging)
        fileio.write_text(posixpath.join(staging, ".writable"), "")
        FileSystems.delete([posixpath.join(staging, ".writable")])
    except Exception as e:  # the file system's own error says why (permissions, missing bucket)
        raise ModelDirError(f"cannot write the model directory {model_dir}: {e}") from None
    return staging


def publish(staging: str, model_dir: str) -> str:
    """Moves a complete staging directory to `model_dir`, replacing what was there."""
    if _is_local(model_dir):
        model_dir = os.path.abspath(model_dir)
        if os.path.exists(model_dir):
            retired = f"{staging}.replaced"
            os.replace(model_dir, retired)
            os.replace(staging, model_dir)
            FileSystems.delete([retired])
        else:
            os.replace(staging, model_dir)
        return model_dir
    if _has_files(model_dir):
        FileSystems.delete([model_dir])
    sources = sorted(m.path for m in
                     FileSystems.match([posixpath.join(staging, "**")])[0].metadata_list)
    sources.sort(key=lambda p: p.endswith(MANIFEST))  # the manifest lands last
    FileSystems.rename(sources, [model_dir + p[len(staging):] for p in sources])
    FileSystems.delete([staging])
    return model_dir


def write_manifest(directory: str, manifest: dict[str, Any]) -> None:
    """Writes the manifest, last, with the SHA-256 of every other file in the directory."""
    manifest = {"format_version": FORMAT_VERSION, "aepipe_version": __version__, **manifest,
                "files": file_digests(directory)}
    fileio.write_text(posixpath.join(directory, MANIFEST), json.dumps(manifest, indent=2))


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


def verify(model_dir: str, manifest: dict[str, Any]) -> None:
    """Refuses a model directory whose files differ from those its manifest lists."""
    expected = manifest.get("files")
    if expected is None:
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


def read_manifest(model_dir: str) -> dict[str, Any]:
    """The manifest of a complete model directory, or a ModelDirError that says what is wrong."""
    path = posixpath.join(model_dir, MANIFEST)
    if not _has_files(model_dir):
        raise ModelDirError(f"model directory {model_dir} does not exist or is empty")
    try:
        manifest = json.loads(fileio.read_text(path))
    except FileNotFoundError:
        raise ModelDirError(f"model directory {model_dir} is incomplete: it has no {MANIFEST}"
                            ) from None
    except ValueError as e:
        raise ModelDirError(f"{path} is not valid JSON: {e}") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelDirError(f"model directory {model_dir} has format version {version}; this "
                            f"aepipe ({__version__}) reads version {FORMAT_VERSION}")
    return manifest


class ModelDirectory:
    """A published model, opened for inference without any of aepipe's training code."""

    def __init__(self, path: str, *, verify_files: bool = False):
        self.path = path
        self.manifest = read_manifest(path)
        if verify_files:
            verify(path, self.manifest)
        self.schema = Schema.from_dict(self.manifest["schema"], source=path)
        self._saved_model = None

    @property
    def code_size(self) -> int:
        return int(self.manifest["options"]["code_size"])

    @property
    def saved_model(self):
        """The loaded SavedModel (TensorFlow is imported and the model loaded on first use)."""
        if self._saved_model is None:
            import tensorflow as tf

            self._saved_model = tf.saved_model.load(posixpath.join(self.path, SAVED_MODEL))
        return self._saved_model

    def encode(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
        """The code and the reconstruction error of every row of a (valid) batch."""
        outputs = self.saved_model.signatures["encode"](**_as_tensors(
            to_model_inputs(batch, self.schema)))
        return outputs["code"].numpy(), outputs["score"].numpy()

    @functools.cached_property
    def features(self) -> Features:
        """The model's input features, with the vocabulary sizes it was trained with."""
        sizes = {name: len(values) for name, values in self.manifest["vocabularies"].items()}
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

    def generate(self, code: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Like `decode`, with flags, categories and quantile bins drawn from the decoder's
        probabilities and numbers given its residual noise."""
        signature = self.saved_model.signatures["generate"]
        width = signature.structured_input_signature[1]["uniform"].shape[1]
        uniform = rng.random((len(code), width), dtype=np.float32)
        outputs = signature(code=np.asarray(code, np.float32), uniform=uniform)
        return _as_numpy(outputs)


def load_shared(shared, path: str) -> ModelDirectory:
    """The model at `path`, loaded once per process through a Beam `Shared` handle."""

    def load() -> ModelDirectory:
        model = ModelDirectory(path)
        model.saved_model  # noqa: B018  (load the SavedModel now, not on the first batch)
        return model

    return shared.acquire(load, tag=path)


def _as_numpy(outputs: dict[str, Any]) -> dict[str, np.ndarray]:
    return {name: tensor.numpy() for name, tensor in outputs.items()}


def _as_tensors(inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    import tensorflow as tf

    return {name: tf.constant(values) for name, values in inputs.items()}
