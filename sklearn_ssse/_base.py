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

import copy
import functools
import json
import threading
import warnings
import weakref
from datetime import datetime, timezone
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _bounds
from ._certified import (
    RemovalBudgetError,
    build_certificate,
    certified_budget,
    perturbed_gradient,
)
from ._fingerprint import FingerprintMultiset, row_fingerprints
from ._loss import augment, curvature_factors
from ._pipeline import PIPELINE_MARK, warn_if_fitted_in_pipeline
from .curvature import BlockFisherInverse, CurvatureError, weighted_gram
from .curvature._normal import residual_scale, solve_normal_equations

_UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2

__all__ = ["FORMAT_VERSION", "SKOPS_TRUSTED_TYPES", "ForgetStep", "UnlearnableLinearMixin"]

#: Version of the persisted (pickle / joblib / skops) state of the estimators. Raise it when
#: a release changes the meaning of stored attributes; older releases then refuse the file
#: instead of mis-reading it.
FORMAT_VERSION = 1

#: The package's own types in a persisted estimator, for ``skops.io.load(...,
#: trusted=SKOPS_TRUSTED_TYPES)``. skops refuses types it does not know unless trusted.
SKOPS_TRUSTED_TYPES = [
    "sklearn_ssse._certified.Certificate",
    "sklearn_ssse._fingerprint.FingerprintMultiset",
    "sklearn_ssse.curvature._block_inverse.BlockFisherInverse",
    "sklearn_ssse.curvature._block_inverse._Block",
    "sklearn_ssse.linear_model._glm.GLMCurvature",
    "sklearn_ssse.linear_model._glm.UnlearnableGammaRegressor",
    "sklearn_ssse.linear_model._glm.UnlearnablePoissonRegressor",
    "sklearn_ssse.linear_model._glm.UnlearnableTweedieRegressor",
    "sklearn_ssse.linear_model._logistic.UnlearnableLogisticRegression",
    "sklearn_ssse.linear_model._ridge.UnlearnableRidge",
    "sklearn_ssse.linear_model._ridge_classifier.UnlearnableRidgeClassifier",
    "sklearn_ssse.linear_model._svm.UnlearnableLinearSVC",
]


#: One re-entrant lock per model object. Kept outside the instance ``__dict__`` so that no
#: restore, copy or unpickling can lose or share it: a copy (``copy``, ``deepcopy``,
#: ``clone``, ``pickle``) is a new object and gets a new lock on first use; the entry goes
#: with the object.
_LOCKS = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
_MISSING = object()


def _model_lock(model):
    try:
        return _LOCKS[model]
    except KeyError:
        with _LOCKS_GUARD:
            return _LOCKS.setdefault(model, threading.RLock())


def _commit(model, before, changes, removed=()):
    """Publish a new state in one step: build the new ``__dict__`` aside, then rebind it.

    Rebinding ``__dict__`` is a single reference assignment, so a reader that fetched the
    dict (see :meth:`UnlearnableLinearMixin._committed`) sees either the whole old state or
    the whole new one. Attributes set on the model since ``before`` (``set_params`` from
    another thread) are kept unless the transaction changed them too."""
    state = dict(model.__dict__)
    for name in removed:
        state.pop(name, None)
    state.update(changes)
    model.__dict__ = state


