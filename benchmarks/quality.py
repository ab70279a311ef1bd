"""aepipe's default model on six public tables against baselines, over several model seeds.

    .venv/bin/python benchmarks/quality.py [--tables adult,penguins,diamonds,digits,weather,flights]
        [--seeds 0,1,2] [--jobs synthetic,codes] [--peers tvae,gaussian_copula,tabular_argn]
        [--refit-peers] [--peers-only] [--trust-model] [--workdir DIR]

(`make bench-quality`.) The tables are benchmarks/tables.py's; every aepipe model has the default
`ModelOptions()` but for its seed (and code size 16 where said): no per-table tuning. Per table
and seed:

1. Synthetic data (job "synthetic"): aepipe trained on the training rows (every column), as many
   rows sampled as it has (sample seed = model seed), evaluated by `pipelines.evaluate` against
   the training rows, with the held-out rows and the target: quality score, column shapes,
   column pair trends, ML-efficacy ratio. Peers: SDV's TVAE and GaussianCopula with their
   defaults (benchmarks/peers.py in the SDV peer venv) and MOSTLY AI's TabularARGN with its
   defaults (mostlyai-engine, benchmarks/argn_peer.py in its own venv; its `_RARE_` placeholder
   for rare categories kept and counted), same rows, seed and evaluation. A peer's evaluation
   report is cached under WORKDIR/peers/ per (table, seed, model, version of SDV or of
   mostlyai-engine), with a digest of the training rows, and reused unless --refit-peers; the
   tables mark cached cells.
2. Codes as features (job "codes"): aepipe trained with the target ignored, code size 8 and 16;
   `pipelines.encode` of the training and held-out rows (a row_id column passed through, so rows
   are joined by id, not by order); a logistic regression (max_iter=2000) on standardised inputs
   and a HistGradientBoosting model (random_state=seed) fitted on the training codes, scored on
   the held-out rows (ROC AUC for binary targets, accuracy for multiclass; Ridge and the HGB
   regressor, R^2, for regression). Baselines with the same learners: PCA-8 of the raw
   non-target columns encoded (numbers z-scored with the training mean and std, nulls at the
   mean plus a 0/1 null column where the training column has nulls; categories one-hot over the
   training categories, null its own category), and that encoding itself ("raw").
3. Reconstruction of the held-out rows by the code-8 model (decode(encode(x)) through the
   model's signatures, in original units): numeric MSE in standardised units (training mean and
   std, non-null cells, averaged over numeric and integer columns) and categorical accuracy (the
   decoded category, null included, equals the true one; averaged over categorical columns);
   PCA-8 reconstructs the encoding above through 8 components (numbers read back, categories by
   the argmax of their one-hot block).
4. Anomaly AUROC: anomalies are a copy of the held-out rows in which, per row, a random 25% of
   the non-target columns (at least 2) take the value of the same column in another random
   held-out row (seeded by the model seed); normal rows are the held-out rows. Scores: aepipe's
   `ae_score` (code-8 model), IsolationForest(random_state=seed) on the encoding above, PCA-8
   reconstruction error (squared, in that encoding).
5. The wall time of each aepipe train job (the whole `pipelines.train` call) and its rows.

Prints one markdown table per job, each cell the mean ± half the range ((max - min) / 2) over
the seeds, and writes every per-seed figure to WORKDIR/results.json (rewritten after each table
and seed). --peers-only fits and evaluates only the peers (fills their cache; no TensorFlow).
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import logging
import math
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

import tables as bench_tables  # noqa: E402
from aepipe.table.schema import Column, Schema  # noqa: E402

LOG = logging.getLogger("benchmark.quality")
PEERS = ("tvae", "gaussian_copula", "tabular_argn")
PEER_NAMES = {"tvae": "SDV TVAE", "gaussian_copula": "SDV GaussianCopula",
              "tabular_argn": "TabularARGN (mostlyai-engine)"}
# model -> (the tag before the version in its cache file's name, its record's version key)
PEER_VERSIONS = {"tvae": ("sdv", "sdv_version"), "gaussian_copula": ("sdv", "sdv_version"),
                 "tabular_argn": ("mostlyai-engine", "engine_version")}
JOBS = ("synthetic", "codes")
ROW_ID = "row_id"
ANOMALY_SHARE = 0.25
PCA_COMPONENTS = 8
CODE_SIZES = (8, 16)
CACHED = "†"
# --trust-model: skip aepipe's check of a SavedModel's ops (aepipe.store.trust) when sampling,
# encoding and decoding; the models are the ones this run just trained.
TRUST_MODEL = False


# Shared helpers -------------------------------------------------------------------------------

def _figures(report: dict) -> dict[str, Any]:
    """The evaluation report's headline figures."""
    quality, efficacy, privacy = report["quality"], report["ml_efficacy"], report["privacy"]
    figures = {"quality": quality["score"],
               "column_shapes": quality["column_shapes"]["score"],
               "column_pair_trends": quality["column_pair_trends"]["score"],
               "ml_efficacy_ratio": efficacy["ratio"] if efficacy else None,
               "exact_copies_share": privacy["exact_copies"]["synthetic_share"],
               "dcr_ratio": privacy["dcr"]["ratio"]}
    if efficacy:
        metric = efficacy["task"]["metric"]
        figures.update(ml_efficacy_metric=metric, ml_efficacy_real=efficacy["real"][metric],
                       ml_efficacy_synthetic=efficacy["synthetic"][metric])
    return figures


