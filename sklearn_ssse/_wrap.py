"""Make an estimator already fitted by scikit-learn erasable, without refitting it.

:func:`make_unlearnable` reads the fitted coefficients and hyper-parameters, makes one pass
over the training data to build the curvature at those coefficients and the samples'
fingerprints (with their weights), and returns the matching unlearnable estimator.

The erasure step assumes the coefficients minimize the training objective. A fit stopped
at a loose tolerance (scikit-learn's default ``tol=1e-4``) leaves a gradient ``g`` of the
full objective; to first order the coefficients are then ``δ = H⁻¹g`` away from the
optimum, and every later step inherits that offset. :func:`make_unlearnable` measures
``‖g‖`` and ``‖δ‖`` and compares ``‖δ‖`` with the typical erasure step of one sample,
``median_i ‖H⁻¹ w_i∇ℓ_i‖`` (over the samples with a non-zero gradient): when the offset
exceeds a tenth of it a warning gives both figures (refit with a tighter ``tol``, or
accept the offset).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.linear_model import (
    GammaRegressor,
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
    SGDRegressor,
    TweedieRegressor,
)
from sklearn.svm import LinearSVC
from sklearn.utils.validation import _num_samples, check_is_fitted, validate_data

from ._loss import augment
from ._weights import fit_sample_weight

__all__ = ["NotOptimalWarning", "make_unlearnable"]

_LOGISTIC_SOLVERS = {"lbfgs", "newton-cg", "newton-cholesky", "sag", "saga"}


class NotOptimalWarning(UserWarning):
    """The wrapped coefficients are measurably away from the training objective's optimum."""


def _logistic_params(est, n_classes):
    from .linear_model import UnlearnableLogisticRegression

    params = est.get_params()
    penalty = params.get("penalty", "l2")
    l1_ratio = params.get("l1_ratio")
    if penalty not in ("l2", "deprecated") or l1_ratio not in (None, 0, 0.0):
        raise ValueError(
            f"make_unlearnable supports L2-penalized LogisticRegression only (penalty="
            f"{penalty!r}, l1_ratio={l1_ratio!r})."
        )
    if not np.isfinite(est.C):
        raise ValueError("make_unlearnable needs a finite C (an L2 penalty).")
    multi_class = "multinomial"
    if n_classes > 2 and est.coef_.shape[0] == n_classes:
        # scikit-learn 1.6 may still fit one-vs-rest through its multi_class parameter.
        if params.get("multi_class") == "ovr" or est.solver == "liblinear":
            multi_class = "ovr"
    if est.solver == "liblinear":
        raise ValueError(
            "liblinear penalizes the intercept (intercept_scaling), which is a different "
            "objective; make_unlearnable supports the lbfgs, newton-cg, newton-cholesky, sag "
            "and saga solvers."
        )
    return UnlearnableLogisticRegression(
        C=float(est.C),
        fit_intercept=bool(est.fit_intercept),
        solver=est.solver if est.solver in _LOGISTIC_SOLVERS else "lbfgs",
        tol=float(est.tol),
        max_iter=int(est.max_iter),
        multi_class=multi_class,
        class_weight=est.class_weight,
    )


def _ridge_params(est, classifier):
    from .linear_model import UnlearnableRidge, UnlearnableRidgeClassifier

    alpha = np.asarray(est.alpha, dtype=np.float64)
    if alpha.ndim:
        raise ValueError("make_unlearnable needs a scalar alpha (one penalty for all targets).")
    if getattr(est, "positive", False):
        raise ValueError("make_unlearnable does not support positive=True (a constrained fit).")
    options = dict(alpha=float(alpha), fit_intercept=bool(est.fit_intercept))
    if classifier:
        return UnlearnableRidgeClassifier(class_weight=est.class_weight, **options)
    return UnlearnableRidge(**options)


def _glm_params(est):
    from .linear_model import (
        UnlearnableGammaRegressor,
        UnlearnablePoissonRegressor,
        UnlearnableTweedieRegressor,
    )

    options = dict(
        alpha=float(est.alpha),
        fit_intercept=bool(est.fit_intercept),
        solver=est.solver if est.solver in ("lbfgs", "newton-cholesky") else "lbfgs",
        max_iter=int(est.max_iter),
        tol=float(est.tol),
    )
    if isinstance(est, PoissonRegressor):
        return UnlearnablePoissonRegressor(**options)
    if isinstance(est, GammaRegressor):
        return UnlearnableGammaRegressor(**options)
    return UnlearnableTweedieRegressor(power=float(est.power), link=est.link, **options)


