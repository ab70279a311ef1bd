"""Run the whole aepipe flow on the embedded Adult census dataset.

    aepipe demo [--workdir DIR] [Beam options]

Splits Adult 80/20 (fixed seed), trains on the 80%, encodes the held-out 20%, samples as many
synthetic rows as there are training rows, reports the reconstruction quality on the held-out
rows and real against synthetic distributions for a few columns, and writes the evaluation
report of the synthetic rows (quality, ML efficacy on `income`, privacy; HTML with plots).

Then recommendations: on a generated interactions table (one row per user: a segment, a visit
count and the set of items they picked, from a seeded model of tastes; see
`aepipe.datasets.interactions`), it trains on 80% of the users, hides a fifth of each other
user's items, recommends 10 items from the rest and reports how many hidden items the
recommendations find, against recommending the most popular items.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aepipe import datasets
from aepipe.options import EvaluateOptions, ModelOptions, RecommendOptions, SampleOptions
from aepipe.table.schema import Schema
from pipelines.train import train

TAKES_BEAM_OPTIONS = True
RENAMED: dict[str, str] = {}
_LOG = logging.getLogger("aepipe")
HOLDOUT_FRACTION = 0.2
SHOWN_COLUMNS = ("age", "workclass", "education", "hours_per_week", "income")
SPLIT_SEED = 0
TARGET = "income"
USERS, RECOMMENDED = 3000, 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default="aepipe-demo",
                        help="where the demo writes its data, model and outputs")


def split_adult(workdir: str) -> tuple[str, str]:
    """Writes Adult's training (80%) and held-out (20%) rows, chosen with a fixed seed."""
    table = pq.read_table(datasets.adult_parquet())
    holdout = np.random.default_rng(SPLIT_SEED).random(table.num_rows) < HOLDOUT_FRACTION
    paths = []
    for name, mask in (("train", ~holdout), ("holdout", holdout)):
        os.makedirs(os.path.join(workdir, name), exist_ok=True)
        path = os.path.join(workdir, name, "adult.parquet")
        pq.write_table(table.filter(pa.array(mask)), path)
        paths.append(path)
    return paths[0], paths[1]


def run(args: argparse.Namespace, beam_args: Sequence[str]) -> None:
    from aepipe.evaluation.evaluate import evaluate
    from aepipe.evaluation.reconstruction import reconstruction_quality
    from aepipe.store.reader import ModelDirectory
    from pipelines.encode import encode
    from pipelines.sample import sample

    train_path, holdout_path = split_adult(args.workdir)
    model_dir = train(input_pattern=train_path, schema=Schema.load(datasets.adult_schema()),
                      model_dir=os.path.join(args.workdir, "model"), options=ModelOptions(),
                      beam_args=beam_args, overwrite=True)
    encoded_prefix = os.path.join(args.workdir, "encoded", "adult")
    encoded = encode(input_pattern=holdout_path, model_dir=model_dir, output=encoded_prefix,
                     beam_args=beam_args, overwrite=True)
    real = pq.read_table(train_path)
    synthetic_prefix = os.path.join(args.workdir, "synthetic", "adult")
    sampled = sample(model_dir=model_dir, options=SampleOptions(num_rows=real.num_rows,
                                                                seed=SPLIT_SEED),
                     output=synthetic_prefix, beam_args=beam_args, overwrite=True)
    model = ModelDirectory(model_dir)
    quality = reconstruction_quality(
        model, pq.read_table(holdout_path).to_batches(max_chunksize=8192))
    run = model.manifest.training
    _LOG.info("model: %s (code size %d, best at step %d of %d, validation loss %.4f)",
              os.path.abspath(model_dir), model.code_size, run.best_step, run.steps,
              run.validation_loss)
    _LOG.info("held-out reconstruction: %s", json.dumps(
        {k: round(v, 4) for k, v in quality["by_kind"].items()}))
    _LOG.info("outputs: %d training rows, %d encoded rows (%s), %d synthetic rows (%s)",
              real.num_rows, encoded["rows_written"], os.path.dirname(encoded_prefix),
              sampled, os.path.dirname(synthetic_prefix))
    synthetic = pq.read_table(os.path.dirname(synthetic_prefix))
    for column in SHOWN_COLUMNS:
        _LOG.info("%s", side_by_side(real.column(column), synthetic.column(column), column))
    report_dir = os.path.join(args.workdir, "report")
    evaluate(synthetic=os.path.dirname(synthetic_prefix), output=report_dir,
             options=EvaluateOptions(real=train_path, holdout=holdout_path, target=TARGET,
                                     seed=SPLIT_SEED),
             model_dir=model_dir, overwrite=True)
    _LOG.info("evaluation report: %s", os.path.abspath(os.path.join(report_dir, "report.html")))
    recommend_demo(os.path.join(args.workdir, "interactions"), beam_args)