def _evaluate(table, synthetic: str, output: str, seed: int) -> dict:
    from aepipe.evaluation.evaluate import evaluate
    from aepipe.options import EvaluateOptions

    options = EvaluateOptions(real=table.train, holdout=table.holdout, target=table.target,
                              seed=seed)
    return evaluate(synthetic=synthetic, output=output, options=options,
                    schema=table.schema_path, overwrite=True)


def _fresh(directory: str) -> str:
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    return directory


def _guarded(results: dict, key: str, run: Callable[[], Any]) -> Any:
    """Runs one job; an exception is logged and recorded under results["errors"], not raised,
    so that one failure (aepipe is being changed) does not lose the rest of a long run."""
    try:
        results[key] = run()
        return results[key]
    except Exception as e:  # noqa: BLE001
        LOG.error("%s failed: %s\n%s", key, e, traceback.format_exc())
        results.setdefault("errors", {})[key] = f"{type(e).__name__}: {e}"
        return None


# Peers ------------------------------------------------------------------------------------------

class Peers:
    """The peer synthesizers, each family in its own venv (SDV's; mostlyai-engine's), their
    evaluation reports cached. A venv is built, and its package's version read, when a model
    of it is first asked for."""

    def __init__(self, workdir: Path, refit: bool, fit: bool = True):
        self.directory = workdir / "peers"
        self.refit = refit
        self.fit = fit  # False: only read the cache (another process fills it)
        self._envs: dict[str, tuple[Path, str]] = {}  # env name -> (its python, package version)

    def env(self, model: str) -> tuple[Path, str]:
        """The python of `model`'s venv (built if missing) and its package's version."""
        from peers_env import ensure_peer_env, env_for, package_version

        env = env_for(model)
        if env.name not in self._envs:
            python = ensure_peer_env(env=env)
            self._envs[env.name] = (python, package_version(python, env))
        return self._envs[env.name]

    def cache_path(self, table, seed: int, model: str) -> Path:
        tag = PEER_VERSIONS[model][0]
        return self.directory / f"{table.name}-seed{seed}-{model}-{tag}{self.env(model)[1]}.json"

    def result(self, table, seed: int, model: str) -> dict:
        """The cached record, or a fresh fit, sample and evaluation (then cached)."""
        path = self.cache_path(table, seed, model)
        digest = table.train_sha256
        if path.exists() and not self.refit:
            record = json.loads(path.read_text())
            if record.get("train_sha256") == digest:
                LOG.info("%s seed %d %s: from the cache %s", table.name, seed, model, path)
                return {**record, "cached": True}
            LOG.info("%s seed %d %s: cached for other training rows; refitting", table.name,
                     seed, model)
        if not self.fit:
            raise LookupError(f"not in the peer cache yet: {path.name}")
        from peers_env import run_peer

        work = Path(_fresh(str(self.directory / table.name / f"seed{seed}" / model)))
        LOG.info("%s seed %d: fitting %s on %d rows", table.name, seed, model, table.train_rows)
        started = time.perf_counter()
        timings = run_peer(self.env(model)[0], model=model, train=Path(table.train),
                           num_rows=table.train_rows, seed=seed,
                           output=work / "synthetic.parquet", timings=work / "timings.json")
        timings["wall_seconds"] = time.perf_counter() - started
        LOG.info("%s seed %d %s: fit %.1f s, sample %.1f s, %.1f s wall", table.name, seed,
                 model, timings["fit_seconds"], timings["sample_seconds"],
                 timings["wall_seconds"])
        report = _evaluate(table, str(work / "synthetic.parquet"), str(work / "report"), seed)
        record = {"table": table.name, "seed": seed, "model": model,
                  PEER_VERSIONS[model][1]: self.env(model)[1], "train_sha256": digest,
                  "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                  "timings": timings, "report": report}
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(path.name + ".partial")  # a reader never sees half a file
        staged.write_text(json.dumps(record, indent=1, default=str))
        os.replace(staged, path)
        return {**record, "cached": False}


# The raw encoding: the baselines' input -----------------------------------------------------

class RawEncoding:
    """The non-target columns as numbers: numeric and integer z-scored with the training mean
    and std, nulls at the mean (0) plus a 0/1 null column where the training column has nulls;
    categorical and boolean one-hot over the training categories, null its own category where
    the training column has nulls (an unseen category is all zeros)."""

    def __init__(self, train: pa.Table, columns: list[Column]):
        self.blocks = []  # (column, start, width, stats)
        start = 0
        for column in columns:
            values = train.column(column.name)
            has_null = values.null_count > 0
            if column.is_number:
                numbers = _numbers(values)
                mean = float(np.nanmean(numbers)) if np.isfinite(numbers).any() else 0.0
                std = float(np.nanstd(numbers)) if np.isfinite(numbers).any() else 0.0
                stats = {"mean": mean, "std": std if std > 0 else 1.0, "null": has_null}
                width = 1 + has_null
            else:
                texts = _texts(values)
                stats = {"categories": sorted({t for t in texts if t is not None}),
                         "null": has_null}
                width = len(stats["categories"]) + has_null
            self.blocks.append((column, start, width, stats))
            start += width
        self.width = start

    def __call__(self, table: pa.Table) -> np.ndarray:
        out = np.zeros((table.num_rows, self.width))
        for column, start, width, stats in self.blocks:
            values = table.column(column.name)
            if column.is_number:
                z = (_numbers(values) - stats["mean"]) / stats["std"]
                null = np.isnan(z)
                out[:, start] = np.where(null, 0.0, z)
                if stats["null"]:
                    out[:, start + 1] = null
            else:
                index = {c: i for i, c in enumerate(stats["categories"])}
                if stats["null"]:
                    index[None] = len(stats["categories"])
                for row, text in enumerate(_texts(values)):
                    if text in index:
                        out[row, start + index[text]] = 1.0
        return out

    def decode(self, encoded: np.ndarray) -> dict[str, tuple[str, Any]]:
        """Per column: ("z", standardised numbers) or ("category", chosen texts, None = null)."""
        decoded = {}
        for column, start, width, stats in self.blocks:
            if column.is_number:
                decoded[column.name] = ("z", encoded[:, start])
            else:
                labels = list(stats["categories"]) + ([None] if stats["null"] else [])
                chosen = np.argmax(encoded[:, start:start + width], axis=1)
                decoded[column.name] = ("category", [labels[i] for i in chosen])
        return decoded

    def standardised(self, column: Column, values: np.ndarray) -> np.ndarray:
        stats = next(s for c, _, _, s in self.blocks if c.name == column.name)
        return (values - stats["mean"]) / stats["std"]


def _numbers(values: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)


def _texts(values) -> list[str | None]:
    """Categories as strings (what aepipe's vocabularies hold), None for null."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    return [None if v is None else (v.decode() if isinstance(v, bytes) else str(v))
            for v in values.to_pylist()]


def _pca(train: np.ndarray):
    from sklearn.decomposition import PCA

    return PCA(n_components=min(PCA_COMPONENTS, *train.shape), svd_solver="full").fit(train)


# Learners ---------------------------------------------------------------------------------------

def _target(table: pa.Table, name: str, task: str) -> np.ndarray:
    values = table.column(name)
    if task == "regression":
        return _numbers(values)
    return np.array(_texts(values), dtype=object)


def learner_scores(task: str, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                   test_y: np.ndarray, seed: int) -> dict[str, float]:
    """{"linear": ..., "hgb": ...}: ROC AUC (binary, the training data's rarer class positive),
    accuracy (multiclass) or R^2 (regression) on the test rows. Rows without a target left out."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    keep = np.array([y is not None and not (isinstance(y, float) and math.isnan(y))
                     for y in train_y])
    train_x, train_y = train_x[keep], train_y[keep]
    keep = np.array([y is not None and not (isinstance(y, float) and math.isnan(y))
                     for y in test_y])
    test_x, test_y = test_x[keep], test_y[keep]
    if task == "regression":
        learners = {"linear": make_pipeline(StandardScaler(), Ridge()),
                    "hgb": HistGradientBoostingRegressor(random_state=seed)}
    else:
        train_y, test_y = train_y.astype(str), test_y.astype(str)
        learners = {"linear": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
                    "hgb": HistGradientBoostingClassifier(random_state=seed)}
    scores = {}
    with threadpool_limits(limits=1):
        for name, learner in learners.items():
            learner.fit(train_x, train_y)
            if task == "regression":
                scores[name] = float(r2_score(test_y, learner.predict(test_x)))
            elif task == "binary":
                labels, counts = np.unique(train_y, return_counts=True)
                positive = labels[np.argmin(counts)]
                column = list(learner.classes_).index(positive)
                scores[name] = float(roc_auc_score(test_y == positive,
                                                   learner.predict_proba(test_x)[:, column]))
            else:
                scores[name] = float(accuracy_score(test_y, learner.predict(test_x)))
    return scores


