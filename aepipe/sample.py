"""`Sample`: synthetic records with the training data's schema, reproducible at any scale.

Rows are made in blocks of BLOCK_ROWS. Block b's random stream is seeded by (seed, b) alone: it
gives the normal noise and the uniform draws that the SavedModel's `sample` signature turns
into rows (a code from the model's prior, then each flag, category and quantile bin drawn from
the decoder's probabilities and each number's residual noise). So the rows depend only on the
model, the number of rows and the seed, never on the runner, the number of shards or workers,
or the order in which work finishes; and no worker holds more than one block at a time.

Key columns get fresh values that never equal a training key, without storing any: training
records each integer key's range and each string key's longest length (see aepipe.train), and
fresh integer keys count up from above that range, fresh string keys are longer.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared

from aepipe import fileio
from aepipe.batches import from_model_outputs
from aepipe.errors import ModelDirError, OptionsError, SchemaError
from aepipe.model_dir import ModelDirectory, load_shared
from aepipe.privacy import DistanceGuard, check_options
from aepipe.progress import Progress
from aepipe.schema import Kind, is_string_type
from aepipe.validate import METRICS_NAMESPACE

__all__ = ["BLOCK_ROWS", "DEFAULT_KEY_PREFIX", "BlockSampler", "Sample", "synthetic_schema"]

BLOCK_ROWS = 8192
DEFAULT_KEY_PREFIX = "syn-"


def synthetic_schema(model: ModelDirectory) -> pa.Schema:
    """The training input's Arrow schema, less the ignored columns (which are not sampled)."""
    return model.manifest.input_arrow_schema


class BlockSampler:
    """Makes block b of N synthetic rows: the framework-free core of `Sample`."""

    def __init__(self, model: ModelDirectory, *, num_rows: int, seed: int,
                 key_prefix: str = DEFAULT_KEY_PREFIX, guard: DistanceGuard | None = None):
        if num_rows < 0:
            raise OptionsError(f"--num-rows must not be negative (got {num_rows})")
        self.model = model
        self.num_rows = num_rows
        self.seed = seed
        self.key_prefix = key_prefix
        self.guard = guard
        self.output_schema = synthetic_schema(model)
        self._ranges = model.manifest.passthrough_ranges
        self._keys = {field.name: _fresh_keys(field, self._ranges, key_prefix, num_rows,
                                              model.path)
                      for field in self.output_schema
                      if model.schema[field.name].kind is Kind.KEY}

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
        decoded = self.model.sample(rows, rng)
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
            return self._keys[field.name](indices)
        if kind is Kind.TIMESTAMP:
            return _times(field.type, self._ranges.get(field.name), len(indices), rng)
        return from_model_outputs(decoded, self.model.schema[field.name], field.type)


@dataclasses.dataclass(frozen=True)
class _FreshKeys:
    """A key column's fresh values for row indices: for integer keys, `start` + the index; for
    string (binary) keys, the prefix and the index zero-padded to `digits`."""

    arrow_type: pa.DataType
    prefix: str
    start: int = 0
    digits: int = 1

    def __call__(self, indices: np.ndarray) -> pa.Array:
        if pa.types.is_integer(self.arrow_type):
            return pc.add_checked(pa.array(indices).cast(self.arrow_type),
                                  pa.scalar(self.start, self.arrow_type))
        digits = np.char.zfill(indices.astype(str), self.digits)
        return pa.array(np.char.add(self.prefix, digits)).cast(self.arrow_type)


