"""Certified removal (Guo, Goldstein, Hannun & van der Maaten, ICML 2020) for the linear models.

Objective perturbation
----------------------
Guo et al. train on ``L_b(θ; D) = Σ_{i∈D} ℓ_i(θ) + (λn/2)‖θ‖² + bᵀθ`` with a secret
``b ~ N(0, σ²I)``. The package's objective is already a *sum* of losses plus a fixed
penalty, ``Σ_i ℓ_i(θ) + ½·θᵀPθ`` (logistic: ``P = 1/C``; ridge: ``ℓ = ½r²``, ``P = α``), so
the mapping is ``λn = 1/C`` (or ``α``) and the linear term enters unchanged:

    L_b(θ; D) = Σ_{i∈D} ℓ_i(θ) + ½·θᵀPθ + bᵀθ.

Unlike Guo et al.'s ``λn``, the package's penalty does not scale with ``n``, so removing
samples removes only their loss terms. For one-vs-rest / multi-label logistic regression
(and multi-output ridge), every label has its own ``θ_l`` and ``b_l``; the labels'
objectives add up and ``θ`` is their concatenation.

The intercept must be penalized. The certificate rests on ``b ↦ argmin L_b`` being a
bijection (``b = −∇_θ Σℓ_i − Pθ``): with an unpenalized intercept, a linear term larger
than the number of positive (or negative) samples leaves the logistic objective without
a minimizer, and the density argument breaks. So in certified mode ``P`` is ``1/C`` (or
``α``) on every coordinate, the intercept included (``fit_intercept=False`` avoids the
question). Center the features, or rely on the penalty being small compared with ``n``.

Gradient residual after a removal
---------------------------------
Let ``θ_t`` be the current parameters, ``θ_0`` those of the fit, ``D_{t+1}`` the samples
that remain after removing ``S``, ``Δ = Σ_{i∈S} ∇ℓ_i(θ_t)`` and ``v`` the applied step.
``r_t = ∇L_b(θ_t; D_t)`` is the residual carried so far (``r_0`` is measured at the end of
the fit, where the data are at hand). With ``a_i = x̃_iᵀv``, ``M`` the stored Hessian of
``L_b`` over ``D_{t+1}`` evaluated at ``θ_0`` (Hessians do not depend on ``b``), Taylor's
theorem with integral remainder gives, exactly,

    ∇L_b(θ_t + v; D_{t+1}) = r_t + (Mv − Δ)
                           + Σ_{i∈D_{t+1}} ∫₀¹ (ℓ''(z_i(θ_t) + s·a_i) − ℓ''(z_i(θ_0))) ds · a_i x̃_i.

If ``ℓ''`` is ``γ``-Lipschitz in ``z`` (logistic: ``γ = max|ℓ'''| = 1/(6√3) ≈ 0.0962``,
below the ``1/4`` used by Guo et al.; squared loss: ``γ = 0``), the integrand is at most
``γ(|x̃_iᵀδ| + s|a_i|)`` with ``δ = θ_t − θ_0``. With ``R = max_i ‖x̃_i‖`` over the training
set (it can only shrink as samples leave), ``G = Σ_{i∈D_{t+1}} x̃_i x̃_iᵀ`` and
Cauchy–Schwarz, the last sum has norm at most

    γ·R·(‖X̃δ‖·‖X̃v‖ + ½‖X̃v‖²),     ‖X̃u‖ = sqrt(uᵀGu),

the data-dependent form of Guo et al.'s Corollary 1 (their ``γ‖X‖‖H⁻¹Δ‖‖XH⁻¹Δ‖`` with
``‖x_i‖ ≤ 1``). The ``‖X̃δ‖`` term accounts for the curvature being kept at ``θ_0`` rather
than re-evaluated at ``θ_t`` (a model that keeps no data cannot re-evaluate it); it is zero
for the first removal, as in Guo et al. The term ``‖Mv − Δ‖`` is zero for an exact Newton
step (``curvature="hessian"``, ``leave_out=True``, ``damping=0``, ``eps=1``) and is
computed, not assumed, so that other settings, float32 curvature and round-off are
charged honestly. Hence

    ‖r_{t+1}‖ ≤ ‖r_t‖ + β_{t+1},   β = sqrt(Σ_l β_l²),
    β_l = ‖M_l v_l − Δ_l‖ + γ·R·(‖X̃δ_l‖·‖X̃v_l‖ + ½‖X̃v_l‖²) + rounding,

and the bounds add up over sequential removals (Guo et al., Sec. 4). Their worst-case
Theorem 1, ``‖∇L‖ ≤ 4γC_ℓ²/(λ²(n−1))`` for one removal with ``‖x_i‖ ≤ 1`` and
``C_ℓ``-Lipschitz ``ℓ'``, is much looser and is not used for the accounting.

Budget
------
Guo et al.'s Theorem 3 reduces the certificate to a Gaussian mechanism: if
``b ~ N(0, σ²I)`` and the removed model's gradient residual is at most ``Δ``, the density
ratio of the released parameters is that of ``N(0, σ²I)`` against the same shifted by a
vector of norm at most ``Δ``. Their calibration ``σ = c·Δ/ε``, ``c = sqrt(2·log(1.5/δ))``
(:func:`budget_constant`) is the classical one, valid only for ``ε ≤ 1``: at ``ε = 20``
and ``δ = 1e-4`` its ``Δ = σε/c`` has a true ``δ`` of about ``1e-2``. The package uses the
exact privacy profile of the Gaussian mechanism instead (Balle & Wang, "Improving the
Gaussian mechanism for differential privacy", ICML 2018, Theorem 8): a shift of norm
``Δ`` is ``(ε, δ)``-indistinguishable exactly for

    δ(ε; Δ, σ) ≥ Φ(Δ/(2σ) − εσ/Δ) − e^ε·Φ(−Δ/(2σ) − εσ/Δ),

for every ``ε > 0`` (:func:`gaussian_delta`). The right side increases with ``Δ``, so the
budget is the largest ``Δ`` at which it is at most the claimed ``δ``, found by a root
finder (:func:`certified_budget`). The cumulative bound may grow up to it; after that the
model refuses further removals (:class:`RemovalBudgetError`) and must be refit.

Noise
-----
The noise ``b`` must be secret: whoever knows ``b`` and the remaining data can replay the
fit and tell whether an erased sample was there. It is drawn from operating-system entropy
(:class:`numpy.random.SeedSequence` without a seed) at every fit, so a refit draws fresh
noise; ``random_state`` does not seed it. A reproducible draw (``random_state``) is only
used with the explicit ``reproducible_noise=True``, which warns: such a model is for tests
and demonstrations, not a certified release.

The noise ``b`` is part of the model's private state: the certificate covers releasing
``coef_`` and ``intercept_``; an object that also carries ``b`` and the curvature (a
pickle of the whole estimator) is not a certified release.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
from scipy import linalg, optimize
from scipy.special import expit, log_ndtr, ndtr
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._fingerprint import row_fingerprints
from ._loss import augment
from ._validation import _check_removed_weights
from .curvature import CurvatureError, weighted_gram

__all__ = ["RemovalBudgetError", "budget_constant", "certified_budget", "gaussian_delta"]

#: Lipschitz constant of ℓ''(z) = p(1−p) for the logistic loss: max |p(1−p)(1−2p)|.
LOGISTIC_GAMMA = 1.0 / (6.0 * np.sqrt(3.0))
_UNIT_ROUNDOFF = np.finfo(np.float64).eps


class RemovalBudgetError(RuntimeError):
    """A certified model cannot erase more samples without exceeding its (ε, δ) budget.

    Nothing was changed; refit the model on the remaining data to restore the budget.
    """


def budget_constant(delta):
    """Return ``c = sqrt(2·log(1.5/δ))`` of Guo et al.'s Theorem 3.

    The classical calibration, valid for ``ε ≤ 1`` only; the models use
    :func:`certified_budget`, exact for every ``ε``."""
    return float(np.sqrt(2.0 * np.log(1.5 / delta)))


def gaussian_delta(epsilon, sensitivity, sigma):
    """Exact ``δ`` of the Gaussian mechanism at ``ε`` (Balle & Wang, ICML 2018, Thm. 8).

    ``Φ(Δ/(2σ) − εσ/Δ) − e^ε·Φ(−Δ/(2σ) − εσ/Δ)`` for a shift of L2 norm ``Δ`` of
    ``N(0, σ²I)`` noise; the second term is evaluated in log space so that ``e^ε`` does
    not overflow.

    Parameters
    ----------
    epsilon : float
    sensitivity : float
        ``Δ > 0``.
    sigma : float

    Returns
    -------
    float
    """
    epsilon, sensitivity, sigma = float(epsilon), float(sensitivity), float(sigma)
    if sensitivity <= 0:
        return 0.0
    a = sensitivity / (2.0 * sigma)
    b = epsilon * sigma / sensitivity
    return float(max(ndtr(a - b) - np.exp(epsilon + log_ndtr(-a - b)), 0.0))


def certified_budget(sigma, epsilon, delta):
    """The largest residual ``Δ`` with ``gaussian_delta(ε, Δ, σ) ≤ δ``.

    Parameters
    ----------
    sigma : float
        Standard deviation of the objective's noise.
    epsilon, delta : float
        The certificate's ``(ε, δ)``.

    Returns
    -------
    float
    """
    sigma, epsilon, delta = float(sigma), float(epsilon), float(delta)

    def excess(log_ratio):  # δ at Δ = σ·e^t, minus the target; increasing in t
        return gaussian_delta(epsilon, sigma * np.exp(log_ratio), sigma) - delta

    low, high = -60.0, 60.0
    if not excess(low) < 0 < excess(high):  # pragma: no cover - δ in (0, 1) brackets it
        raise ValueError(f"Cannot calibrate the Gaussian mechanism for ε={epsilon}, δ={delta}.")
    root = optimize.brentq(excess, low, high, xtol=1e-14, rtol=1e-14, maxiter=500)
    budget = sigma * np.exp(root)
    # The root finder may land just above the root: step down until δ is met.
    while gaussian_delta(epsilon, budget, sigma) > delta:
        budget *= 1.0 - 1e-12
    return float(budget)


def loss_gamma(loss):
    """Lipschitz constant of ``ℓ''`` in the raw prediction."""
    return LOGISTIC_GAMMA if loss.name == "log_loss" else 0.0


def _rounding(*terms):
    # Generous allowance for the round-off of one update and of evaluating a residual:
    # a few hundred unit round-offs of the magnitudes involved.
    return 256 * _UNIT_ROUNDOFF * float(sum(terms))


def taylor_remainder(gram, radius, gamma, drift, step):
    """Bound on the Taylor remainder of one step, ``γ·R·(‖X̃δ‖·‖X̃v‖ + ½‖X̃v‖²)``.

    ``gram`` is ``G = Σ x̃x̃ᵀ`` over the samples that remain, ``radius`` ``R = max‖x̃_i‖``,
    ``drift`` ``δ = θ_t − θ₀`` (curvature kept at ``θ₀``) and ``step`` ``v``: the norm of
    ``∇F(θ_t + v) − ∇F(θ_t) − M(θ₀)v``. Shared by the certificate and the per-request
    distance bound of :mod:`sklearn_ssse._bounds`."""
    if gamma == 0:
        return 0.0
    return float(
        taylor_remainder_from_forms(
            float(drift @ gram @ drift), float(step @ gram @ step), radius, gamma
        )
    )


def taylor_remainder_from_forms(drift_form, step_form, radius, gamma):
    """:func:`taylor_remainder` from ``δᵀGδ`` and ``vᵀGv`` (scalars or arrays, per label)."""
    Xv = np.sqrt(np.maximum(step_form, 0.0))
    Xdrift = np.sqrt(np.maximum(drift_form, 0.0))
    return gamma * radius * (Xdrift * Xv + 0.5 * Xv**2)


def max_row_norm(Xt):
    """``R = max_i ‖x̃_i‖`` of a dense or sparse (augmented) design matrix."""
    row_norms = np.sqrt(
        np.asarray(Xt.multiply(Xt).sum(axis=1)).ravel()
        if hasattr(Xt, "multiply") and not isinstance(Xt, np.ndarray)
        else np.einsum("ij,ij->i", Xt, Xt)
    )
    return float(row_norms.max())


def perturbed_gradient(loss, X, Y, theta, penalty, noise, fit_intercept):
    """``∇L_b(θ; D)`` per label, shape (L, d̃), computed from data."""
    Xt = augment(X, fit_intercept)
    raw = np.asarray(Xt @ theta.T)
    weights = loss.gradient(raw, Y)
    return np.asarray(Xt.T @ weights).T + theta * penalty + noise


def fit_logistic_perturbed(X, Y, penalty, noise, *, fit_intercept, max_iter, tol):
    """Minimize ``Σℓ_i + ½θᵀPθ + bᵀθ`` per label by damped Newton (Cholesky, Armijo).

    Returns ``theta`` (L, d̃) and the iteration counts. The objective is strongly convex
    (``P > 0`` everywhere), so Newton converges quadratically; it stops when the gradient
    norm is below ``tol·1e-4`` times its value at ``θ = 0`` (or ``1e3·u`` times, ``u`` the
    unit round-off). Near the optimum the objective is flat to round-off and cannot judge
    a step, so the full Newton step is then taken if it reduces the gradient norm; a
    gradient that stops halving below ``sqrt(u)`` times its start is at its floor. The
    best iterate is returned; its residual is measured and charged to the budget.
    """
    Xt = augment(X, fit_intercept)
    n_labels, d = noise.shape
    theta = np.zeros((n_labels, d))
    n_iter = np.zeros(n_labels, dtype=np.int32)

    def objective(t, y, b):
        z = np.asarray(Xt @ t)
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * t @ (penalty * t) + b @ t)

    def gradient_norm(t, y, b):
        p = expit(np.asarray(Xt @ t))
        return float(np.linalg.norm(np.asarray(Xt.T @ (p - y)) + penalty * t + b))

    for label in range(n_labels):
        y, b, t = Y[:, label], noise[label], theta[label]
        scale, stalled = None, 0
        best_norm, best = np.inf, t
        for iteration in range(1, max_iter + 1):
            z = np.asarray(Xt @ t)
            p = expit(z)
            grad = np.asarray(Xt.T @ (p - y)) + penalty * t + b
            norm = float(np.linalg.norm(grad))
            scale = norm if scale is None else scale
            n_iter[label] = iteration
            stalled = 0 if norm < 0.5 * best_norm else stalled + 1
            if norm < best_norm:
                best_norm, best = norm, t
            if norm <= max(tol * 1e-4 * max(scale, 1.0), 1e3 * _UNIT_ROUNDOFF * max(scale, 1.0)):
                break
            if stalled >= 3 and best_norm <= np.sqrt(_UNIT_ROUNDOFF) * max(scale, 1.0):
                # Newton converges quadratically near the optimum: a small gradient that has
                # not halved in three iterations is at its floating-point floor. Keep the
                # best iterate (its residual is measured and charged to the budget).
                break
            hessian = weighted_gram(X, p * (1 - p), fit_intercept=fit_intercept)
            hessian.flat[:: d + 1] += penalty
            try:
                step = linalg.cho_solve(linalg.cho_factor(hessian), grad)
            except linalg.LinAlgError as error:
                raise CurvatureError("The perturbed logistic Hessian is singular.") from error
            current, slope, rate = objective(t, y, b), float(grad @ step), 1.0
            if slope <= 64 * _UNIT_ROUNDOFF * (1.0 + abs(current)):
                # Near the optimum the objective is flat to round-off and cannot judge the
                # step: take the full Newton step if it reduces the gradient, else stop.
                candidate = t - step
                if gradient_norm(candidate, y, b) < norm:
                    t = candidate
                    continue
                break
            while rate > 1e-12:
                candidate = t - rate * step
                if objective(candidate, y, b) <= current - 1e-4 * rate * slope:
                    break
                rate /= 2
            else:
                break  # no more progress in floating point: the gradient is what it is
            t = candidate
        theta[label] = best
    return theta, n_iter


class Certificate:
    """Private state of a certified model: the noise, the Grams the bound needs, the budget.

    Parameters
    ----------
    noise : ndarray of shape (L, d̃)
        The secret linear term ``b``, one row per label.
    gram : ndarray of shape (d̃, d̃)
        ``G = Σ x̃x̃ᵀ`` over the samples still in the model.
    hessians : list of ndarray of shape (d̃, d̃)
        ``M_l`` (the Hessian at the fitted parameters, penalty included) per label, or one
        shared matrix when all labels have the same Hessian (ridge).
    radius : float
        ``R = max ‖x̃_i‖`` over the training set.
    gamma : float
        Lipschitz constant of ``ℓ''``.
    initial_residual : float
        ``‖∇L_b(θ_0; D)‖`` measured at the end of the fit, plus its rounding allowance.
    budget : float
        The largest residual the ``(ε, δ)`` certificate covers (:func:`certified_budget`).
    """

    def __init__(self, noise, gram, hessians, radius, gamma, initial_residual, budget):
        self.noise = noise
        self.gram = gram
        self.hessians = hessians
        self.radius = float(radius)
        self.gamma = float(gamma)
        self.initial_residual = float(initial_residual)
        self.bound = float(initial_residual)
        self.last_step = 0.0  # β of the latest removal
        self.budget = float(budget)

    @property
    def remaining(self):
        return self.budget - self.bound

    def plan(self, Xt, hessian_factors, theta_now, theta_fit, step, gradients):
        """The certificate after applying ``step`` (L, d̃) for the removal of ``Xt``.

        ``hessian_factors`` (k, L) are ``sqrt(ℓ'')`` of the removed samples at ``θ_0``;
        ``gradients`` (d̃, L) is ``Δ``. Returns a new :class:`Certificate` whose ``bound``
        is this one's plus ``β``; ``self`` is not changed (the new one shares ``noise``).
        """
        gram = self.gram - Xt.T @ Xt
        gram = (gram + gram.T) / 2
        shared = len(self.hessians) == 1
        hessians = []
        for h, M in enumerate(self.hessians):
            factor = Xt * hessian_factors[:, [h]]
            hessians.append(M - factor.T @ factor)
        betas = []
        for label in range(step.shape[0]):
            M = hessians[0 if shared else label]
            v, delta = step[label], gradients[:, label]
            solve_error = float(np.linalg.norm(M @ v - delta))
            drift = theta_now[label] - theta_fit[label]
            taylor = taylor_remainder(gram, self.radius, self.gamma, drift, v)
            theta_next = theta_now[label] + v
            rounding = _rounding(
                np.linalg.norm(M) * (np.linalg.norm(theta_next) + np.linalg.norm(v)),
                np.linalg.norm(delta),
                np.linalg.norm(self.noise[label]),
            )
            betas.append(solve_error + taylor + rounding)
        beta = float(np.sqrt(np.sum(np.square(betas))))
        updated = copy.copy(self)
        updated.gram, updated.hessians = gram, hessians
        updated.bound = self.bound + beta
        updated.last_step = beta
        return updated


def build_certificate(estimator, X, Y, *, budget):
    """Measure the fit's residual and store what later bounds need (called by ``fit``)."""
    theta = estimator._get_theta()
    penalty = estimator._penalty_vector()
    noise = estimator._objective_noise
    loss = estimator._loss
    fit_intercept = estimator.fit_intercept
    gram = weighted_gram(X, None, fit_intercept=fit_intercept)
    if loss.name == "squared_error":
        hessians = [gram + np.diag(penalty)]
    else:
        Xt = augment(X, fit_intercept)
        raw = np.asarray(Xt @ theta.T)
        hessians = []
        for label in range(theta.shape[0]):
            M = weighted_gram(X, loss.hessian(raw[:, label], None), fit_intercept=fit_intercept)
            hessians.append(M + np.diag(penalty))
    residual = perturbed_gradient(loss, X, Y, theta, penalty, noise, fit_intercept)
    Xt = augment(X, fit_intercept)
    radius = max_row_norm(Xt)
    target_scale = float(np.linalg.norm(np.asarray(Xt.T @ Y)))
    initial = float(np.linalg.norm(residual)) + _rounding(
        np.linalg.norm(hessians[0]) * np.linalg.norm(theta) * len(hessians),
        target_scale,
        np.linalg.norm(noise),
    )
    return Certificate(
        noise=noise,
        gram=gram,
        hessians=hessians,
        radius=radius,
        gamma=loss_gamma(loss),
        initial_residual=initial,
        budget=budget,
    )


