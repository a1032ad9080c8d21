"""A meta-estimator whose ``fit`` erases samples from an already fitted model."""

from __future__ import annotations

import copy
from numbers import Real

from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

__all__ = ["SampleEraser"]


def _erased_has(attribute):
    def check(self):
        target = self.estimator_ if hasattr(self, "estimator_") else self.estimator
        return hasattr(target, attribute)

    return check


class SampleEraser(MetaEstimatorMixin, BaseEstimator):
    """Erase samples from a copy of a fitted model; ``fit`` takes the samples to erase.

    ``fit(X_removed, y_removed)`` copies the already fitted ``estimator`` (it is never refit
    and never modified) and calls ``forget`` on the copy with this object's ``eps``. The
    prediction methods delegate to the erased copy. Cloning keeps the fitted ``estimator``
    (it is shared, not cloned), so the eraser can be tuned by scikit-learn's model
    selection tools, for example to choose ``eps``::

        GridSearchCV(SampleEraser(fitted), {"eps": grid},
                     scoring=make_similarity_scorer(fitted, retrained),
                     cv=[(idx, idx)]).fit(X_removed, Y_removed)

    Parameters
    ----------
    estimator : estimator
        A fitted unlearnable estimator (with ``forget``), or a fitted
        :class:`~sklearn.pipeline.Pipeline` whose last step is one.
    eps : float, default=1.0
        Scale ``ε`` of the erasure step.

    Attributes
    ----------
    estimator_ : estimator
        The erased copy.
    n_features_in_ : int
        From the wrapped estimator.
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["predict"])],
        "eps": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, estimator, eps=1.0):
        self.estimator = estimator
        self.eps = eps

    def __sklearn_clone__(self):
        # The default clone would clone ``estimator`` and lose its fitted state, which is
        # the point of this meta-estimator; share it instead (fit never modifies it).
        params = self.get_params(deep=False)
        params = {
            name: value if name == "estimator" else clone(value, safe=False)
            for name, value in params.items()
        }
        return type(self)(**params)

    def fit(self, X_removed, y_removed):
        """Copy the fitted estimator and erase these samples from the copy.

        Parameters
        ----------
        X_removed : {array-like, sparse matrix} of shape (k, n_features)
        y_removed : array-like of shape (k,) or (k, n_outputs)

        Returns
        -------
        self
        """
        self._validate_params()
        check_is_fitted(self.estimator)
        from .._pipeline import forget

        erased = copy.deepcopy(self.estimator)
        forget(erased, X_removed, y_removed, eps=self.eps)
        self.estimator_ = erased
        if hasattr(erased, "n_features_in_"):
            self.n_features_in_ = erased.n_features_in_
        if hasattr(erased, "classes_"):
            self.classes_ = erased.classes_
        return self

    @available_if(_erased_has("predict"))
    def predict(self, X):
        """Predict with the erased model."""
        check_is_fitted(self)
        return self.estimator_.predict(X)

    @available_if(_erased_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the erased model."""
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    @available_if(_erased_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the erased model."""
        check_is_fitted(self)
        return self.estimator_.decision_function(X)

    @available_if(_erased_has("score"))
    def score(self, X, y):
        """Score of the erased model (the wrapped estimator's ``score``)."""
        check_is_fitted(self)
        return self.estimator_.score(X, y)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.target_tags = inner.target_tags
        tags.input_tags.sparse = inner.input_tags.sparse
        return tags
