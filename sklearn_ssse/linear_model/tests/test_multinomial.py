"""Multinomial UnlearnableLogisticRegression: fits like scikit-learn's LogisticRegression on
a multiclass target, and its erasure step equals an independent dense Newton step taken in
the complement of the softmax's intercept-shift direction."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sklearn_ssse import UnlearnableLogisticRegression

TIGHT = dict(tol=1e-10, max_iter=20_000)


def _theta(model):
    return np.hstack([np.atleast_2d(model.coef_), np.reshape(model.intercept_, (-1, 1))])


def _load(name):
    loader = {"iris": load_iris, "wine": load_wine, "digits": load_digits}[name]
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return np.nan_to_num(X), y


@pytest.fixture(scope="module")
def digits():
    return _load("digits")


def _relative(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def _dense_step(theta, X, Y, w, removed, C, curvature="hessian", damping=0.0, leave_out=True):
    """θ + H⁻¹ Σ_{i∈S} w_i∇ℓ_i in v^⊥, H the dense Hessian (or Fisher) of D∖S, from formulas
    (for the Hessian, the right-hand side is the D∖S objective's gradient, fit residual
    included)."""
    n, p = X.shape
    K, d = theta.shape
    Xt = np.hstack([X, np.ones((n, 1))])
    P = softmax(Xt @ theta.T, axis=1)
    keep = np.setdiff1d(np.arange(n), removed)
    summed = keep if leave_out else np.arange(n)
    H = np.zeros((K * d, K * d))
    for i in summed:
        if curvature == "hessian":
            M = np.diag(P[i]) - np.outer(P[i], P[i])
        else:
            r = P[i] - Y[i]
            M = np.outer(r, r)
        H += w[i] * np.kron(M, np.outer(Xt[i], Xt[i]))
    H += np.diag(np.tile(np.r_[np.full(p, 1.0 / C), 0.0], K))
    H = H / len(summed) + damping * np.eye(K * d)
    g = sum(w[i] * np.kron(P[i] - Y[i], Xt[i]) for i in removed)
    if curvature == "hessian":
        # The Newton step of the D∖S objective from where the fit stopped: its gradient
        # there is the fit's residual Σ_D w_i∇ℓ_i + Pθ minus the removed samples' terms.
        penalty = np.tile(np.r_[np.full(p, 1.0 / C), 0.0], K)
        residual = sum(w[i] * np.kron(P[i] - Y[i], Xt[i]) for i in range(n))
        g = g - (residual + penalty * theta.ravel())
    v = np.zeros((K, d))
    v[:, -1] = 1.0
    v = v.ravel() / np.linalg.norm(v)
    Q = np.linalg.svd(np.eye(K * d) - np.outer(v, v))[0][:, : K * d - 1]  # basis of v^⊥
    z = np.linalg.solve(Q.T @ H @ Q, Q.T @ g) / len(keep)
    return theta + (Q @ z).reshape(K, d)


@pytest.mark.parametrize("name", ["iris", "wine", "digits"])
def test_fit_matches_sklearn_multinomial(name):
    X, y = _load(name)
    ours = UnlearnableLogisticRegression(C=0.5, **TIGHT).fit(X, y)
    ref = LogisticRegression(C=0.5, **TIGHT).fit(X, y)
    K = len(np.unique(y))
    assert ours.coef_.shape == ref.coef_.shape == (K, X.shape[1])
    assert ours.curvature_.n_blocks_ == 1 and ours.curvature_.block_sizes_ == [K * (X.shape[1] + 1)]
    assert _relative(ours.coef_, ref.coef_) < 1e-6
    assert _relative(ours.intercept_, ref.intercept_) < 1e-6
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(
        ours.predict_log_proba(X), ref.predict_log_proba(X), rtol=1e-6, atol=1e-8
    )
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_sparse_and_weighted_fits_match_sklearn():
    X, y = _load("wine")
    w = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    X = np.where(np.abs(X) > 0.5, X, 0.0)
    for data in (X, sp.csr_matrix(X)):
        ours = UnlearnableLogisticRegression(C=0.3, **TIGHT).fit(data, y, sample_weight=w)
        ref = LogisticRegression(C=0.3, **TIGHT).fit(data, y, sample_weight=w)
        assert _relative(_theta(ours), _theta(ref)) < 1e-6
        np.testing.assert_allclose(ours.predict_proba(data), ref.predict_proba(data), rtol=1e-6)
    ours = UnlearnableLogisticRegression(C=0.3, class_weight="balanced", **TIGHT).fit(X, y)
    ref = LogisticRegression(C=0.3, class_weight="balanced", **TIGHT).fit(X, y)
    assert _relative(_theta(ours), _theta(ref)) < 1e-6


def test_ovr_option_is_per_class_binary_fits():
    X, y = _load("iris")
    model = UnlearnableLogisticRegression(C=1.0, multi_class="ovr", **TIGHT).fit(X, y)
    assert model.curvature_.n_blocks_ == 3
    for c in range(3):
        ref = LogisticRegression(C=1.0, **TIGHT).fit(X, y == c)
        np.testing.assert_allclose(model.coef_[c], ref.coef_[0], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)


@pytest.mark.parametrize(
    "curvature, leave_out, damping",
    [
        ("hessian", True, 0.0),
        ("hessian", True, 1e-3),
        ("empirical_fisher", True, 0.0),
        ("empirical_fisher", False, 1e-4),  # the paper's SSSE
    ],
)
def test_forget_equals_dense_constrained_newton_step(curvature, leave_out, damping):
    X, y = _load("iris")
    X = X[::2]
    y = y[::2]
    C, removed = 0.7, np.arange(0, 75, 7)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    model = UnlearnableLogisticRegression(
        C=C, curvature=curvature, leave_out=leave_out, damping=damping, **TIGHT
    ).fit(X, y, sample_weight=w)
    theta = _theta(model)
    Y = (y[:, None] == model.classes_).astype(float)
    expected = _dense_step(theta, X, Y, w, removed, C, curvature, damping, leave_out)
    model.forget(X[removed], y[removed])
    got = _theta(model)
    assert np.max(np.abs(got - expected)) < 1e-10 * max(1.0, np.max(np.abs(expected)))
    # the intercepts' mean stays where the fit left it
    assert abs(got[:, -1].mean() - theta[:, -1].mean()) < 1e-13


def test_downdate_is_the_leave_out_curvature_and_requests_compose():
    X, y = _load("wine")
    model = UnlearnableLogisticRegression(C=0.5, **TIGHT).fit(X, y)
    fresh = UnlearnableLogisticRegression(C=0.5, **TIGHT).fit(X, y)
    model.forget(X[:6], y[:6]).forget(X[6:11], y[6:11])
    assert model.n_samples_ == len(y) - 11
    # The stored curvature equals the one built directly over D∖S at the fitted θ.
    theta = _theta(fresh)
    Y = (y[:, None] == fresh.classes_).astype(float)
    direct = fresh._coupled_gram(X[11:], Y[11:], theta, None)
    stored = model.curvature_.to_dense()[0] * (len(y) - 11)
    # Both hold c·vvᵀ along the null direction v (c taken at build time); off v they agree.
    v = fresh._null_direction()
    project = np.eye(len(v)) - np.outer(v, v)
    np.testing.assert_allclose(project @ stored @ project, project @ direct @ project, atol=1e-9)
    np.testing.assert_allclose(stored @ v, (v @ stored @ v) * v, atol=1e-9)


def test_forget_is_close_to_a_tight_refit(digits):
    X, y = digits
    removed = np.arange(0, 1797, 90)  # 20 samples
    keep = np.setdiff1d(np.arange(len(y)), removed)
    model = UnlearnableLogisticRegression(C=0.1, **TIGHT).fit(X, y)
    start = _theta(model)
    model.forget(X[removed], y[removed])
    refit = _theta(LogisticRegression(C=0.1, tol=1e-12, max_iter=50_000).fit(X[keep], y[keep]))
    # scikit-learn's refit is determined up to the common intercept shift: compare in v^⊥.
    refit[:, -1] += start[:, -1].mean() - refit[:, -1].mean()
    distance = np.linalg.norm(_theta(model) - refit) / np.linalg.norm(start - refit)
    assert distance < 0.05, distance
    np.testing.assert_array_equal(
        model.predict(X), LogisticRegression(C=0.1, **TIGHT).fit(X[keep], y[keep]).predict(X)
    )


def test_certified_multinomial_is_refused_and_streaming_is_refused():
    X, y = _load("iris")
    model = UnlearnableLogisticRegression(certified=True)
    with pytest.raises(ValueError, match="multi_class='ovr'"):
        model.fit(X, y)
    assert not hasattr(model, "coef_")
    with pytest.raises(NotImplementedError, match="multi_class='ovr'"):
        UnlearnableLogisticRegression()._encode_fit_targets(y)


@settings(max_examples=15, deadline=None)
@given(
    st.integers(0, 10_000),
    st.lists(st.integers(0, 59), min_size=1, max_size=6, unique=True),
    st.sampled_from([0.1, 1.0, 10.0]),
)
def test_property_forget_is_the_constrained_newton_step(seed, removed, C):
    X, y = _load("wine")
    rows = np.random.default_rng(seed).choice(len(y), 60, replace=False)
    X, y = X[rows][:, :5], y[rows]
    if len(np.unique(y)) < 3:
        return
    model = UnlearnableLogisticRegression(C=C, **TIGHT).fit(X, y)
    theta = _theta(model)
    Y = (y[:, None] == model.classes_).astype(float)
    expected = _dense_step(theta, X, Y, np.ones(len(y)), np.array(removed), C)
    model.forget(X[removed], y[removed])
    np.testing.assert_allclose(_theta(model), expected, rtol=1e-8, atol=1e-10)


def test_streaming_fit_of_a_multinomial_model_is_refused():
    from sklearn_ssse.curvature import fit_streaming, iter_chunks

    X, y = _load("iris")
    with pytest.raises(NotImplementedError, match="multi_class='ovr'"):
        fit_streaming(UnlearnableLogisticRegression(), iter_chunks(X, y, chunk_rows=50))


@pytest.mark.parametrize("stage", ["factors", "after-apply"])
def test_failed_request_leaves_the_multinomial_model_untouched(stage, monkeypatch):
    import copy
    import pickle

    from sklearn_ssse.curvature import BlockFisherInverse

    X, y = _load("iris")
    model = UnlearnableLogisticRegression(C=0.5).fit(X, y).forget(X[:3], y[:3])
    before = pickle.dumps(copy.deepcopy(model).__getstate__())

    def fail(*args, **kwargs):
        raise RuntimeError("injected")

    original_apply = BlockFisherInverse.apply

    def apply_then_fail(self, change):
        original_apply(self, change)
        raise RuntimeError("injected")

    with monkeypatch.context() as patch:
        if stage == "factors":
            patch.setattr("sklearn_ssse.linear_model._logistic.removal_factors", fail)
        else:
            patch.setattr(BlockFisherInverse, "apply", apply_then_fail)
        with pytest.raises(RuntimeError, match="injected"):
            model.forget(X[10:14], y[10:14])
    assert pickle.dumps(model.__getstate__()) == before
