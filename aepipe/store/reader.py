"""Reading a published model directory: its manifest, its files' digests, and the model opened
for inference without any of aepipe's training code (`ModelDirectory`).

Only a directory whose manifest is there is a model: publishing writes the manifest last (see
`aepipe.store.publish`).
"""

from __future__ import annotations

import json
import posixpath
import shutil
import tempfile
import weakref
from typing import Any

import numpy as np
import pyarrow as pa

from aepipe.errors import ModelDirError
from aepipe.io import files as fileio
from aepipe.store import trust
from aepipe.store.manifest import MANIFEST, SAVED_MODEL, Manifest, file_digests
from aepipe.store.publish import has_files
from aepipe.table import signatures
from aepipe.table.arrow import signature_inputs

__all__ = ["read_manifest", "verify", "ModelDirectory"]


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
    if not has_files(model_dir):
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
    produces (`aepipe.store.trust`) here, before anything runs, and again on the local copy that
    is loaded when the model lives on an object store.
    """

    def __init__(self, path: str, *, verify_files: bool = False, trust_model: bool = False):
        self.path = path
        self.manifest = read_manifest(path)
        if verify_files:
            verify(path, self.manifest)
        self.schema = self.manifest.schema
        self.trust_model = trust_model
        if not trust_model:
            trust.check_saved_model(posixpath.join(path, SAVED_MODEL), model_dir=path)
        self._saved_model = None

    @property
    def code_size(self) -> int:
        return self.manifest.code_size

    def require_code(self, job: str) -> None:
        """Refuses a model without a code (`--model ease`) for a job that needs one."""
        if self.manifest.options.model == "ease":
            raise ModelDirError(f"model directory {self.path} holds a linear model (--model "
                                f"ease), which has no code: {job} needs a model trained with "
                                "--model vae or ae")

    def require_signature(self, name: str, job: str) -> None:
        """Refuses, before any work, a model whose SavedModel lacks signature `name` (one
        trained by an earlier version of aepipe) for a job that calls it; loads the model."""
        if name not in self.saved_model.signatures:
            raise ModelDirError(f"model directory {self.path} has no {name!r} signature, which "
                                f"{job} needs: it was trained by an earlier version of aepipe; "
                                "retrain it with this one")

    @property
    def saved_model(self):
        """The loaded SavedModel (TensorFlow is imported and the model loaded on first use)."""
        if self._saved_model is None:
            import tensorflow as tf

            local = self.local_saved_model()
            if not self.trust_model and local != posixpath.join(self.path, SAVED_MODEL):
                trust.check_saved_model(local, model_dir=self.path)  # the bytes loaded
            self._saved_model = tf.saved_model.load(local)
        return self._saved_model

    def load(self) -> "ModelDirectory":
        """Loads the SavedModel now, not on the first batch; returns this model."""
        self.saved_model  # noqa: B018
        return self

    def local_saved_model(self) -> str:
        """The SavedModel's local path: on an object store, a copy made for this process (and
        deleted with this object), since TensorFlow reads neither s3:// nor every gs:// setup."""
        path = posixpath.join(self.path, SAVED_MODEL)
        if fileio.is_local(path):
            return path
        local = tempfile.mkdtemp(prefix="aepipe-saved-model-")
        weakref.finalize(self, shutil.rmtree, local, True)
        fileio.copy_tree(path, local)
        return local

    def signature(self, name: str):
        """One of the SavedModel's signatures (`aepipe.table.signatures`)."""
        return self.saved_model.signatures[name]

    def encode(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
        """The code and the reconstruction error of every row of a (valid) batch."""
        outputs = self.encoded(batch)
        return outputs[signatures.CODE].numpy(), outputs[signatures.SCORE].numpy()

    def encoded(self, batch: pa.RecordBatch) -> dict[str, Any]:
        """Every output of the `encode` signature for a (valid) batch, as tensors."""
        return self.signature(signatures.ENCODE)(**self.inputs(batch))

    def inputs(self, batch: pa.RecordBatch) -> dict[str, Any]:
        """The signatures' raw columns of a (valid) batch, as tensors."""
        return signature_inputs(batch, self.schema.modelled)

    def recommend(self, batch: pa.RecordBatch, *, top_k: int, exclude_seen: bool
                  ) -> dict[str, Any]:
        """Per item set column ``c`` of the model, the `top_k` likeliest items of every row of a
        (valid) batch (``c``, a string tensor), their probabilities (``c__score``) and how many
        of them to keep (``c__size``): see `aepipe.table.signatures`."""
        import tensorflow as tf

        return self.signature(signatures.RECOMMEND)(
            **self.inputs(batch), **{signatures.TOP_K: tf.constant(top_k, tf.int32),
                                     signatures.EXCLUDE_SEEN: tf.constant(exclude_seen)})

    def transform(self, batch: pa.RecordBatch) -> np.ndarray:
        """The encoder's input matrix for a (valid) batch."""
        return self.signature(signatures.TRANSFORM)(
            **self.inputs(batch))[signatures.FEATURES].numpy()

    def decode(self, code: np.ndarray) -> dict[str, Any]:
        """The raw columns (tensors) of the rows `code` decodes to."""
        return self.signature(signatures.DECODE)(
            **{signatures.CODE: np.asarray(code, np.float32)})

    def sample(self, rows: int, rng: np.random.Generator) -> dict[str, Any]:
        """`rows` synthetic rows (raw columns, as tensors) from the `sample` signature, its noise
        and uniform draws taken from `rng`."""
        signature = self.signature(signatures.SAMPLE)
        return signature(**_draws(signature, rows, rng))

    def complete(self, conditions: pa.RecordBatch, rng: np.random.Generator) -> dict[str, Any]:
        """One synthetic row per row of `conditions` (every modelled column, nulls where a cell
        is to be drawn): the `complete` signature's output, its draws taken from `rng`."""
        signature = self.signature(signatures.COMPLETE)
        return signature(**self.inputs(conditions),
                         **_draws(signature, conditions.num_rows, rng))


def _draws(signature: Any, rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A sampling signature's NOISE (standard normal) and UNIFORM draws for `rows` rows, in
    the widths it declares."""
    declared = signature.structured_input_signature[1]
    return {name: draw((rows, declared[name].shape[1]), dtype=np.float32)
            for name, draw in ((signatures.NOISE, rng.standard_normal),
                               (signatures.UNIFORM, rng.random))}
