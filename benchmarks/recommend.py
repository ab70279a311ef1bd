"""Recommendation quality on MovieLens 100K (aepipe against popularity and EASE), and the
throughput and memory of `pipelines.recommend` against the plain-loop limit.

    .venv/bin/python benchmarks/recommend.py [--seeds 0,1,2] [--train-args "--epochs 50"]
        [--ease-lambdas 10,50,100,200,500,1000,2000] [--throughput-sizes 10000,100000,1000000]
        [--no-throughput] [--baselines-only] [--cache DIR] [--workdir DIR]

Data: MovieLens 100K as the `recbole` wheel (1.2.1) ships it. The wheel is downloaded with
`pip download --no-deps` into the cache (default bench-output/recommend/cache, git-ignored, reused
when there) and `ml-100k.inter` is read straight from it with `zipfile`: recbole is never
installed and the ratings are never copied into the repository (GroupLens' terms forbid
redistribution).

Protocol: "strong generalisation" as in Liang et al. 2018 (Mult-VAE) and their code. Ratings of 4
and more are interactions; users with at least 5 of them are kept. Per seed (one full run each),
the users are shuffled: 20% are test users, 10% validation users, the rest training users. The
item universe is the items of the training users; the held-out users' other items are dropped.
Each held-out user's items are split at random (seeded): int(20% of them) are to be found, the
rest are the fold-in input; a held-out user left with nothing to find (under 5 items after the
drop) is not evaluated. Every method ranks the universe for each fold-in set, fold-in items
excluded, and is scored on the test users as Liang's `Recall_at_k_batch` (hits in the top k /
min(k, items to find)) and `NDCG_binary_at_k_batch` (DCG over the top k with 1/log2(rank + 2)
discounts / the ideal DCG over min(k, items to find)): Recall@20, Recall@50, NDCG@100, mean over
the test users.

Methods, in the same run:

- popularity: items ranked by their number of training users;
- EASE (Steck 2019) in numpy: G = X^T X + lambda I over the training users, P = G^-1,
  B = -P / diag(P) with a zero diagonal, scores = X_foldin B; lambda is picked from the grid by
  NDCG@100 on the validation users, then scored on the test users;
- Mult-VAE (Liang et al.'s recipe, in memory, no Beam: the bound of what this family of models
  reaches here): input normalised and 50% dropout, one tanh layer of 600, a code of 200, the
  multinomial likelihood and beta 0.2, Adam 1e-3, batches of 128 for 200 epochs; the epoch is
  picked by NDCG@100 on the validation users (every 5 epochs), which aepipe never sees;
- aepipe: `pipelines.train` on the training users (a key column and an `items` column, seeded,
  plus --train-args), then `pipelines.recommend` (top 100, seen items excluded) on the DirectRunner
  over the test users' fold-in sets, in a fresh process.

Throughput (unless --no-throughput or --baselines-only): synthetic fold-in tables of N users,
resampled (seeded) from the first seed's held-out fold-in sets, scored by the first seed's model
(top 20) in fresh processes: bare (the `recommend` signature on input tensors built before the
clock starts), plain (pyarrow batches of aepipe.beam.validate's size through the same
`BatchRecommender`, pyarrow writes Parquet) and beam (`pipelines.recommend`). Each process
reports the seconds from the start of its work to its last call or file closed (model load
included) and its peak resident memory.

Prints one markdown table per seed, a summary (mean +- sample standard deviation over the seeds)
with aepipe's train seconds, and the throughput table; progress goes to stderr. Every per-seed
figure is also written to WORKDIR/results.json. --baselines-only needs no TensorFlow.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import io
import json
import logging
import os
import shlex
import subprocess
import sys
import time
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from harness import ROOT, measure, report, three_ways, throughput_table

sys.path.insert(0, ROOT)

LOG = logging.getLogger("benchmark.recommend")

RECBOLE = "recbole==1.2.1"
RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
INTERACTIONS = "recbole/dataset_example/ml-100k/ml-100k.inter"
DEFAULT_WORKDIR = os.path.join(ROOT, "bench-output", "recommend")
DEFAULT_CACHE = os.path.join(DEFAULT_WORKDIR, "cache")

MIN_RATING = 4.0
MIN_USER_ITEMS = 5
TEST_SHARE, VALIDATION_SHARE = 0.2, 0.1
HELD_OUT_ITEM_SHARE = 0.2
METRICS = (("Recall@20", "recall", 20), ("Recall@50", "recall", 50), ("NDCG@100", "ndcg", 100))
RANK_DEPTH = max(k for _, _, k in METRICS)
THROUGHPUT_TOP_K = 20

# aepipe's side: the input columns, the schema, and the output columns and counter it reports.
USER, ITEMS = "user_id", "items"
SCHEMA_YAML = f"""columns:
  - {{name: {USER}, kind: key, nullable: false}}
  - {{name: {ITEMS}, kind: items, nullable: false}}
