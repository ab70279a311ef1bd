"""Train an autoencoder on a Parquet dataset and publish a model directory.

    aepipe train --input PATTERN --schema SCHEMA.yaml --model-dir DIR [model options] [Beam options]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Sequence

from aepipe.options import (ACTIVATIONS, ITEM_SET_SHAPE, MODELS, NUMERIC_TRANSFORMS, PRIORS,
                            TABLE_SHAPE, ModelOptions)
from aepipe.schema import Schema
from pipelines.arguments import add_overwrite, add_rejected

# Beam and TensorFlow are imported where the job runs, not here: `--help` and argument errors
# answer without them.

_LOG = logging.getLogger("aepipe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ModelOptions()
    parser.add_argument("--input", required=True, help="Parquet files: a glob or a directory")
    parser.add_argument("--schema", required=True, help="schema YAML (see aepipe infer-schema)")
    parser.add_argument("--model-dir", required=True, help="where the model directory goes")
    add_rejected(parser, "MODEL_DIR-rejected, beside the model directory")
    add_overwrite(parser)
    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=MODELS, default=defaults.model,
                       help="vae: variational autoencoder with a small KL weight; ae: plain "
                            "autoencoder; both sample from a Gaussian mixture fitted to codes")
    model.add_argument("--beta", type=float, default=None,
                       help="weight of the VAE's KL term (1 is the ELBO; default "
                            f"{TABLE_SHAPE['beta']}, {ITEM_SET_SHAPE['beta']} with item sets)")
    model.add_argument("--prior", choices=PRIORS, default=defaults.prior,
                       help="the density fitted to the codes that sampling draws from")
    model.add_argument("--prior-components", type=int, default=defaults.prior_components,
                       help="most components of the Gaussian mixture fitted to the codes")
    model.add_argument("--input-dropout", type=float, default=defaults.input_dropout,
                       help="dropout rate on the encoder's input while training (denoising)")
    model.add_argument("--numeric", choices=NUMERIC_TRANSFORMS, default=defaults.numeric,
                       help="how numeric columns are scaled: quantile (normal scores, keeps "
                            "skewed and zero-inflated shapes) or standard")
    model.add_argument("--code-size", type=int, default=None,
                       help=f"default {TABLE_SHAPE['code_size']}, "
                            f"{ITEM_SET_SHAPE['code_size']} with item sets")
    model.add_argument("--activation", choices=ACTIVATIONS, default=None,
                       help=f"of the hidden layers (default {TABLE_SHAPE['activation']}, "
                            f"{ITEM_SET_SHAPE['activation']} with item sets)")
    model.add_argument("--hidden", default=None,
                       help="hidden layer widths of the encoder, comma-separated (default "
                            f"{_widths(TABLE_SHAPE['hidden'])}, "
                            f"{_widths(ITEM_SET_SHAPE['hidden'])} with item sets)")
    model.add_argument("--steps", type=int, default=defaults.steps,
                       help="most optimisation steps (small tables get smaller batches and "
                            "more passes, so as many steps as large ones)")
    model.add_argument("--epochs", type=int, default=defaults.epochs,
                       help="most passes over the training rows (default: no cap)")
    model.add_argument("--batch-size", type=int, default=defaults.batch_size,
                       help="rows per step (fewer when a pass would have under 8 steps)")
    model.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    model.add_argument("--patience", type=int, default=defaults.patience,
                       help="validations without improvement before stopping (one per pass "
                            "or per 100 steps, whichever is more)")
    model.add_argument("--validation-fraction", type=float,
                       default=defaults.validation_fraction)
    model.add_argument("--seed", type=int, default=defaults.seed)
    model.add_argument("--top-k", type=int, default=defaults.top_k,
                       help="most frequent categories kept per categorical column")
    model.add_argument("--item-top-k", type=int, default=defaults.item_top_k,
                       help="most frequent items kept per item set column")
    model.add_argument("--item-dropout", type=float, default=defaults.item_dropout,
                       help="share of a set's items hidden from the encoder while training")


def _widths(hidden: tuple[int, ...]) -> str:
    return ",".join(map(str, hidden))


def model_options(args: argparse.Namespace) -> ModelOptions:
    hidden = (None if args.hidden is None
              else tuple(int(w) for w in args.hidden.split(",") if w.strip()))
    return ModelOptions(model=args.model, beta=args.beta, input_dropout=args.input_dropout,
                        numeric=args.numeric, code_size=args.code_size, hidden=hidden,
                        activation=args.activation,
                        steps=args.steps, epochs=args.epochs, batch_size=args.batch_size,
                        prior=args.prior, prior_components=args.prior_components,
                        learning_rate=args.learning_rate,
                        patience=args.patience, validation_fraction=args.validation_fraction,
                        seed=args.seed, top_k=args.top_k, item_top_k=args.item_top_k,
                        item_dropout=args.item_dropout)


def run(args: argparse.Namespace, beam_args: Sequence[str]) -> str:
    return train(input_pattern=args.input, schema=Schema.load(args.schema),
                 model_dir=args.model_dir, options=model_options(args), beam_args=beam_args,
                 rejected=args.rejected, overwrite=args.overwrite)


def train(*, input_pattern: str, schema: Schema, model_dir: str, options: ModelOptions,
          beam_args: Sequence[str] = (), rejected: str | None = None,
          overwrite: bool = False) -> str:
    """Builds and runs the training pipeline; returns the published model directory."""
    import apache_beam as beam

    from aepipe.train import TrainAutoencoder
    from aepipe.validate import check_inputs
    from pipelines.common import (pipeline_options, prepare_rejected, read_validated,
                                  run_and_count)

    beam_options = pipeline_options(beam_args)
    summary = check_inputs(input_pattern, schema)
    _LOG.info("training on %s: %d file(s), %d rows", input_pattern, len(summary.files),
              summary.num_rows)
    started = time.perf_counter()
    pipeline = beam.Pipeline(options=beam_options)
    rejected = rejected or model_dir.rstrip("/") + "-rejected"
    prepare_rejected(rejected, overwrite=overwrite)
    valid = read_validated(pipeline, summary, schema, rejected)
    valid | TrainAutoencoder(schema=schema, model_dir=model_dir,
                             input_arrow_schema=summary.arrow_schema, options=options,
                             overwrite=overwrite)
    run_and_count(pipeline, summary, rejected=rejected)
    _LOG.info("training job finished in %.1f s: model in %s", time.perf_counter() - started,
              model_dir)
    return model_dir


def main(argv: Sequence[str] | None = None) -> int:
    from aepipe.cli import run_job

    return run_job("pipelines.train", argv)


if __name__ == "__main__":
    sys.exit(main())
