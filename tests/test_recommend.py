"""Item set columns end to end: the schema kind, bad sets, the feed, and one model trained on a
generated interactions table (integer item ids, mixed with ordinary columns and a second item
set column) that recommends, encodes and samples. Recommendations are checked against plain loops over the model's full
ranking, and samples against the training items' frequencies."""

from __future__ import annotations

import glob
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from aepipe import datasets
from aepipe.errors import OptionsError, SchemaError
from aepipe.options import ModelOptions, RecommendOptions, SampleOptions
from aepipe.table.inference import ColumnSample, infer_schema
from aepipe.table.layout import SCALARS, Layout, items_of
from aepipe.table.rows import row_hashes, split_valid
from aepipe.table.schema import Column, Kind, Schema
from aepipe.transform.feed import to_feed

from tests.helpers import train_sample_model

USERS, HOLDOUT = 900, 100
SCHEMA = Schema.from_dict({"columns": [
    {"name": "user_id", "kind": "key", "nullable": False},
    {"name": "segment", "kind": "categorical", "nullable": False},
    {"name": "visits", "kind": "integer", "nullable": False},
    {"name": "items", "kind": "items"}]})
MODEL_SCHEMA = Schema(SCHEMA.columns + (Column("liked", Kind.ITEMS, nullable=False),))


def test_an_item_set_column_is_a_list_of_strings_or_integers_and_never_null():
    column = SCHEMA["items"]
    assert column.kind is Kind.ITEMS and not column.nullable and column.modelled
    assert all(column.accepts(t) for t in (pa.list_(pa.string()), pa.list_(pa.int32()),
                                            pa.large_list(pa.large_string())))
    assert not any(column.accepts(t) for t in (pa.string(), pa.list_(pa.float64()),
                                                pa.list_(pa.list_(pa.int64()))))
    with pytest.raises(SchemaError, match="'items': an item set column cannot be nullable"):
        Schema.from_dict({"columns": [{"name": "items", "kind": "items", "nullable": True}]})
    with pytest.raises(SchemaError, match="must match"):
        Schema((Column("items__size", Kind.ITEMS, False),))
    inferred = infer_schema(pa.schema([("basket", pa.list_(pa.int64())), ("n", pa.int64())]),
                            {"basket": ColumnSample(rows=10, nulls=3)}).schema
    assert inferred["basket"] == Column("basket", Kind.ITEMS, nullable=False)


def test_null_and_empty_sets_and_null_items_are_rejected_with_their_reason():
    batch = pa.RecordBatch.from_pydict({
        "user_id": pa.array([1, 2, 3, 4, 5]), "segment": pa.array(["a"] * 5),
        "visits": pa.array([1] * 5),
        "items": pa.array([["x", "y"], None, [], ["z", None], ["x"]], pa.list_(pa.string()))})
    valid, rejected = split_valid(batch, SCHEMA)
    assert valid.column("user_id").to_pylist() == [1, 5]
    assert rejected.column("user_id").to_pylist() == [2, 3, 4]
    assert rejected.column("reject_reason").to_pylist() == [
        "items: null where the schema forbids nulls", "items: an empty item set",
        "items: a null item in the set"]


def test_the_feed_carries_each_set_and_its_size():
    sets = [[3, 1], [7], [1, 2, 3, 4]]
    batch = pa.RecordBatch.from_pydict({
        "user_id": pa.array([1, 2, 3]), "segment": pa.array(["a", None, "b"]),
        "visits": pa.array([5, 6, None]), "items": pa.array(sets, pa.list_(pa.int64()))})
    layout = Layout.of(SCHEMA)
    feed = to_feed(batch, layout)
    assert [c.name for c in layout.scalars] == ["visits", "items__size"]
    rows = feed.column(SCALARS).to_pylist()
    assert [row[1] for row in rows] == [len(s) for s in sets]
    assert feed.column(items_of("items")).to_pylist() == [
        [str(i).encode() for i in s] for s in sets]


def test_a_sets_hash_ignores_the_order_of_its_items():
    def hashes(sets):
        return row_hashes(pa.table({"s": pa.array(sets, pa.list_(pa.int64())), "n": [1, 1]}))

    first, second = hashes([[1, 2, 3], [1, 2]])
    again, other = hashes([[3, 1, 2], [1, 3]])
    assert first == again and second != other