"""
OUTPUT_ITEMS = "ae_items"
ROWS_COUNTER = "rows_written"
FILE_ROWS = 250_000
ROW_GROUP_ROWS = 65_536


# Data ---------------------------------------------------------------------------------------

def recbole_wheel(cache: str) -> str:
    """The recbole wheel, downloaded with pip (no dependencies) unless already in `cache`."""
    wheel = os.path.join(cache, RECBOLE_WHEEL)
    if os.path.exists(wheel):
        return wheel
    os.makedirs(cache, exist_ok=True)
    LOG.info("downloading %s into %s", RECBOLE, cache)
    subprocess.run([sys.executable, "-m", "pip", "download", RECBOLE, "--no-deps",
                    "--only-binary=:all:", "-d", cache], check=True, stdout=sys.stderr)
    if not os.path.exists(wheel):
        raise RuntimeError(f"pip download {RECBOLE} did not leave {wheel}")
    return wheel


def read_ratings(cache: str) -> pa.Table:
    """ml-100k.inter from the wheel: user_id, item_id (int64) and rating (float64)."""
    with zipfile.ZipFile(recbole_wheel(cache)) as wheel:
        data = wheel.read(INTERACTIONS)
    table = pacsv.read_csv(
        io.BytesIO(data), parse_options=pacsv.ParseOptions(delimiter="\t"),
        convert_options=pacsv.ConvertOptions(column_types={
            "user_id:token": pa.int64(), "item_id:token": pa.int64(),
            "rating:float": pa.float64()}))
    return pa.table({"user_id": table["user_id:token"], "item_id": table["item_id:token"],
                     "rating": table["rating:float"]})


def interactions(ratings: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) pairs rated MIN_RATING or more, once each, of users with MIN_USER_ITEMS of
    them; sorted by user, then item."""
    keep = ratings["rating"].to_numpy() >= MIN_RATING
    pairs = np.unique(np.stack([ratings["user_id"].to_numpy()[keep],
                                ratings["item_id"].to_numpy()[keep]], axis=1), axis=0)
    ids, counts = np.unique(pairs[:, 0], return_counts=True)
    pairs = pairs[np.isin(pairs[:, 0], ids[counts >= MIN_USER_ITEMS])]
    return pairs[:, 0], pairs[:, 1]


