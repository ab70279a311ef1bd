"""The item Gram matrix X^T X of an item set column, as one Beam combine: what `--model ease`
is fitted on (`aepipe.model.linear`). It is a sum over rows, so it scales with the rows on any
runner; each batch adds its own sparse X^T X."""

from __future__ import annotations

from typing import Any, Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

__all__ = ["ItemGram"]


class ItemGram(beam.CombineFn):
    """Sums X^T X over tf.Transform's output batches, X each row's items (vocabulary indices in
    the list column `column`) as 0/1. The result is a scipy sparse matrix as wide as the largest
    index seen (None for no rows)."""

    def __init__(self, column: str):
        self._column = column

    def create_accumulator(self) -> Any:
        return None

    def add_input(self, gram: Any, element: tuple[pa.RecordBatch, Any]) -> Any:
        sets = element[0].column(self._column)
        lengths = pc.fill_null(pc.list_value_length(sets), 0).to_numpy(zero_copy_only=False)
        items = pc.list_flatten(sets).to_numpy(zero_copy_only=False)
        if len(items) == 0:
            return gram
        rows = np.repeat(np.arange(len(sets)), lengths)
        x = sparse.csr_matrix((np.ones(len(items)), (rows, items)),
                              shape=(len(sets), int(items.max()) + 1))
        x.data[:] = 1.0  # an item listed twice counts once
        return self.merge_accumulators([gram, (x.T @ x).tocsr()])

    def merge_accumulators(self, grams: Iterable[Any]) -> Any:
        found = [g for g in grams if g is not None]
        if not found:
            return None
        size = max(g.shape[0] for g in found)
        total = sparse.csr_matrix((size, size))
        for gram in found:
            gram = gram.copy()
            gram.resize((size, size))
            total = total + gram
        return total

    def extract_output(self, gram: Any) -> Any:
        return gram
