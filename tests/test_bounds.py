"""The fit's residual in the erasure step, and the per-request distance bound (doc/bounds.rst).

Every claim is checked against refits from scratch with scikit-learn's own solver on real
data: the bound must never be below the true distance to a tight refit.
"""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from sklearn_ssse import (
    RefitRequired,
    RemovalBudgetError,
    UnlearnableLogisticRegression,
    UnlearnableRidge,
)
from sklearn_ssse.curvature import fit_streaming, iter_chunks
from sklearn_ssse.datasets import load_mulan, load_yeast

_CANDIDATES = [
    os.environ.get("SKLEARN_SSSE_SHARED_DATA", ""),
    Path(__file__).resolve().parents[1].parent / "shared" / "data",
    "/work/shared/data",
]
SHARED_DATA = next((Path(c) for c in _CANDIDATES if c and Path(c).is_dir()), None)


def _mulan(name):
    if name == "yeast":
        X, Y = load_yeast(return_X_y=True)
    else:
        path = None if SHARED_DATA is None else SHARED_DATA / f"mulan_{name}" / f"{name}-train.arff"
        if path is None or not path.is_file():
            pytest.skip(f"shared data set {name} not available")
        X, Y = load_mulan(path, return_X_y=True)
    return StandardScaler().fit_transform(np.asarray(X, dtype=float)), np.asarray(Y)


def _bundled(name):
    if name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
    elif name == "iris_binary":
        X, y = load_iris(return_X_y=True)
        y = (y == 1).astype(int)  # versicolor against the rest: not separable
    else:
        X, y = load_digits(return_X_y=True)
        y = (y % 2).astype(int)
    return StandardScaler().fit_transform(X), y


def _theta(model):
    return np.hstack([np.atleast_2d(model.coef_), np.reshape(model.intercept_, (-1, 1))])


def _tight_refit(X, Y, C):
    """scikit-learn's Newton–Cholesky solver per label, to round-off."""
    Y = Y.reshape(len(Y), -1)
    rows = []
    for label in range(Y.shape[1]):
        fit = LogisticRegression(C=C, tol=1e-12, max_iter=1000, solver="newton-cholesky")
        fit.fit(X, Y[:, label])
        rows.append(np.r_[fit.coef_[0], fit.intercept_])
    return np.array(rows)


# ------------------------------------------------------------------ the fit's residual
def _normalized_distances(X, Y, model, reference, rate=0.05, seed=0):
    """The fidelity protocol: erase 5% of the positives of each label of frequency <= 20%;
    ``‖θ̂ − θ₋S‖ / ‖θ*_tight − θ₋S‖`` per label."""
    rng = np.random.default_rng(seed)
    out = []
    for label in np.flatnonzero(Y.mean(axis=0) <= 0.2):
        positives = np.flatnonzero(Y[:, label] == 1)
        removed = rng.choice(positives, max(1, round(rate * len(positives))), replace=False)
        keep = np.setdiff1d(np.arange(len(X)), removed)
        refit = _tight_refit(X[keep], Y[keep], 1.0)
        erased = copy.deepcopy(model).forget(X[removed], Y[removed])
        out.append(
            np.linalg.norm(_theta(erased) - refit) / np.linalg.norm(_theta(reference) - refit)
        )
    return np.array(out)


@pytest.mark.parametrize("name", ["yeast", "scene"])
def test_a_loose_fit_tolerance_does_not_leak_into_the_erasure(name):
    X, Y = _mulan(name)
    loose = UnlearnableLogisticRegression(C=1.0, tol=1e-4).fit(X, Y)
    tight = UnlearnableLogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(X, Y)
    at_loose = _normalized_distances(X, Y, loose, tight)
    at_tight = _normalized_distances(X, Y, tight, tight)
    assert np.median(at_loose) <= 1.1 * np.median(at_tight)
    # Without the correction the loose fit's residual leaks into the step (the issue's
    # symptom), so the comparison above can fail.
    uncorrected = copy.deepcopy(loose)
    del uncorrected.__dict__["_objective_gradient"]
    assert np.median(_normalized_distances(X, Y, uncorrected, tight)) > 1.5 * np.median(at_tight)


