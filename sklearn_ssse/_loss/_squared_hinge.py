"""Squared hinge loss (liblinear's L2-loss linear SVM)."""

from __future__ import annotations

import numpy as np


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
