"""Sampling throughput: `aepipe sample` on the DirectRunner against its plain loop, and the plain
loop against the bare `sample` signature call.

    .venv/bin/python benchmarks/sample.py [--rows 1000000] [--workdir DIR]

Trains a model on the embedded Adult data once (reused on later runs), then in fresh processes:

- bare: the SavedModel's `sample` signature called block by block on noise and uniform draws
  made before the clock starts: what TensorFlow alone costs;
- plain: one loop over the blocks calling the same `BlockSampler` (draws, the signature, its
  outputs to Arrow, fresh keys), writing Parquet with pyarrow;
- beam: `aepipe sample` on the DirectRunner.

Each process reports the seconds from the start of its work (model load included) to its last
call or file closed, and its peak memory. Prints rows/s of each, plain/bare, beam/plain.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq

from harness import ROOT, report, three_ways, throughput_table

sys.path.insert(0, ROOT)


def run_bare(model_dir: str, rows: int, output: str) -> dict:
    """The bound: the `sample` signature on draws made before the clock starts."""
    from aepipe.beam.sample import BLOCK_ROWS
    from aepipe.store.reader import ModelDirectory
    from aepipe.table import signatures

    started = time.perf_counter()
    model = ModelDirectory(model_dir).load()
    loading = time.perf_counter() - started
    signature = model.signature(signatures.SAMPLE)
    width = signature.structured_input_signature[1][signatures.UNIFORM].shape[1]
    draws = []
    for block, start in enumerate(range(0, rows, BLOCK_ROWS)):
        rng, n = np.random.default_rng([0, block]), min(BLOCK_ROWS, rows - start)
        draws.append({signatures.NOISE: rng.standard_normal((n, model.code_size), np.float32),
                      signatures.UNIFORM: rng.random((n, width), np.float32)})
    started = time.perf_counter()
    for inputs in draws:
        signature(**inputs)
    return {"rows": rows, "seconds": loading + time.perf_counter() - started}


def run_plain(model_dir: str, rows: int, output: str) -> dict:
    """The loop: the same `BlockSampler` over every block, pyarrow writes."""
    from aepipe.beam.sample import BlockSampler
    from aepipe.options import SampleOptions
    from aepipe.store.reader import ModelDirectory

    started = time.perf_counter()
    sampler = BlockSampler(ModelDirectory(model_dir), SampleOptions(num_rows=rows, seed=0))
    os.makedirs(output, exist_ok=True)
    with pq.ParquetWriter(os.path.join(output, "part-00000.parquet"),
                          sampler.output_schema) as writer:
        for block in sampler.blocks():
            writer.write_batch(sampler(block))
    return {"rows": rows, "seconds": time.perf_counter() - started}


def run_beam(model_dir: str, rows: int, output: str) -> dict:
    from aepipe.options import SampleOptions
    from pipelines.sample import sample

    started = time.perf_counter()
    written = sample(model_dir=model_dir, options=SampleOptions(num_rows=rows, seed=0),
                     output=os.path.join(output, "synthetic"), overwrite=True)
    return {"rows": written, "seconds": time.perf_counter() - started}


RUNS = {"bare": run_bare, "plain": run_plain, "beam": run_beam}


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
        kind, rows, model_dir, output = args.child
        subprocess.run(["rm", "-rf", output], check=True)
        report(lambda: RUNS[kind](model_dir, int(rows), output))
        return
    model_dir = train_model(args.workdir)
    runs = three_ways(__file__, args.rows, model_dir, os.path.join(args.workdir, "out"))
    print("\n" + throughput_table([(args.rows, runs)]))


if __name__ == "__main__":
    main()
