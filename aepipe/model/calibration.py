"""The mixture prior's weights calibrated to the training rows' column and column-pair frequencies.

EM fits the Gaussian mixture to the codes, where a component may straddle the gap between two
tight clusters of codes (Adult's educations lie in a row, one cluster each): the codes it draws
there decode to the values between them, Assoc-voc and Assoc-acdm twice as often as in the
training rows, Bachelors and Some-college too rarely. The rows' own frequencies say where the
mass belongs, so after EM the components' weights w are refitted to them, means and
covariances kept:

- every modelled column but an item set is read as a discrete outcome: a category (null its own
  class), a number's quantile bin (or null), a boolean (or null);
- p_k(v), component k's probability of outcome v, is the decoder's probability of v averaged
  over PROBES codes of the component (the same standard normal draws for every component, half
  of them the other half's negatives; fewer codes when the decoder's outputs are wide); of a
  pair of outcomes (v, u) of two columns, the average of the product (the columns are
  independent given the code);
- w maximises Σ_tables Σ_v t(v) log Σ_k w_k p_k(v), with t the training rows' frequencies of
  each column ("columns") or also of each pair of columns ("pairs", the default), plus ANCHOR
  per table of the fitted weights' own log-likelihood Σ_k w0_k log w_k, by EM on the weights
  (the mixture's components are the latent classes, each table's outcomes the observations).

The calibrated mixture is the prior the SavedModel draws from; conditional sampling reads the
same weights. Measured by the quality benchmark (seeds 0-2, docs/benchmarks.md): quality Adult
0.950 -> 0.954, diamonds 0.943 -> 0.956, penguins (3 components) unchanged; ML efficacy Adult
0.931 -> 0.920, the others unchanged; the DCR ratio stays above 1 (docs/train.md).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Iterable, Mapping

import numpy as np

from aepipe.model.prior import GaussianMixturePrior
from aepipe.table.layout import CATEGORIES, NULLS, SCALARS, Layout

__all__ = ["calibrate", "outcome_probabilities", "outcomes"]

_LOG = logging.getLogger(__name__)
PROBES = 256  # codes per component on which its outcome probabilities are averaged, at most
MIN_PROBES = 32  # ... and at least: fewer where PROBES would hold more than PROBE_VALUES
PROBE_VALUES = 32_000_000  # decoder outputs of all probes together (128 MB)
ITERATIONS = 300  # EM steps on the weights
ANCHOR = 0.01  # per table, the weight of the fitted weights' own log-likelihood
MAX_PAIR_CELLS = 4_096  # a pair of columns with more joint outcomes is left out
MAX_CELLS = 250_000  # the pairs' joint outcomes in all (pairs drawn at random beyond)
_DECODE_ROWS = 8_192


def outcome_probabilities(layout: Layout, outputs: np.ndarray) -> list[np.ndarray]:
    """Per modelled column but item sets (the scalars, then the categoricals), [rows, outcomes]:
    the decoder's probability of each outcome (null first where the column is nullable, then a
    boolean's false and true, a number's quantile bins, a category's classes). A number
    without bins (the standard transform) counts only as null or present, if nullable."""
    found, nullable = [], set(layout.nullable.tolist())
    null_of = dict(zip(layout.nullable.tolist(), range(len(layout.nullable))))
    values = {scalar: position for position, scalar in enumerate(layout.values.tolist())}
    predicted = outputs[:, layout.outputs.scalars]
    bins = (outputs[:, layout.outputs.bins].reshape(len(outputs), len(layout.values),
                                                    layout.bins) if layout.bins else None)
    nulls = _sigmoid(outputs[:, layout.outputs.nulls])
    for index in range(len(layout.scalars)):
        if index in values:
            present = (_softmax(bins[:, values[index]]) if bins is not None
                       else np.ones((len(outputs), 1)))
        else:
            true = _sigmoid(predicted[:, index])[:, None]
            present = np.concatenate([1.0 - true, true], axis=1)
        if index in nullable:
            null = nulls[:, null_of[index]][:, None]
            present = np.concatenate([null, (1.0 - null) * present], axis=1)
        if present.shape[1] > 1:
            found.append(present)
    logits = outputs[:, layout.outputs.categories]
    for start, classes in zip(layout.category_offsets, layout.classes):
        found.append(_softmax(logits[:, start:start + classes]))
    return found


def outcomes(layout: Layout, batch: Mapping[str, np.ndarray]) -> np.ndarray:
    """[rows, columns]: each row's outcome of every column `outcome_probabilities` lists."""
    from aepipe.transform import marginal

    found, nullable = [], set(layout.nullable.tolist())
    values = set(layout.values.tolist())
    scalars = np.asarray(batch.get(SCALARS, np.zeros((0, 0))), np.float32)
    nulls = np.asarray(batch.get(NULLS, np.zeros((0, 0)))) > 0
    for index in range(len(layout.scalars)):
        if index in values:
            if not layout.bins and index not in nullable:
                continue
            present = (np.asarray(marginal.bin_of(scalars[:, index], layout.bins))
                       if layout.bins else np.zeros(len(scalars), np.int64))
        else:
            present = (scalars[:, index] > 0.5).astype(np.int64)
        if index in nullable:
            present = np.where(nulls[:, index], 0, present + 1)
        found.append(present)
    if layout.categoricals:
        found += list(np.asarray(batch[CATEGORIES], np.int64).T)
    return np.stack(found, axis=1) if found else np.zeros((0, 0), np.int64)


