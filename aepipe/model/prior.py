"""The density over codes that sampling draws from, fitted to the training codes after training.

Every kind is a `Prior`: it is fitted on the codes (`fit`), turns standard normal noise and
uniform draws into codes inside the exported SavedModel (`codes`, in TensorFlow, so that the
`sample` signature holds the whole sampler) and says what the manifest records (`to_dict`).

A plain autoencoder has no prior of its own, and a variational one with a small KL weight has
codes far from the N(0, I) it is pulled towards: drawing from N(0, I) would decode into records
unlike the data. The kind shipped, chosen by measurement (docs/train.md), is a full-covariance
Gaussian mixture fitted by scikit-learn's EM to the codes of (a sample of) the training rows,
which follows the shape they actually take.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import warnings
from typing import ClassVar

import numpy as np

from aepipe.options import ModelOptions

__all__ = ["Prior", "GaussianMixturePrior", "PRIORS"]

_LOG = logging.getLogger(__name__)
_REGULARISATION = 1e-4  # added to each covariance's diagonal
_CODES_PER_PARAMETER = 10  # at least this many codes per parameter of a component's mean and
# covariance diagonal, or fewer components
EM_WORK = 4_096  # EM's steps times components: its time grows with both. Measured on Adult's
# codes (434 components), 8 steps decode as well as EM run to scikit-learn's tolerance (66
# steps) in a fifth of the time (docs/train.md); so at most 8 steps at the default 512
# components, and more (up to MAX_EM_STEPS) for smaller mixtures, which need them to converge
MIN_EM_STEPS, MAX_EM_STEPS = 8, 100


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
    calibration: dict | None = None  # how the weights were refitted (aepipe.model.calibration)
    kind: ClassVar[str] = "gaussian_mixture"
    draws: ClassVar[int] = 1  # which component

    @classmethod
    def fit(cls, codes: np.ndarray, options: ModelOptions) -> "GaussianMixturePrior":
        return cls.fit_em(codes, components=options.prior_components, seed=options.seed)

    @classmethod
    def fit_em(cls, codes: np.ndarray, *, components: int, seed: int = 0,
               iterations: int | None = None, tolerance: float = 1e-3
               ) -> "GaussianMixturePrior":
        """scikit-learn's EM, on one BLAS thread: its products are small, and BLAS threads
        spinning against other work made EM 30x slower on two busy cores. Fewer components
        when there are few codes (`_CODES_PER_PARAMETER`). EM stops after `iterations` steps
        (by default `EM_WORK` over the components, within `MIN_EM_STEPS` and `MAX_EM_STEPS`)
        or at scikit-learn's default tolerance, whichever comes first: with hundreds of
        components its likelihood keeps creeping up long after the rows it decodes to stop
        changing, and the weights are refitted afterwards anyway (`aepipe.model.calibration`)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture
        from threadpoolctl import threadpool_limits

        codes = np.asarray(codes, np.float64)
        components = max(1, min(components,
                                len(codes) // (_CODES_PER_PARAMETER * codes.shape[1] + 1)))
        if iterations is None:
            iterations = int(np.clip(EM_WORK // components, MIN_EM_STEPS, MAX_EM_STEPS))
        mixture = GaussianMixture(components, covariance_type="full",
                                  reg_covar=_REGULARISATION, max_iter=iterations,
                                  tol=tolerance, init_params="k-means++", random_state=seed)
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the log line says it
            mixture.fit(codes)
        _LOG.info("prior: %d-component Gaussian mixture, mean log-likelihood %.3f after %d EM "
                  "iterations%s", components, mixture.lower_bound_, mixture.n_iter_,
                  "" if mixture.converged_ else " (the most allowed)")
        return cls(mixture.weights_, mixture.means_, mixture.covariances_)

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
                "covariances": self.covariances.tolist(), "calibration": self.calibration}


PRIORS: dict[str, type[Prior]] = {GaussianMixturePrior.kind: GaussianMixturePrior}