def _svc_params(est):
    from .linear_model import UnlearnableLinearSVC

    if est.loss != "squared_hinge" or est.penalty != "l2" or est.multi_class != "ovr":
        raise ValueError(
            "make_unlearnable supports LinearSVC(loss='squared_hinge', penalty='l2', "
            f"multi_class='ovr') only (got loss={est.loss!r}, penalty={est.penalty!r}, "
            f"multi_class={est.multi_class!r}): the hinge loss has no curvature and the L1 "
            "penalty no Newton step."
        )
    return UnlearnableLinearSVC(
        C=float(est.C),
        fit_intercept=bool(est.fit_intercept),
        intercept_scaling=float(est.intercept_scaling),
        class_weight=est.class_weight,
        tol=float(est.tol),
        max_iter=int(est.max_iter),
    )


def _sgd_params(est, n_samples):
    """SGD's objective ``(1/n)·Σ s_i·L_i + (α/2)·‖w‖²`` (intercept not penalized) times
    ``n``: logistic regression with ``C = 1/(n·α)`` (log loss) or ridge with
    ``alpha = n·α`` (``squared_error`` is ``½r²``; ridge's ``Σr² + α‖w‖²`` halved)."""
    from .linear_model import UnlearnableLogisticRegression, UnlearnableRidge

    expected = "log_loss" if isinstance(est, SGDClassifier) else "squared_error"
    if est.penalty != "l2" or est.loss != expected or not est.alpha > 0:
        raise ValueError(
            f"make_unlearnable supports {type(est).__name__}(loss={expected!r}, penalty='l2', "
            f"alpha > 0) only (got loss={est.loss!r}, penalty={est.penalty!r}, "
            f"alpha={est.alpha!r}): other losses are not smooth, other penalties have no "
            "Newton step."
        )
    if isinstance(est, SGDClassifier):
        return UnlearnableLogisticRegression(
            C=1.0 / (n_samples * float(est.alpha)),
            fit_intercept=bool(est.fit_intercept),
            multi_class="ovr",
            class_weight=est.class_weight,
        )
    return UnlearnableRidge(
        alpha=n_samples * float(est.alpha), fit_intercept=bool(est.fit_intercept)
    )