def group(users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The distinct users (of pairs sorted by user) and each one's items."""
    ids, starts = np.unique(users, return_index=True)
    return ids, np.split(items, starts[1:])


# Protocol -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class HeldOut:
    """Held-out users: their ids, fold-in items and items to find (dense item indices)."""
    ids: np.ndarray
    fold_in: list[np.ndarray]
    to_find: list[np.ndarray]


@dataclasses.dataclass(frozen=True)
class Split:
    item_ids: np.ndarray  # the item universe: the original id of each dense index, sorted
    train_ids: np.ndarray
    train: list[np.ndarray]  # each training user's items (dense indices)
    validation: HeldOut
    test: HeldOut

    def describe(self) -> str:
        sizes = [(len(self.train_ids), sum(map(len, self.train)))] + [
            (len(h.ids), sum(map(len, h.fold_in)) + sum(map(len, h.to_find)))
            for h in (self.validation, self.test)]
        return (f"{len(self.item_ids):,} items; users (interactions): training "
                f"{sizes[0][0]:,} ({sizes[0][1]:,}), validation {sizes[1][0]:,} "
                f"({sizes[1][1]:,}), test {sizes[2][0]:,} ({sizes[2][1]:,})")


def split_users(users: np.ndarray, items: np.ndarray, seed: int) -> Split:
    """Liang et al.'s split: users shuffled into training, validation and test; the universe is
    the training users' items; each held-out user's items split into fold-in and to-find."""
    user_rng, item_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    ids = user_rng.permutation(np.unique(users))
    n_test, n_validation = round(TEST_SHARE * len(ids)), round(VALIDATION_SHARE * len(ids))
    train_ids = np.sort(ids[:len(ids) - n_test - n_validation])
    validation_ids = np.sort(ids[len(ids) - n_test - n_validation:len(ids) - n_test])
    is_train = np.isin(users, train_ids)
    universe = np.unique(items[is_train])
    dense = np.searchsorted(universe, items)
    _, train = group(users[is_train], dense[is_train])
    in_universe = np.isin(items, universe)
    held = [hold_out(users, dense, in_universe & np.isin(users, chosen), item_rng)
            for chosen in (validation_ids, np.sort(ids[len(ids) - n_test:]))]
    return Split(universe, train_ids, train, *held)


def hold_out(users: np.ndarray, dense: np.ndarray, mask: np.ndarray,
             rng: np.random.Generator) -> HeldOut:
    """Each user's items under `mask` split: int(HELD_OUT_ITEM_SHARE * n) at random to find, the
    rest fold-in; users with nothing to find are left out (and counted in the log)."""
    ids, lists = group(users[mask], dense[mask])
    kept, fold_in, to_find = [], [], []
    for user, user_items in zip(ids, lists):
        n_find = int(HELD_OUT_ITEM_SHARE * len(user_items))
        if n_find == 0:
            continue
        chosen = np.zeros(len(user_items), dtype=bool)
        chosen[rng.choice(len(user_items), size=n_find, replace=False)] = True
        kept.append(user)
        fold_in.append(user_items[~chosen])
        to_find.append(user_items[chosen])
    if len(kept) < len(ids):
        LOG.info("%d of %d held-out users have nothing to find and are not evaluated",
                 len(ids) - len(kept), len(ids))
    return HeldOut(np.array(kept, dtype=np.int64), fold_in, to_find)


def binary_matrix(lists: list[np.ndarray], n_items: int) -> np.ndarray:
    """Users x items, 1.0 where the user has the item."""
    matrix = np.zeros((len(lists), n_items))
    rows = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    matrix[rows, np.concatenate(lists)] = 1.0
    return matrix


# Metrics ------------------------------------------------------------------------------------

def top_items(scores: np.ndarray, fold_in: list[np.ndarray], depth: int = RANK_DEPTH
              ) -> np.ndarray:
    """Each row's `depth` best items, best first, fold-in items excluded (ties by item index)."""
    scores = scores.astype(np.float64, copy=True)
    scores[binary_matrix(fold_in, scores.shape[1]) > 0] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :depth]


def ranking_metrics(ranked: np.ndarray, to_find: list[np.ndarray], n_items: int
                    ) -> dict[str, float]:
    """Liang's Recall@k and NDCG@k, mean over users; `ranked` holds dense item indices, best
    first, -1 where a list is shorter."""
    truth = np.hstack([binary_matrix(to_find, n_items), np.zeros((len(to_find), 1))]) > 0
    hits = truth[np.arange(len(ranked))[:, None], ranked]  # -1 reads the all-false column
    n_find = np.array([len(x) for x in to_find])
    discounts = 1.0 / np.log2(np.arange(2, RANK_DEPTH + 2))
    results = {}
    for name, metric, k in METRICS:
        found = hits[:, :k]
        if metric == "recall":
            results[name] = float(np.mean(found.sum(axis=1) / np.minimum(k, n_find)))
        else:
            ideal = np.cumsum(discounts[:k])[np.minimum(k, n_find) - 1]
            results[name] = float(np.mean((found * discounts[:k]).sum(axis=1) / ideal))
    return results


# Baselines ----------------------------------------------------------------------------------

def popularity(split: Split) -> dict[str, float]:
    counts = binary_matrix(split.train, len(split.item_ids)).sum(axis=0)
    scores = np.tile(counts, (len(split.test.ids), 1))
    return ranking_metrics(top_items(scores, split.test.fold_in), split.test.to_find,
                           len(split.item_ids))


def ease_weights(x: np.ndarray, lam: float) -> np.ndarray:
    """Steck's closed form: B = -P / diag(P) with P = (X^T X + lambda I)^-1, zero diagonal."""
    gram = x.T @ x
    gram[np.diag_indices_from(gram)] += lam
    inverse = np.linalg.inv(gram)
    weights = inverse / -np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return weights


