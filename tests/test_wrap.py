"""make_unlearnable: a model fitted by scikit-learn becomes erasable with the same
coefficients, its erasure equals the package's own fit's, and a loose fit is reported."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.linear_model import Lasso, LogisticRegression, Ridge, RidgeClassifier
from sklearn.preprocessing import StandardScaler

from sklearn_ssse import (
    NotOptimalWarning,
    UnlearnableLogisticRegression,
    UnlearnableRidgeClassifier,
    make_unlearnable,
)

TIGHT = dict(tol=1e-10, max_iter=20_000)


def _theta(model):
    return np.hstack([np.atleast_2d(model.coef_), np.reshape(model.intercept_, (-1, 1))])


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("weighted", [False, True])
def test_wrapped_logistic_forgets_like_the_packages_fit(digits, weighted):
    X, y = digits
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y)) if weighted else None
    fitted = LogisticRegression(C=0.1, **TIGHT).fit(X, y, sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotOptimalWarning)
        wrapped = make_unlearnable(fitted, X, y, sample_weight=w)
    np.testing.assert_array_equal(wrapped.coef_, fitted.coef_)
    np.testing.assert_array_equal(wrapped.predict_proba(X), fitted.predict_proba(X))
    own = UnlearnableLogisticRegression(C=0.1, **TIGHT).fit(X, y, sample_weight=w)
    fit_difference = np.linalg.norm(_theta(own) - _theta(wrapped))
    removed = np.arange(0, 1797, 100)
    wrapped.forget(X[removed], y[removed])
    own.forget(X[removed], y[removed])
    assert np.linalg.norm(_theta(own) - _theta(wrapped)) <= 2 * fit_difference + 1e-12
    assert wrapped.n_samples_ == len(y) - len(removed)
    with pytest.raises(ValueError, match="do not match"):
        wrapped.forget(X[removed[:1]], y[removed[:1]])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_loose_fit_warns_with_the_figures(digits):
    X, y = digits
    fitted = LogisticRegression(C=0.1, tol=1e-2, max_iter=5).fit(X, y)
    with pytest.warns(NotOptimalWarning, match="gradient norm is .* Newton offset"):
        wrapped = make_unlearnable(fitted, X, y)
    # The reported offset is the Newton estimate of the distance to the optimum.
    tight = LogisticRegression(C=0.1, **TIGHT).fit(X, y)
    distance = np.linalg.norm(_theta(tight) - _theta(fitted))
    assert 0.5 * distance < wrapped.wrapped_offset_ < 2 * distance


def test_wrapped_ridge_and_ridge_classifier_are_exact():
    X, y = load_diabetes(return_X_y=True)
    wrapped = make_unlearnable(Ridge(alpha=0.3).fit(X, y), X, y).forget(X[:25], y[:25])
    refit = Ridge(alpha=0.3).fit(X[25:], y[25:])
    np.testing.assert_allclose(wrapped.coef_, refit.coef_, rtol=1e-8)
    X, y = load_digits(return_X_y=True)
    wrapped = make_unlearnable(RidgeClassifier(alpha=1.0).fit(X, y), X, y)
    wrapped.forget(X[:30], y[:30])
    refit = RidgeClassifier(alpha=1.0).fit(X[30:], y[30:])
    np.testing.assert_allclose(wrapped.coef_, refit.coef_, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(wrapped.predict(X), refit.predict(X))
    X, y = load_breast_cancer(return_X_y=True)
    fitted = RidgeClassifier(alpha=1.0).fit(X, y)
    wrapped = make_unlearnable(fitted, X, y)
    assert wrapped.coef_.shape == fitted.coef_.shape
    wrapped.forget(X[:30], y[:30])
    refit = RidgeClassifier(alpha=1.0).fit(X[30:], y[30:])
    np.testing.assert_allclose(wrapped.coef_, refit.coef_, rtol=1e-8)


def test_unsupported_estimators_are_refused(digits):
    X, y = digits
    with pytest.raises(TypeError, match="supports fitted"):
        make_unlearnable(Lasso().fit(X, y), X, y)
    with pytest.raises(ValueError, match="liblinear"):
        make_unlearnable(
            LogisticRegression(solver="liblinear").fit(X[:300], y[:300] > 4), X[:300], y[:300] > 4
        )
    fitted = LogisticRegression(C=0.1, max_iter=50).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        make_unlearnable(fitted, X[:, :10], y)


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_ridge_classifier_matches_sklearn(class_weight):
    X, y = load_breast_cancer(return_X_y=True)
    Xd, yd = load_digits(return_X_y=True)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    for data, target, weights in ((X, y, None), (X, y, w), (Xd, yd, None)):
        ours = UnlearnableRidgeClassifier(alpha=2.0, class_weight=class_weight).fit(
            data, target, sample_weight=weights
        )
        ref = RidgeClassifier(alpha=2.0, class_weight=class_weight, solver="cholesky").fit(
            data, target, sample_weight=weights
        )
        np.testing.assert_allclose(np.ravel(ours.coef_), np.ravel(ref.coef_), rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(
            ours.decision_function(data), ref.decision_function(data), rtol=1e-6, atol=1e-9
        )
        np.testing.assert_array_equal(ours.predict(data), ref.predict(data))
    keep = np.arange(20, len(y))
    ours = UnlearnableRidgeClassifier(alpha=2.0).fit(X, y, sample_weight=w).forget(X[:20], y[:20])
    ref = RidgeClassifier(alpha=2.0, solver="cholesky").fit(X[keep], y[keep], sample_weight=w[keep])
    np.testing.assert_allclose(np.ravel(ours.coef_), np.ravel(ref.coef_), rtol=1e-8)


def test_ridge_classifier_persists_through_skops(tmp_path):
    import skops.io as sio

    from sklearn_ssse import SKOPS_TRUSTED_TYPES

    X, y = load_digits(return_X_y=True)
    model = UnlearnableRidgeClassifier(alpha=1.0).fit(
        X, y, sample_weight=np.arange(len(y)) % 3 + 1.0
    )
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    loaded = sio.load(path, trusted=SKOPS_TRUSTED_TYPES)
    loaded.forget(X[:5], y[:5])
    model.forget(X[:5], y[:5])
    np.testing.assert_array_equal(loaded.coef_, model.coef_)
