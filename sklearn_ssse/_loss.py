"""Per-sample losses of generalized linear models: the loss protocol.

For a linear model with raw prediction ``z = x̃ᵀθ`` (``x̃ = [x, 1]`` with an intercept), the
per-sample data loss ``ℓ(z, y)`` has gradient ``∇_θ ℓ = ℓ'(z, y)·x̃`` and Hessian
``∇²_θ ℓ = ℓ''(z, y)·x̃x̃ᵀ``. So every curvature block of an *uncoupled* loss (one raw output
per block) is a weighted Gram of the design matrix: weights ``ℓ''`` for the Hessian, ``ℓ'²``
for the empirical Fisher. The data loss carries no ``C`` factor: scikit-learn's objective is
``C·Σ w_i ℓ_i + ½‖w‖²``, equivalently ``Σ w_i ℓ_i + (1/(2C))‖w‖²``, whose penalty Hessian is
``1/C`` on the coefficients. A sample weight ``w_i`` multiplies the sample's loss, gradient
and curvature term.

The protocol (:class:`Loss`) an estimator names:

``name``
    The loss's name (scikit-learn's spelling).
``coupled``
    ``False``: the ``L`` raw outputs are independent problems, one curvature block each.
    ``True`` (softmax): the outputs of a sample share one block; the per-sample Hessian in
    the raw outputs is the matrix :meth:`~MultinomialLoss.hessian_matrix`, of which
    :meth:`~MultinomialLoss.hessian_factor` is a square root.
``loss(raw, y)``, ``gradient(raw, y)``, ``hessian(raw, y)``
    Per-sample loss, ``∂ℓ/∂z`` and ``∂²ℓ/∂z²`` (uncoupled losses), elementwise.
``third_derivative_bound``
    ``sup |∂³ℓ/∂z³|`` (the Lipschitz constant of ``ℓ''``), or ``None`` when the loss has no
    finite one (its curvature is unbounded in ``z``, or not differentiable).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, log_expit, logsumexp, softmax

__all__ = [
    "LOSSES",
    "Loss",
    "LogisticLoss",
    "MultinomialLoss",
    "SquaredHingeLoss",
    "SquaredLoss",
    "TweedieLoss",
    "augment",
    "curvature_factors",
]


@runtime_checkable
class Loss(Protocol):
    """What the estimators ask of a per-sample loss (see the module documentation)."""

    name: str
    coupled: bool
    third_derivative_bound: float | None

    def loss(self, raw, y): ...

    def gradient(self, raw, y): ...


class LogisticLoss:
    """Binary cross-entropy on a logit, ``ℓ(z, y) = log(1 + e^z) − y·z`` for ``y ∈ {0, 1}``."""

    name = "log_loss"
    coupled = False
    #: max |p(1−p)(1−2p)| over p, at p = 1/2 ± 1/(2√3).
    third_derivative_bound = 1.0 / (6.0 * np.sqrt(3.0))

    @staticmethod
    def loss(raw, y):
        return -(y * log_expit(raw) + (1 - y) * log_expit(-raw))

    @staticmethod
    def gradient(raw, y):
        return expit(raw) - y

    @staticmethod
    def hessian(raw, y):
        p = expit(raw)
        return p * (1 - p)


class SquaredLoss:
    """Half squared error, ``ℓ(z, y) = ½(z − y)²``: ridge's ``‖y − Xw‖² + α‖w‖²`` halved."""

    name = "squared_error"
    coupled = False
    third_derivative_bound = 0.0

    @staticmethod
    def loss(raw, y):
        return 0.5 * (raw - y) ** 2

    @staticmethod
    def gradient(raw, y):
        return raw - y

    @staticmethod
    def hessian(raw, y):
        return np.ones_like(raw)


class MultinomialLoss:
    """Softmax cross-entropy over ``K`` classes, ``ℓ(z, y) = logsumexp(z) − yᵀz`` (``y`` one-hot).

    ``raw`` and ``y`` have shape ``(n, K)``. The gradient in ``z`` is ``p − y`` with
    ``p = softmax(z)`` and the Hessian ``diag(p) − ppᵀ``: coupled across the classes, of rank
    ``K − 1`` (its null vector is ``1``, the shift invariance of softmax). The Hessian in
    ``θ = [θ_1, …, θ_K]`` is ``(diag(p) − ppᵀ) ⊗ x̃x̃ᵀ``.
    """

    name = "multinomial_log_loss"
    coupled = True
    # A finite bound exists (the derivatives of softmax are bounded) but is not used here.
    third_derivative_bound = None

    @staticmethod
    def loss(raw, y):
        return logsumexp(raw, axis=1) - np.sum(y * raw, axis=1)

    @staticmethod
    def gradient(raw, y):
        return softmax(raw, axis=1) - y

    @staticmethod
    def hessian_matrix(raw, y=None):
        """``diag(p_i) − p_i p_iᵀ`` per sample, shape ``(n, K, K)``."""
        p = softmax(raw, axis=1)
        return np.einsum("ik,kl->ikl", p, np.eye(p.shape[1])) - p[:, :, None] * p[:, None, :]

    @staticmethod
    def hessian_factor(raw, y=None):
        """``F_i`` with ``F_i F_iᵀ = diag(p_i) − p_i p_iᵀ``, shape ``(n, K, K)``.

        ``F_i = diag(√p_i) − p_i √p_iᵀ``: column ``j`` is ``√p_ij (e_j − p_i)``, so
        ``F_i F_iᵀ = diag(p) − 2ppᵀ + p(Σ_j p_j)pᵀ = diag(p) − ppᵀ`` exactly, every column sums
        to 0 (it is orthogonal to the null vector ``1``) and the rank is ``K − 1``."""
        p = softmax(raw, axis=1)
        root = np.sqrt(p)
        eye = np.eye(p.shape[1])
        return root[:, None, :] * (eye[None, :, :] - p[:, :, None])