def ease_metrics(weights: np.ndarray, held: HeldOut) -> dict[str, float]:
    n_items = weights.shape[0]
    scores = binary_matrix(held.fold_in, n_items) @ weights
    return ranking_metrics(top_items(scores, held.fold_in), held.to_find, n_items)


def ease(split: Split, lambdas: list[float]) -> tuple[dict[str, float], float]:
    """EASE with the lambda of the best validation NDCG@100, scored on the test users."""
    x = binary_matrix(split.train, len(split.item_ids))
    best, best_ndcg = lambdas[0], -1.0
    for lam in lambdas:
        ndcg = ease_metrics(ease_weights(x, lam), split.validation)["NDCG@100"]
        LOG.info("EASE lambda %g: validation NDCG@100 %.4f", lam, ndcg)
        if ndcg > best_ndcg:
            best, best_ndcg = lam, ndcg
    return ease_metrics(ease_weights(x, best), split.test), best


def mult_vae(split: Split, seed: int, epochs: int = 200) -> dict[str, float]:
    """Liang et al.'s Mult-VAE in Keras, on the training users' matrix (see the module)."""
    import keras
    from keras import layers, ops

    n_items = len(split.item_ids)
    keras.utils.set_random_seed(seed)

    class MultVAE(keras.Model):
        def __init__(self):
            super().__init__()
            self.drop = layers.Dropout(0.5)
            self.encoder = keras.Sequential([layers.Dense(600, activation="tanh"),
                                             layers.Dense(2 * 200)])
            self.decoder = keras.Sequential([layers.Dense(600, activation="tanh"),
                                             layers.Dense(n_items)])
            self.noise = keras.random.SeedGenerator(seed)

        def call(self, x, training=False):
            h = x / ops.sqrt(ops.maximum(ops.sum(x, axis=1, keepdims=True), 1.0))
            mean, log_var = ops.split(self.encoder(self.drop(h, training=training)), 2, axis=1)
            if not training:
                return self.decoder(mean)
            self.add_loss(0.2 * ops.mean(-0.5 * ops.sum(
                1.0 + log_var - mean ** 2 - ops.exp(log_var), axis=1)))
            noise = keras.random.normal(ops.shape(mean), seed=self.noise)
            return self.decoder(mean + ops.exp(0.5 * log_var) * noise)

    def multinomial(x, logits):
        return -ops.sum(ops.log_softmax(logits, axis=-1) * x, axis=-1)

    def scores(model, held: HeldOut) -> dict[str, float]:
        logits = np.asarray(model(binary_matrix(held.fold_in, n_items).astype(np.float32)))
        return ranking_metrics(top_items(logits, held.fold_in), held.to_find, n_items)

    model = MultVAE()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=multinomial)
    x = binary_matrix(split.train, n_items).astype(np.float32)
    best, best_ndcg = {}, -1.0
    for epoch in range(1, epochs + 1):
        model.fit(x, x, batch_size=128, epochs=1, verbose=0, shuffle=True)
        if epoch % 5 == 0:
            ndcg = scores(model, split.validation)["NDCG@100"]
            if ndcg > best_ndcg:
                best, best_ndcg = {**scores(model, split.test), "epoch": epoch}, ndcg
    LOG.info("seed %d: Mult-VAE best at epoch %d (validation NDCG@100 %.4f)", seed,
             best["epoch"], best_ndcg)
    return best


# aepipe -------------------------------------------------------------------------------------

# aepipe's runs: (label, train arguments, validated on the protocol's validation users); the
# first is the default, the others run with --variants.
VARIANTS = [
    ("aepipe, default options", [], False),
    ("aepipe, default options, the protocol's validation users", [], True),
    ("aepipe --model vae, the protocol's validation users", ["--model", "vae"], True),
]

def write_users(path: str, ids: np.ndarray, lists: list[np.ndarray]) -> None:
    """One Parquet file: user_id (int64) and items (list<int64>, original item ids)."""
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int32)
    values = np.concatenate(lists).astype(np.int64) if lists else np.zeros(0, np.int64)
    table = pa.table({USER: pa.array(ids, pa.int64()),
                      ITEMS: pa.ListArray.from_arrays(pa.array(offsets), pa.array(values),
                                                     type=pa.list_(pa.int64()))})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS)