def transactional(method):
    """Run ``method`` under the model's lock, as a transaction.

    The method runs on a scratch object holding a shallow copy of the model's attributes
    (fits only assign new objects, never change the old ones in place), so readers never
    see a half-built state, and a failure, at any point, leaves the model untouched. On
    success the attributes the method set or removed are published in one step
    (:func:`_commit`).
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock():
            before = dict(self.__dict__)
            work = object.__new__(type(self))
            work.__dict__.update(before)
            result = method(work, *args, **kwargs)
            after = work.__dict__
            changes = {k: v for k, v in after.items() if before.get(k, _MISSING) is not v}
            _commit(self, before, changes, removed=before.keys() - after.keys())
        return self if result is work else result

    return wrapper


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

    def __init__(self, direction, change, fingerprints, n_removed, **extra):
        self.direction = direction  # (L, d̃) unit step
        self.change = change
        self.fingerprints = fingerprints
        self.n_removed = n_removed
        # removed rows (augmented, dense), their encoded targets, Σ∇ℓ (d̃, L), digests
        # of the samples that matched, and the number that did not
        self.Xt, self.Y, self.gradients = extra["Xt"], extra["Y"], extra["gradients"]
        self.erased_digests, self.n_unmatched = extra["erased_digests"], extra["n_unmatched"]
        self.label_counts = extra.get("label_counts")  # per-label positives and total after
        # ridge: the penalized Gram X̃ᵀWX̃ + P and X̃ᵀWY − b over the samples that remain
        self.normal = extra.get("normal")
        # ridge: a fresh factorization replacing the downdate, and the accuracy check's log
        self.refactored, self.accuracy = extra.get("refactored"), extra.get("accuracy")
        self.weights = extra.get("weights")  # each removed sample's weight
        self.residual = extra.get("residual")  # the fit's residual the step corrects, (L, d̃)


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
        "certified": ["boolean"],
        "certified_epsilon": [Interval(Real, 0, None, closed="neither")],
        "certified_delta": [Interval(Real, 0, 1, closed="neither")],
        "noise_sigma": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "reproducible_noise": ["boolean"],
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
            return coef.copy(), (
                0.0 if self._loss.name == "squared_error" else np.zeros(theta.shape[0])
            )
        return coef.copy(), np.array(theta[:, n_features], dtype=np.float64)

    def _raw(self, X, theta):
        # X @ w + b without forming [X, 1] (a copy of the data).
        p = X.shape[1]
        raw = np.asarray(X @ theta[:, :p].T)
        return raw + theta[:, p] if theta.shape[1] > p else raw

    # ------------------------------------------------------------------ curvature
    def _penalty_vector(self):
        penalty = np.full(self.n_features_in_ + int(self.fit_intercept), self._penalty_strength())
        if self.fit_intercept and not getattr(self, "certified", False):
            # The intercept is not penalized, as in scikit-learn. Certified removal needs a
            # strongly convex objective (see ``_certified``), so there it is.
            penalty[-1] = 0.0
        return penalty

    @property
    def _shared_block(self):
        """One block for all outputs when their curvature is the same (ridge's Hessian)."""
        return self.curvature == "hessian" and self._loss.name == "squared_error"

    @property
    def _coupled(self):
        """One block over all outputs' parameters (softmax): the estimator provides
        ``_coupled_gram`` and ``_coupled_removal`` (see ``linear_model._multinomial``)."""
        return getattr(self._loss, "coupled", False)

    def _build_curvature(self, X, Y, gram=None, sample_weight=None):
        """Build ``self.curvature_`` at the fitted parameters.

        ``gram`` is the (weighted) ``X̃ᵀWX̃ + P`` if the caller already formed it."""
        theta = self._get_theta()
        penalty = self._penalty_vector()
        dtype = np.dtype(self.curvature_dtype)
        n = X.shape[0]
        if self._coupled:
            grams = [self._coupled_gram(X, Y, theta, sample_weight)]
        elif self._shared_block:
            if gram is None:
                gram = weighted_gram(
                    X, sample_weight, fit_intercept=self.fit_intercept, dtype=dtype
                )
                gram.flat[:: gram.shape[0] + 1] += penalty.astype(dtype)
            grams = [gram]
        else:
            factors = curvature_factors(
                self._loss, self._raw(X, theta), Y, self.curvature, sample_weight
            )

            def block(column):
                G = weighted_gram(
                    X, factors[:, column] ** 2, fit_intercept=self.fit_intercept, dtype=dtype
                )
                G.flat[:: G.shape[0] + 1] += penalty.astype(dtype)
                return G

            columns = range(Y.shape[1])
            # Lazily: each gram is factored in place before the next is built, so peak memory
            # is the stored curvature plus about one block.
            if self.n_jobs in (None, 1) or Y.shape[1] == 1:
                grams = (block(c) for c in columns)
            else:
                grams = Parallel(n_jobs=self.n_jobs, prefer="threads", return_as="generator")(
                    delayed(block)(c) for c in columns
                )
        self._install_curvature(grams, n, theta)

    def _factor_curvature(self, grams, n):
        """Factor the penalized block Grams (consumed in place) and refuse ill-conditioned
        blocks; return the new curvature."""
        norms = []  # 1-norms of the grams, taken before fit_gram factors them in place
        curvature = BlockFisherInverse(
            damping=self.damping, dtype=self.curvature_dtype, n_jobs=self.n_jobs
        ).fit_gram(_recording_norms(grams, norms), n_samples=n)
        _check_conditioning(curvature, norms, np.dtype(self.curvature_dtype))
        return curvature

    def _install_curvature(self, grams, n, theta):
        """Factor the penalized block Grams (``Σ c_i + P`` at ``theta``, summed over ``n``
        samples; consumed in place), refuse ill-conditioned blocks, and store the curvature.
        Shared by ``fit`` and the out-of-core fits."""
        self.curvature_ = self._factor_curvature(grams, n)
        self._theta_at_fit = theta
        self.n_samples_ = int(n)

    def _reset_erasure_state(self, digests, label_counts, sample_weight=None):
        """A new fit is a new model: its samples' fingerprints (with their weights), nothing
        erased yet, the settings its state was built with, and no certificate
        (``_finish_fit`` builds one in certified mode)."""
        self._settings_at_fit = self._fit_settings()
        self._label_counts = label_counts
        if digests is not None:
            self.fingerprints_ = FingerprintMultiset(digests, sample_weight)
        self.n_forgotten_ = 0
        self.erasure_log_ = []
        stale = ["_certificate", "gradient_residual_bound_", "removal_budget_remaining_"]
        stale.append(PIPELINE_MARK)  # set again by sklearn_ssse.pipeline.Pipeline.fit
        stale.extend(_bounds._STATE + _bounds._OPTIONAL)  # the fit measures its own (``_bounds``)
        if not getattr(self, "certified", False):
            stale.append("_objective_noise")  # a certified fit has just drawn its own
        for attribute in stale:
            self.__dict__.pop(attribute, None)

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

    def _finish_fit(self, X, Y, gram=None, sample_weight=None):
        """Curvature, fingerprints and erasure state of a fit. ``sample_weight`` is the
        final per-sample weight (class weights applied), ``None`` for unit weights."""
        self._build_curvature(X, Y, gram=gram, sample_weight=sample_weight)
        self._reset_erasure_state(
            row_fingerprints(X, Y), self._count_labels(Y), sample_weight=sample_weight
        )
        _bounds.fit_state_from_data(self, X, Y, sample_weight)
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
                    stacklevel=3,
                )
            self.gradient_residual_bound_ = self._certificate.bound
            self.removal_budget_remaining_ = self._certificate.remaining
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

    def _refuse_malformed_fit_input(self, X, y):
        """The package's own messages for inputs numpy would refuse in its own words."""
        if not (sp.issparse(X) or hasattr(X, "shape")) and _is_ragged(X):
            raise ValueError(
                "X is a ragged list (its rows have different lengths); pass a 2-D array of "
                "shape (n_samples, n_features)."
            )
        if y is not None and not (sp.issparse(y) or hasattr(y, "shape")):
            if _is_ragged(y):
                raise ValueError(
                    "y is a ragged list (its rows have different lengths); pass one target "
                    "row per sample, all of the same length."
                )
            if hasattr(y, "__len__") and len(y) == 0:
                raise ValueError("y is empty: give one target per sample of X.")
        if y is not None and _contains_none(y):
            raise ValueError("y contains None; every sample needs its target.")

    def _validate_removed(self, X, y, what="X_removed"):
        check_is_fitted(self, "curvature_")
        if y is None:
            raise ValueError(f"{what} needs its targets y, got None.")
        if sp.issparse(X) or hasattr(X, "shape"):
            n_rows = X.shape[0] if len(X.shape) else None
        else:
            n_rows = len(X) if hasattr(X, "__len__") else None
        if n_rows == 0:
            raise ValueError(f"{what} is empty (0 samples): there is nothing to erase.")
        y_what = "y_removed" if what == "X_removed" else "y"
        if not (sp.issparse(X) or hasattr(X, "shape")) and _is_ragged(X):
            raise ValueError(
                f"{what} is a ragged list (its rows have different lengths); pass a 2-D "
                f"array of shape (n_samples, {self.n_features_in_})."
            )
        if not (sp.issparse(y) or hasattr(y, "shape")):
            if _is_ragged(y):
                raise ValueError(
                    f"{y_what} is a ragged list (its rows have different lengths); pass one "
                    "target row per sample, all of the same length."
                )
            if hasattr(y, "__len__") and len(y) == 0:
                raise ValueError(f"{y_what} is empty: give one target per sample of {what}.")
        if _contains_none(y):
            raise ValueError(f"{y_what} contains None; every sample needs its label.")
        try:
            X = validate_data(
                self,
                X,
                reset=False,
                accept_sparse="csr",
                dtype=np.float64,
                ensure_min_samples=1,
            )
        except (TypeError, ValueError) as error:
            if "convert" not in str(error) and "argument must be" not in str(error):
                raise
            raise ValueError(f"{what} must be numeric: {error}") from error
        Y = self._encode_removed_targets(y)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"X_removed has {X.shape[0]} samples but y_removed has {Y.shape[0]}.")
        if not np.all(np.isfinite(Y)):
            raise ValueError("y_removed contains NaN or infinity.")
        return X, Y

    # Parameters baked into the stored curvature, the fitted parameters or the certificate at
    # fit time. ``eps``, ``leave_out``, ``check_membership`` and ``n_jobs`` are read at each
    # request and may change freely after fit.
    _settings_fixed_at_fit = (
        "C",
        "alpha",
        "fit_intercept",
        "curvature",
        "damping",
        "curvature_dtype",
        "certified",
        "noise_sigma",
        "certified_epsilon",
        "certified_delta",
    )

    def _fit_settings(self):
        return {
            name: getattr(self, name)
            for name in self._settings_fixed_at_fit
            if name in self.get_params(deep=False)
        }

    def _check_fit_settings(self):
        """Refuse a request after ``set_params`` changed what the stored state was built with:
        half of the step would follow the new setting and half the old one."""
        at_fit = getattr(self, "_settings_at_fit", None)
        if at_fit is None:  # saved before the settings were recorded
            return
        now = self._fit_settings()
        changed = [name for name in at_fit if not _same_setting(now.get(name), at_fit[name])]
        if changed:
            detail = ", ".join(f"{n}={at_fit[n]!r} at fit, now {now.get(n)!r}" for n in changed)
            raise ValueError(
                f"{type(self).__name__} parameters changed after fit ({detail}); the stored "
                "curvature and parameters were built with the fit-time values. Set them back "
                "or fit again; eps, leave_out and check_membership may change freely."
            )

    def _count_labels(self, Y):
        """Positive and total sample counts per label (classifiers), to warn when a request
        leaves a label with a single class."""
        if self._loss.name == "squared_error":
            return None
        Y = np.asarray(Y.toarray() if hasattr(Y, "toarray") else Y)
        return np.asarray(Y.sum(axis=0), dtype=np.int64).ravel(), int(Y.shape[0])

    def _warn_single_class_labels(self, Y):
        counts = getattr(self, "_label_counts", None)
        if counts is None:
            return None
        positives, total = counts
        positives = positives - np.asarray(Y.sum(axis=0), dtype=np.int64).ravel()
        total = total - Y.shape[0]
        before = (counts[0] > 0) & (counts[0] < counts[1])
        single = np.flatnonzero(before & ((positives == 0) | (positives == total)))
        if single.size:
            names = getattr(self, "classes_", None)
            if getattr(self, "_target_type", None) == "multilabel" or names is None:
                which = single.tolist()  # multi-label: the label (column) indices
            elif len(names) == len(positives):
                which = [names[j].item() if hasattr(names[j], "item") else names[j] for j in single]
            else:
                which = single.tolist()
            warnings.warn(
                f"After this request label(s) {which} have samples of one class only: the "
                "refit's objective has no minimizer there (its unpenalized intercept goes to "
                "±infinity, and scikit-learn would drop a vanished class). The erasure step "
                "is the finite Newton step towards it; consider refitting.",
                UserWarning,
                stacklevel=3,
            )
        return positives, total

    def _plan_forget(self, X, y, sample_weight=None):
        self._check_fit_settings()
        X, Y = self._validate_removed(X, y)
        k = X.shape[0]
        if k >= self.n_samples_:
            raise ValueError(
                f"Cannot remove {k} samples from a model that holds {self.n_samples_}: at "
                "least one must remain. Fit a new model instead."
            )
        digests = row_fingerprints(X, Y)
        stored = self.__dict__.get("fingerprints_")
        if stored is None:
            if self.check_membership:
                raise ValueError(
                    "This model was fitted without fingerprints (fit_streaming(..., "
                    "fingerprints=False)), so it cannot check that the removed samples are "
                    "its own. Pass check_membership=False to erase them without the check, or "
                    "refit with fingerprints=True."
                )
            # Fitted from chunks without fingerprints: unit weights unless the request says.
            weights = (
                np.ones(k) if sample_weight is None else _check_removed_weights(sample_weight, k)
            )
            missing = np.zeros(0, dtype=np.intp)
        else:
            if sample_weight is not None:
                weights = _check_removed_weights(sample_weight, k)
            else:
                # Each sample leaves with the weight it was trained with (refused if ambiguous).
                weights = stored.resolve_weights(digests)
            missing = stored.missing(digests, weights)
        if self.check_membership:
            if len(missing):
                shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
                erased = np.isin(digests[missing], self._erased_digests())
                raise ValueError(
                    f"{len(missing)} of the {k} removed samples (rows {shown}) do not match a "
                    "training sample that is still in the model: never trained on, already "
                    "forgotten, or given with different features or labels "
                    f"({int(erased.sum())} of them are in erasure_log_ as already erased). "
                    "Pass check_membership=False to skip this check."
                )
        # Without the check, the fingerprints of samples that were in the model still go.
        matched = np.delete(digests, missing)
        fingerprints = (
            None if stored is None else stored.without(matched, np.delete(weights, missing))
        )
        unit = bool(np.all(weights == 1.0))

        theta = self._get_theta()
        Xt = augment(X, self.fit_intercept)
        Xt_dense = Xt.toarray() if sp.issparse(Xt) else Xt
        gradient_weights = self._loss.gradient(Xt_dense @ theta.T, Y)  # at the current θ
        # Σ_{i∈S} w_i ∇ℓ_i per output, (d̃, L)
        gradients = Xt_dense.T @ (gradient_weights if unit else gradient_weights * weights[:, None])
        # The Newton step of the D∖S objective from where the fit stopped: its gradient at
        # θ is r − Σ_S w_i ∇ℓ_i, with r the (carried) residual of the objective over D.
        residual = _bounds.residual_for_step(self)
        corrected = gradients if residual is None else gradients - residual.T
        n_rows = None
        if self._coupled:
            rhs, factors = self._coupled_removal(Xt_dense, Y, corrected, weights)
            n_rows = k
        else:
            # Stored curvature terms were evaluated at the fitted θ; remove exactly those.
            factor_weights = curvature_factors(
                self._loss,
                Xt_dense @ self._theta_at_fit.T,
                Y,
                self.curvature,
                None if unit else weights,
            )
            if self._shared_block:
                rhs, factors = [corrected], [Xt_dense * factor_weights[:, :1]]
            else:
                rhs = [corrected[:, column] for column in range(corrected.shape[1])]
                factors = [Xt_dense * factor_weights[:, [c]] for c in range(Y.shape[1])]

        normal = None
        if "_normal_gram" in self.__dict__:
            # Exact downdate of the stored normal equations (new arrays: copy on write).
            # (XᵀX of the removed rows is exactly symmetric, so the difference stays so.)
            weighted = Xt_dense if unit else Xt_dense * weights[:, None]
            gram = self._normal_gram - weighted.T @ Xt_dense
            normal = (gram, self._normal_rhs - weighted.T @ Y)
        # Ridge's exact step is checked (and repaired) against those normal equations.
        checked = normal is not None and self._step_is_exact()
        refactored = accuracy = None
        if self.leave_out:
            # One pass over each stored block for both the change and the step.
            try:
                change = self.curvature_.prepare_change(factors, sign=-1, rhs=rhs, n_samples=n_rows)
            except CurvatureError:
                if not checked:
                    raise
                change = None  # the downdate cannot represent it: refactor below
            solved = None if change is None else change.solutions
            # The Woodbury step's own residual check (``_refine_woodbury``): a solution whose
            # residual stays far above round-off after refinement is not committed.
            limit = self._woodbury_tolerance * np.sqrt(theta.shape[1]) * _UNIT_ROUNDOFF
            # (Curvatures solved by a fresh factorization, e.g. the GLMs', have no
            # low-rank residuals to check.)
            worst = 0.0 if change is None else max(getattr(change, "residuals", ()), default=0.0)
            if not checked and not worst <= limit:
                raise CurvatureError(
                    f"The erasure step lost accuracy in the low-rank update of the curvature "
                    f"(relative residual {worst:.3g} after refinement, tolerance {limit:.3g}): "
                    "the remaining samples barely determine some direction. Nothing was "
                    "changed; refit on the remaining data, or use damping > 0."
                )
        else:
            change = self.curvature_.prepare_change(factors, sign=-1, n_samples=n_rows)
            solved = self.curvature_.solve(rhs)
        if solved is None:
            direction = np.full_like(theta, np.nan)
        elif self._coupled:
            direction = self._coupled_direction(solved[0]) / (self.n_samples_ - k)
        else:
            direction = (solved[0].T if self._shared_block else np.vstack(solved)) / (
                self.n_samples_ - k
            )
        if checked:
            with np.errstate(invalid="ignore", over="ignore"):
                target = theta + direction
            target, refactored, accuracy = self._verified_solution(
                normal, target, change, self.n_samples_ - k
            )
            direction = target - theta
        if not np.all(np.isfinite(direction)):
            raise CurvatureError(
                "The erasure step is not finite; the curvature is ill-conditioned. Use "
                "damping > 0 or a stronger penalty, or refit."
            )
        label_counts = self._warn_single_class_labels(Y)
        return _Plan(
            direction,
            change,
            fingerprints,
            k,
            Xt=Xt_dense,
            Y=Y,
            gradients=gradients,
            erased_digests=matched,
            n_unmatched=len(missing),
            label_counts=label_counts,
            normal=normal,
            refactored=refactored,
            accuracy=accuracy,
            weights=weights,
            residual=residual,
        )

    def _lock(self):
        return _model_lock(self)

    def _committed(self):
        """The committed attributes (a dict that is never changed once published): read
        ``coef_`` and ``intercept_`` from one call to get a consistent pair."""
        return self.__dict__

    # ------------------------------------------------------------------ out-of-core fits
    @transactional
    def fit_streaming(self, chunks, *, max_iter=50, tol=1e-10, fingerprints=True):
        """Fit from row chunks, with memory independent of the number of rows.

        Runs as one transaction, like :meth:`fit`: under the model's lock, and on any
        failure the previously fitted model is left exactly as it was.

        Parameters
        ----------
        chunks : chunk source
            :func:`sklearn_ssse.curvature.iter_chunks` over arrays or memmaps, a
            :class:`sklearn_ssse._dask.DaskChunks`, a list of ``(X, Y)`` tuples, or a
            callable returning a fresh iterator of them. Ridge with
            ``curvature="hessian"`` also accepts a one-shot iterator (one pass).
        max_iter : int, default=50
            Maximum Newton passes (logistic regression).
        tol : float, default=1e-10
            Newton stops when every label's step changes the objective by less than
            ``tol·(1 + |objective|)`` (the Newton decrement).
        fingerprints : bool, default=True
            Fingerprint the rows for ``check_membership`` (24 bytes a row). Without them
            the model can only forget with ``check_membership=False``.

        Returns
        -------
        self

        Notes
        -----
        Passes over the data: ridge (Hessian curvature) 1; ridge (empirical Fisher) 2;
        logistic regression ``1 + n_iter + 1`` (scan, Newton, curvature). The result
        equals ``fit`` on the concatenated chunks to round-off for ridge; for logistic
        regression the parameters are the same optimum reached by Newton's method, so
        they agree to the solvers' tolerance.
        """
        from ._out_of_core import fit_from_chunks

        return fit_from_chunks(self, chunks, max_iter=max_iter, tol=tol, fingerprints=fingerprints)

    def fit_dask(self, X, Y, *, split_every=8, **params):
        """Fit on dask arrays, blockwise on the dask scheduler (see :meth:`fit_streaming`).

        Parameters
        ----------
        X : dask.array.Array of shape (n_samples, n_features)
        Y : dask.array.Array or ndarray of shape (n_samples,) or (n_samples, n_outputs)
        split_every : int, default=8
            Fan-in of the tree sum of per-block statistics.
        **params
            ``max_iter``, ``tol``, ``fingerprints`` of :meth:`fit_streaming`.

        Returns
        -------
        self
        """
        from ._dask import DaskChunks

        return self.fit_streaming(DaskChunks(X, Y, split_every=split_every), **params)

    @transactional
    def _curvature_pass(self, chunks, *, fingerprints=True):
        from ._out_of_core import rebuild_curvature

        return rebuild_curvature(self, chunks, fingerprints=fingerprints)

    def __getstate__(self):
        # Under the lock so that a model pickled while another thread forgets is either
        # before or after that request.
        with self._lock():
            state = dict(super().__getstate__())
        state.pop("_forget_lock", None)
        state["_sklearn_ssse_format"] = FORMAT_VERSION
        state["_sklearn_ssse_version"] = _package_version()
        return state

    def __setstate__(self, state):
        state = dict(state)
        stored = state.pop("_sklearn_ssse_format", _MISSING)
        version = state.pop("_sklearn_ssse_version", "unknown")
        state.pop("_forget_lock", None)  # locks are never part of the state
        name = type(self).__name__
        if stored is _MISSING:  # written before the marker existed: format 1 semantics
            stored = 1
        if isinstance(stored, (bool, np.bool_)) or not isinstance(stored, (int, np.integer)):
            raise ValueError(
                f"This {name} state has an invalid persistence format marker {stored!r} "
                f"({type(stored).__name__}, not an integer): the file is corrupt or was not "
                "written by sklearn_ssse. Refit the model."
            )
        if stored < 1:
            raise ValueError(
                f"This {name} state has an invalid persistence format marker {stored!r} "
                "(formats are numbered from 1): the file is corrupt or was not written by "
                "sklearn_ssse. Refit the model."
            )
        if stored > FORMAT_VERSION:
            raise ValueError(
                f"This {name} was saved by sklearn_ssse {version} in persistence format "
                f"{stored!r}; this installation (sklearn_ssse {_package_version()}) reads "
                f"formats up to {FORMAT_VERSION}. Upgrade sklearn_ssse to load it."
            )
        super().__setstate__(state)

    def forget_step(self, X_removed, y_removed, *, sample_weight=None):
        """Compute the unit (``ε = 1``) erasure step for these samples without applying it.

        The step of :meth:`forget` is ``eps`` times this one: the update is linear in ``ε``,
        which is what :func:`sklearn_ssse.model_selection.similarity_ratio_path` exploits.

        Parameters
        ----------
        X_removed : {array-like, sparse matrix} of shape (k, n_features)
        y_removed : array-like of shape (k,) or (k, n_outputs)
        sample_weight : array-like of shape (k,), default=None
            As in :meth:`forget`.

        Returns
        -------
        ForgetStep
        """
        with self._lock():
            plan = self._plan_forget(X_removed, y_removed, sample_weight)
        coef, intercept = self._split_theta(plan.direction)
        return ForgetStep(coef, intercept, plan.n_removed)

    def forget(
        self, X_removed, y_removed, eps=None, *, sample_weight=None, max_distance=None, bound=None
    ):
        """Erase training samples from the fitted model in one closed-form step.

        Applies, per curvature block, ``θ ← θ + ε/(n−k) · B⁻¹ · Σ_{i∈S} ∇ℓ_i(θ)`` and
        removes the samples' terms from the stored curvature, so that later requests see
        ``D∖S``. Each request appends an entry to :attr:`erasure_log_`.

        Parameters
        ----------
        X_removed : {array-like, sparse matrix} of shape (k, n_features)
            The samples to erase, exactly as they were given to ``fit``. Dense rows erase
            samples trained as sparse rows and vice versa (they are converted; the
            fingerprints hash the canonical dense values).
        y_removed : array-like of shape (k,) or (k, n_outputs)
            Their targets.
        eps : float, default=None
            Scale ``ε`` of the step; ``None`` uses the ``eps`` parameter.
        sample_weight : array-like of shape (k,), default=None
            The weights the samples were trained with. ``None``: each sample leaves with
            the weight stored with its fingerprint at fit time (the request is refused with
            :class:`~sklearn_ssse.AmbiguousWeightError` when the model holds copies of a
            sample with different weights). If given, each ``(sample, weight)`` must match a
            training sample still in the model; copies with different weights are distinct.
        max_distance : float, default=None
            Refuse the request (:class:`~sklearn_ssse.RefitRequired`, nothing changed) if
            its guaranteed bound on the distance ``‖θ̂ − θ₋S‖`` to the exact refit exceeds
            this (see ``doc/bounds.rst``); ``None`` accepts every request. Every request
            records the bound in :attr:`erasure_log_` (``distance_bound``).
        bound : {"fast", "tight"}, default=None
            How the recorded bound is computed. Both are guaranteed; ``"fast"`` bounds
            ``‖M'⁻¹‖`` by its trace (nearly free), ``"tight"`` spends a dense inverse and
            eigendecompositions per curvature block (blocks up to 400 parameters; about as
            much as the step itself on yeast) and is finite for larger requests. ``None``:
            ``"tight"`` when ``max_distance`` is given, else ``"fast"``.

        Returns
        -------
        self

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input (see the input catalogue in the documentation), samples that
            are not in the model, or a request that would leave no sample.
        CurvatureError
            If the curvature after the removal is singular or the step is not finite.
        RemovalBudgetError
            In certified mode, if the removal would exceed the ``(ε, δ)`` budget.
        RefitRequired
            If the request's distance bound exceeds ``max_distance``.

        Notes
        -----
        **Atomicity.** Everything the request changes (step, curvature change, fingerprints,
        log entry, certificate) is computed first, into new objects (the curvature change
        is applied to a copy that shares the unchanged arrays); the model then takes them
        in one ``__dict__`` update. The objects the model held are never modified, so on
        any error, including one injected after the curvature change, the model is
        exactly what it was.

        **Threads.** ``fit``, ``forget``, ``forget_step``, ``gradient_residual``,
        ``erasure_log_to_json`` and pickling hold a per-model re-entrant lock, so concurrent
        requests are serialized and each applies exactly once, against the state left by
        the previous one (a duplicate request from a second thread then fails the
        membership check). ``predict`` and other readers do not take it; a prediction made
        during a ``forget`` may use the old or the new parameters (``coef_`` and
        ``intercept_`` are replaced in the same update, but a reader may fetch one before
        and the other after it).
        """
        eps = self._validate_eps(eps)
        warn_if_fitted_in_pipeline(self)
        if max_distance is not None and not (
            isinstance(max_distance, (Real, np.number))
            and not isinstance(max_distance, (bool, np.bool_))
            and max_distance >= 0
        ):
            raise ValueError(f"max_distance must be a number >= 0 or None, got {max_distance!r}.")
        if bound not in (None, "fast", "tight"):
            raise ValueError(f"bound must be 'fast', 'tight' or None, got {bound!r}.")
        tight = bound == "tight" or (bound is None and max_distance is not None)
        with self._lock():
            plan = self._plan_forget(X_removed, y_removed, sample_weight)
            theta_now = self._get_theta()
            with np.errstate(over="ignore", invalid="ignore"):
                step = eps * plan.direction
                theta_new = theta_now + step
            if not (np.all(np.isfinite(theta_new)) and np.isfinite(np.linalg.norm(step))):
                raise ValueError(
                    f"The erasure step scaled by eps={eps!r} is not finite (its unit step has "
                    f"norm {np.linalg.norm(plan.direction):.4g}); nothing was changed. Use a "
                    "smaller eps."
                )
            # Copy on write: the change is applied to a shallow copy of the curvature (new
            # block records, shared arrays that are never written in place), so that the
            # objects the model holds now are never modified and a state taken by
            # ``__getstate__`` before this request stays consistent.
            if plan.refactored is not None:
                curvature = plan.refactored
            else:
                curvature = _copy_curvature(self.curvature_).apply(plan.change)
            accuracy = plan.accuracy  # of the unit step, which this one scales
            coef, intercept = self._split_theta(theta_new)
            new_state = {"coef_": coef, "intercept_": intercept}
            if plan.normal is not None:
                new_state["_normal_gram"], new_state["_normal_rhs"] = plan.normal
            certificate = self.__dict__.get("_certificate")
            entry = self._log_entry(plan, eps, float(np.linalg.norm(step)))
            entry.update(
                accuracy or {"normal_equation_residual": None, "accuracy_repair": "unchecked"}
            )
            bound_state, bound_fields = _bounds.plan_bounds(self, plan, step, eps, exact=tight)
            entry.update(bound_fields)
            bound = bound_fields["distance_bound"]
            if max_distance is not None and (bound is None or not bound <= max_distance):
                guarantee = (
                    "has no guaranteed bound"
                    if bound is None
                    else f"is guaranteed only to within {bound:.4g}"
                )
                raise _bounds.RefitRequired(
                    f"The distance of this erasure to the exact refit {guarantee}, above "
                    f"max_distance={max_distance:g}"
                    + (f" ({bound_fields['bound_note']})" if bound_fields["bound_note"] else "")
                    + ". Nothing was changed: refit on the remaining data or refine()."
                )
            new_state.update(bound_state)
            if certificate is not None:
                certificate = self._plan_certificate(certificate, plan, theta_now, step)
                entry["residual_bound_step"] = certificate.last_step
                entry["residual_bound_total"] = certificate.bound
                entry["budget_remaining"] = certificate.remaining
                new_state.update(
                    _certificate=certificate,
                    gradient_residual_bound_=certificate.bound,
                    removal_budget_remaining_=certificate.remaining,
                )
            new_state["curvature_"] = curvature
            if plan.fingerprints is not None:
                new_state["fingerprints_"] = plan.fingerprints
            new_state.update(
                n_samples_=self.n_samples_ - plan.n_removed,
                n_forgotten_=self.n_forgotten_ + plan.n_removed,
                erasure_log_=[*self.erasure_log_, entry],
            )
            if plan.label_counts is not None:
                new_state["_label_counts"] = plan.label_counts
            # Commit: one rebinding of the attribute dict, which cannot fail half-way.
            _commit(self, None, new_state)
        return self

    # ------------------------------------------------------------------ accuracy check
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

    # ------------------------------------------------------------------ exact refit
    @transactional
    def refine(self, X_remaining, y_remaining=None, *, tol=1e-10, max_iter=100):
        """Continue from the erased parameters to the exact refit, given the remaining data.

        Newton iterations on the objective of the samples still in the model, preconditioned
        by the stored (downdated) curvature, one pass over the data each, until the step is
        below ``tol·‖θ‖``; then one pass rebuilds the curvature, the Gram and the fit
        residual at the new point. The data must match the model's fingerprints exactly (the
        same multiset of samples). Records ``n_passes``, ``n_iter``, the gradient norms and
        the time in :attr:`erasure_log_` (an entry with ``action="refine"``).

        Parameters
        ----------
        X_remaining : {array-like, sparse matrix, chunk source}
            The samples not erased, shape (`n_samples_`, n_features), or a chunk source as
            taken by
            :func:`~sklearn_ssse.curvature.fit_streaming` (``y_remaining=None``).
        y_remaining : array-like, default=None
            Their targets (``None`` with a chunk source).
        tol : float, default=1e-10
            Relative size of the last step.
        max_iter : int, default=100

        Returns
        -------
        self
        """
        from ._refine import refine

        check_is_fitted(self, "curvature_")
        return refine(self, X_remaining, y_remaining, tol=tol, max_iter=max_iter)

    # ------------------------------------------------------------------ certified removal
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

    # ------------------------------------------------------------------ erasure record
    def _log_entry(self, plan, eps, step_norm):
        return {
            "index": len(self.erasure_log_) + 1,
            "time": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            "n_samples": int(plan.n_removed),
            "n_unmatched": int(plan.n_unmatched),
            "eps": float(eps),
            "curvature": self.curvature,
            "leave_out": bool(self.leave_out),
            "damping": float(self.damping),
            "step_norm": step_norm,
            "fingerprints": [digest.hex() for digest in plan.erased_digests],
            "n_forgotten_total": int(self.n_forgotten_ + plan.n_removed),
            "n_samples_remaining": int(self.n_samples_ - plan.n_removed),
        }

    def _erased_digests(self):
        log = getattr(self, "erasure_log_", [])
        hexes = [h for entry in log for h in entry["fingerprints"]]
        return np.array([bytes.fromhex(h) for h in hexes], dtype="S16")

    def was_erased(self, X, y):
        """Whether each sample was erased by a :meth:`forget` of this fit.

        Samples are matched by fingerprint (features and targets, as given to ``forget``).
        A sample trained on several times counts as erased once any copy was erased.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        ndarray of bool of shape (n_samples,)
        """
        X, Y = self._validate_removed(X, y, what="X")
        return np.isin(row_fingerprints(X, Y), self._erased_digests())

    def erasure_log_to_json(self, path=None, *, indent=2):
        """The erasure record as JSON: one entry per :meth:`forget`, fingerprints not data.

        Parameters
        ----------
        path : str or path-like, default=None
            Also write the JSON to this file.
        indent : int, default=2

        Returns
        -------
        str
        """
        check_is_fitted(self, "curvature_")
        with self._lock():
            counts = int(self.n_samples_), int(self.n_forgotten_)
            entries = self.erasure_log_
        record = {
            "format": "sklearn_ssse.erasure_log",
            "format_version": 1,
            "package_version": _package_version(),
            "estimator": type(self).__name__,
            "fingerprint": "blake2b-128 of the float64 feature row followed by the encoded "
            "targets (dense, -0.0 as 0.0)",
            "certified": bool(self.certified),
            "n_samples_remaining": counts[0],
            "n_forgotten": counts[1],
            "entries": entries,
        }
        try:
            # Strict JSON: NaN and infinity are not JSON (forget refuses non-finite steps, so
            # a record holding one was not written by this release).
            text = json.dumps(record, indent=indent, allow_nan=False)
        except ValueError as error:
            raise ValueError(
                f"The erasure record contains a non-finite number and cannot be written as "
                f"strict JSON: {error}."
            ) from error
        if path is not None:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        return text


