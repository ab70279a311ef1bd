"""The prior over codes that sampling draws from: a Gaussian mixture fitted to training codes,
or, for a variational autoencoder, the N(0, I) it was trained towards (a one-component mixture).

A plain autoencoder has no prior of its own, and its codes are far from N(0, I): drawing from
N(0, I) would decode into records unlike the data. A full-covariance Gaussian mixture, fitted by
EM on the codes of (a sample of) the training rows, follows the shape they actually take. It is
stored in the manifest as plain numbers and sampled with numpy, so sampling needs no TensorFlow
beyond the `generate` signature.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

__all__ = ["GaussianMixturePrior"]

_LOG = logging.getLogger(__name__)
_REGULARISATION = 1e-4


@dataclasses.dataclass(frozen=True)
class GaussianMixturePrior:
    weights: np.ndarray  # (components,)
    means: np.ndarray  # (components, dims)
    covariances: np.ndarray  # (components, dims, dims)
    kind: str = "gaussian_mixture"

    @classmethod
    def standard_normal(cls, dims: int) -> "GaussianMixturePrior":
        """N(0, I): a variational autoencoder's own prior."""
        return cls(np.ones(1), np.zeros((1, dims)), np.eye(dims)[None], kind="standard_normal")

    @classmethod
    def fit(cls, codes: np.ndarray, *, components: int = 10, iterations: int = 100,
            seed: int = 0, tolerance: float = 1e-4) -> "GaussianMixturePrior":
        """Fits by EM from a k-means++ start; fewer components when there are few codes."""
        codes = np.asarray(codes, np.float64)
        components = max(1, min(components, len(codes) // (10 * codes.shape[1] + 1)))
        rng = np.random.default_rng(seed)
        prior = cls._initial(codes, components, rng)
        previous = -np.inf
        for iteration in range(iterations):
            log_density = prior._log_densities(codes)
            total = np.logaddexp.reduce(log_density, axis=1)
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
        for _ in range(1, components):
            distance = np.min([np.sum((codes - c) ** 2, axis=1) for c in centres], axis=0)
            centres.append(codes[rng.choice(len(codes), p=distance / distance.sum())])
        nearest = np.argmin([np.sum((codes - c) ** 2, axis=1) for c in centres], axis=0)
        return cls._maximise(codes, np.eye(components)[nearest])

    @classmethod
    def _maximise(cls, codes: np.ndarray, responsibilities: np.ndarray) -> "GaussianMixturePrior":
        counts = responsibilities.sum(axis=0) + 1e-10
        means = responsibilities.T @ codes / counts[:, None]
        covariances = np.empty((len(counts), codes.shape[1], codes.shape[1]))
        for k in range(len(counts)):
            centred = codes - means[k]
            covariances[k] = (responsibilities[:, k, None] * centred).T @ centred / counts[k]
            covariances[k] += _REGULARISATION * np.eye(codes.shape[1])
        return cls(counts / counts.sum(), means, covariances)

    def _log_densities(self, codes: np.ndarray) -> np.ndarray:
        """log(weight_k * N(code | mean_k, cov_k)) for every code and component."""
        dims = codes.shape[1]
        out = np.empty((len(codes), len(self.weights)))
        for k in range(len(self.weights)):
            cholesky = np.linalg.cholesky(self.covariances[k])
            solved = np.linalg.solve(cholesky, (codes - self.means[k]).T)
            log_det = 2 * np.log(np.diag(cholesky)).sum()
            out[:, k] = (np.log(self.weights[k]) - 0.5 * (np.sum(solved ** 2, axis=0)
                         + log_det + dims * np.log(2 * np.pi)))
        return out

    def sample(self, rows: int, rng: np.random.Generator) -> np.ndarray:
        """`rows` codes drawn from the mixture (float32)."""
        component = rng.choice(len(self.weights), size=rows, p=self.weights)
        noise = rng.standard_normal((rows, self.means.shape[1]))
        choleskies = np.linalg.cholesky(self.covariances)
        codes = self.means[component] + np.einsum("nij,nj->ni", choleskies[component], noise)
        return codes.astype(np.float32)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "weights": self.weights.tolist(),
                "means": self.means.tolist(), "covariances": self.covariances.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "GaussianMixturePrior":
        return cls(np.asarray(data["weights"]), np.asarray(data["means"]),
                   np.asarray(data["covariances"]), data.get("kind", "gaussian_mixture"))
