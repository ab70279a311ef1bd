"""Paths and files through Beam's file-system API, so local paths and gs:// behave alike."""

from __future__ import annotations

import os
import posixpath
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from aepipe.errors import InputError, OutputError

__all__ = ["as_glob", "match", "read_text", "write_text", "parquet_file",
           "refuse_existing_output", "refuse_existing_directory"]


def as_glob(pattern: str) -> str:
    """A directory stands for the files directly in it."""
    if _is_directory(pattern):
        return FileSystems.join(pattern.rstrip("/"), "*")
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
    return "://" not in path and os.path.isdir(path)


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



def refuse_existing_output(prefix: str, *, overwrite: bool) -> None:
    """Refuses an output prefix whose shards (PREFIX-*) exist, unless `overwrite`: then they go."""
    _refuse_existing(prefix, prefix + "-*", "prefix", overwrite=overwrite)


def refuse_existing_directory(path: str, *, overwrite: bool) -> None:
    """Refuses an output directory that holds files, unless `overwrite`: then they go."""
    _refuse_existing(path, posixpath.join(path, "**"), "directory", overwrite=overwrite)


def _refuse_existing(output: str, pattern: str, what: str, *, overwrite: bool) -> None:
    existing = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    if existing and not overwrite:
        raise OutputError(f"output {output} already holds {len(existing)} file(s), e.g. "
                          f"{existing[0]}; choose another {what} or pass --overwrite")
    if existing:
        FileSystems.delete(existing)
