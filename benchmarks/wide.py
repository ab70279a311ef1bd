"""Wide and small tables: how the cost of training grows with the number of columns (issue 12).

    .venv/bin/python benchmarks/wide.py [--rows 2000,200000] [--columns 10,100,500]
        [--measure train,analysis,stats,keras,small] [--small-rows 300] [--workdir DIR]
        [--seed N]

Makes seeded synthetic Parquet tables (once; reused on later runs with the same seed): a
4-dimensional standard normal latent z per row; of every 5 columns, 4 are float64
(z @ w_j + 0.3 * noise) and the 5th a string category ("c0".."c7", the argmax of z @ W_j plus
Gumbel noise); one column in every 10 has 5% nulls (the 10th of each block of 10 columns, a
category, in even blocks, the 9th, a float, in odd ones). Then, for each (rows, columns) of the
grid, in fresh processes:

- train: the whole `python -m pipelines.train --epochs 1` job; its wall time and peak resident
  memory (of the job and its children), split into phases by when its log lines arrive:
  tft (first log line to "training on N rows": analysis, transform, transformed rows written),
  epoch (the seconds the one "step X/Y" line reports), export (last "step" line to "model
  published": reconstruction figures, prior fit, SavedModel export);
- analysis: tf.Transform's analysis alone (aepipe's batching and feed, tensor adapter config and
  preprocessing_fn in `AnalyzeDataset`, transform_fn written) on the DirectRunner, over all rows;
- stats: the same statistics in one pass with pyarrow and numpy (per float column mean,
  variance, min, max, null rate and 99 quantiles; per category value counts and null rate);
- keras: one epoch of a plain `keras.Sequential` autoencoder of aepipe's default widths on the
  matrix aepipe's encoder sees (built in numpy beforehand), the same training rows and batch
  size as the train job, from in-memory arrays, with one validation pass over as many rows as
  the train job held out, as aepipe's period has (fit time, tracing included); and the same
  model aepipe trains (its features, widths, quantile-bin logits and scaled loss, built afresh)
  fitted by Keras on the train job's transformed rows held in memory: the epoch without
  aepipe's streaming input. A plain autoencoder's output is a quarter as wide: aepipe's
  decoder also predicts 10 quantile-bin logits per number.

And once (small): the whole train job with default options (no --epochs: early stopping ends
it) on the same kind of table with `--small-rows` rows and 10 columns.

Children other than train time their work from its start (imports excluded), as the other
benchmarks do. Prints one markdown table and the issue's goal ratios; writes the raw results to
WORKDIR/results.json and each train job's log, with arrival times, to WORKDIR/logs/.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness import ROOT, measure, report

sys.path.insert(0, ROOT)

CHUNK_ROWS = 50_000
LATENT = 4
LABELS = [f"c{i}" for i in range(8)]
NULL_RATE = 0.05
NOISE = 0.3
MEASUREMENTS = ("train", "analysis", "stats", "keras", "small")  # keras: both Keras baselines
QUANTILE_LEVELS = np.arange(1, 100) / 100  # tft.quantiles(num_buckets=100): 99 boundaries


# The synthetic table.

def is_category(j: int) -> bool:
    return j % 5 == 4


def is_nullable(j: int) -> bool:
    """One column in each block of 10: the 10th (a category) in even blocks, the 9th (a float)
    in odd ones, so tables of 20 columns or more have nullable columns of both kinds."""
    return j % 10 == (9 if (j // 10) % 2 == 0 else 8)


def column_name(j: int) -> str:
    return f"{'c' if is_category(j) else 'f'}{j:03d}"


def make_table(path: str, rows: int, columns: int, seed: int = 0) -> str:
    """Writes the table under `path` (once) in files of CHUNK_ROWS rows, with its schema.yaml
    beside them; returns the glob of its Parquet files."""
    pattern = os.path.join(path, "*.parquet")
    if os.path.exists(os.path.join(path, "schema.yaml")):
        return pattern
    staging = path + ".tmp"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    weights = _weights(columns, seed)
    for index, start in enumerate(range(0, rows, CHUNK_ROWS)):
        rng = np.random.default_rng([seed, 2, index])
        table = _chunk(min(CHUNK_ROWS, rows - start), columns, weights, rng)
        pq.write_table(table, os.path.join(staging, f"part-{index:05d}.parquet"))
    with open(os.path.join(staging, "schema.yaml"), "w") as f:
        f.write(schema_yaml(columns))
    os.rename(staging, path)
    return pattern


def _weights(columns: int, seed: int) -> dict[int, np.ndarray]:
    """Column j's loadings on the latent: a vector (float) or a LATENT x 8 matrix (category)."""
    rng = np.random.default_rng([seed, 1])
    return {j: rng.normal(size=(LATENT, len(LABELS)) if is_category(j) else LATENT)
            for j in range(columns)}


