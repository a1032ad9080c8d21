"""The design matrix side of a loss: ``X̃ = [X, 1]`` and the per-sample curvature factors."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def augment(X, fit_intercept):
    """Return ``X̃ = [X, 1]`` (or ``X``), keeping sparse input sparse (CSR)."""
    if not fit_intercept:
        return X
    ones = np.ones((X.shape[0], 1), dtype=X.dtype)
    if sp.issparse(X):
        return sp.hstack([X, sp.csr_matrix(ones)], format="csr")
    return np.hstack([X, ones])


def raw_scores(X, theta):
    """``X̃θᵀ`` (shape ``(n, L)``) for ``θ`` of shape ``(L, d̃)``, the intercept last when
    ``d̃ = p + 1``, without forming ``X̃ = [X, 1]`` (a copy of the data)."""
    p = X.shape[1]
    raw = np.asarray(X @ theta[:, :p].T)
    return raw + theta[:, p] if theta.shape[1] > p else raw


def design_gradient(X, weights, fit_intercept):
    """``(X̃ᵀW)ᵀ`` (shape ``(L, d̃)``): per output, ``Σ_i w_il·x̃_i``, without forming ``X̃``."""
    gradient = np.asarray(X.T @ weights).T
    if fit_intercept:
        gradient = np.hstack([gradient, np.asarray(weights).sum(axis=0)[:, None]])
    return gradient


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