def calibrate(mixture: GaussianMixturePrior, decoder: Callable[[np.ndarray], np.ndarray],
              layout: Layout, batches: Iterable[Mapping[str, np.ndarray]], *,
              calibration: str = "pairs", seed: int = 0) -> GaussianMixturePrior:
    """`mixture` with its weights refitted to the rows of `batches` (the transform's matrices),
    as the module's docstring says; `decoder` maps codes to the decoder's output matrix;
    `calibration` is one of `aepipe.options.CALIBRATIONS`."""
    if calibration == "none":
        return mixture
    rows = np.concatenate([outcomes(layout, batch) for batch in batches])
    if rows.shape[1] == 0:
        return mixture
    probabilities = _component_probabilities(mixture, decoder, layout, seed)
    tables = [(p.mean(axis=1), np.bincount(rows[:, j], minlength=p.shape[2]))
              for j, p in enumerate(probabilities)]
    if calibration == "pairs":
        tables += [_pair(probabilities[a], probabilities[b], rows[:, a], rows[:, b])
                   for a, b in _pairs([p.shape[2] for p in probabilities], seed)]
    given = np.concatenate([a for a, _ in tables], axis=1).astype(np.float32)
    target = np.concatenate([t / max(t.sum(), 1) for _, t in tables])
    weights = _em(mixture.weights, given, target, anchor=ANCHOR * len(tables))
    before, after = (_divergence(w, given, target, len(tables))
                     for w in (mixture.weights, weights))
    moved = 0.5 * float(np.abs(weights - mixture.weights).sum())
    _LOG.info("prior: weights calibrated to %d column and pair frequencies (%s): mean KL "
              "divergence %.4f -> %.4f, %.1f%% of the weight moved", len(tables), calibration,
              before, after, 100 * moved)
    return dataclasses.replace(mixture, weights=weights, calibration={
        "kind": calibration, "tables": len(tables), "divergence_before": before,
        "divergence_after": after, "weight_moved": moved})


def _component_probabilities(mixture: GaussianMixturePrior, decoder: Callable, layout: Layout,
                             seed: int) -> list[np.ndarray]:
    """Per column, [components, probes, outcomes]: the decoder's outcome probabilities at each
    component's probe codes (PROBES of them, fewer for wide outputs, an even number)."""
    components, dims = mixture.means.shape
    probes = int(np.clip(PROBE_VALUES // (components * layout.outputs.width), MIN_PROBES,
                         PROBES))
    half = np.random.default_rng(seed).standard_normal((probes // 2, dims))
    noise = np.concatenate([half, -half])
    codes = (mixture.means[:, None, :] + np.einsum("kij,pj->kpi",
                                                   np.linalg.cholesky(mixture.covariances),
                                                   noise)).reshape(-1, dims)
    codes = codes.astype(np.float32)
    outputs = np.concatenate([np.asarray(decoder(codes[start:start + _DECODE_ROWS]))
                              for start in range(0, len(codes), _DECODE_ROWS)])
    return [p.astype(np.float32).reshape(components, len(noise), -1)
            for p in outcome_probabilities(layout, outputs)]


def _pairs(sizes: list[int], seed: int) -> list[tuple[int, int]]:
    """The column pairs whose joint frequencies are fitted: every pair of at most
    MAX_PAIR_CELLS joint outcomes, drawn at random until MAX_CELLS when they hold more."""
    pairs = [(a, b) for a in range(len(sizes)) for b in range(a + 1, len(sizes))
             if sizes[a] * sizes[b] <= MAX_PAIR_CELLS]
    if sum(sizes[a] * sizes[b] for a, b in pairs) <= MAX_CELLS:
        return pairs
    kept, cells = [], 0
    for i in np.random.default_rng(seed).permutation(len(pairs)):
        a, b = pairs[i]
        if cells + sizes[a] * sizes[b] <= MAX_CELLS:
            kept.append((a, b))
            cells += sizes[a] * sizes[b]
    return sorted(kept)


def _pair(first: np.ndarray, second: np.ndarray, rows_first: np.ndarray,
          rows_second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A pair's table: per component, its joint outcome probabilities (flattened), and the
    rows' joint counts."""
    joint = np.einsum("kpa,kpb->kab", first, second) / first.shape[1]
    width = second.shape[2]
    counts = np.bincount(rows_first * width + rows_second, minlength=first.shape[2] * width)
    return joint.reshape(len(joint), -1), counts


def _em(initial: np.ndarray, given: np.ndarray, target: np.ndarray, *, anchor: float
        ) -> np.ndarray:
    """The mixture weights maximising the target frequencies' log-likelihood plus `anchor`
    times the initial weights' (see the module's docstring)."""
    tables = float(target.sum())
    weights = np.asarray(initial, np.float64)
    for _ in range(ITERATIONS):
        shares = weights * (given @ (target / np.maximum(weights @ given, 1e-300)))
        weights = (shares + anchor * initial) / (tables + anchor)
    return weights / weights.sum()


def _divergence(weights: np.ndarray, given: np.ndarray, target: np.ndarray, tables: int
                ) -> float:
    """The mean over tables of KL(target || the mixture's frequencies)."""
    kept = target > 0
    return float(np.sum(target[kept] * np.log(target[kept] / np.maximum(
        (weights @ given)[kept], 1e-300))) / tables)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))
