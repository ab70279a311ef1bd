"""Fits one of SDV's synthesizers on a training Parquet file and samples rows from it.

Runs in the peer venv that benchmarks/peers_env.py builds (SDV 2.0, torch CPU), never in
aepipe's: it imports neither aepipe nor tensorflow.

    python benchmarks/peers.py --model {tvae,gaussian_copula} --train TRAIN.parquet \
        --num-rows N --seed S --output OUT.parquet --timings TIMINGS.json [--epochs E] \
        [--condition-column C]

With --condition-column, SDV's `sample_from_conditions` makes, for each value of C, as many rows
as the training rows that hold it, with C fixed to it (--num-rows is then not used).

The output has the training file's columns and Arrow types (nulls stay nulls); the timings
file holds model, fit_seconds, sample_seconds, rows, epochs and sdv_version.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

LOG = logging.getLogger("peers")
TABLE = "train"  # SDV 2.0 takes and returns {table name: DataFrame}, single tables too


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=("tvae", "gaussian_copula"))
    parser.add_argument("--train", required=True, type=Path, help="training Parquet file")
    parser.add_argument("--num-rows", required=True, type=int, help="rows to sample")
    parser.add_argument("--seed", required=True, type=int)
    parser.add_argument("--output", required=True, type=Path, help="sampled rows, Parquet")
    parser.add_argument("--timings", required=True, type=Path, help="JSON report")
    parser.add_argument("--epochs", type=int, help="TVAE epochs (default: SDV's, 300)")
    parser.add_argument("--condition-column", help="sample each value of this column as often "
                        "as the training rows hold it, with the column fixed")
    return parser.parse_args(argv)


def expected_sdtype(arrow_type: pa.DataType) -> str | None:
    """The SDV sdtype a column of this Arrow type must get; None: keep what SDV detects."""
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return "numerical"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "categorical"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    return None


def detect_metadata(frame: pd.DataFrame, schema: pa.Schema):
    """SDV's auto-detected metadata, no primary key, sdtypes checked against the Arrow types.

    SDV 2.0 has no public single-frame detect_from_dataframe: detect_from_dataframes takes a
    dict of tables. A column detected as something else (an id, a PII type) is set back.
    """
    from sdv.metadata import Metadata

    metadata = Metadata.detect_from_dataframes({TABLE: frame}, infer_keys=None)
    columns = metadata.to_dict()["tables"][TABLE]["columns"]
    for field in schema:
        wanted = expected_sdtype(field.type)
        detected = columns[field.name]["sdtype"]
        if wanted and detected != wanted:
            LOG.warning("%s: SDV detected %s, using %s", field.name, detected, wanted)
            metadata.update_column(field.name, table_name=TABLE, sdtype=wanted)
    columns = metadata.to_dict()["tables"][TABLE]["columns"]
    LOG.info("sdtypes: %s", {name: column["sdtype"] for name, column in columns.items()})
    return metadata


def make_synthesizer(model: str, metadata, epochs: int | None):
    """The synthesizer with SDV's defaults (TVAE's epochs overridden when given)."""
    if model == "tvae":
        from sdv.single_table import TVAESynthesizer

        kwargs = {} if epochs is None else {"epochs": epochs}
        return TVAESynthesizer(metadata, **kwargs)
    from sdv.single_table import GaussianCopulaSynthesizer

    return GaussianCopulaSynthesizer(metadata)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_arrow(sampled: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """The sampled rows cast back to the training schema: NaN/None become nulls."""
    arrays = []
    for field in schema:
        array = pa.array(sampled[field.name], from_pandas=True)
        if pa.types.is_integer(field.type) and pa.types.is_floating(array.type):
            array = pc.round(array)
        arrays.append(array.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def fit_and_sample(synthesizer, frame: pd.DataFrame, num_rows: int, seed: int,
                   condition_column: str | None = None):
    """Returns the sampled rows, the fit's seconds and the sampling's."""
    start = time.perf_counter()
    synthesizer.fit({TABLE: frame})
    fit_seconds = time.perf_counter() - start
    # SDV samples from a fixed seed (73251) unless told otherwise: without this every seed
    # would sample alike from a GaussianCopula (whose fit is deterministic).
    synthesizer._set_random_state(seed)
    start = time.perf_counter()
    if condition_column:
        from sdv.sampling import Condition

        counts = frame[condition_column].value_counts()
        sampled = synthesizer.sample_from_conditions(
            [Condition(column_values={condition_column: value}, num_rows=int(count))
             for value, count in counts.items()])
    else:
        sampled = synthesizer.sample(num_rows=num_rows)
    sampled = sampled[TABLE] if isinstance(sampled, dict) else sampled
    sample_seconds = time.perf_counter() - start
    LOG.info("fit %.1f s, sampled %d rows in %.1f s", fit_seconds, len(sampled), sample_seconds)
    return sampled, fit_seconds, sample_seconds


def main(argv: list[str] | None = None) -> None:
    # SDV's and RDT's own INFO lines (a metadata dump among them) stay off: WARNING and up only.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    LOG.setLevel(logging.INFO)
    warnings.filterwarnings("ignore", message=".*save_to_json.*")  # we build metadata every run
    args = parse_args(argv)
    import sdv

    table = pq.read_table(args.train)
    schema = table.schema.remove_metadata()
    frame = table.to_pandas()
    LOG.info("sdv %s, %s on %d rows x %d columns, seed %d",
             sdv.__version__, args.model, len(frame), frame.shape[1], args.seed)
    seed_everything(args.seed)
    synthesizer = make_synthesizer(args.model, detect_metadata(frame, schema), args.epochs)

    sampled, fit_seconds, sample_seconds = fit_and_sample(
        synthesizer, frame, args.num_rows, args.seed, args.condition_column)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(to_arrow(sampled, schema), args.output)
    timings = {
        "model": args.model,
        "fit_seconds": fit_seconds,
        "sample_seconds": sample_seconds,
        "rows": len(sampled),
        "epochs": getattr(synthesizer, "epochs", None),
        "sdv_version": sdv.__version__,
    }
    args.timings.parent.mkdir(parents=True, exist_ok=True)
    args.timings.write_text(json.dumps(timings, indent=2) + "\n")


if __name__ == "__main__":
    main()
