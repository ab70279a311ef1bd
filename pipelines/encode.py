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
from typing import TYPE_CHECKING, Sequence

from pipelines.arguments import add_model_job, passthrough

if TYPE_CHECKING:
    from aepipe.encode import EncodeOptions
# Beam and TensorFlow are imported where the job runs, not here: `--help` and argument errors
# answer without them.

_LOG = logging.getLogger("aepipe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_job(parser, rejected_example="out/codes -> out-rejected/codes")
    parser.add_argument("--code-as-list", action="store_true",
                        help="one fixed_size_list<float32> column ae_code instead of ae_0…")
    parser.add_argument("--flag-above", type=float, default=None, metavar="PERCENTILE",
                        help="add ae_anomaly: ae_score above this percentile of training's")


def run(args: argparse.Namespace, beam_args: Sequence[str]) -> dict[str, int]:
    from aepipe.encode import EncodeOptions

    options = EncodeOptions(
        passthrough=passthrough(args),
        code_as_list=args.code_as_list, flag_above=args.flag_above)
    return encode(input_pattern=args.input, model_dir=args.model_dir, output=args.output,
                  options=options, beam_args=beam_args, num_shards=args.num_shards,
                  rejected=args.rejected, overwrite=args.overwrite,
                  verify=not args.no_verify, trust_model=args.trust_model)


def encode(*, input_pattern: str, model_dir: str, output: str,
           options: EncodeOptions | None = None, beam_args: Sequence[str] = (),
           num_shards: int = 0, rejected: str | None = None, overwrite: bool = False,
           verify: bool = True, trust_model: bool = False) -> dict[str, int]:
    """Builds and runs the encode pipeline; returns the row counters. `trust_model` skips the
    check of the model's ops (see aepipe.trust)."""
    import apache_beam as beam

    from aepipe.encode import Encode, EncodeOptions
    from aepipe.fileio import refuse_existing_output
    from aepipe.model_dir import ModelDirectory
    from aepipe.validate import check_inputs
    from pipelines.common import (WriteRecordBatches, default_rejected, pipeline_options,
                                  prepare_rejected, read_validated, run_and_count)

    options = EncodeOptions() if options is None else options
    beam_options = pipeline_options(beam_args)
    model = ModelDirectory(model_dir, verify_files=verify, trust_model=trust_model)
    summary = check_inputs(input_pattern, model.schema, extra_columns=options.passthrough)
    rejected = rejected or default_rejected(output)
    refuse_existing_output(output, overwrite=overwrite)
    prepare_rejected(rejected, overwrite=overwrite)
    _LOG.info("encoding %s: %d file(s), %d rows, code size %d", input_pattern,
              len(summary.files), summary.num_rows, model.code_size)
    started = time.perf_counter()
    pipeline = beam.Pipeline(options=beam_options)
    valid = read_validated(pipeline, summary, model.schema, rejected)
    encoder = Encode(model_dir, summary.arrow_schema, options=options, trust_model=trust_model)
    (valid
     | "Encode" >> encoder
     | "Write" >> WriteRecordBatches(output, encoder.output_schema, num_shards=num_shards))
    counters = run_and_count(pipeline, summary, outputs=(output,), rejected=rejected)
    _LOG.info("encode finished in %.1f s: %s-*.parquet", time.perf_counter() - started, output)
    return counters


def main(argv: Sequence[str] | None = None) -> int:
    from aepipe.cli import run_job

    return run_job("pipelines.encode", argv)


if __name__ == "__main__":
    sys.exit(main())
