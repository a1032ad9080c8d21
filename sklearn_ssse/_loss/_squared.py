"""Half squared error (ridge)."""

from __future__ import annotations

import numpy as np


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