METRICS = {"binary": "ROC AUC", "multiclass": "accuracy", "regression": "R^2"}


# Anomalies ---------------------------------------------------------------------------------------

def make_anomalies(holdout: pa.Table, columns: list[str], seed: int) -> pa.Table:
    """A copy of the held-out rows in which, per row, a random ANOMALY_SHARE of `columns` (at
    least 2) take the value of the same column in another random held-out row."""
    rng = np.random.default_rng([seed, 7])
    rows, width = holdout.num_rows, len(columns)
    swapped = max(2, int(round(ANOMALY_SHARE * width)))
    chosen = np.zeros((rows, width), bool)
    for row in range(rows):
        chosen[row, rng.choice(width, size=min(swapped, width), replace=False)] = True
    donors = rng.integers(0, rows - 1, size=(rows, width))
    donors += donors >= np.arange(rows)[:, None]  # another row, never the row itself
    arrays = []
    for name in holdout.column_names:
        column = holdout.column(name)
        if name in columns:
            j = columns.index(name)
            take = np.where(chosen[:, j], donors[:, j], np.arange(rows))
            column = column.take(pa.array(take))
        arrays.append(column)
    return pa.table(arrays, names=holdout.column_names)


# aepipe -----------------------------------------------------------------------------------------

def train_aepipe(table, schema: Schema, model_dir: str, **options) -> dict:
    """Trains with ModelOptions(**options); returns the timing and what the manifest says."""
    from aepipe.store.reader import read_manifest
    from aepipe.options import ModelOptions
    from pipelines.train import train

    started = time.perf_counter()
    train(input_pattern=table.train, schema=schema, model_dir=model_dir,
          options=ModelOptions(**options), overwrite=True)
    wall = time.perf_counter() - started
    run = read_manifest(model_dir).training
    facts = {"train_seconds": wall, "rows": table.train_rows, "options": options,
             "fit_seconds": run.fit_seconds, "validations": len(run.history["loss"]),
             "steps": run.steps, "best_step": run.best_step, "batch_size": run.batch_size,
             "validation_loss": run.validation_loss}
    LOG.info("%s: trained %s in %.1f s (fit %s s; %s validations, %s steps, best step %s)",
             table.name, options, wall, facts["fit_seconds"], facts["validations"],
             facts["steps"], facts["best_step"])
    return facts


