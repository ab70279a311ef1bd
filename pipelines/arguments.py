"""Argument definitions every job shares.

Imports nothing heavy: a job module's top level (its docstring and `add_arguments`) must load
without TensorFlow or Apache Beam, so that `--help` and argument errors answer at once.
"""

from __future__ import annotations

import argparse


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output instead of refusing")


def add_no_verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-verify", action="store_true",
                        help="load the model even if its files differ from the manifest's "
                             "SHA-256 digests")


def add_trust_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-model", action="store_true",
                        help="load the model even if its SavedModel holds ops aepipe's export "
                             "never produces (ops that may read or write files or run code); "
                             "only for a model whose source you trust")


def add_rejected(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--rejected", default=None, metavar="PREFIX",
                        help="prefix of the dead-letter Parquet output, written only when a "
                             f"row is rejected (default: {default})")


def add_model_job(parser: argparse.ArgumentParser, *, rejected_example: str) -> None:
    """The arguments of a job that runs a model over input rows (encode, recommend): input,
    model, output, passthrough columns, shards, dead letters and the model checks."""
    parser.add_argument("--input", required=True, help="Parquet files: a glob or a directory")
    parser.add_argument("--model-dir", required=True, help="a model directory from aepipe train")
    parser.add_argument("--output", required=True, help="prefix of the output Parquet shards")
    parser.add_argument("--passthrough", default="",
                        help="more input columns to copy to the output, comma-separated")
    parser.add_argument("--num-shards", type=int, default=0,
                        help="output shards (0: let the runner decide)")
    add_rejected(parser, f"beside the output's directory: {rejected_example}")
    add_overwrite(parser)
    add_no_verify(parser)
    add_trust_model(parser)


def passthrough(args: argparse.Namespace) -> tuple[str, ...]:
    """The --passthrough columns, in order."""
    return tuple(name.strip() for name in args.passthrough.split(",") if name.strip())