def _chunk(n: int, columns: int, weights: dict[int, np.ndarray],
           rng: np.random.Generator) -> pa.Table:
    z = rng.normal(size=(n, LATENT))
    labels = pa.array(LABELS)
    arrays = {}
    for j in range(columns):
        mask = rng.random(n) < NULL_RATE if is_nullable(j) else None
        if is_category(j):
            choice = np.argmax(z @ weights[j] + rng.gumbel(size=(n, len(LABELS))), axis=1)
            arrays[column_name(j)] = pc.take(labels, pa.array(choice, mask=mask))
        else:
            values = z @ weights[j] + NOISE * rng.normal(size=n)
            arrays[column_name(j)] = pa.array(values, pa.float64(), mask=mask)
    return pa.table(arrays)


def schema_yaml(columns: int) -> str:
    lines = ["columns:"]
    for j in range(columns):
        kind = "categorical" if is_category(j) else "numeric"
        lines.append(f"  - {{name: {column_name(j)}, kind: {kind}, "
                     f"nullable: {str(is_nullable(j)).lower()}}}")
    return "\n".join(lines) + "\n"


def files_of(pattern: str) -> list[str]:
    return sorted(glob.glob(pattern))


def read(pattern: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(path) for path in files_of(pattern)])


# The train job, timed from outside: phases by when its log lines arrive.

LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d([.,]\d+)? [\w.]+: ")
TRAINING = re.compile(r"training on (\d+) rows \((\d+) for validation\)")
SCHEDULE = re.compile(r"training: up to (\d+) steps of (\d+) rows")
STEP = re.compile(r"step \d+/\d+: loss .*\(([\d.]+) s, [\d.]+ rows/s\)")
PUBLISHED = re.compile(r"model published to ")


def run_train(pattern: str, model_dir: str, log_path: str, epochs: int | None = 1) -> dict:
    """`python -m pipelines.train --epochs 1` (or with default options: `epochs` None) in a
    fresh process: wall time, peak memory (the job's and its children's, from wait4) and the
    phases its log gives."""
    schema = os.path.join(os.path.dirname(pattern), "schema.yaml")
    command = [sys.executable, "-m", "pipelines.train", "--input", pattern, "--schema", schema,
               "--model-dir", model_dir, "--overwrite"]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, errors="replace")
    lines = []
    with open(log_path, "w") as log:
        for line in process.stdout:
            lines.append((time.perf_counter() - started, line.rstrip("\n")))
            log.write(f"{lines[-1][0]:9.3f} {line}")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        tail = "\n".join(text for _, text in lines[-40:])
        raise RuntimeError(f"train exited with {process.returncode}:\n{tail}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024,
            **train_phases(lines, seconds)}


def train_phases(lines: list[tuple[float, str]], seconds: float) -> dict:
    """The phases of a train job from its (arrival seconds, line) pairs."""
    def first(pattern: re.Pattern) -> tuple[float, re.Match]:
        found = [(at, m) for at, text in lines if (m := pattern.search(text))]
        if not found:
            raise RuntimeError(f"the train log has no line matching {pattern.pattern!r}")
        return found[0]

    start = next((at for at, text in lines if LOG_LINE.match(text)), 0.0)
    training_at, training = first(TRAINING)
    _, schedule = first(SCHEDULE)
    _, step = first(STEP)
    last_step_at = [at for at, text in lines if STEP.search(text)][-1]
    published_at, _ = first(PUBLISHED)
    return {"startup": start, "tft": training_at - start, "epoch": float(step.group(1)),
            "fit_wall": last_step_at - training_at, "export": published_at - last_step_at,
            "after_publish": seconds - published_at,
            "train_rows": int(training.group(1)), "validation_rows": int(training.group(2)),
            "steps": int(schedule.group(1)), "batch_size": int(schedule.group(2))}


