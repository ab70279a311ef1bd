"""`--model ease`: the item Gram matrix, EDLAE's closed form, the choice of its L2 weight and
its recommendations, each against a plain loop or a closed form written out here."""

from __future__ import annotations

import glob
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aepipe.beam.gram import ItemGram
from aepipe.errors import ModelDirError, OptionsError
from aepipe.model import linear
from aepipe.options import ModelOptions, RecommendOptions
from aepipe.table.schema import Column, Kind, Schema

SCHEMA = Schema((Column("user", Kind.KEY, nullable=False), Column("items", Kind.ITEMS, False)))


def _sets(rows: int, items: int, seed: int) -> list[list[str]]:
    """Sets drawn from two tastes, so that items co-occur."""
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(rows):
        taste = rng.integers(2)
        pool = np.arange(items)[np.arange(items) % 2 == taste]
        chosen = rng.choice(pool, size=rng.integers(2, 8), replace=False)
        sets.append([f"i{j:02d}" for j in chosen])
    return sets


def test_the_gram_combine_is_the_sum_of_each_row_s_co_occurrences():
    batches = [pa.RecordBatch.from_pydict({"s": pa.array(rows, pa.list_(pa.int64()))})
               for rows in ([[0, 2], [2, 2, 1]], [[4], []], [[1, 0, 4]])]
    expected = np.zeros((5, 5))
    for batch in batches:
        for row in batch.column("s").to_pylist():
            for i in set(row):
                for j in set(row):
                    expected[i, j] += 1
    combine = ItemGram("s")
    grams = [combine.add_input(combine.create_accumulator(), (b, None)) for b in batches]
    np.testing.assert_array_equal(combine.merge_accumulators(grams).toarray(), expected)


def test_the_weights_solve_edlaes_problem():
    """B is the minimiser of ||X - X B||² + sum_j Λ_jj ||B_j||² with a zero diagonal, column
    by column (a least-squares problem over the other items), then scaled by popularity."""
    rng = np.random.default_rng(0)
    x = (rng.random((60, 6)) < 0.4).astype(np.float64)
    gram = x.T @ x
    l2, dropout, popularity = 3.0, 0.5, 0.2
    b = linear.weights(gram, l2=l2, dropout=dropout, popularity=popularity)
    for j in range(6):
        others = [i for i in range(6) if i != j]
        penalty = np.diag(dropout / (1 - dropout) * np.diag(gram)[others] + l2)
        column = np.linalg.solve(x[:, others].T @ x[:, others] + penalty,
                                 x[:, others].T @ x[:, j])
        expected = np.zeros(6)
        expected[others] = column * max(gram[j, j], 1.0) ** -popularity
        np.testing.assert_allclose(b[:, j], expected, rtol=1e-4, atol=1e-6)


def test_ndcg_against_a_plain_loop():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(30, 40))
    shown = rng.random((30, 40)) < 0.2
    hidden = ~shown & (rng.random((30, 40)) < 0.15)
    hidden[0] = False
    values = []
    for r in range(30):
        ranked = sorted((i for i in range(40) if not shown[r, i]), key=lambda i: -scores[r, i])
        gain = sum(1 / math.log2(k + 2) for k, i in enumerate(ranked[:10]) if hidden[r, i])
        wanted = int(hidden[r].sum())
        if wanted:
            values.append(gain / sum(1 / math.log2(k + 2) for k in range(min(wanted, 10))))
    assert linear.ndcg(scores, shown, hidden, depth=10) == pytest.approx(np.mean(values))