def synthetic_job(table, seed: int, work: str, peers: Peers | None, peer_models: list[str]
                  ) -> dict:
    from aepipe.options import SampleOptions
    from pipelines.sample import sample

    results: dict[str, Any] = {}
    model_dir = os.path.join(work, "synthetic-model")
    results["timing"] = train_aepipe(table, table.schema, model_dir, seed=seed)
    directory = _fresh(os.path.join(work, "synthetic"))
    started = time.perf_counter()
    sample(model_dir=model_dir, options=SampleOptions(num_rows=table.train_rows, seed=seed),
           output=os.path.join(directory, "part"), overwrite=True, trust_model=TRUST_MODEL)
    results["timing"]["sample_seconds"] = time.perf_counter() - started
    report = _evaluate(table, directory, os.path.join(work, "synthetic-report"), seed)
    results["aepipe"] = _figures(report)
    for model in peer_models:
        _guarded(results, model, lambda model=model: peer_figures(peers, table, seed, model))
    return results


def peer_figures(peers: Peers, table, seed: int, model: str) -> dict:
    record = peers.result(table, seed, model)
    version_key = PEER_VERSIONS[model][1]
    figures = {**_figures(record["report"]), "cached": record["cached"],
               "fit_seconds": record["timings"]["fit_seconds"],
               "sample_seconds": record["timings"]["sample_seconds"],
               version_key: record[version_key]}
    if "rare_cells" in record["timings"]:  # TabularARGN's _RARE_ placeholders
        figures["rare_cells"] = record["timings"]["rare_cells"]
    return figures


def encode_rows(model_dir: str, rows: pa.Table, work: str, name: str) -> pa.Table:
    """`pipelines.encode` of `rows` (which hold ROW_ID, passed through); the output sorted by
    ROW_ID. Rows the model rejects are missing from it (logged)."""
    from aepipe.beam.encode import EncodeOptions
    from pipelines.encode import encode

    directory = _fresh(os.path.join(work, name))
    source = os.path.join(directory, "input.parquet")
    pq.write_table(rows, source)
    output = os.path.join(directory, "codes", "part")
    counters = encode(input_pattern=source, model_dir=model_dir, output=output,
                      options=EncodeOptions(passthrough=(ROW_ID,)), overwrite=True,
                      trust_model=TRUST_MODEL)
    encoded = pa.concat_tables(pq.read_table(p) for p in sorted(glob.glob(output + "-*.parquet")))
    if encoded.num_rows != rows.num_rows:
        LOG.warning("%s: encode wrote %d of %d rows (counters %s)", name, encoded.num_rows,
                    rows.num_rows, counters)
    return encoded.sort_by(ROW_ID)


