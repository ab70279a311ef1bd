"""`TrainAutoencoder`: valid record batches in, a published model directory out.

The transform splits rows into training and validation sets by a hash of their values, runs the
TFT analysis on the training rows and the transform on both, writes the transformed rows to
Parquet in the staging directory, then fits and exports the model in one final step and
publishes the directory. Its output is a PCollection holding the model directory's path.
"""

from __future__ import annotations

import logging
import posixpath
from typing import Iterator

import apache_beam as beam
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow_transform.beam as tft_beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import WriteToParquetBatched

from aepipe import fileio
from aepipe.batches import to_tft_feed
from aepipe.errors import InputError
from aepipe.features import Features
from aepipe.options import ModelOptions
from aepipe.model_dir import TRANSFORM_FN, prepare, publish, write_manifest
from aepipe.preprocess import preprocessing_fn, tensor_adapter_config
from aepipe.schema import Kind, Schema

__all__ = ["TrainAutoencoder"]

_LOG = logging.getLogger(__name__)
_WORK = "_work"
_VALIDATION = "validation"


class TrainAutoencoder(beam.PTransform):
    """Trains an autoencoder on valid record batches (see `ValidateBatches`).

    The model directory is checked for writability when the transform is built, so a bad path
    fails before the pipeline runs. `input_arrow_schema`, the Arrow types of the input columns,
    is recorded in the manifest so that synthetic data can be written with the same types.
    """

    def __init__(self, *, schema: Schema, model_dir: str, input_arrow_schema: pa.Schema,
                 options: ModelOptions = ModelOptions(), overwrite: bool = False):
        super().__init__()
        self._schema = schema
        self._model_dir = model_dir
        self._options = options
        self._arrow_schema = input_arrow_schema
        self._staging = prepare(model_dir, overwrite=overwrite)
        self._work = posixpath.join(self._staging, _WORK)

    def expand(self, batches):
        schema, features = self._schema, Features.of(self._schema)
        train, validation = batches | "Split" >> beam.ParDo(
            _SplitByHash(schema, self._options.validation_fraction)).with_outputs(
                _VALIDATION, main="train")
        config = tensor_adapter_config(schema)
        with tft_beam.Context(temp_dir=posixpath.join(self._work, "tft")):
            train_feed = train | "FeedTrain" >> beam.Map(to_tft_feed, schema)
            validation_feed = validation | "FeedValidation" >> beam.Map(to_tft_feed, schema)
            analyze = tft_beam.AnalyzeAndTransformDataset(
                preprocessing_fn(schema, top_k=self._options.top_k,
                                 numeric=self._options.numeric),
                output_record_batches=True)
            (transformed, _), transform_fn = (train_feed, config) | analyze
            transformed_validation, _ = ((validation_feed, config), transform_fn) | (
                tft_beam.TransformDataset(output_record_batches=True))
            transform_written = transform_fn | tft_beam.WriteTransformFn(
                posixpath.join(self._staging, TRANSFORM_FN))
        written = [
            pcoll
            | f"Flatten{name}" >> beam.Map(_training_table, features)
            | f"Write{name}" >> WriteToParquetBatched(
                posixpath.join(self._work, name.lower()), schema=features.arrow_schema(),
                file_name_suffix=".parquet")
            for name, pcoll in (("Train", transformed), ("Validation", transformed_validation))
        ]
        ranges = batches | "PassthroughRanges" >> beam.CombineGlobally(
            _TimestampRanges([c.name for c in schema.passthrough if c.kind is Kind.TIMESTAMP]))
        return (
            batches.pipeline
            | "Once" >> beam.Create([None])
            | "FitAndPublish" >> beam.ParDo(
                _FitAndPublish(schema=schema, staging=self._staging, model_dir=self._model_dir,
                               options=self._options, arrow_schema=self._arrow_schema),
                beam.pvalue.AsSingleton(ranges),
                beam.pvalue.AsList(transform_written),
                beam.pvalue.AsList(written[0]),
                beam.pvalue.AsList(written[1]))
        )