# The children: each runs in a fresh process and reports one JSON line (see harness.py).

def run_analysis(pattern: str, schema_path: str, output: str) -> dict:
    """tf.Transform's analysis alone, as aepipe feeds it, with the transform_fn written."""
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from apache_beam.io.parquetio import ReadFromParquetBatched
    from apache_beam.options.pipeline_options import PipelineOptions

    from aepipe.beam.validate import record_batches
    from aepipe.options import ModelOptions
    from aepipe.table.layout import Layout
    from aepipe.table.schema import Schema
    from aepipe.transform.feed import tensor_adapter_config, to_feed
    from aepipe.transform.preprocess import preprocessing_fn

    layout = Layout.of(Schema.load(schema_path))
    defaults = ModelOptions()
    started = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions([])) as pipeline:
        with tft_beam.Context(temp_dir=os.path.join(output, "tmp")):
            feed = (pipeline | "Read" >> ReadFromParquetBatched(pattern)
                    | "Batches" >> beam.FlatMap(record_batches)
                    | "Feed" >> beam.Map(to_feed, layout))
            analyze = tft_beam.AnalyzeDataset(preprocessing_fn(
                layout, vocabulary_size=defaults.vocabulary_size,
                item_vocabulary_size=defaults.item_vocabulary_size, numeric="quantile"))
            transform_fn = (feed, tensor_adapter_config(layout)) | "Analyze" >> analyze
            transform_fn | "Write" >> tft_beam.WriteTransformFn(
                os.path.join(output, "transform_fn"))
    return {"rows": _num_rows(pattern), "seconds": time.perf_counter() - started}


def run_stats(pattern: str) -> dict:
    """The analysis' statistics with pyarrow and numpy, read included."""
    started = time.perf_counter()
    table = read(pattern)
    statistics = {name: _column_statistics(table.column(name)) for name in table.column_names}
    return {"rows": table.num_rows, "seconds": time.perf_counter() - started,
            "columns": len(statistics)}


def _column_statistics(column: pa.ChunkedArray) -> dict:
    null_rate = column.null_count / max(len(column), 1)
    if not pa.types.is_floating(column.type):
        return {"counts": pc.value_counts(column), "null_rate": null_rate}
    values = column.drop_null().to_numpy()
    return {"mean": values.mean(), "var": values.var(), "min": values.min(),
            "max": values.max(), "null_rate": null_rate,
            "quantiles": np.quantile(values, QUANTILE_LEVELS)}


def run_keras(pattern: str, schema_path: str, train_rows: str, validation_rows: str) -> dict:
    """One epoch of a plain Keras autoencoder of aepipe's default widths, from numpy arrays,
    with one validation pass as aepipe's period has."""
    import keras

    from aepipe.options import ModelOptions
    from aepipe.table.schema import Schema
    from aepipe.model.fitting import VALIDATION_BATCH, Schedule

    rows, held_out = int(train_rows), int(validation_rows)
    matrix = model_matrix(read(pattern).slice(0, rows + held_out), Schema.load(schema_path))
    train, validation = matrix[:rows], matrix[rows:]
    options = ModelOptions(epochs=1).for_table(item_sets=False)
    batch_size = Schedule.of(rows, options).batch_size
    keras.utils.set_random_seed(options.seed)
    model = _autoencoder(keras, matrix.shape[1], options)
    model.compile(optimizer=keras.optimizers.Adam(options.learning_rate), loss="mse")
    started = time.perf_counter()
    model.fit(train, train, batch_size=batch_size, epochs=1, verbose=0,
              validation_data=(validation, validation) if held_out else None,
              validation_batch_size=VALIDATION_BATCH)
    return {"rows": len(train), "seconds": time.perf_counter() - started,
            "width": matrix.shape[1], "batch_size": batch_size}


