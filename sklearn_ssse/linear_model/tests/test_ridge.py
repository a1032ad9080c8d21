"""UnlearnableRidge: fit equals scikit-learn's Ridge; forget equals a Ridge refit."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_diabetes, load_linnerud
from sklearn.linear_model import Ridge

from sklearn_ssse import UnlearnableRidge
from sklearn_ssse.datasets import load_yeast


def _rel(a, b):
    return np.linalg.norm(np.ravel(a) - np.ravel(b)) / max(np.linalg.norm(b), 1e-300)


def _datasets():
    X, y = load_diabetes(return_X_y=True)
    Xl, Yl = load_linnerud(return_X_y=True)
    Xy, Yy = load_yeast(return_X_y=True)
    return {
        "diabetes": (X, y),
        "diabetes-2out": (X, np.column_stack([y, np.log(y)])),
        "linnerud-3out": (Xl, Yl),
        "yeast-14out": (Xy, Yy.astype(float)),
    }


DATA = _datasets()
# Three removal requests in a row: disjoint index sets, different sizes.
REQUESTS = [np.arange(0, 4), np.array([7, 11, 12]), np.array([5])]


@pytest.mark.parametrize("name", list(DATA))
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("alpha", [0.01, 1.0])
def test_fit_matches_sklearn_ridge(name, fit_intercept, alpha):
    X, y = DATA[name]
    ours = UnlearnableRidge(alpha=alpha, fit_intercept=fit_intercept).fit(X, y)
    ref = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="cholesky").fit(X, y)
    assert np.shape(ours.coef_) == np.shape(ref.coef_)
    assert np.shape(ours.intercept_) == np.shape(ref.intercept_)
    assert _rel(ours.coef_, ref.coef_) < 1e-8
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name", list(DATA))
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("n_requests", [1, 3])
def test_forget_equals_refit(name, fit_intercept, n_requests):
    X, y = DATA[name]
    model = UnlearnableRidge(alpha=0.5, fit_intercept=fit_intercept).fit(X, y)
    removed = np.concatenate(REQUESTS[:n_requests])
    for request in REQUESTS[:n_requests]:
        model.forget(X[request], y[request])
    keep = np.setdiff1d(np.arange(len(X)), removed)
    ref = Ridge(alpha=0.5, fit_intercept=fit_intercept, solver="cholesky").fit(X[keep], y[keep])
    assert model.n_samples_ == len(keep)
    assert _rel(model.coef_, ref.coef_) < 1e-8
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=1e-8, atol=1e-8)


def test_forget_equals_refit_on_sparse_input():
    X, Y = load_yeast(return_X_y=True)
    X = np.where(np.abs(X) > 0.1, X, 0.0)  # real features, thresholded to a sparse matrix
    Xs = sp.csr_matrix(X)
    y = Y[:, :3].astype(float)
    model = UnlearnableRidge(alpha=2.0).fit(Xs, y)
    model.forget(Xs[:20], y[:20])
    ref = Ridge(alpha=2.0, solver="cholesky").fit(X[20:], y[20:])
    assert _rel(model.coef_, ref.coef_) < 1e-8
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("damping", [1e-3, 0.1])
def test_leave_out_with_damping_equals_dense_formula(damping):
    """With damping the step is no longer the refit; check it against its dense definition."""
    X, y = DATA["diabetes"]
    alpha, k, n = 0.3, 6, len(X)
    model = UnlearnableRidge(alpha=alpha, damping=damping).fit(X, y)
    theta = np.r_[model.coef_, model.intercept_]
    model.forget(X[:k], y[:k], eps=0.7)
    Xt = np.hstack([X, np.ones((n, 1))])
    P = np.diag(np.r_[np.full(X.shape[1], alpha), 0.0])
    B = (Xt[k:].T @ Xt[k:] + P) / (n - k) + damping * np.eye(Xt.shape[1])
    gradient = Xt[:k].T @ (Xt[:k] @ theta - y[:k])
    expected = theta + 0.7 / (n - k) * np.linalg.solve(B, gradient)
    assert _rel(np.r_[model.coef_, model.intercept_], expected) < 1e-10


def test_fisher_mode_keeps_one_block_per_output():
    X, Y = DATA["linnerud-3out"]
    model = UnlearnableRidge(alpha=1.0, curvature="empirical_fisher", damping=1e-3).fit(X, Y)
    assert model.curvature_.n_blocks_ == 3
    hessian = UnlearnableRidge(alpha=1.0).fit(X, Y)
    assert hessian.curvature_.n_blocks_ == 1
