"""Encode Parquet files with a trained model: codes and reconstruction-error scores.

    aepipe encode --input PATTERN --model-dir DIR --output PREFIX [--flag-above PCT] [Beam options]

Writes PREFIX-SSSSS-of-NNNNN.parquet with the key, timestamp and passthrough columns, then
ae_0 … ae_{k-1} and ae_score; rows a model cannot use go to PREFIX-rejected-*.parquet.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Sequence

import apache_beam as beam

from aepipe.encode import Encode, EncodeOptions
from aepipe.fileio import refuse_existing_output
from aepipe.model_dir import ModelDirectory
from aepipe.validate import check_inputs
from pipelines.common import (WriteRecordBatches, add_no_verify, add_overwrite,
                              pipeline_options, read_validated, run_and_count)

_LOG = logging.getLogger("aepipe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="Parquet files: a glob or a directory")
    parser.add_argument("--model-dir", required=True, help="a model directory from aepipe train")
    parser.add_argument("--output", required=True, help="prefix of the output Parquet shards")
    parser.add_argument("--passthrough", default="",
                        help="more input columns to copy to the output, comma-separated")
    parser.add_argument("--code-as-list", action="store_true",
                        help="one fixed_size_list<float32> column ae_code instead of ae_0…")
    parser.add_argument("--flag-above", type=float, default=None, metavar="PERCENTILE",
                        help="add ae_anomaly: ae_score above this percentile of training's")
    parser.add_argument("--num-shards", type=int, default=0,
                        help="output shards (0: let the runner decide)")
    add_overwrite(parser)
    add_no_verify(parser)


def run(args: argparse.Namespace, beam_args: Sequence[str]) -> dict[str, int]:
    options = EncodeOptions(
        passthrough=tuple(n.strip() for n in args.passthrough.split(",") if n.strip()),
        code_as_list=args.code_as_list, flag_above=args.flag_above)
    return encode(input_pattern=args.input, model_dir=args.model_dir, output=args.output,
                  options=options, beam_args=beam_args, num_shards=args.num_shards,
                  overwrite=args.overwrite, verify=not args.no_verify)


def encode(*, input_pattern: str, model_dir: str, output: str,
           options: EncodeOptions = EncodeOptions(), beam_args: Sequence[str] = (),
           num_shards: int = 0, overwrite: bool = False, verify: bool = True
           ) -> dict[str, int]:
    """Builds and runs the encode pipeline; returns the row counters."""
    model = ModelDirectory(model_dir, verify_files=verify)
    summary = check_inputs(input_pattern, model.schema)
    refuse_existing_output(output, overwrite=overwrite)
    _LOG.info("encoding %s: %d file(s), %d rows, code size %d", input_pattern,
              len(summary.files), summary.num_rows, model.code_size)
    started = time.perf_counter()
    pipeline = beam.Pipeline(options=pipeline_options(beam_args))
    valid = read_validated(pipeline, summary, model.schema, output + "-rejected")
    encoder = Encode(model_dir, summary.arrow_schema, options=options)
    (valid
     | "Encode" >> encoder
     | "Write" >> WriteRecordBatches(output, encoder.output_schema, num_shards=num_shards))
    counters = run_and_count(pipeline, summary, outputs=(output, output + "-rejected"))
    _LOG.info("encode finished in %.1f s: %s-*.parquet", time.perf_counter() - started, output)
    return counters


def main(argv: Sequence[str] | None = None) -> int:
    from aepipe.cli import run_job

    return run_job("pipelines.encode", argv)


if __name__ == "__main__":
    sys.exit(main())
