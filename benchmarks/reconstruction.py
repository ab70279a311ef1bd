"""Reconstruction quality on held-out Adult rows: the autoencoder against PCA at the same code size.

    .venv/bin/python benchmarks/reconstruction.py [--workdir DIR] [train options...]

Splits Adult 80/20 as the demo does, times `aepipe train` on the 80%, then reconstructs the 20%:

- autoencoder: decode(encode(x)) through the model's signatures, compared in original units;
- PCA: the linear baseline, fitted on the same model inputs (standardised values, null flags,
  one-hot categories) of the training rows, keeping as many components as the code has.

Numeric figures are RMSE in standardised units over non-null cells; categorical ones the share of
rows whose most likely category (or null) is the true one, as `aepipe.quality` defines them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq

from harness import ROOT

sys.path.insert(0, ROOT)


def model_inputs(model, table) -> dict[str, np.ndarray]:
    """The transformed features of a table, through the model's `transform` signature."""
    parts: dict[str, list] = {}
    for batch in table.to_batches(max_chunksize=8192):
        for name, values in model.transform(batch).items():
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(values) for name, values in parts.items()}


def pca_quality(model, train, holdout) -> dict[str, float]:
    """Per-kind figures of a PCA with as many components as the model's code."""
    from aepipe.features import Role, embed
    from aepipe.schema import Kind

    features = model.features
    fitted = embed(features, model_inputs(model, train))
    centre = fitted.mean(axis=0)
    _, _, components = np.linalg.svd(fitted - centre, full_matrices=False)
    basis = components[:model.code_size]
    inputs = model_inputs(model, holdout)
    rebuilt = (embed(features, inputs) - centre) @ basis.T @ basis + centre
    figures: dict[str, list[float]] = {}
    start = 0
    for feature in features:
        piece = rebuilt[:, start:start + feature.width]
        start += feature.width
        column = feature.column
        if feature.role is Role.CATEGORY:
            size = len(model.manifest["vocabularies"][column.name])
            allowed = list(range(size)) + ([size + 1] if column.nullable else [])
            chosen = np.array(allowed)[np.argmax(piece[:, allowed], axis=1)]
            figures.setdefault("categorical_accuracy", []).append(
                float(np.mean(chosen == inputs[feature.name])))
        elif feature.role is Role.VALUE and column.kind in (Kind.NUMERIC, Kind.INTEGER):
            present = inputs.get(feature.name + "__null", np.zeros(len(piece))) == 0
            error = piece[present, 0] - inputs[feature.name][present]
            figures.setdefault(f"{column.kind.value}_rmse", []).append(
                float(np.sqrt(np.mean(error ** 2))))
    return {k: float(np.mean(v)) for k, v in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=os.path.join(ROOT, "bench-output", "reconstruction"))
    args, train_options = parser.parse_known_args()
    from aepipe import datasets
    from aepipe.logs import quiet_startup
    from aepipe.model_dir import ModelDirectory
    from aepipe.quality import reconstruction_quality
    from pipelines.demo import split_adult

    quiet_startup()
    train_path, holdout_path = split_adult(args.workdir)
    model_dir = os.path.join(args.workdir, "model")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines.train", "--input", train_path, "--schema",
                    datasets.adult_schema(), "--model-dir", model_dir, "--overwrite",
                    *train_options], check=True, cwd=ROOT)
    wall = time.perf_counter() - started
    model = ModelDirectory(model_dir)
    train, holdout = pq.read_table(train_path), pq.read_table(holdout_path)
    ours = reconstruction_quality(model, holdout.to_batches(max_chunksize=8192))["by_kind"]
    linear = pca_quality(model, train, holdout)
    manifest = model.manifest
    print(f"\naepipe train on {train.num_rows:,} Adult rows: {wall:.1f} s wall "
          f"(fit {manifest['fit_seconds']:.1f} s, {len(manifest['history']['loss'])} epochs, "
          f"best {manifest['best_epoch']}), validation loss {manifest['validation_loss']:.4f}")
    print(f"held-out rows: {holdout.num_rows:,}; code size {model.code_size}\n")
    print(f"{'figure':<24} {'autoencoder':>12} {'PCA':>8}")
    for key in sorted(ours):
        print(f"{key:<24} {ours[key]:>12.4f} {linear[key]:>8.4f}")
    print(json.dumps({"autoencoder": ours, "pca": linear}))


if __name__ == "__main__":
    main()