class _SplitByHash(beam.DoFn):
    """Sends a row to validation when a hash of its values falls below the fraction."""

    def __init__(self, schema: Schema, fraction: float):
        self._names = [c.name for c in schema.modelled]
        self._threshold = np.uint64(int(fraction * 2**32))

    def process(self, batch: pa.RecordBatch) -> Iterator:
        frame = batch.select(self._names).to_pandas()
        hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy() >> np.uint64(32)
        is_validation = hashes < self._threshold
        if is_validation.any():
            yield beam.pvalue.TaggedOutput(_VALIDATION, batch.filter(pa.array(is_validation)))
        if not is_validation.all():
            yield batch.filter(pa.array(~is_validation))


class _TimestampRanges(beam.CombineFn):
    """The smallest and largest value of each timestamp column, as integers in its unit."""

    def __init__(self, names: list[str]):
        self._names = names

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, ranges: dict, batch: pa.RecordBatch) -> dict:
        for name in self._names:
            column = batch.column(name)
            if column.null_count == len(column):
                continue
            values = pc.min_max(_as_int64(column))
            ranges = self.merge_accumulators(
                [ranges, {name: [values["min"].as_py(), values["max"].as_py()]}])
        return ranges

    def merge_accumulators(self, accumulators) -> dict:
        merged: dict = {}
        for ranges in accumulators:
            for name, (low, high) in ranges.items():
                seen = merged.get(name, [low, high])
                merged[name] = [min(seen[0], low), max(seen[1], high)]
        return merged

    def extract_output(self, ranges: dict) -> dict:
        return ranges


def _as_int64(column: pa.Array) -> pa.Array:
    """Timestamps and dates as integers in their own unit (date32 casts only through int32)."""
    if pa.types.is_date32(column.type):
        column = column.cast(pa.int32())
    return column.cast(pa.int64())


def _training_table(element: tuple[pa.RecordBatch, dict], features: Features) -> pa.Table:
    """TFT's output (one-element list columns) as the flat columns of the training files."""
    batch, _ = element
    schema = features.arrow_schema()
    columns = [pc.list_flatten(batch.column(name)).cast(schema.field(name).type)
               for name in schema.names]
    return pa.Table.from_arrays(columns, schema=schema)


class _FitAndPublish(beam.DoFn):
    """Fits the model on the transformed files, exports it and publishes the directory.

    The side inputs only order this step after the writes it reads.
    """

    def __init__(self, *, schema: Schema, staging: str, model_dir: str, options: ModelOptions,
                 arrow_schema: pa.Schema):
        super().__init__()
        self._schema = schema
        self._staging = staging
        self._model_dir = model_dir
        self._options = options
        self._arrow_schema = arrow_schema

    def process(self, _, ranges: dict, *written) -> Iterator[str]:
        from aepipe.training import TrainingData, fit_and_export  # TensorFlow: on the worker

        work = posixpath.join(self._staging, _WORK)
        train_files = _files(posixpath.join(work, "train"))
        if not train_files:
            raise InputError("no usable training rows: every input row was rejected")
        data = TrainingData(Features.of(self._schema), train_files,
                            _files(posixpath.join(work, "validation")))
        manifest = fit_and_export(data, schema=self._schema, staging=self._staging,
                                  options=self._options, arrow_schema=self._arrow_schema,
                                  passthrough_ranges=ranges)
        FileSystems.delete([work])
        write_manifest(self._staging, manifest)
        path = publish(self._staging, self._model_dir)
        _LOG.info("model published to %s (validation loss %s)", path,
                  manifest["validation_loss"])
        yield path


def _files(prefix: str) -> list[str]:
    """The non-empty Parquet files a prefix names."""
    found = FileSystems.match([prefix + "*.parquet"])[0].metadata_list
    return sorted(m.path for m in found if fileio.parquet_file(m.path).metadata.num_rows)
