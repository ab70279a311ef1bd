"""`Sample`: synthetic records with the training data's schema, reproducible at any scale.

Rows are made in blocks of BLOCK_ROWS (CONDITIONED_BLOCK_ROWS with conditions, whose rows
cost several decodings each), by Beam's `RunInference` (`aepipe.beam.inference`).
Block b's random stream is seeded by (seed, b) alone: it
gives the normal noise and the uniform draws that the SavedModel's `sample` signature turns
into rows (a code from the model's prior, then each flag, category and quantile bin drawn from
the decoder's probabilities and each number's residual noise). So the rows depend only on the
model, the number of rows (or the conditions) and the seed, never on the runner, the number of
shards or workers, or the order in which work finishes; and no worker holds more than one block
at a time. With conditions (`aepipe.beam.conditions`), the `complete` signature makes each row
with its condition's cells fixed and the others drawn given them.

Key columns get fresh values that never equal a training key, without storing any: training
records each integer key's range and each string key's longest length (see aepipe.beam.train), and
fresh integer keys count up from above that range, fresh string keys are longer.
"""

from __future__ import annotations

import dataclasses
import functools

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aepipe.beam import counters
from aepipe.beam.conditions import Conditions
from aepipe.beam.inference import CoreHandler, RunCore
from aepipe.errors import ModelDirError, OptionsError, SchemaError
from aepipe.evaluation.guard import DistanceGuard
from aepipe.io import files as fileio
from aepipe.options import SampleOptions
from aepipe.store.reader import ModelDirectory
from aepipe.table import signatures
from aepipe.table.arrow import arrow_columns
from aepipe.table.grain import Grain
from aepipe.table.kinds import Kind, is_string_type

__all__ = ["BLOCK_ROWS", "CONDITIONED_BLOCK_ROWS", "BlockSampler", "Sample", "synthetic_schema"]

BLOCK_ROWS = 8192
CONDITIONED_BLOCK_ROWS = 1024


def synthetic_schema(model: ModelDirectory) -> pa.Schema:
    """The training input's Arrow schema, less the ignored columns (which are not sampled)."""
    return model.manifest.input_arrow_schema


class BlockSampler:
    """Makes the synthetic rows of one block: the framework-free core of `Sample`.

    A block is the range of the row indices it makes (`blocks`); with `conditions`, row i
    completes the condition `conditions.rows[i]`; with a `guard`, the rows too close to a
    training row are dropped from it.
    """

    def __init__(self, model: ModelDirectory, options: SampleOptions, *,
                 guard: DistanceGuard | None = None, conditions: Conditions | None = None):
        model.require_code("sample")
        if conditions is not None:
            model.require_signature(signatures.COMPLETE, "sample --conditions")
        self.model = model
        self.options = options
        self.guard = guard
        self.conditions = conditions
        self.num_rows = options.num_rows if conditions is None else conditions.num_rows
        self._block_rows = BLOCK_ROWS if conditions is None else CONDITIONED_BLOCK_ROWS
        self.output_schema = synthetic_schema(model)
        self._ranges = model.manifest.passthrough_ranges
        self._grains = {name: Grain.from_dict(grain)
                        for name, grain in model.manifest.value_grains.items()}
        self._keys = {field.name: _fresh_keys(field, self._ranges, options.key_prefix,
                                              self.num_rows, model.path)
                      for field in self.output_schema
                      if model.schema[field.name].kind is Kind.KEY}
        self._modelled = [field.name for field in self.output_schema
                          if model.schema[field.name].modelled]
        self._dropped = counters.counter(counters.DROPPED)

    def blocks(self) -> list[range]:
        """Every block's row indices."""
        rows, size = self.num_rows, self._block_rows
        return [range(start, min(start + size, rows)) for start in range(0, rows, size)]

    def __call__(self, block: range) -> pa.RecordBatch:
        rng = np.random.default_rng([self.options.seed, block.start // self._block_rows])
        fixed = None if self.conditions is None else self.conditions.batch(block)
        decoded = (self.model.sample(len(block), rng) if fixed is None
                   else self.model.complete(fixed, rng))
        indices = np.arange(block.start, block.stop, dtype=np.int64)
        modelled = dict(zip(self._modelled, arrow_columns(
            decoded, [self.model.schema[name] for name in self._modelled],
            [self.output_schema.field(name).type for name in self._modelled],
            self.model.manifest.value_ranges, self._grains)))
        if fixed is not None:  # the fixed cells exactly as given, not through float32
            modelled.update({name: pc.coalesce(fixed.column(name), modelled[name])
                             for name in fixed.schema.names
                             if self.model.schema[name].kind is not Kind.ITEMS})
        columns = [modelled[field.name] if field.name in modelled
                   else self._passthrough(field, indices, rng) for field in self.output_schema]
        batch = pa.RecordBatch.from_arrays(columns, schema=self.output_schema)
        if self.guard is not None:
            batch = batch.filter(pa.array(self.guard.keep(batch)))
            self._dropped.inc(len(block) - batch.num_rows)
        return batch

    def rows(self, output: pa.RecordBatch) -> int:
        return output.num_rows

    def _passthrough(self, field: pa.Field, indices: np.ndarray,
                     rng: np.random.Generator) -> pa.Array:
        """A key column's fresh keys, or a timestamp column's times."""
        if self.model.schema[field.name].kind is Kind.KEY:
            return self._keys[field.name](indices)
        return _times(field.type, self._ranges.get(field.name), len(indices), rng)

    @classmethod
    def load(cls, model: ModelDirectory, options: SampleOptions) -> "BlockSampler":
        """A sampler with its distance guard, read from `options.real` when there is one, and
        its conditions, read from `options.conditions`."""
        guard = (DistanceGuard.from_files(model, options.real, options.min_distance)
                 if options.min_distance else None)
        conditions = (Conditions.read(options.conditions, model) if options.conditions
                      else None)
        return cls(model, options, guard=guard, conditions=conditions)


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

    With `options.conditions`, one row per condition row (or its count) with the condition's
    cells fixed; see `aepipe.beam.conditions`. With `options.min_distance` > 0, rows closer than
    that to a row of the `options.real` Parquet files (the training data) are dropped; see
    `aepipe.evaluation.guard`.
    """

    def __init__(self, model_dir: str, options: SampleOptions, *, trust_model: bool = False):
        super().__init__()
        if options.min_distance:
            fileio.match(options.real)  # a missing reference fails now, not on the workers
        model = ModelDirectory(model_dir, trust_model=trust_model)
        conditions = (Conditions.read(options.conditions, model) if options.conditions
                      else None)  # refused now, not on the workers
        sampler = BlockSampler(model, options, conditions=conditions)
        self.output_schema = sampler.output_schema
        self.num_rows = sampler.num_rows
        self._blocks = sampler.blocks()
        self._handler = CoreHandler(model_dir, functools.partial(BlockSampler.load,
                                                                 options=options),
                                    done="sampled", trust_model=trust_model)

    def expand(self, pbegin):
        return (pbegin
                | "Blocks" >> beam.Create(self._blocks)
                | "Spread" >> beam.Reshuffle()
                | "Generate" >> RunCore(self._handler))
