"""Fits MOSTLY AI's TabularARGN on a training Parquet file and samples rows from it.

Runs in the venv that benchmarks/peers_env.py builds for it (ARGN: mostlyai-engine 2.7.3, torch
CPU), never in aepipe's: it imports neither aepipe nor tensorflow.

    python benchmarks/argn_peer.py --train TRAIN.parquet --num-rows N --seed S \
        --output OUT.parquet --timings TIMINGS.json [--workspace DIR]

TabularARGN keeps the engine's defaults (model, epochs, training time, value protection and
its `_RARE_` placeholder for rare categories, sampling); only random_state is set, to the seed,
and verbose=1 for its progress lines. The engine seeds Python, NumPy and torch at fit, and
sampling follows in the same process. Its workspace (the engine's copy of the data, encodings
and model) is a temporary folder next to the output unless --workspace is given.

The output has the training file's columns and Arrow types: nulls stay nulls, integer columns
are rounded, `_RARE_` cells are kept as they come. The timings file holds model, fit_seconds,
sample_seconds, rows, rare_cells (the `_RARE_` cells, in all and per column), epochs (as the
engine's progress file records them, when it does) and engine_version.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

LOG = logging.getLogger("argn_peer")
MODEL = "tabular_argn"
RARE = "_RARE_"  # mostlyai.engine._encoding_types.tabular.categorical.CATEGORICAL_UNKNOWN_TOKEN


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL, choices=(MODEL,),
                        help="the only model here (run_peer passes it to every peer script)")
    parser.add_argument("--train", required=True, type=Path, help="training Parquet file")
    parser.add_argument("--num-rows", required=True, type=int, help="rows to sample")
    parser.add_argument("--seed", required=True, type=int)
    parser.add_argument("--output", required=True, type=Path, help="sampled rows, Parquet")
    parser.add_argument("--timings", required=True, type=Path, help="JSON report")
    parser.add_argument("--workspace", type=Path,
                        help="the engine's workspace, kept (default: a temporary folder)")
    return parser.parse_args(argv)


def to_arrow(sampled: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """The sampled rows cast back to the training schema: NaN/None/NA become nulls, integer
    columns are rounded."""
    arrays = []
    for field in schema:
        array = pa.array(sampled[field.name], from_pandas=True)
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        if pa.types.is_integer(field.type) and pa.types.is_floating(array.type):
            array = pc.round(array)
        arrays.append(array.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def rare_cells(table: pa.Table) -> dict[str, int]:
    """The `_RARE_` cells per string column (columns without any left out)."""
    counts = {}
    for field in table.schema:
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            count = pc.sum(pc.equal(table[field.name], RARE)).as_py() or 0
            if count:
                counts[field.name] = count
    return counts


def trained_epochs(workspace: Path) -> float | None:
    """The last epoch in the engine's progress file, if it wrote one with an epoch column."""
    for path in workspace.glob("ModelStore/**/progress-messages.csv"):
        with path.open(newline="") as file:
            rows = [row for row in csv.DictReader(file) if row.get("epoch") not in (None, "")]
        if rows:
            return float(rows[-1]["epoch"])
    return None


def fit_and_sample(frame: pd.DataFrame, num_rows: int, seed: int, workspace: Path):
    """Returns the sampled rows, the fit's seconds, the sampling's and the epochs trained."""
    from mostlyai.engine import TabularARGN

    argn = TabularARGN(random_state=seed, workspace_dir=workspace, verbose=1)
    start = time.perf_counter()
    argn.fit(frame)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    sampled = argn.sample(n_samples=num_rows)
    sample_seconds = time.perf_counter() - start
    LOG.info("fit %.1f s, sampled %d rows in %.1f s", fit_seconds, len(sampled), sample_seconds)
    return sampled, fit_seconds, sample_seconds, trained_epochs(workspace)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    LOG.setLevel(logging.INFO)
    args = parse_args(argv)
    import mostlyai.engine

    table = pq.read_table(args.train)
    schema = table.schema.remove_metadata()
    frame = table.to_pandas()
    LOG.info("mostlyai-engine %s, TabularARGN on %d rows x %d columns, seed %d",
             mostlyai.engine.__version__, len(frame), frame.shape[1], args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.workspace:
        args.workspace.mkdir(parents=True, exist_ok=True)
        sampled, fit_seconds, sample_seconds, epochs = fit_and_sample(
            frame, args.num_rows, args.seed, args.workspace)
    else:
        with tempfile.TemporaryDirectory(prefix="argn-workspace-", dir=args.output.parent) as w:
            sampled, fit_seconds, sample_seconds, epochs = fit_and_sample(
                frame, args.num_rows, args.seed, Path(w))

    output = to_arrow(sampled, schema)
    pq.write_table(output, args.output)
    rare = rare_cells(output)
    if rare:
        LOG.info("%d %s cells: %s", sum(rare.values()), RARE, rare)
    timings = {
        "model": MODEL,
        "fit_seconds": fit_seconds,
        "sample_seconds": sample_seconds,
        "rows": output.num_rows,
        "rare_cells": sum(rare.values()),
        "rare_cells_by_column": rare,
        "epochs": epochs,
        "engine_version": mostlyai.engine.__version__,
    }
    args.timings.parent.mkdir(parents=True, exist_ok=True)
    args.timings.write_text(json.dumps(timings, indent=2) + "\n")


if __name__ == "__main__":
    main()
