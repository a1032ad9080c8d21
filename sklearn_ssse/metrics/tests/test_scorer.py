import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GridSearchCV, cross_val_score

from sklearn_ssse.metrics import make_similarity_scorer, similarity_ratio

from ._helpers import blend, multilabel_problem


class ShiftedModel(ClassifierMixin, BaseEstimator):
    """Linear model whose parameters are ``params + shift * step``.

    Stands in for an erasure update applied to an already fitted model: fitting ignores
    the data. Parameters are passed as arrays because ``clone`` would reset a fitted
    estimator given as a parameter.
    """

    def __init__(self, params=None, step=None, shift=0.0):
        self.params = params
        self.step = step
        self.shift = shift

    def fit(self, X, y):
        (coef, intercept), (d_coef, d_intercept) = self.params, self.step
        self.coef_ = coef + self.shift * d_coef
        self.intercept_ = intercept + self.shift * d_intercept
        return self

    def decision_function(self, X):
        return X @ self.coef_.T + self.intercept_

    def predict(self, X):
        return (self.decision_function(X) > 0).astype(int)


def test_scorer_equals_similarity_ratio():
    p = multilabel_problem()
    erased = blend(p.original, p.retrained, 0.4)
    scorer = make_similarity_scorer(p.original, p.retrained)
    expected = similarity_ratio(p.original, erased, p.retrained, p.X_removed, p.Y_removed)
    assert scorer(erased, p.X_removed, p.Y_removed) == expected
    assert "make_similarity_scorer" in repr(scorer)
    restored = pickle.loads(pickle.dumps(scorer))
    assert restored(erased, p.X_removed, p.Y_removed) == expected


def _shifted_model(p, shift=0.0):
    """Model moving from the original (shift=0) to the retrained one (shift=1)."""
    o, r = p.original, p.retrained
    return ShiftedModel(
        params=(o.coef_, o.intercept_),
        step=(r.coef_ - o.coef_, r.intercept_ - o.intercept_),
        shift=shift,
    )


def test_grid_search_selects_the_refit():
    p = multilabel_problem()
    idx = np.arange(len(p.X_removed))
    search = GridSearchCV(
        _shifted_model(p),
        param_grid={"shift": [0.0, 0.5, 1.0]},
        scoring=make_similarity_scorer(p.original, p.retrained),
        cv=[(idx, idx)],
    )
    search.fit(p.X_removed, p.Y_removed)
    assert search.best_params_ == {"shift": 1.0}
    assert search.best_score_ == 1.0
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] == 0.0
    assert 0.0 < scores[1] < 1.0


def test_cross_val_score():
    p = multilabel_problem()
    idx = np.arange(len(p.X_removed))
    scores = cross_val_score(
        _shifted_model(p, shift=0.5),
        p.X_removed,
        p.Y_removed,
        scoring=make_similarity_scorer(p.original, p.retrained),
        cv=[(idx, idx)],
    )
    erased = blend(p.original, p.retrained, 0.5)
    expected = similarity_ratio(p.original, erased, p.retrained, p.X_removed, p.Y_removed)
    assert scores.tolist() == pytest.approx([expected])
