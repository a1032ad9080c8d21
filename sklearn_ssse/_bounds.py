"""The fit's residual in the erasure step, and a data-free bound on every request.

The derivation is in ``doc/bounds.rst``; in short, per label (the labels' objectives are
separate), with ``F(θ) = Σ_{i∈D'} ℓ_i(θ) + ½θᵀPθ`` the objective on the samples ``D'``
that remain after a request:

* The model carries ``r ≈ ∇F_D(θ)``, the gradient of the objective of the samples it holds
  at its current parameters: measured exactly at the end of the fit, then propagated
  without data as ``r ← r − Δ + M'v`` (``Δ = Σ_{i∈S} ∇ℓ_i(θ)``, ``v`` the applied step,
  ``M'`` the stored Hessian of ``F`` at the fitted ``θ₀``). The step is the Newton step of
  ``F`` from where the fit stopped, ``v = M'⁻¹(Δ − r)``, so a loose solver tolerance does
  not leak into it. The propagation is exact for ridge and first-order for logistic
  regression; ``ε`` (``_gradient_error``) bounds what it misses (the Taylor remainder
  with the third-derivative bound ``γ`` and the stored unweighted Gram ``G``, shared with
  :mod:`sklearn_ssse._certified`, plus round-off).
* ``‖∇F(θ̂)‖ ≤ ‖r‖ + ε`` and, within ``‖θ − θ̂‖ ≤ t``, ``∇²F ⪰ (1 − γRκ(‖θ̂ − θ₀‖ + t))·M'``
  with ``κ = λ_max(M'⁻¹G)``; the smallest ``t`` with ``√Λ·‖∇F(θ̂)‖_{M'⁻¹} ≤ t·(1 −
  γRκ(‖θ̂ − θ₀‖ + t))`` (``Λ = ‖M'⁻¹‖₂``) bounds ``‖θ̂ − θ₋S‖``; none exists (``inf``) when
  the quadratic has no root.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy import linalg
from scipy.special import softmax

from ._certified import RemovalBudgetError, loss_gamma, taylor_remainder_from_forms
from ._loss import augment
from .curvature._build import blas_gemm_update
from .curvature._streaming import row_norms

__all__ = ["RefitRequired"]

_U64 = np.finfo(np.float64).eps

#: Blocks up to this size get exact eigenvalues (a dense inverse and ``eigvalsh`` per
#: request); larger ones the norm bound ``‖M'⁻¹‖₂ ≤ ‖M₀⁻¹‖·λ_max(X)`` (no pass over the
#: blocks, see ``_norm_spectra``).
EXACT_MAX_SIZE = 400

_STATE = ("_objective_gradient", "_gradient_error", "_bound_gram", "_bound_radius")
# Optional: the fit's penalized Gram factor and the training set's maximum leverage.
_OPTIONAL = ("_bound_fit_factor", "_bound_leverage")


class RefitRequired(RemovalBudgetError):
    """The request's guaranteed distance to the exact refit exceeds ``max_distance``.

    Nothing was changed; refit the model on the remaining data (or :meth:`refine` it).
    """


def _hessian_bound(loss):
    """Upper bound of ``ℓ''``: ``1/4`` for the logistic loss, ``1`` for the squared loss."""
    return 0.25 if loss.name == "log_loss" else 1.0


def store_fit_state(estimator, gradient, gram, radius, error):
    """Install the residual, the unweighted Gram and ``R`` measured at the end of a fit."""
    estimator._objective_gradient = np.asarray(gradient, dtype=np.float64)
    estimator._gradient_error = np.asarray(error, dtype=np.float64)
    estimator._bound_gram = np.asarray(gram, dtype=np.float64)
    estimator._bound_radius = float(radius)


def clear_fit_state(estimator):
    for attribute in _STATE + _OPTIONAL:
        estimator.__dict__.pop(attribute, None)


def fit_state_from_data(estimator, X, Y, sample_weight=None):
    """Measure ``r₀ = Σ_D w_i ∇ℓ_i(θ*) + Pθ*`` (plus the certified mode's noise), ``G`` and
    ``R``.

    Costs one ``X̃ᵀ·`` product and one unweighted Gram (``1/L`` of the curvature build)."""
    from .curvature import weighted_gram

    theta = estimator._get_theta()
    penalty = estimator._penalty_vector()
    Xt = augment(X, estimator.fit_intercept)
    raw = np.asarray(Xt @ theta.T)
    weights = estimator._loss.gradient(raw, Y)
    if sample_weight is not None:
        weights = weights * np.asarray(sample_weight, dtype=np.float64)[:, None]
    gradient = np.asarray(Xt.T @ weights).T + theta * penalty
    noise = estimator.__dict__.get("_objective_noise")
    if noise is not None:
        gradient = gradient + noise
    gram = weighted_gram(X, None, fit_intercept=estimator.fit_intercept)
    row_norms = _row_norms(Xt)
    radius = float(row_norms.max())
    # Round-off of the summation: (n + d̃ + 256)·u·Σ|terms|.
    magnitude = np.abs(weights).T @ row_norms + np.abs(theta * penalty).sum(axis=1)
    error = (X.shape[0] + theta.shape[1] + 256) * _U64 * magnitude
    store_fit_state(estimator, gradient, gram, radius, error)
    if theta.shape[1] <= EXACT_MAX_SIZE:
        # h₀ = max_i x̃_iᵀA₀⁻¹x̃_i (A₀ = G + P + jitter): |x̃_iᵀu| ≤ √h·‖u‖_A, sharper than
        # R‖u‖. One triangular solve with X̃ᵀ (the cost of the Gram).
        A0 = gram + np.diag(penalty + 1e-12 * max(np.trace(gram) / len(gram), 1.0))
        try:
            factor = np.linalg.cholesky(A0)
        except np.linalg.LinAlgError:
            return
        dense = Xt.toarray() if sp.issparse(Xt) else Xt
        leverage = np.einsum(
            "ij,ij->j", *(2 * [linalg.solve_triangular(factor, dense.T, lower=True)])
        )
        estimator._bound_fit_factor = factor
        estimator._bound_leverage = float(min(1.0, leverage.max() * (1 + 1e-8)))


_row_norms = row_norms


def has_fit_state(estimator):
    return all(name in estimator.__dict__ for name in _STATE)


def residual_for_step(estimator):
    """The residual the step corrects for, (L, d̃), or None: certified mode (its
    certificate accounts the fit's residual itself), a model saved without it, and the
    empirical Fisher curvature, whose step is the SSSE paper's Eq. 4 as published (a scaled
    approximation, not a Newton step to correct)."""
    if (
        getattr(estimator, "certified", False)
        or estimator.curvature != "hessian"
        or not has_fit_state(estimator)
    ):
        return None
    return estimator._objective_gradient


# ---------------------------------------------------------------------------- spectra
def _dense_spectra(curvature, change, grams=()):
    """Exact ``Λ = λ_max(M⁻¹)``, ``λ_min(M⁻¹)`` and ``λ_max(M⁻¹A)`` for each ``A`` in
    ``grams``, per block (a dense inverse, a Cholesky factor and ``eigvalsh``)."""
    m = curvature.n_samples_ if change is None else change.n_samples
    inverses = curvature.solve([np.eye(blk.size) for blk in curvature.blocks_], change=change)
    lam, lam_min, kappas = [], [], []
    for Minv in inverses:
        Minv = (Minv + Minv.T) / (2 * m)
        values = np.linalg.eigvalsh(Minv)
        lam.append(values[-1])
        lam_min.append(values[0])
        if len(grams):
            C = np.linalg.cholesky(Minv)
            kappas.append([np.linalg.eigvalsh(C.T @ A @ C)[-1] for A in grams])
    kappas = np.asarray(kappas).T * (1 + 1e-8) if len(grams) else None
    return np.asarray(lam) * (1 + 1e-8), np.asarray(lam_min) * (1 - 1e-8), kappas


def _norm_spectra(curvature, change, grams=()):
    """Rigorous, nearly free ``Λ >= λ_max(M'⁻¹)`` per block for blocks too large for
    ``eigvalsh``.

    ``M'⁻¹ = T·X·Tᵀ`` (the stored factor, ``M₀⁻¹ = T·Tᵀ``, and the pending Woodbury term
    ``X = (I + Z·diag(s)·Zᵀ)⁻¹``), so ``Λ = ‖M₀⁻¹‖·λ_max(X)``: a norm stored with the base
    and the eigenvalues of a ``K×K`` matrix, no pass over the blocks
    (:meth:`BlockFisherInverse.inverse_norm_bound`). Loose by the ratio of
    ``min(‖M₀⁻¹‖₁, tr M₀⁻¹)`` to ``λ_max(M₀⁻¹)``."""
    m = curvature.n_samples_ if change is None else change.n_samples
    bounds, rounding = curvature.inverse_norm_bound(change=change)
    lam = (bounds + rounding) / m
    return lam, np.zeros(len(lam)), None


# ---------------------------------------------------------------------------- per request
def bound_unavailable_reason(estimator):
    if not has_fit_state(estimator):
        return "the model carries no fit residual (saved or fitted without it)"
    if estimator.curvature != "hessian":
        return "the stored curvature is not the Hessian (curvature='empirical_fisher')"
    if estimator.damping != 0:
        return "the stored curvature is damped (damping > 0)"
    if getattr(estimator, "_coupled", False):
        return f"not derived for {type(estimator).__name__}'s curvature layout yet"
    stored = estimator.__dict__.get("fingerprints_")
    if getattr(stored, "weights", None) is not None and np.any(stored.weights != 1.0):
        return "not derived for models fitted with sample or class weights yet"
    return None


def plan_bounds(estimator, plan, step, eps, *, exact=False):
    """The residual state after applying ``step`` (L, d̃) for ``plan``, and the bounds.

    ``exact``: spend a dense inverse and eigendecompositions per block (blocks of at most
    ``EXACT_MAX_SIZE`` parameters) on a tighter bound; otherwise the nearly free norm
    bound, which is as rigorous. ``forget`` asks for the exact one when ``max_distance`` is
    given, so that an erasure without a limit costs what it did before bounds existed.

    Returns ``(state, fields)``: new attribute values and the erasure-log fields."""
    if not has_fit_state(estimator):
        reason = bound_unavailable_reason(estimator)
        return {}, _fields(np.inf, np.inf, None, reason)
    loss = estimator._loss
    Xt, Y = plan.Xt, plan.Y
    theta_now = estimator._get_theta()
    theta_fit = estimator._theta_at_fit
    m_old, k = estimator.n_samples_, plan.n_removed
    m_new = m_old - k
    r_old = estimator._objective_gradient
    Delta = plan.gradients.T  # (L, d̃)
    rhs = Delta - (plan.residual if plan.residual is not None else 0.0)
    # A new object (copy on write), which keeps a copy of X̃_S until it folds, as the
    # curvature's pending term does; Xᵀ_S X_S is symmetric to round-off, which the bounds'
    # quadratic forms do not notice.
    gram = _downdated_gram(estimator._bound_gram, Xt)
    # M'v from the identity the solve satisfies (M' is never formed): K·v = c·eps·rhs.
    scale = 1.0 if estimator.leave_out else m_old / m_new
    Mv = eps * scale * rhs
    weights = getattr(plan, "weights", None)
    if weights is not None and np.all(weights == 1.0):
        weights = None
    if not estimator.leave_out and estimator.curvature == "hessian":
        # The step was solved with the curvature of D ⊃ S: M' = M_D − Σ_S w_i∇²ℓ_i(θ₀).
        raw_fit = Xt @ theta_fit.T
        moved = Xt @ step.T  # (k, L): x̃_iᵀv per output
        if getattr(estimator, "_coupled", False):
            # (diag(p) − ppᵀ)(V x̃_i) per removed sample, p the fitted softmax
            p = softmax(raw_fit, axis=1)
            curved = p * moved - p * np.sum(p * moved, axis=1, keepdims=True)
        else:
            curved = moved * loss.hessian(raw_fit, Y)
        if weights is not None:
            curved = curved * weights[:, None]
        Mv = Mv - curved.T @ Xt
    r_new = r_old - Delta + Mv
    normal = getattr(plan, "normal", None)
    if normal is not None and not getattr(estimator, "certified", False):
        # Ridge keeps its normal equations: the residual at the new point is computed, not
        # propagated (exact to round-off, whatever repair the accuracy check applied).
        normal_gram, normal_rhs = normal
        r_new = (normal_gram @ (theta_now + step).T - normal_rhs).T
    reason = bound_unavailable_reason(estimator)
    if reason is not None:
        # The model's own linearization: the stored curvature stands in for the Hessian.
        state = {"_objective_gradient": r_new, "_bound_gram": gram}
        return state, _fields(np.inf, np.inf, None, reason)

    gamma = loss_gamma(loss)
    radius = estimator._bound_radius
    size = theta_now.shape[1]
    shared = estimator._shared_block
    n_labels = theta_now.shape[0]
    exact = exact and size <= EXACT_MAX_SIZE
    spectra = _dense_spectra if exact else _norm_spectra
    penalty = estimator._penalty_vector()
    # A' = G' + P is formed only for the exact spectra; the quadratic forms below add P's
    # diagonal term instead of reading another d̃×d̃ matrix.
    penalized = gram_array(gram) + np.diag(penalty) if gamma > 0 and exact else None
    leverage = _current_leverage(estimator, penalized) if penalized is not None else 1.0
    grams = (gram_array(gram), penalized) if penalized is not None else ()
    # The curvature after the request: the stored one with the prepared change, or the
    # fresh factorization that ridge's accuracy check made of the downdated matrix.
    refactored = getattr(plan, "refactored", None)
    curvature, change = (
        (refactored, None) if refactored is not None else (estimator.curvature_, plan.change)
    )
    lam, lam_min, kappas = spectra(curvature, change, grams)
    if shared:
        lam, lam_min = np.broadcast_to(lam, (n_labels,)), np.broadcast_to(lam_min, (n_labels,))
    penalty_max = penalty.max()
    # ‖M'‖₂ ≤ max ℓ''·‖G‖₂ + max P (‖G‖₂ ≤ ‖G‖_F), or exactly 1/λ_min(M'⁻¹).
    gram_norm = gram.base_norm if isinstance(gram, DowndatedGram) else np.linalg.norm(gram)
    M_norm = _hessian_bound(loss) * gram_norm + penalty_max
    M_norm = np.minimum(M_norm, np.where(lam_min > 0, 1.0 / np.maximum(lam_min, 1e-300), np.inf))
    u_curv = np.finfo(np.dtype(estimator.curvature_dtype)).eps
    rhs_norm = np.linalg.norm(eps * scale * rhs, axis=1)
    # Round-off of the solve identity K·v = c·eps·rhs and of the updates.
    rounding = 64 * size * u_curv * M_norm * lam * rhs_norm + 256 * _U64 * (
        np.linalg.norm(Delta, axis=1)
        + np.linalg.norm(r_old, axis=1)
        + M_norm * np.linalg.norm(step, axis=1)
    )
    carried = estimator._gradient_error + rounding  # 2-norm bound of what r misses, so far

    # M'⁻¹ r. With the leave-S-out curvature and the residual corrected, the step solved
    # M'v = eps·rhs and r_new = (eps − 1)·rhs, so M'⁻¹r_new = (eps − 1)/eps·v without
    # another pass over the blocks (a whole read of the curvature for a small request);
    # otherwise one solve with the changed curvature, all labels in one pass.
    m = curvature.n_samples_ if change is None else change.n_samples
    proportional = (
        estimator.leave_out
        and plan.residual is not None
        and normal is None
        and refactored is None
        and eps != 0
    )
    if proportional:
        solved = (eps - 1.0) / eps * step
    elif shared:
        solved = curvature.solve([r_new.T], change=change)[0].T / m
    else:
        solved = np.stack(curvature.solve(list(r_new), change=change)) / m
    r_dual = np.sqrt(np.maximum(np.einsum("ld,ld->l", r_new, solved), 0.0))  # ‖r‖_{M'⁻¹}
    if gamma == 0:
        # Quadratic objective: θ̂ − θ₋S = M'⁻¹∇F(θ̂) exactly.
        error = carried
        distance = np.linalg.norm(solved, axis=1) + lam * error
    else:
        drift_old = theta_now - theta_fit
        drift_new = drift_old + step
        # ‖X̃u‖² = uᵀG'u for the drifts and the step: one pass over G' for all labels.
        carried_form = _carried_drift_form(estimator, drift_old)
        forms = _drift_forms(gram, drift_old, step, carried=carried_form, removed=Xt)
        # max_i |x̃_iᵀu| ≤ min(R‖u‖, ‖X̃u‖) for the remaining samples (one term of ‖X̃u‖²).
        reach_old = _reach(drift_old, forms[0], penalty, radius, leverage)
        reach_new = _reach(drift_new, forms[1], penalty, radius, leverage)
        # The logistic ℓ'' is log-1-Lipschitz (|ℓ'''| ≤ ℓ''), so along the step
        # |ℓ''(z) − ℓ''(z₀)| ≤ ℓ''(z₀)·(e^ζ − 1) and the Taylor remainder of the gradient
        # has ‖·‖_{M'⁻¹} ≤ (e^ζ − 1)·‖v‖_{M'}.
        with np.errstate(over="ignore"):  # inf: no bound exists (reported as such)
            omega = np.expm1(np.maximum(reach_old, reach_new))
        step_M = np.sqrt(np.maximum(np.einsum("ld,ld->l", step, Mv), 0.0))
        remainder_dual = omega * step_M
        g_M = r_dual + np.sqrt(lam) * carried + remainder_dual
        # The same remainder in the 2-norm, for the residual carried to later requests:
        # the Guo et al. form (shared with the certificate) or the dual one converted.
        guo = taylor_remainder_from_forms(forms[0], forms[2], radius, gamma)
        error = carried + np.minimum(guo, remainder_dual * np.sqrt(M_norm))
        # max_i |x̃_iᵀu| over ‖u‖_{M'} ≤ 1: R√Λ, √λ_max(M'⁻¹G') or √(h·λ_max(M'⁻¹A')).
        reach = radius * np.sqrt(lam)
        if kappas is not None:
            reach = np.minimum(reach, np.sqrt(np.minimum(kappas[0], leverage * kappas[1])))
        distance = _self_concordant_radius(g_M, reach_new, reach) * np.sqrt(lam)
    gradient_bound = np.linalg.norm(r_new, axis=1) + error
    distance_bound = float(np.sqrt(np.sum(np.square(distance))))
    note = None
    if not np.isfinite(distance_bound):
        note = (
            "no bound: the local strong-convexity condition has no solution (the erased "
            "parameters are too far from the fitted ones for the curvature stored there)"
        )
    gradient_total = float(np.sqrt(np.sum(np.square(gradient_bound))))
    fields = _fields(distance_bound, gradient_total, "eigh" if exact else "norm", note)
    state = {"_objective_gradient": r_new, "_gradient_error": error, "_bound_gram": gram}
    if gamma != 0 and isinstance(gram, DowndatedGram):
        gram.drift_form = _next_drift_form(forms[1], theta_now, step, theta_fit, gram_norm)
    return state, fields


def _fields(distance, gradient, method, note):
    """The erasure-log fields of a request (the same keys whether or not a bound exists;
    ``None`` where none exists, so that the record stays strict JSON)."""
    return {
        "distance_bound": float(distance) if np.isfinite(distance) else None,
        "gradient_residual_bound": float(gradient) if np.isfinite(gradient) else None,
        "bound_method": method,
        "bound_note": note,
    }


class DowndatedGram:
    """``G = G₀ − Σ_j X̃_jᵀX̃_j``: a stored Gram and the rows removed from it since.

    A request's bounds need ``UG`` for a few rows ``U`` and a bound of ``‖G‖₂``, never ``G``
    itself; forming ``G`` anew per request would copy a ``d̃ × d̃`` matrix each time (the
    model's arrays are never written in place). The removed rows (copies of the request's)
    are kept until ``max_rows`` of them, then folded into a new ``G₀``, as the curvature's
    pending term keeps them until it folds (``compact`` folds both). Immutable apart from
    ``drift_form``, set once before the object is committed: ``downdated`` returns a new
    object."""

    max_rows = 256

    def __init__(self, base, rows=(), base_norm=None):
        self.base = base
        self.rows = tuple(rows)
        # The bound of δᵀGδ for the drift the model was left at with this Gram (set once by
        # the request that made it, before it is committed; see ``_carried_drift_form``).
        self.drift_form = None
        # ‖G‖_F ≤ ‖G₀‖_F: both positive semi-definite and G ⪯ G₀.
        self.base_norm = float(np.linalg.norm(base)) if base_norm is None else base_norm

    @property
    def n_rows(self):
        return sum(R.shape[0] for R in self.rows)

    def downdated(self, Xt):
        # A copy: the rows are kept, so they must not be the caller's array.
        Xt = Xt.toarray() if sp.issparse(Xt) else np.array(Xt, dtype=np.float64, copy=True)
        if self.n_rows + Xt.shape[0] > self.max_rows:
            return DowndatedGram(_fold_rows(self.base, self.rows + (Xt,)))
        return DowndatedGram(self.base, self.rows + (Xt,), self.base_norm)

    def left_product(self, U):
        """``U·G`` for rows ``U`` (``(r, d̃)``): one pass over ``G₀``."""
        product = U @ self.base
        for R in self.rows:
            product -= (U @ R.T) @ R
        return product

    def toarray(self):
        return _fold_rows(self.base, self.rows) if self.rows else self.base


def gram_array(gram):
    """The Gram as an array, whichever way it is stored (``None`` stays ``None``)."""
    return gram.toarray() if isinstance(gram, DowndatedGram) else gram


def _fold_rows(gram, rows):
    """``G − Σ R_jᵀR_j`` as a new array: one copy and one in-place ``?gemm`` (no ``d̃×d̃``
    temporary for the product)."""
    stacked = np.vstack(rows) if len(rows) > 1 else np.asarray(rows[0], dtype=np.float64)
    return blas_gemm_update(np.array(gram, dtype=np.float64, order="F"), stacked.T, stacked, -1.0)


def _downdated_gram(gram, Xt):
    """``G − X̃_SᵀX̃_S`` (a :class:`DowndatedGram` that keeps the rows until it folds)."""
    if not isinstance(gram, DowndatedGram):
        gram = DowndatedGram(np.asarray(gram, dtype=np.float64))
    return gram.downdated(Xt)


def _drift_forms(gram, drift, step, *, carried=None, removed=None):
    """``uᵀGu`` for ``u`` = the drift ``δ``, ``δ + v`` and the step ``v`` (rows per label),
    shape ``(3, L)`` (upper bounds, to round-off), from one ``?gemm`` of ``[δ; v]`` with
    ``G``: ``(δ+v)ᵀG(δ+v) = δᵀGδ + 2δᵀGv + vᵀGv``.

    ``carried``: an upper bound of ``δᵀG₀δ`` for the Gram before this request's rows
    ``removed`` (``G = G₀ − X̃_SᵀX̃_S``), kept from the previous request; then
    ``δᵀGδ = δᵀG₀δ − ‖X̃_Sδ‖²`` and the ``?gemm`` needs the step's rows only (half the
    flops of the one pass over ``G``)."""
    n_labels = drift.shape[0]
    eps = np.finfo(np.float64).eps
    stacked = step if carried is not None else np.vstack([drift, step])
    products = gram.left_product(stacked) if isinstance(gram, DowndatedGram) else stacked @ gram
    G_step = products[-n_labels:]
    if carried is None:
        old = np.einsum("ld,ld->l", products[:n_labels], drift)
    else:
        rows = removed.toarray() if sp.issparse(removed) else np.asarray(removed)
        leaving = np.sum(np.square(rows @ drift.T), axis=0)  # ‖X̃_Sδ‖² per label
        old = carried - leaving + 4 * (drift.shape[1] + rows.shape[0]) * eps * leaving
    cross = np.einsum("ld,ld->l", G_step, drift)
    moved = np.einsum("ld,ld->l", G_step, step)
    # The expansion cancels when δ + v is small: add its round-off (an upper bound is
    # what the reach needs).
    expanded = old + 2 * cross + moved
    expanded += 8 * drift.shape[1] * np.finfo(np.float64).eps * (old + 2 * np.abs(cross) + moved)
    return np.maximum(np.stack([old, expanded, moved]), 0.0)


def _carried_drift_form(estimator, drift):
    """The previous request's bound of ``δᵀGδ``, kept with the Gram it made, if it is for
    exactly this drift (the model's arrays are never changed in place: the same Gram object
    and an equal drift mean the same form); otherwise ``None`` (after fit, refine, compact
    or a hand-edited model there is no such Gram or the drift differs: the form is then
    computed)."""
    gram = estimator.__dict__.get("_bound_gram")
    carried = getattr(gram, "drift_form", None)
    if carried is None or not np.array_equal(carried["drift"], drift):
        return None
    return carried["form"]


def _next_drift_form(expanded, theta_now, step, theta_fit, gram_norm):
    """The bound of ``δ'ᵀGδ'`` to carry to the next request, for the drift it will compute,
    ``δ' = (θ + v) − θ₀``: ``expanded`` is the form of ``δ + v``, which differs from ``δ'`` by
    the round-off of the two subtractions (at most ``2u(|θ + v| + |θ₀|)`` per entry)."""
    drift_next = (theta_now + step) - theta_fit
    eps = np.finfo(np.float64).eps
    error = 4 * eps * (np.linalg.norm(theta_now + step, axis=1) + np.linalg.norm(theta_fit, axis=1))
    norm = np.linalg.norm(drift_next, axis=1)
    form = expanded + gram_norm * (2 * norm * error + error**2)
    return {"form": form, "drift": drift_next}


def _reach(u, data_form, penalty, radius, leverage):
    """``min(R‖u‖, ‖X̃u‖, √h·‖u‖_A)`` per row of ``u``: a bound of ``max_i |x̃_iᵀu|`` over
    the remaining samples (``|x̃_iᵀu|`` is one term of ``‖X̃u‖²``; ``h`` bounds their
    leverage ``x̃_iᵀA⁻¹x̃_i`` for ``A = G + P``). ``data_form`` is ``uᵀGu`` per row."""
    euclid = radius * np.linalg.norm(u, axis=1)
    data = np.sqrt(data_form)
    weighted = np.sqrt(leverage * (data_form + np.einsum("ld,d,ld->l", u, penalty, u)))
    return np.minimum(np.minimum(euclid, data), weighted)


def _current_leverage(estimator, penalized):
    """Bound of ``max_i x̃_iᵀA'⁻¹x̃_i`` over the remaining samples, ``A' = G' + P``.

    ``A' ⪰ (1 − ρ)·A₀`` with ``1 − ρ = λ_min(A₀⁻¹A')`` (``A₀`` the fit's), so the
    leverage is at most ``h₀/(1 − ρ)``; and always at most 1 (``x̃_ix̃_iᵀ ⪯ A'``)."""
    factor = estimator.__dict__.get("_bound_fit_factor")
    if factor is None:
        return 1.0
    half = linalg.solve_triangular(factor, penalized, lower=True)
    scaled = linalg.solve_triangular(factor, half.T, lower=True)
    shrink = np.linalg.eigvalsh((scaled + scaled.T) / 2)[0] * (1 - 1e-8)
    if not shrink > 0:
        return 1.0
    return float(min(1.0, estimator._bound_leverage / shrink))


def _self_concordant_radius(g, zeta, c):
    """Smallest ``τ`` with ``e^{−ζ}(1 − e^{−cτ})/c ≥ g`` (``inf`` if none): beyond it the
    directional derivative of ``F`` along every ray from ``θ̂`` is positive."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Far from the fit e^ζ overflows: then there is no radius (inf), not a warning.
        x = c * g * np.exp(zeta)
        tau = -np.log1p(-np.minimum(x, 1.0)) / c
    return np.where(x < 1, tau, np.inf)


# ---------------------------------------------------------------------------- streaming fits
def store_fit_state_from_stats(estimator, total, gram):
    theta = estimator._get_theta()
    penalty_term = theta * estimator._penalty_vector()
    gradient = total["fit_gradient"] + penalty_term
    magnitude = total["fit_magnitude"] + np.abs(penalty_term).sum(axis=1)
    error = (total["n"] + theta.shape[1] + 256) * _U64 * magnitude
    store_fit_state(estimator, gradient, np.array(gram, dtype=np.float64), total["rowmax"], error)


def store_ridge_fit_state(estimator, gram, rhs, radius, n):
    """Ridge's one-pass fit: ``r₀ = (G + P)θᵀ − X̃ᵀY`` from the sums it already has."""
    theta = estimator._get_theta()
    penalty = estimator._penalty_vector()
    gradient = (gram @ theta.T).T + theta * penalty - np.asarray(rhs).T
    magnitude = np.abs(gram) @ np.abs(theta.T) + np.abs(np.asarray(rhs))
    error = (n + theta.shape[1] + 256) * _U64 * magnitude.sum(axis=0)
    store_fit_state(estimator, gradient, gram, radius, error)