def _with_integer_items(table: pa.Table) -> pa.Table:
    """The items as integer ids, and a second item set column of strings, `liked`: the first
    half of each set."""
    names = table.column("items").to_pylist()
    ids = pa.array([[int(item.removeprefix("item-")) for item in row] for row in names],
                   pa.list_(pa.int64()))
    liked = pa.array([row[:max(1, len(row) // 2)] for row in names], pa.list_(pa.string()))
    return table.set_column(table.schema.get_field_index("items"), "items",
                            ids).append_column("liked", liked)


@pytest.fixture(scope="session")
def interactions_files(tmp_path_factory) -> dict[str, str]:
    table = _with_integer_items(datasets.interactions(USERS + HOLDOUT, items=150, seed=3))
    root = tmp_path_factory.mktemp("interactions")
    files = {"train": str(root / "train.parquet"), "holdout": str(root / "holdout.parquet")}
    pq.write_table(table.slice(0, USERS), files["train"])
    pq.write_table(table.slice(USERS), files["holdout"])
    return files


@pytest.fixture(scope="session")
def items_model(interactions_files, tmp_path_factory):
    from aepipe.store.reader import ModelDirectory

    model_dir = os.path.join(str(tmp_path_factory.mktemp("items-model")), "model")
    train_sample_model(interactions_files["train"], MODEL_SCHEMA, model_dir,
                       ModelOptions(seed=1, steps=600))
    return ModelDirectory(model_dir)


def _recommender(model, k: int, exclude_seen: bool):
    from aepipe.beam.recommend import BatchRecommender

    return BatchRecommender(model, model.manifest.input_arrow_schema,
                            RecommendOptions(top_k=k, exclude_seen=exclude_seen,
                                             column="items"))


def test_recommendations_are_the_full_ranking_less_the_seen_items(items_model,
                                                                  interactions_files):
    batch = pq.read_table(interactions_files["holdout"]).to_batches()[0]
    vocabulary = items_model.manifest.vocabularies["items"]
    ranked, _ = _recommender(items_model, len(vocabulary), False)(batch)
    top, rejected = _recommender(items_model, 10, True)(batch)
    assert rejected.num_rows == 0 and top.num_rows == batch.num_rows
    assert top.schema.field("ae_items").type == pa.list_(pa.int64())
    for row, seen, full, full_scores, items, scores in zip(
            top.column("user_id").to_pylist(), batch.column("items").to_pylist(),
            ranked.column("ae_items").to_pylist(), ranked.column("ae_item_scores").to_pylist(),
            top.column("ae_items").to_pylist(), top.column("ae_item_scores").to_pylist()):
        assert sorted(map(str, full)) == sorted(vocabulary) and sum(full_scores) == \
            pytest.approx(1.0, abs=1e-4)
        unseen = [(item, score) for item, score in zip(full, full_scores) if item not in seen]
        assert items == [item for item, _ in unseen[:10]], row
        left = sum(score for _, score in unseen)
        assert scores == pytest.approx([score / left for _, score in unseen[:10]], rel=1e-3)


def test_the_recommend_transform_sends_rows_with_no_known_item_to_the_dead_letters(
        items_model, interactions_files):
    from apache_beam.io.parquetio import ReadFromParquetBatched

    from aepipe.beam.recommend import Recommend
    from aepipe.beam.validate import ValidateBatches

    holdout = pq.read_table(interactions_files["holdout"]).slice(0, 5)
    unknown = holdout.slice(0, 2).set_column(
        3, "items", pa.array([[100_001, 100_002], [100_003]], pa.list_(pa.int64())))
    path = interactions_files["holdout"].replace("holdout", "with-unknown")
    pq.write_table(pa.concat_tables([holdout, unknown.set_column(
        0, "user_id", pa.array([-1, -2]))]), path)
    schema = items_model.manifest.input_arrow_schema
    with TestPipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        valid, _ = p | ReadFromParquetBatched(path) | ValidateBatches(MODEL_SCHEMA, schema)
        recommended, rejected = valid | Recommend(
            items_model.path, schema, options=RecommendOptions(top_k=3, column="items"))
        assert_that(recommended | "Keys" >> _flat("user_id"),
                    equal_to(holdout.column("user_id").to_pylist()))
        assert_that(rejected | "Reasons" >> _flat("reject_reason"), equal_to([
            "items: none of its 2 item(s) is in the model's vocabulary",
            "items: none of its 1 item(s) is in the model's vocabulary"]), label="Rejected")


def _flat(name: str):
    import apache_beam as beam

    return beam.FlatMap(lambda batch: batch.column(name).to_pylist())


def test_the_recommend_job_balances_its_counts_and_refuses_a_model_without_sets(
        items_model, interactions_files, trained_model_dir, tmp_path):
    from pipelines.recommend import recommend

    output = str(tmp_path / "recs" / "top")
    counters = recommend(input_pattern=interactions_files["holdout"], model_dir=items_model.path,
                         output=output, options=RecommendOptions(top_k=5, exclude_seen=True,
                                                                 column="items"))
    assert counters["rows_read"] == HOLDOUT == counters["rows_written"]
    table = pq.read_table(glob.glob(output + "-*.parquet"))
    assert table.column_names == ["user_id", "ae_items", "ae_item_scores"]
    assert all(len(items) == 5 for items in table.column("ae_items").to_pylist())
    with pytest.raises(OptionsError, match=r"several item set columns \(items, liked\): "
                                           "choose one with --column"):
        recommend(input_pattern=interactions_files["holdout"], model_dir=items_model.path,
                  output=str(tmp_path / "unchosen"))
    with pytest.raises(OptionsError, match="no item set column"):
        recommend(input_pattern=interactions_files["holdout"], model_dir=trained_model_dir,
                  output=str(tmp_path / "adult"))


def test_sampled_sets_are_distinct_known_items_at_the_training_frequencies(
        items_model, interactions_files):
    from aepipe.beam.sample import BlockSampler

    synthetic = BlockSampler(items_model, SampleOptions(num_rows=2000, seed=4))(range(2000))
    assert synthetic.schema.field("items").type == pa.list_(pa.int64())
    assert synthetic.schema.field("liked").type == pa.list_(pa.string())
    sets = synthetic.column("items").to_pylist()
    vocabulary = {int(v) for v in items_model.manifest.vocabularies["items"]}
    assert all(sets) and all(len(set(s)) == len(s) and set(s) <= vocabulary for s in sets)
    training = pq.read_table(interactions_files["train"]).column("items").to_pylist()
    real, fake = np.zeros(150), np.zeros(150)
    for counts, rows in ((real, training), (fake, sets)):
        for row in rows:
            counts[row] += 1
    assert _spearman(real / len(training), fake / len(sets)) > 0.7
    sizes = np.array([len(s) for s in sets])
    assert abs(np.median(sizes) - np.median([len(s) for s in training])) <= 3


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


def test_rows_with_item_sets_encode_to_finite_codes(items_model, interactions_files):
    batch = pq.read_table(interactions_files["holdout"]).to_batches()[0]
    code, score = items_model.encode(batch)
    assert code.shape == (HOLDOUT, items_model.code_size)
    assert np.isfinite(code).all() and np.isfinite(score).all()


def test_a_set_that_is_not_a_list_is_refused_before_any_work(tmp_path):
    from aepipe.beam.validate import check_inputs

    path = str(tmp_path / "flat.parquet")
    pq.write_table(pa.table({"user_id": [1], "segment": ["a"], "visits": [2],
                             "items": ["x,y"]}), path)
    with pytest.raises(SchemaError, match=r"flat.parquet: column 'items' has type string, "
                                          r"which the schema's kind 'items' cannot take"):
        check_inputs(path, SCHEMA)


def test_unknown_items_beside_known_ones_are_left_out_and_counted(items_model,
                                                                  interactions_files):
    batch = pq.read_table(interactions_files["holdout"]).slice(0, 2).to_batches()[0]
    sets = batch.column("items").to_pylist()
    with_unknown = batch.set_column(3, "items", pa.array(
        [sets[0] + [100_001, 100_002], sets[1]], pa.list_(pa.int64())))
    recommender = _recommender(items_model, 5, True)
    recommended, rejected = recommender(with_unknown)
    assert recommended.num_rows == 2 and rejected.num_rows == 0
    assert recommender.unseen_items == 2
    alone, _ = _recommender(items_model, 5, True)(batch)
    assert recommended.slice(1).equals(alone.slice(1))
    assert not {100_001, 100_002} & set(recommended.column("ae_items")[0].as_py())
