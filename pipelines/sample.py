"""Sample synthetic records with the training data's schema from a trained model.

    aepipe sample --model-dir DIR (--num-rows N | --conditions FILES) --seed S --output PREFIX
                  [--num-shards K] [--key-prefix P] [Beam options]

Writes PREFIX-SSSSS-of-NNNNN.parquet. The same model, N (or conditions) and seed give the same
rows whatever the runner, the number of shards or of workers.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Sequence

from aepipe.options import SampleOptions
from pipelines.arguments import (MODEL_DIR, NO_VERIFY, NUM_SHARDS, OUTPUT, OVERWRITE,
                                 TRUST_MODEL, add_flags, add_options, options_from)

# Beam and TensorFlow are imported where the job runs, not here: `--help` and argument errors
# answer without them.

TAKES_BEAM_OPTIONS = True
RENAMED = {"--shards": "--num-shards", "--reference": "--real"}
_LOG = logging.getLogger("aepipe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, MODEL_DIR, OUTPUT, NUM_SHARDS)
    add_options(parser, SampleOptions)
    add_flags(parser, OVERWRITE, NO_VERIFY, TRUST_MODEL)


def run(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    return sample(model_dir=args.model_dir, options=options_from(args, SampleOptions),
                  output=args.output, num_shards=args.num_shards, beam_args=beam_args,
                  overwrite=args.overwrite, verify=not args.no_verify,
                  trust_model=args.trust_model)


def sample(*, model_dir: str, options: SampleOptions, output: str, num_shards: int = 0,
           beam_args: Sequence[str] = (), overwrite: bool = False, verify: bool = True,
           trust_model: bool = False) -> int:
    """Builds and runs the sampling pipeline; returns the number of rows written.
    `trust_model` skips the check of the model's ops (see aepipe.store.trust)."""
    import apache_beam as beam

    from aepipe.beam.counters import DROPPED, WRITTEN
    from aepipe.beam.io import WriteRecordBatches, pipeline_options, run_and_count
    from aepipe.beam.sample import Sample
    from aepipe.io.files import refuse_existing_output
    from aepipe.store.reader import ModelDirectory

    beam_options = pipeline_options(beam_args)
    ModelDirectory(model_dir, verify_files=verify, trust_model=trust_model)
    transform = Sample(model_dir, options, trust_model=trust_model)
    refuse_existing_output(output, overwrite=overwrite)
    if transform.num_rows == 0:
        _write_empty(output, transform.output_schema)
        return 0
    _LOG.info("sampling %d rows from %s (seed %d)%s", transform.num_rows, model_dir,
              options.seed, f" given {options.conditions}" if options.conditions else "")
    started = time.perf_counter()
    pipeline = beam.Pipeline(options=beam_options)
    (pipeline
     | "Sample" >> transform
     | "Write" >> WriteRecordBatches(output, transform.output_schema, num_shards=num_shards))
    counters = run_and_count(pipeline, outputs=(output,))
    written = counters.get(WRITTEN, 0)
    if options.min_distance:
        _LOG.info("dropped %d synthetic rows closer than %g to a training row",
                  counters.get(DROPPED, 0), options.min_distance)
    _LOG.info("sampled %d rows in %.1f s: %s-*.parquet", written, time.perf_counter() - started,
              output)
    return written


def _write_empty(output: str, schema) -> None:
    """No rows still gives one correctly typed file, as a job downstream expects."""
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    path = f"{output}-00000-of-00001.parquet"
    with FileSystems.create(path) as f:
        pq.write_table(schema.empty_table(), f)
    _LOG.info("wrote an empty sample: %s", path)


def main(argv: Sequence[str] | None = None) -> int:
    from pipelines.launcher import run_job

    return run_job("pipelines.sample", argv)


if __name__ == "__main__":
    sys.exit(main())