def _is_ragged(value):
    """Whether a nested list has rows of different lengths (numpy would refuse it with its
    own wording)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        return False
    lengths = {len(row) if isinstance(row, (list, tuple, np.ndarray)) else -1 for row in value}
    return len(lengths) > 1


def _contains_none(y):
    if y is None:
        return True
    if isinstance(y, np.ndarray):
        return y.dtype.kind == "O" and any(v is None for v in y.ravel())
    if isinstance(y, (list, tuple)):
        return any(
            v is None or (isinstance(v, (list, tuple)) and any(w is None for w in v)) for v in y
        )
    return False


def _same_setting(a, b):
    """Settings compared by their exact value in float64 and by kind: ``np.float32(0.1)``
    is not ``0.1`` (numpy alone compares a float32 with a Python float in float32, where
    they are equal), ``True`` is not ``1``, and strings compare as strings."""
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        return isinstance(a, (bool, np.bool_)) and isinstance(b, (bool, np.bool_)) and a == b
    if isinstance(a, (Real, np.number)) and isinstance(b, (Real, np.number)):
        return bool(np.float64(a) == np.float64(b))
    return type(a) is type(b) and a == b


def _check_removed_weights(sample_weight, k):
    """A removal request's ``sample_weight``: ``k`` finite positive numbers."""
    if isinstance(sample_weight, (Real, np.number)) and not isinstance(sample_weight, bool):
        sample_weight = np.full(k, float(sample_weight))
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"sample_weight must be numeric: {error}") from error
    if weights.shape != (k,):
        raise ValueError(f"sample_weight must have shape ({k},), got {weights.shape}.")
    if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        raise ValueError("sample_weight must be finite and > 0 for every removed sample.")
    return weights + 0.0


