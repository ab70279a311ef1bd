"""`Recommend`: valid record batches in, each row's top k items out (Mult-VAE's recommendation).

A model trained on a table with an item set column (`Kind.ITEMS`) reconstructs each row's set
as a probability over every item of its vocabulary; the items it finds likeliest, less (with
`exclude_seen`) those the row already holds, are its recommendations. Each batch goes through
the SavedModel's `recommend` signature in one call, which ranks in the graph (`tf.math.top_k`),
so no Python runs per row.

The output has one row per input row, like `Encode`'s: the key, timestamp and requested
passthrough columns, then ``ae_items`` (the k items, best first, with the item set column's own
element type) and ``ae_item_scores`` (their probabilities, float32). One row per key rather
than one per (key, rank): a feature store serves a row's whole list in one lookup, rows read
still equal rows written plus rows rejected, and SQL engines unnest a list with its position
(DuckDB's ``unnest`` with ``generate_subscripts``, BigQuery's ``UNNEST ... WITH OFFSET``).

A row none of whose items the model knows has nothing to recommend from: it goes to the
dead letters with its reason. Unknown items in other rows are left out of their sets (as
`encode` does, and as training does with items outside the vocabulary; they still count in the
set's size) and counted (``unseen_items``).
"""

from __future__ import annotations

from typing import Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aepipe.beam import counters
from aepipe.beam.inference import ModelTransform
from aepipe.beam.passthrough import kept_arrays, kept_columns, kept_field
from aepipe.beam.validate import REJECTED_TAG
from aepipe.errors import OptionsError
from aepipe.options import RecommendOptions
from aepipe.store.reader import ModelDirectory
from aepipe.table import signatures
from aepipe.table.arrow import string_array
from aepipe.table.rows import rejected_schema
from aepipe.table.schema import Kind

__all__ = ["RecommendOptions", "BatchRecommender", "Recommend", "recommended_schema",
           "item_column", "ITEMS", "SCORES"]

ITEMS = "ae_items"
SCORES = "ae_item_scores"


def item_column(model: ModelDirectory, options: RecommendOptions) -> str:
    """The item set column to recommend from; an OptionsError when there is no single one."""
    columns = [c.name for c in model.schema.modelled if c.kind is Kind.ITEMS]
    if options.column is not None:
        if options.column not in columns:
            raise OptionsError(f"--column {options.column!r} is not an item set column of the "
                               f"model (it has: {', '.join(columns) or 'none'})")
        return options.column
    if len(columns) != 1:
        raise OptionsError("the model has no item set column to recommend from"
                           if not columns else "the model has several item set columns "
                           f"({', '.join(columns)}): choose one with --column")
    return columns[0]


def recommended_schema(model: ModelDirectory, input_schema: pa.Schema,
                       options: RecommendOptions) -> pa.Schema:
    """The Arrow schema of the recommendations for inputs of `input_schema`."""
    kept = kept_columns(model, input_schema, options.passthrough)
    item_type = model.manifest.input_arrow_schema.field(item_column(model, options)).type
    return pa.schema([kept_field(model, input_schema.field(name)) for name in kept]
                     + [pa.field(ITEMS, pa.list_(item_type.value_type)),
                        pa.field(SCORES, pa.list_(pa.float32()))])


