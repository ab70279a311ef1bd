"""Pre-training with the autoencoder: its encoder, fine-tuned with a head on a few labelled rows,
against models trained on those rows alone.

    .venv/bin/python benchmarks/pretrain.py [--tables adult,diamonds,digits] [--seeds 0]
        [--labelled 0.01,0.1]

Per table and seed, the quality benchmark's splits and setting (`benchmarks/quality.py`): the
default model with code size 8, trained (unsupervised) on every training row with the target
ignored. Then a seeded share of the training rows keeps its label, and on those rows alone:

- pretrained: `aepipe.encoder_model` (the tf.Transform graph and the trained encoder) with a
  head (sigmoid, softmax or linear), fine-tuned end to end with Adam; and frozen: the same
  with the encoder's weights fixed (a head on the code alone);
- scratch: the same network (the same transform, widths and head) with the encoder's weights
  initialised afresh, trained the same way;
- HistGradientBoosting and logistic regression (Ridge for regression) on the raw encoding
  (numbers z-scored, categories one-hot), and logistic regression (Ridge) on its PCA-8;

all scored on the held-out rows: ROC AUC (binary), accuracy (multiclass), R^2 (regression).
The networks train for at most 200 epochs with early stopping on a fifth of the labelled rows;
a numeric target is standardised with the labelled rows' mean and deviation.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness import ROOT

sys.path.insert(0, ROOT)

import quality  # noqa: E402  (the benchmark's tables, encodings, learners and training)
import tables as bench_tables  # noqa: E402

LOG = logging.getLogger("benchmark.pretrain")


def network_scores(model_dir: str, train: pa.Table, train_y: np.ndarray, holdout: pa.Table,
                   holdout_y: np.ndarray, task: str, seed: int, classes: list | None
                   ) -> dict[str, float]:
    """The fine-tuned pretrained encoder's score and the same network's from scratch."""
    import keras

    from aepipe import encoder_model
    from aepipe.store.reader import ModelDirectory

    model = ModelDirectory(model_dir)
    y_train, y_held = (_targets(y, classes) for y in (train_y, holdout_y))
    scores = {}
    center, scale = (y_train.mean(), y_train.std() or 1.0) if classes is None else (0.0, 1.0)
    for kind in ("pretrained", "frozen", "scratch"):
        keras.utils.set_random_seed(seed)
        encoder = encoder_model(model_dir, trainable=kind != "frozen")
        if kind == "scratch":
            network = encoder.get_layer("encoder")
            network.set_weights([keras.initializers.GlorotUniform(seed)(w.shape).numpy()
                                 if len(w.shape) == 2 else np.zeros(w.shape, np.float32)
                                 for w in network.get_weights()])
        head, loss = _head(task, classes)
        predictor = keras.Model(encoder.input, head(encoder.output))
        predictor.compile(keras.optimizers.Adam(1e-3), loss)
        predictor.fit(_inputs(model, train), (y_train - center) / scale, epochs=200, verbose=0,
                      batch_size=max(8, min(256, len(y_train) // 8)), validation_split=0.2,
                      callbacks=[keras.callbacks.EarlyStopping(patience=10,
                                                               restore_best_weights=True)])
        predicted = predictor.predict(_inputs(model, holdout), verbose=0, batch_size=4096)
        scores[kind] = _score(task, y_held, predicted * scale + center)
    return scores


def _inputs(model, table: pa.Table) -> dict:
    import tensorflow as tf

    parts = [model.inputs(b) for b in table.select(model.schema.names).to_batches(1 << 20)]
    return {name: tf.concat([p[name] for p in parts], 0) for name in parts[0]}


def _targets(y: np.ndarray, classes: list | None) -> np.ndarray:
    if classes is None:
        return y.astype(np.float32)
    return np.array([classes.index(v) for v in y], np.int64)


def _head(task: str, classes: list | None):
    import keras

    if task == "regression":
        return keras.layers.Dense(1), "mse"
    if task == "binary":
        return keras.layers.Dense(1, activation="sigmoid"), "binary_crossentropy"
    return (keras.layers.Dense(len(classes), activation="softmax"),
            "sparse_categorical_crossentropy")


def _score(task: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    if task == "regression":
        return float(r2_score(truth, predicted[:, 0]))
    if task == "binary":
        return float(roc_auc_score(truth, predicted[:, 0]))
    return float(accuracy_score(truth, predicted.argmax(axis=1)))


def run(table, seed: int, shares: list[float], work: str) -> list[dict]:
    model_dir = os.path.join(work, "codes8-model")
    if not os.path.exists(os.path.join(model_dir, "manifest.json")):
        quality.train_aepipe(table, table.codes_schema, model_dir, seed=seed, code_size=8)
    train, holdout = pq.read_table(table.train), pq.read_table(table.holdout)
    train_y = quality._target(train, table.target, table.task)
    holdout_y = quality._target(holdout, table.target, table.task)
    held = _known(holdout_y)
    holdout, holdout_y = holdout.filter(pa.array(held)), holdout_y[held]
    known = _known(train_y)
    raw = quality.RawEncoding(train, list(table.codes_schema.modelled))
    raw_train, raw_holdout = raw(train), raw(holdout)
    rows = []
    for share in shares:
        rng = np.random.default_rng([seed, int(share * 1e4)])
        labelled = np.flatnonzero(known)
        labelled = np.sort(rng.choice(labelled, size=max(8, int(share * len(labelled))),
                                      replace=False))
        baselines = quality.learner_scores(table.task, raw_train[labelled], train_y[labelled],
                                           raw_holdout, holdout_y, seed)
        pca = quality._pca(raw_train)  # unsupervised, on every training row, as the encoder
        baselines["pca8 linear"] = quality.learner_scores(
            table.task, pca.transform(raw_train[labelled]), train_y[labelled],
            pca.transform(raw_holdout), holdout_y, seed)["linear"]
        classes = (sorted(set(train_y[known].tolist()) | set(holdout_y.tolist()))
                   if table.task != "regression" else None)
        networks = network_scores(model_dir, train.take(pa.array(labelled)), train_y[labelled],
                                  holdout, holdout_y, table.task, seed, classes)
        rows.append({"table": table.name, "seed": seed, "share": share,
                     "labelled": len(labelled), "metric": quality.METRICS[table.task],
                     **networks, "raw hgb": baselines["hgb"],
                     "raw linear": baselines["linear"], "pca8 linear": baselines["pca8 linear"]})
        LOG.info("%s", rows[-1])
    return rows


def _known(y: np.ndarray) -> np.ndarray:
    """Whether each row has a target."""
    return np.array([v is not None and not (isinstance(v, float) and np.isnan(v)) for v in y])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="adult,diamonds,digits")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--labelled", default="0.01,0.1")
    parser.add_argument("--workdir", default=os.path.join(ROOT, "bench-output", "pretrain"))
    args = parser.parse_args()
    from aepipe.logs import quiet_startup

    quiet_startup()
    logging.getLogger("benchmark").setLevel(logging.INFO)
    shares = [float(s) for s in args.labelled.split(",")]
    splits = os.path.join(ROOT, "bench-output", "quality")
    rows = []
    for name in args.tables.split(","):
        table = bench_tables.load(name, splits)
        for seed in (int(s) for s in args.seeds.split(",")):
            work = os.path.join(args.workdir, name, f"seed{seed}")
            os.makedirs(work, exist_ok=True)
            rows += run(table, seed, shares, work)
    columns = ["pretrained", "frozen", "scratch", "raw hgb", "raw linear", "pca8 linear"]
    print("\n| table | metric | labelled | seed | " + " | ".join(columns) + " |\n|---|---|---:|---:|"
          + "---:|" * len(columns))
    for row in rows:
        print(f"| {row['table']} | {row['metric']} | {row['labelled']:,} ({row['share']:.0%}) | "
              f"{row['seed']} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")


if __name__ == "__main__":
    main()
