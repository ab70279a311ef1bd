"""`Encode`: valid record batches in, record batches of codes and anomaly scores out.

Each batch goes through the SavedModel's `encode` signature in one call; the model is loaded
once per worker process (Beam's `Shared`), never pickled. The output keeps the key, timestamp
and requested passthrough columns (any input column) unchanged, but for date timestamps, which
become `DATE_TIMESTAMP` timestamps; then ``ae_0 … ae_{k-1}`` (float32) or one ``ae_code``
fixed-size list, then ``ae_score`` and, with a threshold, ``ae_anomaly``.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared

from aepipe.errors import OptionsError
from aepipe.manifest import Manifest
from aepipe.model_dir import ModelDirectory, load_shared
from aepipe.progress import Progress
from aepipe.schema import Kind
from aepipe.validate import METRICS_NAMESPACE

__all__ = ["EncodeOptions", "BatchEncoder", "Encode", "encoded_schema", "score_threshold",
           "kept_columns", "kept_field", "kept_arrays", "ModelBatches"]

CODE_PREFIX = "ae_"
CODE_LIST = "ae_code"
SCORE = "ae_score"
ANOMALY = "ae_anomaly"
# What a date32 or date64 timestamp column becomes in the output: midnight UTC of the date, as
# Feast wants event timestamps (and as pandas and Parquet write timestamps, in microseconds).
DATE_TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclasses.dataclass(frozen=True)
class EncodeOptions:
    """What the encoded output holds besides the codes and scores."""

    passthrough: tuple[str, ...] = ()  # more input columns to copy, after keys and timestamps
    code_as_list: bool = False  # one fixed_size_list<float32> column instead of ae_0 … ae_{k-1}
    flag_above: float | None = None  # a training percentile of ae_score; adds ae_anomaly


def score_threshold(manifest: Manifest, percentile: float) -> float:
    """The training `ae_score` at a percentile, interpolated between the recorded ones."""
    recorded = sorted((float(q), v) for q, v in manifest.score_percentiles.items())
    low, high = recorded[0][0], recorded[-1][0]
    if not low <= percentile <= high:
        raise OptionsError(f"--flag-above must be a percentile between {low} and {high}")
    return float(np.interp(percentile, [q for q, _ in recorded], [v for _, v in recorded]))


def kept_columns(model: ModelDirectory, input_schema: pa.Schema,
                 options: EncodeOptions) -> list[str]:
    """Input columns copied to the output: keys and timestamps, then the requested ones, which
    may be any input column (modelled, ignored, or not in the model's schema)."""
    kept = [c.name for c in model.schema.passthrough]
    for name in options.passthrough:
        if name not in input_schema.names:
            raise OptionsError(f"--passthrough column {name!r} is not among the input columns "
                               f"({', '.join(input_schema.names)})")
        if name not in kept:
            kept.append(name)
    return kept


def kept_field(model: ModelDirectory, field: pa.Field) -> pa.Field:
    """A kept column's output field: its input field, but DATE_TIMESTAMP for a date timestamp."""
    if (pa.types.is_date(field.type) and field.name in model.schema.names
            and model.schema[field.name].kind is Kind.TIMESTAMP):
        return field.with_type(DATE_TIMESTAMP)
    return field


def kept_arrays(batch: pa.RecordBatch, kept: list[str], schema: pa.Schema) -> list[pa.Array]:
    """The kept columns of a batch, cast to their output fields (the first of `schema`)."""
    return [column if column.type == field.type else column.cast(field.type)
            for column, field in zip((batch.column(name) for name in kept), schema)]


def encoded_schema(model: ModelDirectory, input_schema: pa.Schema,
                   options: EncodeOptions) -> pa.Schema:
    """The Arrow schema of the encoded output for inputs of `input_schema`."""
    fields = [kept_field(model, input_schema.field(name))
              for name in kept_columns(model, input_schema, options)]
    if options.code_as_list:
        fields.append(pa.field(CODE_LIST, pa.list_(pa.float32(), model.code_size)))
    else:
        fields += [pa.field(f"{CODE_PREFIX}{i}", pa.float32()) for i in range(model.code_size)]
    fields.append(pa.field(SCORE, pa.float32()))
    if options.flag_above is not None:
        fields.append(pa.field(ANOMALY, pa.bool_()))
    return pa.schema(fields)


class BatchEncoder:
    """Turns a valid record batch into its encoded output batch: the framework-free core of
    `Encode`, also what a plain loop (see benchmarks/encode.py) calls."""

    def __init__(self, model: ModelDirectory, input_schema: pa.Schema, options: EncodeOptions):
        self.model = model
        self.output_schema = encoded_schema(model, input_schema, options)
        self._kept = kept_columns(model, input_schema, options)
        self._code_as_list = options.code_as_list
        self._threshold = (None if options.flag_above is None
                           else score_threshold(model.manifest, options.flag_above))

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        code, score = self.model.encode(batch)
        columns = kept_arrays(batch, self._kept, self.output_schema)
        if self._code_as_list:
            columns.append(pa.FixedSizeListArray.from_arrays(
                pa.array(code.reshape(-1), pa.float32()), code.shape[1]))
        else:
            columns += [pa.array(code[:, i], pa.float32()) for i in range(code.shape[1])]
        columns.append(pa.array(score, pa.float32()))
        if self._threshold is not None:
            columns.append(pa.array(score > self._threshold, pa.bool_()))
        return pa.RecordBatch.from_arrays(columns, schema=self.output_schema)


class Encode(beam.PTransform):
    """Encodes valid record batches (see `ValidateBatches`) with a published model.

    The model directory is read (its manifest only) when the transform is built, so a missing
    model or a bad option fails before the pipeline runs.
    """

    def __init__(self, model_dir: str, input_schema: pa.Schema, *,
                 options: EncodeOptions = EncodeOptions(), trust_model: bool = False):
        super().__init__()
        self._model_dir = model_dir
        self._input_schema = input_schema
        self._options = options
        self._trust_model = trust_model  # skip the op check (aepipe.trust)
        self.output_schema = BatchEncoder(ModelDirectory(model_dir, trust_model=trust_model),
                                          input_schema, options).output_schema

    def expand(self, batches):
        return batches | beam.ParDo(_EncodeBatches(
            self._model_dir, self._input_schema, self._options, trust_model=self._trust_model))


class ModelBatches(beam.DoFn):
    """Runs a published model's framework-free core (`core`) over record batches: the model is
    loaded once per worker process (Beam's `Shared`) in `setup`, never pickled, and the rows
    done are counted and logged as they go (`done`)."""

    done = "encoded"

    def __init__(self, model_dir: str, input_schema: pa.Schema, options, *,
                 trust_model: bool = False):
        self._model_dir = model_dir
        self._input_schema = input_schema
        self._options = options
        self._trust_model = trust_model
        self._shared = Shared()
        self._written = Metrics.counter(METRICS_NAMESPACE, "rows_written")

    def core(self, model: ModelDirectory):
        """Hook: the callable that turns a batch into its output."""
        raise NotImplementedError

    def setup(self):
        model = load_shared(self._shared, self._model_dir, trust_model=self._trust_model)
        self._core = self.core(model)
        self._progress = Progress(type(self).__module__, self.done)

    def wrote(self, rows: int) -> None:
        self._written.inc(rows)
        self._progress.add(rows)


class _EncodeBatches(ModelBatches):
    def core(self, model: ModelDirectory) -> BatchEncoder:
        return BatchEncoder(model, self._input_schema, self._options)

    def process(self, batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        self.wrote(batch.num_rows)
        yield self._core(batch)
