"""Sample synthetic records with the training data's schema from a trained model.

    aepipe sample --model-dir DIR --num-rows N --seed S --output PREFIX [--shards K]
                  [--key-prefix P] [Beam options]

Writes PREFIX-SSSSS-of-NNNNN.parquet. The same model, N and seed give the same rows whatever
the runner, the number of shards or of workers.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import TYPE_CHECKING, Sequence

from pipelines.arguments import add_no_verify, add_overwrite, add_trust_model

if TYPE_CHECKING:
    from aepipe.sample import BlockSampler
# Beam and TensorFlow are imported where the job runs, not here: `--help` and argument errors
# answer without them.

_LOG = logging.getLogger("aepipe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", required=True, help="a model directory from aepipe train")
    parser.add_argument("--num-rows", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--output", required=True, help="prefix of the output Parquet shards")
    parser.add_argument("--shards", type=int, default=0,
                        help="output shards (0: let the runner decide)")
    parser.add_argument("--key-prefix", default="syn-",
                        help="prefix of the fresh values of string key columns (default "
                             "syn-); they are zero-padded to be longer than any training key")
    parser.add_argument("--min-distance", type=float, default=0.0,
                        help="drop synthetic rows closer than this to a --reference row "
                             "(Euclidean, in the model's input space)")
    parser.add_argument("--reference", default=None,
                        help="the training Parquet files, for --min-distance")
    add_overwrite(parser)
    add_no_verify(parser)
    add_trust_model(parser)


def run(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    return sample(model_dir=args.model_dir, num_rows=args.num_rows, seed=args.seed,
                  output=args.output, shards=args.shards, key_prefix=args.key_prefix,
                  min_distance=args.min_distance, reference=args.reference,
                  beam_args=beam_args, overwrite=args.overwrite,
                  verify=not args.no_verify, trust_model=args.trust_model)


def sample(*, model_dir: str, num_rows: int, seed: int, output: str, shards: int = 0,
           key_prefix: str = "syn-", min_distance: float = 0.0, reference: str | None = None,
           beam_args: Sequence[str] = (), overwrite: bool = False, verify: bool = True,
           trust_model: bool = False) -> int:
    """Builds and runs the sampling pipeline; returns the number of rows written.
    `trust_model` skips the check of the model's ops (see aepipe.trust)."""
    import apache_beam as beam

    from aepipe.fileio import refuse_existing_output
    from aepipe.model_dir import ModelDirectory
    from aepipe.sample import BlockSampler, Sample
    from pipelines.common import WriteRecordBatches, pipeline_options, run_and_count

    beam_options = pipeline_options(beam_args)
    model = ModelDirectory(model_dir, verify_files=verify, trust_model=trust_model)
    sampler = BlockSampler(model, num_rows=num_rows, seed=seed, key_prefix=key_prefix)
    refuse_existing_output(output, overwrite=overwrite)
    if num_rows == 0:
        _write_empty(output, sampler)
        return 0
    _LOG.info("sampling %d rows from %s (seed %d)", num_rows, model_dir, seed)
    started = time.perf_counter()
    pipeline = beam.Pipeline(options=beam_options)
    transform = Sample(model_dir, num_rows=num_rows, seed=seed, key_prefix=key_prefix,
                       min_distance=min_distance, reference=reference,
                       trust_model=trust_model)
    (pipeline
     | "Sample" >> transform
     | "Write" >> WriteRecordBatches(output, transform.output_schema, num_shards=shards))
    counters = run_and_count(pipeline, outputs=(output,))
    written = counters.get("rows_written", 0)
    if min_distance:
        _LOG.info("dropped %d synthetic rows closer than %g to a reference row",
                  counters.get("rows_dropped_too_close", 0), min_distance)
    _LOG.info("sampled %d rows in %.1f s: %s-*.parquet", written, time.perf_counter() - started,
              output)
    return written


def _write_empty(output: str, sampler: BlockSampler) -> None:
    """No rows still gives one correctly typed file, as a job downstream expects."""
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    path = f"{output}-00000-of-00001.parquet"
    with FileSystems.create(path) as f:
        pq.write_table(sampler.output_schema.empty_table(), f)
    _LOG.info("wrote an empty sample: %s", path)


def main(argv: Sequence[str] | None = None) -> int:
    from aepipe.cli import run_job

    return run_job("pipelines.sample", argv)


if __name__ == "__main__":
    sys.exit(main())