def split_interactions(workdir: str) -> tuple[str, str, list[set]]:
    """Writes the generated interactions of 80% of the users, and of the others with a fifth
    of each one's items hidden (chosen with a fixed seed); returns the hidden items too."""
    table = datasets.interactions(USERS, seed=SPLIT_SEED)
    rng = np.random.default_rng(SPLIT_SEED)
    held_out = rng.random(table.num_rows) < HOLDOUT_FRACTION
    shown, hidden = [], []
    for items in table.filter(pa.array(held_out)).column("items").to_pylist():
        order = rng.permutation(len(items))
        cut = max(1, len(items) // 5)
        hidden.append({items[i] for i in order[:cut]})
        shown.append([items[i] for i in order[cut:]])
    fold_in = table.filter(pa.array(held_out)).set_column(
        3, "items", pa.array(shown, pa.list_(pa.string())))
    paths = [os.path.join(workdir, name, "users.parquet") for name in ("train", "fold-in")]
    for path, part in zip(paths, (table.filter(pa.array(~held_out)), fold_in)):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        pq.write_table(part, path)
    return paths[0], paths[1], hidden


def recommend_demo(workdir: str, beam_args: Sequence[str]) -> None:
    """Trains on generated interactions and recommends for held-out users (see the module)."""
    from pipelines.recommend import recommend

    train_path, fold_in_path, hidden = split_interactions(workdir)
    model_dir = train(input_pattern=train_path,
                      schema=Schema.load(datasets.interactions_schema()),
                      model_dir=os.path.join(workdir, "model"), options=ModelOptions(),
                      beam_args=beam_args, overwrite=True)
    output = os.path.join(workdir, "recommended", "users")
    recommend(input_pattern=fold_in_path, model_dir=model_dir, output=output,
              options=RecommendOptions(top_k=RECOMMENDED, exclude_seen=True),
              beam_args=beam_args, overwrite=True)
    recommended = pq.read_table(os.path.dirname(output)).to_pydict()
    users = pq.read_table(fold_in_path).to_pydict()
    seen = dict(zip(users["user_id"], map(set, users["items"])))
    hidden = dict(zip(users["user_id"], hidden))
    popular = _most_popular(pq.read_table(train_path).column("items"), RECOMMENDED * 4)
    found, found_popular = [], []
    for user, items in zip(recommended["user_id"], recommended["ae_items"]):
        baseline = [item for item in popular if item not in seen[user]][:RECOMMENDED]
        found.append(len(hidden[user] & set(items)) / len(hidden[user]))
        found_popular.append(len(hidden[user] & set(baseline)) / len(hidden[user]))
    _LOG.info("recommendations for %d held-out users (%s): %d each, finding %.1f%% of a "
              "user's hidden items on average (the %d most popular unseen items: %.1f%%); "
              "user %d: %s, ...", len(found), os.path.dirname(output), RECOMMENDED,
              100 * np.mean(found), RECOMMENDED, 100 * np.mean(found_popular),
              recommended["user_id"][0], ", ".join(recommended["ae_items"][0][:5]))


def _most_popular(sets: pa.ChunkedArray, count: int) -> list[str]:
    counts = pc.value_counts(pc.list_flatten(sets)).to_pylist()
    return [c["values"] for c in sorted(counts, key=lambda c: -c["counts"])[:count]]


def side_by_side(real: pa.ChunkedArray, synthetic: pa.ChunkedArray, name: str) -> str:
    """A few lines comparing a column's real and synthetic distributions."""
    lines = [f"{name:<18} {'real':>12} {'synthetic':>12}"]
    if pa.types.is_integer(real.type) or pa.types.is_floating(real.type):
        for label, q in (("p10", 10), ("median", 50), ("p90", 90)):
            lines.append(f"  {label:<16} {np.percentile(real.drop_null(), q):>12,.1f} "
                         f"{np.percentile(synthetic.drop_null(), q):>12,.1f}")
        lines.append(f"  {'mean':<16} {pc.mean(real).as_py():>12,.1f} "
                     f"{pc.mean(synthetic).as_py():>12,.1f}")
        return "\n".join(lines)
    real_share, synthetic_share = _shares(real), _shares(synthetic)
    for value in sorted(real_share, key=real_share.get, reverse=True)[:5]:
        lines.append(f"  {str(value)[:16]:<16} {real_share[value]:>12.1%} "
                     f"{synthetic_share.get(value, 0.0):>12.1%}")
    return "\n".join(lines)


def _shares(column: pa.ChunkedArray) -> dict:
    counts = pc.value_counts(column).to_pylist()
    return {c["values"] if c["values"] is not None else "(null)": c["counts"] / len(column)
            for c in counts}


def main(argv: Sequence[str] | None = None) -> int:
    from pipelines.launcher import run_job

    return run_job("pipelines.demo", argv)


if __name__ == "__main__":
    sys.exit(main())
