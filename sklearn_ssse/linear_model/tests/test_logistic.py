"""UnlearnableLogisticRegression: fits like scikit-learn, forgets close to a refit, and paper
mode equals an independent dense implementation of the SSSE update (Eq. 4)."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sklearn_ssse import UnlearnableLogisticRegression
from sklearn_ssse.datasets import load_yeast

TIGHT = dict(tol=1e-10, max_iter=10_000)


def _theta(model):
    return np.hstack([np.atleast_2d(model.coef_), np.reshape(model.intercept_, (-1, 1))])


@pytest.fixture(scope="module")
def yeast():
    X, Y = load_yeast(return_X_y=True)
    return X, Y


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("C", [0.05, 1.0])
def test_binary_fit_matches_sklearn(cancer, C):
    X, y = cancer
    ours = UnlearnableLogisticRegression(C=C, **TIGHT).fit(X, y)
    ref = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(X, y)
    assert ours.coef_.shape == ref.coef_.shape == (1, X.shape[1])
    assert ours.intercept_.shape == (1,)
    assert np.linalg.norm(_theta(ours) - _theta(ref)) / np.linalg.norm(_theta(ref)) < 1e-4
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-4)


def test_multiclass_is_one_vs_rest_of_sklearn_binary_fits():
    X, y = load_iris(return_X_y=True)
    model = UnlearnableLogisticRegression(C=1.0, multi_class="ovr", **TIGHT).fit(X, y)
    assert model.coef_.shape == (3, 4) and model.curvature_.n_blocks_ == 3
    for c in range(3):
        ref = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(X, y == c)
        np.testing.assert_allclose(model.coef_[c], ref.coef_[0], rtol=1e-4, atol=1e-5)
    scores = model.decision_function(X)
    np.testing.assert_array_equal(model.predict(X), np.argmax(scores, axis=1))
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)


def test_multilabel_shapes_and_per_label_fits(yeast):
    X, Y = yeast
    model = UnlearnableLogisticRegression(C=0.5).fit(X, Y)
    L = Y.shape[1]
    assert model.coef_.shape == (L, X.shape[1]) and model.intercept_.shape == (L,)
    assert model.predict(X).shape == (len(X), L)
    assert model.predict_proba(X).shape == (len(X), L)
    assert model.curvature_.n_blocks_ == L
    ref = LogisticRegression(C=0.5, **TIGHT).fit(X, Y[:, 3])
    np.testing.assert_allclose(model.coef_[3], ref.coef_[0], rtol=1e-3, atol=1e-4)
    # Hamming loss near the data README's 0.204 for per-label L2 logistic regression.
    assert np.mean(model.predict(X) != Y) < 0.25


def _rare_label_requests(Y, fraction, seed=0):
    rng = np.random.default_rng(seed)
    for label in np.flatnonzero(Y.mean(axis=0) <= 0.20):
        positives = np.flatnonzero(Y[:, label] == 1)
        size = max(1, int(round(fraction * len(positives))))
        yield label, rng.choice(positives, size=size, replace=False)


def test_yeast_hessian_leave_out_is_close_to_refit(yeast):
    """Erasing 5% of a rare label's samples lands within 0.3 of the refit (normalized)."""
    X, Y = yeast
    fitted = UnlearnableLogisticRegression(C=1.0, **TIGHT).fit(X, Y)
    ratios = []
    for _, removed in _rare_label_requests(Y, 0.05):
        keep = np.setdiff1d(np.arange(len(X)), removed)
        refit = _theta(UnlearnableLogisticRegression(C=1.0, **TIGHT).fit(X[keep], Y[keep]))
        original = _theta(fitted)
        erased = _theta(_copy(fitted).forget(X[removed], Y[removed]))
        ratios.append(np.linalg.norm(erased - refit) / np.linalg.norm(original - refit))
    assert len(ratios) == 6
    assert max(ratios) <= 0.3, ratios


def _copy(model):
    import copy

    return copy.deepcopy(model)


def _dense_ssse(X, Y, theta, C, removed, eps, damping, fit_intercept=True):
    """Eq. 4 written out with dense matrices: one block per label, empirical Fisher over D
    (as published: no correction for the fit's residual)."""
    n = len(X)
    Xt = np.hstack([X, np.ones((n, 1))]) if fit_intercept else X
    penalty = np.full(Xt.shape[1], 1.0 / C)
    if fit_intercept:
        penalty[-1] = 0.0
    out = theta.copy()
    k = len(removed)
    for label in range(Y.shape[1]):
        residual = expit(Xt @ theta[label]) - Y[:, label]
        G = Xt * residual[:, None]  # per-sample gradients ∇ℓ_i, one row each
        F = (G.T @ G + np.diag(penalty)) / n + damping * np.eye(Xt.shape[1])
        out[label] += eps / (n - k) * np.linalg.inv(F) @ G[removed].sum(axis=0)
    return out