def make_unlearnable(fitted_estimator, X, y, sample_weight=None, **params):
    """Return an unlearnable estimator with the coefficients of a fitted scikit-learn one.

    Parameters
    ----------
    fitted_estimator : scikit-learn estimator
        Fitted on ``(X, y, sample_weight)`` by scikit-learn: ``LogisticRegression``,
        ``Ridge``, ``RidgeClassifier``, ``PoissonRegressor``, ``GammaRegressor``,
        ``TweedieRegressor``, ``LinearSVC`` (squared hinge, L2), ``SGDClassifier``
        (``loss="log_loss"``) or ``SGDRegressor`` (``loss="squared_error"``), with an L2
        penalty (for logistic regression, a solver other than liblinear, whose penalized
        intercept is another objective). SGD's objective
        ``(1/n)·Σ s_i·L_i + (α/2)·‖w‖²`` is that of ``UnlearnableLogisticRegression(C=1/(n·α),
        multi_class="ovr")`` or ``UnlearnableRidge(alpha=n·α)`` (``n`` the number of training
        samples); SGD stops far from that optimum, which the warning below measures.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The training data it was fitted on.
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
    sample_weight : array-like of shape (n_samples,), default=None
        The sample weights of that fit (class weights are read from the estimator).
    **params
        Parameters of the returned estimator that have no scikit-learn counterpart
        (``curvature``, ``leave_out``, ``damping``, ``eps``, ``check_membership``,
        ``curvature_dtype``, ``n_jobs``).

    Returns
    -------
    estimator : the matching unlearnable estimator
        Fitted: the same ``coef_`` and ``intercept_``, the curvature built at them, and the
        fingerprints of ``(X, y)``. The attribute ``wrapped_gradient_norm_`` is the norm
        of the training objective's gradient at the given coefficients (objective divided
        by ``C``, i.e. ``Σ w_iℓ_i + ½θᵀPθ``) and ``wrapped_offset_`` the Newton estimate
        ``‖H⁻¹g‖`` of their distance to the optimum.

    Warns
    -----
    NotOptimalWarning
        When ``wrapped_offset_`` exceeds a tenth of the median one-sample erasure step.
    """
    check_is_fitted(fitted_estimator)
    if isinstance(fitted_estimator, (PoissonRegressor, GammaRegressor, TweedieRegressor)):
        kind = "glm"
    elif isinstance(fitted_estimator, LinearSVC):
        kind = "svc"
    elif isinstance(fitted_estimator, SGDClassifier):
        kind = "sgd_classifier"
    elif isinstance(fitted_estimator, SGDRegressor):
        kind = "sgd_regressor"
    elif isinstance(fitted_estimator, LogisticRegression):
        kind = "logistic"
    elif isinstance(fitted_estimator, RidgeClassifier):
        kind = "ridge_classifier"
    elif isinstance(fitted_estimator, Ridge):
        kind = "ridge"
    else:
        raise TypeError(
            "make_unlearnable supports fitted LogisticRegression, Ridge, RidgeClassifier, "
            "PoissonRegressor, GammaRegressor, TweedieRegressor, LinearSVC, SGDClassifier and "
            f"SGDRegressor, got {type(fitted_estimator).__name__}."
        )
    if kind == "glm":
        model = _glm_params(fitted_estimator)
    elif kind == "svc":
        model = _svc_params(fitted_estimator)
    elif kind.startswith("sgd"):
        model = _sgd_params(fitted_estimator, _num_samples(X))
        kind = "logistic_ovr" if kind == "sgd_classifier" else "ridge"
    elif kind == "logistic":
        model = _logistic_params(fitted_estimator, len(fitted_estimator.classes_))
    else:
        model = _ridge_params(fitted_estimator, kind == "ridge_classifier")
    model.set_params(**params)
    model._validate_params()
    if getattr(model, "certified", False):
        raise ValueError("make_unlearnable cannot wrap a certified model (its noise is secret).")

    X, y = validate_data(
        model, X, y, accept_sparse="csr", dtype=np.float64, multi_output=True, y_numeric=False
    )
    if X.shape[1] != fitted_estimator.coef_.shape[-1]:
        raise ValueError(
            f"X has {X.shape[1]} features but the estimator was fitted with "
            f"{fitted_estimator.coef_.shape[-1]}."
        )
    if kind in ("logistic", "logistic_ovr"):
        Y = model._encode_fit_targets(y, softmax=kind == "logistic")
        if not np.array_equal(model.classes_, fitted_estimator.classes_):
            raise ValueError("y has other classes than the estimator was fitted with.")
        weights = fit_sample_weight(
            model, X, y, sample_weight, class_weight=model.class_weight, classes=model.classes_
        )
        n_iter = np.asarray(fitted_estimator.n_iter_).ravel().astype(np.int32)
        model.n_iter_ = np.resize(n_iter, Y.shape[1]) if kind == "logistic_ovr" else n_iter
    elif kind == "svc":
        Y = model._encode_fit_targets(y)
        if not np.array_equal(model.classes_, fitted_estimator.classes_):
            raise ValueError("y has other classes than the estimator was fitted with.")
        weights = fit_sample_weight(
            model, X, y, sample_weight, class_weight=model.class_weight, classes=model.classes_
        )
        model.n_iter_ = int(fitted_estimator.n_iter_)
    elif kind == "glm":
        y = np.asarray(y, dtype=np.float64)
        model._check_targets(y, "y")
        Y = model._encode_fit_targets(y)
        weights = fit_sample_weight(model, X, y, sample_weight)
        model.n_iter_ = int(fitted_estimator.n_iter_)
    elif kind == "ridge_classifier":
        Y = model._encode_fit_targets(y)
        if not np.array_equal(model.classes_, fitted_estimator.classes_):
            raise ValueError("y has other classes than the estimator was fitted with.")
        weights = fit_sample_weight(
            model,
            X,
            y,
            sample_weight,
            class_weight=model.class_weight,
            classes=model.classes_,
            balance_by_weight=False,
        )
    else:
        y = np.asarray(y, dtype=np.float64)
        Y = model._encode_fit_targets(y)
        weights = fit_sample_weight(model, X, y, sample_weight)
    coef = np.array(fitted_estimator.coef_, dtype=np.float64)
    intercept = np.array(fitted_estimator.intercept_, dtype=np.float64)
    if kind == "ridge" and intercept.ndim == 1 and intercept.shape == (1,) and coef.ndim == 1:
        intercept = intercept[0]  # SGDRegressor keeps a (1,) intercept_
    if kind in ("ridge", "glm"):
        model.coef_, model.intercept_ = (
            coef,
            (float(intercept) if intercept.ndim == 0 else intercept),
        )
    else:
        coef = np.atleast_2d(coef)
        theta = coef
        if model.fit_intercept:
            theta = np.hstack([coef, np.reshape(intercept, (-1, 1))])
        # The estimator's own shapes (a binary RidgeClassifier's 1-D coef_, for example).
        model.coef_, model.intercept_ = model._split_theta(theta)
    if Y.shape[1] != np.atleast_2d(model.coef_).shape[0]:
        raise ValueError("y does not match the fitted estimator's outputs.")
    model._finish_fit(X, Y, sample_weight=weights)
    _measure_optimality(model, X, Y, weights)
    return model


