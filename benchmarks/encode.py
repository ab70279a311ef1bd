"""Encode throughput: `aepipe encode` on the DirectRunner against the plain-loop limit.

    .venv/bin/python benchmarks/encode.py [--sizes 100000,1000000,3000000] [--columns N]
        [--workdir DIR]

Makes synthetic Parquet datasets (a key, 20 numeric and 4 categorical columns; with
`--columns N`, benchmarks/wide.py's table of N columns), trains a small model once (reused on
later runs), then runs each measurement in a fresh process:

- plain: pyarrow reads the files in batches of the same size Beam's path uses, the same
  `BatchEncoder` (the SavedModel's `encode` signature) encodes them, pyarrow writes Parquet;
- beam: `aepipe encode` (read, validate, encode, write, dead letters) on the DirectRunner.

Each process reports the seconds from the start of its work to the last file closed (model load
included, interpreter start-up and imports excluded) and its peak resident memory. The table
gives rows/s of both, the ratio beam/plain, and peak memory at each size.
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

from harness import ROOT, measure, rate, report

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


def run_plain(pattern: str, model_dir: str, output: str) -> dict:
    """The limit: one loop of pyarrow reads, `BatchEncoder` calls and pyarrow writes."""
    from aepipe.io import files as fileio
    from aepipe.beam.encode import BatchEncoder, EncodeOptions
    from aepipe.store.reader import ModelDirectory
    from aepipe.beam.validate import MAX_BATCH_ROWS

    started = time.perf_counter()
    model = ModelDirectory(model_dir)
    names = list(model.schema.names)
    rows = 0
    os.makedirs(output, exist_ok=True)
    for index, path in enumerate(fileio.match(pattern)):
        source = pq.ParquetFile(path)
        encoder = BatchEncoder(model, source.schema_arrow, EncodeOptions())
        with pq.ParquetWriter(os.path.join(output, f"part-{index:05d}.parquet"),
                              encoder.output_schema) as writer:
            for batch in source.iter_batches(batch_size=MAX_BATCH_ROWS, columns=names):
                writer.write_batch(encoder(batch))
                rows += batch.num_rows
    return {"rows": rows, "seconds": time.perf_counter() - started}


def run_beam(pattern: str, model_dir: str, output: str) -> dict:
    from pipelines.encode import encode

    started = time.perf_counter()
    counters = encode(input_pattern=pattern, model_dir=model_dir,
                      output=os.path.join(output, "codes"), overwrite=True)
    return {"rows": counters["rows_written"], "seconds": time.perf_counter() - started}


def run_one(kind: str, pattern: str, model_dir: str, workdir: str) -> dict:
    output = os.path.join(workdir, "out", f"{kind}-{os.path.basename(os.path.dirname(pattern))}")
    subprocess.run(["rm", "-rf", output], check=True)
    return measure(__file__, kind, pattern, model_dir, output)


def child(kind: str, pattern: str, model_dir: str, output: str) -> None:
    report(lambda: (run_plain if kind == "plain" else run_beam)(pattern, model_dir, output))


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
    parser.add_argument("--sizes", default="100000,1000000,3000000")
    parser.add_argument("--plain-at-every-size", action="store_true",
                        help="also run the plain loop at every size, not only the middle one")
    parser.add_argument("--columns", type=int, default=None,
                        help="encode benchmarks/wide.py's table of this many columns instead")
    parser.add_argument("--workdir", default=None,
                        help="default bench-output/encode (or encode-COLUMNS with --columns)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
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
    reference = sizes[len(sizes) // 2]
    rows = []
    for n in sizes:
        beam = run_one("beam", patterns[n], model_dir, args.workdir)
        plain = (run_one("plain", patterns[n], model_dir, args.workdir)
                 if n == reference or args.plain_at_every_size else None)
        rows.append((n, plain, beam))
    print(f"\n{'rows':>10} {'plain rows/s':>13} {'beam rows/s':>12} {'beam/plain':>10} "
          f"{'plain MB':>9} {'beam MB':>8} {'beam s':>7}")
    for n, plain, beam in rows:
        beam_rate, plain_rate = rate(beam), rate(plain)
        print(f"{n:>10,} {plain_rate:>13,.0f} {beam_rate:>12,.0f} {beam_rate / plain_rate:>10.2f} "
              f"{plain['peak_rss_mb'] if plain else float('nan'):>9.0f} "
              f"{beam['peak_rss_mb']:>8.0f} {beam['seconds']:>7.1f}")


if __name__ == "__main__":
    main()
