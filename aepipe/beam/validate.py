"""Checks input before any work: file schemas up front, row values batch by batch.

`check_inputs` reads only Parquet footers, so a missing column or a wrong type stops a job
before it starts, naming the file and the column. `ValidateBatches` then splits every record
batch into usable rows and dead-letter rows with their reason, counting both.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Iterator, Sequence

import apache_beam as beam
import pyarrow as pa

from aepipe.beam import counters
from aepipe.io import files as fileio
from aepipe.table.rows import select, split_valid
from aepipe.errors import InputError, SchemaError
from aepipe.table.schema import Kind, Schema

__all__ = ["InputSummary", "check_inputs", "find_unreadable", "ValidateBatches",
           "REJECTED_TAG", "record_batches"]

_LOG = logging.getLogger(__name__)
REJECTED_TAG = "rejected"
MAX_BATCH_ROWS = 16_384


@dataclasses.dataclass(frozen=True)
class InputSummary:
    """What the input files hold: their paths, the schema's columns as Arrow types, row count."""

    pattern: str
    files: tuple[str, ...]
    arrow_schema: pa.Schema
    num_rows: int


def check_inputs(pattern: str, schema: Schema, extra_columns: Sequence[str] = ()
                 ) -> InputSummary:
    """Matches `pattern` and checks every file's footer against the schema.

    `extra_columns` are more input columns a job carries along unchecked (encode's
    --passthrough of an ignored column, or of one the schema does not list); the summary's Arrow
    schema holds the schema's columns, then those. Raises InputError for no files, an unreadable
    file or no rows at all, and SchemaError for a missing column or a type the column's kind
    cannot take, naming the file and the column.
    """
    files = fileio.match(pattern)
    wanted = [c for c in schema.columns if c.kind is not Kind.IGNORE]
    carried = list(dict.fromkeys(n for n in extra_columns
                                 if n not in {c.name for c in wanted}))
    arrow_schema, total = None, 0
    for path in files:
        footer = fileio.parquet_file(path)
        file_schema = footer.schema_arrow
        for column in wanted:
            if column.name not in file_schema.names:
                raise SchemaError(f"{path}: column {column.name!r} ({column.kind.value}) is "
                                  "missing")
            arrow_type = file_schema.field(column.name).type
            if not column.accepts(arrow_type):
                raise SchemaError(f"{path}: column {column.name!r} has type {arrow_type}, which "
                                  f"the schema's kind {column.kind.value!r} cannot take")
        for name in carried:
            if name not in file_schema.names:
                raise SchemaError(f"{path}: column {name!r}, asked for with --passthrough, is "
                                  "missing")
        extra = sorted(set(file_schema.names) - {c.name for c in schema.columns} - set(carried))
        if extra:
            _LOG.info("%s: ignoring column(s) not in the schema: %s", path, ", ".join(extra))
        if arrow_schema is None:
            arrow_schema = pa.schema([file_schema.field(c.name) for c in wanted]
                                     + [file_schema.field(name) for name in carried])
        total += footer.metadata.num_rows
    if total == 0:
        raise InputError(f"the input {pattern} holds no rows ({len(files)} file(s))")
    return InputSummary(fileio.as_glob(pattern), tuple(files), arrow_schema, total)


def find_unreadable(inputs: InputSummary) -> None:
    """Reads every row group of the inputs; raises InputError naming the first that fails.

    Footers are checked before a job starts; a corrupt data page shows only when it is read.
    """
    for path in inputs.files:
        footer = fileio.parquet_file(path)
        for group in range(footer.num_row_groups):
            try:
                footer.read_row_group(group, columns=list(inputs.arrow_schema.names))
            except (pa.ArrowException, OSError) as e:
                raise InputError(f"{path}: row group {group} cannot be read ({e})") from None


class ValidateBatches(beam.PTransform):
    """Splits Arrow tables or record batches into usable rows and rejected rows.

    The main output holds record batches of `arrow_schema`'s columns (the schema's, and any
    others it names) cast to its types; the `rejected` output holds the rows a model cannot use,
    with a `reject_reason` column. Only the schema's columns, not the ignored ones, are checked.
    Unpack it as ``valid, rejected = batches | ValidateBatches(...)``.
    """

    def __init__(self, schema: Schema, arrow_schema: pa.Schema):
        super().__init__()
        self._schema = schema
        self._arrow_schema = arrow_schema

    def expand(self, batches):
        return batches | beam.ParDo(_Validate(self._schema, self._arrow_schema)).with_outputs(
            REJECTED_TAG, main="valid")


class _Validate(beam.DoFn):
    def __init__(self, schema: Schema, arrow_schema: pa.Schema):
        self._schema = schema
        self._checked = Schema(tuple(c for c in schema.columns if c.kind is not Kind.IGNORE))
        self._arrow_schema = arrow_schema
        self._read = counters.counter(counters.READ)
        self._rejected = counters.counter(counters.REJECTED)

    def process(self, element) -> Iterator:
        for batch in record_batches(element):
            self._read.inc(batch.num_rows)
            try:
                select(batch, self._schema)  # a missing schema column: SchemaError naming it
                batch = batch.select(self._arrow_schema.names).cast(self._arrow_schema)
            except pa.ArrowInvalid as e:
                raise SchemaError(f"input rows do not fit the columns' types: {e}") from None
            except KeyError as e:
                raise SchemaError(f"input rows lack column {e}") from None
            valid, rejected = split_valid(batch, self._checked)
            if rejected.num_rows:
                self._rejected.inc(rejected.num_rows)
                yield beam.pvalue.TaggedOutput(REJECTED_TAG, rejected)
            if valid.num_rows:
                yield valid


def record_batches(element: pa.Table | pa.RecordBatch) -> Iterator[pa.RecordBatch]:
    """The non-empty record batches of a table, at most MAX_BATCH_ROWS rows each."""
    if isinstance(element, pa.RecordBatch):
        element = pa.Table.from_batches([element])
    for batch in element.combine_chunks().to_batches(max_chunksize=MAX_BATCH_ROWS):
        if batch.num_rows:
            yield batch
