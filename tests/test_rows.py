"""Row validation (usable rows and dead letters with reasons), the tf.Transform feed and the
signatures' raw inputs of a record batch."""

import math

import numpy as np
import pyarrow as pa
import pytest

from aepipe.errors import SchemaError
from aepipe.table.arrow import signature_inputs
from aepipe.table.layout import CATEGORIES, SCALARS, Layout
from aepipe.table.rows import REASON, select, split_valid
from aepipe.table.schema import Column, Kind, Schema
from aepipe.transform.feed import CATEGORY_NULLS, to_feed

SCHEMA = Schema((
    Column("id", Kind.KEY, nullable=False),
    Column("x", Kind.NUMERIC, nullable=True),
    Column("n", Kind.INTEGER, nullable=False),
    Column("c", Kind.CATEGORICAL, nullable=True),
    Column("code", Kind.CATEGORICAL, nullable=True),
    Column("b", Kind.BOOLEAN, nullable=True),
))


def batch(**overrides):
    columns = {
        "id": pa.array(["r0", "r1", "r2"]),
        "x": pa.array([1.5, None, -2.0], pa.float64()),
        "n": pa.array([1, 2, 3], pa.int32()),
        "c": pa.array(["a", None, ""]),
        "code": pa.array([7, None, 9], pa.int16()),
        "b": pa.array([True, None, False]),
    }
    columns.update(overrides)
    return pa.RecordBatch.from_pydict(columns)


def test_feed_is_one_list_column_per_group_with_every_column_of_that_group_per_row():
    layout = Layout.of(SCHEMA)
    feed = to_feed(batch(), layout)
    assert feed.schema.names == [SCALARS, CATEGORIES, CATEGORY_NULLS]
    assert feed.schema.field(SCALARS).type == pa.list_(pa.float32())
    assert feed.schema.field(CATEGORIES).type == pa.list_(pa.binary())
    assert feed.schema.field(CATEGORY_NULLS).type == pa.list_(pa.int64())
    assert (layout.scalars, layout.categoricals) == ((SCHEMA["x"], SCHEMA["n"], SCHEMA["b"]),
                                                     (SCHEMA["c"], SCHEMA["code"]))


def test_feed_marks_nulls_and_keeps_the_empty_string_a_value():
    feed = to_feed(batch(), Layout.of(SCHEMA)).to_pydict()
    scalars = feed[SCALARS]  # x, n, b per row; NaN for null
    assert scalars[0] == [1.5, 1.0, 1.0] and scalars[2] == [-2.0, 3.0, 0.0]
    assert math.isnan(scalars[1][0]) and scalars[1][1] == 2.0 and math.isnan(scalars[1][2])
    assert feed[CATEGORIES] == [[b"a", b"7"], [b"", b""], [b"", b"9"]]
    assert feed[CATEGORY_NULLS] == [[0, 0], [1, 1], [0, 0]]  # "" in row 2 is a value


def test_signature_inputs_carry_values_and_null_masks():
    inputs = {k: v.numpy() for k, v in signature_inputs(batch(), SCHEMA.modelled).items()}
    assert inputs["x"].dtype == np.float32 and inputs["n"].dtype == np.int64
    assert inputs["b"].dtype == np.bool_ and inputs["c"].dtype == object
    np.testing.assert_array_equal(inputs["x__null"], [False, True, False])
    np.testing.assert_array_equal(inputs["c__null"], [False, True, False])
    assert list(inputs["c"]) == [b"a", b"", b""]
    assert list(inputs["code"]) == [b"7", b"", b"9"]
    assert "id" not in inputs


def test_valid_rows_pass_untouched():
    valid, rejected = split_valid(batch(), SCHEMA)
    assert valid.equals(batch())
    assert rejected.num_rows == 0 and rejected.schema.names[-1] == REASON


def test_bad_values_are_rejected_with_a_reason_naming_the_column():
    bad = batch(x=pa.array([math.nan, None, math.inf]), n=pa.array([1, None, 3]))
    valid, rejected = split_valid(bad, SCHEMA)
    assert valid.num_rows == 0
    reasons = rejected.column(REASON).to_pylist()
    assert reasons == ["x: nan is not finite", "n: null where the schema forbids nulls",
                       "x: inf is not finite"]
    assert rejected.column("id").to_pylist() == ["r0", "r1", "r2"]  # the original rows


def test_an_integer_column_stored_as_floats_rejects_fractions():
    schema = Schema((Column("id", Kind.KEY, nullable=False), Column("minute", Kind.INTEGER)))
    rows = pa.RecordBatch.from_pydict({"id": ["a", "b", "c", "d"],
                                       "minute": pa.array([3.0, None, 986.48, math.inf])})
    valid, rejected = split_valid(rows, schema)
    assert valid.column("id").to_pylist() == ["a", "b"]
    assert rejected.column(REASON).to_pylist() == ["minute: 986.48 is not a whole number",
                                                   "minute: inf is not finite"]


def test_counts_balance_when_some_rows_are_rejected():
    mixed = batch(x=pa.array([1.0, -math.inf, None]))
    valid, rejected = split_valid(mixed, SCHEMA)
    assert valid.num_rows + rejected.num_rows == mixed.num_rows
    assert valid.column("id").to_pylist() == ["r0", "r2"]
    assert rejected.column("id").to_pylist() == ["r1"]


def test_select_names_a_missing_column():
    with pytest.raises(SchemaError, match="'c'"):
        select(batch().drop_columns(["c"]), SCHEMA)
