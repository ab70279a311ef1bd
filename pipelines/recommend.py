"""Recommend items with a model trained on an item set column: each row's top k items.

    aepipe recommend --input PATTERN --model-dir DIR --output PREFIX [--top-k 20]
                     [--exclude-seen] [--column ITEMS] [Beam options]

Writes PREFIX-SSSSS-of-NNNNN.parquet with the key, timestamp and passthrough columns, then
ae_items (the k items, best first) and ae_item_scores (their probabilities); rows the model
cannot use, including rows none of whose items it knows, go to the dead-letter output.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Sequence

from aepipe.options import RecommendOptions
from pipelines.arguments import (add_options, model_run_arguments, model_run_flags,
                                 options_from)

TAKES_BEAM_OPTIONS = True
RENAMED: dict[str, str] = {}
_LOG = logging.getLogger("aepipe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    model_run_flags(parser, rejected_example="out/recs -> out-rejected/recs")
    add_options(parser, RecommendOptions)


def run(args: argparse.Namespace, beam_args: Sequence[str]) -> dict[str, int]:
    return recommend(options=options_from(args, RecommendOptions), beam_args=beam_args,
                     **model_run_arguments(args))


def recommend(*, input_pattern: str, model_dir: str, output: str,
              options: RecommendOptions = RecommendOptions(), beam_args: Sequence[str] = (),
              num_shards: int = 0, rejected: str | None = None, overwrite: bool = False,
              verify: bool = True, trust_model: bool = False) -> dict[str, int]:
    """Builds and runs the recommend pipeline; returns the row counters (and unseen_items)."""
    import apache_beam as beam

    from aepipe.beam.io import (WriteRecordBatches, default_rejected, pipeline_options,
                                prepare_rejected, read_and_validate, run_and_count)
    from aepipe.beam.recommend import Recommend, item_column
    from aepipe.beam.validate import check_inputs
    from aepipe.io.files import refuse_existing_output
    from aepipe.store.reader import ModelDirectory
    from aepipe.table.rows import rejected_schema

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
    from pipelines.launcher import run_job

    return run_job("pipelines.recommend", argv)


if __name__ == "__main__":
    sys.exit(main())