def test_the_carried_residual_is_the_data_gradient_for_ridge():
    """Ridge: r ← r − Δ + M'v is exact, through several requests with eps != 1."""
    X, y = load_diabetes(return_X_y=True)
    model = UnlearnableRidge(alpha=0.1).fit(X, y)
    keep = np.ones(len(X), dtype=bool)
    for rows, eps in ((slice(0, 10), 0.5), (slice(10, 40), 1.0), (slice(40, 45), 2.0)):
        model.forget(X[rows], y[rows], eps=eps)
        keep[rows] = False
        Xt = np.hstack([X[keep], np.ones((keep.sum(), 1))])
        theta = _theta(model)[0]
        penalty = np.r_[np.full(X.shape[1], 0.1), 0.0]
        gradient = Xt.T @ (Xt @ theta - y[keep]) + penalty * theta
        scale = np.abs(Xt.T @ y[keep]).max()
        np.testing.assert_allclose(model._objective_gradient[0], gradient, atol=1e-10 * scale)
        entry = model.erasure_log_[-1]
        assert entry["gradient_residual_bound"] >= np.linalg.norm(gradient)
        refit = Ridge(alpha=0.1, solver="cholesky").fit(X[keep], y[keep])
        distance = np.linalg.norm(theta - np.r_[refit.coef_, refit.intercept_])
        assert entry["distance_bound"] >= distance
        # Tight: exact up to the round-off allowance of the solve.
        assert entry["distance_bound"] <= 1.01 * distance + 1e-8 * np.linalg.norm(theta)


def test_the_step_after_a_loose_fit_is_the_newton_step_from_there():
    """Independent dense computation: θ + (H_{D∖S} + P)⁻¹ (Σ_S ∇ℓ − ∇F_D(θ))."""
    X, y = _bundled("breast_cancer")
    C, k = 0.5, 9
    model = UnlearnableLogisticRegression(C=C, tol=1e-3).fit(X, y)
    theta = _theta(model)[0]
    Xt = np.hstack([X, np.ones((len(X), 1))])
    p = 1 / (1 + np.exp(-Xt @ theta))
    P = np.diag(np.r_[np.full(X.shape[1], 1 / C), 0.0])
    gradient_D = Xt.T @ (p - y) + P @ theta
    assert np.linalg.norm(gradient_D) > 1e-3  # the loose fit has a residual to correct
    H = Xt[k:].T @ ((p * (1 - p))[k:, None] * Xt[k:]) + P
    expected = theta + np.linalg.solve(H, Xt[:k].T @ (p - y)[:k] - gradient_D)
    model.forget(X[:k], y[:k])
    np.testing.assert_allclose(_theta(model)[0], expected, rtol=1e-9, atol=1e-12)


def test_persistence_and_refit_carry_the_residual(tmp_path):
    skops_io = pytest.importorskip("skops.io")
    from sklearn_ssse import SKOPS_TRUSTED_TYPES

    X, y = _bundled("breast_cancer")
    model = UnlearnableLogisticRegression(C=0.5, tol=1e-4).fit(X, y)
    model.forget(X[:5], y[:5])
    path = tmp_path / "m.joblib"
    joblib.dump(model, path)
    skops_path = tmp_path / "m.skops"
    skops_io.dump(model, skops_path)
    loaded = [
        pickle.loads(pickle.dumps(model)),
        joblib.load(path),
        skops_io.load(
            skops_path, trusted=SKOPS_TRUSTED_TYPES + skops_io.get_untrusted_types(file=skops_path)
        ),
    ]
    model.forget(X[5:20], y[5:20])
    for other in loaded:
        np.testing.assert_array_equal(
            other.erasure_log_[0]["fingerprints"], model.erasure_log_[0]["fingerprints"]
        )
        other.forget(X[5:20], y[5:20])
        np.testing.assert_array_equal(_theta(other), _theta(model))
        np.testing.assert_array_equal(other._objective_gradient, model._objective_gradient)
        assert other.erasure_log_[-1]["distance_bound"] == model.erasure_log_[-1]["distance_bound"]
    # A refit measures its own residual: the carried one is gone.
    model.fit(X[100:], y[100:])
    Xt = np.hstack([X[100:], np.ones((len(X) - 100, 1))])
    theta = _theta(model)[0]
    p = 1 / (1 + np.exp(-Xt @ theta))
    gradient = Xt.T @ (p - y[100:]) + np.r_[np.full(X.shape[1], 2.0), 0.0] * theta
    np.testing.assert_allclose(model._objective_gradient[0], gradient, atol=1e-12)


