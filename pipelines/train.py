"""Train an autoencoder on a Parquet dataset and publish a model directory.

    aepipe train --input PATTERN --schema SCHEMA.yaml --model-dir DIR [model options] [Beam options]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from typing import Sequence

from aepipe.options import ModelOptions
from pipelines.arguments import INPUT, OVERWRITE, REJECTED, add_flags, add_options, options_from

# Beam and TensorFlow are imported where the job runs, not here: `--help` and argument errors
# answer without them.

TAKES_BEAM_OPTIONS = True
RENAMED = {"--top-k": "--vocabulary-size", "--item-top-k": "--item-vocabulary-size"}
_LOG = logging.getLogger("aepipe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, INPUT)
    parser.add_argument("--schema", required=True, help="schema YAML (see aepipe infer-schema)")
    parser.add_argument("--model-dir", required=True, help="where the model directory goes")
    parser.add_argument("--validation-input", default=None, metavar="PATTERN",
                        help="Parquet files of the rows to validate on (default: "
                             "--validation-fraction of --input's rows, chosen by a hash)")
    REJECTED.add(parser, help=f"{REJECTED.help} (default: MODEL_DIR-rejected, beside the "
                              "model directory)")
    add_flags(parser, OVERWRITE)
    add_options(parser.add_argument_group("model"), ModelOptions)


def run(args: argparse.Namespace, beam_args: Sequence[str]) -> str:
    from aepipe.table.schema import Schema

    return train(input_pattern=args.input, schema=Schema.load(args.schema),
                 model_dir=args.model_dir, options=options_from(args, ModelOptions),
                 validation_pattern=args.validation_input, beam_args=beam_args,
                 rejected=args.rejected, overwrite=args.overwrite)


def train(*, input_pattern: str, schema, model_dir: str, options: ModelOptions,
          validation_pattern: str | None = None, beam_args: Sequence[str] = (),
          rejected: str | None = None, overwrite: bool = False) -> str:
    """Builds and runs the training pipeline; returns the published model directory."""
    import apache_beam as beam

    from aepipe.beam.io import (WriteRecordBatches, pipeline_options, prepare_rejected,
                                read_and_validate, run_and_count)
    from aepipe.beam.train import TrainAutoencoder
    from aepipe.beam.validate import check_inputs
    from aepipe.table.rows import rejected_schema

    beam_options = pipeline_options(beam_args)
    summary = check_inputs(input_pattern, schema)
    held_out = check_inputs(validation_pattern, schema) if validation_pattern else None
    _LOG.info("training on %s: %d file(s), %d rows%s", input_pattern, len(summary.files),
              summary.num_rows, f"; validating on {validation_pattern}: {held_out.num_rows} "
              "rows" if held_out else "")
    started = time.perf_counter()
    pipeline = beam.Pipeline(options=beam_options)
    rejected = rejected or model_dir.rstrip("/") + "-rejected"
    prepare_rejected(rejected, overwrite=overwrite)
    valid, invalid = read_and_validate(pipeline, summary, schema)
    if held_out is not None:  # read as the training rows' types, so that dead letters match
        held_out = dataclasses.replace(held_out, arrow_schema=summary.arrow_schema)
        validation, invalid_validation = read_and_validate(pipeline, held_out, schema,
                                                           label="Validation")
        valid = (valid, validation)
        invalid = (invalid, invalid_validation) | "Rejected" >> beam.Flatten()
    invalid | "WriteRejected" >> WriteRecordBatches(rejected,
                                                    rejected_schema(summary.arrow_schema))
    valid | TrainAutoencoder(schema=schema, model_dir=model_dir,
                             input_arrow_schema=summary.arrow_schema, options=options,
                             overwrite=overwrite)
    run_and_count(pipeline, summary, rejected=rejected)
    _LOG.info("training job finished in %.1f s: model in %s", time.perf_counter() - started,
              model_dir)
    return model_dir


def main(argv: Sequence[str] | None = None) -> int:
    from pipelines.launcher import run_job

    return run_job("pipelines.train", argv)


if __name__ == "__main__":
    sys.exit(main())
