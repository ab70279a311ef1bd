import pyarrow as pa
import pytest

from aepipe.errors import SchemaError
from aepipe.table.schema import Column, Kind, Schema, arrow_schema_from_json, arrow_schema_to_json
from aepipe.table.inference import infer_from_files


def test_adult_schema_loads_with_every_kind_it_needs(adult_schema):
    kinds = {c.name: c.kind for c in adult_schema.columns}
    assert kinds["age"] is Kind.INTEGER
    assert kinds["workclass"] is Kind.CATEGORICAL
    assert adult_schema["workclass"].nullable and not adult_schema["age"].nullable
    assert len(adult_schema.modelled) == 15


def test_schema_round_trips_through_yaml(tmp_path):
    schema = Schema((Column("id", Kind.KEY, False), Column("x", Kind.NUMERIC),
                     Column("when", Kind.TIMESTAMP), Column("flag", Kind.BOOLEAN, False),
                     Column("blob", Kind.IGNORE)))
    path = str(tmp_path / "s.yaml")
    schema.save(path)
    assert Schema.load(path) == schema


@pytest.mark.parametrize("text, message", [
    ("columns:\n- {name: a, kind: numeric}\n- {name: a, kind: integer}\n", "listed twice"),
    ("columns:\n- {name: a, kind: numerik}\n", "unknown kind 'numerik'"),
    ("columns:\n- {name: a}\n", "needs a 'name' and a 'kind'"),
    ("columns:\n- {name: a, kind: numeric, nullable: maybe}\n", "'nullable' must be"),
    ("columns:\n- {name: a, kind: numeric, colour: red}\n", "unknown field"),
    ("columns:\n- {name: a, kind: key}\n", "no modelled column"),
    ("columns:\n- {name: a__null, kind: numeric}\n", "not end with '__null'"),
    ("columns: [\n", "not valid YAML"),
    ("rows: []\n", "'columns' list"),
])
def test_a_malformed_schema_file_is_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SchemaError, match=message) as error:
        Schema.load(str(path))
    assert str(path) in str(error.value)


def test_a_missing_schema_file_is_a_clear_error(tmp_path):
    with pytest.raises(SchemaError, match="does not exist"):
        Schema.load(str(tmp_path / "nope.yaml"))


def test_infer_schema_on_adult_matches_the_shipped_schema(adult_schema):
    from aepipe import datasets

    assert infer_from_files(datasets.adult_parquet()) == adult_schema


def test_infer_schema_kinds_and_nullability(tmp_path):
    import pyarrow.parquet as pq

    n = 50
    table = pa.table({
        "id": [f"row-{i}" for i in range(n)],
        "x": [i + 0.5 if i % 5 else None for i in range(n)],
        "w": [float(i % 7) if i % 5 else None for i in range(n)],  # whole numbers, nulls
        "user_id": list(range(n)),  # every value distinct and named as an id
        "n": list(range(n)),  # every value distinct, but 50 rows and no id name
        "k": [i % 3 for i in range(n)],
        "c": ["a", "b"] * (n // 2),
        "b": [True, False] * (n // 2),
        "t": pa.array(range(n), pa.timestamp("s")),
        "l": [[1, 2]] * n,
        "f": [[0.5]] * n,
    })
    pq.write_table(table, tmp_path / "t.parquet")
    schema = infer_from_files(str(tmp_path))
    assert [(c.name, c.kind, c.nullable) for c in schema.columns] == [
        ("id", Kind.KEY, False), ("x", Kind.NUMERIC, True), ("w", Kind.INTEGER, True),
        ("user_id", Kind.KEY, False), ("n", Kind.INTEGER, False), ("k", Kind.INTEGER, False),
        ("c", Kind.CATEGORICAL, False), ("b", Kind.BOOLEAN, False),
        ("t", Kind.TIMESTAMP, False), ("l", Kind.ITEMS, False), ("f", Kind.IGNORE, False)]


@pytest.mark.parametrize("kind, arrow_type, accepted", [
    (Kind.NUMERIC, pa.float64(), True), (Kind.NUMERIC, pa.int32(), True),
    (Kind.NUMERIC, pa.string(), False), (Kind.INTEGER, pa.float64(), True),
    (Kind.INTEGER, pa.string(), False),
    (Kind.CATEGORICAL, pa.large_string(), True), (Kind.CATEGORICAL, pa.int16(), True),
    (Kind.BOOLEAN, pa.int8(), False), (Kind.TIMESTAMP, pa.date32(), True),
])
def test_which_arrow_types_a_kind_accepts(kind, arrow_type, accepted):
    assert Column("c", kind).accepts(arrow_type) is accepted


def test_infer_schema_says_in_the_file_what_it_guessed_from_the_values(tmp_path):
    import pyarrow.parquet as pq

    from pipelines.cli import main

    rows = 1500
    pq.write_table(pa.table({"event": list(range(rows)),
                             "minute": [float(i % 60) if i % 9 else None for i in range(rows)],
                             "x": [i / 7 for i in range(rows)]}), tmp_path / "t.parquet")
    assert main(["infer-schema", "--input", str(tmp_path / "t.parquet"),
                 "--output", str(tmp_path / "s.yaml")]) == 0
    text = (tmp_path / "s.yaml").read_text()
    assert "nullable: false  # every value distinct: a key" in text  # 1,500 rows: a key
    assert "nullable: true  # whole numbers stored as floats: integer" in text
    assert [(c.name, c.kind) for c in Schema.load(str(tmp_path / "s.yaml")).columns] == [
        ("event", Kind.KEY), ("minute", Kind.INTEGER), ("x", Kind.NUMERIC)]


def test_arrow_schema_survives_the_manifest_encoding():
    schema = pa.schema([("a", pa.int32()), ("t", pa.timestamp("ms", tz="UTC")),
                        ("s", pa.large_string())])
    assert arrow_schema_from_json(arrow_schema_to_json(schema)) == schema