def _with_ids(rows: pa.Table, start: int = 0) -> pa.Table:
    return rows.append_column(ROW_ID, pa.array(np.arange(start, start + rows.num_rows)))


def _codes(encoded: pa.Table) -> np.ndarray:
    names = sorted((n for n in encoded.column_names if n.startswith("ae_") and n[3:].isdigit()),
                   key=lambda n: int(n[3:]))
    return np.column_stack([encoded.column(n).to_numpy() for n in names]).astype(np.float64)


def codes_job(table, seed: int, work: str) -> dict:
    """Codes as features, reconstruction and anomaly AUROC (one code-8 model, one code-16)."""
    results: dict[str, Any] = {"timing": {}}
    train = pq.read_table(table.train)
    holdout = pq.read_table(table.holdout)
    features = [c for c in table.codes_schema.modelled]
    names = [c.name for c in features]
    raw = RawEncoding(train, features)
    raw_train, raw_holdout = raw(train), raw(holdout)
    pca = _pca(raw_train)
    train_y = _target(train, table.target, table.task)
    holdout_y = _target(holdout, table.target, table.task)
    anomalies = make_anomalies(holdout, names, seed)
    scored = pa.concat_tables([_with_ids(holdout), _with_ids(anomalies, holdout.num_rows)])
    labels = np.r_[np.zeros(holdout.num_rows), np.ones(anomalies.num_rows)]

    features_results = {"metric": METRICS[table.task]}
    for size in CODE_SIZES:
        model_dir = os.path.join(work, f"codes{size}-model")
        results["timing"][f"codes{size}"] = train_aepipe(
            table, table.codes_schema, model_dir, seed=seed, code_size=size)
        train_codes = encode_rows(model_dir, _with_ids(train), work, f"codes{size}-train")
        held_codes = encode_rows(model_dir, scored if size == 8 else _with_ids(holdout), work,
                                 f"codes{size}-holdout")
        ids_train = train_codes.column(ROW_ID).to_numpy()
        ids_held = held_codes.column(ROW_ID).to_numpy()
        normal = ids_held < holdout.num_rows
        features_results[f"codes{size}"] = learner_scores(
            table.task, _codes(train_codes), train_y[ids_train],
            _codes(held_codes)[normal], holdout_y[ids_held[normal]], seed)
        if size == 8:
            from sklearn.metrics import roc_auc_score

            score = held_codes.column("ae_score").to_numpy().astype(np.float64)
            results["anomaly_aepipe"] = float(roc_auc_score(labels[ids_held], score))
            results["reconstruction_aepipe"] = reconstruct_aepipe(model_dir, holdout, raw)
        LOG.info("%s seed %d code size %d: %s", table.name, seed, size,
                 features_results[f"codes{size}"])
    features_results["pca8"] = learner_scores(table.task, pca.transform(raw_train), train_y,
                                              pca.transform(raw_holdout), holdout_y, seed)
    features_results["raw"] = learner_scores(table.task, raw_train, train_y, raw_holdout,
                                             holdout_y, seed)
    for learner in ("linear", "hgb"):
        features_results[f"codes16_over_raw_{learner}"] = _ratio(
            features_results["codes16"][learner], features_results["raw"][learner])
    results["features"] = features_results
    results["reconstruction"] = {"aepipe": results.pop("reconstruction_aepipe"),
                                 "pca8": reconstruct_pca(pca, raw, holdout, raw_holdout)}
    results["anomaly"] = {"aepipe": results.pop("anomaly_aepipe"),
                          **anomaly_baselines(raw, raw_train, pca, scored, labels, seed)}
    LOG.info("%s seed %d: pca8 %s, raw %s; reconstruction %s; anomaly AUROC %s", table.name,
             seed, features_results["pca8"], features_results["raw"], results["reconstruction"],
             results["anomaly"])
    return results


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def reconstruct_aepipe(model_dir: str, holdout: pa.Table, raw: RawEncoding) -> dict:
    """decode(encode(x)) of the held-out rows through the model's signatures."""
    from aepipe.store.reader import ModelDirectory
    from aepipe.table.signatures import null_name

    model = ModelDirectory(model_dir, trust_model=TRUST_MODEL)
    decoded: dict[str, list] = {}
    for batch in holdout.to_batches(max_chunksize=8192):
        code, _ = model.encode(batch)
        for name, values in model.decode(code).items():
            decoded.setdefault(name, []).append(values.numpy())
    decoded = {name: np.concatenate(parts) for name, parts in decoded.items()}
    mse, accuracy = [], []
    for column, _, _, _ in raw.blocks:
        truth = holdout.column(column.name)
        if column.is_number:
            x = _numbers(truth)
            present = ~np.isnan(x)
            error = (raw.standardised(column, decoded[column.name].astype(np.float64))
                     - raw.standardised(column, x))[present]
            mse.append(float(np.mean(error ** 2)))
        else:
            values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                      for v in decoded[column.name]]
            is_null = decoded.get(null_name(column.name), np.zeros(len(values), bool))
            chosen = [None if n else v for v, n in zip(values, is_null)]
            accuracy.append(float(np.mean([a == b for a, b in zip(chosen, _texts(truth))])))
    return {"numeric_mse": float(np.mean(mse)) if mse else None,
            "categorical_accuracy": float(np.mean(accuracy)) if accuracy else None}