def test_a_linear_model_is_refused_for_other_columns_and_by_encode_and_sample(
        linear_model, tmp_path):
    from aepipe.beam.train import resolved_options

    mixed = Schema(SCHEMA.columns + (Column("n", Kind.INTEGER),))
    with pytest.raises(OptionsError, match="one item set column and nothing else.*items, n"):
        resolved_options(mixed, ModelOptions(model="ease"))
    assert resolved_options(mixed, ModelOptions()).model == "vae"
    assert resolved_options(SCHEMA, ModelOptions()).model == "ease"
    with pytest.raises(OptionsError, match="at most 20,000 items"):
        ModelOptions(model="ease", item_vocabulary_size=50_000)
    from aepipe.beam.sample import BlockSampler
    from aepipe.options import SampleOptions
    from pipelines.encode import encode

    with pytest.raises(ModelDirError, match="linear model.*encode needs"):
        encode(input_pattern=linear_model["validation"], model_dir=linear_model["model"],
               output=str(tmp_path / "codes"))
    with pytest.raises(ModelDirError, match="linear model.*sample needs"):
        BlockSampler(linear_model["directory"], SampleOptions(num_rows=5, seed=1))


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory) -> dict:
    """A default model of a table of one item set column, validated on rows of its own."""
    from aepipe.store.reader import ModelDirectory
    from pipelines.train import train

    root = tmp_path_factory.mktemp("linear")
    paths = {}
    for name, (rows, seed) in {"train": (400, 0), "validation": (100, 1)}.items():
        paths[name] = str(root / f"{name}.parquet")
        pq.write_table(pa.table({"user": np.arange(rows) + 1000 * seed,
                                 "items": _sets(rows, 30, seed)}), paths[name])
    model = train(input_pattern=paths["train"], schema=SCHEMA, model_dir=str(root / "model"),
                  options=ModelOptions(), validation_pattern=paths["validation"])
    return {**paths, "model": model, "directory": ModelDirectory(model)}


def test_recommendations_are_the_closed_form_s_ranking(linear_model, tmp_path):
    """The model refits on the training and validation rows with the L2 weight its manifest
    records: the same closed form, written out here, ranks the same items."""
    from pipelines.recommend import recommend

    manifest = linear_model["directory"].manifest
    assert manifest.options.model == "ease" and manifest.options.ease_l2 > 0
    assert manifest.rows == {"train": 400, "validation": 100}
    vocabulary = manifest.vocabularies["items"]
    rows = [s for name in ("train", "validation")
            for s in pq.read_table(linear_model[name]).column("items").to_pylist()]
    x = np.zeros((len(rows), len(vocabulary)))
    for r, items in enumerate(rows):
        x[r, [vocabulary.index(i) for i in items]] = 1.0
    gram = x.T @ x
    counts = np.diag(gram)
    options = manifest.options
    inverse = np.linalg.inv(gram + np.diag(options.ease_dropout / (1 - options.ease_dropout)
                                           * counts + options.ease_l2))
    b = -inverse / np.diag(inverse)
    np.fill_diagonal(b, 0.0)
    b = b * np.maximum(counts, 1) ** -options.ease_popularity

    counters = recommend(input_pattern=linear_model["validation"],
                         model_dir=linear_model["model"], output=str(tmp_path / "recs"),
                         options=RecommendOptions(top_k=5, exclude_seen=True))
    assert counters["rows_written"] == 100 == counters["rows_read"]
    got = pq.read_table(glob.glob(str(tmp_path / "recs-*.parquet"))).to_pydict()
    held = pq.read_table(linear_model["validation"]).to_pydict()
    for user, items, scores in zip(got["user"], got["ae_items"], got["ae_item_scores"]):
        seen = held["items"][held["user"].index(user)]
        row = np.zeros(len(vocabulary))
        row[[vocabulary.index(i) for i in seen]] = 1.0
        expected = row @ b
        expected[row > 0] = -np.inf
        best = np.sort(expected)[::-1][:5]  # the five best scores (ties may swap items)
        np.testing.assert_allclose(scores, best, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(expected[[vocabulary.index(i) for i in items]], best,
                                   rtol=1e-3, atol=1e-5)


def test_the_recommend_job_counts_every_kind_of_rejected_row(linear_model, tmp_path):
    """A row with an empty set (rejected by validation) and one with only unknown items
    (rejected by recommend) are both counted."""
    from pipelines.recommend import recommend

    path = str(tmp_path / "mixed.parquet")
    pq.write_table(pa.table({"user": [1, 2, 3],
                             "items": pa.array([["i00", "i02"], [], ["nope"]],
                                               pa.list_(pa.string()))}), path)
    counters = recommend(input_pattern=path, model_dir=linear_model["model"],
                         output=str(tmp_path / "recs"))
    assert counters == {"rows_read": 3, "rows_rejected": 2, "rows_written": 1,
                        "unseen_items": 1}
    from aepipe.beam.io import default_rejected

    rejected = pq.read_table(glob.glob(default_rejected(str(tmp_path / "recs")) + "-*.parquet"))
    assert sorted(rejected.column("user").to_pylist()) == [2, 3]
