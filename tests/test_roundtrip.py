"""Property: any table within a schema survives Arrow -> signature inputs -> Arrow with its types
and null positions (values exactly, floats to float32 precision, the signatures' dtype), and the
tf.Transform feed holds every cell where the layout says."""

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from aepipe.table.arrow import arrow_column, arrow_columns, signature_inputs
from aepipe.table.layout import CATEGORIES, SCALARS, Layout
from aepipe.table.rows import split_valid
from aepipe.table.schema import Column, Kind, Schema
from aepipe.transform.feed import CATEGORY_NULLS, to_feed

SCHEMA = Schema((
    Column("x", Kind.NUMERIC), Column("n", Kind.INTEGER), Column("small", Kind.INTEGER),
    Column("c", Kind.CATEGORICAL), Column("code", Kind.CATEGORICAL), Column("b", Kind.BOOLEAN),
    Column("minute", Kind.INTEGER),
))
TYPES = pa.schema([("x", pa.float64()), ("n", pa.int64()), ("small", pa.int16()),
                   ("c", pa.string()), ("code", pa.int32()), ("b", pa.bool_()),
                   ("minute", pa.float64())])  # whole numbers stored as floats
VALUES = {
    "x": st.floats(allow_nan=False, allow_infinity=False, width=32),
    "n": st.integers(-2**62, 2**62),
    "small": st.integers(-2**15, 2**15 - 1),
    "c": st.text(max_size=20),
    "code": st.integers(-2**31, 2**31 - 1),
    "b": st.booleans(),
    "minute": st.integers(-2**40, 2**40).map(float),
}


@st.composite
def tables(draw):
    rows = draw(st.integers(0, 40))
    columns = {name: draw(st.lists(st.none() | values, min_size=rows, max_size=rows))
               for name, values in VALUES.items()}
    return pa.RecordBatch.from_pydict(columns, schema=TYPES)


@settings(max_examples=150, deadline=None)
@given(tables())
def test_model_inputs_round_trip_to_the_same_arrow_columns(batch):
    inputs = signature_inputs(batch, SCHEMA.modelled)
    for field in TYPES:
        column = SCHEMA[field.name]
        rebuilt = arrow_column(inputs, column, field.type)
        assert rebuilt.type == field.type
        assert rebuilt.is_null().equals(batch.column(field.name).is_null())
        assert rebuilt.equals(batch.column(field.name)), field.name


RANGES = {"x": [-1.5, 2.0], "n": [-7, 3], "small": [0, 100], "minute": [0.0, 59.0]}


@settings(max_examples=100, deadline=None)
@given(tables())
def test_numbers_are_kept_within_their_ranges_and_nulls_stay_null(batch):
    inputs = signature_inputs(batch, SCHEMA.modelled)
    rebuilt = arrow_columns(inputs, SCHEMA.modelled, list(TYPES.types), RANGES)
    for field, array in zip(TYPES, rebuilt):
        low, high = RANGES.get(field.name, (None, None))
        expected = [value if value is None or low is None else min(max(value, low), high)
                    for value in batch.column(field.name).to_pylist()]
        assert array.to_pylist() == expected, field.name


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.text(max_size=8), min_size=1, max_size=6), max_size=20),
       st.lists(st.lists(st.integers(-2**62, 2**62), min_size=1, max_size=6), max_size=20))
def test_item_sets_round_trip_through_the_signature_inputs(words, numbers):
    for sets, arrow_type in ((words, pa.list_(pa.string())), (numbers, pa.list_(pa.int64()))):
        column = Column("basket", Kind.ITEMS, nullable=False)
        batch = pa.RecordBatch.from_pydict({"basket": pa.array(sets, arrow_type)})
        inputs = signature_inputs(batch, (column,))
        assert inputs["basket__size"].numpy().tolist() == [len(s) for s in sets]
        assert arrow_column(inputs, column, arrow_type).equals(batch.column("basket"))


@settings(max_examples=150, deadline=None)
@given(tables())
def test_tft_feed_holds_each_row_s_cells_in_schema_order_with_nulls_marked(batch):
    layout = Layout.of(SCHEMA)
    feed = to_feed(batch, layout).to_pydict()
    for r in range(batch.num_rows):
        for value, column in zip(feed[SCALARS][r], layout.scalars):
            original = batch.column(column.name)[r].as_py()
            if original is None:
                assert np.isnan(value)
            else:
                assert value == np.float32(original)
        for value, null, column in zip(feed[CATEGORIES][r], feed[CATEGORY_NULLS][r],
                                       layout.categoricals):
            original = batch.column(column.name)[r].as_py()
            assert null == (original is None)
            assert value == (b"" if original is None else str(original).encode())


@settings(max_examples=100, deadline=None)
@given(tables(), st.lists(st.sampled_from([float("nan"), float("inf"), -float("inf")]),
                          max_size=5))
def test_validation_balances_for_any_table(batch, bad_values):
    x = batch.column("x").to_pylist()
    for i, value in enumerate(bad_values[:len(x)]):
        x[i] = value
    batch = batch.set_column(0, "x", pa.array(x, pa.float64()))
    valid, rejected = split_valid(batch, SCHEMA)
    assert valid.num_rows + rejected.num_rows == batch.num_rows
    assert rejected.num_rows == min(len(bad_values), len(x))