def test_a_streaming_fit_measures_the_residual_in_its_curvature_pass():
    X, Y = _mulan("yeast")
    X, Y = X[:600], Y[:600, :3]
    streamed = fit_streaming(
        UnlearnableLogisticRegression(C=1.0), iter_chunks(X, Y, chunk_rows=128), tol=1e-3
    )
    in_memory = copy.deepcopy(streamed)
    from sklearn_ssse import _bounds

    _bounds.fit_state_from_data(in_memory, X, Y.astype(float))
    for name in ("_objective_gradient", "_bound_gram"):
        np.testing.assert_allclose(
            getattr(streamed, name), getattr(in_memory, name), rtol=1e-10, atol=1e-10
        )
    assert streamed._bound_radius == pytest.approx(in_memory._bound_radius, rel=1e-12)
    ridge = fit_streaming(UnlearnableRidge(alpha=1.0), iter_chunks(X, Y[:, 0], chunk_rows=100))
    reference = copy.deepcopy(ridge)
    _bounds.fit_state_from_data(reference, X, Y[:, :1].astype(float))
    np.testing.assert_allclose(ridge._objective_gradient, reference._objective_gradient, atol=1e-9)
    np.testing.assert_allclose(ridge._bound_gram, reference._bound_gram, rtol=1e-12)


# ------------------------------------------------------------------ the distance bound
def _requests(n, rng, n_requests):
    """Request sizes from one sample to 20% of the data, log-uniform."""
    sizes = np.unique(np.round(np.exp(rng.uniform(0, np.log(0.2 * n), n_requests))).astype(int))
    return [int(s) for s in sizes]


# (name, C, number of request sizes, whether its smallest requests get a finite bound)
SETS = [
    ("breast_cancer", 0.5, 14, True),
    ("iris_binary", 1.0, 10, True),
    ("digits_binary", 0.1, 14, True),
    ("yeast", 1.0, 12, True),
    ("scene", 1.0, 10, False),
    ("emotions", 1.0, 12, False),
]


