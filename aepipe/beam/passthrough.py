"""The input columns a model's outputs keep: keys and timestamps, then any passthrough column.

Encode and recommend write one output row per input row, so that a feature store can join the
output back by key and event time: both keep the same columns, cast the same way.
"""

from __future__ import annotations

import pyarrow as pa

from aepipe.errors import OptionsError
from aepipe.store.reader import ModelDirectory
from aepipe.table.schema import Kind

__all__ = ["DATE_TIMESTAMP", "kept_columns", "kept_field", "kept_arrays"]

# What a date32 or date64 timestamp column becomes in the output: midnight UTC of the date, as
# Feast wants event timestamps (and as pandas and Parquet write timestamps, in microseconds).
DATE_TIMESTAMP = pa.timestamp("us", tz="UTC")


def kept_columns(model: ModelDirectory, input_schema: pa.Schema,
                 passthrough: tuple[str, ...]) -> list[str]:
    """Input columns copied to the output: keys and timestamps, then the requested ones, which
    may be any input column (modelled, ignored, or not in the model's schema)."""
    kept = [c.name for c in model.schema.passthrough]
    for name in passthrough:
        if name not in input_schema.names:
            raise OptionsError(f"--passthrough column {name!r} is not among the input columns "
                               f"({', '.join(input_schema.names)})")
        if name not in kept:
            kept.append(name)
    return kept


def kept_field(model: ModelDirectory, field: pa.Field) -> pa.Field:
    """A kept column's output field: its input field, but DATE_TIMESTAMP for a date timestamp."""
    if (pa.types.is_date(field.type) and field.name in model.schema.names
            and model.schema[field.name].kind is Kind.TIMESTAMP):
        return field.with_type(DATE_TIMESTAMP)
    return field


def kept_arrays(batch: pa.RecordBatch, kept: list[str], schema: pa.Schema) -> list[pa.Array]:
    """The kept columns of a batch, cast to their output fields (the first of `schema`)."""
    return [column if column.type == field.type else column.cast(field.type)
            for column, field in zip((batch.column(name) for name in kept), schema)]
