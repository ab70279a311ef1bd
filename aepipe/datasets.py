"""Datasets shipped inside the package, so the demo and the tests need no network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

__all__ = ["adult_parquet", "adult_schema", "interactions", "interactions_schema"]

_DATA = Path(__file__).parent / "data"


def adult_parquet() -> str:
    """The UCI Adult census data (48,842 rows; CC BY 4.0, see data/README.md)."""
    return str(_DATA / "adult.parquet")


def adult_schema() -> str:
    """The schema file for `adult_parquet` (also schemas/adult.yaml in the repository)."""
    return str(_DATA / "adult.yaml")


def interactions(users: int, *, items: int = 500, tastes: int = 8, seed: int = 0) -> pa.Table:
    """A synthetic interactions table, one row per user, from a seeded model of user tastes:
    `user_id` (int64), `segment` (the user's main taste, a categorical column), `visits` (an
    integer that grows with the number of items) and `items` (the ids of the items the user
    picked, list<string>).

    Each item belongs to one of `tastes` genres and has a Zipf popularity; each user likes a
    few genres (Dirichlet weights) and picks a log-normal number of distinct items, each with
    probability proportional to its popularity times the user's liking for its genre. So the
    items a user picked tell which others they would pick: the structure a recommender learns.
    Nothing in it comes from real people, so it can be shipped and shared.
    """
    rng = np.random.default_rng(seed)
    genre = rng.integers(tastes, size=items)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.8
    popularity = popularity[rng.permutation(items)]
    liking = rng.dirichlet(np.full(tastes, 0.3), size=users)
    counts = np.clip(np.round(rng.lognormal(2.5, 0.6, size=users)), 2, items // 4).astype(int)
    names = np.array([f"item-{i:04d}" for i in range(items)], dtype=object)
    sets = []
    for user in range(users):
        weights = popularity * liking[user, genre]
        sets.append(names[rng.choice(items, counts[user], replace=False,
                                     p=weights / weights.sum())].tolist())
    visits = np.round(counts * rng.lognormal(0.5, 0.3, size=users)).astype(np.int64)
    return pa.table({
        "user_id": pa.array(np.arange(users, dtype=np.int64)),
        "segment": pa.array([f"taste-{g}" for g in liking.argmax(axis=1)]),
        "visits": pa.array(visits),
        "items": pa.array(sets, pa.list_(pa.string())),
    })


def interactions_schema() -> str:
    """The schema file for `interactions` tables."""
    return str(_DATA / "interactions.yaml")
