"""The prior over codes that sampling draws from, fitted to the training codes after training.

Every kind is a `Prior`: it is fitted on the codes (`fit`), turns standard normal noise and
uniform draws into codes inside the exported SavedModel (`codes`, in TensorFlow, so that the
`sample` signature holds the whole sampler) and says what the manifest records (`to_dict`).
The kind shipped, chosen by measurement (README, "Train"), is a Gaussian mixture.

A plain autoencoder has no prior of its own, and a variational one with a small KL weight has
codes far from the N(0, I) it is pulled towards: drawing from N(0, I) would decode into records
unlike the data. A full-covariance Gaussian mixture, fitted by EM on the codes of (a sample of)
the training rows, follows the shape they actually take. The export puts it inside the
SavedModel (the `sample` signature turns standard normal noise into its codes); the manifest
records what it is.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
from typing import ClassVar

import numpy as np

from aepipe.options import ModelOptions

__all__ = ["Prior", "GaussianMixturePrior", "PRIORS"]

_LOG = logging.getLogger(__name__)
_REGULARISATION = 1e-4


class Prior(abc.ABC):
    """A density over codes that sampling draws from."""

    kind: ClassVar[str]
    draws: ClassVar[int]  # uniform draws per code, beside one normal draw per dimension

    @classmethod
    @abc.abstractmethod
    def fit(cls, codes: np.ndarray, options: ModelOptions) -> "Prior":
        """The prior fitted to `codes` (rows, code size)."""

    @abc.abstractmethod
    def codes(self, noise, uniform):
        """Codes (a float32 tensor) from `noise` (rows, code size) of standard normal draws and
        `uniform` (rows, `draws`) draws in [0, 1), as TensorFlow ops for the SavedModel."""

    @abc.abstractmethod
    def to_dict(self) -> dict:
        """What the manifest records, with the kind."""


@dataclasses.dataclass(frozen=True)
class GaussianMixturePrior(Prior):
    """A full-covariance Gaussian mixture, fitted by EM from a k-means++ start."""

    weights: np.ndarray  # (components,)
    means: np.ndarray  # (components, dims)
    covariances: np.ndarray  # (components, dims, dims)
    kind: ClassVar[str] = "gaussian_mixture"
    draws: ClassVar[int] = 1  # which component

    @classmethod
    def fit(cls, codes: np.ndarray, options: ModelOptions) -> "GaussianMixturePrior":
        """EM on one BLAS thread: its products are small, and BLAS threads spinning against
        other work made it 30x slower on two busy cores (88 s against 2.5 s, 35,000 codes)."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return cls.fit_em(codes, components=options.prior_components, seed=options.seed)

    @classmethod
    def fit_em(cls, codes: np.ndarray, *, components: int, seed: int = 0,
               iterations: int = 100, tolerance: float = 1e-4) -> "GaussianMixturePrior":
        """Fits by EM; fewer components when there are few codes (at least 10 per parameter
        of a component's mean and covariance diagonal)."""
        codes = np.asarray(codes, np.float64)
        components = max(1, min(components, len(codes) // (10 * codes.shape[1] + 1)))
        rng = np.random.default_rng(seed)
        prior = cls._initial(codes, components, rng)
        previous = -np.inf
        for iteration in range(iterations):
            log_density = prior._log_densities(codes)
            total = _log_sum_exp(log_density)
            likelihood = float(total.mean())
            prior = cls._maximise(codes, np.exp(log_density - total[:, None]))
            if likelihood - previous < tolerance:
                break
            previous = likelihood
        _LOG.info("prior: %d-component Gaussian mixture, mean log-likelihood %.3f after %d EM "
                  "iterations", components, likelihood, iteration + 1)
        return prior

    @classmethod
    def _initial(cls, codes: np.ndarray, components: int, rng: np.random.Generator
                 ) -> "GaussianMixturePrior":
        centres = [codes[rng.integers(len(codes))]]
        distance = np.sum((codes - centres[0]) ** 2, axis=1)  # to the nearest centre so far
        for _ in range(1, components):
            centres.append(codes[rng.choice(len(codes), p=distance / distance.sum())])
            distance = np.minimum(distance, np.sum((codes - centres[-1]) ** 2, axis=1))
        nearest = np.argmin([np.sum((codes - c) ** 2, axis=1) for c in centres], axis=0)
        return cls._maximise(codes, np.eye(components)[nearest])

    @classmethod
    def _maximise(cls, codes: np.ndarray, responsibilities: np.ndarray) -> "GaussianMixturePrior":
        counts = responsibilities.sum(axis=0) + 1e-10
        means = responsibilities.T @ codes / counts[:, None]
        dims = codes.shape[1]
        second = (responsibilities.T @ _outer(codes)).reshape(-1, dims, dims) / counts[:, None, None]
        covariances = second - means[:, :, None] * means[:, None, :]
        covariances += _REGULARISATION * np.eye(dims)
        return cls(counts / counts.sum(), means, covariances)

    def _log_densities(self, codes: np.ndarray) -> np.ndarray:
        """log(weight_k * N(code | mean_k, cov_k)) for every code and component.

        The Mahalanobis terms expand to x'Px - 2 m'Px + m'Pm, so that all components take
        two matrix products (the outer products of the codes against the precisions).
        """
        dims = codes.shape[1]
        precision = np.linalg.inv(self.covariances)  # (k, d, d)
        centred = precision @ self.means[:, :, None]  # (k, d, 1): P m
        mahalanobis = (_outer(codes) @ precision.reshape(len(precision), -1).T
                       - 2 * codes @ centred[:, :, 0].T
                       + np.einsum("kd,kd->k", self.means, centred[:, :, 0]))
        log_det = np.linalg.slogdet(self.covariances)[1]
        return np.log(self.weights) - 0.5 * (mahalanobis + log_det + dims * np.log(2 * np.pi))

    def codes(self, noise, uniform):
        """The component whose cumulative weight first passes the uniform draw, then its mean
        plus its covariance's Cholesky factor times the noise."""
        import tensorflow as tf

        cumulative = tf.constant(np.cumsum(self.weights), tf.float32)
        below = cumulative[None, :] < uniform[:, :1]
        component = tf.minimum(tf.reduce_sum(tf.cast(below, tf.int32), axis=1),
                               len(self.weights) - 1)
        choleskies = tf.constant(np.linalg.cholesky(self.covariances), tf.float32)
        return tf.gather(tf.constant(self.means, tf.float32), component) + tf.reduce_sum(
            tf.gather(choleskies, component) * noise[:, None, :], axis=-1)

    def to_dict(self) -> dict:
        """The mixture's parameters (sampling reads the copy inside the SavedModel)."""
        return {"kind": self.kind, "components": len(self.weights),
                "weights": self.weights.tolist(), "means": self.means.tolist(),
                "covariances": self.covariances.tolist()}


def _outer(codes: np.ndarray) -> np.ndarray:
    """Each code's outer product with itself, flattened: (n, d * d)."""
    return (codes[:, :, None] * codes[:, None, :]).reshape(len(codes), -1)


def _log_sum_exp(values: np.ndarray) -> np.ndarray:
    """log(sum(exp(values))) along the last axis, without overflow."""
    top = values.max(axis=1)
    return top + np.log(np.exp(values - top[:, None]).sum(axis=1))


PRIORS: dict[str, type[Prior]] = {GaussianMixturePrior.kind: GaussianMixturePrior}
