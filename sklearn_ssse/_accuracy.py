"""The accuracy check of exact (ridge) steps against the downdated normal equations, with
iterative refinement and, failing that, a fresh factorization; and the tolerances."""

from __future__ import annotations

import numpy as np

from .curvature import CurvatureError
from .curvature._normal import residual_scale, solve_normal_equations

_UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2


class RidgeAccuracyMixin:
    """Check (and repair) an exact step before it is committed."""

    #: An exact step is accepted when its normal-equation residual is at most this many
    #: unit round-offs of ``‖M‖_F‖θ‖_F + ‖rhs‖_F`` times ``sqrt(d̃)``; a Cholesky refit
    #: of the same equations measures 0.01-0.1 of it (see doc/trust.rst). Above it the
    #: step is refined, and failing that the downdated matrix is refactored.
    _residual_tolerance = 0.25
    #: The same for the Woodbury solve's base-preconditioned residual (every model).
    _woodbury_tolerance = 1e3

    def _step_is_exact(self):
        """Whether the unit step is meant to be the exact refit (ridge, Hessian, leave-out,
        undamped): only then is its accuracy checked against the refit's. A step scaled by
        ``ε`` is ``ε`` times the checked unit step."""
        return self._shared_block and self.leave_out and self.damping == 0

    def _verified_solution(self, normal, theta, change, n_after):
        """Check ``theta`` against the downdated normal equations; repair or refuse.

        Returns the (possibly repaired) parameters, a refactored curvature when the
        downdated one had lost accuracy (else None) and the log fields of the check."""
        refactored = None
        gram, rhs = normal
        tolerance = self._residual_tolerance * np.sqrt(gram.shape[0]) * _UNIT_ROUNDOFF

        def relative_residual(t):
            scale = residual_scale(gram, rhs, t)
            residual = float(np.linalg.norm(gram @ t.T - rhs))
            return residual / scale if scale > 0 else residual, residual

        if np.all(np.isfinite(theta)):
            relative, residual = relative_residual(theta)
        else:
            relative = residual = np.inf
        repair = "none"
        # Mixed-precision iterative refinement: the residual in float64 from the stored
        # Gram, the correction from the downdated (possibly float32) factorization.
        for _ in range(3 if change is not None and np.isfinite(relative) else 0):
            if relative <= tolerance:
                break
            repair = "refinement"
            correction = self.curvature_.solve([gram @ theta.T - rhs], change=change)[0] / n_after
            candidate = theta - correction.T
            if not np.all(np.isfinite(candidate)):
                break
            candidate_relative, candidate_residual = relative_residual(candidate)
            if not candidate_relative < relative:
                break
            theta, relative, residual = candidate, candidate_relative, candidate_residual
        if relative > tolerance:
            # The downdated factorization has lost too much: factor the downdated matrix
            # afresh, as a refit would (it is the refit's matrix, without the data).
            repair = "refactorization"
            try:
                refactored = self._factor_curvature([gram.astype(self.curvature_dtype)], n_after)
                candidate = solve_normal_equations(gram, rhs)
            except CurvatureError as error:
                if change is None:
                    reason = (
                        "After this change the curvature would be singular or indefinite "
                        "(the remaining samples do not determine the parameters), and "
                        "refactoring the downdated matrix confirms it"
                    )
                else:
                    reason = (
                        f"The erasure step lost accuracy (normal-equation residual "
                        f"{relative:.3g} relative, tolerance {tolerance:.3g}) and the "
                        "downdated matrix cannot be refactored"
                    )
                raise CurvatureError(
                    f"{reason}: {error} Nothing was changed. Use damping > 0 or refit on the "
                    "remaining data with a stronger penalty."
                ) from error
            if not np.all(np.isfinite(candidate)):
                raise CurvatureError(
                    "The erasure step lost accuracy and the refactored normal equations give "
                    "a non-finite solution. Nothing was changed; refit on the remaining data "
                    "with a stronger penalty (alpha) or fewer features."
                )
            # This is the refit's own computation (a Cholesky solve of the refit's matrix),
            # so it is as accurate as a refit by construction, whatever its residual.
            relative, residual = relative_residual(candidate)
            theta = candidate
        return (
            theta,
            refactored,
            {"normal_equation_residual": residual, "accuracy_repair": repair},
        )
