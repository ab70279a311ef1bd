"""Conditional sampling: rows with one categorical column fixed to each of its values, scored
against the real rows that hold that value, beside the unconditional figure and SDV
GaussianCopula's `sample_from_conditions`.

    .venv/bin/python benchmarks/conditional.py [--table adult] [--column relationship]
        [--seeds 0,1,2] [--peers gaussian_copula|""]

Per seed: aepipe is trained with default options on the table's training split (the quality
benchmark's); for each value v of the column, as many rows as the training rows holding v are
sampled with the column fixed to v (`aepipe sample --conditions`), and their quality score
(aepipe.evaluation.metrics, SDMetrics' Quality Report definitions) is taken against the
training rows holding v, over the other columns (the fixed one would score 1 and has no pairs).
The unconditional figure is the quality score of as many unconditioned rows as training rows,
against all of them. The peer does the same with SDV's GaussianCopula in its own venv.

Prints, per value, the rows and each method's conditional quality (mean ± sample standard
deviation over seeds), aepipe's ratio to its unconditional figure and, as the reference of what
the model itself knows of that value, the quality of aepipe's unconditioned rows that hold it;
then the count-weighted means. Results go to
bench-output/conditional/results.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

import tables as bench_tables  # noqa: E402
from quality import _fresh, train_aepipe  # noqa: E402

LOG = logging.getLogger("benchmark.conditional")
WORKDIR = ROOT / "bench-output" / "conditional"


def scores(real: pa.Table, synthetic: pa.Table, schema, column: str) -> dict[str, float]:
    """The unconditional quality and, per value of `column`, the quality of the synthetic rows
    holding it against the real rows holding it, over the other columns."""
    from aepipe.evaluation.metrics import evaluation_frame, quality
    from aepipe.table.schema import Schema

    others = Schema(tuple(c for c in schema.columns if c.name != column))
    result = {}
    for value in pc.unique(real.column(column)).to_pylist():
        keep_real = pc.equal(real.column(column), value)
        keep_synthetic = pc.equal(synthetic.column(column), value)
        result[value] = quality(evaluation_frame(real.filter(keep_real), others),
                                evaluation_frame(synthetic.filter(keep_synthetic), others),
                                others)["score"]
    return result


def conditions_file(real: pa.Table, column: str, path: str) -> dict[str, int]:
    """A conditions file with one row per value of `column` and its training count."""
    from aepipe.beam.conditions import COUNT

    counts = {row["values"]: row["counts"]
              for row in pc.value_counts(real.column(column)).to_pylist()}
    pq.write_table(pa.table({column: pa.array(list(counts), real.schema.field(column).type),
                             COUNT: pa.array(list(counts.values()), pa.int64())}), path)
    return counts


def aepipe_run(table, column: str, seed: int, work: str) -> dict:
    from aepipe.evaluation.metrics import evaluation_frame, quality
    from aepipe.options import SampleOptions
    from pipelines.sample import sample

    model_dir = os.path.join(work, "model")
    timing = train_aepipe(table, table.schema, model_dir, seed=seed)
    real = pq.read_table(table.train)
    free = _fresh(os.path.join(work, "free"))
    sample(model_dir=model_dir, options=SampleOptions(num_rows=real.num_rows, seed=seed),
           output=os.path.join(free, "part"))
    unconditioned = pq.read_table(free)
    unconditional = quality(evaluation_frame(real, table.schema),
                            evaluation_frame(unconditioned, table.schema), table.schema)["score"]
    given = _fresh(os.path.join(work, "given"))
    counts = conditions_file(real, column, os.path.join(work, "conditions.parquet"))
    started = time.perf_counter()
    sample(model_dir=model_dir, output=os.path.join(given, "part"),
           options=SampleOptions(conditions=os.path.join(work, "conditions.parquet"), seed=seed))
    seconds = time.perf_counter() - started
    conditional = scores(real, pq.read_table(given), table.schema, column)
    LOG.info("aepipe seed %d: unconditional %.3f, conditional %s (%.1f s for %d rows)", seed,
             unconditional, {k: round(v, 3) for k, v in conditional.items()}, seconds,
             sum(counts.values()))
    return {"unconditional": unconditional, "conditional": conditional, "counts": counts,
            "unconditioned_subsets": scores(real, unconditioned, table.schema, column),
            "conditional_seconds": seconds, "train_seconds": timing["train_seconds"]}


def peer_run(table, column: str, seed: int, work: str, model: str) -> dict:
    from peers_env import ensure_peer_env, run_peer

    output = Path(work) / f"{model}.parquet"
    timings = run_peer(ensure_peer_env(), model=model, train=Path(table.train), num_rows=0,
                       seed=seed, output=output, timings=Path(work) / f"{model}.json",
                       condition_column=column)
    conditional = scores(pq.read_table(table.train), pq.read_table(output), table.schema,
                         column)
    LOG.info("%s seed %d: conditional %s", model, seed,
             {k: round(v, 3) for k, v in conditional.items()})
    return {"conditional": conditional, "timings": timings}


def _cell(values: list[float]) -> str:
    if len(values) > 1:
        return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
    return f"{values[0]:.3f}" if values else "—"


def print_table(runs: list[dict], column: str, peers: list[str]) -> None:
    counts = runs[0]["aepipe"]["counts"]
    header = ["value", "training rows", "aepipe", "aepipe / unconditional",
              "aepipe's unconditioned rows holding the value", *peers]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    weights = np.array(list(counts.values()), float)
    weighted = {name: [] for name in ["aepipe", "ratio", "subsets", *peers]}
    for run in runs:
        a = run["aepipe"]
        values = np.array([a["conditional"][v] for v in counts])
        weighted["aepipe"].append(float(values @ weights / weights.sum()))
        weighted["ratio"].append(weighted["aepipe"][-1] / a["unconditional"])
        subsets = np.array([a["unconditioned_subsets"][v] for v in counts])
        weighted["subsets"].append(float(subsets @ weights / weights.sum()))
        for peer in peers:
            p = np.array([run[peer]["conditional"][v] for v in counts])
            weighted[peer].append(float(p @ weights / weights.sum()))
    for value, count in counts.items():
        cells = [_cell([r["aepipe"]["conditional"][value] for r in runs]),
                 _cell([r["aepipe"]["conditional"][value] / r["aepipe"]["unconditional"]
                        for r in runs]),
                 _cell([r["aepipe"]["unconditioned_subsets"][value] for r in runs])]
        cells += [_cell([r[peer]["conditional"][value] for r in runs]) for peer in peers]
        print(f"| {column} = {value} | {count:,} | " + " | ".join(cells) + " |")
    print(f"| weighted mean | {int(weights.sum()):,} | {_cell(weighted['aepipe'])} | "
          f"{_cell(weighted['ratio'])} | {_cell(weighted['subsets'])} | "
          + " | ".join(_cell(weighted[p]) for p in peers)
          + " |")
    print(f"\naepipe unconditional quality: "
          f"{_cell([r['aepipe']['unconditional'] for r in runs])}; worst value's ratio: "
          f"{_cell([min(v / r['aepipe']['unconditional'] for v in r['aepipe']['conditional'].values()) for r in runs])}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--table", default="adult", choices=bench_tables.NAMES)
    parser.add_argument("--column", default="relationship")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--peers", default="gaussian_copula",
                        help="SDV synthesizers to compare (empty for none)")
    args = parser.parse_args(argv)
    from aepipe.logs import configure_logging

    configure_logging()
    logging.getLogger("benchmark").setLevel(logging.INFO)
    table = bench_tables.load(args.table)
    peers = [p for p in args.peers.split(",") if p]
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        work = _fresh(str(WORKDIR / args.table / f"seed{seed}"))
        run = {"seed": seed, "aepipe": aepipe_run(table, args.column, seed, work)}
        for peer in peers:
            run[peer] = peer_run(table, args.column, seed, work, peer)
        runs.append(run)
    (WORKDIR / "results.json").write_text(json.dumps(
        {"table": args.table, "column": args.column, "runs": runs}, indent=1))
    print_table(runs, args.column, peers)


if __name__ == "__main__":
    main()
