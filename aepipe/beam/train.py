"""`TrainAutoencoder`: valid record batches in, a published model directory out.

The transform splits rows into training and validation sets by a hash of their values, runs the
TFT analysis on the training rows and the transform on both, writes the transformed rows to
Parquet in a work directory, then fits and exports the model in one final step and publishes
the directory. Its output is a PCollection holding the model directory's path.

The work directory (tf.Transform's temporary files, the transform output, the transformed rows)
lives under the pipeline's `--temp_location`, or in a local temporary directory when none is
given, and is deleted once the model is published: transformed training data never enters the
model directory. tf.Transform writes it through TensorFlow's file system, so it must be local or
gs://; the model directory may be on any Beam file system.
"""

from __future__ import annotations

import logging
import posixpath
import shutil
import tempfile
import uuid
from typing import Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow_transform.beam as tft_beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import WriteToParquetBatched
from apache_beam.options.pipeline_options import GoogleCloudOptions

from aepipe.beam.gram import ItemGram
from aepipe.errors import InputError, OptionsError
from aepipe.io import files as fileio
from aepipe.options import ModelOptions
from aepipe.store.manifest import TRANSFORM_FN
from aepipe.store.publish import prepare, publish, staging_for, write_manifest
from aepipe.table.grain import GrainCounts
from aepipe.table.kinds import NUMBER_KINDS, is_string_type
from aepipe.table.layout import Layout, items_of
from aepipe.table.rows import row_hashes
from aepipe.table.schema import Kind, Schema
from aepipe.transform.feed import tensor_adapter_config, to_feed
from aepipe.transform.preprocess import preprocessing_fn, statistic_outputs

__all__ = ["TrainAutoencoder", "resolved_options"]

_LOG = logging.getLogger(__name__)
_VALIDATION = "validation"


class TrainAutoencoder(beam.PTransform):
    """Trains a model on valid record batches (see `ValidateBatches`).

    Its input is one PCollection of batches, of which a `validation_fraction` of the rows
    (chosen by a hash of their values) is held out, or a pair (training batches, validation
    batches). The model directory is checked for writability when the transform is built, so
    a bad path fails before the pipeline runs; so does an option the table cannot take.
    `input_arrow_schema`, the Arrow types of the input columns, is recorded in the manifest so
    that synthetic data can be written with the same types.
    """

    def __init__(self, *, schema: Schema, model_dir: str, input_arrow_schema: pa.Schema,
                 options: ModelOptions = ModelOptions(), overwrite: bool = False):
        super().__init__()
        self._schema = schema
        self._options = resolved_options(schema, options)
        self._model_dir = prepare(model_dir, overwrite=overwrite)
        self._arrow_schema = input_arrow_schema

    def expand(self, batches):
        schema, options = self._schema, self._options
        layout = Layout.of(schema)
        pipeline = batches[0].pipeline if isinstance(batches, tuple) else batches.pipeline
        work = _work_directory(pipeline.options)
        train, validation = self._split(batches)
        transform_fn, transformed = _transform(layout, options, work, train, validation)
        written = [
            pcoll
            | f"Matrices{name}" >> beam.Map(_matrices, layout.matrix_schema())
            | f"Write{name}" >> WriteToParquetBatched(
                posixpath.join(work, name.lower()), schema=layout.matrix_schema(),
                file_name_suffix=".parquet")
            for name, pcoll in zip(("Train", "Validation"), transformed)]
        numbers = tuple(c for c in schema.modelled if c.is_number)
        rows = (train, validation) | "AllRows" >> beam.Flatten()
        ranges = rows | "Ranges" >> beam.CombineGlobally(_Ranges(schema.passthrough + numbers))
        grains = rows | "Grains" >> beam.CombineGlobally(_Grains(numbers))
        return (
            pipeline
            | "Once" >> beam.Create([None])
            | "FitAndPublish" >> beam.ParDo(
                _FitAndPublish(schema=schema, work=work, model_dir=self._model_dir,
                               options=options, arrow_schema=self._arrow_schema),
                beam.pvalue.AsSingleton(ranges),
                beam.pvalue.AsSingleton(grains),
                beam.pvalue.AsDict(_grams(pipeline, layout, options, transformed)),
                beam.pvalue.AsList(transform_fn),
                beam.pvalue.AsList(written[0]),
                beam.pvalue.AsList(written[1])))

    def _split(self, batches):
        """The training and validation batches: as given, or split by a hash of the rows."""
        if isinstance(batches, tuple):
            return batches
        return batches | "Split" >> beam.ParDo(_SplitByHash(
            self._schema, self._options.validation_fraction)).with_outputs(
                _VALIDATION, main="train")


