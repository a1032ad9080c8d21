"""Exact erasure when the remaining data is at hand: ``model.refine(X_remaining, y_remaining)``.

After erasures the model sits at ``θ̂``, near the minimizer ``θ₋S`` of the objective ``F``
over the samples it still holds, and it stores ``M'``, the Hessian of ``F`` at the fitted
``θ₀`` (downdated exactly). ``refine`` starts each label from the better of ``θ̂`` and ``θ₀``
and continues with the preconditioned (chord) Newton iteration

    θ ← θ + s·AA(−M'⁻¹∇F(θ)),

Anderson-mixed (``AA``), one gradient pass over the data per iteration (``2·L·n·d̃`` flops,
against ``L·n·d̃²`` for a fresh Hessian) and one solve with the stored blocks. A label's
step is taken only if it does not raise its objective; otherwise its scale ``s`` is halved
(doubled back on acceptance). It converges linearly with rate ``‖I − M'⁻¹∇²F(θ₋S)‖``,
small when ``θ₀`` is near ``θ₋S``; when the contraction is slow enough that a curvature
pass is cheaper than the iterations left, or steps keep being rejected, the Hessian is
rebuilt at the current point (a damped Newton step). It stops when the predicted distance
left is below ``tol·max(‖θ‖, 1)``. A last pass rebuilds the curvature and the fit residual
at the new point, so later requests start from an exact fit. Passes: one (membership check,
objective at θ̂ and θ₀) + one per iteration + one per rebuild + one. See ``doc/bounds.rst``.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from functools import partial

import numpy as np
import scipy.sparse as sp

from . import _bounds
from ._loss import LOSSES, design_gradient, raw_scores

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
    digests = _fingerprints(X, Ye) if fingerprints else None
    if theta.shape[0] != Ye.shape[1]:  # several points at once, stacked label-major
        Ye = np.tile(Ye, (1, theta.shape[0] // Ye.shape[1]))
    raw = raw_scores(X, theta)
    loss = LOSSES[loss_name]
    out = {
        "n": X.shape[0],
        "n_features": X.shape[1],
        "gradient": design_gradient(X, loss.gradient(raw, Ye), fit_intercept),
        "loss": loss.loss(raw, Ye).sum(axis=0),  # per label, for the step acceptance
    }
    if fingerprints:
        out["digests"] = digests
    return out


class _Mixing:
    """Anderson mixing (type II) of the fixed-point map ``x + f(x)``, one history per label.

    The chord iteration contracts linearly, by ``‖I − M'⁻¹∇²F‖``; mixing the last few
    iterates removes the slow directions at the cost of a few small least-squares problems.
    A label's history is dropped when its step is rejected (see :func:`refine`).
    """

    def __init__(self, n_labels, depth=5):
        self.depth = depth
        self.history = [([], []) for _ in range(n_labels)]

    def reset(self, labels=None):
        for label in range(len(self.history)) if labels is None else labels:
            self.history[label] = ([], [])

    def step(self, label, x, f):
        xs, fs = self.history[label]
        xs.append(x.copy())
        fs.append(f.copy())
        if len(xs) > self.depth + 1:
            del xs[0], fs[0]
        if len(xs) < 2:
            return f
        dX = np.stack([b - a for a, b in zip(xs, xs[1:])], axis=1)  # (d, j)
        dF = np.stack([b - a for a, b in zip(fs, fs[1:])], axis=1)
        coeffs = np.linalg.lstsq(dF, f, rcond=1e-10)[0]
        return f - (dX + dF) @ coeffs


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
        # So are the unweighted Gram of the bounds (downdated the same way): only the
        # curvature blocks and the residual depend on θ.
        return rebuild_curvature(
            estimator,
            source,
            fingerprints=fingerprints,
            _normal_equations_valid=True,
            _bound_gram=_bounds.gram_array(estimator.__dict__.get("_bound_gram")),
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
    # The first pass also evaluates the fitted θ₀ (where the stored curvature was taken):
    # a label starts from whichever of θ̂ and θ₀ has the lower objective on the remaining
    # data, so that an erasure step that overshot (near-separable data, a large request)
    # costs nothing here.
    theta_fit = getattr(estimator, "_theta_at_fit", None)
    candidates = theta if theta_fit is None else np.vstack([theta, theta_fit])
    first = _map_reduce(source, partial(kernel, theta=candidates, fingerprints=True))
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
    n_labels = theta.shape[0]
    u = np.finfo(np.float64).eps

    def objective_of(stats, theta):
        return stats["loss"] + 0.5 * np.einsum("ld,d,ld->l", theta, penalty, theta)

    objectives = objective_of(first, candidates).reshape(-1, n_labels)
    gradients = (first["gradient"] + candidates * penalty).reshape(-1, n_labels, theta.shape[1])
    gradient_start = float(np.linalg.norm(gradients[0]))
    best = np.argmin(objectives, axis=0)  # per label: 0 the erased θ̂, 1 the fitted θ₀
    labels = np.arange(n_labels)
    theta = candidates.reshape(-1, n_labels, theta.shape[1])[best, labels]
    gradient = gradients[best, labels]
    objective = objectives[best, labels]
    n_restarted = int(np.sum(best == 1))
    mixing = _Mixing(n_labels)
    # Globalization: a label's step is taken only if it does not increase its objective
    # (beyond the round-off of the sum); otherwise that label stays, its mixing history is
    # dropped and its next step is the plain preconditioned step, halved until it is
    # accepted. The plain step −M⁻¹∇F is a descent direction for any positive definite M,
    # so short enough ones decrease F: undamped Newton or mixing from far away can diverge
    # on near-separable data.
    scale = np.ones(n_labels)
    n_rejected = 0
    rejections = []  # per iteration: were any steps rejected
    # Passes × cost: a curvature pass costs about d̃/2 gradient passes in flops (at BLAS-3
    # speed, so about d̃/8 chord iterations in time until one is measured). Rebuild when the
    # chord iterations still needed at the observed contraction would take longer.
    max_rebuilds = 8
    rebuild_seconds = None  # measured at the first rebuild
    iteration_seconds = None  # of the last chord iteration: solve, mixing, gradient pass
    sizes = []  # the step sizes since the curvature was last (re)built
    n_iter, converged = 0, False
    while n_iter < max_iter:
        n_iter += 1
        tick = time.perf_counter()
        m = curvature.n_samples_
        if shared:
            f = -curvature.solve([gradient.T])[0].T / m
        else:
            f = -np.stack(curvature.solve(list(gradient))) / m
        size = float(np.linalg.norm(f))
        previous = sizes[-1] if sizes else np.inf
        # The distance left is about size·ρ/(1 − ρ) for a contraction by ρ per iteration
        # (the last step's ratio: conservative when the mixing is not monotone).
        rate = min(size / previous, 0.999) if np.isfinite(previous) else 0.5
        target = tol * max(float(np.linalg.norm(theta)), 1.0)
        if size * max(rate / (1 - rate), 1.0) <= target:
            converged = True
            break
        slow = False
        if not shared and rebuilt < max_rebuilds and sum(rejections[-3:]) >= 2:
            # Steps keep overshooting: the stored curvature is far from this point's.
            slow = True
        elif len(sizes) >= 2 and not shared and rebuilt < max_rebuilds:
            # Anderson mixing is not monotone, so one step's ratio says little about the
            # contraction: take it over the last (up to) three steps.
            window = min(3, len(sizes))
            trend = (size / sizes[-window]) ** (1.0 / window)
            remaining = np.log(target / size) / np.log(trend) if 0 < trend < 1 else np.inf
            rebuild_cost = rebuild_seconds or iteration_seconds * theta.shape[1] / 8
            slow = trend > 0.2 and remaining * iteration_seconds > rebuild_cost
        if slow:
            # The stored curvature contracts too slowly here (rate ‖I − M'⁻¹∇²F‖): a fresh
            # Hessian at θ (one curvature pass, L·n·d̃² flops) buys a (damped) Newton step.
            estimator.coef_, estimator.intercept_ = estimator._split_theta(theta)
            curvature_pass(estimator, source, fingerprints=False)
            rebuild_seconds = time.perf_counter() - tick
            curvature = estimator.curvature_
            passes += 1
            rebuilt += 1
            mixing.reset()
            sizes, rejections = [], []
            continue
        if size > previous:
            mixing.reset()  # not contracting: restart the mixing
        step = np.empty_like(f)
        for label in range(n_labels):
            if scale[label] < 1.0:
                step[label] = scale[label] * f[label]
            else:
                step[label] = mixing.step(label, theta[label], f[label])
        proposal = theta + step
        stats = _map_reduce(source, partial(kernel, theta=proposal, fingerprints=False))
        passes += 1
        proposed = objective_of(stats, proposal)
        allowance = 4 * (first["n"] + theta.shape[1]) * u * np.abs(objective)
        accepted = proposed <= objective + allowance
        theta = np.where(accepted[:, None], proposal, theta)
        gradient = np.where(accepted[:, None], stats["gradient"] + proposal * penalty, gradient)
        objective = np.where(accepted, proposed, objective)
        # A trust-region-like scale: halved on rejection, doubled back on acceptance.
        scale = np.where(accepted, np.minimum(2 * scale, 1.0), scale / 2)
        rejections.append(not accepted.all())
        if accepted.all():
            sizes.append(size)  # the contraction is measured over full steps only
        else:
            n_rejected += int(np.sum(~accepted))
            mixing.reset(np.flatnonzero(~accepted))
        iteration_seconds = time.perf_counter() - tick
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
        "n_rejected_steps": int(n_rejected),
        "n_labels_started_at_fit": n_restarted,
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
