"""`encode --explain` on corrupted rows: does the column with the largest share name a column
that was corrupted?

    .venv/bin/python benchmarks/explain.py [--tables adult,penguins,diamonds] [--seeds 0]

Per table and seed, the quality benchmark's setting (`benchmarks/quality.py`): the default
model with code size 8 trained on the training split with the target ignored, and the
held-out rows corrupted as its anomaly table corrupts them (`make_anomalies`: in each row a
quarter of the columns, at least 2, take another row's value). The corrupted rows are encoded
with `--explain`; among those whose columns really changed (a swap can copy an equal value),
the table gives the share whose largest `ae_share_` names a changed column, against a column
picked at random on the same rows (the changed columns' share of the columns).
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness import ROOT

sys.path.insert(0, ROOT)

import quality  # noqa: E402  (the benchmark's tables, corruption and training)
import tables as bench_tables  # noqa: E402

LOG = logging.getLogger("benchmark.explain")


def explain_table(table, seed: int, work: str) -> dict:
    from aepipe.options import EncodeOptions
    from aepipe.store.reader import ModelDirectory
    from aepipe.table.layout import Layout
    from pipelines.encode import encode

    model_dir = os.path.join(work, "codes8-model")
    if not os.path.exists(os.path.join(model_dir, "manifest.json")):  # reused by later runs
        quality.train_aepipe(table, table.codes_schema, model_dir, seed=seed, code_size=8)
    holdout = pq.read_table(table.holdout)
    names = [c.name for c in table.codes_schema.modelled]
    corrupted = quality.make_anomalies(holdout, names, seed)
    changed = np.column_stack([_changed(holdout.column(n), corrupted.column(n))
                               for n in names])
    path = os.path.join(work, "corrupted.parquet")
    pq.write_table(corrupted.append_column("row", pa.array(np.arange(corrupted.num_rows))), path)
    output = os.path.join(work, "explained", "part")
    encode(input_pattern=path, model_dir=model_dir, output=output, overwrite=True,
           options=EncodeOptions(passthrough=("row",), explain=True))
    encoded = pq.read_table(sorted(glob.glob(output + "-*.parquet"))).sort_by("row")
    rows = encoded.column("row").to_numpy()
    model = ModelDirectory(model_dir)
    columns = list(Layout.of(model.schema).columns)
    shares = np.column_stack([encoded.column(f"ae_share_{c}").to_numpy() for c in columns])
    truth = changed[rows][:, [names.index(c) for c in columns]]
    scored = truth.any(axis=1)
    hit = truth[np.arange(len(rows)), shares.argmax(axis=1)]
    return {"rows": int(scored.sum()), "explain": float(hit[scored].mean()),
            "random": float(truth[scored].mean())}


def _changed(before: pa.ChunkedArray, after: pa.ChunkedArray) -> np.ndarray:
    """Per row, whether a value differs (null against a value counts; null against null not)."""
    same = pc.fill_null(pc.equal(before, after), pc.equal(pc.is_null(before),
                                                          pc.is_null(after)))
    return ~np.asarray(same)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="adult,penguins,diamonds")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--workdir", default=os.path.join(ROOT, "bench-output", "explain"))
    args = parser.parse_args()
    from aepipe.logs import configure_logging

    configure_logging()
    workdir = os.path.join(ROOT, "bench-output", "quality")  # the tables' splits, shared
    results = []
    for name in args.tables.split(","):
        table = bench_tables.load(name, __import__("pathlib").Path(workdir))
        for seed in (int(s) for s in args.seeds.split(",")):
            work = os.path.join(args.workdir, name, f"seed{seed}")
            os.makedirs(work, exist_ok=True)
            results.append((name, seed, explain_table(table, seed, work)))
            LOG.info("%s seed %d: %s", name, seed, results[-1][2])
    print("\n| table | seed | corrupted rows | largest share names a changed column | a column "
          "at random |\n|---|---:|---:|---:|---:|")
    for name, seed, r in results:
        print(f"| {name} | {seed} | {r['rows']:,} | {r['explain']:.3f} | {r['random']:.3f} |")


if __name__ == "__main__":
    main()
