"""Binary logistic loss (cross-entropy on a logit)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit


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
