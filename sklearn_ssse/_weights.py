"""Sample and class weights of a fit, fixed at fit time and stored with the fingerprints.

Every estimator's objective weights sample ``i``'s loss by ``w_i = sample_weight_i ·
class_weight[y_i]``. The weight is computed once, by :func:`fit_sample_weight`, and stored
with the sample's fingerprint (:class:`~sklearn_ssse._fingerprint.FingerprintMultiset`):
``forget`` removes the sample's term ``w_i ℓ_i`` (gradient ``w_i ∇ℓ_i``, curvature
``w_i ∇²ℓ_i``) with the weight it was trained with. ``class_weight="balanced"`` is therefore
the balance of the training data at fit time; erasing samples does not rebalance.
"""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import _check_sample_weight

__all__ = ["fit_sample_weight"]

# scikit-learn >= 1.8 balances class weights by the sample weights' sums; 1.6 by counts.
_CLASS_WEIGHT_TAKES_SAMPLE_WEIGHT = (
    "sample_weight" in inspect.signature(compute_class_weight).parameters
)


def fit_sample_weight(
    estimator,
    X,
    y,
    sample_weight,
    *,
    class_weight=None,
    classes=None,
    balance_by_weight=True,
):
    """Each sample's final weight (float64, shape (n,)), or ``None`` when all are 1.

    Parameters
    ----------
    estimator : estimator
        For error messages.
    X : array-like or sparse matrix of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Class labels (for ``class_weight``).
    sample_weight : array-like of shape (n_samples,) or float or None
    class_weight : dict, "balanced" or None
    classes : ndarray, default=None
        The classes of ``y`` (``None``: a regressor or a multi-label target, where
        ``class_weight`` is refused).
    balance_by_weight : bool, default=True
        ``"balanced"`` counts the sample weights where the installed scikit-learn's
        ``compute_class_weight`` does (``LogisticRegression``); ``False`` counts samples
        (``RidgeClassifier``, through ``compute_sample_weight``).
    """
    if sample_weight is None and class_weight is None:
        return None
    weights = None
    if sample_weight is not None:
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(
                f"{type(estimator).__name__} needs finite, non-negative sample weights."
            )
        if not np.any(weights > 0):
            raise ValueError("All sample weights are zero: there is nothing to fit.")
    if weights is not None and classes is not None and np.ndim(y) == 1:
        totals = np.bincount(np.searchsorted(classes, y), weights=weights, minlength=len(classes))
        if np.any(totals <= 0):
            empty = [classes[j].item() for j in np.flatnonzero(totals <= 0)][:10]
            raise ValueError(
                f"Class(es) {empty} have zero total sample weight; the classifier needs "
                "samples of at least 2 classes with positive weight, and every class of y "
                "to carry weight."
            )
    if class_weight is not None:
        if classes is None:
            raise ValueError(
                "class_weight is only supported for single-output classification targets."
            )
        y = np.asarray(y)
        options = {"classes": classes, "y": y}
        if _CLASS_WEIGHT_TAKES_SAMPLE_WEIGHT and balance_by_weight:
            options["sample_weight"] = weights
        per_class = compute_class_weight(class_weight, **options)
        per_sample = per_class[np.searchsorted(classes, y)]
        weights = per_sample if weights is None else weights * per_sample
    weights = np.asarray(weights, dtype=np.float64) + 0.0
    return None if np.all(weights == 1.0) else weights