@pytest.mark.parametrize("name,C,n_requests,finite_expected", SETS)
def test_the_distance_bound_is_never_below_the_true_distance(name, C, n_requests, finite_expected):
    """Sequences of two requests (1 sample to 20% of the data each): ~130 requests in all."""
    X, Y = (
        _bundled(name)
        if name in ("breast_cancer", "iris_binary", "digits_binary")
        else (_mulan(name))
    )
    if name in ("yeast", "scene"):
        Y = Y[:, :4]  # the refits dominate the test's time; four labels are enough here
    rng = np.random.default_rng(0)
    model = UnlearnableLogisticRegression(C=C, tol=1e-8, max_iter=5000).fit(X, Y)
    checked = finite = 0
    for size in _requests(len(X), rng, n_requests):
        erased = copy.deepcopy(model)
        keep = np.ones(len(X), dtype=bool)
        for _ in range(2):
            rows = rng.choice(np.flatnonzero(keep), max(1, size // 2), replace=False)
            erased.forget(X[rows], Y[rows], bound="tight")
            keep[rows] = False
            refit = _tight_refit(X[keep], Y[keep], C)
            distance = np.linalg.norm(_theta(erased) - refit)
            entry = erased.erasure_log_[-1]
            bound = np.inf if entry["distance_bound"] is None else entry["distance_bound"]
            # The refit's own error is far below 1e-9·‖θ‖.
            assert bound >= distance - 1e-9 * np.linalg.norm(refit), (size, bound, distance)
            assert entry["gradient_residual_bound"] is None or entry["gradient_residual_bound"] >= 0
            checked += 1
            if np.isfinite(bound):
                finite += 1
            else:
                assert "no bound" in entry["bound_note"]
    assert checked >= n_requests
    # Small requests get a finite guarantee where the stored curvature allows one (on scene
    # and emotions the condition fails even for one sample: the bound is inf, not wrong).
    if finite_expected:
        assert finite >= 1


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(1, 6),
    C=st.sampled_from([0.1, 1.0, 10.0]),
    fit_intercept=st.booleans(),
)
def test_the_bound_holds_on_random_problems(seed, k, C, fit_intercept):
    rng = np.random.default_rng(seed)
    n, d = 200, 5
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) + rng.standard_normal(n) > 0).astype(int)
    model = UnlearnableLogisticRegression(C=C, fit_intercept=fit_intercept, tol=1e-10).fit(X, y)
    rows = rng.choice(n, k, replace=False)
    fast = copy.deepcopy(model).forget(X[rows], y[rows])  # the default, nearly free bound
    model.forget(X[rows], y[rows], bound="tight")
    keep = np.setdiff1d(np.arange(n), rows)
    refit = LogisticRegression(
        C=C, fit_intercept=fit_intercept, tol=1e-12, solver="newton-cholesky", max_iter=1000
    ).fit(X[keep], y[keep])
    theta_ref = np.r_[refit.coef_[0], refit.intercept_] if fit_intercept else refit.coef_[0]
    theta = np.r_[model.coef_[0], model.intercept_] if fit_intercept else model.coef_[0]
    distance = np.linalg.norm(theta - theta_ref)
    tight = model.erasure_log_[-1]
    assert tight["distance_bound"] is None or tight["distance_bound"] >= distance - 1e-9
    assert tight["bound_method"] == "eigh"
    loose = fast.erasure_log_[-1]
    assert loose["bound_method"] == "norm"
    assert loose["distance_bound"] is None or loose["distance_bound"] >= distance - 1e-9


def test_max_distance_refuses_and_changes_nothing():
    X, y = _bundled("breast_cancer")
    model = UnlearnableLogisticRegression(C=0.5).fit(X, y)
    before = pickle.dumps(model)
    probe = copy.deepcopy(model).forget(X[:3], y[:3], bound="tight")
    bound = probe.erasure_log_[-1]["distance_bound"]
    assert np.isfinite(bound)
    with pytest.raises(RefitRequired, match="max_distance") as caught:
        model.forget(X[:3], y[:3], max_distance=bound / 2)
    assert isinstance(caught.value, RemovalBudgetError)
    assert pickle.dumps(model) == before
    model.forget(X[:3], y[:3], max_distance=bound * 1.0001)
    np.testing.assert_array_equal(_theta(model), _theta(probe))
    for bad in (-1.0, "1", True):
        with pytest.raises(ValueError, match="max_distance"):
            model.forget(X[3:4], y[3:4], max_distance=bad)
    # Where no bound exists, every max_distance refuses.
    big = copy.deepcopy(model)
    with pytest.raises(RefitRequired, match="no bound"):
        big.forget(X[10:200], y[10:200], max_distance=1e6)


def test_no_bound_without_the_hessian():
    X, y = _bundled("breast_cancer")
    model = UnlearnableLogisticRegression(C=0.5, curvature="empirical_fisher").fit(X, y)
    model.forget(X[:3], y[:3])
    entry = model.erasure_log_[-1]
    assert entry["distance_bound"] is None and "empirical_fisher" in entry["bound_note"]
    damped = UnlearnableLogisticRegression(C=0.5, damping=1e-3).fit(X, y).forget(X[:3], y[:3])
    assert "damp" in damped.erasure_log_[-1]["bound_note"]


