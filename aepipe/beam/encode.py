"""`Encode`: valid record batches in, record batches of codes and anomaly scores out.

Each batch goes through the SavedModel's `encode` signature in one call, by Beam's
`RunInference` (`aepipe.beam.inference`): the model is loaded once per worker process, never
pickled. The output keeps the key, timestamp and requested passthrough columns (any input
column) unchanged, but for date timestamps, which become `DATE_TIMESTAMP` timestamps; then
``ae_0 … ae_{k-1}`` (float32) or one ``ae_code`` fixed-size list, then ``ae_score``, with a
threshold ``ae_anomaly``, and with `explain` ``ae_share_<column>`` per modelled column: its
share of ``ae_score`` (a row's shares sum to 1).
"""

from __future__ import annotations


import apache_beam as beam
import numpy as np
import pyarrow as pa

from aepipe.beam.inference import ModelTransform
from aepipe.beam.passthrough import kept_arrays, kept_columns, kept_field
from aepipe.errors import OptionsError
from aepipe.options import EncodeOptions
from aepipe.store.manifest import Manifest
from aepipe.store.reader import ModelDirectory
from aepipe.table import signatures
from aepipe.table.layout import Layout

__all__ = ["EncodeOptions", "BatchEncoder", "Encode", "encoded_schema", "score_threshold",
           "share_name", "CODE_PREFIX", "CODE_LIST", "SCORE", "ANOMALY"]

CODE_PREFIX = "ae_"
CODE_LIST = "ae_code"
SCORE = "ae_score"
ANOMALY = "ae_anomaly"
SHARE_PREFIX = "ae_share_"


def score_threshold(manifest: Manifest, percentile: float) -> float:
    """The training `ae_score` at a percentile, interpolated between the recorded ones."""
    recorded = sorted((float(q), v) for q, v in manifest.score_percentiles.items())
    low, high = recorded[0][0], recorded[-1][0]
    if not low <= percentile <= high:
        raise OptionsError(f"--flag-above must be a percentile between {low} and {high}")
    return float(np.interp(percentile, [q for q, _ in recorded], [v for _, v in recorded]))


def encoded_schema(model: ModelDirectory, input_schema: pa.Schema,
                   options: EncodeOptions) -> pa.Schema:
    """The Arrow schema of the encoded output for inputs of `input_schema`."""
    fields = [kept_field(model, input_schema.field(name))
              for name in kept_columns(model, input_schema, options.passthrough)]
    if options.code_as_list:
        fields.append(pa.field(CODE_LIST, pa.list_(pa.float32(), model.code_size)))
    else:
        fields += [pa.field(f"{CODE_PREFIX}{i}", pa.float32()) for i in range(model.code_size)]
    fields.append(pa.field(SCORE, pa.float32()))
    if options.flag_above is not None:
        fields.append(pa.field(ANOMALY, pa.bool_()))
    if options.explain:
        fields += [pa.field(share_name(c), pa.float32()) for c in Layout.of(model.schema).columns]
    return pa.schema(fields)


def share_name(column: str) -> str:
    """The output column of a modelled column's share of `ae_score` (`--explain`)."""
    return SHARE_PREFIX + column


class BatchEncoder:
    """Turns a valid record batch into its encoded output batch: the framework-free core of
    `Encode`, also what a plain loop (see benchmarks/encode.py) calls."""

    def __init__(self, model: ModelDirectory, input_schema: pa.Schema,
                 options: EncodeOptions = EncodeOptions()):
        model.require_code("encode")
        self.model = model
        self.output_schema = encoded_schema(model, input_schema, options)
        self._kept = kept_columns(model, input_schema, options.passthrough)
        self._code_as_list = options.code_as_list
        self._explain = options.explain
        self._threshold = (None if options.flag_above is None
                           else score_threshold(model.manifest, options.flag_above))

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        outputs = self.model.encoded(batch)
        code, score = outputs[signatures.CODE].numpy(), outputs[signatures.SCORE].numpy()
        columns = kept_arrays(batch, self._kept, self.output_schema)
        if self._code_as_list:
            columns.append(pa.FixedSizeListArray.from_arrays(
                pa.array(code.reshape(-1), pa.float32()), code.shape[1]))
        else:
            columns += [pa.array(code[:, i], pa.float32()) for i in range(code.shape[1])]
        columns.append(pa.array(score, pa.float32()))
        if self._threshold is not None:
            columns.append(pa.array(score > self._threshold, pa.bool_()))
        if self._explain:
            errors = outputs[signatures.COLUMN_ERRORS].numpy()
            shares = errors / np.maximum(score, np.finfo(np.float32).tiny)[:, None]
            columns += [pa.array(shares[:, j], pa.float32()) for j in range(shares.shape[1])]
        return pa.RecordBatch.from_arrays(columns, schema=self.output_schema)

    def rows(self, output: pa.RecordBatch) -> int:
        return output.num_rows


class Encode(ModelTransform):
    """Encodes valid record batches (see `ValidateBatches`) with a published model:
    ``codes = batches | Encode(model_dir, input_schema, options=EncodeOptions(...))``."""

    core = BatchEncoder
    done = "encoded"

    def __init__(self, model_dir: str, input_schema: pa.Schema, *,
                 options: EncodeOptions = EncodeOptions(), trust_model: bool = False):
        super().__init__(model_dir, input_schema, options=options, trust_model=trust_model)
