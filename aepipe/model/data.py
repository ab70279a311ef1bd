"""The transformed rows, read back from their Parquet files as the model's input matrices.

Memory stays bounded whatever the number of rows: rows are read a row group at a time and
shuffled within a window of SHUFFLE_WINDOW_ROWS, in an order that depends only on the seed, the
pass and the rows' contents (for training sets that fit one window, not on the runner). Each
batch holds the layout's matrices as they are in the files; an item set's indices are padded
per batch to its longest set, with the vocabulary's size.
"""

from __future__ import annotations

import itertools
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf

from aepipe.io import files as fileio
from aepipe.table.layout import CATEGORIES, NULLS, SCALARS, Layout, items_of
from aepipe.table.rows import row_hashes

__all__ = ["SHUFFLE_WINDOW_ROWS", "count_rows", "batches", "first_rows", "dataset", "padded"]

SHUFFLE_WINDOW_ROWS = 262_144


def count_rows(files: Sequence[str]) -> int:
    return sum(fileio.parquet_file(path).metadata.num_rows for path in files)


def batches(files: Sequence[str], layout: Layout, batch_size: int,
            rng: np.random.Generator | None) -> Iterator[dict[str, np.ndarray]]:
    """Batches of the files' rows as the model's input matrices, shuffled within a window when
    `rng` is set."""
    window: list[pa.Table] = []
    rows = 0
    for table in _row_groups(files, layout.matrix_schema().names, rng):
        window.append(table)
        rows += table.num_rows
        if rows >= SHUFFLE_WINDOW_ROWS:
            yield from _split(pa.concat_tables(window), layout, batch_size, rng)
            window, rows = [], 0
    if window:
        yield from _split(pa.concat_tables(window), layout, batch_size, rng)


def first_rows(files: Sequence[str], layout: Layout, limit: int,
               rng: np.random.Generator | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Batches of the files' rows (shuffled when `rng` is set) until `limit` rows are out."""
    rows = 0
    for batch in batches(files, layout, 4096, rng):
        yield batch
        rows += len(next(iter(batch.values())))
        if rows >= limit:
            return


def dataset(files: Sequence[str], layout: Layout, batch_size: int, seed: int, *,
            shuffle: bool, hide_items: float = 0.0) -> tf.data.Dataset:
    """The files' rows in batches of (input, target) matrices, one pass each time the dataset
    is iterated; a shuffled one repeats, each pass in its own order.

    With `hide_items`, that share of every item set's items (the same ones on every pass) is
    hidden from the input but kept in the target: the validation loss then measures how well
    the model finds items it was not shown, which is what its recommendations are for, rather
    than how well it copies its input."""
    passes = itertools.count()

    def generate() -> Iterator[dict[str, np.ndarray]]:
        rng = np.random.default_rng([seed, next(passes)]) if shuffle else None
        yield from batches(files, layout, batch_size, rng)

    data = tf.data.Dataset.from_generator(generate, output_signature=_signature(layout))
    if shuffle:
        data = data.repeat()
    if not (hide_items and layout.item_sets):
        return data.map(lambda x: (x, x)).prefetch(2)

    def hide(index: tf.Tensor, x: dict) -> tuple[dict, dict]:
        shown = dict(x)
        for column, size in zip(layout.item_sets, layout.items):
            name = items_of(column.name)
            draw = tf.random.stateless_uniform(tf.shape(x[name]), seed=[seed, index])
            shown[name] = tf.where(draw < hide_items, tf.constant(size, tf.int64), x[name])
        return shown, x

    return data.enumerate().map(hide).prefetch(2)


def padded(sets: pa.Array, pad: int) -> np.ndarray:
    """Sets of indices (a list array) as one [sets, longest] matrix, padded with `pad`."""
    lengths = pc.fill_null(pc.list_value_length(sets), 0).to_numpy(zero_copy_only=False)
    matrix = np.full((len(sets), max(int(lengths.max(initial=0)), 1)), pad, np.int64)
    flat = pc.list_flatten(sets).to_numpy(zero_copy_only=False)
    rows = np.repeat(np.arange(len(sets)), lengths)
    within = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    matrix[rows, within] = flat
    return matrix


def _signature(layout: Layout) -> dict[str, tf.TensorSpec]:
    spec = {}
    if layout.scalars:
        spec[SCALARS] = tf.TensorSpec([None, len(layout.scalars)], tf.float32)
        spec[NULLS] = tf.TensorSpec([None, len(layout.scalars)], tf.float32)
    if layout.categoricals:
        spec[CATEGORIES] = tf.TensorSpec([None, len(layout.categoricals)], tf.int64)
    spec.update({items_of(c.name): tf.TensorSpec([None, None], tf.int64)
                 for c in layout.item_sets})
    return spec


def _row_groups(files: Sequence[str], names: Sequence[str],
                rng: np.random.Generator | None) -> Iterator[pa.Table]:
    groups = [(path, i) for path in files for i in range(fileio.parquet_file(path).num_row_groups)]
    order = rng.permutation(len(groups)) if rng is not None else range(len(groups))
    for k in order:
        path, i = groups[k]
        yield fileio.parquet_file(path).read_row_group(i, columns=list(names))


def _split(table: pa.Table, layout: Layout, batch_size: int,
           rng: np.random.Generator | None) -> Iterator[dict[str, np.ndarray]]:
    """Batches of a window's rows: sorted by content, then permuted when `rng` is set.

    Sorting first makes the order independent of how the runner laid the rows out in files,
    so a window holding the whole training set trains the same model on any runner.
    """
    order = np.argsort(row_hashes(table), kind="stable")
    if rng is not None:
        order = order[rng.permutation(table.num_rows)]
    widths = {SCALARS: len(layout.scalars), NULLS: len(layout.scalars),
              CATEGORIES: len(layout.categoricals)}
    dense = {name: _matrix(table.column(name), width) for name, width in widths.items()
             if name in table.column_names}
    sets = {items_of(c.name): (table.column(items_of(c.name)).combine_chunks(), size)
            for c, size in zip(layout.item_sets, layout.items)}
    for start in range(0, table.num_rows, batch_size):
        rows = order[start:start + batch_size]
        batch = {name: matrix[rows] for name, matrix in dense.items()}
        batch.update({name: padded(column.take(pa.array(rows)), size)
                      for name, (column, size) in sets.items()})
        yield batch


def _matrix(column: pa.ChunkedArray, width: int) -> np.ndarray:
    """A list column of `width` values per row as a [rows, width] matrix."""
    values = pc.list_flatten(column.combine_chunks()).to_numpy(zero_copy_only=False)
    return values.reshape(len(column), width)
