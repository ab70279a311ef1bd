"""What every job's pipeline shares: Beam options, reading validated batches, writing record
batches, the dead-letter output, and running to the end with balanced counts."""

from __future__ import annotations

import glob
import os
import posixpath
import shutil
from typing import Sequence

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import ReadFromParquetBatched, WriteToParquetBatched
from apache_beam.options.pipeline_options import PipelineOptions

from aepipe.beam.counters import REJECTED, read_counters
from aepipe.beam.validate import InputSummary, ValidateBatches, find_unreadable
from aepipe.errors import AepipeError
from aepipe.io.files import as_glob, parquet_file, refuse_existing_output
from aepipe.table.rows import as_table, rejected_schema
from aepipe.table.schema import Schema

__all__ = ["pipeline_options", "read_validated", "read_and_validate", "WriteRecordBatches",
           "default_rejected", "prepare_rejected", "run_and_count"]


def pipeline_options(beam_args: Sequence[str]) -> PipelineOptions:
    """Beam's options from the arguments the job did not take (DirectRunner by default).

    They also become the file systems' options for the launcher's own reads and writes (model
    directory, input footers, output checks): Beam's S3 file system works only with options, and
    reads its endpoint and credentials from them (`--s3_endpoint_url`, ...).
    """
    args = list(beam_args)
    if not any(a == "--runner" or a.startswith("--runner=") for a in args):
        args.append("--runner=DirectRunner")
    options = PipelineOptions(args)
    FileSystems.set_options(options)
    return options


def read_validated(pipeline: beam.Pipeline, summary: InputSummary, schema: Schema,
                   rejected_prefix: str):
    """Reads the checked input files, writes rejected rows, returns the valid batches."""
    valid, rejected = read_and_validate(pipeline, summary, schema)
    rejected | "WriteRejected" >> WriteRecordBatches(
        rejected_prefix, rejected_schema(summary.arrow_schema))
    return valid


def read_and_validate(pipeline: beam.Pipeline, summary: InputSummary, schema: Schema, *,
                      label: str = ""):
    """Reads the checked input files; returns the valid batches and the rejected rows.
    `label` names the steps when a pipeline reads more than one input."""
    batches = pipeline | f"Read{label}" >> ReadFromParquetBatched(
        summary.pattern, columns=list(summary.arrow_schema.names))
    return batches | f"Validate{label}" >> ValidateBatches(schema, summary.arrow_schema)


class WriteRecordBatches(beam.PTransform):
    """Writes record batches as PREFIX-SSSSS-of-NNNNN.parquet through Beam's file sink
    (temporary files, renamed when the job completes)."""

    def __init__(self, prefix: str, schema: pa.Schema, *, num_shards: int = 0):
        super().__init__()
        self._prefix, self._schema, self._num_shards = prefix, schema, num_shards

    def expand(self, batches):
        return (batches
                | "Tables" >> beam.Map(as_table)
                | "Write" >> WriteToParquetBatched(self._prefix, schema=self._schema,
                                                   file_name_suffix=".parquet",
                                                   num_shards=self._num_shards))


def default_rejected(output: str) -> str:
    """Where rejected rows go by default: a directory beside the output's own, never inside it,
    so that the output directory reads as one table (Feast, pandas, polars, DuckDB).

    `out/codes` gives `out-rejected/codes`; an output with no directory of its own (`codes`,
    `gs://bucket/codes`) gives `_rejected/codes` beside it, which those readers skip.
    """
    directory, name = posixpath.split(output.rstrip("/"))
    if directory in ("", "/", ".") or _is_bucket(directory):
        return posixpath.join(directory, "_rejected", name)
    return posixpath.join(directory.rstrip("/") + "-rejected", name)


def prepare_rejected(prefix: str, *, overwrite: bool) -> None:
    """Refuses a dead-letter prefix that already holds rejected rows, unless `overwrite`; shards
    with no rows, which a killed run can leave, hold nothing to lose and are removed."""
    if _shards(prefix) and not any(parquet_file(p).metadata.num_rows for p in _shards(prefix)):
        _remove_shards(prefix)
    refuse_existing_output(prefix, overwrite=overwrite)


def _is_bucket(path: str) -> bool:
    return "://" in path and "/" not in path.split("://", 1)[1].strip("/")


def run_and_count(pipeline: beam.Pipeline, inputs: InputSummary | None = None, *,
                  outputs: Sequence[str] = (), rejected: str | None = None) -> dict[str, int]:
    """Runs a pipeline to the end; returns and logs its row counters.

    If the job fails, the file sinks' temporary files for `outputs` and `rejected` (prefixes)
    are removed, and when it failed on something other than an AepipeError, the input files are
    read once more, row group by row group, to name the file a corrupt page is in. If it
    succeeds with no row rejected, the dead-letter output's empty shards are removed.
    """
    prefixes = [*outputs, *([rejected] if rejected else [])]
    try:
        result = pipeline.run()
        result.wait_until_finish()
    except Exception as error:
        _remove_temporary_files(prefixes)
        if inputs is not None and not isinstance(error, AepipeError):
            find_unreadable(inputs)
        raise
    counters = read_counters(result, reads_input=inputs is not None)
    if rejected and not counters.get(REJECTED):
        _remove_shards(rejected)
    return counters


def _shards(prefix: str) -> list[str]:
    """The shards a sink wrote at `prefix` (PREFIX-SSSSS-of-NNNNN...)."""
    return [m.path for m in FileSystems.match([as_glob(f"{prefix}-*-of-*")])[0].metadata_list]


def _remove_shards(prefix: str) -> None:
    """Deletes the shards a sink wrote at `prefix`, and their directory if it is left empty."""
    shards = _shards(prefix)
    if shards:
        FileSystems.delete(shards)
    directory = posixpath.dirname(prefix)
    if "://" not in prefix and directory and os.path.isdir(directory) \
            and not os.listdir(directory):
        os.rmdir(directory)


def _remove_temporary_files(prefixes: Sequence[str]) -> None:
    """Beam's file sinks write to beam-temp-<name>-<id> beside the prefix until they finish."""
    for prefix in prefixes:
        directory, name = posixpath.split(prefix)
        pattern = posixpath.join(directory or ".", f"beam-temp-{name}-*")
        if "://" not in prefix:
            for path in glob.glob(pattern):
                shutil.rmtree(path, ignore_errors=True)
            continue
        found = [m.path for m in FileSystems.match([pattern + "/**"])[0].metadata_list]
        if found:
            FileSystems.delete(found)