def train_aepipe(directory: str, split: Split, seed: int, train_args: list[str],
                 validation_users: bool = False) -> tuple[str, float]:
    """`pipelines.train` on the training users (with `validation_users`, validated on the
    protocol's validation users, whole, rather than on a hash split of the training users);
    returns the model directory and wall seconds."""
    pattern = os.path.join(directory, "train.parquet")
    write_users(pattern, split.train_ids, [split.item_ids[x] for x in split.train])
    if validation_users:
        held = split.validation
        validation = os.path.join(directory, "validation.parquet")
        write_users(validation, held.ids, [split.item_ids[np.concatenate([a, b])]
                                           for a, b in zip(held.fold_in, held.to_find)])
        train_args = [*train_args, "--validation-input", validation]
    schema = os.path.join(directory, "schema.yaml")
    with open(schema, "w") as f:
        f.write(SCHEMA_YAML)
    model_dir = os.path.join(directory, "model")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines.train", "--input", pattern, "--schema",
                    schema, "--model-dir", model_dir, "--overwrite", "--seed", str(seed),
                    *train_args], check=True, cwd=ROOT, stdout=sys.stderr)
    seconds = time.perf_counter() - started
    LOG.info("seed %d: aepipe trained in %.1f s", seed, seconds)
    return model_dir, seconds


def read_recommendations(prefix: str, split: Split) -> np.ndarray:
    """The test users' ranked items from `prefix-*.parquet`, as dense indices (-1 padded, in
    the order of split.test.ids); items outside the universe or in the fold-in set are dropped
    (and logged), users missing from the output rank nothing."""
    table = pa.concat_tables(pq.read_table(p, columns=[USER, OUTPUT_ITEMS])
                             for p in sorted(glob.glob(f"{prefix}-*.parquet")))
    row_of = {int(user): row for row, user in enumerate(split.test.ids)}
    ranked = np.full((len(split.test.ids), RANK_DEPTH), -1, dtype=np.int64)
    dropped = 0
    for user, recommended in zip(table[USER].to_pylist(), table[OUTPUT_ITEMS].to_pylist()):
        row = row_of[user]
        ids = np.array(recommended, dtype=np.int64)
        dense = np.searchsorted(split.item_ids, ids).clip(0, len(split.item_ids) - 1)
        valid = (split.item_ids[dense] == ids) & ~np.isin(dense, split.test.fold_in[row])
        dropped += int((~valid).sum())
        kept = dense[valid][:RANK_DEPTH]
        ranked[row, :len(kept)] = kept
    missing = len(split.test.ids) - len(set(table[USER].to_pylist()))
    if dropped or missing:
        LOG.warning("aepipe output: %d items dropped (outside the universe or fold-in), %d users "
                    "missing", dropped, missing)
    return ranked


def aepipe_metrics(directory: str, model_dir: str, split: Split) -> dict[str, float]:
    """`pipelines.recommend` (top RANK_DEPTH) over the test users' fold-in sets, in a child."""
    pattern = os.path.join(directory, "test-fold-in.parquet")
    write_users(pattern, split.test.ids, [split.item_ids[x] for x in split.test.fold_in])
    output = os.path.join(directory, "recommendations")
    result = measure(__file__, "beam", "0", pattern, model_dir, output, str(RANK_DEPTH))
    prefix = os.path.join(output, "recs")
    LOG.info("aepipe recommended for %d test users in %.1f s", result["rows"], result["seconds"])
    return ranking_metrics(read_recommendations(prefix, split), split.test.to_find,
                           len(split.item_ids))


# Throughput ---------------------------------------------------------------------------------

def synthetic_fold_ins(directory: str, split: Split, users: int, seed: int) -> str:
    """`users` fold-in sets drawn with replacement from the held-out users', user ids 0..N-1,
    in files of FILE_ROWS users; returns their glob."""
    subprocess.run(["rm", "-rf", directory], check=True)
    pool = [split.item_ids[x] for x in split.validation.fold_in + split.test.fold_in]
    drawn = np.random.default_rng(seed).integers(0, len(pool), size=users)
    for index, start in enumerate(range(0, users, FILE_ROWS)):
        chunk = drawn[start:start + FILE_ROWS]
        write_users(os.path.join(directory, f"part-{index:03d}.parquet"),
                    np.arange(start, start + len(chunk)), [pool[i] for i in chunk])
    return os.path.join(directory, "*.parquet")