def test_the_norm_bound_of_the_inverse_for_wide_blocks(monkeypatch):
    """Blocks above the exact-eigenvalue size bound ‖M'⁻¹‖₂ by ‖M₀⁻¹‖·λ_max(X), from the
    stored base and the pending Woodbury term: checked against eigvalsh of the dense
    inverse, and through forget on real data (still never below the true distance)."""
    from sklearn_ssse import _bounds

    X, y = _bundled("digits_binary")
    model = UnlearnableLogisticRegression(C=0.1, tol=1e-10).fit(X, y)
    model.forget(X[:30], y[:30])  # a pending downdate
    rows = np.hstack([X[30:33], np.ones((3, 1))])
    change = model.curvature_.prepare_change([rows * 0.3], sign=-1)
    lam, _, _ = _bounds._norm_spectra(model.curvature_, change)
    dense, _, _ = _bounds._dense_spectra(model.curvature_, change)
    inverse = model.curvature_.solve([np.eye(rows.shape[1])], change=change)[0] / (change.n_samples)
    assert lam[0] >= dense[0] >= np.linalg.eigvalsh(inverse)[-1] * (1 - 1e-9)
    print("norm bound / λ_max", lam[0] / np.linalg.eigvalsh(inverse)[-1])

    monkeypatch.setattr(_bounds, "EXACT_MAX_SIZE", 10)
    erased = copy.deepcopy(model).forget(X[30:31], y[30:31])
    entry = erased.erasure_log_[-1]
    assert entry["bound_method"] == "norm"
    keep = np.r_[np.arange(31, len(X))]
    refit = _tight_refit(X[keep], y[keep], 0.1)
    bound = entry["distance_bound"]  # None: the condition has no solution (no bound, not wrong)
    assert bound is None or bound >= np.linalg.norm(_theta(erased) - refit)


@pytest.mark.parametrize("eps", [0.5, 1.0, 1.7])
def test_the_dual_residual_needs_no_extra_solve(eps):
    # The bound's M'⁻¹r_new is taken as (eps − 1)/eps · v instead of a pass over the blocks:
    # check that identity against an explicit solve with the curvature after the request.
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = UnlearnableLogisticRegression(C=1.0).fit(X, y)
    before = np.r_[model.coef_[0], model.intercept_]
    model.forget(X[:25], y[:25], eps=eps)
    step = np.r_[model.coef_[0], model.intercept_] - before
    curvature = model.curvature_
    solved = curvature.solve(list(model._objective_gradient))[0] / curvature.n_samples_
    np.testing.assert_allclose(
        solved, (eps - 1.0) / eps * step, rtol=1e-7, atol=1e-10 * np.linalg.norm(step)
    )
    assert model.erasure_log_[-1]["distance_bound"] is None or np.isfinite(
        model.erasure_log_[-1]["distance_bound"]
    )