@pytest.mark.parametrize("eps", [0.5, 3.0])
@pytest.mark.parametrize("damping", [1e-4, 0.0])
def test_paper_mode_equals_dense_eq4(yeast, eps, damping):
    X, Y = yeast
    model = UnlearnableLogisticRegression(
        C=1.0, curvature="empirical_fisher", leave_out=False, damping=damping
    ).fit(X, Y)
    removed = np.flatnonzero(Y[:, 8] == 1)[:15]
    expected = _dense_ssse(X, Y, _theta(model), 1.0, removed, eps, damping)
    model.forget(X[removed], Y[removed], eps=eps)
    np.testing.assert_allclose(_theta(model), expected, rtol=1e-8, atol=1e-10)


def test_hessian_leave_out_equals_dense_newton_step(cancer):
    X, y = cancer
    n, k, C, damping = len(X), 12, 0.3, 1e-3
    model = UnlearnableLogisticRegression(C=C, damping=damping, **TIGHT).fit(X, y)
    theta = _theta(model)[0]
    Xt = np.hstack([X, np.ones((n, 1))])
    p = expit(Xt @ theta)
    P = np.diag(np.r_[np.full(X.shape[1], 1 / C), 0.0])
    H = (Xt[k:].T @ ((p * (1 - p))[k:, None] * Xt[k:]) + P) / (n - k)
    H += damping * np.eye(len(theta))
    # The D∖S objective's gradient at θ: −Σ_S ∇ℓ_i plus the fit's residual Σ_D ∇ℓ_i + Pθ.
    fit_residual = Xt.T @ (p - y) + P @ theta
    rhs = Xt[:k].T @ (p - y)[:k] - fit_residual
    expected = theta + 1.0 / (n - k) * np.linalg.solve(H, rhs)
    model.forget(X[:k], y[:k])
    np.testing.assert_allclose(_theta(model)[0], expected, rtol=1e-9, atol=1e-12)


def test_sparse_input_gives_the_dense_result(yeast):
    X, Y = yeast
    X = np.where(np.abs(X) > 0.1, X, 0.0)
    dense = UnlearnableLogisticRegression(C=0.5, **TIGHT).fit(X, Y[:, :4])
    sparse = UnlearnableLogisticRegression(C=0.5, **TIGHT).fit(sp.csr_matrix(X), Y[:, :4])
    np.testing.assert_allclose(_theta(sparse), _theta(dense), rtol=1e-6, atol=1e-8)
    dense.forget(X[:9], Y[:9, :4])
    sparse.forget(sp.csr_matrix(X[:9]), Y[:9, :4])
    np.testing.assert_allclose(_theta(sparse), _theta(dense), rtol=1e-6, atol=1e-8)


def test_second_request_sees_the_first(cancer):
    """After a forget the stored curvature is D∖S₁ and n_samples_ = n − k₁."""
    X, y = cancer
    model = UnlearnableLogisticRegression(C=0.3, **TIGHT).fit(X, y)
    model.forget(X[:10], y[:10])
    assert model.n_samples_ == len(X) - 10 and model.n_forgotten_ == 10
    fresh = UnlearnableLogisticRegression(C=0.3, **TIGHT).fit(X, y)
    fresh.curvature_.downdate(
        [np.hstack([X[:10], np.ones((10, 1))]) * np.sqrt(_hessian_weights(fresh, X[:10]))]
    )
    np.testing.assert_allclose(
        model.curvature_.inverse_dense()[0], fresh.curvature_.inverse_dense()[0], rtol=1e-9
    )
    with pytest.raises(ValueError, match="do not match a training sample"):
        model.forget(X[:1], y[:1])  # already erased


def _hessian_weights(model, X):
    p = expit(X @ model.coef_[0] + model.intercept_[0])
    return (p * (1 - p))[:, None]


def test_float32_curvature_is_close_to_float64(yeast):
    X, Y = yeast
    removed = np.flatnonzero(Y[:, 9] == 1)[:8]
    f64 = UnlearnableLogisticRegression(C=1.0).fit(X, Y).forget(X[removed], Y[removed])
    f32 = UnlearnableLogisticRegression(C=1.0, curvature_dtype="float32").fit(X, Y)
    f32.forget(X[removed], Y[removed])
    np.testing.assert_allclose(_theta(f32), _theta(f64), rtol=1e-3, atol=1e-5)