def reconstruct_pca(pca, raw: RawEncoding, holdout: pa.Table, raw_holdout: np.ndarray) -> dict:
    rebuilt = raw.decode(pca.inverse_transform(pca.transform(raw_holdout)))
    mse, accuracy = [], []
    for column, _, _, _ in raw.blocks:
        truth = holdout.column(column.name)
        kind, values = rebuilt[column.name]
        if kind == "z":
            z = raw.standardised(column, _numbers(truth))
            present = ~np.isnan(z)
            mse.append(float(np.mean((values[present] - z[present]) ** 2)))
        else:
            accuracy.append(float(np.mean([a == b for a, b in zip(values, _texts(truth))])))
    return {"numeric_mse": float(np.mean(mse)) if mse else None,
            "categorical_accuracy": float(np.mean(accuracy)) if accuracy else None}


def anomaly_baselines(raw: RawEncoding, raw_train: np.ndarray, pca, scored: pa.Table,
                      labels: np.ndarray, seed: int) -> dict:
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import roc_auc_score

    encoded = raw(scored)
    forest = IsolationForest(random_state=seed).fit(raw_train)
    residual = encoded - pca.inverse_transform(pca.transform(encoded))
    return {"isolation_forest": float(roc_auc_score(labels, -forest.score_samples(encoded))),
            "pca8": float(roc_auc_score(labels, np.sum(residual ** 2, axis=1)))}


# Tables -----------------------------------------------------------------------------------------

def _values(results: dict, tables: list[str], seeds: list[int], *path) -> dict[str, list]:
    out = {}
    for name in tables:
        values = []
        for seed in seeds:
            node = results.get(name, {}).get(str(seed))
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, (int, float)) and not isinstance(node, bool):
                values.append(float(node))
        out[name] = values
    return out


def _cell(values: list[float], digits: int = 3, expected: int | None = None) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    mean, spread = float(np.mean(values)), (max(values) - min(values)) / 2
    text = f"{mean:.{digits}f} ± {spread:.{digits}f}"
    if expected is not None and len(values) < expected:
        text += f" (n={len(values)})"
    return text


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _cache_mark(results: dict, name: str, seeds: list[int], model: str) -> str:
    flags = [results.get(name, {}).get(str(s), {}).get("synthetic", {}).get(model, {})
             .get("cached") for s in seeds]
    cached = sum(f is True for f in flags)
    if not cached:
        return ""
    return f" {CACHED}" if cached == len(flags) else f" {CACHED}{cached}/{len(flags)}"


