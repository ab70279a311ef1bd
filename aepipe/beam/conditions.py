"""`Conditions`: the rows of fixed values that `aepipe sample --conditions` completes.

A conditions file is Parquet whose columns are some of the model's modelled columns (not item
sets): each row fixes its non-null cells and leaves its null cells to be drawn, so one file can
ask for 10,000 rows in one region (one row, `num_rows` 10,000) or fill in the missing cells of
partly known rows (one row each). An optional integer column COUNT says how many synthetic rows
each condition row makes (default one); a model with a modelled column of that name reads it as
a condition, not a count.

Everything is checked before any row is made, naming the file and the column: columns the model
does not model, values of the wrong type, categories outside the model's vocabulary, numbers
outside the training range (the model cannot make them) and negative counts.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aepipe.errors import InputError
from aepipe.io import files as fileio
from aepipe.store.reader import ModelDirectory
from aepipe.table.kinds import Kind

__all__ = ["Conditions", "COUNT"]

COUNT = "num_rows"


@dataclasses.dataclass(frozen=True)
class Conditions:
    """The condition rows, as every modelled column in the training input's types (nulls where
    drawn), and for each synthetic row the index of its condition row."""

    table: pa.Table
    rows: np.ndarray  # int64, one per synthetic row, in order

    @classmethod
    def read(cls, pattern: str, model: ModelDirectory) -> "Conditions":
        """The conditions in the Parquet files matching `pattern`, checked against `model`."""
        paths = fileio.match(pattern)
        if not paths:
            raise InputError(f"no conditions file matches {pattern}")
        tables, counts = [], []
        for path in paths:
            table = fileio.parquet_file(path).read()
            tables.append(_conditions(table, model, path))
            counts.append(_counts(table, model, path))
        table = pa.concat_tables(tables)
        counts = np.concatenate(counts)
        return cls(table, np.repeat(np.arange(len(counts), dtype=np.int64), counts))

    @property
    def num_rows(self) -> int:
        """How many synthetic rows the conditions make."""
        return len(self.rows)

    def batch(self, indices: range) -> pa.RecordBatch:
        """The condition of each of the synthetic rows `indices`, one row each."""
        taken = self.table.take(pa.array(self.rows[indices.start:indices.stop]))
        return taken.combine_chunks().to_batches()[0] if taken.num_rows else \
            pa.RecordBatch.from_pylist([], schema=self.table.schema)


def _conditions(table: pa.Table, model: ModelDirectory, path: str) -> pa.Table:
    """Every modelled column of `table` in the training input's type, nulls where absent."""
    schema, types = model.schema, model.manifest.input_arrow_schema
    for name in table.column_names:
        if name == COUNT and _counts_rows(model):
            continue
        if name not in schema.names or not schema[name].modelled \
                or schema[name].kind is Kind.ITEMS:
            fixable = [c.name for c in schema.modelled if c.kind is not Kind.ITEMS]
            raise InputError(f"conditions file {path}: column {name!r} cannot be fixed: sample "
                             f"fixes the model's modelled columns ({', '.join(fixable)}) "
                             f"and reads {COUNT!r} as each row's count")
    columns = []
    for column in schema.modelled:
        arrow_type = types.field(column.name).type
        if column.name not in table.column_names or column.kind is Kind.ITEMS:
            columns.append(pa.nulls(table.num_rows, arrow_type))
            continue
        array = table.column(column.name)
        try:
            array = array.cast(arrow_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise InputError(f"conditions file {path}: column {column.name!r} has type "
                             f"{array.type}, which does not convert to the training data's "
                             f"{arrow_type}: {error}") from None
        _check_values(array, column, model, path)
        columns.append(array)
    return pa.Table.from_arrays(columns, names=[c.name for c in schema.modelled])


def _check_values(array: pa.ChunkedArray, column, model: ModelDirectory, path: str) -> None:
    """Refuses a category the model never makes and a number outside the training range."""
    present = pc.drop_null(array)
    if column.kind is Kind.CATEGORICAL:
        known = pa.array(model.manifest.vocabularies.get(column.name, []), pa.string())
        unknown = pc.filter(present, pc.invert(pc.is_in(present.cast(pa.string()), known)))
        if len(unknown):
            raise InputError(f"conditions file {path}: column {column.name!r} holds "
                             f"{unknown[0].as_py()!r}, which is not in the model's vocabulary "
                             f"({len(known)} categories; see the manifest's vocabularies)")
        return
    bounds = model.manifest.value_ranges.get(column.name)
    if bounds is None or not len(present):
        return
    low, high = pc.min_max(present).values()
    if low.as_py() < bounds[0] or high.as_py() > bounds[1]:
        outside = low if low.as_py() < bounds[0] else high
        raise InputError(f"conditions file {path}: column {column.name!r} holds "
                         f"{outside.as_py()!r}, outside the training range [{bounds[0]}, "
                         f"{bounds[1]}], which the model never samples")


def _counts(table: pa.Table, model: ModelDirectory, path: str) -> np.ndarray:
    """Each condition row's number of synthetic rows: its COUNT, or one."""
    if COUNT not in table.column_names or not _counts_rows(model):
        return np.ones(table.num_rows, np.int64)
    counts = table.column(COUNT)
    if not pa.types.is_integer(counts.type) or counts.null_count \
            or (len(counts) and pc.min(counts).as_py() < 0):
        raise InputError(f"conditions file {path}: column {COUNT!r} (each row's number of "
                         "synthetic rows) must hold integers of at least 0, without nulls")
    return counts.to_numpy().astype(np.int64)


def _counts_rows(model: ModelDirectory) -> bool:
    """Whether a COUNT column counts rows: unless the model has a modelled column of that
    name, which a condition then fixes."""
    return COUNT not in model.schema.names or not model.schema[COUNT].modelled
