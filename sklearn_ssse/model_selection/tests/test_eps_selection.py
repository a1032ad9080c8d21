"""Choosing ε: SampleEraser in GridSearchCV and similarity_ratio_path agree."""

import copy

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_ssse import SampleEraser, UnlearnableLogisticRegression, similarity_ratio_path
from sklearn_ssse.datasets import load_yeast
from sklearn_ssse.metrics import make_similarity_scorer, similarity_ratio

EPS_GRID = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0])


@pytest.fixture(scope="module")
def request_on_yeast():
    X, Y = load_yeast(return_X_y=True)
    label = 9  # frequency 0.107
    rng = np.random.default_rng(0)
    removed = np.sort(rng.choice(np.flatnonzero(Y[:, label]), 32, replace=False))
    keep = np.setdiff1d(np.arange(len(X)), removed)
    params = dict(C=1.0, curvature="empirical_fisher", leave_out=False, damping=1e-4, tol=1e-8)
    fitted = UnlearnableLogisticRegression(**params).fit(X, Y)
    retrained = UnlearnableLogisticRegression(**params).fit(X[keep], Y[keep])
    return fitted, retrained, X[removed], Y[removed]


def test_clone_keeps_the_fitted_estimator(request_on_yeast):
    fitted, _, X_S, Y_S = request_on_yeast
    eraser = SampleEraser(fitted, eps=2.0)
    cloned = clone(eraser)
    assert cloned.estimator is fitted and cloned.eps == 2.0
    before = fitted.coef_.copy()
    cloned.fit(X_S, Y_S)
    np.testing.assert_array_equal(fitted.coef_, before)  # the wrapped model is never modified
    expected = copy.deepcopy(fitted).forget(X_S, Y_S, eps=2.0)
    np.testing.assert_array_equal(cloned.estimator_.coef_, expected.coef_)
    np.testing.assert_array_equal(cloned.predict(X_S), expected.predict(X_S))
    np.testing.assert_array_equal(cloned.predict_proba(X_S), expected.predict_proba(X_S))


def test_grid_search_and_path_pick_the_same_eps(request_on_yeast):
    fitted, retrained, X_S, Y_S = request_on_yeast
    idx = np.arange(len(X_S))
    search = GridSearchCV(
        SampleEraser(fitted),
        {"eps": list(EPS_GRID)},
        scoring=make_similarity_scorer(fitted, retrained),
        cv=[(idx, idx)],
    ).fit(X_S, Y_S)
    gammas, best_eps = similarity_ratio_path(fitted, X_S, Y_S, retrained, EPS_GRID)
    np.testing.assert_allclose(gammas, search.cv_results_["mean_test_score"], atol=1e-9)
    assert best_eps == search.best_params_["eps"]
    assert gammas.max() > 0.5  # some ε moves the model closer to the refit than to θ*
    assert gammas[0] == 0.0  # ε = 0 is the original model


def test_path_equals_forget_then_similarity_ratio(request_on_yeast):
    fitted, retrained, X_S, Y_S = request_on_yeast
    gammas, _ = similarity_ratio_path(fitted, X_S, Y_S, retrained, [0.5, 3.0])
    for eps, gamma in zip([0.5, 3.0], gammas):
        erased = copy.deepcopy(fitted).forget(X_S, Y_S, eps=eps)
        assert gamma == pytest.approx(similarity_ratio(fitted, erased, retrained, X_S, Y_S))


def test_path_through_a_pipeline(request_on_yeast):
    fitted, retrained, X_S, Y_S = request_on_yeast
    shift = FunctionTransformer(lambda X: X + 0.0)  # no learned state: erasable through
    pipeline = make_pipeline(shift, copy.deepcopy(fitted))
    direct, _ = similarity_ratio_path(fitted, X_S, Y_S, retrained, EPS_GRID)
    through, _ = similarity_ratio_path(pipeline, X_S, Y_S, retrained, EPS_GRID)
    np.testing.assert_allclose(through, direct, atol=1e-12)


def test_bad_eps_grid(request_on_yeast):
    fitted, retrained, X_S, Y_S = request_on_yeast
    with pytest.raises(ValueError, match="eps_values"):
        similarity_ratio_path(fitted, X_S, Y_S, retrained, [1.0, -1.0])