def throughput(workdir: str, split: Split, model_dir: str, sizes: list[int], seed: int
               ) -> list[tuple[int, dict[str, dict]]]:
    """The three ways' reports at each size, each run in a fresh process."""
    rows = []
    for n in sizes:
        pattern = synthetic_fold_ins(os.path.join(workdir, "throughput", f"data-{n}"), split, n,
                                     seed)
        output = os.path.join(workdir, "throughput", "out", str(n))
        runs = three_ways(__file__, n, pattern, model_dir, output, str(THROUGHPUT_TOP_K))
        LOG.info("%d users: %s", n, ", ".join(f"{kind} {run['seconds']:.1f} s"
                                              for kind, run in runs.items()))
        rows.append((n, runs))
    return rows


# Children -----------------------------------------------------------------------------------

def _batches(pattern: str):
    """The files' record batches, as the job's reader cuts them."""
    from aepipe.beam.validate import MAX_BATCH_ROWS
    from aepipe.io import files as fileio

    for path in fileio.match(pattern):
        yield from pq.ParquetFile(path).iter_batches(batch_size=MAX_BATCH_ROWS)


def run_bare(pattern: str, model_dir: str, output: str, top_k: int) -> dict:
    """The bound: the `recommend` signature on tensors built before the clock starts."""
    from aepipe.store.reader import ModelDirectory

    started = time.perf_counter()
    model = ModelDirectory(model_dir).load()
    loading = time.perf_counter() - started
    batches = list(_batches(pattern))
    inputs = [model.inputs(batch) for batch in batches]
    started = time.perf_counter()
    for tensors, batch in zip(inputs, batches):
        model.signature("recommend")(**tensors, top_k=top_k, exclude_seen=True)
    return {"rows": sum(b.num_rows for b in batches),
            "seconds": loading + time.perf_counter() - started}


def run_plain(pattern: str, model_dir: str, output: str, top_k: int) -> dict:
    """The loop: pyarrow reads, `BatchRecommender` calls and pyarrow writes."""
    from aepipe.beam.recommend import BatchRecommender
    from aepipe.io import files as fileio
    from aepipe.options import RecommendOptions
    from aepipe.store.reader import ModelDirectory

    started = time.perf_counter()
    model = ModelDirectory(model_dir)
    options = RecommendOptions(top_k=top_k, exclude_seen=True)
    rows = 0
    os.makedirs(output, exist_ok=True)
    for index, path in enumerate(fileio.match(pattern)):
        recommender = BatchRecommender(model, pq.ParquetFile(path).schema_arrow, options)
        with pq.ParquetWriter(os.path.join(output, f"part-{index:05d}.parquet"),
                              recommender.output_schema) as writer:
            for batch in _batches(path):
                recommended, _ = recommender(batch)
                writer.write_batch(recommended)
                rows += batch.num_rows
    return {"rows": rows, "seconds": time.perf_counter() - started}


def run_beam(pattern: str, model_dir: str, output: str, top_k: int) -> dict:
    """`pipelines.recommend` on the DirectRunner, writing `output/recs-*.parquet`."""
    from aepipe.options import RecommendOptions
    from pipelines.recommend import recommend

    started = time.perf_counter()
    counters = recommend(input_pattern=pattern, model_dir=model_dir,
                         output=os.path.join(output, "recs"),
                         options=RecommendOptions(top_k=top_k, exclude_seen=True), overwrite=True)
    return {"rows": counters[ROWS_COUNTER], "seconds": time.perf_counter() - started}


RUNS = {"bare": run_bare, "plain": run_plain, "beam": run_beam}


def child(kind: str, size: str, pattern: str, model_dir: str, output: str, top_k: str) -> None:
    subprocess.run(["rm", "-rf", output], check=True)
    report(lambda: RUNS[kind](pattern, model_dir, output, int(top_k)))


# Tables -------------------------------------------------------------------------------------

def seed_table(seed: int, split: Split, results: dict[str, dict]) -> str:
    lines = [f"seed {seed}: {split.describe()}", "",
             "| method | " + " | ".join(name for name, _, _ in METRICS) + " | train s |",
             "|---|" + "---:|" * (len(METRICS) + 1)]
    for method, figures in results.items():
        seconds = figures.get("train_seconds")
        label = f"EASE (λ={figures['lambda']:g})" if method == "EASE" else method
        lines.append(f"| {label} | " + " | ".join(f"{figures[n]:.4f}" for n, _, _ in METRICS)
                     + f" | {'' if seconds is None else f'{seconds:.1f}'} |")
    return "\n".join(lines)


