"""The tf.Transform preprocessing on its own, checked against plain loops: the statistics of the
stacked numeric columns, and the vocabularies that one analyzer computes for every categorical
column (top-k by count, ties to the larger value, unseen values out of vocabulary, nulls apart)."""

import collections

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from apache_beam.options.pipeline_options import PipelineOptions

from aepipe.table.arrow import signature_inputs
from aepipe.table.layout import CATEGORIES, NULLS, SCALARS, Layout
from aepipe.table.schema import Column, Kind, Schema
from aepipe.transform import marginal
from aepipe.transform.feed import feed_tensors, tensor_adapter_config, to_feed
from aepipe.transform.preprocess import preprocessing_fn, read_statistics, read_vocabularies

TOP_K = 3
SCHEMA = Schema((
    Column("colour", Kind.CATEGORICAL, nullable=True),
    Column("x", Kind.NUMERIC, nullable=True),
    Column("flag", Kind.BOOLEAN, nullable=False),
    Column("size", Kind.CATEGORICAL, nullable=False),
    Column("n", Kind.INTEGER, nullable=False),
))
LAYOUT = Layout.of(SCHEMA)


def _rows(count: int, seed: int) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    colours = rng.choice(["red", "green", "blue", "teal", "pink"], count, p=[.4, .2, .2, .1, .1])
    colour = [None if rng.random() < 0.1 else str(c) for c in colours]
    x = [None if rng.random() < 0.2 else float(v) for v in rng.normal(3.0, 2.0, count)]
    sizes = ["s", "m", "l", "xl"] * (count // 4)  # four values of equal count: ties
    return pa.RecordBatch.from_pydict({
        "colour": pa.array(colour, pa.string()), "x": pa.array(x, pa.float64()),
        "flag": pa.array(rng.random(count) < 0.3), "size": pa.array(sizes),
        "n": pa.array(rng.integers(0, 50, count), pa.int64())})


@pytest.fixture(scope="module")
def transform_output(tmp_path_factory):
    work = tmp_path_factory.mktemp("tft")
    batches = [_rows(400, 0), _rows(400, 1)]
    with beam.Pipeline(options=PipelineOptions([])) as pipeline:
        with tft_beam.Context(temp_dir=str(work / "tmp")):
            feed = pipeline | beam.Create(batches) | beam.Map(to_feed, LAYOUT)
            transform_fn = ((feed, tensor_adapter_config(LAYOUT))
                            | tft_beam.AnalyzeDataset(preprocessing_fn(
                                LAYOUT, vocabulary_size=TOP_K, item_vocabulary_size=TOP_K)))
            _ = transform_fn | tft_beam.WriteTransformFn(str(work / "out"))
    return tft.TFTransformOutput(str(work / "out")), pa.Table.from_batches(batches)


def _transform(output, batch: pa.RecordBatch) -> dict:
    layer = output.transform_features_layer()
    raw = signature_inputs(batch, SCHEMA.modelled)
    return {k: v.numpy() for k, v in layer(feed_tensors(raw, LAYOUT)).items()}


def _expected_vocabulary(values: list) -> list[str]:
    counts = collections.Counter(v for v in values if v is not None)
    return [v for v, _ in sorted(counts.items(), key=lambda kv: (kv[1], kv[0]),
                                 reverse=True)][:TOP_K]


def test_each_column_gets_its_top_k_vocabulary_ties_to_the_larger_value(transform_output):
    output, table = transform_output
    transformed = _transform(output, table.to_batches()[0].slice(0, 1))
    vocabularies = read_vocabularies(transformed, LAYOUT)
    assert vocabularies["colour"] == _expected_vocabulary(table.column("colour").to_pylist())
    assert vocabularies["size"] == ["xl", "s", "m"]  # four-way tie of equal counts


def test_values_map_to_their_index_unseen_to_v_and_null_to_v_plus_one(transform_output):
    output, table = transform_output
    probe = pa.RecordBatch.from_pydict({
        "colour": pa.array(["red", None, "purple", "pink", "green"]),
        "x": pa.array([1.0, None, 2.0, 3.0, 4.0]), "flag": pa.array([True] * 5),
        "size": pa.array(["m", "l", "xl", "s", "huge"]), "n": pa.array([1, 2, 3, 4, 5])})
    transformed = _transform(output, probe)
    vocabularies = read_vocabularies(transformed, LAYOUT)
    for j, name in enumerate(["colour", "size"]):
        vocabulary = vocabularies[name]
        expected = [len(vocabulary) + 1 if v is None
                    else vocabulary.index(v) if v in vocabulary else len(vocabulary)
                    for v in probe.column(name).to_pylist()]
        assert transformed[CATEGORIES][:, j].tolist() == expected, name


def test_statistics_of_the_stacked_columns_are_each_column_s_own(transform_output):
    output, table = transform_output
    transformed = _transform(output, table.to_batches()[0].slice(0, 2))
    statistics = read_statistics(transformed, LAYOUT)
    for name in ["x", "flag", "n"]:
        values = [float(v) for v in table.column(name).to_pylist() if v is not None]
        stats = statistics[name]
        assert stats["mean"] == pytest.approx(np.mean(values), rel=1e-5)
        assert stats["std"] == pytest.approx(np.std(values), rel=1e-4)
        assert (stats["min"], stats["max"]) == (pytest.approx(min(values)),
                                                pytest.approx(max(values)))
        assert stats["null_rate"] == pytest.approx(1 - len(values) / table.num_rows)
    assert "quantiles" not in statistics["flag"]
    x = sorted(float(v) for v in table.column("x").to_pylist() if v is not None)
    boundaries = np.asarray(statistics["x"]["quantiles"])  # at 1/B, 2/B, ..., (B - 1)/B
    assert len(boundaries) + 1 == marginal.MIN_BUCKETS  # thinned: under 1,000 rows
    for level in (0.25, 0.5, 0.75):
        boundary = boundaries[round(level * marginal.MIN_BUCKETS) - 1]
        rank = np.searchsorted(x, boundary) / len(x)
        assert abs(rank - level) <= 0.02
    assert statistics["colour"]["null_rate"] == pytest.approx(
        table.column("colour").null_count / table.num_rows)


def test_features_put_nulls_at_zero_and_flag_them(transform_output):
    output, table = transform_output
    batch = table.to_batches()[0].slice(0, 50)
    transformed = _transform(output, batch)
    x_null = np.asarray(batch.column("x").is_null())
    np.testing.assert_array_equal(transformed[NULLS][:, 0], x_null.astype(np.float32))
    assert (transformed[SCALARS][x_null, 0] == 0.0).all()
    np.testing.assert_array_equal(transformed[SCALARS][:, 1],
                                  np.asarray(batch.column("flag")).astype(np.float32))