class BatchRecommender:
    """Turns a valid record batch into its recommendations and its rows with nothing to
    recommend from: the framework-free core of `Recommend`, also what a plain loop calls."""

    def __init__(self, model: ModelDirectory, input_schema: pa.Schema,
                 options: RecommendOptions):
        self.model = model
        self.options = options
        self.output_schema = recommended_schema(model, input_schema, options)
        self.rejected_schema = rejected_schema(input_schema)
        self._column = item_column(model, options)
        self._kept = kept_columns(model, input_schema, options.passthrough)
        self._vocabulary = pa.array(model.manifest.vocabularies[self._column], pa.string())
        self._unseen = counters.counter(counters.UNSEEN_ITEMS)
        self._rejected_rows = counters.counter(counters.REJECTED)
        self.unseen_items = 0  # also counted in the pipeline's metrics

    def __call__(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.RecordBatch]:
        """The recommendations of the rows that hold a known item, and the other rows with
        their reason."""
        known, unseen = self._known(batch.column(self._column))
        self.unseen_items += int(unseen.sum())
        self._unseen.inc(int(unseen.sum()))
        rejected = self._rejected(batch.filter(pa.array(~known)), unseen[~known])
        self._rejected_rows.inc(rejected.num_rows)
        batch = batch.filter(pa.array(known))
        if not batch.num_rows:
            return pa.RecordBatch.from_pylist([], schema=self.output_schema), rejected
        outputs = self.model.recommend(batch, top_k=self.options.top_k,
                                       exclude_seen=self.options.exclude_seen)
        return self._recommendations(batch, outputs), rejected

    def rows(self, output: tuple[pa.RecordBatch, pa.RecordBatch]) -> int:
        return output[0].num_rows

    def _known(self, sets: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Per row, whether any of its items is in the vocabulary, and how many are not."""
        items = pc.cast(pc.list_flatten(sets), pa.string())
        unknown = np.asarray(pc.invert(pc.is_in(items, value_set=self._vocabulary)), np.int64)
        rows = np.asarray(pc.list_parent_indices(sets))
        unseen = np.bincount(rows, weights=unknown, minlength=len(sets)).astype(np.int64)
        sizes = np.asarray(pc.list_value_length(sets).fill_null(0))
        return unseen < sizes, unseen

    def _rejected(self, batch: pa.RecordBatch, unseen: np.ndarray) -> pa.RecordBatch:
        reasons = pa.array([f"{self._column}: none of its {n} item(s) is in the model's "
                            "vocabulary" for n in unseen], pa.string())
        return pa.RecordBatch.from_arrays(batch.columns + [reasons],
                                          schema=self.rejected_schema)

    def _recommendations(self, batch: pa.RecordBatch, outputs: dict) -> pa.RecordBatch:
        """Each row's items and scores, as many as the signature says are real."""
        column = self._column
        counts = outputs[signatures.size_name(column)].numpy().astype(np.int64)
        items = outputs[column]
        width = int(items.shape[1])
        chosen = (np.arange(width)[None, :] < counts[:, None]).ravel()
        offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
        flat = string_array(items).filter(pa.array(chosen))
        scores = outputs[signatures.score_name(column)].numpy().ravel()[chosen]
        item_type = self.output_schema.field(ITEMS).type
        columns = kept_arrays(batch, self._kept, self.output_schema) + [
            pa.ListArray.from_arrays(offsets, flat).cast(item_type),
            pa.ListArray.from_arrays(offsets, pa.array(scores, pa.float32()))]
        return pa.RecordBatch.from_arrays(columns, schema=self.output_schema)


class Recommend(ModelTransform):
    """Recommends items for valid record batches (see `ValidateBatches`) with a published
    model. Unpack it as ``recommendations, rejected = batches | Recommend(...)``; a model
    without item sets fails when the transform is built."""

    core = BatchRecommender
    done = "recommended for"

    def __init__(self, model_dir: str, input_schema: pa.Schema, *,
                 options: RecommendOptions = RecommendOptions(), trust_model: bool = False):
        super().__init__(model_dir, input_schema, options=options, trust_model=trust_model)

    def expand(self, batches):
        return (super().expand(batches)
                | "Route" >> beam.ParDo(_Route()).with_outputs(REJECTED_TAG,
                                                                 main="recommended"))


class _Route(beam.DoFn):
    """A recommender's (recommended, rejected) pair of batches, each to its output."""

    def process(self, pair: tuple[pa.RecordBatch, pa.RecordBatch]) -> Iterator:
        recommended, rejected = pair
        if rejected.num_rows:
            yield beam.pvalue.TaggedOutput(REJECTED_TAG, rejected)
        if recommended.num_rows:
            yield recommended
