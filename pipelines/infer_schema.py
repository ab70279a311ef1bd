"""Write a schema file guessed from Parquet files.

    aepipe infer-schema --input PATTERN --output SCHEMA.yaml [--sample-rows N]

Review the result: kinds are guesses (an integer code may be categorical, a string id a key).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from aepipe.errors import InputError, OptionsError
from aepipe.schema import Schema, infer_schema

_LOG = logging.getLogger("aepipe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="Parquet files: a glob or a directory")
    parser.add_argument("--output", required=True, help="the schema YAML to write")
    parser.add_argument("--sample-rows", type=int, default=100_000,
                        help="rows read to count nulls and distinct values")


def infer_from_files(pattern: str, *, sample_rows: int = 100_000) -> Schema:
    """A schema guessed from the first file's columns and a sample of up to `sample_rows` rows."""
    from aepipe import fileio  # imports Beam's file systems: not at the top, for a fast --help

    files = fileio.match(pattern)
    arrow_schema = fileio.parquet_file(files[0]).schema_arrow
    sample = _sample(files, arrow_schema, sample_rows)
    if sample.num_rows == 0:
        raise InputError(f"the input {pattern} holds no rows to infer a schema from")
    null_counts = {name: sample.column(name).null_count for name in sample.column_names}
    ratios = {name: _distinct_ratio(sample.column(name)) for name in sample.column_names}
    return infer_schema(arrow_schema, null_counts=null_counts, distinct_ratios=ratios)


def _sample(files: Sequence[str], arrow_schema: pa.Schema, rows: int) -> pa.Table:
    from aepipe import fileio

    tables, taken = [], 0
    for path in files:
        for batch in fileio.parquet_file(path).iter_batches(batch_size=min(rows, 65_536)):
            tables.append(pa.Table.from_batches([batch]).cast(arrow_schema))
            taken += batch.num_rows
            if taken >= rows:
                return pa.concat_tables(tables).slice(0, rows)
    return pa.concat_tables(tables) if tables else arrow_schema.empty_table()


def _distinct_ratio(column: pa.ChunkedArray) -> float:
    present = len(column) - column.null_count
    if present == 0 or pa.types.is_nested(column.type):
        return 0.0
    return len(pc.unique(column.drop_null())) / present


def run(args: argparse.Namespace, beam_args: Sequence[str]) -> Schema:
    if beam_args:
        raise OptionsError(f"aepipe infer-schema does not know {' '.join(beam_args)}")
    schema = infer_from_files(args.input, sample_rows=args.sample_rows)
    schema.save(args.output)
    _LOG.info("wrote %s: %s", args.output, ", ".join(
        f"{c.name} ({c.kind.value}{', nullable' if c.nullable else ''})" for c in schema.columns))
    return schema


def main(argv: Sequence[str] | None = None) -> int:
    from aepipe.cli import run_job

    return run_job("pipelines.infer_schema", argv)


if __name__ == "__main__":
    sys.exit(main())