class CertifiedMixin:
    """The estimator side of certified removal: the secret objective noise, the certificate
    of a fit, the certificate after a removal, and the gradient-residual audit."""

    def _draw_objective_noise(self, n_labels):
        """The certified mode's secret linear term ``b ~ N(0, σ²I)``, one row per label."""
        if not getattr(self, "certified", False):
            return None
        if getattr(self, "reproducible_noise", False):
            warnings.warn(
                "reproducible_noise=True: the certified noise is drawn from random_state, so "
                "anyone who knows the seed and the remaining data can replay the fit and "
                "detect erased samples. Use it for tests only, never for a certified release.",
                UserWarning,
                stacklevel=4,
            )
            rng = check_random_state(self.random_state)
        else:
            # Secret noise: fresh operating-system entropy at every fit (a refit included).
            rng = np.random.default_rng(np.random.SeedSequence())
        size = (n_labels, self.n_features_in_ + int(self.fit_intercept))
        self._objective_noise = rng.normal(0.0, self.noise_sigma, size=size)
        return self._objective_noise

    def _fit_certificate(self, X, Y):
        """The certified mode's part of a fit: the certificate of the fitted model and
        its bound and remaining budget (nothing outside certified mode)."""
        if getattr(self, "certified", False):
            budget = certified_budget(
                self.noise_sigma, self.certified_epsilon, self.certified_delta
            )
            self._certificate = build_certificate(self, X, Y, budget=budget)
            if not self._certificate.remaining > 0:
                warnings.warn(
                    f"The fitted model's gradient residual bound "
                    f"{self._certificate.bound:.4g} already exceeds the removal budget "
                    f"{budget:.4g}: no removal can be certified. Increase max_iter, "
                    "noise_sigma or certified_epsilon.",
                    UserWarning,
                    stacklevel=4,
                )
            self.gradient_residual_bound_ = self._certificate.bound
            self.removal_budget_remaining_ = self._certificate.remaining

    def _plan_certificate(self, certificate, plan, theta_now, step):
        """The certificate after this removal (a new object), or RemovalBudgetError."""
        if plan.n_unmatched:
            raise ValueError(
                f"{plan.n_unmatched} of the removed samples do not match a training sample "
                "still in the model; a certified model can only erase its own samples (its "
                "certificate tracks the remaining data), so check_membership=False cannot "
                "be used to skip this check."
            )
        theta_fit = self._theta_at_fit
        if len(certificate.hessians) == 1 and self._loss.name == "squared_error":
            factors = np.ones((plan.Xt.shape[0], 1))
        else:
            factors = np.sqrt(self._loss.hessian(plan.Xt @ theta_fit.T, plan.Y))
        updated = certificate.plan(plan.Xt, factors, theta_now, theta_fit, step, plan.gradients)
        if not updated.bound <= certificate.budget:
            raise RemovalBudgetError(
                f"Erasing these {plan.n_removed} samples would raise the gradient-residual "
                f"bound to {updated.bound:.4g}, above the budget "
                f"{certificate.budget:.4g} of (ε={self.certified_epsilon}, "
                f"δ={self.certified_delta})-certified removal (bound so far "
                f"{certificate.bound:.4g}). Nothing was changed: refit the model on the "
                "remaining data to erase them and restore the budget."
            )
        return updated

    def gradient_residual(self, X_remaining, y_remaining, sample_weight=None):
        """Norm of the training objective's gradient at the current parameters.

        For audits and tests: given the samples that remain in the model, return
        ``‖Σ_i ∇ℓ_i(θ) + Pθ + b‖`` (``b`` the certified mode's noise, else 0). After exact
        unlearning it is 0; in certified mode it is at most ``gradient_residual_bound_``.

        Parameters
        ----------
        X_remaining : {array-like, sparse matrix} of shape (`n_samples_`, n_features)
        y_remaining : array-like of shape (`n_samples_`,) or (`n_samples_`, n_outputs)
        sample_weight : array-like of shape (`n_samples_`,), default=None
            The remaining samples' weights (class weights applied); ``None``: as stored.

        Returns
        -------
        float
        """
        check_is_fitted(self, "curvature_")
        with self._lock():  # parameters, counts and noise of one state
            X, Y = self._validate_removed(X_remaining, y_remaining, what="X_remaining")
            if X.shape[0] != self.n_samples_:
                raise ValueError(
                    f"X_remaining has {X.shape[0]} samples but the model holds {self.n_samples_}: "
                    "pass exactly the training samples that have not been erased."
                )
            stored = self.__dict__.get("fingerprints_")
            if stored is None:
                raise ValueError(
                    "This model was fitted without fingerprints, so gradient_residual cannot "
                    "check that X_remaining are the samples still in the model; the audit "
                    "needs them (refit with fingerprints=True)."
                )
            digests = row_fingerprints(X, Y)
            if sample_weight is not None:
                weights = _check_removed_weights(sample_weight, X.shape[0])
            else:
                weights = stored.resolve_weights(digests)
            # Always checked, whatever check_membership says: the audit is only meaningful
            # on exactly the samples still in the model.
            if len(stored.missing(digests, weights)):
                raise ValueError(
                    "X_remaining does not match the samples still in the model (some were never "
                    "trained on or were erased): pass exactly the training samples that have "
                    "not been erased."
                )
            certificate = self.__dict__.get("_certificate")
            noise = 0.0 if certificate is None else certificate.noise
            if not np.all(weights == 1.0):
                Xt = augment(X, self.fit_intercept)
                theta = self._get_theta()
                G = self._loss.gradient(np.asarray(Xt @ theta.T), Y) * weights[:, None]
                gradient = np.asarray(Xt.T @ G).T + theta * self._penalty_vector() + noise
                return float(np.linalg.norm(gradient))
            gradient = perturbed_gradient(
                self._loss,
                X,
                Y,
                self._get_theta(),
                self._penalty_vector(),
                noise,
                self.fit_intercept,
            )
        return float(np.linalg.norm(gradient))
