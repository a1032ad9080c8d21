"""Softmax cross-entropy (multinomial logistic regression), a coupled loss."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax


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
