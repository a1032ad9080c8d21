"""Exact erasure when the remaining data is at hand: ``model.refine(X_remaining, y_remaining)``.

After erasures the model sits at ``θ̂``, near the minimizer ``θ₋S`` of the objective ``F``
over the samples it still holds, and it stores ``M'``, the Hessian of ``F`` at the fitted
``θ₀`` (downdated exactly). ``refine`` continues with the preconditioned (chord) Newton
iteration

    θ ← θ − M'⁻¹∇F(θ),

one gradient pass over the data per iteration (``2·L·n·d̃`` flops, against ``L·n·d̃²`` for a
fresh Hessian) and one solve with the stored blocks. It converges linearly with rate
``‖I − M'⁻¹∇²F(θ₋S)‖``, small when ``θ₀`` is near ``θ₋S``; should it stall (rate above
1/2) the Hessian is rebuilt at the current point (one curvature pass, a true Newton step).
It stops when the step is below ``tol·‖θ‖``. A last pass rebuilds the curvature, the
unweighted Gram and the fit residual at the new point, so later requests start from an
exact fit. Passes: one (membership check and first gradient) + one per iteration + one.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from functools import partial

import numpy as np
import scipy.sparse as sp

from ._loss import LOSSES, augment

__all__ = ["refine"]


def _gradient_kernel(X, Y, *, theta, fit_intercept, target, loss_name, fingerprints):
    from .curvature._streaming import _check_chunk, _encode, _fingerprints

    X, Y = _check_chunk(X, Y)
    if X.shape[1] + int(fit_intercept) != theta.shape[1]:
        raise ValueError(
            f"X_remaining has {X.shape[1]} features, the model "
            f"{theta.shape[1] - int(fit_intercept)}."
        )
    Ye = _encode(Y, target)
    Xt = augment(X, fit_intercept)
    raw = np.asarray(Xt @ theta.T)
    weights = LOSSES[loss_name].gradient(raw, Ye)
    out = {"n": X.shape[0], "n_features": X.shape[1], "gradient": np.asarray(Xt.T @ weights).T}
    if fingerprints:
        out["digests"] = _fingerprints(X, Ye)
    return out


def _anderson(history_x, history_f, x, f, depth=5):
    """The step of Anderson mixing (type II) of the fixed-point map ``x + f(x)``, per label.

    The chord iteration contracts linearly, by ``‖I − M'⁻¹∇²F‖``; mixing the last few
    iterates removes the slow directions at the cost of a few small least-squares problems.
    """
    history_x.append(x.copy())
    history_f.append(f.copy())
    if len(history_x) > depth + 1:
        del history_x[0], history_f[0]
    if len(history_x) < 2:
        return f
    dX = np.stack([b - a for a, b in zip(history_x, history_x[1:])], axis=2)  # (L, d, j)
    dF = np.stack([b - a for a, b in zip(history_f, history_f[1:])], axis=2)
    step = f.copy()
    for label in range(f.shape[0]):
        coeffs = np.linalg.lstsq(dF[label], f[label], rcond=1e-10)[0]
        step[label] = f[label] - (dX[label] + dF[label]) @ coeffs
    return step


def _as_source(X, y):
    from .curvature._streaming import iter_chunks

    if y is None:
        return X  # a chunk source
    if not (sp.issparse(X) or hasattr(X, "shape")):
        X = np.asarray(X, dtype=np.float64)
    return iter_chunks(X, np.asarray(y.toarray() if hasattr(y, "toarray") else y))


def refine(estimator, X_remaining, y_remaining=None, *, tol=1e-10, max_iter=100):
    """See :meth:`UnlearnableLinearMixin.refine`."""
    from ._out_of_core import _target_of, rebuild_curvature
    from .curvature._streaming import _check_reiterable, _map_reduce

    def curvature_pass(estimator, source, *, fingerprints):
        # Ridge's stored normal equations are those of the samples still in the model
        # (downdated exactly with each request), so they stay valid.
        return rebuild_curvature(
            estimator, source, fingerprints=fingerprints, _normal_equations_valid=True
        )

    stored = estimator.__dict__.get("fingerprints_")
    if stored is None:
        raise ValueError(
            "refine checks that the remaining data are the samples still in the model, which "
            "needs the fingerprints this model was fitted without (fingerprints=False)."
        )
    if getattr(stored, "weights", None) is not None and np.any(stored.weights != 1.0):
        raise NotImplementedError(
            "refine does not support models fitted with sample weights or class weights yet; "
            "refit on the remaining data with their weights."
        )
    if getattr(estimator, "_coupled", False):
        raise NotImplementedError(
            "refine does not support the multinomial model yet; refit on the remaining data "
            "(or use multi_class='ovr')."
        )
    if getattr(estimator, "certified", False):
        raise ValueError(
            "refine is not available in certified mode: its certificate needs a perturbed "
            "fit from scratch. Refit the model on the remaining data."
        )
    if not (isinstance(tol, (int, float, np.number)) and tol > 0):
        raise ValueError(f"tol must be a number > 0, got {tol!r}.")
    estimator._check_fit_settings()
    start = time.perf_counter()
    source = _as_source(X_remaining, y_remaining)
    _check_reiterable(source, "refine")
    kernel = partial(
        _gradient_kernel,
        fit_intercept=estimator.fit_intercept,
        target=_target_of(estimator),
        loss_name=estimator._loss.name,
    )
    theta = estimator._get_theta()
    penalty = estimator._penalty_vector()
    first = _map_reduce(source, partial(kernel, theta=theta, fingerprints=True))
    if first["n_features"] != estimator.n_features_in_:
        raise ValueError(
            f"X_remaining has {first['n_features']} features, the model {estimator.n_features_in_}."
        )
    digests = first["digests"]
    if len(digests) != estimator.n_samples_ or len(estimator.fingerprints_.missing(digests)):
        raise ValueError(
            f"The remaining data ({len(digests)} samples) do not match the {estimator.n_samples_} "
            "samples still in the model (same features and targets, as a multiset): pass "
            "exactly the training samples that have not been erased."
        )
    # Kept across the curvature rebuilds, which reset a fit's erasure state.
    kept = {
        name: estimator.__dict__[name]
        for name in ("erasure_log_", "n_forgotten_", "_label_counts", "fingerprints_")
        if name in estimator.__dict__
    }
    theta_erased = theta
    curvature, shared = estimator.curvature_, estimator._shared_block
    passes, n_iter, rebuilt = 1, 0, 0
    gradient = first["gradient"] + theta * penalty
    gradient_start = float(np.linalg.norm(gradient))
    history_x, history_f = [], []  # Anderson mixing, per label
    # Passes × cost: a curvature pass costs about d̃/2 gradient passes in flops (at BLAS-3
    # speed, so about d̃/8 in time until one is measured). Rebuild when the chord iterations
    # still needed at the observed contraction rate would take longer than a rebuild.
    max_rebuilds = 8
    gradient_seconds = time.perf_counter() - start
    rebuild_seconds = gradient_seconds * theta.shape[1] / 8
    previous = np.inf
    n_iter, converged = 0, False
    while n_iter < max_iter:
        n_iter += 1
        m = curvature.n_samples_
        if shared:
            f = -curvature.solve([gradient.T])[0].T / m
        else:
            f = -np.stack(curvature.solve(list(gradient))) / m
        size = float(np.linalg.norm(f))
        # The distance left is about size·ρ/(1 − ρ) for a contraction by ρ per iteration.
        rate = min(size / previous, 0.999) if np.isfinite(previous) else 0.5
        if size * max(rate / (1 - rate), 1.0) <= tol * max(float(np.linalg.norm(theta)), 1.0):
            converged = True
            break
        target = tol * max(float(np.linalg.norm(theta)), 1.0)
        remaining = np.log(target / size) / np.log(rate) if 0 < rate < 1 else np.inf
        measured = np.isfinite(previous)  # a rate needs two steps with the same curvature
        slow = measured and rate > 0.2 and remaining * gradient_seconds > rebuild_seconds
        if slow and not shared and rebuilt < max_rebuilds:
            # The stored curvature contracts too slowly here (rate ‖I − M'⁻¹∇²F‖): a fresh
            # Hessian at θ (one curvature pass, L·n·d̃² flops) buys a true Newton step.
            estimator.coef_, estimator.intercept_ = estimator._split_theta(theta)
            tick = time.perf_counter()
            curvature_pass(estimator, source, fingerprints=False)
            rebuild_seconds = time.perf_counter() - tick
            curvature = estimator.curvature_
            passes += 1
            rebuilt += 1
            history_x, history_f = [], []
            previous = np.inf
            continue
        if size > previous:
            history_x, history_f = [], []  # not contracting: restart the mixing
        previous = size
        theta = theta + _anderson(history_x, history_f, theta, f)
        tick = time.perf_counter()
        stats = _map_reduce(source, partial(kernel, theta=theta, fingerprints=False))
        gradient_seconds = time.perf_counter() - tick
        passes += 1
        gradient = stats["gradient"] + theta * penalty
    if not converged:
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        warnings.warn(
            f"refine did not reach tol={tol:g} in {max_iter} iterations (last step {size:.3g}).",
            ConvergenceWarning,
            stacklevel=3,
        )
    moved = float(np.linalg.norm(theta - theta_erased))
    solution_seconds = time.perf_counter() - start
    estimator.coef_, estimator.intercept_ = estimator._split_theta(theta)
    # The curvature, Gram and fit residual at the new point (its fitted state from now on).
    curvature_pass(estimator, source, fingerprints=False)
    passes += 1
    estimator.__dict__.update(kept)
    entry = {
        "index": len(kept["erasure_log_"]) + 1,
        "time": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "action": "refine",
        "n_samples": 0,
        "fingerprints": [],
        "n_iter": int(n_iter),
        "n_passes": int(passes),
        "n_curvature_rebuilds": int(rebuilt),
        "gradient_norm_before": gradient_start,
        "gradient_norm_after": float(np.linalg.norm(estimator._objective_gradient)),
        "step_norm": moved,
        "seconds": time.perf_counter() - start,
        "seconds_to_solution": solution_seconds,  # before the curvature refresh
        "n_forgotten_total": int(kept["n_forgotten_"]),
        "n_samples_remaining": int(estimator.n_samples_),
    }
    estimator.erasure_log_ = [*kept["erasure_log_"], entry]
    return estimator
