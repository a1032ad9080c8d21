"""Shared machinery of the unlearnable linear estimators: curvature build and ``forget``.

Conventions (worked out in ``doc/method.rst``). scikit-learn minimizes
``J(θ) = C·Σ_i ℓ_i(θ) + ½‖w‖²``; dividing by ``C`` gives ``Σ_i ℓ_i + ½·wᵀPw`` with
``P = 1/C`` on the coefficients and ``0`` on the intercept. At the optimum
``Σ_{i∈D} ∇ℓ_i(θ*) + Pθ* = 0``, so for ``D∖S`` the gradient at ``θ*`` is
``−Σ_{i∈S} ∇ℓ_i(θ*)`` and one Newton step is

    θ ← θ* + (Σ_{i∉S} ∇²ℓ_i + P)⁻¹ Σ_{i∈S} ∇ℓ_i = θ* + 1/(n−k) · B⁻¹ Σ_{i∈S} ∇ℓ_i

with ``B = (Σ_{i∉S} ∇²ℓ_i + P)/(n−k)``: the mean-normalized Hessian of the leave-``S``-out
objective. For a quadratic loss this step is the exact refit. The estimators generalize it
to ``B = (1/m)·(Σ c_i + P) + damping·I`` with ``c_i`` the Hessian or the empirical Fisher
term and the sum over ``D∖S`` (``leave_out=True``, ``m = n−k``) or ``D`` (the paper,
``m = n``), and scale it by ``ε``.
"""

from __future__ import annotations

import threading
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._fingerprint import FingerprintMultiset, row_fingerprints
from ._loss import augment, curvature_factors
from .curvature import BlockFisherInverse, weighted_gram

__all__ = ["ForgetStep", "UnlearnableLinearMixin"]


class ForgetStep:
    """The unit (``ε = 1``) parameter step of a removal request, not yet applied.

    Attributes
    ----------
    coef : ndarray of shape like ``coef_``
    intercept : ndarray or float, like ``intercept_``
    n_removed : int
    """

    def __init__(self, coef, intercept, n_removed):
        self.coef = coef
        self.intercept = intercept
        self.n_removed = n_removed

    def __repr__(self):
        return f"ForgetStep(n_removed={self.n_removed}, norm={self.norm():.4g})"

    def norm(self):
        """Euclidean norm of the step over coefficients and intercepts."""
        return float(np.sqrt(np.sum(np.square(self.coef)) + np.sum(np.square(self.intercept))))


class _Plan:
    """Everything a removal request changes, computed before anything is changed."""

    def __init__(self, direction, change, fingerprints, n_removed):
        self.direction = direction  # (L, d̃) unit step
        self.change = change
        self.fingerprints = fingerprints
        self.n_removed = n_removed


