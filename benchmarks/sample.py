"""Sampling throughput: `aepipe sample` on the DirectRunner against the plain-loop limit.

    .venv/bin/python benchmarks/sample.py [--rows 1000000] [--workdir DIR]

Trains a model on the embedded Adult data once (reused on later runs), then in fresh processes:

- plain: one loop over the blocks calling the same `BlockSampler` (prior draws, the SavedModel's
  `sample` signature, the same block size), writing Parquet with pyarrow;
- beam: `aepipe sample` on the DirectRunner.

Prints rows/s of each, the ratio beam/plain and peak memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import pyarrow.parquet as pq

from harness import ROOT, measure, rate, report

sys.path.insert(0, ROOT)


def run_plain(model_dir: str, rows: int, output: str) -> dict:
    from aepipe.store.reader import ModelDirectory
    from aepipe.beam.sample import BlockSampler

    started = time.perf_counter()
    sampler = BlockSampler(ModelDirectory(model_dir), num_rows=rows, seed=0)
    os.makedirs(output, exist_ok=True)
    with pq.ParquetWriter(os.path.join(output, "part-00000.parquet"),
                          sampler.output_schema) as writer:
        for block in range(sampler.num_blocks):
            writer.write_batch(sampler(block))
    return {"rows": rows, "seconds": time.perf_counter() - started}


def run_beam(model_dir: str, rows: int, output: str) -> dict:
    from aepipe.options import SampleOptions
    from pipelines.sample import sample

    started = time.perf_counter()
    written = sample(model_dir=model_dir, options=SampleOptions(num_rows=rows, seed=0),
                     output=os.path.join(output, "synthetic"), overwrite=True)
    return {"rows": written, "seconds": time.perf_counter() - started}


def train_model(workdir: str) -> str:
    from aepipe import datasets

    model_dir = os.path.join(workdir, "model")
    if not os.path.exists(os.path.join(model_dir, "manifest.json")):
        subprocess.run([sys.executable, "-m", "pipelines.train", "--input",
                        datasets.adult_parquet(), "--schema", datasets.adult_schema(),
                        "--model-dir", model_dir, "--epochs", "5", "--overwrite"],
                       check=True, cwd=ROOT)
    return model_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", default=os.path.join(ROOT, "bench-output", "sample"))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, model_dir, rows, output = args.child
        run = run_plain if kind == "plain" else run_beam
        report(lambda: run(model_dir, int(rows), output))
        return
    model_dir = train_model(args.workdir)
    results = {}
    for kind in ("plain", "beam"):
        output = os.path.join(args.workdir, "out", kind)
        subprocess.run(["rm", "-rf", output], check=True)
        results[kind] = measure(__file__, kind, model_dir, str(args.rows), output)
    plain, beam = results["plain"], results["beam"]
    print(f"\n{'rows':>10} {'plain rows/s':>13} {'beam rows/s':>12} {'beam/plain':>10} "
          f"{'plain MB':>9} {'beam MB':>8}")
    print(f"{args.rows:>10,} {rate(plain):>13,.0f} {rate(beam):>12,.0f} "
          f"{rate(beam) / rate(plain):>10.2f} {plain['peak_rss_mb']:>9.0f} "
          f"{beam['peak_rss_mb']:>8.0f}")


if __name__ == "__main__":
    main()