def resolved_options(schema: Schema, options: ModelOptions) -> ModelOptions:
    """The options with their table's defaults (`ModelOptions.for_table`); a linear model for a
    table that is not one item set column is refused, naming the columns."""
    sets = [c.name for c in schema.modelled if c.kind is Kind.ITEMS]
    options = options.for_table(item_sets=bool(sets),
                                only_item_sets=len(sets) == len(schema.modelled) == 1)
    others = [c.name for c in schema.modelled if c.kind is not Kind.ITEMS]
    if options.model == "ease" and (len(sets) != 1 or others):
        raise OptionsError(f"--model ease models one item set column and nothing else; the "
                           f"schema models {', '.join(c.name for c in schema.modelled)}: use "
                           "--model vae, or mark the other columns key or ignore")
    return options


def _transform(layout: Layout, options: ModelOptions, work: str, train, validation):
    """tf.Transform: the analysis over every row (a validation row's categories and items are
    in the vocabulary too), the transform of each split; the transform_fn, written to `work`,
    and the transformed training and validation batches."""
    config = tensor_adapter_config(layout)
    with tft_beam.Context(temp_dir=posixpath.join(work, "tft")):
        feeds = [pcoll | f"Feed{name}" >> beam.Map(to_feed, layout)
                 for name, pcoll in (("Train", train), ("Validation", validation))]
        every_row = feeds | "EveryRow" >> beam.Flatten()
        transform_fn = (every_row, config) | tft_beam.AnalyzeDataset(preprocessing_fn(
            layout, vocabulary_size=options.vocabulary_size,
            item_vocabulary_size=options.item_vocabulary_size, numeric=options.numeric))
        statistics = statistic_outputs(layout, numeric=options.numeric)
        transformed = [
            ((feed, config), transform_fn) | f"Transform{name}" >> tft_beam.TransformDataset(
                exclude_outputs=statistics, output_record_batches=True)
            for name, feed in zip(("Train", "Validation"), feeds)]
        written = transform_fn | tft_beam.WriteTransformFn(posixpath.join(work, TRANSFORM_FN))
    return written, [batches for batches, _ in transformed]


def _grams(pipeline, layout: Layout, options: ModelOptions, transformed):
    """("train" | "validation", the item Gram matrix) for `--model ease`; none otherwise."""
    if options.model != "ease":
        return pipeline | "NoGrams" >> beam.Create([])
    column = items_of(layout.item_sets[0].name)
    grams = [pcoll | f"Gram{name}" >> beam.CombineGlobally(ItemGram(column))
             | f"Key{name}" >> beam.Map(lambda gram, key: (key, gram), name.lower())
             for name, pcoll in zip(("Train", "Validation"), transformed)]
    return grams | "Grams" >> beam.Flatten()


def _work_directory(options) -> str:
    """A fresh directory for the job's intermediate files: under `--temp_location` if given
    (what runners with remote workers need), else a local temporary directory."""
    temp_location = options.view_as(GoogleCloudOptions).temp_location
    if not temp_location:
        return tempfile.mkdtemp(prefix="aepipe-train-")
    return posixpath.join(temp_location, f"aepipe-train-{uuid.uuid4().hex[:12]}")


class _SplitByHash(beam.DoFn):
    """Sends a row to validation when a hash of its values falls below the fraction."""

    def __init__(self, schema: Schema, fraction: float):
        self._names = [c.name for c in schema.modelled]
        self._threshold = np.uint64(int(fraction * 2**32))

    def process(self, batch: pa.RecordBatch) -> Iterator:
        hashes = row_hashes(pa.Table.from_batches([batch.select(self._names)])) >> np.uint64(32)
        is_validation = hashes < self._threshold
        if is_validation.any():
            yield beam.pvalue.TaggedOutput(_VALIDATION, batch.filter(pa.array(is_validation)))
        if not is_validation.all():
            yield batch.filter(pa.array(~is_validation))


