"""The similarity-ratio curve over a grid of ε from one curvature solve."""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .._pipeline import check_erasable_pipeline
from ..metrics._similarity import (
    _check_n_features,
    _check_X_Y,
    _per_label_auc,
    _ranking_scores,
    _resolve_targets,
)

__all__ = ["similarity_ratio_path"]


class _FixedScores:
    """Stands in for a model whose raw scores on the removed samples are known."""

    def __init__(self, raw, classes):
        self._raw = raw
        if classes is not None:
            self.classes_ = classes

    def decision_function(self, X):
        return self._raw


def _last_step(estimator):
    if isinstance(estimator, Pipeline):
        # The same refusal as sklearn_ssse.forget: a step with learned state cannot be erased.
        check_erasable_pipeline(estimator)
        return estimator[:-1], estimator[-1]
    return None, estimator


def similarity_ratio_path(estimator, X_removed, Y_removed, retrained, eps_values):
    """Similarity ratio ``γ_S`` (paper Eq. 5) of the erasure step for every ``ε`` of a grid.

    The erased parameters are ``θ* + ε·Δ`` with ``Δ`` the unit step, and a linear model's
    scores are linear in its parameters, so one curvature solve (:meth:`forget_step`) gives
    the scores, hence ``γ``, for the whole grid. The fitted ``estimator`` is not modified.
    The result equals running ``forget(X_removed, Y_removed, eps)`` on a copy for each
    ``eps`` and scoring with :func:`sklearn_ssse.metrics.similarity_ratio`, which is what a
    ``GridSearchCV`` over :class:`SampleEraser` does at a fraction of the cost.

    Parameters
    ----------
    estimator : estimator
        A fitted unlearnable classifier, or a fitted Pipeline ending in one.
    X_removed : {array-like, sparse matrix} of shape (k, n_features)
    Y_removed : array-like of shape (k,) or (k, n_labels)
    retrained : estimator
        The gold standard fitted without the removed samples.
    eps_values : array-like of shape (n_eps,)
        Non-negative step scales.

    Returns
    -------
    gammas : ndarray of shape (n_eps,)
    best_eps : float
        The first ``eps`` with the highest ``γ`` (ties go to the smallest step, as
        ``GridSearchCV`` picks the first best candidate of an increasing grid).
    """
    eps_values = np.asarray(eps_values, dtype=np.float64).ravel()
    if eps_values.size == 0 or not np.all(np.isfinite(eps_values)) or np.any(eps_values < 0):
        raise ValueError("eps_values must be a non-empty array of finite numbers >= 0.")
    check_is_fitted(estimator)
    preprocess, model = _last_step(estimator)
    X, Y = _check_X_Y(X_removed, Y_removed, x_name="X_removed", y_name="Y_removed")
    problem, labels, indicator = _resolve_targets(estimator, Y, y_name="Y_removed")
    n_positive = indicator.sum(axis=0)
    valid = (n_positive > 0) & (n_positive < indicator.shape[0])

    auc_original = _per_label_auc(
        indicator, _ranking_scores(estimator, X, problem, labels, "original"), valid
    )
    _check_n_features(retrained, X, "retrained", "X_removed")
    auc_retrained = _per_label_auc(
        indicator, _ranking_scores(retrained, X, problem, labels, "retrained"), valid
    )

    Xt = X if preprocess is None else preprocess.transform(X)
    step = model.forget_step(Xt, Y_removed)
    base = np.asarray(model.decision_function(Xt))
    coef = np.atleast_2d(step.coef)
    delta = np.asarray(Xt @ coef.T) + np.reshape(step.intercept, (1, -1))
    delta = delta.reshape(base.shape)
    classes = getattr(model, "classes_", None)

    # One ranking of every ε's scores at once: the AUCs of the whole path in one pass.
    scores = np.stack(
        [
            _ranking_scores(_FixedScores(base + eps * delta, classes), X, problem, labels, "erased")
            for eps in eps_values
        ],
        axis=-1,
    )
    auc = _per_label_auc(indicator, scores, valid)
    to_original = np.abs(auc - auc_original[:, None]).sum(axis=0)
    to_retrained = np.abs(auc - auc_retrained[:, None]).sum(axis=0)
    total = to_original + to_retrained
    with np.errstate(invalid="ignore", divide="ignore"):
        gammas = np.where(total == 0, 0.5, to_original / np.where(total == 0, 1.0, total))
    return gammas, float(eps_values[int(np.argmax(gammas))])
