import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GridSearchCV, cross_val_score

from sklearn_ssse.metrics import make_similarity_scorer, similarity_ratio

from ._helpers import blend, multilabel_problem


class ShiftedModel(ClassifierMixin, BaseEstimator):
    """Wraps a fitted linear model and moves its parameters by ``shift`` towards a target.

    ``shift=0`` is the wrapped model, ``shift=1`` is ``target``. Fitting ignores the
    data, as an erasure update applied to an already fitted model would. Both models
    are held in a tuple, since ``clone`` would reset a fitted estimator parameter.
    """

    def __init__(self, models=None, shift=0.0):
        self.models = models
        self.shift = shift

    def fit(self, X, y):
        fitted = blend(*self.models, self.shift)
        self.coef_, self.intercept_ = fitted.coef_, fitted.intercept_
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


def test_grid_search_selects_the_refit():
    p = multilabel_problem()
    idx = np.arange(len(p.X_removed))
    search = GridSearchCV(
        ShiftedModel((p.original, p.retrained)),
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
        ShiftedModel((p.original, p.retrained), shift=0.5),
        p.X_removed,
        p.Y_removed,
        scoring=make_similarity_scorer(p.original, p.retrained),
        cv=[(idx, idx)],
    )
    erased = blend(p.original, p.retrained, 0.5)
    expected = similarity_ratio(p.original, erased, p.retrained, p.X_removed, p.Y_removed)
    assert scores.tolist() == pytest.approx([expected])