class _Ranges(beam.CombineFn):
    """What sampling needs of the key, timestamp, numeric and integer columns, each as [low,
    high]: a timestamp's smallest and largest value in its own unit, an integer key's smallest
    and largest value, a string key's shortest and longest length in characters (a binary key's
    in bytes), a number's smallest and largest value exactly as the input holds it (the
    transform's statistics are float32). Fresh keys are then above the range, or longer, and
    sampled numbers within it (see aepipe.beam.sample). A key column with no values, or of
    another type, is recorded as None: a model whose manifest lacks a key column was trained
    before key ranges were recorded."""

    def __init__(self, columns):
        self._kinds = {c.name: c.kind for c in columns}

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, ranges: dict, batch: pa.RecordBatch) -> dict:
        for name, kind in self._kinds.items():
            values = _range_values(batch.column(name), kind)
            if values is None or values.null_count == len(values):
                continue
            low_high = pc.min_max(values)
            ranges = self.merge_accumulators(
                [ranges, {name: [low_high["min"].as_py(), low_high["max"].as_py()]}])
        return ranges

    def merge_accumulators(self, accumulators) -> dict:
        merged: dict = {}
        for ranges in accumulators:
            for name, (low, high) in ranges.items():
                seen = merged.get(name, [low, high])
                merged[name] = [min(seen[0], low), max(seen[1], high)]
        return merged

    def extract_output(self, ranges: dict) -> dict:
        return {name: ranges.get(name) for name, kind in self._kinds.items()
                if name in ranges or kind is Kind.KEY}


class _Grains(beam.CombineFn):
    """Each number's grain (`aepipe.table.grain`), as a dict: the levels or decimals that
    sampled values keep."""

    def __init__(self, columns):
        self._names = [c.name for c in columns]

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, grains: dict, batch: pa.RecordBatch) -> dict:
        return self.merge_accumulators(
            [grains, {name: GrainCounts.of(batch.column(name)) for name in self._names}])

    def merge_accumulators(self, accumulators) -> dict:
        merged: dict = {}
        for grains in accumulators:
            for name, counts in grains.items():
                merged[name] = merged[name].merge(counts) if name in merged else counts
        return merged

    def extract_output(self, grains: dict) -> dict:
        return {name: counts.grain().to_dict() for name, counts in grains.items()}


def _range_values(column: pa.Array, kind: Kind) -> pa.Array | None:
    """The values whose range is recorded for a column (None: none is)."""
    if kind is Kind.TIMESTAMP:
        return _as_int64(column)
    if pa.types.is_integer(column.type) or kind in NUMBER_KINDS:
        return column
    if is_string_type(column.type):
        return pc.utf8_length(column)
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        return pc.binary_length(column)
    return None


def _as_int64(column: pa.Array) -> pa.Array:
    """Timestamps and dates as integers in their own unit (date32 casts only through int32)."""
    if pa.types.is_date32(column.type):
        column = column.cast(pa.int32())
    return column.cast(pa.int64())


def _matrices(element: tuple[pa.RecordBatch, dict], schema: pa.Schema) -> pa.Table:
    """tf.Transform's output batch as a table of the training files' matrices."""
    batch, _ = element
    return pa.Table.from_arrays([batch.column(f.name).cast(f.type) for f in schema],
                                schema=schema)


class _FitAndPublish(beam.DoFn):
    """Fits the model on the transformed files, exports it and publishes the directory.

    Its side inputs are the columns' ranges and grains and the item Gram matrices (`--model
    ease`); the others only order this step after the writes it reads.
    """

    def __init__(self, *, schema: Schema, work: str, model_dir: str, options: ModelOptions,
                 arrow_schema: pa.Schema):
        super().__init__()
        self._schema = schema
        self._work = work
        self._model_dir = model_dir
        self._options = options
        self._arrow_schema = arrow_schema

    def process(self, _, ranges: dict, grains: dict, grams: dict, *written) -> Iterator[str]:
        from aepipe.model.fitting import TrainingData, fit_and_export  # Keras: on the worker

        work = self._work
        try:
            train_files = _files(posixpath.join(work, "train"))
            if not train_files:
                raise InputError("no usable training rows: every input row was rejected")
            data = TrainingData(Layout.of(self._schema), train_files,
                                _files(posixpath.join(work, "validation")))
            staging = staging_for(self._model_dir)
            try:
                fileio.copy_tree(posixpath.join(work, TRANSFORM_FN),
                                 posixpath.join(staging, TRANSFORM_FN))
                passthrough = {c.name for c in self._schema.passthrough}
                manifest = fit_and_export(
                    data, schema=self._schema, staging=staging, options=self._options,
                    arrow_schema=self._arrow_schema,
                    passthrough_ranges={n: r for n, r in ranges.items() if n in passthrough},
                    value_ranges={n: r for n, r in ranges.items() if n not in passthrough},
                    value_grains=grains,
                    grams=(grams.get("train"), grams.get("validation")))
                write_manifest(staging, manifest)
                path = publish(staging, self._model_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        finally:
            fileio.delete_tree(work)
        _LOG.info("model published to %s", path)
        yield path


def _files(prefix: str) -> list[str]:
    """The non-empty Parquet files a prefix names."""
    found = FileSystems.match([prefix + "*.parquet"])[0].metadata_list
    return sorted(m.path for m in found if fileio.parquet_file(m.path).metadata.num_rows)
