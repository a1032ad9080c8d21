"""Tweedie deviance losses of the GLM regressors (Poisson, Gamma, Tweedie; log or identity
link)."""

from __future__ import annotations

import numpy as np


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