class UnlearnableLinearMixin:
    """Mixin giving a linear estimator ``forget``, given a loss and a target encoding.

    Subclasses define ``_loss``, ``_penalty_strength()``, ``_fit_coefficients(X, Y)``,
    ``_encode_fit_targets(y)`` and ``_encode_removed_targets(y)``.
    """

    _common_parameter_constraints = {
        "fit_intercept": ["boolean"],
        "curvature": [StrOptions({"hessian", "empirical_fisher"})],
        "leave_out": ["boolean"],
        "damping": [Interval(Real, 0, None, closed="left")],
        "eps": [Interval(Real, 0, None, closed="left")],
        "check_membership": ["boolean"],
        "curvature_dtype": [StrOptions({"float64", "float32"})],
        "n_jobs": [None, Integral],
    }

    # ------------------------------------------------------------------ parameters <-> θ
    def _get_theta(self):
        """Coefficients and intercepts as one (L, d̃) matrix."""
        coef = np.atleast_2d(self.coef_)
        if not self.fit_intercept:
            return coef.copy()
        return np.hstack([coef, np.reshape(self.intercept_, (-1, 1))])

    def _split_theta(self, theta):
        """Inverse of :meth:`_get_theta`, shaped like the public attributes."""
        n_features = self.n_features_in_
        coef = theta[:, :n_features]
        if getattr(self, "_target_1d", False):
            return coef[0].copy(), float(theta[0, n_features]) if self.fit_intercept else 0.0
        if not self.fit_intercept:
            # scikit-learn's conventions: Ridge keeps a scalar 0.0, classifiers a zero vector.
            return coef.copy(), (0.0 if self._loss.name == "squared_error" else
                                 np.zeros(theta.shape[0]))
        return coef.copy(), np.array(theta[:, n_features], dtype=np.float64)

    def _raw(self, X, theta):
        Xt = augment(X, self.fit_intercept)
        return np.asarray(Xt @ theta.T)

    # ------------------------------------------------------------------ curvature
    def _penalty_vector(self):
        penalty = np.full(self.n_features_in_ + int(self.fit_intercept), self._penalty_strength())
        if self.fit_intercept:
            penalty[-1] = 0.0  # the intercept is not penalized, as in scikit-learn
        return penalty

    @property
    def _shared_block(self):
        """One block for all outputs when their curvature is the same (ridge's Hessian)."""
        return self.curvature == "hessian" and self._loss.name == "squared_error"

    def _build_curvature(self, X, Y, gram=None):
        """Build ``self.curvature_`` at the fitted parameters.

        ``gram`` is the unweighted ``X̃ᵀX̃ + P`` if the caller already formed it."""
        theta = self._get_theta()
        penalty = self._penalty_vector()
        dtype = np.dtype(self.curvature_dtype)
        n = X.shape[0]
        if self._shared_block:
            if gram is None:
                gram = weighted_gram(X, None, fit_intercept=self.fit_intercept, dtype=dtype)
                gram.flat[:: gram.shape[0] + 1] += penalty.astype(dtype)
            grams = [gram]
        else:
            factors = curvature_factors(self._loss, self._raw(X, theta), Y, self.curvature)

            def block(column):
                G = weighted_gram(
                    X, factors[:, column] ** 2, fit_intercept=self.fit_intercept, dtype=dtype
                )
                G.flat[:: G.shape[0] + 1] += penalty.astype(dtype)
                return G

            columns = range(Y.shape[1])
            if self.n_jobs in (None, 1) or Y.shape[1] == 1:
                grams = [block(c) for c in columns]
            else:
                grams = Parallel(n_jobs=self.n_jobs, prefer="threads")(
                    delayed(block)(c) for c in columns
                )
        self.curvature_ = BlockFisherInverse(
            damping=self.damping, dtype=self.curvature_dtype, n_jobs=self.n_jobs
        ).fit_gram(grams, n_samples=n)
        self._theta_at_fit = theta
        self.n_samples_ = n

    def _finish_fit(self, X, Y, gram=None):
        self._build_curvature(X, Y, gram=gram)
        self.fingerprints_ = FingerprintMultiset(row_fingerprints(X, Y))
        self.n_forgotten_ = 0
        return self

    # ------------------------------------------------------------------ forgetting
    def _validate_eps(self, eps):
        eps = self.eps if eps is None else eps
        if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (Real, np.number)):
            raise TypeError(f"eps must be a real number, got {type(eps).__name__}: {eps!r}.")
        eps = float(eps)
        if not np.isfinite(eps) or eps < 0:
            raise ValueError(f"eps must be a finite number >= 0, got {eps!r}.")
        return eps

    def _validate_removed(self, X, y):
        check_is_fitted(self, "curvature_")
        if y is None:
            raise ValueError("forget needs the targets y of the removed samples, got None.")
        X = validate_data(
            self,
            X,
            reset=False,
            accept_sparse="csr",
            dtype=np.float64,
            ensure_min_samples=1,
        )
        Y = self._encode_removed_targets(y)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X_removed has {X.shape[0]} samples but y_removed has {Y.shape[0]}."
            )
        if not np.all(np.isfinite(Y)):
            raise ValueError("y_removed contains NaN or infinity.")
        return X, Y

    def _plan_forget(self, X, y):
        X, Y = self._validate_removed(X, y)
        k = X.shape[0]
        if k >= self.n_samples_:
            raise ValueError(
                f"Cannot remove {k} samples from a model that holds {self.n_samples_}: at "
                "least one must remain. Fit a new model instead."
            )
        digests = row_fingerprints(X, Y)
        missing = self.fingerprints_.missing(digests)
        if self.check_membership:
            if len(missing):
                shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
                raise ValueError(
                    f"{len(missing)} of the {k} removed samples (rows {shown}) do not match a "
                    "training sample that is still in the model: never trained on, already "
                    "forgotten, or given with different features or labels. Pass "
                    "check_membership=False to skip this check."
                )
        # Without the check, the fingerprints of samples that were in the model still go.
        fingerprints = self.fingerprints_.without(np.delete(digests, missing))

        theta = self._get_theta()
        Xt = augment(X, self.fit_intercept)
        Xt_dense = Xt.toarray() if sp.issparse(Xt) else Xt
        gradient_weights = self._loss.gradient(Xt_dense @ theta.T, Y)  # at the current θ
        # Stored curvature terms were evaluated at the fitted θ; remove exactly those.
        factor_weights = curvature_factors(
            self._loss, Xt_dense @ self._theta_at_fit.T, Y, self.curvature
        )
        gradients = Xt_dense.T @ gradient_weights  # (d̃, L): Σ_{i∈S} ∇ℓ_i per output
        if self._shared_block:
            rhs, factors = [gradients], [Xt_dense * factor_weights[:, :1]]
        else:
            rhs = [gradients[:, column] for column in range(gradients.shape[1])]
            factors = [Xt_dense * factor_weights[:, [c]] for c in range(Y.shape[1])]

        change = self.curvature_.prepare_change(factors, sign=-1)
        solved = self.curvature_.solve(rhs, change=change if self.leave_out else None)
        direction = (solved[0].T if self._shared_block else np.vstack(solved)) / (
            self.n_samples_ - k
        )
        if not np.all(np.isfinite(direction)):
            raise ValueError("The erasure step is not finite; the curvature is ill-conditioned.")
        return _Plan(direction, change, fingerprints, k)

    def _lock(self):
        lock = self.__dict__.get("_forget_lock")
        if lock is None:
            lock = self.__dict__.setdefault("_forget_lock", threading.RLock())
        return lock

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_forget_lock", None)
        return state

    def forget_step(self, X_removed, y_removed):
        """Compute the unit (``ε = 1``) erasure step for these samples without applying it.

        The step of :meth:`forget` is ``eps`` times this one: the update is linear in ``ε``,
        which is what :func:`sklearn_ssse.model_selection.similarity_ratio_path` exploits.

        Parameters
        ----------
        X_removed : {array-like, sparse matrix} of shape (k, n_features)
        y_removed : array-like of shape (k,) or (k, n_outputs)

        Returns
        -------
        ForgetStep
        """
        with self._lock():
            plan = self._plan_forget(X_removed, y_removed)
        coef, intercept = self._split_theta(plan.direction)
        return ForgetStep(coef, intercept, plan.n_removed)

    def forget(self, X_removed, y_removed, eps=None):
        """Erase training samples from the fitted model in one closed-form step.

        Applies, per curvature block, ``θ ← θ + ε/(n−k) · B⁻¹ · Σ_{i∈S} ∇ℓ_i(θ)`` and
        removes the samples' terms from the stored curvature, so that later requests see
        ``D∖S``. Either everything changes or, on any error, nothing does.

        Parameters
        ----------
        X_removed : {array-like, sparse matrix} of shape (k, n_features)
            The samples to erase, exactly as they were given to ``fit``.
        y_removed : array-like of shape (k,) or (k, n_outputs)
            Their targets.
        eps : float, default=None
            Scale ``ε`` of the step; ``None`` uses the ``eps`` parameter.

        Returns
        -------
        self
        """
        eps = self._validate_eps(eps)
        with self._lock():
            plan = self._plan_forget(X_removed, y_removed)
            coef, intercept = self._split_theta(self._get_theta() + eps * plan.direction)
            # Commit: assignments only; nothing below can fail half-way.
            self.curvature_.apply(plan.change)
            self.coef_, self.intercept_ = coef, intercept
            self.fingerprints_ = plan.fingerprints
            self.n_samples_ -= plan.n_removed
            self.n_forgotten_ += plan.n_removed
        return self
