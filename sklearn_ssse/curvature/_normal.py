"""Normal equations ``(X̃ᵀX̃ + P)θᵀ = X̃ᵀY − b`` of ridge regression: solve and audit.

A ridge model keeps the penalized Gram ``M = X̃ᵀX̃ + P`` and the right-hand side
``X̃ᵀY − b`` (``b`` the certified mode's noise, else 0), downdated exactly with each
removal request. The residual ``r = Mθᵀ − rhs`` of any parameters ``θ`` is then computable
without the training data, and bounds their distance to the exact solution ``θ*``:

    ‖θ − θ*‖ = ‖M⁻¹ r‖ ≤ ‖M⁻¹‖₂ · ‖r‖ = ‖r‖ / λ_min(M).

:func:`normal_equation_residual` evaluates both, with allowances for the round-off of the
evaluation itself, so that the bound holds for the stored ``M`` and right-hand side.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import linalg

from ._block_inverse import CurvatureError

__all__ = ["NormalEquationResidual", "normal_equation_residual", "solve_normal_equations"]

_U = np.finfo(np.float64).eps / 2  # unit round-off of float64


def solve_normal_equations(gram, rhs):
    """``θ`` (one row per output) from ``(X̃ᵀX̃ + P)θᵀ = rhs`` by Cholesky.

    Parameters
    ----------
    gram : ndarray of shape (d, d)
        Symmetric positive definite.
    rhs : ndarray of shape (d,) or (d, L)

    Returns
    -------
    ndarray of shape (L, d)
    """
    try:
        factor = linalg.cho_factor(gram, lower=False, check_finite=False)
    except linalg.LinAlgError as error:
        raise CurvatureError(
            "X̃ᵀX̃ + alpha·I is singular: use alpha > 0 or remove collinear features."
        ) from error
    return np.atleast_2d(linalg.cho_solve(factor, rhs, check_finite=False).T)


class NormalEquationResidual(NamedTuple):
    """Result of :func:`normal_equation_residual`.

    Attributes
    ----------
    residual : float
        ``‖Mθᵀ − rhs‖_F`` as computed.
    residual_bound : float
        An upper bound on the exact residual: ``residual`` plus the round-off of its
        evaluation, ``(d + 2)·u·(‖M‖_F‖θ‖_F + ‖rhs‖_F)``.
    inverse_norm : float
        An upper bound on ``‖M⁻¹‖₂`` (``inf`` if ``M`` is not numerically positive
        definite).
    distance_bound : float
        ``inverse_norm · residual_bound``, a guaranteed bound on ``‖θ − θ*‖_F`` where
        ``θ*`` solves the normal equations with the stored ``M`` and ``rhs`` exactly.
    """

    residual: float
    residual_bound: float
    inverse_norm: float
    distance_bound: float


def residual_scale(gram, rhs, theta):
    """``‖M‖_F‖θ‖_F + ‖rhs‖_F``: the magnitudes a residual is measured against."""
    return float(np.linalg.norm(gram) * np.linalg.norm(theta) + np.linalg.norm(rhs))


def normal_equation_residual(gram, rhs, theta, *, inverse_norm=None):
    """Residual of the normal equations at ``theta`` and a bound on the distance to their
    exact solution, without the training data.

    Parameters
    ----------
    gram : ndarray of shape (d, d)
        ``M = X̃ᵀX̃ + P`` over the samples in the model (float64).
    rhs : ndarray of shape (d,) or (d, L)
        ``X̃ᵀY − b`` over the same samples.
    theta : ndarray of shape (d,) or (L, d)
        Parameters, coefficients then intercept, one row per output.
    inverse_norm : float, default=None
        A known upper bound on ``‖M⁻¹‖₂`` (for instance ``1/min(P)`` when every coordinate
        is penalized). ``None`` computes one from the smallest eigenvalue of ``M``
        (``O(d³)``), lowered by the eigensolver's error bound ``d·u·‖M‖_F``.

    Returns
    -------
    NormalEquationResidual
        ``(residual, residual_bound, inverse_norm, distance_bound)``.

    Notes
    -----
    The stored ``M`` and ``rhs`` are sums accumulated in float64 (and downdated by
    subtraction); the bound is exact for those stored sums. Their own accumulation error,
    about ``n·u`` relative, is that of any refit from the same data.
    """
    gram = np.asarray(gram, dtype=np.float64)
    d = gram.shape[0]
    rhs = np.asarray(rhs, dtype=np.float64).reshape(d, -1)
    theta = np.asarray(theta, dtype=np.float64).reshape(-1, d)
    if theta.shape[0] != rhs.shape[1]:
        raise ValueError(f"theta has {theta.shape[0]} rows but rhs has {rhs.shape[1]} columns.")
    residual = float(np.linalg.norm(gram @ theta.T - rhs))
    bound = residual + (d + 2) * _U * residual_scale(gram, rhs, theta)
    if inverse_norm is None:
        smallest = float(linalg.eigvalsh(gram, subset_by_index=[0, 0], check_finite=False)[0])
        lower = smallest - d * _U * float(np.linalg.norm(gram))
        inverse_norm = 1.0 / lower if lower > 0 else np.inf
    inverse_norm = float(inverse_norm)
    distance = inverse_norm * bound if np.isfinite(inverse_norm) else np.inf
    return NormalEquationResidual(residual, bound, inverse_norm, float(distance))
