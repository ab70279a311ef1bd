"""The SavedModel's contract: its signatures, and the names and dtypes of what they take and give.

Other people's code calls these by name (`tf.saved_model.load(...).signatures["encode"]`), so
every name here is a promise; `aepipe.model.export` builds them and `aepipe.store.reader` calls
them, both from this module.

- ENCODE: raw columns -> CODE (float32 [rows, code size]), SCORE (the reconstruction error)
  and COLUMN_ERRORS (float32 [rows, columns]: each column's part of SCORE, the columns in
  `aepipe.table.layout.Layout.columns`' order);
- SCORE: raw columns -> SCORE;
- DECODE: CODE -> raw columns (values in the original units);
- GENERATE: CODE and UNIFORM draws -> raw columns, drawn from the decoder's probabilities;
- SAMPLE: NOISE (standard normal, one per code dimension) and UNIFORM draws -> raw columns;
- COMPLETE: raw columns whose non-null cells are fixed, NOISE (standard normal, several
  candidate codes' worth) and UNIFORM draws -> raw columns, the fixed cells kept and the
  others drawn given them (`aepipe.model.conditional`);
- TRANSFORM: raw columns -> FEATURES, the encoder's input matrix;
- RECOMMEND (models with item set columns): raw columns, TOP_K and EXCLUDE_SEEN -> per item set
  column ``c``: ``c`` (its top items, [rows, k]), ``c__score`` (their probabilities) and
  ``c__size`` (how many of the k are real).

Raw columns are, per modelled column ``c``, its values ``c`` (dtype by kind, `DTYPES`; anything
at null positions) and its null mask ``c__null`` (bool); for an item set column, its items
``c`` (strings, one set after the other) and each set's size ``c__size`` (int64).
"""

from __future__ import annotations

from typing import Iterable, Protocol

from aepipe.table.kinds import Kind

__all__ = ["ENCODE", "SCORE", "DECODE", "GENERATE", "SAMPLE", "COMPLETE", "TRANSFORM",
           "RECOMMEND", "CODE", "NOISE", "UNIFORM", "FEATURES", "COLUMN_ERRORS", "TOP_K",
           "EXCLUDE_SEEN", "RESERVED_SUFFIXES", "DTYPES", "null_name", "size_name", "score_name",
           "raw_columns"]

# Signatures
ENCODE, SCORE, DECODE, GENERATE, SAMPLE = "encode", "score", "decode", "generate", "sample"
TRANSFORM, RECOMMEND, COMPLETE = "transform", "recommend", "complete"
# Inputs and outputs besides the raw columns
CODE, NOISE, UNIFORM, FEATURES = "code", "noise", "uniform", "features"
COLUMN_ERRORS = "column_errors"
TOP_K, EXCLUDE_SEEN = "top_k", "exclude_seen"

_NULL, _SIZE, _SCORE = "__null", "__size", "__score"
RESERVED_SUFFIXES = (_NULL, _SIZE)  # a modelled column's name may not end with these

# The dtype of each kind's values, as TensorFlow and numpy name it ("string" is numpy's object)
DTYPES = {Kind.NUMERIC: "float32", Kind.INTEGER: "int64", Kind.BOOLEAN: "bool",
          Kind.CATEGORICAL: "string", Kind.ITEMS: "string"}
SIZE_DTYPE, NULL_DTYPE = "int64", "bool"


def null_name(column: str) -> str:
    """A column's null mask."""
    return column + _NULL


def size_name(column: str) -> str:
    """An item set column's set sizes (and the integer column they make in the model)."""
    return column + _SIZE


def score_name(column: str) -> str:
    """The probabilities of an item set column's recommended items."""
    return column + _SCORE


class Modelled(Protocol):
    """A modelled column, as `aepipe.table.schema.Column` is."""

    name: str
    kind: Kind


def raw_columns(columns: Iterable[Modelled]) -> dict[str, str]:
    """The raw inputs (and decoded outputs) of modelled columns, name -> dtype, in order."""
    raw = {}
    for column in columns:
        raw[column.name] = DTYPES[column.kind]
        if column.kind is Kind.ITEMS:
            raw[size_name(column.name)] = SIZE_DTYPE
        else:
            raw[null_name(column.name)] = NULL_DTYPE
    return raw
