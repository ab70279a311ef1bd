"""Evaluate synthetic rows against the real rows they imitate: quality, ML efficacy, privacy.

    aepipe evaluate --real PATTERN --synthetic PATTERN --output REPORT_DIR [--model-dir DIR]
                    [--schema SCHEMA.yaml] [--holdout PATTERN] [--target COLUMN]
                    [--max-rows N] [--seed S] [--overwrite]

Writes REPORT_DIR/report.json, REPORT_DIR/report.html and REPORT_DIR/plots/*.png; the figures
have SDMetrics' definitions. See aepipe.evaluation.evaluate for what is read and how.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from aepipe.options import EvaluateOptions
from pipelines.arguments import OVERWRITE, add_flags, add_options, options_from

# pandas, scikit-learn, matplotlib, Beam's file systems and TensorFlow are imported where the
# job runs, not here: `--help` and argument errors answer without them.

TAKES_BEAM_OPTIONS = False
RENAMED: dict[str, str] = {}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--synthetic", required=True, help="the synthetic Parquet files")
    parser.add_argument("--output", required=True, help="the report directory")
    parser.add_argument("--model-dir", default=None,
                        help="the model directory: its schema, and its facts in the report")
    parser.add_argument("--schema", default=None,
                        help="a schema file (instead of the model's or a guessed one)")
    add_options(parser, EvaluateOptions)
    add_flags(parser, OVERWRITE)


def run(args: argparse.Namespace, beam_args: Sequence[str]) -> dict[str, Any]:
    from aepipe.beam.io import pipeline_options
    from aepipe.evaluation.evaluate import evaluate

    pipeline_options(())  # the file systems' options: s3:// paths need them
    return evaluate(synthetic=args.synthetic, output=args.output,
                    options=options_from(args, EvaluateOptions), model_dir=args.model_dir,
                    schema=args.schema, overwrite=args.overwrite)


def main(argv: Sequence[str] | None = None) -> int:
    from pipelines.launcher import run_job

    return run_job("pipelines.evaluate", argv)


if __name__ == "__main__":
    sys.exit(main())