def model_matrix(table: pa.Table, schema) -> np.ndarray:
    """Floats standardised (null: 0 plus a 0/1 flag column where nullable); categories one-hot
    over their values, an out-of-vocabulary slot and a null slot."""
    from aepipe.table.schema import Kind

    parts = []
    for column in schema.modelled:
        array = table.column(column.name).combine_chunks()
        if column.kind is Kind.CATEGORICAL:
            parts.append(_one_hot(array))
            continue
        values = array.to_numpy(zero_copy_only=False).astype(np.float64)
        is_null = np.isnan(values)
        present = values[~is_null]
        std = present.std() if len(present) else 1.0
        scaled = (values - (present.mean() if len(present) else 0.0)) / (std or 1.0)
        parts.append(np.where(is_null, 0.0, scaled)[:, None])
        if column.nullable:
            parts.append(is_null[:, None].astype(np.float64))
    return np.concatenate(parts, axis=1).astype(np.float32)


def _one_hot(array: pa.Array) -> np.ndarray:
    encoded = array.dictionary_encode()
    slots = len(encoded.dictionary) + 2  # values, out of vocabulary, null
    codes = pc.fill_null(encoded.indices, slots - 1).to_numpy(zero_copy_only=False)
    return np.eye(slots, dtype=np.float32)[codes]


def _autoencoder(keras, width: int, options):
    layers = keras.layers
    return keras.Sequential(
        [keras.Input((width,))]
        + [layers.Dense(w, activation="relu") for w in options.hidden]
        + [layers.Dense(options.code_size)]
        + [layers.Dense(w, activation="relu") for w in reversed(options.hidden)]
        + [layers.Dense(width)])


def _num_rows(pattern: str) -> int:
    return sum(pq.ParquetFile(path).metadata.num_rows for path in files_of(pattern))


def run_same_model(pattern: str, model_dir: str, train_rows: str, validation_rows: str
                   ) -> dict:
    """One epoch of aepipe's own model (its features, widths, quantile bins and loss), built
    afresh and fitted by Keras on the trained model's transformed rows held in memory: the
    epoch without aepipe's streaming input."""
    import keras
    import tensorflow_transform as tft

    from aepipe.model.autoencoder import MODELS
    from aepipe.model.fitting import VALIDATION_BATCH, Schedule
    from aepipe.store.manifest import TRANSFORM_FN
    from aepipe.store.reader import ModelDirectory
    from aepipe.table.layout import CATEGORIES, NULLS, SCALARS, Layout
    from aepipe.transform import marginal
    from aepipe.transform.feed import feed_tensors

    trained = ModelDirectory(model_dir)
    options = trained.manifest.options
    layout = Layout.of(trained.schema, {n: len(v) for n, v in
                                        trained.manifest.vocabularies.items()},
                       bins=marginal.BINS if options.numeric == "quantile" else 0)
    transform = tft.TFTransformOutput(os.path.join(model_dir, TRANSFORM_FN)
                                      ).transform_features_layer()
    rows, held_out = int(train_rows), int(validation_rows)
    parts: dict[str, list[np.ndarray]] = {}
    for batch in read(pattern).slice(0, rows + held_out).to_batches(max_chunksize=65_536):
        transformed = transform(feed_tensors(trained.inputs(batch), layout))
        for name in (SCALARS, NULLS, CATEGORIES):
            if name in transformed:
                parts.setdefault(name, []).append(transformed[name].numpy())
    keras.utils.set_random_seed(options.seed)
    model = MODELS[options.model](
        layout, code_size=options.code_size, hidden=options.hidden,
        scales=trained.manifest.loss_scales, statistics=trained.manifest.statistics,
        beta=options.beta, seed=options.seed)
    model.compile(optimizer=keras.optimizers.Adam(options.learning_rate))
    inputs = {name: np.concatenate(p) for name, p in parts.items()}
    train = {role: matrix[:rows] for role, matrix in inputs.items()}
    validation = {role: matrix[rows:] for role, matrix in inputs.items()}
    batch_size = Schedule.of(rows, options).batch_size
    started = time.perf_counter()
    model.fit(train, train, batch_size=batch_size, epochs=1, verbose=0,
              validation_data=(validation, validation) if held_out else None,
              validation_batch_size=VALIDATION_BATCH)
    return {"rows": rows, "seconds": time.perf_counter() - started, "batch_size": batch_size}