def _newton_offset_norms(model, G):
    """``‖H⁻¹ g_j‖`` (H the stored curvature, not mean-normalized) for a stack of gradients
    ``G`` of shape (r, L, d̃), one solve over all of them."""
    r, L, d = G.shape
    if model._coupled:
        v = model._null_direction()
        flat = G.reshape(r, L * d)
        if v is not None:
            flat = flat - np.outer(flat @ v, v)
        rhs = [flat.T]
    elif model._shared_block:
        rhs = [G.transpose(2, 0, 1).reshape(d, r * L)]
    else:
        rhs = [G[:, label, :].T for label in range(L)]
    solved = model.curvature_.solve(rhs)
    squares = np.zeros(r)
    for s in solved:
        s = np.asarray(s).reshape(s.shape[0], -1) / model.n_samples_
        if model._shared_block:
            s = s.reshape(d, r, L)
            squares += np.sum(np.square(s), axis=(0, 2))
        else:
            squares += np.sum(np.square(s), axis=0)
    return np.sqrt(squares)


def _measure_optimality(model, X, Y, weights, n_probe=256):
    theta = model._get_theta()
    Xt = augment(X, model.fit_intercept)
    R = model._loss.gradient(np.asarray(Xt @ theta.T), Y)
    if weights is not None:
        R = R * weights[:, None]
    G = np.asarray(Xt.T @ R).T + theta * model._penalty_vector()  # (L, d̃)
    if model._coupled:
        G = model._project(G.ravel()).reshape(G.shape)
    gradient_norm = float(np.linalg.norm(G))
    offset = float(_newton_offset_norms(model, G[None])[0])
    # Typical one-sample step: ‖H⁻¹ w_i∇ℓ_i‖ over up to n_probe evenly spaced samples.
    rows = np.unique(np.linspace(0, X.shape[0] - 1, min(n_probe, X.shape[0])).astype(int))
    Xp = Xt[rows]
    Xp = Xp.toarray() if hasattr(Xp, "toarray") else np.asarray(Xp)
    steps = _newton_offset_norms(model, R[rows][:, :, None] * Xp[:, None, :])
    # Over the samples that move the model at all (a squared-hinge SVM's samples outside the
    # margin have no gradient and no step).
    moving = steps[steps > 0]
    scale = float(np.median(moving)) if moving.size else 0.0
    model.wrapped_gradient_norm_ = gradient_norm
    model.wrapped_offset_ = offset
    if offset > 0.1 * scale:
        warnings.warn(
            f"The given coefficients are not at the optimum of the training objective: its "
            f"gradient norm is {gradient_norm:.3g}, a Newton offset of {offset:.3g} from the "
            f"optimum, against a median one-sample erasure step of {scale:.3g}. Every "
            "erasure step inherits this offset; refit with a tighter tol for exact steps.",
            NotOptimalWarning,
            stacklevel=3,
        )
