"""`Sample`: synthetic records with the training data's schema, reproducible at any scale.

Rows are made in blocks of BLOCK_ROWS. Block b's random stream is seeded by (seed, b) alone:
codes are drawn from the model's prior, then the `generate` signature draws each flag,
category and quantile bin from the decoder's probabilities and each number's residual noise. So the rows depend only on the model, the number of
rows and the seed, never on the runner, the number of shards or workers, or the order in which
work finishes; and no worker holds more than one block at a time.
"""

from __future__ import annotations

from typing import Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared

from aepipe import fileio
from aepipe.batches import from_model_outputs
from aepipe.errors import ModelDirError, OptionsError
from aepipe.features import null_flag
from aepipe.model_dir import ModelDirectory, load_shared
from aepipe.privacy import DistanceGuard, check_options
from aepipe.prior import GaussianMixturePrior
from aepipe.schema import Kind, arrow_schema_from_json
from aepipe.validate import METRICS_NAMESPACE

__all__ = ["BLOCK_ROWS", "BlockSampler", "Sample", "synthetic_schema"]

BLOCK_ROWS = 8192


def synthetic_schema(model: ModelDirectory) -> pa.Schema:
    """The training input's Arrow schema, less the ignored columns (which are not sampled)."""
    return arrow_schema_from_json(model.manifest["input_arrow_schema"])


class BlockSampler:
    """Makes block b of N synthetic rows: the framework-free core of `Sample`."""

    def __init__(self, model: ModelDirectory, *, num_rows: int, seed: int, key_prefix: str = "",
                 guard: DistanceGuard | None = None):
        if "prior" not in model.manifest:
            raise ModelDirError(f"model directory {model.path} has no sampling prior; retrain "
                                "it with this version of aepipe")
        if num_rows < 0:
            raise OptionsError(f"--num-rows must not be negative (got {num_rows})")
        self.model = model
        self.num_rows = num_rows
        self.seed = seed
        self.key_prefix = key_prefix
        self.guard = guard
        self.output_schema = synthetic_schema(model)
        self._prior = GaussianMixturePrior.from_dict(model.manifest["prior"])
        self._ranges = model.manifest.get("passthrough_ranges", {})

    @property
    def num_blocks(self) -> int:
        return -(-self.num_rows // BLOCK_ROWS)

    def block_rows(self, block: int) -> int:
        """How many rows block `block` makes, before the distance guard drops any."""
        return min(BLOCK_ROWS, self.num_rows - block * BLOCK_ROWS)

    def __call__(self, block: int) -> pa.RecordBatch:
        first = block * BLOCK_ROWS
        rows = self.block_rows(block)
        rng = np.random.default_rng([self.seed, block])
        code = self._prior.sample(rows, rng)
        decoded = self.model.generate(code, rng)
        indices = np.arange(first, first + rows, dtype=np.int64)
        columns = [self._column(field, decoded, indices, rng) for field in self.output_schema]
        batch = pa.RecordBatch.from_arrays(columns, schema=self.output_schema)
        if self.guard is not None:
            batch = batch.filter(pa.array(self.guard.keep(batch)))
        return batch

    def _column(self, field: pa.Field, decoded: dict, indices: np.ndarray,
                rng: np.random.Generator) -> pa.Array:
        kind = self.model.schema[field.name].kind
        if kind is Kind.KEY:
            return _keys(field.type, self.key_prefix, indices)
        if kind is Kind.TIMESTAMP:
            return _times(field.type, self._ranges.get(field.name), len(indices), rng)
        return from_model_outputs(decoded[field.name], decoded[null_flag(field.name)],
                                  self.model.schema[field.name], field.type)


def _keys(arrow_type: pa.DataType, prefix: str, indices: np.ndarray) -> pa.Array:
    """Fresh unique keys: the row's index, with the prefix for string keys."""
    if pa.types.is_integer(arrow_type):
        return pa.array(indices).cast(arrow_type)
    return pa.array(np.char.add(prefix, indices.astype(str))).cast(arrow_type)


def _times(arrow_type: pa.DataType, bounds: list | None, rows: int,
           rng: np.random.Generator) -> pa.Array:
    """Uniform times within the training range (nulls when training saw none)."""
    if bounds is None:
        return pa.nulls(rows, arrow_type)
    values = pa.array(rng.integers(bounds[0], bounds[1], size=rows, endpoint=True))
    if pa.types.is_date32(arrow_type):
        values = values.cast(pa.int32())
    return values.cast(arrow_type)


class Sample(beam.PTransform):
    """Synthetic record batches from a model directory: ``pipeline | Sample(...)``.

    With `min_distance` > 0, rows closer than that to a row of the `reference` Parquet files
    (the training data) are dropped; see `aepipe.privacy`.
    """

    def __init__(self, model_dir: str, *, num_rows: int, seed: int, key_prefix: str = "",
                 min_distance: float = 0.0, reference: str | None = None):
        super().__init__()
        check_options(min_distance, has_reference=bool(reference))
        if min_distance:
            fileio.match(reference)  # a missing reference fails now, not on the workers
        sampler = BlockSampler(ModelDirectory(model_dir), num_rows=num_rows, seed=seed,
                               key_prefix=key_prefix)
        self.output_schema = sampler.output_schema
        self._num_blocks = sampler.num_blocks
        self._args = (model_dir, num_rows, seed, key_prefix, min_distance, reference)

    def expand(self, pbegin):
        return (pbegin
                | "Blocks" >> beam.Create(range(self._num_blocks))
                | "Spread" >> beam.Reshuffle()
                | "Generate" >> beam.ParDo(_SampleBlocks(*self._args)))


class _SampleBlocks(beam.DoFn):
    def __init__(self, model_dir: str, num_rows: int, seed: int, key_prefix: str,
                 min_distance: float, reference: str | None):
        self._args = (model_dir, num_rows, seed, key_prefix, min_distance, reference)
        self._shared = Shared()
        self._guard_shared = Shared()
        self._sampler: BlockSampler | None = None
        self._rows = Metrics.counter(METRICS_NAMESPACE, "rows_written")
        self._dropped = Metrics.counter(METRICS_NAMESPACE, "rows_dropped_too_close")

    def setup(self):
        model_dir, num_rows, seed, key_prefix, min_distance, reference = self._args
        model = load_shared(self._shared, model_dir)
        guard = None
        if min_distance:
            guard = self._guard_shared.acquire(
                lambda: DistanceGuard.from_files(model, reference, min_distance),
                tag=f"{model_dir}|{reference}|{min_distance}")
        self._sampler = BlockSampler(model, num_rows=num_rows, seed=seed, key_prefix=key_prefix,
                                     guard=guard)

    def process(self, block: int) -> Iterator[pa.RecordBatch]:
        batch = self._sampler(block)
        self._rows.inc(batch.num_rows)
        if self._sampler.guard is not None:
            self._dropped.inc(self._sampler.block_rows(block) - batch.num_rows)
        yield batch
