"""Ridge classification (scikit-learn's ``RidgeClassifier``) that can forget exactly."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .._base import transactional
from .._weights import fit_sample_weight
from ._ridge import UnlearnableRidge

__all__ = ["UnlearnableRidgeClassifier"]


class UnlearnableRidgeClassifier(ClassifierMixin, UnlearnableRidge):
    """Ridge classifier that can erase training samples exactly with :meth:`forget`.

    As scikit-learn's :class:`~sklearn.linear_model.RidgeClassifier`: the classes are
    encoded as ``±1`` targets (one column for a binary target, one per class otherwise)
    and fitted by ridge regression, ``Σ_i w_i‖y_i − W x_i − b‖² + α‖W‖²``; the prediction is
    the sign (binary) or the arg-max of the scores. The curvature is one block
    ``X̃ᵀWX̃ + αI`` shared by all columns and, the loss being quadratic, ``forget`` equals
    the refit on the remaining samples to round-off.

    Parameters
    ----------
    alpha : float, default=1.0
    fit_intercept : bool, default=True
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplying the sample weights. ``"balanced"``
        (``n / (n_classes · bincount(y))``, sample counts as in scikit-learn) is computed
        once at fit time and stored with each sample's fingerprint; ``forget`` does not
        rebalance.
    curvature, leave_out, damping, eps, check_membership, curvature_dtype, n_jobs
        As in :class:`UnlearnableRidge`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_features,) or (n_classes, n_features)
        1-D for a binary target, as scikit-learn's ``RidgeClassifier``.
    intercept_ : ndarray of shape (1,) or (n_classes,)
    curvature_ : BlockFisherInverse
    n_samples_ : int
    n_forgotten_ : int
    fingerprints_ : FingerprintMultiset
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
    erasure_log_ : list of dict

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import RidgeClassifier
    >>> import numpy as np
    >>> from sklearn_ssse import UnlearnableRidgeClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> erased = UnlearnableRidgeClassifier(alpha=1.0).fit(X, y).forget(X[:10], y[:10])
    >>> refit = RidgeClassifier(alpha=1.0, solver="cholesky").fit(X[10:], y[10:])
    >>> bool(np.allclose(erased.coef_, refit.coef_, rtol=1e-8))
    True
    """

    _parameter_constraints: dict = {
        **{
            name: rule
            for name, rule in UnlearnableRidge._parameter_constraints.items()
            if name not in ("certified", "certified_epsilon", "certified_delta", "noise_sigma")
            and name != "random_state"
        },
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    _settings_fixed_at_fit = (*UnlearnableRidge._settings_fixed_at_fit, "class_weight")

    # Not certified: the certificate's bookkeeping is per regression target.
    certified = False

    def __init__(
        self,
        alpha=1.0,
        *,
        fit_intercept=True,
        class_weight=None,
        curvature="hessian",
        leave_out=True,
        damping=0.0,
        eps=1.0,
        check_membership=True,
        curvature_dtype="float64",
        n_jobs=None,
    ):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.curvature = curvature
        self.leave_out = leave_out
        self.damping = damping
        self.eps = eps
        self.check_membership = check_membership
        self.curvature_dtype = curvature_dtype
        self.n_jobs = n_jobs

    def _encode(self, y):
        Y = (y[:, None] == self.classes_[None, :]).astype(np.float64) * 2.0 - 1.0
        return Y[:, 1:] if len(self.classes_) == 2 else Y

    def _encode_fit_targets(self, y):
        check_classification_targets(y)
        if type_of_target(y, input_name="y") not in ("binary", "multiclass"):
            raise ValueError("UnlearnableRidgeClassifier needs a binary or multiclass target.")
        y = column_or_1d(y, warn=True)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                f"The target has one class only ({self.classes_[0]!r}); a classifier needs "
                "at least 2."
            )
        self._target_1d = False
        return self._encode(y)

    def _encode_removed_targets(self, y):
        if hasattr(y, "toarray"):
            raise ValueError("y_removed is a sparse matrix; pass the class labels as 1-D.")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"y_removed must be 1-D for this model, got shape {y.shape}.")
        if y.dtype.kind in "OUS" and self.classes_.dtype.kind not in "OUS":
            raise ValueError(
                f"y_removed contains labels not seen in training: {np.unique(y)[:10].tolist()}."
            )
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if len(unknown):
            raise ValueError(
                f"y_removed contains labels not seen in training: {unknown.tolist()[:10]}; "
                f"the classes are {self.classes_.tolist()}."
            )
        return self._encode(y)

    @_fit_context(prefer_skip_nested_validation=True)
    @transactional
    def fit(self, X, y, sample_weight=None):
        """Fit ridge regression to the ``±1``-encoded classes and keep the curvature.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64, y_numeric=False)
        Y = self._encode_fit_targets(y)
        weights = fit_sample_weight(
            self,
            X,
            y,
            sample_weight,
            class_weight=self.class_weight,
            classes=self.classes_,
            balance_by_weight=False,
        )
        return self._fit_encoded(X, Y, weights)

    def _split_theta(self, theta):
        coef, intercept = super()._split_theta(theta)
        if len(self.classes_) == 2:
            # scikit-learn's RidgeClassifier keeps a binary model's coef_ 1-D (1.6 to 1.9).
            return coef[0].copy(), intercept
        return coef, intercept

    def decision_function(self, X):
        """Scores ``Xw + b``: shape (n,) for binary, (n, n_classes) otherwise."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", reset=False, dtype=np.float64)
        state = self._committed()  # coef_ and intercept_ of one committed state
        scores = np.asarray(X @ np.atleast_2d(state["coef_"]).T) + state["intercept_"]
        return scores[:, 0] if len(self.classes_) == 2 else scores

    def predict(self, X):
        """Predicted class labels."""
        scores = self.decision_function(X)
        if len(self.classes_) == 2:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.regressor_tags = None
        tags.target_tags.multi_output = False
        tags.input_tags.sparse = True
        return tags
