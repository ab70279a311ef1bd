"""The Arrow -> TFT feed and Arrow -> signature input conversions, and row validation."""

import math

import numpy as np
import pyarrow as pa
import pytest

from aepipe.batches import REASON, split_valid, to_model_inputs, to_tft_feed
from aepipe.errors import SchemaError
from aepipe.batches import select
from aepipe.schema import Column, Kind, Schema

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


def test_feed_is_one_list_column_per_modelled_column_with_the_feed_types():
    feed = to_tft_feed(batch(), SCHEMA)
    assert feed.schema.names == ["x", "n", "c", "code", "b"]
    assert feed.schema.field("x").type == pa.list_(pa.float32())
    assert feed.schema.field("n").type == pa.list_(pa.int64())
    assert feed.schema.field("c").type == pa.list_(pa.binary())
    assert feed.schema.field("code").type == pa.list_(pa.binary())
    assert feed.schema.field("b").type == pa.list_(pa.int64())


def test_feed_turns_null_into_an_empty_list_and_a_value_into_one_element():
    feed = to_tft_feed(batch(), SCHEMA).to_pydict()
    assert feed["x"] == [[1.5], [], [-2.0]]
    assert feed["n"] == [[1], [2], [3]]
    assert feed["c"] == [[b"a"], [], [b""]]  # the empty string is a value, not a null
    assert feed["code"] == [[b"7"], [], [b"9"]]
    assert feed["b"] == [[1], [], [0]]


def test_model_inputs_carry_values_and_null_masks():
    inputs = to_model_inputs(batch(), SCHEMA)
    assert inputs["x"].dtype == np.float32 and inputs["n"].dtype == np.int64
    assert inputs["b"].dtype == np.bool_ and inputs["c"].dtype == object
    np.testing.assert_array_equal(inputs["x__null"], [False, True, False])
    np.testing.assert_array_equal(inputs["c__null"], [False, True, False])
    assert list(inputs["c"]) == ["a", "", ""]
    assert list(inputs["code"]) == ["7", "", "9"]
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


def test_counts_balance_when_some_rows_are_rejected():
    mixed = batch(x=pa.array([1.0, -math.inf, None]))
    valid, rejected = split_valid(mixed, SCHEMA)
    assert valid.num_rows + rejected.num_rows == mixed.num_rows
    assert valid.column("id").to_pylist() == ["r0", "r2"]
    assert rejected.column("id").to_pylist() == ["r1"]


def test_select_names_a_missing_column():
    with pytest.raises(SchemaError, match="'c'"):
        select(batch().drop_columns(["c"]), SCHEMA)