def print_tables(results: dict, tables: list[str], seeds: list[int], meta: dict,
                 peer_models: list[str]) -> None:
    n = len(seeds)
    spread = f"mean ± half-range ((max - min) / 2) over seeds {','.join(map(str, seeds))}"
    print(f"\n## aepipe default model (ModelOptions(), seed varied) — {spread}\n")
    info = [[name, meta[name]["task"], meta[name]["target"], f"{meta[name]['train_rows']:,}",
             f"{meta[name]['holdout_rows']:,}", f"{meta[name]['columns']}"] for name in tables]
    print(_markdown(["table", "task", "target", "train rows", "held-out rows", "columns"], info))

    print(f"\n### 1. Synthetic data ({spread}; {CACHED}: peer figures from the cache)\n")
    synthesizers = [("aepipe", "aepipe")] + [(m, PEER_NAMES[m]) for m in peer_models]
    for key, title in (("quality", "quality score"), ("column_shapes", "column shapes"),
                       ("column_pair_trends", "column pair trends"),
                       ("ml_efficacy_ratio", "ML efficacy ratio (synthetic / real)")):
        rows = []
        for name in tables:
            row = [name]
            for model, _ in synthesizers:
                cell = _cell(_values(results, [name], seeds, "synthetic", model, key)[name],
                             expected=n)
                row.append(cell + (_cache_mark(results, name, seeds, model)
                                   if model != "aepipe" and cell != "n/a" else ""))
            rows.append(row)
        print(f"{title}:\n")
        print(_markdown(["table"] + [t for _, t in synthesizers], rows) + "\n")

    print(f"### 2. Codes as features ({spread}; held-out ROC AUC for binary targets, accuracy "
          "for multiclass, R^2 for regression; LR = logistic regression / Ridge on "
          "standardised inputs, HGB = HistGradientBoosting)\n")
    rows = []
    for name in tables:
        value = lambda *path: _cell(_values(results, [name], seeds, "codes", "features",  # noqa
                                            *path)[name], expected=n)
        rows.append([name, METRICS[meta[name]["task"]],
                     value("codes8", "linear"), value("pca8", "linear"),
                     value("codes8", "hgb"), value("pca8", "hgb"),
                     value("codes16", "linear"), value("raw", "linear"),
                     value("codes16_over_raw_linear"),
                     value("codes16", "hgb"), value("raw", "hgb"),
                     value("codes16_over_raw_hgb")])
    print(_markdown(["table", "metric", "LR codes-8", "LR PCA-8", "HGB codes-8", "HGB PCA-8",
                     "LR codes-16", "LR raw", "LR codes-16/raw", "HGB codes-16", "HGB raw",
                     "HGB codes-16/raw"], rows))

    print(f"\n### 3. Reconstruction of held-out rows, code size 8, target not modelled "
          f"({spread}; MSE in training-standardised units, lower is better)\n")
    rows = []
    for name in tables:
        value = lambda *path: _cell(_values(results, [name], seeds, "codes",  # noqa: E731
                                            "reconstruction", *path)[name], 4, expected=n)
        rows.append([name, value("aepipe", "numeric_mse"), value("pca8", "numeric_mse"),
                     value("aepipe", "categorical_accuracy"),
                     value("pca8", "categorical_accuracy")])
    print(_markdown(["table", "numeric MSE aepipe", "numeric MSE PCA-8",
                     "categorical accuracy aepipe", "categorical accuracy PCA-8"], rows))

    print(f"\n### 4. Anomaly AUROC, held-out rows vs the same rows with {ANOMALY_SHARE:.0%} of "
          f"their non-target columns (at least 2) swapped in from other rows ({spread})\n")
    rows = []
    for name in tables:
        value = lambda key: _cell(_values(results, [name], seeds, "codes", "anomaly",  # noqa
                                          key)[name], expected=n)
        rows.append([name, value("aepipe"), value("isolation_forest"), value("pca8")])
    print(_markdown(["table", "aepipe ae_score (code 8)", "IsolationForest", "PCA-8 error"],
                    rows))

    print(f"\n### 5. aepipe train wall time, seconds (whole pipelines.train call; {spread})\n")
    rows = []
    for name in tables:
        value = lambda *path: _cell(_values(results, [name], seeds, *path)[name], 1,  # noqa
                                    expected=n)
        epochs = lambda *path: _cell(_values(results, [name], seeds, *path)[name], 1)  # noqa
        rows.append([name, f"{meta[name]['train_rows']:,}",
                     value("synthetic", "timing", "train_seconds"),
                     epochs("synthetic", "timing", "steps"),
                     value("codes", "timing", "codes8", "train_seconds"),
                     value("codes", "timing", "codes16", "train_seconds"),
                     value("synthetic", "timing", "sample_seconds")])
    print(_markdown(["table", "train rows", "train s (all columns)", "steps (all columns)",
                     "train s (code 8, no target)", "train s (code 16, no target)",
                     "sample s"], rows))
    peers_rows = []
    for name in tables:
        for model in peer_models:
            fit = _values(results, [name], seeds, "synthetic", model, "fit_seconds")[name]
            if fit:
                peers_rows.append([name, PEER_NAMES[model], _cell(fit, 1, expected=n)
                                   + _cache_mark(results, name, seeds, model)])
    if peers_rows:
        print(f"\nPeer fit() seconds ({spread}; {CACHED}: measured when the cache was filled)\n")
        print(_markdown(["table", "peer", "fit s"], peers_rows))
    errors = [(name, seed, key, error) for name in tables for seed in seeds
              for job in (results.get(name, {}).get(str(seed), {}),)
              for part in [job] + [v for v in job.values() if isinstance(v, dict)]
              for key, error in part.get("errors", {}).items()]
    if errors:
        print("\nErrors:")
        for name, seed, key, error in errors:
            print(f"- {name} seed {seed} {key}: {error}")


