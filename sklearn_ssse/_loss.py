"""Per-sample losses of generalized linear models, their gradients and curvatures.

For a linear model with raw prediction ``z = x̃ᵀθ`` (``x̃ = [x, 1]`` with an intercept), the
per-sample data loss ``ℓ(z, y)`` has gradient ``∇_θ ℓ = ℓ'(z, y)·x̃`` and Hessian
``∇²_θ ℓ = ℓ''(z)·x̃x̃ᵀ``. So every curvature block is a weighted Gram of the design matrix:
weights ``ℓ''`` for the Hessian, ``ℓ'²`` for the empirical Fisher. The data loss carries no
``C`` factor: scikit-learn's objective is ``C·Σ ℓ_i + ½‖w‖²``, equivalently
``Σ ℓ_i + (1/(2C))‖w‖²``, whose penalty Hessian is ``1/C`` on the coefficients.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, log_expit

__all__ = ["LOSSES", "LogisticLoss", "SquaredLoss", "augment", "curvature_factors"]


class LogisticLoss:
    """Binary cross-entropy on a logit, ``ℓ(z, y) = log(1 + e^z) − y·z`` for ``y ∈ {0, 1}``."""

    name = "log_loss"

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

    @staticmethod
    def loss(raw, y):
        return 0.5 * (raw - y) ** 2

    @staticmethod
    def gradient(raw, y):
        return raw - y

    @staticmethod
    def hessian(raw, y):
        return np.ones_like(raw)


LOSSES = {"log_loss": LogisticLoss, "squared_error": SquaredLoss}


def augment(X, fit_intercept):
    """Return ``X̃ = [X, 1]`` (or ``X``), keeping sparse input sparse (CSR)."""
    if not fit_intercept:
        return X
    ones = np.ones((X.shape[0], 1), dtype=X.dtype)
    if sp.issparse(X):
        return sp.hstack([X, sp.csr_matrix(ones)], format="csr")
    return np.hstack([X, ones])


def curvature_factors(loss, raw, y, curvature):
    """Per-sample scalars ``a_i`` such that the curvature term of sample ``i`` is ``a_i² x̃ x̃ᵀ``.

    ``sqrt(ℓ'')`` for the Hessian and ``ℓ'`` for the empirical Fisher (its sign is
    irrelevant in ``a_i² x̃x̃ᵀ``)."""
    if curvature == "hessian":
        return np.sqrt(loss.hessian(raw, y))
    return loss.gradient(raw, y)