def _copy_curvature(curvature):
    """A copy of a BlockFisherInverse that shares its arrays but not its block records.

    ``BlockFisherInverse.apply`` only rebinds the attributes of the blocks (and of the
    inverse itself) to new arrays; applied to this copy it leaves the original untouched.
    """
    new = copy.copy(curvature)
    new.blocks_ = [copy.copy(blk) for blk in curvature.blocks_]
    return new


def _scaled_one_norm(G):
    """1-norm of the equilibrated ``D^{-1/2} G D^{-1/2}`` (``D = diag G``) and ``sqrt(D)``."""
    root = np.sqrt(np.abs(np.diag(G)).astype(np.float64))
    inverse_root = 1.0 / np.where(root > 0, root, 1.0)
    # Column sums of |S| without forming S: Σ_i |G_ij|/(r_i r_j) = ((|G|ᵀ r⁻¹) ⊙ r⁻¹)_j.
    column_sums = (np.abs(G).T @ inverse_root.astype(G.dtype)) * inverse_root
    return float(column_sums.max()), root


def _recording_norms(grams, norms):
    """Pass ``grams`` on unchanged (a list stays a list), recording each one's equilibrated
    1-norm and diagonal scale (before ``fit_gram`` factors it in place)."""
    if isinstance(grams, (list, tuple)):
        norms.extend(_scaled_one_norm(G) for G in grams)
        return grams

    def generate():
        for G in grams:
            norms.append(_scaled_one_norm(G))
            yield G

    return generate()


