"""Write a schema file guessed from Parquet files.

    aepipe infer-schema --input PATTERN --output SCHEMA.yaml [--sample-rows N]

Review the result: kinds are guesses (an integer code may be categorical, a string id a key).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from aepipe.options import InferSchemaOptions
from pipelines.arguments import INPUT, add_flags, add_options, options_from

TAKES_BEAM_OPTIONS = False
RENAMED: dict[str, str] = {}
_LOG = logging.getLogger("aepipe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, INPUT)
    parser.add_argument("--output", required=True, help="the schema YAML to write")
    add_options(parser, InferSchemaOptions)


def run(args: argparse.Namespace, beam_args: Sequence[str]):
    from aepipe.table.inference import guess_from_files

    options = options_from(args, InferSchemaOptions)
    guess = guess_from_files(args.input, sample_rows=options.sample_rows)
    schema = guess.schema
    schema.save(args.output, comments=guess.notes)
    _LOG.info("wrote %s: %s", args.output, ", ".join(
        f"{c.name} ({c.kind.value}{', nullable' if c.nullable else ''})" for c in schema.columns))
    return schema


def main(argv: Sequence[str] | None = None) -> int:
    from pipelines.launcher import run_job

    return run_job("pipelines.infer_schema", argv)


if __name__ == "__main__":
    sys.exit(main())
