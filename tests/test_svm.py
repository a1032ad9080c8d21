"""UnlearnableLinearSVC: liblinear's primal L2-loss SVM (penalized intercept through
intercept_scaling), the generalized Newton step, refits on real data."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from sklearn_ssse import UnlearnableLinearSVC

TIGHT = dict(dual=False, tol=1e-12, max_iter=100000)


def _theta(model):
    return np.hstack([model.coef_, np.reshape(model.intercept_, (-1, 1))])


def _primal(theta, X, t, s, C, a):
    """liblinear's objective ½w̃ᵀw̃ + C Σ s_i max(0, 1 − t_i w̃ᵀx̃_i)², x̃ = [x, a]."""
    w_tilde = np.r_[theta[:-1], theta[-1] / a]
    z = np.hstack([X, np.full((len(t), 1), a)]) @ w_tilde
    return 0.5 * w_tilde @ w_tilde + C * np.sum(s * np.maximum(0.0, 1.0 - t * z) ** 2)


def _dense_step(theta, X, labels, classes, rows, removed, s, C, a):
    """θ + (2Σ_{active, D∖S} s_i x̃x̃ᵀ + P)⁻¹ (Σ_S s_i ∇ℓ_i − r) per one-vs-rest label, dense;
    ``r = Σ_D s_i∇ℓ_i + Pθ`` is the fit's residual (the step is the generalized Newton step
    of the D∖S objective from where liblinear stopped)."""
    Xt = np.hstack([X, np.ones((len(labels), 1))])
    P = np.diag(np.r_[np.full(X.shape[1], 1.0 / C), 1.0 / (C * a * a)])
    out = []
    for k, theta_k in enumerate(theta):
        positive = classes[1] if len(classes) == 2 else classes[k]
        t = np.where(labels == positive, 1.0, -1.0)
        margin = 1.0 - t * (Xt @ theta_k)
        per_sample = s * -2.0 * t * np.maximum(0.0, margin)
        g = Xt[removed].T @ per_sample[removed] - (Xt.T @ per_sample + P @ theta_k)
        active = rows[margin[rows] > 0]
        H = 2.0 * (Xt[active] * s[active, None]).T @ Xt[active] + P
        out.append(theta_k + np.linalg.solve(H, g))
    return np.array(out)


def _data(name):
    X, y = (load_breast_cancer if name == "cancer" else load_digits)(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("name", ["cancer", "digits"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
def test_matches_linear_svc_and_forget_is_the_generalized_newton_step(name, weighted, sparse):
    X, y = _data(name)
    rng = np.random.default_rng(0)
    s = rng.uniform(0.5, 2.0, size=len(y)) if weighted else np.ones(len(y))
    Xf = sp.csr_matrix(X) if sparse else X
    C, a = 0.1, 2.0
    model = UnlearnableLinearSVC(C=C, intercept_scaling=a)
    model.fit(Xf, y, sample_weight=s if weighted else None)
    ref = LinearSVC(C=C, intercept_scaling=a, **TIGHT).fit(X, y, sample_weight=s)
    np.testing.assert_allclose(_theta(model), _theta(ref), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.decision_function(Xf), ref.decision_function(X), atol=1e-6)
    np.testing.assert_array_equal(model.predict(Xf), ref.predict(X))
    # Independently of liblinear: the fit minimizes the primal (no descent along ± e_j).
    theta = _theta(model)
    classes = model.classes_
    t = np.where(y == classes[1], 1.0, -1.0) if len(classes) == 2 else None
    if t is not None:
        f0 = _primal(theta[0], X, t, s, C, a)
        for j in range(theta.shape[1]):
            for h in (1e-4, -1e-4):
                bumped = theta[0].copy()
                bumped[j] += h
                assert _primal(bumped, X, t, s, C, a) >= f0 - 1e-9
    removed = rng.choice(len(y), size=20, replace=False)
    rows = np.setdiff1d(np.arange(len(y)), removed)
    expected = _dense_step(theta, X, y, classes, rows, removed, s, C, a)
    model.forget(Xf[removed], y[removed])
    np.testing.assert_allclose(_theta(model), expected, rtol=1e-10, atol=1e-10)
    # Against a tight refit on D∖S: the step is exact up to the samples that cross the margin.
    refit = _theta(LinearSVC(C=C, intercept_scaling=a, **TIGHT).fit(X[rows], y[rows], s[rows]))
    distance = np.linalg.norm(_theta(model) - refit) / np.linalg.norm(theta - refit)
    assert distance < (0.15 if name == "cancer" else 0.35), distance


def test_step_is_exact_when_the_active_set_does_not_change():
    X, y = _data("cancer")
    C = 0.05
    model = UnlearnableLinearSVC(C=C).fit(X, y)
    margins = 1.0 - np.where(y == 1, 1.0, -1.0) * model.decision_function(X)
    inactive = np.flatnonzero(margins < -0.5)[:5]
    # Samples far outside the margin carry no gradient: removing them changes nothing but
    # the fit's own residual, which the step takes off (a generalized Newton step from
    # where liblinear stopped, exact while the active set holds).
    before = _theta(model).copy()
    rows = np.setdiff1d(np.arange(len(y)), inactive)
    ones = np.ones(len(y))
    expected = _dense_step(before, X, y, model.classes_, rows, inactive, ones, C, 1.0)
    model.forget(X[inactive], y[inactive])
    np.testing.assert_allclose(_theta(model), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_theta(model), before, rtol=1e-6, atol=1e-8)
    refit = LinearSVC(C=C, **TIGHT).fit(X[rows], y[rows])
    np.testing.assert_allclose(_theta(model), _theta(refit), rtol=1e-6, atol=1e-8)


def test_class_weight_and_refusals():
    X, y = _data("cancer")
    model = UnlearnableLinearSVC(class_weight="balanced").fit(X, y)
    ref = LinearSVC(class_weight="balanced", **TIGHT).fit(X, y)
    np.testing.assert_allclose(_theta(model), _theta(ref), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="certified"):
        UnlearnableLinearSVC(certified=True).fit(X, y)
    before = _theta(model).copy()
    with pytest.raises(ValueError, match="not seen in training"):
        model.forget(X[:2], np.array([0, 7]))
    np.testing.assert_array_equal(_theta(model), before)


@settings(max_examples=15)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 6), C=st.floats(0.01, 2.0))
def test_property_step_is_the_dense_generalized_newton_step(seed, k, C):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 3))
    y = rng.integers(0, 3, size=60)
    if len(np.unique(y)) < 3:
        return
    s = rng.uniform(0.2, 3.0, size=60)
    model = UnlearnableLinearSVC(C=C).fit(X, y, sample_weight=s)
    removed = rng.choice(60, size=k, replace=False)
    rows = np.setdiff1d(np.arange(60), removed)
    expected = _dense_step(_theta(model), X, y, model.classes_, rows, removed, s, C, 1.0)
    model.forget(X[removed], y[removed])
    np.testing.assert_allclose(_theta(model), expected, rtol=1e-8, atol=1e-9)


def test_streaming_fits_refuse_the_new_estimators():
    from sklearn_ssse import UnlearnablePoissonRegressor
    from sklearn_ssse.curvature import fit_streaming

    X, y = _data("cancer")
    for model in (UnlearnableLinearSVC(), UnlearnablePoissonRegressor()):
        with pytest.raises(NotImplementedError, match="fit it with fit"):
            fit_streaming(model, [(X, y)])
        assert not hasattr(model, "coef_")