CHILDREN: dict[str, Callable[..., dict]] = {
    "analysis": run_analysis, "stats": run_stats, "keras": run_keras, "same": run_same_model}


# The parent: the grid, the table and the goals.

def attempt(name: str, run: Callable[[], dict]) -> dict:
    """Runs one measurement; a failure becomes {"error": its tail} and the grid goes on."""
    try:
        result = run()
    except Exception as e:  # noqa: BLE001 (a failed cell must not lose the others)
        tail = str(e)[-2000:]
        print(f"  {name}: FAILED\n{tail}", flush=True)
        return {"error": tail}
    seconds = result.get("seconds", float("nan"))
    print(f"  {name}: {seconds:.1f} s, {result.get('peak_rss_mb', float('nan')):.0f} MiB",
          flush=True)
    return result


def measure_small(args: argparse.Namespace) -> dict:
    """A table of a few hundred rows, trained with default options (early stopping decides
    when it ends): the whole job's wall time."""
    rows, label = args.small_rows, f"{args.small_rows}x10"
    pattern = make_table(os.path.join(args.workdir, f"data-{label}-seed{args.seed}"), rows, 10,
                         args.seed)
    out = os.path.join(args.workdir, "out", f"small-{label}")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(args.workdir, "logs"), exist_ok=True)
    print(f"{rows:,} rows x 10 columns, default options", flush=True)
    return {"rows": rows, "columns": 10, "seed": args.seed, "default_options": True,
            "train": attempt("train", lambda: run_train(
                pattern, os.path.join(out, "model"),
                os.path.join(args.workdir, "logs", f"train-small-{label}.log"), epochs=None))}


def measure_config(rows: int, columns: int, args: argparse.Namespace) -> dict:
    label = f"{rows}x{columns}"
    print(f"{rows:,} rows x {columns} columns", flush=True)
    pattern = make_table(os.path.join(args.workdir, f"data-{label}-seed{args.seed}"), rows,
                         columns, args.seed)
    schema = os.path.join(os.path.dirname(pattern), "schema.yaml")
    out = os.path.join(args.workdir, "out", label)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(args.workdir, "logs"), exist_ok=True)
    result: dict = {"rows": rows, "columns": columns, "seed": args.seed}
    if "train" in args.measure:
        result["train"] = attempt("train", lambda: run_train(
            pattern, os.path.join(out, "model"),
            os.path.join(args.workdir, "logs", f"train-{label}.log")))
    if "analysis" in args.measure:
        result["analysis"] = attempt("analysis", lambda: measure(
            __file__, "analysis", pattern, schema, os.path.join(out, "analysis")))
    if "stats" in args.measure:
        result["stats"] = attempt("stats", lambda: measure(__file__, "stats", pattern))
    if "keras" in args.measure:
        train = result.get("train", {})
        train_rows = train.get("train_rows") or round(rows * 0.9)
        validation_rows = train.get("validation_rows", rows - train_rows)
        result["keras"] = attempt("keras", lambda: measure(
            __file__, "keras", pattern, schema, str(train_rows), str(validation_rows)))
        if "seconds" in train:
            result["same"] = attempt("same", lambda: measure(
                __file__, "same", pattern, os.path.join(out, "model"), str(train_rows),
                str(validation_rows)))
    return result


def cell(result: dict, measurement: str, key: str = "seconds") -> float | None:
    value = result.get(measurement, {}).get(key)
    return None if value is None else float(value)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if numerator is None or not denominator else numerator / denominator


def fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{suffix}"