def _check_conditioning(curvature, norms, dtype):
    """Refuse numerically singular undamped blocks.

    A Cholesky factor exists for some matrices that are singular to working precision;
    their inverse would turn round-off into arbitrarily large erasure steps. The test is
    on the equilibrated matrix ``S = D^{-1/2} M D^{-1/2}`` (``D = diag M``): a badly scaled
    but well-posed problem (a feature in other units) is solved as accurately as its
    scaled twin by Cholesky, so only ``cond₁(S) = ‖S‖₁‖S⁻¹‖₁`` (exact: ``M⁻¹`` is stored)
    with ``cond₁(S)·u >= 1/2`` (``u`` the unit round-off of the curvature's dtype) is
    refused.
    """
    m = curvature.n_samples_
    for b, (blk, (norm, root)) in enumerate(zip(curvature.blocks_, norms)):
        if blk.inverse is None:
            # Damped: B = QΛQᵀ/m + λI from an eigendecomposition (computed in float64 for
            # either storage), whose small eigenvalues carry an absolute error of about
            # u₆₄·λ_max (it is not invariant to a rescaling of the features, unlike
            # Cholesky). The shift λ bounds cond(B); refuse when it does not bound it
            # enough. Storing Q in float32 adds a relative u₃₂ to B⁻¹ whatever cond(B).
            eigvals = np.asarray(blk.eigvals, dtype=np.float64)
            shift = curvature.damping
            condition = (eigvals[-1] / m + shift) / (max(eigvals[0], 0.0) / m + shift)
            if not condition < 0.5 / np.finfo(np.float64).eps:
                raise CurvatureError(
                    f"Curvature block {b} is too ill-conditioned for {np.dtype(dtype).name} "
                    f"with damping={shift:g} (condition number {condition:.3g}); use "
                    "float64 curvature, a larger damping, or standardize the features."
                )
            continue
        # ‖S⁻¹‖₁ with S⁻¹ = D^{1/2} M⁻¹ D^{1/2}: column sums ((|M⁻¹|ᵀ r) ⊙ r)_j, over row
        # panels so that |M⁻¹| is never formed whole (a block can be gigabytes).
        inverse, r = blk.inverse, root.astype(blk.inverse.dtype)
        column_sums = np.zeros(inverse.shape[1], dtype=inverse.dtype)
        for start in range(0, inverse.shape[0], 512):
            stop = start + 512
            column_sums += np.abs(inverse[start:stop]).T @ r[start:stop]
        condition = norm * float((column_sums * root).max())
        # Refuse when cond·u >= 1/2: the solve could not promise even a leading digit. (The
        # classical 1/(d·u) is a worst-case bound far above the realized error of a Cholesky
        # solve; it would refuse float32 blocks of a few thousand features that solve to
        # about 1e-5, as the benchmarks measure against float64.)
        if not condition < 0.5 / np.finfo(dtype).eps:
            raise CurvatureError(
                f"Curvature block {b} is numerically singular (condition number "
                f"{condition:.3g} after scaling); use damping > 0, a stronger penalty, "
                "float64 curvature, or remove collinear features."
            )


def _package_version():
    from . import __version__

    return __version__
