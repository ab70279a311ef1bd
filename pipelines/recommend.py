"""Recommend items with a model trained on an item set column: each row's top k items.

    aepipe recommend --input PATTERN --model-dir DIR --output PREFIX [--top-k 20]
                     [--exclude-seen] [--column ITEMS] [Beam options]

Writes PREFIX-SSSSS-of-NNNNN.parquet with the key, timestamp and passthrough columns, then
ae_items (the k items, best first) and ae_item_scores (their probabilities); rows the model
cannot use, including rows none of whose items it knows, go to PREFIX-rejected-*.parquet.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import TYPE_CHECKING, Sequence

from pipelines.arguments import add_model_job, passthrough

if TYPE_CHECKING:
    from aepipe.recommend import RecommendOptions

_LOG = logging.getLogger("aepipe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_job(parser, rejected_example="out/recs -> out-rejected/recs")
    parser.add_argument("--top-k", type=int, default=20, help="items to recommend per row")
    parser.add_argument("--exclude-seen", action="store_true",
                        help="never recommend an item the row already holds")
    parser.add_argument("--column", default=None,
                        help="the item set column to recommend from (default: the only one)")


def run(args: argparse.Namespace, beam_args: Sequence[str]) -> dict[str, int]:
    from aepipe.recommend import RecommendOptions

    options = RecommendOptions(
        top_k=args.top_k, exclude_seen=args.exclude_seen, column=args.column,
        passthrough=passthrough(args))
    return recommend(input_pattern=args.input, model_dir=args.model_dir, output=args.output,
                     options=options, beam_args=beam_args, num_shards=args.num_shards,
                     rejected=args.rejected, overwrite=args.overwrite,
                     verify=not args.no_verify, trust_model=args.trust_model)


def recommend(*, input_pattern: str, model_dir: str, output: str,
              options: RecommendOptions | None = None, beam_args: Sequence[str] = (),
              num_shards: int = 0, rejected: str | None = None, overwrite: bool = False,
              verify: bool = True, trust_model: bool = False) -> dict[str, int]:
    """Builds and runs the recommend pipeline; returns the row counters (and unseen_items)."""
    import apache_beam as beam

    from aepipe.batches import rejected_schema
    from aepipe.fileio import refuse_existing_output
    from aepipe.model_dir import ModelDirectory
    from aepipe.recommend import Recommend, RecommendOptions, item_column
    from aepipe.validate import check_inputs
    from pipelines.common import (WriteRecordBatches, default_rejected, pipeline_options,
                                  prepare_rejected, read_and_validate, run_and_count)

    options = RecommendOptions() if options is None else options
    beam_options = pipeline_options(beam_args)
    model = ModelDirectory(model_dir, verify_files=verify, trust_model=trust_model)
    item_column(model, options)  # a model without item sets, or a wrong --column: refused now
    summary = check_inputs(input_pattern, model.schema, extra_columns=options.passthrough)
    recommender = Recommend(model_dir, summary.arrow_schema, options=options,
                            trust_model=trust_model)
    rejected = rejected or default_rejected(output)
    refuse_existing_output(output, overwrite=overwrite)
    prepare_rejected(rejected, overwrite=overwrite)
    _LOG.info("recommending the top %d items for %s: %d file(s), %d rows", options.top_k,
              input_pattern, len(summary.files), summary.num_rows)
    started = time.perf_counter()
    pipeline = beam.Pipeline(options=beam_options)
    valid, invalid = read_and_validate(pipeline, summary, model.schema)
    recommended, unusable = valid | "Recommend" >> recommender
    ((invalid, unusable)
     | "Rejected" >> beam.Flatten()
     | "WriteRejected" >> WriteRecordBatches(rejected, rejected_schema(summary.arrow_schema)))
    recommended | "Write" >> WriteRecordBatches(output, recommender.output_schema,
                                                num_shards=num_shards)
    counters = run_and_count(pipeline, summary, outputs=(output,), rejected=rejected)
    _LOG.info("recommend finished in %.1f s: %s-*.parquet", time.perf_counter() - started,
              output)
    return counters


def main(argv: Sequence[str] | None = None) -> int:
    from aepipe.cli import run_job

    return run_job("pipelines.recommend", argv)


if __name__ == "__main__":
    sys.exit(main())
