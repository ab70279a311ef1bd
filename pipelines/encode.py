"""Encode Parquet files with a trained model: codes and reconstruction-error scores.

    aepipe encode --input PATTERN --model-dir DIR --output PREFIX [--flag-above PCT] [Beam options]

Writes PREFIX-SSSSS-of-NNNNN.parquet with the key, timestamp and passthrough columns, then
ae_0 … ae_{k-1} and ae_score; rows a model cannot use go to the dead-letter output.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Sequence

from aepipe.options import EncodeOptions
from pipelines.arguments import (add_options, model_run_arguments, model_run_flags,
                                 options_from)

# Beam and TensorFlow are imported where the job runs, not here: `--help` and argument errors
# answer without them.

TAKES_BEAM_OPTIONS = True
RENAMED: dict[str, str] = {}
_LOG = logging.getLogger("aepipe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    model_run_flags(parser, rejected_example="out/codes -> out-rejected/codes")
    add_options(parser, EncodeOptions)


def run(args: argparse.Namespace, beam_args: Sequence[str]) -> dict[str, int]:
    return encode(options=options_from(args, EncodeOptions), beam_args=beam_args,
                  **model_run_arguments(args))


def encode(*, input_pattern: str, model_dir: str, output: str,
           options: EncodeOptions = EncodeOptions(), beam_args: Sequence[str] = (),
           num_shards: int = 0, rejected: str | None = None, overwrite: bool = False,
           verify: bool = True, trust_model: bool = False) -> dict[str, int]:
    """Builds and runs the encode pipeline; returns the row counters. `trust_model` skips the
    check of the model's ops (see aepipe.store.trust)."""
    import apache_beam as beam

    from aepipe.beam.encode import Encode
    from aepipe.beam.io import (WriteRecordBatches, default_rejected, pipeline_options,
                                prepare_rejected, read_validated, run_and_count)
    from aepipe.beam.validate import check_inputs
    from aepipe.io.files import refuse_existing_output
    from aepipe.store.reader import ModelDirectory

    beam_options = pipeline_options(beam_args)
    model = ModelDirectory(model_dir, verify_files=verify, trust_model=trust_model)
    model.require_code("encode")
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
    from pipelines.launcher import run_job

    return run_job("pipelines.encode", argv)


if __name__ == "__main__":
    sys.exit(main())