def test_the_drift_forms_match_direct_quadratic_forms():
    from sklearn_ssse._bounds import _drift_forms

    rng = np.random.default_rng(3)
    A = rng.normal(size=(50, 12))
    gram = A.T @ A
    drift, step = rng.normal(size=(3, 12)), rng.normal(size=(3, 12))
    step[1] = -drift[1] * (1 - 1e-9)  # δ + v nearly cancels: the expansion must not go below
    forms = _drift_forms(gram, drift, step)
    scale = forms[0] + forms[2]  # the expansion is exact up to round-off of this size
    for row, u in enumerate((drift, drift + step, step)):
        direct = np.einsum("ld,de,le->l", u, gram, u)
        assert np.all(np.abs(forms[row] - direct) <= 1e-12 * scale)
        assert np.all(forms[row] >= direct * (1 - 1e-12))  # never below: an upper bound


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(1, 9), min_size=1, max_size=12))
def test_the_downdated_gram_equals_the_gram_of_the_remaining_rows(seed, sizes):
    """The bounds' Gram keeps the removed rows until it folds (at ``max_rows``): its
    products, its array and its norm bound equal those of the remaining rows' Gram."""
    from sklearn_ssse._bounds import DowndatedGram, _downdated_gram, gram_array

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(120, 7))
    gram = X.T @ X
    start = 0
    for k in sizes:
        gram = _downdated_gram(gram, X[start : start + k])
        start += k
        assert isinstance(gram, DowndatedGram) and gram.n_rows <= DowndatedGram.max_rows
        expected = X[start:].T @ X[start:]
        U = rng.normal(size=(3, 7))
        np.testing.assert_allclose(gram.left_product(U), U @ expected, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(gram_array(gram), expected, rtol=1e-10, atol=1e-10)
        assert gram.base_norm >= np.linalg.norm(expected) * (1 - 1e-12)


def test_the_model_folds_the_removed_rows_of_its_gram(monkeypatch):
    """Through forget: past ``max_rows`` removed rows the Gram is folded into a new array
    (the erased rows leave the bounds' state), and refine gets the remaining rows' Gram."""
    from sklearn_ssse._bounds import DowndatedGram, gram_array

    monkeypatch.setattr(DowndatedGram, "max_rows", 12)
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = UnlearnableLogisticRegression(C=1.0).fit(X, y)
    model.forget(X[:5], y[:5])
    assert model._bound_gram.n_rows == 5
    model.forget(X[5:10], y[5:10])
    assert model._bound_gram.n_rows == 10
    model.forget(X[10:15], y[10:15])  # 15 > 12: folded
    assert model._bound_gram.n_rows == 0
    Xt = np.hstack([X[15:], np.ones((len(X) - 15, 1))])
    np.testing.assert_allclose(gram_array(model._bound_gram), Xt.T @ Xt, rtol=1e-10, atol=1e-9)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(gram_array(restored._bound_gram), gram_array(model._bound_gram))


def test_the_carried_drift_form_bounds_the_direct_one(monkeypatch):
    """From the second request on, ``δᵀGδ`` is carried from the previous request (``G`` the
    Gram before this one's rows leave) instead of read from the Gram: over a sequence of
    requests it stays an upper bound of the direct form, to round-off of it, and gives the
    bounds the direct computation gives; a model whose state changed otherwise (refine,
    compact, a copy made before) computes it."""
    from sklearn_ssse import _bounds

    X, y = load_yeast(subset="train", return_X_y=True)
    model = UnlearnableLogisticRegression(C=1.0, tol=1e-8).fit(X[:800], y[:800])
    direct = copy.deepcopy(model)
    seen = []
    original = _bounds._drift_forms

    def checked(gram, drift, step, *, carried=None, removed=None):
        forms = original(gram, drift, step, carried=carried, removed=removed)
        exact = original(gram, drift, step)
        seen.append(carried is not None)
        assert np.all(forms >= exact * (1 - 1e-12) - 1e-300)
        np.testing.assert_allclose(forms, exact, rtol=1e-9, atol=1e-12 * np.max(exact))
        return forms

    monkeypatch.setattr(_bounds, "_drift_forms", checked)
    rng = np.random.default_rng(0)
    order = rng.permutation(800)
    for start in range(0, 60, 12):
        rows = order[start : start + 12]
        model.forget(X[rows], y[rows])
    assert seen == [False] + [True] * 4
    monkeypatch.setattr(_bounds, "_carried_drift_form", lambda estimator, drift: None)
    for start in range(0, 60, 12):
        rows = order[start : start + 12]
        direct.forget(X[rows], y[rows])
    for a, b in zip(model.erasure_log_, direct.erasure_log_):
        assert (a["distance_bound"] is None) == (b["distance_bound"] is None)
        if a["distance_bound"] is not None:
            assert a["distance_bound"] == pytest.approx(b["distance_bound"], rel=1e-9)
    monkeypatch.undo()
    assert _bounds._carried_drift_form(model, model._get_theta() - model._theta_at_fit) is not None
    model.compact()  # a new Gram: the carried form no longer applies
    assert _bounds._carried_drift_form(model, model._get_theta() - model._theta_at_fit) is None
