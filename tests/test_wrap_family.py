"""make_unlearnable for the GLM regressors, LinearSVC and the SGD estimators (L2, smooth
loss): same coefficients, the same erasure as the package's own fit, and SGD's objective
mapped to logistic regression (C = 1/(n·alpha)) and ridge (alpha = n·alpha)."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.linear_model import (
    GammaRegressor,
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    SGDClassifier,
    SGDRegressor,
    TweedieRegressor,
)
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from sklearn_ssse import (
    NotOptimalWarning,
    UnlearnableGammaRegressor,
    UnlearnableLinearSVC,
    UnlearnablePoissonRegressor,
    UnlearnableTweedieRegressor,
    make_unlearnable,
)


def _theta(model):
    return np.hstack([np.atleast_2d(model.coef_), np.reshape(model.intercept_, (-1, 1))])


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


GLMS = [
    (PoissonRegressor, UnlearnablePoissonRegressor, {}, True),
    (GammaRegressor, UnlearnableGammaRegressor, {}, False),
    (TweedieRegressor, UnlearnableTweedieRegressor, {"power": 1.5}, False),
]


@pytest.mark.parametrize("theirs, ours, params, counts", GLMS)
def test_wrapped_glm_forgets_like_the_packages_fit(theirs, ours, params, counts):
    X, y = _diabetes()
    y = np.round(y / 25.0) if counts else y
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    tight = dict(alpha=0.01, tol=1e-12, max_iter=1000, solver="newton-cholesky")
    fitted = theirs(**params, **tight).fit(X, y, sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotOptimalWarning)
        wrapped = make_unlearnable(fitted, X, y, sample_weight=w)
    assert type(wrapped) is ours
    np.testing.assert_array_equal(wrapped.coef_, fitted.coef_)
    assert wrapped.intercept_ == fitted.intercept_
    own = ours(**params, **tight).fit(X, y, sample_weight=w)
    gap = np.abs(_theta(own) - _theta(wrapped)).max()
    wrapped.forget(X[:15], y[:15])
    own.forget(X[:15], y[:15])
    np.testing.assert_allclose(_theta(wrapped), _theta(own), atol=10 * gap + 1e-12)


@pytest.mark.parametrize("loader", [load_breast_cancer, load_digits])
def test_wrapped_linear_svc_forgets_like_the_packages_fit(loader):
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    fitted = LinearSVC(C=0.1, intercept_scaling=2.0, dual=False, tol=1e-12, max_iter=100000)
    fitted.fit(X, y)
    wrapped = make_unlearnable(fitted, X, y)
    assert type(wrapped) is UnlearnableLinearSVC
    np.testing.assert_array_equal(wrapped.coef_, fitted.coef_)
    own = UnlearnableLinearSVC(C=0.1, intercept_scaling=2.0, tol=1e-12).fit(X, y)
    gap = np.abs(_theta(own) - _theta(wrapped)).max()
    wrapped.forget(X[:10], y[:10])
    own.forget(X[:10], y[:10])
    np.testing.assert_allclose(_theta(wrapped), _theta(own), atol=10 * gap + 1e-12)


def test_linear_svc_other_losses_are_refused():
    X, y = load_breast_cancer(return_X_y=True)
    fitted = LinearSVC(loss="hinge", dual=True, max_iter=20).fit(X[:50], y[:50])
    with pytest.raises(ValueError, match="squared_hinge"):
        make_unlearnable(fitted, X[:50], y[:50])


@pytest.mark.parametrize("multiclass", [False, True])
def test_sgd_classifier_maps_to_logistic_regression_with_c_one_over_n_alpha(multiclass):
    X, y = (load_digits if multiclass else load_breast_cancer)(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    n, alpha = len(y), 1e-3
    sgd = SGDClassifier(loss="log_loss", alpha=alpha, max_iter=5, tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sgd.fit(X, y)
    # SGD stops away from the optimum of its objective: the wrapper says so.
    with pytest.warns(NotOptimalWarning):
        make_unlearnable(sgd, X, y)
    # At the optimum of (1/n)Σ loss + (alpha/2)‖w‖² (one-vs-rest, as SGD), i.e. of logistic
    # regression with C = 1/(n·alpha), the wrapped gradient vanishes and nothing is warned.
    labels = np.unique(y)
    for k, label in enumerate(labels if multiclass else labels[1:]):
        ref = LogisticRegression(
            C=1.0 / (n * alpha), solver="newton-cholesky", tol=1e-12, max_iter=1000
        )
        ref.fit(X, (y == label).astype(int))
        sgd.coef_[k], sgd.intercept_[k] = ref.coef_[0], ref.intercept_[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotOptimalWarning)
        wrapped = make_unlearnable(sgd, X, y)
    assert wrapped.wrapped_gradient_norm_ < 1e-6
    assert wrapped.C == pytest.approx(1.0 / (n * alpha))
    np.testing.assert_array_equal(wrapped.predict(X), sgd.predict(X))


def test_sgd_regressor_maps_to_ridge_with_alpha_n_alpha():
    X, y = _diabetes()
    y = y / 100.0
    n, alpha = len(y), 1e-2
    sgd = SGDRegressor(alpha=alpha, max_iter=5, tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sgd.fit(X, y)
    ref = Ridge(alpha=n * alpha).fit(X, y)
    sgd.coef_, sgd.intercept_ = ref.coef_.copy(), np.array([ref.intercept_])
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotOptimalWarning)
        wrapped = make_unlearnable(sgd, X, y)
    assert wrapped.wrapped_gradient_norm_ < 1e-8
    wrapped.forget(X[:20], y[:20])
    refit = Ridge(alpha=n * alpha).fit(X[20:], y[20:])  # the penalty stays n·alpha
    np.testing.assert_allclose(wrapped.coef_, refit.coef_, rtol=1e-8)


def test_sgd_non_smooth_or_other_penalty_is_refused():
    X, y = load_breast_cancer(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sgd = SGDClassifier(loss="hinge", max_iter=5, tol=None).fit(X, y)
    with pytest.raises(ValueError, match="log_loss"):
        make_unlearnable(sgd, X, y)