# Main ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--tables", default=",".join(bench_tables.NAMES))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", default=",".join(JOBS),
                        help="synthetic (with the peers) and/or codes (codes as features, "
                             "reconstruction, anomalies)")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help="peer synthesizers to compare (empty for none)")
    parser.add_argument("--refit-peers", action="store_true",
                        help="refit the peers even where their cached report exists")
    parser.add_argument("--peers-only", action="store_true",
                        help="only fit and evaluate the peers (fills their cache)")
    parser.add_argument("--cached-peers", action="store_true",
                        help="never fit a peer here: read the cache that a --peers-only run "
                             "fills, a missing one is reported missing")
    parser.add_argument("--tables-only", action="store_true",
                        help="print the tables of WORKDIR/results.json, the peers' cells "
                             "read again from their cache")
    parser.add_argument("--trust-model", action="store_true",
                        help="skip aepipe's check of the trained models' ops (aepipe.store.trust)")
    parser.add_argument("--workdir", default=str(bench_tables.DEFAULT_WORKDIR))
    args = parser.parse_args(argv)
    global TRUST_MODEL
    TRUST_MODEL = args.trust_model
    from aepipe.logs import configure_logging, quiet_startup

    configure_logging()
    logging.getLogger("benchmark").setLevel(logging.INFO)
    names = [t for t in args.tables.split(",") if t]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    jobs = [j for j in args.jobs.split(",") if j]
    peer_models = [p for p in args.peers.split(",") if p]
    for value, allowed in ((names, bench_tables.NAMES), (jobs, JOBS), (peer_models, PEERS)):
        unknown = set(value) - set(allowed)
        if unknown:
            parser.error(f"unknown {sorted(unknown)} (one of: {', '.join(allowed)})")
    workdir = Path(args.workdir)
    tables = {name: bench_tables.load(name, workdir) for name in names}
    for table in tables.values():
        LOG.info("%s: %d training rows, %d held-out, target %s (%s); %s", table.name,
                 table.train_rows, table.holdout_rows, table.target, table.task,
                 "; ".join(table.notes))
    peers = (Peers(workdir, args.refit_peers, fit=not (args.cached_peers or args.tables_only))
             if peer_models and "synthetic" in jobs else None)

    if args.peers_only:
        if peers is None:
            parser.error("--peers-only needs --peers and the synthetic job")
        for table in tables.values():
            for seed in seeds:
                for model in peer_models:
                    started = time.perf_counter()
                    try:
                        record = peers.result(table, seed, model)
                    except Exception as e:  # noqa: BLE001
                        LOG.error("%s seed %d %s failed: %s", table.name, seed, model, e)
                        continue
                    LOG.info("PEER %s seed %d %s: %s, fit %.1f s, %.1f s here; quality %.3f",
                             table.name, seed, model,
                             "cached" if record["cached"] else "fitted",
                             record["timings"]["fit_seconds"], time.perf_counter() - started,
                             record["report"]["quality"]["score"])
        return

    results_path = workdir / "results.json"
    if args.tables_only:
        saved = json.loads(results_path.read_text())
        for name in names:
            for seed in seeds:
                entry = saved["results"].get(name, {}).get(str(seed), {}).get("synthetic")
                for model in peer_models if entry is not None else []:
                    entry.pop(model, None)
                    entry.get("errors", {}).pop(model, None)
                    _guarded(entry, model, lambda: peer_figures(peers, tables[name], seed, model))
        print_tables(saved["results"], names, seeds, saved["meta"]["tables"], peer_models)
        return
    quiet_startup()  # TensorFlow imported with its start-up noise silenced
    results: dict[str, Any] = {}
    meta = {name: {"task": t.task, "target": t.target, "train_rows": t.train_rows,
                   "holdout_rows": t.holdout_rows, "columns": len(t.schema.modelled),
                   "schema_notes": list(t.notes)} for name, t in tables.items()}
    started = time.perf_counter()
    for name, table in tables.items():
        for seed in seeds:
            work = os.path.join(workdir, name, f"seed{seed}")
            os.makedirs(work, exist_ok=True)
            entry = results.setdefault(name, {}).setdefault(str(seed), {})
            if "synthetic" in jobs:
                LOG.info("== %s seed %d: synthetic data (%.0f s so far)", name, seed,
                         time.perf_counter() - started)
                _guarded(entry, "synthetic",
                         lambda: synthetic_job(table, seed, work, peers, peer_models))
            if "codes" in jobs:
                LOG.info("== %s seed %d: codes, reconstruction, anomalies (%.0f s so far)",
                         name, seed, time.perf_counter() - started)
                _guarded(entry, "codes", lambda: codes_job(table, seed, work))
            results_path.write_text(json.dumps(
                {"meta": {"tables": meta, "seeds": seeds, "jobs": jobs, "peers": peer_models,
                          "spread": "(max - min) / 2 over seeds"},
                 "results": results}, indent=1, default=str))
    print_tables(results, names, seeds, meta, peer_models if "synthetic" in jobs else [])
    print(f"\nper-seed figures: {results_path} ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