def table_row(r: dict) -> list[str]:
    analysis, stats = cell(r, "analysis"), cell(r, "stats")
    epoch, keras_epoch, same = cell(r, "train", "epoch"), cell(r, "keras"), cell(r, "same")
    return [f"{r['rows']:,}", str(r["columns"]), fmt(cell(r, "train")),
            fmt(cell(r, "train", "tft")), fmt(epoch), fmt(cell(r, "train", "export")),
            fmt(cell(r, "train", "peak_rss_mb"), 0), fmt(analysis), fmt(stats, 2),
            fmt(ratio(analysis, stats), 1, "x"), fmt(same, 2), fmt(ratio(epoch, same), 2, "x"),
            fmt(keras_epoch, 2), fmt(ratio(epoch, keras_epoch), 2, "x")]


HEADER = ["rows", "columns", "train total s", "tft s", "epoch s", "export s", "peak MiB",
          "analysis s", "numpy stats s", "analysis/numpy", "same model in memory s",
          "epoch/same", "plain keras s", "epoch/plain"]


def print_table(results: list[dict]) -> None:
    print("\n| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for r in results:
        print("| " + " | ".join(table_row(r)) + " |")


def print_goals(results: list[dict]) -> None:
    by_shape = {(r["rows"], r["columns"]): r for r in results}
    wide, narrow = by_shape.get((2000, 500), {}), by_shape.get((2000, 10), {})
    time_ratio = ratio(cell(wide, "train"), cell(narrow, "train"))
    memory_ratio = ratio(cell(wide, "train", "peak_rss_mb"), cell(narrow, "train", "peak_rss_mb"))
    print(f"\ntrain 2,000x500 / 2,000x10: time {fmt(time_ratio, 2, 'x')} (goal <= 2.5), "
          f"peak memory {fmt(memory_ratio, 2, 'x')} (goal <= 2)")
    middle = by_shape.get((200_000, 100), {})
    print(f"analysis / numpy at 200,000x100: "
          f"{fmt(ratio(cell(middle, 'analysis'), cell(middle, 'stats')), 1, 'x')} (goal <= 3)")
    for r in results:
        epoch = cell(r, "train", "epoch")
        print(f"epoch at {r['rows']:,}x{r['columns']}: "
              f"{fmt(ratio(epoch, cell(r, 'same')), 2, 'x')} of the same model fitted in memory, "
              f"{fmt(ratio(epoch, cell(r, 'keras')), 2, 'x')} of a plain Keras autoencoder "
              f"(goal <= 1.5)")


def print_errors(results: list[dict]) -> None:
    for r in results:
        for name in (*MEASUREMENTS, "same"):
            if "error" in r.get(name, {}):
                print(f"\n{name} at {r['rows']:,}x{r['columns']} failed:\n{r[name]['error']}")


def integers(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=integers, default=[2000, 200_000])
    parser.add_argument("--columns", type=integers, default=[10, 100, 500])
    parser.add_argument("--measure", default=",".join(MEASUREMENTS),
                        help=f"which measurements, comma-separated (of {','.join(MEASUREMENTS)})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small-rows", type=int, default=300,
                        help="rows of the small table trained with default options")
    parser.add_argument("--workdir", default=os.path.join(ROOT, "bench-output", "wide"))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        report(lambda: CHILDREN[kind](*rest))
        return
    args.measure = [m for m in args.measure.split(",") if m.strip()]
    unknown = sorted(set(args.measure) - set(MEASUREMENTS))
    if unknown:
        parser.error(f"unknown measurement(s) {unknown} (of {', '.join(MEASUREMENTS)})")
    results = []
    for rows in args.rows:
        for columns in args.columns:
            results.append(measure_config(rows, columns, args))
            with open(os.path.join(args.workdir, "results.json"), "w") as f:
                json.dump(results, f, indent=1)
    small = measure_small(args) if "small" in args.measure else None
    print_table(results)
    print_goals(results)
    if small is not None:
        print(f"default training (no --epochs) on {args.small_rows:,} rows x 10 columns: "
              f"{fmt(cell(small, 'train'), 1, ' s')} in all, "
              f"{small['train'].get('steps', 'n/a')} steps planned (goal < 30 s)")
        results.append(small)
    print_errors(results)


if __name__ == "__main__":
    main()