class SquaredHingeLoss:
    """liblinear's L2-loss SVM, ``ℓ(z, y) = max(0, 1 − t·z)²`` with ``t = 2y − 1``, ``y ∈ {0, 1}``.

    ``ℓ' = −2t·max(0, 1 − tz)``; ``ℓ`` is piecewise quadratic and its generalized second
    derivative is ``ℓ'' = 2`` on the active set ``1 − tz > 0`` and 0 elsewhere (at the kink
    ``1 − tz = 0`` the sample is taken as inactive, as ``ℓ'`` vanishes there). A Newton step with
    this curvature is exact as long as no sample crosses the margin.
    """

    name = "squared_hinge"
    coupled = False
    third_derivative_bound = None  # ℓ'' jumps at the margin

    @staticmethod
    def loss(raw, y):
        return np.maximum(0.0, 1.0 - (2 * y - 1) * raw) ** 2

    @staticmethod
    def gradient(raw, y):
        t = 2 * y - 1
        return -2.0 * t * np.maximum(0.0, 1.0 - t * raw)

    @staticmethod
    def hessian(raw, y):
        return 2.0 * (1.0 - (2 * y - 1) * raw > 0)


class TweedieLoss:
    """Half the Tweedie unit deviance of power ``p`` in the linear predictor ``z``.

    ``ℓ(z, y) = dev_p(y, μ)/2`` with ``μ = exp(z)`` (``link="log"``) or ``μ = z``
    (``link="identity"``); scikit-learn's ``PoissonRegressor`` is ``p = 1``,
    ``GammaRegressor`` ``p = 2``. Up to terms constant in ``z``,

        ℓ = μ^{2−p}/(2−p) − y·μ^{1−p}/(1−p)      (p ∉ {1, 2})
        ℓ = μ − y·log μ  (p = 1),   ℓ = log μ + y/μ  (p = 2).

    With the log link ``dμ/dz = μ``, so

        ℓ'  = μ^{2−p} − y·μ^{1−p},
        ℓ'' = (2−p)·μ^{2−p} − (1−p)·y·μ^{1−p}

    for every ``p`` (Poisson: ``ℓ'' = μ``; Gamma: ``ℓ'' = y/μ``). With the identity link
    ``ℓ' = (μ − y)·μ^{−p}`` and ``ℓ'' = μ^{−p−1}·((1−p)·μ + p·y)``. These are the true
    second derivatives (not the expected, Fisher, ones): for ``p > 2`` under the log link,
    or ``p > 0`` under the identity link, ``ℓ''`` is negative for some ``y`` far from ``μ``,
    and a curvature that is not positive definite is refused by the estimators.
    """

    coupled = False
    third_derivative_bound = None

    def __init__(self, power=0.0, link="log"):
        self.power = float(power)
        self.link = link
        self.name = f"tweedie_{self.power:g}_{link}"

    def _mu(self, raw):
        return np.exp(raw) if self.link == "log" else raw

    def loss(self, raw, y):
        p, mu = self.power, self._mu(raw)
        if p == 1:
            return mu - y * np.log(mu)
        if p == 2:
            return np.log(mu) + y / mu
        return mu ** (2 - p) / (2 - p) - y * mu ** (1 - p) / (1 - p)

    def gradient(self, raw, y):
        p, mu = self.power, self._mu(raw)
        if self.link == "log":
            return mu ** (2 - p) - y * mu ** (1 - p)
        return (mu - y) * mu ** (-p)

    def hessian(self, raw, y):
        p, mu = self.power, self._mu(raw)
        if self.link == "log":
            return (2 - p) * mu ** (2 - p) - (1 - p) * y * mu ** (1 - p)
        return mu ** (-p - 1) * ((1 - p) * mu + p * y)


LOSSES = {
    "log_loss": LogisticLoss,
    "squared_error": SquaredLoss,
    "multinomial_log_loss": MultinomialLoss,
    "squared_hinge": SquaredHingeLoss,
}


def augment(X, fit_intercept):
    """Return ``X̃ = [X, 1]`` (or ``X``), keeping sparse input sparse (CSR)."""
    if not fit_intercept:
        return X
    ones = np.ones((X.shape[0], 1), dtype=X.dtype)
    if sp.issparse(X):
        return sp.hstack([X, sp.csr_matrix(ones)], format="csr")
    return np.hstack([X, ones])


def curvature_factors(loss, raw, y, curvature, sample_weight=None):
    """Per-sample scalars ``a_i`` such that the curvature term of sample ``i`` is ``a_i² x̃ x̃ᵀ``.

    ``sqrt(w_i ℓ'')`` for the Hessian and ``sqrt(w_i)·ℓ'`` for the empirical Fisher (its sign
    is irrelevant in ``a_i² x̃x̃ᵀ``); ``w_i`` the sample weight (1 if ``None``). Uncoupled
    losses only."""
    if curvature == "hessian":
        factors = np.sqrt(loss.hessian(raw, y))
    else:
        factors = loss.gradient(raw, y)
    if sample_weight is None:
        return factors
    root = np.sqrt(np.asarray(sample_weight, dtype=np.float64))
    return factors * (root[:, None] if np.ndim(factors) == 2 else root)