def _fresh_keys(field: pa.Field, ranges: dict, prefix: str, num_rows: int,
                model_path: str) -> _FreshKeys:
    """Fresh keys that never equal a training key, and are unique: integers from one above the
    largest training key; strings one character (binary keys: one byte) longer than the longest
    training key, and strings of different lengths differ. Refuses a model that recorded no
    range for the column, and integers that would pass the type's maximum."""
    name, arrow_type = field.name, field.type
    binary = pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
    if not (pa.types.is_integer(arrow_type) or is_string_type(arrow_type) or binary):
        raise SchemaError(f"key column {name!r} has type {arrow_type}: sample makes fresh keys "
                          "only for integer, string and binary keys")
    if name not in ranges:
        raise ModelDirError(f"model directory {model_path} records no range for key column "
                            f"{name!r} (it was trained before aepipe recorded key ranges), so "
                            "fresh keys could repeat training keys; retrain it with this "
                            "version of aepipe")
    bounds = ranges[name]  # None: training saw no key
    if pa.types.is_integer(arrow_type):
        start = 0 if bounds is None else bounds[1] + 1
        largest = int(np.iinfo(arrow_type.to_pandas_dtype()).max)
        if num_rows and start + num_rows - 1 > largest:
            raise OptionsError(f"key column {name!r} ({arrow_type}): {num_rows:,} fresh keys "
                               f"from {start:,}, above every training key, would pass the "
                               f"type's maximum {largest:,}; sample at most "
                               f"{max(largest - start + 1, 0):,} rows")
        return _FreshKeys(arrow_type, prefix, start=start)
    width = len(prefix.encode("utf-8")) if binary else len(prefix)
    longest = 0 if bounds is None else bounds[1]
    return _FreshKeys(arrow_type, prefix, digits=max(1, longest + 1 - width))


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

    def __init__(self, model_dir: str, *, num_rows: int, seed: int,
                 key_prefix: str = DEFAULT_KEY_PREFIX, min_distance: float = 0.0,
                 reference: str | None = None, trust_model: bool = False):
        super().__init__()
        check_options(min_distance, has_reference=bool(reference))
        if min_distance:
            fileio.match(reference)  # a missing reference fails now, not on the workers
        sampler = BlockSampler(ModelDirectory(model_dir, trust_model=trust_model),
                               num_rows=num_rows, seed=seed, key_prefix=key_prefix)
        self.output_schema = sampler.output_schema
        self._num_blocks = sampler.num_blocks
        self._args = (model_dir, num_rows, seed, key_prefix, min_distance, reference)
        self._trust_model = trust_model  # skip the op check (aepipe.trust)

    def expand(self, pbegin):
        return (pbegin
                | "Blocks" >> beam.Create(range(self._num_blocks))
                | "Spread" >> beam.Reshuffle()
                | "Generate" >> beam.ParDo(
                    _SampleBlocks(*self._args, trust_model=self._trust_model)))


class _SampleBlocks(beam.DoFn):
    def __init__(self, model_dir: str, num_rows: int, seed: int, key_prefix: str,
                 min_distance: float, reference: str | None, *, trust_model: bool = False):
        self._args = (model_dir, num_rows, seed, key_prefix, min_distance, reference)
        self._trust_model = trust_model
        self._shared = Shared()
        self._guard_shared = Shared()
        self._sampler: BlockSampler | None = None
        self._rows = Metrics.counter(METRICS_NAMESPACE, "rows_written")
        self._dropped = Metrics.counter(METRICS_NAMESPACE, "rows_dropped_too_close")

    def setup(self):
        model_dir, num_rows, seed, key_prefix, min_distance, reference = self._args
        model = load_shared(self._shared, model_dir, trust_model=self._trust_model)
        guard = None
        if min_distance:
            guard = self._guard_shared.acquire(
                lambda: DistanceGuard.from_files(model, reference, min_distance),
                tag=f"{model_dir}|{reference}|{min_distance}")
        self._sampler = BlockSampler(model, num_rows=num_rows, seed=seed, key_prefix=key_prefix,
                                     guard=guard)
        self._progress = Progress(__name__, "sampled")

    def process(self, block: int) -> Iterator[pa.RecordBatch]:
        batch = self._sampler(block)
        self._rows.inc(batch.num_rows)
        self._progress.add(batch.num_rows)
        if self._sampler.guard is not None:
            self._dropped.inc(self._sampler.block_rows(block) - batch.num_rows)
        yield batch
