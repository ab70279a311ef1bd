"""Publishing a model directory: built in a staging directory, then published whole.

A job builds the directory in a local staging directory (`staging_for`) and then publishes it
(`publish`). On a local file system the staging directory sits beside MODEL_DIR and is renamed
into place: a crashed job leaves either no model or the previous one. An object store (gs://,
s3://) has no rename and no directories, so publishing there deletes the previous model's
objects under the prefix MODEL_DIR/ (its manifest first), uploads the new files and writes the
manifest last: readers trust only a directory with a manifest (`aepipe.store.reader`), and the
directory then holds exactly the files its manifest lists. TensorFlow only ever reads and writes
local copies, so every Beam file system works, S3 included.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import tempfile
import uuid

from apache_beam.io.filesystems import FileSystems

from aepipe.errors import ModelDirError
from aepipe.io import files as fileio
from aepipe.store.manifest import MANIFEST, Manifest, file_digests

__all__ = ["prepare", "staging_for", "publish", "write_manifest", "has_files"]


def has_files(path: str) -> bool:
    if fileio.is_local(path):
        return os.path.isdir(path) and bool(os.listdir(path)) or os.path.isfile(path)
    return bool(fileio.list_tree(path))


def prepare(model_dir: str, *, overwrite: bool = False) -> str:
    """Checks that `model_dir` may be written; returns its path (absolute when local)."""
    if fileio.is_local(model_dir):
        model_dir = os.path.abspath(model_dir)
    if has_files(model_dir) and not overwrite:
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
