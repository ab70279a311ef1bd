"""Paths and files through Beam's file-system API, so local paths, gs:// and s3:// behave alike.

Object stores have no directories: a "directory" is a prefix, deleting it means deleting every
object under it, and a move is a copy and a delete per object, none of it atomic. The tree
functions here (`list_tree`, `delete_tree`, `copy_tree`) work on prefixes, so they mean the same
on every file system.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from typing import Sequence

import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from aepipe.errors import InputError, OutputError

__all__ = ["is_local", "as_glob", "match", "read_text", "write_text", "parquet_file",
           "list_tree", "delete_tree", "copy_tree", "copy_files",
           "refuse_existing_output", "refuse_existing_directory"]

_RAW = CompressionTypes.UNCOMPRESSED  # bytes as they are, whatever a file's name ends with


def is_local(path: str) -> bool:
    return "://" not in path


def as_glob(pattern: str) -> str:
    """A directory stands for the files directly in it; a local glob gets a directory part
    (`./x-*`), without which Beam's local file system matches nothing."""
    if _is_directory(pattern):
        return FileSystems.join(pattern.rstrip("/"), "*")
    if is_local(pattern) and not os.path.dirname(pattern):
        return "./" + pattern
    return pattern


def match(pattern: str) -> list[str]:
    """The files a pattern (or a directory) names, sorted; hidden and `_` files are skipped."""
    pattern = as_glob(pattern)
    try:
        found = FileSystems.match([pattern])[0].metadata_list
    except Exception as e:  # Beam raises BeamIOError wrapping the file system's own error
        raise InputError(f"cannot list {pattern}: {e}") from None
    paths = sorted(m.path for m in found
                   if not posixpath.basename(m.path).startswith(("_", ".")))
    if not paths:
        raise InputError(f"no input files match {pattern}")
    return paths


def _is_directory(path: str) -> bool:
    if any(ch in path for ch in "*?["):
        return False
    if path.endswith("/"):
        return True
    return is_local(path) and os.path.isdir(path)


def read_text(path: str) -> str:
    if not FileSystems.exists(path):
        raise FileNotFoundError(path)
    with FileSystems.open(path) as f:
        return f.read().decode("utf-8")


def write_text(path: str, text: str) -> None:
    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))


def parquet_file(path: str) -> pq.ParquetFile:
    """Opens a Parquet file to read its footer or row groups; a clear error if it is not one."""
    try:
        return pq.ParquetFile(FileSystems.open(path))
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError with a terse message
        raise InputError(f"{path}: not a readable Parquet file ({e})") from None


def list_tree(root: str) -> list[str]:
    """Every file under the directory (or object prefix) `root`, sorted."""
    found = FileSystems.match([posixpath.join(root.rstrip("/"), "**")])[0].metadata_list
    return sorted(m.path for m in found)


def delete_tree(root: str) -> None:
    """Deletes the directory `root` with everything in it; on an object store, every object
    under the prefix `root/` (deleting `root` alone would delete only an object of that name)."""
    if is_local(root):
        shutil.rmtree(root, ignore_errors=True)
        return
    files = list_tree(root)
    if files:
        FileSystems.delete(files)


def copy_tree(source: str, destination: str) -> list[str]:
    """Copies every file under `source` to the same relative path under `destination`;
    returns the relative paths copied."""
    root = source.rstrip("/") + "/"
    relative = [path[len(root):] for path in list_tree(source)]
    copy_files([root + r for r in relative],
               [posixpath.join(destination, r) for r in relative])
    return relative


def copy_files(sources: Sequence[str], destinations: Sequence[str]) -> None:
    """Copies files one to one: server-side within one object store, streamed otherwise."""
    server_side: list[tuple[str, str]] = []
    for source, destination in zip(sources, destinations):
        if not is_local(source) and _scheme(source) == _scheme(destination):
            server_side.append((source, destination))
            continue
        with FileSystems.open(source, compression_type=_RAW) as reader, \
                FileSystems.create(destination, compression_type=_RAW) as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
    if server_side:
        FileSystems.copy([s for s, _ in server_side], [d for _, d in server_side])


def _scheme(path: str) -> str:
    return path.split("://")[0] if "://" in path else ""


def refuse_existing_output(prefix: str, *, overwrite: bool) -> None:
    """Refuses an output prefix whose shards (PREFIX-*) exist, unless `overwrite`: then they go."""
    _refuse_existing(prefix, prefix + "-*", "prefix", overwrite=overwrite)


def refuse_existing_directory(path: str, *, overwrite: bool) -> None:
    """Refuses an output directory that holds files, unless `overwrite`: then they go."""
    _refuse_existing(path, posixpath.join(path, "**"), "directory", overwrite=overwrite)


def _refuse_existing(output: str, pattern: str, what: str, *, overwrite: bool) -> None:
    existing = [m.path for m in FileSystems.match([as_glob(pattern)])[0].metadata_list]
    if existing and not overwrite:
        raise OutputError(f"output {output} already holds {len(existing)} file(s), e.g. "
                          f"{existing[0]}; choose another {what} or pass --overwrite")
    if existing:
        FileSystems.delete(existing)
