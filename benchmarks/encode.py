"""Encode throughput: `aepipe encode` on the DirectRunner against its plain loop, and the plain
loop against the bare `encode` signature call.

    .venv/bin/python benchmarks/encode.py [--sizes 100000,1000000] [--columns N] [--workdir DIR]

Makes synthetic Parquet datasets (a key, 20 numeric and 4 categorical columns; with
`--columns N`, benchmarks/wide.py's table of N columns), trains a small model once (reused on
later runs), then runs each measurement in a fresh process:

- bare: the SavedModel's `encode` signature called on every batch, its input tensors built
  beforehand (reading and converting not timed): what TensorFlow alone costs;
- plain: pyarrow reads the files in batches of the size Beam's path uses, the same
  `BatchEncoder` (Arrow to tensors, the signature, tensors to Arrow) encodes them, pyarrow
  writes Parquet;
- beam: `aepipe encode` (read, validate, encode, write, dead letters) on the DirectRunner.

Each process reports the seconds from the start of its work (model load included, interpreter
start-up and imports excluded) to its last call or its last file closed, and its peak resident
memory. The table gives rows/s of each, plain/bare, beam/plain and peak memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness import ROOT, report, three_ways, throughput_table

sys.path.insert(0, ROOT)

NUMERIC, CATEGORICAL = 20, 4
FILE_ROWS = 250_000
ROW_GROUP_ROWS = 65_536


def make_dataset(path: str, rows: int, seed: int = 0) -> str:
    """Writes `rows` synthetic rows under `path` (once); returns the glob of its files."""
    pattern = os.path.join(path, "*.parquet")
    if os.path.isdir(path) and os.listdir(path):
        return pattern
    os.makedirs(path)
    rng = np.random.default_rng(seed)
    for index, start in enumerate(range(0, rows, FILE_ROWS)):
        n = min(FILE_ROWS, rows - start)
        latent = rng.normal(size=(n, 4))
        columns = {"id": pa.array(np.arange(start, start + n, dtype=np.int64))}
        mixing = np.random.default_rng(1).normal(size=(4, NUMERIC))
        numbers = latent @ mixing + rng.normal(scale=0.3, size=(n, NUMERIC))
        for j in range(NUMERIC):
            columns[f"x{j}"] = pa.array(numbers[:, j])
        for j, cardinality in enumerate((5, 20, 100, 1000)[:CATEGORICAL]):
            codes = np.clip((latent[:, j] + 3) / 6 * cardinality, 0, cardinality - 1).astype(int)
            columns[f"c{j}"] = pa.array(np.char.add(f"c{j}_", codes.astype(str)))
        pq.write_table(pa.table(columns), os.path.join(path, f"part-{index:03d}.parquet"),
                       row_group_size=ROW_GROUP_ROWS)
    return pattern


def schema_yaml() -> str:
    lines = ["columns:", "  - {name: id, kind: key, nullable: false}"]
    lines += [f"  - {{name: x{j}, kind: numeric, nullable: false}}" for j in range(NUMERIC)]
    lines += [f"  - {{name: c{j}, kind: categorical, nullable: false}}"
              for j in range(CATEGORICAL)]
    return "\n".join(lines) + "\n"


def _batches(pattern: str, names: list[str]):
    """The files' record batches, as the job's reader cuts them."""
    from aepipe.beam.validate import MAX_BATCH_ROWS
    from aepipe.io import files as fileio

    for path in fileio.match(pattern):
        yield from pq.ParquetFile(path).iter_batches(batch_size=MAX_BATCH_ROWS, columns=names)


def run_bare(pattern: str, model_dir: str, output: str) -> dict:
    """The bound: the `encode` signature on tensors built before the clock starts."""
    from aepipe.store.reader import ModelDirectory
    from aepipe.table import signatures

    started = time.perf_counter()
    model = ModelDirectory(model_dir).load()
    loading = time.perf_counter() - started
    inputs = [model.inputs(batch) for batch in _batches(pattern, list(model.schema.names))]
    started = time.perf_counter()
    encode = model.signature(signatures.ENCODE)
    rows = 0
    for tensors in inputs:
        rows += int(encode(**tensors)[signatures.CODE].shape[0])
    return {"rows": rows, "seconds": loading + time.perf_counter() - started}


def run_plain(pattern: str, model_dir: str, output: str) -> dict:
    """The loop: pyarrow reads, `BatchEncoder` calls and pyarrow writes."""
    from aepipe.beam.encode import BatchEncoder
    from aepipe.io import files as fileio
    from aepipe.store.reader import ModelDirectory

    started = time.perf_counter()
    model = ModelDirectory(model_dir)
    names = list(model.schema.names)
    rows = 0
    os.makedirs(output, exist_ok=True)
    for index, path in enumerate(fileio.match(pattern)):
        encoder = BatchEncoder(model, pq.ParquetFile(path).schema_arrow)
        with pq.ParquetWriter(os.path.join(output, f"part-{index:05d}.parquet"),
                              encoder.output_schema) as writer:
            for batch in _batches(path, names):
                writer.write_batch(encoder(batch))
                rows += batch.num_rows
    return {"rows": rows, "seconds": time.perf_counter() - started}


def run_beam(pattern: str, model_dir: str, output: str) -> dict:
    from pipelines.encode import encode

    started = time.perf_counter()
    counters = encode(input_pattern=pattern, model_dir=model_dir,
                      output=os.path.join(output, "codes"), overwrite=True)
    return {"rows": counters["rows_written"], "seconds": time.perf_counter() - started}


RUNS = {"bare": run_bare, "plain": run_plain, "beam": run_beam}


def child(kind: str, size: str, pattern: str, model_dir: str, output: str) -> None:
    subprocess.run(["rm", "-rf", output], check=True)
    report(lambda: RUNS[kind](pattern, model_dir, output))


def train_model(workdir: str, pattern: str, schema_text: str, epochs: int = 3) -> str:
    model_dir = os.path.join(workdir, "model")
    if os.path.exists(os.path.join(model_dir, "manifest.json")):
        return model_dir
    schema = os.path.join(workdir, "schema.yaml")
    with open(schema, "w") as f:
        f.write(schema_text)
    subprocess.run([sys.executable, "-m", "pipelines.train", "--input", pattern, "--schema",
                    schema, "--model-dir", model_dir, "--epochs", str(epochs), "--overwrite"],
                   check=True, cwd=ROOT)
    return model_dir


def datasets(workdir: str, sizes: list[int], columns: int | None
             ) -> tuple[dict[int, str], str]:
    """The dataset of each size (this script's, or benchmarks/wide.py's table of `columns`
    columns) and its schema."""
    if columns is None:
        return ({n: make_dataset(os.path.join(workdir, f"data-{n}"), n) for n in sizes},
                schema_yaml())
    import wide

    return ({n: wide.make_table(os.path.join(workdir, f"data-{n}x{columns}"), n, columns)
             for n in sizes}, wide.schema_yaml(columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--columns", type=int, default=None,
                        help="encode benchmarks/wide.py's table of this many columns instead")
    parser.add_argument("--workdir", default=None,
                        help="default bench-output/encode (or encode-COLUMNS with --columns)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    args.workdir = args.workdir or os.path.join(
        ROOT, "bench-output", "encode" + (f"-{args.columns}" if args.columns else ""))
    patterns, schema_text = datasets(args.workdir, sizes, args.columns)
    model_dir = train_model(args.workdir, patterns[min(sizes)], schema_text,
                            epochs=1 if args.columns else 3)
    rows = [(n, three_ways(__file__, n, patterns[n], model_dir,
                           os.path.join(args.workdir, "out", str(n)))) for n in sizes]
    print("\n" + throughput_table(rows))


if __name__ == "__main__":
    main()
