"""Synthetic data quality on Adult: aepipe against SDV's TVAE and GaussianCopula, in one run.

    .venv/bin/python benchmarks/synthetic_quality.py [--ours vae,ae] [--peers tvae,gaussian_copula]
                                                     [--tvae-epochs N] [--workdir DIR]

Splits Adult 80/20 with the demo's fixed seed, fits each synthesizer on the 80% with its default
options, samples as many rows as the training split, and runs the same evaluation
(`pipelines.evaluate`, SDMetrics' definitions) on every sample against the training rows, with
the 20% as held-out rows and `income` as the ML-efficacy target; SDMetrics' own Quality Report
score is printed beside ours as a cross-check. SDV runs in its own venv
(benchmarks/peers_env.py builds it on first use). Prints one table; each report (JSON and HTML)
stays under the work directory.

Fit seconds: aepipe's whole `train` job (validation, TFT analysis and transform, fit, export);
SDV's `fit()` (its preprocessing included). Sample rows/s: aepipe's whole `sample` job; SDV's
`sample()`.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys
import time
from pathlib import Path

from harness import ROOT

sys.path.insert(0, ROOT)

from aepipe.logs import quiet_startup  # noqa: E402

SEED = 0
TARGET = "income"
_LOG = logging.getLogger("benchmark")


def ours(name: str, options, train_path: str, rows: int, workdir: str) -> tuple[str, dict]:
    """Trains and samples aepipe with `options` (ModelOptions); returns the sample's pattern
    and the timings."""
    from aepipe import datasets
    from aepipe.schema import Schema
    from pipelines.sample import sample
    from pipelines.train import train

    model_dir = os.path.join(workdir, name, "model")
    started = time.perf_counter()
    train(input_pattern=train_path, schema=Schema.load(datasets.adult_schema()),
          model_dir=model_dir, options=options, overwrite=True)
    fitted = time.perf_counter()
    prefix = os.path.join(workdir, name, "synthetic")
    sample(model_dir=model_dir, num_rows=rows, seed=SEED, output=prefix, overwrite=True)
    sampled = time.perf_counter()
    return prefix + "-*.parquet", {"fit_seconds": fitted - started,
                                   "sample_seconds": sampled - fitted}


def peer(model: str, train_path: str, rows: int, workdir: str, epochs: int | None
         ) -> tuple[str, dict]:
    """Fits and samples one SDV synthesizer in the peer venv."""
    from peers_env import ensure_peer_env, run_peer

    os.makedirs(os.path.join(workdir, model), exist_ok=True)
    output = Path(workdir, model, "synthetic.parquet")
    timings = run_peer(ensure_peer_env(), model=model, train=Path(train_path), num_rows=rows,
                       seed=SEED, output=output, timings=Path(workdir, model, "timings.json"),
                       epochs=epochs)
    return str(output), timings


def evaluate(name: str, synthetic: str, train_path: str, holdout_path: str, workdir: str
             ) -> dict:
    """aepipe's evaluation of a sample, with SDMetrics' own Quality Report score beside it
    (`sdmetrics_score`), computed in the peer venv as a cross-check."""
    from aepipe import datasets
    from peers_env import ensure_peer_env, sdmetrics_quality
    from pipelines.evaluate import evaluate as run_evaluation

    report = run_evaluation(real=train_path, synthetic=synthetic, holdout=holdout_path,
                            schema=datasets.adult_schema(), target=TARGET, seed=SEED,
                            output=os.path.join(workdir, name, "report"), overwrite=True)
    report["sdmetrics_score"] = sdmetrics_quality(ensure_peer_env(), real=Path(train_path),
                                                  synthetic=synthetic)["score"]
    return report


def row(name: str, timings: dict, rows: int, report: dict) -> list[str]:
    quality, privacy = report["quality"], report["privacy"]
    return [name, f"{timings['fit_seconds']:.1f}", f"{rows / timings['sample_seconds']:,.0f}",
            f"{quality['score']:.3f} ({report['sdmetrics_score']:.3f})",
            f"{quality['column_shapes']['score']:.3f}",
            f"{quality['column_pair_trends']['score']:.3f}",
            f"{report['ml_efficacy']['ratio']:.3f}",
            f"{privacy['exact_copies']['synthetic_share']:.4f} "
            f"({privacy['exact_copies']['holdout_share']:.4f})",
            f"{privacy['dcr']['ratio']:.2f}"]


HEADER = ["synthesizer", "fit s", "sample rows/s", "quality (SDMetrics' own)", "shapes",
          "pair trends",
          "ML efficacy", "exact copies (held-out)", "DCR ratio"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--ours", default="vae,ae", help="aepipe models to fit (--model)")
    parser.add_argument("--peers", default="tvae,gaussian_copula",
                        help="SDV synthesizers to fit (empty for none)")
    parser.add_argument("--tvae-epochs", type=int, default=None,
                        help="TVAE epochs (default: SDV's own default, 300)")
    parser.add_argument("--workdir", default=os.path.join(ROOT, "bench-output",
                                                          "synthetic_quality"))
    args = parser.parse_args()
    quiet_startup()
    from pipelines.demo import split_adult

    import pyarrow.parquet as pq

    train_path, holdout_path = split_adult(args.workdir)
    rows = pq.read_metadata(train_path).num_rows
    results = []
    from aepipe.options import ModelOptions

    for variant in filter(None, args.ours.split(",")):
        synthetic, timings = ours(f"aepipe-{variant}", ModelOptions(model=variant, seed=SEED),
                                  train_path, rows, args.workdir)
        results.append((f"aepipe {variant}", timings, evaluate(
            f"aepipe-{variant}", synthetic, train_path, holdout_path, args.workdir)))
        _LOG.info("%s", " | ".join(row(*results[-1][:2], rows, results[-1][2])))
    for model in filter(None, args.peers.split(",")):
        synthetic, timings = peer(model, train_path, rows, args.workdir, args.tvae_epochs
                                  if model == "tvae" else None)
        results.append((f"SDV {model}", timings, evaluate(model, synthetic, train_path,
                                                           holdout_path, args.workdir)))
        _LOG.info("%s", " | ".join(row(*results[-1][:2], rows, results[-1][2])))
    print(f"\nAdult: {rows:,} training rows, {pq.read_metadata(holdout_path).num_rows:,} "
          f"held-out rows, {rows:,} synthetic rows each; ML efficacy target {TARGET!r}\n")
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for name, timings, report in results:
        print("| " + " | ".join(row(name, timings, rows, report)) + " |")
    print(f"\nreports: {sorted(glob.glob(os.path.join(args.workdir, '*', 'report')))}")


if __name__ == "__main__":
    main()