def summary_table(per_seed: dict[int, dict[str, dict]]) -> str:
    seeds = list(per_seed)
    lines = [f"mean ± std over seeds {','.join(map(str, seeds))}", "",
             "| method | " + " | ".join(name for name, _, _ in METRICS) + " | train s |",
             "|---|" + "---:|" * (len(METRICS) + 1)]
    for method in per_seed[seeds[0]]:
        cells = [mean_std([per_seed[s][method][name] for s in seeds], 4)
                 for name, _, _ in METRICS]
        seconds = [per_seed[s][method].get("train_seconds") for s in seeds]
        cells.append("" if None in seconds else mean_std(seconds, 1))
        label = "EASE (λ by validation)" if method == "EASE" else method
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mean_std(values: list[float], digits: int) -> str:
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{np.mean(values):.{digits}f} ± {std:.{digits}f}"


# Main ---------------------------------------------------------------------------------------

def evaluate_seed(args: argparse.Namespace, users: np.ndarray, items: np.ndarray, seed: int
                  ) -> tuple[Split, dict[str, dict], str | None]:
    """Every method's test figures for one seed, and aepipe's model directory (None without)."""
    split = split_users(users, items, seed)
    LOG.info("seed %d: %s", seed, split.describe())
    results: dict[str, dict] = {"popularity": popularity(split)}
    started = time.perf_counter()
    figures, lam = ease(split, [float(x) for x in args.ease_lambdas.split(",")])
    results["EASE"] = {**figures, "lambda": lam}
    LOG.info("seed %d: EASE lambda %g picked, %.1f s with the search", seed, lam,
             time.perf_counter() - started)
    if args.baselines_only:
        return split, results, None
    if not args.no_mult_vae:
        results["Mult-VAE"] = mult_vae(split, seed)
    model_dir = None
    for label, train_args, validation_users in VARIANTS[:None if args.variants else 1]:
        directory = os.path.join(args.workdir, f"seed-{seed}", label.replace(" ", "-"))
        trained, seconds = train_aepipe(directory, split, seed,
                                        train_args + shlex.split(args.train_args),
                                        validation_users)
        results[label] = {**aepipe_metrics(directory, trained, split), "train_seconds": seconds}
        model_dir = model_dir or trained
    return split, results, model_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--train-args", default="",
                        help="extra arguments of pipelines.train, one string (shlex-split)")
    parser.add_argument("--ease-lambdas", default="10,50,100,200,500,1000,2000")
    parser.add_argument("--throughput-sizes", default="10000,100000,1000000")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--variants", action="store_true",
                        help="also train aepipe on the protocol's validation users, as EASE's "
                             "lambda and Mult-VAE's epoch are chosen, with the default and with "
                             "--model vae")
    parser.add_argument("--baselines-only", action="store_true",
                        help="popularity and EASE only: no aepipe, no throughput")
    parser.add_argument("--no-mult-vae", action="store_true",
                        help="skip the in-memory Mult-VAE reference")
    parser.add_argument("--cache", default=DEFAULT_CACHE, help="where the recbole wheel goes")
    parser.add_argument("--workdir", default=DEFAULT_WORKDIR)
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s")
    users, items = interactions(read_ratings(args.cache))
    LOG.info("%d users, %d items, %d interactions after filtering", len(np.unique(users)),
             len(np.unique(items)), len(users))
    seeds = [int(s) for s in args.seeds.split(",")]
    per_seed, tables, first = {}, [], None
    for seed in seeds:
        split, per_seed[seed], model_dir = evaluate_seed(args, users, items, seed)
        first = first or (split, model_dir)
        tables.append(seed_table(seed, split, per_seed[seed]))
        os.makedirs(args.workdir, exist_ok=True)
        with open(os.path.join(args.workdir, "results.json"), "w") as f:
            json.dump({str(s): r for s, r in per_seed.items()}, f, indent=2)
    print("\n\n".join(tables + [summary_table(per_seed)]))
    if not (args.baselines_only or args.no_throughput):
        sizes = [int(s) for s in args.throughput_sizes.split(",")]
        rows = throughput(args.workdir, first[0], first[1], sizes, seeds[0])
        print("\n" + throughput_table(rows))


if __name__ == "__main__":
    main()
