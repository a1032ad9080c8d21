"""Poisson, Gamma and Tweedie regressors: scikit-learn's fit, the exact Newton step of the
refit on D∖S with the same alpha (sum-form penalty α·W'), and refits on real data."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn._loss.loss import (
    HalfGammaLoss,
    HalfPoissonLoss,
    HalfTweedieLoss,
    HalfTweedieLossIdentity,
)
from sklearn.datasets import load_diabetes
from sklearn.linear_model import GammaRegressor, PoissonRegressor, TweedieRegressor
from sklearn.preprocessing import StandardScaler

from sklearn_ssse import (
    CurvatureError,
    UnlearnableGammaRegressor,
    UnlearnablePoissonRegressor,
    UnlearnableTweedieRegressor,
)
from sklearn_ssse._loss import TweedieLoss

TIGHT = dict(tol=1e-12, max_iter=10000, solver="newton-cholesky")


def _sklearn_loss(power, link):
    if link == "identity":
        return HalfTweedieLossIdentity(power=power)
    return {1.0: HalfPoissonLoss(), 2.0: HalfGammaLoss()}.get(power, HalfTweedieLoss(power=power))


def _problem(kind, rng, n=200, d=4):
    X = rng.normal(size=(n, d))
    mu = np.exp(X @ rng.normal(scale=0.3, size=d) + 0.5)
    if kind == "poisson":
        return X, rng.poisson(mu).astype(float)
    return X, rng.gamma(2.0, mu / 2.0)


CASES = [
    (UnlearnablePoissonRegressor, PoissonRegressor, {}, 1.0, "log", "poisson"),
    (UnlearnableGammaRegressor, GammaRegressor, {}, 2.0, "log", "gamma"),
    (UnlearnableTweedieRegressor, TweedieRegressor, {"power": 1.5}, 1.5, "log", "gamma"),
    (UnlearnableTweedieRegressor, TweedieRegressor, {"power": 0.0}, 0.0, "identity", "gamma"),
    (UnlearnableTweedieRegressor, TweedieRegressor, {"power": 3.0}, 3.0, "log", "gamma"),
]


def _dense_newton(X, y, w, theta, S, alpha, power, link, theta_fit=None, fit_residual=False):
    """θ + H_{D∖S}⁻¹ Σ_S w_i(∇ℓ_i(θ) + αP̃θ), from scikit-learn's loss, dense solve; the
    Hessian at ``theta_fit`` (where the stored curvature was built; default ``theta``).
    ``fit_residual``: the right-hand side is the D∖S objective's gradient from where the
    fit stopped (its residual ``Σ_D w_i∇ℓ_i + αWP̃θ`` taken off; a model's first request)."""
    loss = _sklearn_loss(power, link)
    Xt = np.hstack([X, np.ones((len(y), 1))])
    keep = np.setdiff1d(np.arange(len(y)), S)
    g, _ = loss.gradient_hessian(y_true=y, raw_prediction=Xt @ theta)
    theta_fit = theta if theta_fit is None else theta_fit
    _, h = loss.gradient_hessian(y_true=y, raw_prediction=Xt @ theta_fit)
    P = np.r_[np.ones(X.shape[1]), 0.0]
    rhs = Xt[S].T @ (w[S] * g[S]) + alpha * w[S].sum() * P * theta
    if fit_residual:
        rhs = rhs - (Xt.T @ (w * g) + alpha * w.sum() * P * theta)
    H = (Xt[keep] * (w[keep] * h[keep])[:, None]).T @ Xt[keep]
    H += alpha * w[keep].sum() * np.diag(P)
    return theta + np.linalg.solve(H, rhs)


def _theta(model):
    return np.r_[model.coef_, model.intercept_]


@pytest.mark.parametrize(
    "power, link",
    [
        (1.0, "log"),
        (2.0, "log"),
        (1.5, "log"),
        (3.0, "log"),
        (0.0, "identity"),
        (1.5, "identity"),
        (0.0, "log"),
    ],
)
def test_tweedie_loss_derivatives_match_scikit_learn(power, link):
    rng = np.random.default_rng(0)
    z = rng.normal(scale=0.5, size=40) + (1.0 if link == "identity" else 0.0)
    z = np.abs(z) + 0.3 if link == "identity" else z
    y = rng.gamma(2.0, 1.0, size=40)
    ours = TweedieLoss(power, link)
    g, h = _sklearn_loss(power, link).gradient_hessian(y_true=y, raw_prediction=z)
    np.testing.assert_allclose(ours.gradient(z, y), g, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.hessian(z, y), h, rtol=1e-12, atol=1e-12)
    step = 1e-5  # central differences of our loss value
    fd = (ours.loss(z + step, y) - ours.loss(z - step, y)) / (2 * step)
    np.testing.assert_allclose(fd, g, rtol=1e-7, atol=1e-8)
    fd2 = (ours.gradient(z + step, y) - ours.gradient(z - step, y)) / (2 * step)
    np.testing.assert_allclose(fd2, h, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("ours, theirs, params, power, link, kind", CASES)
@pytest.mark.parametrize("sparse", [False, True])
def test_fit_matches_scikit_learn_and_forget_is_the_dense_newton_step(
    ours, theirs, params, power, link, kind, sparse
):
    rng = np.random.default_rng(1)
    X, y = _problem(kind, rng)
    w = rng.uniform(0.5, 2.0, size=len(y))
    Xf = sp.csr_matrix(X) if sparse else X
    model = ours(alpha=0.1, **params).fit(Xf, y, sample_weight=w)
    ref = theirs(alpha=0.1, **params, **TIGHT).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(_theta(model), _theta(ref), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.predict(Xf), ref.predict(X), rtol=1e-6)
    S = np.arange(15)
    theta_fit = _theta(model)
    expected = _dense_newton(X, y, w, theta_fit, S, 0.1, power, link, fit_residual=True)
    model.forget(Xf[S], y[S])
    np.testing.assert_allclose(_theta(model), expected, rtol=1e-10, atol=1e-10)
    # A second request: the stored curvature is now over D∖S (exact, not a copy of D's).
    S2 = np.arange(15, 30)
    keep = np.arange(15, len(y))
    expected = _dense_newton(
        X[keep], y[keep], w[keep], _theta(model), S2 - 15, 0.1, power, link, theta_fit
    )
    model.forget(Xf[S2], y[S2])
    np.testing.assert_allclose(_theta(model), expected, rtol=1e-9, atol=1e-9)
    assert model.n_samples_ == len(y) - 30


def _diabetes(kind):
    X, target = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    if kind == "poisson":
        return X, np.round(target / 25.0)  # counts of 25 units of disease progression
    return X, target


@pytest.mark.parametrize("ours, theirs, params, power, link, kind", CASES[:3])
def test_erasure_close_to_a_tight_refit_on_diabetes(ours, theirs, params, power, link, kind):
    X, y = _diabetes(kind)
    rng = np.random.default_rng(0)
    S = rng.choice(len(y), size=20, replace=False)
    keep = np.setdiff1d(np.arange(len(y)), S)
    model = ours(alpha=0.01, **params).fit(X, y)
    before = _theta(model)
    model.forget(X[S], y[S])
    refit = _theta(theirs(alpha=0.01, **params, **TIGHT).fit(X[keep], y[keep]))
    distance = np.linalg.norm(_theta(model) - refit) / np.linalg.norm(before - refit)
    # Newton's step is second-order accurate: far closer than the model before the request.
    assert distance < 0.05, distance


def test_the_penalty_share_of_removed_samples_matters():
    """The step targets the refit with the same alpha (penalty α·W'), not α·W."""
    X, y = _diabetes("gamma")
    model = UnlearnableGammaRegressor(alpha=1.0).fit(X, y)
    S = np.arange(200)
    model.forget(X[S], y[S])
    refit = GammaRegressor(alpha=1.0, **TIGHT).fit(X[200:], y[200:])
    np.testing.assert_allclose(_theta(model), _theta(refit), rtol=0, atol=5e-3)


def test_indefinite_curvature_is_refused_and_model_unchanged():
    # Inverse Gaussian (power 3, log link): ℓ'' = μ⁻²(2y − μ), so removing (unchecked) a
    # sample with a huge y subtracts a huge positive term and leaves H indefinite.
    rng = np.random.default_rng(0)
    X, y = _problem("gamma", rng, n=80, d=2)
    model = UnlearnableTweedieRegressor(power=3.0, alpha=0.0, check_membership=False)
    model.fit(X, y)
    before, curvature = _theta(model).copy(), model.curvature_
    with pytest.raises(CurvatureError, match="not positive definite"):
        model.forget(X[:1], np.array([1e9]))
    np.testing.assert_array_equal(_theta(model), before)
    assert model.curvature_ is curvature and model.n_samples_ == 80


def test_certified_and_bad_targets_are_refused():
    X, y = _diabetes("poisson")
    with pytest.raises(ValueError, match="certified"):
        UnlearnablePoissonRegressor(certified=True).fit(X, y)
    model = UnlearnableGammaRegressor().fit(X, y + 1)
    before = _theta(model).copy()
    model.set_params(check_membership=False)
    with pytest.raises(ValueError, match="valid range"):
        model.forget(X[:2], np.array([-1.0, 2.0]))
    np.testing.assert_array_equal(_theta(model), before)


@settings(max_examples=15)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(1, 8),
    alpha=st.floats(1e-3, 1.0),
    case=st.sampled_from(CASES),
)
def test_property_step_is_the_dense_newton_step(seed, k, alpha, case):
    ours, _, params, power, link, kind = case
    rng = np.random.default_rng(seed)
    X, y = _problem(kind, rng, n=60, d=3)
    w = rng.uniform(0.2, 3.0, size=len(y))
    try:
        model = ours(alpha=alpha, **params).fit(X, y, sample_weight=w)
    except CurvatureError:
        return  # an identity-link fit whose true Hessian is indefinite: refused, tested above
    S = rng.choice(len(y), size=k, replace=False)
    expected = _dense_newton(X, y, w, _theta(model), S, alpha, power, link, fit_residual=True)
    model.forget(X[S], y[S])
    np.testing.assert_allclose(_theta(model), expected, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("ours, theirs, params, power, link, kind", CASES[:3])
def test_gradient_residual_is_the_sum_form_gradient_of_the_remaining_data(
    ours, theirs, params, power, link, kind
):
    X, y = _diabetes(kind)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    model = ours(alpha=0.01, **params).fit(X, y, sample_weight=w)
    # scikit-learn's tol (1e-8 here) bounds the gradient of the objective divided by Σw.
    assert model.gradient_residual(X, y) < 1e-8 * w.sum()
    model.forget(X[:30], y[:30])
    theta = _theta(model)
    Xt = np.hstack([X[30:], np.ones((len(y) - 30, 1))])
    g, _ = _sklearn_loss(power, link).gradient_hessian(y_true=y[30:], raw_prediction=Xt @ theta)
    P = np.r_[np.ones(X.shape[1]), 0.0]
    expected = Xt.T @ (w[30:] * g) + 0.01 * w[30:].sum() * P * theta
    assert model.gradient_residual(X[30:], y[30:]) == pytest.approx(
        np.linalg.norm(expected), rel=1e-8
    )
