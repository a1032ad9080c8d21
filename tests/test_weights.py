"""Sample and class weights: stored with each sample's fingerprint at fit time, removed
with the sample, checked against scikit-learn's weighted refits, and routed as metadata."""

import copy
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_ssse import AmbiguousWeightError, UnlearnableLogisticRegression, UnlearnableRidge
from sklearn_ssse._fingerprint import FingerprintMultiset, row_fingerprints

TIGHT = dict(tol=1e-10, max_iter=20_000)
X_DIAB, Y_DIAB = load_diabetes(return_X_y=True)
W_DIAB = np.random.default_rng(0).uniform(0.1, 5.0, len(Y_DIAB))


def _theta(model):
    return np.hstack([np.atleast_2d(model.coef_), np.reshape(model.intercept_, (-1, 1))])


def _relative(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("sparse", [False, True])
def test_weighted_ridge_forget_equals_weighted_refit(sparse):
    X = sp.csr_matrix(X_DIAB) if sparse else X_DIAB
    model = UnlearnableRidge(alpha=0.1).fit(X, Y_DIAB, sample_weight=W_DIAB)
    ref = Ridge(alpha=0.1).fit(X_DIAB, Y_DIAB, sample_weight=W_DIAB)
    assert _relative(_theta(model), _theta(ref)) < 1e-10
    removed = np.arange(0, 442, 17)
    keep = np.setdiff1d(np.arange(442), removed)
    model.forget(X[removed], Y_DIAB[removed])  # each with the weight it was trained with
    refit = Ridge(alpha=0.1).fit(X_DIAB[keep], Y_DIAB[keep], sample_weight=W_DIAB[keep])
    assert _relative(_theta(model), _theta(refit)) < 1e-8
    np.testing.assert_allclose(model.predict(X_DIAB), refit.predict(X_DIAB), rtol=1e-8)


@settings(max_examples=20, deadline=None)
@given(
    st.lists(st.integers(0, 441), min_size=1, max_size=15, unique=True),
    st.integers(0, 2**31 - 1),
    st.booleans(),
)
def test_property_weighted_ridge_is_exact(removed, seed, explicit):
    w = np.random.default_rng(seed).uniform(0.01, 10.0, 442)
    model = UnlearnableRidge(alpha=0.5).fit(X_DIAB, Y_DIAB, sample_weight=w)
    model.forget(X_DIAB[removed], Y_DIAB[removed], sample_weight=w[removed] if explicit else None)
    keep = np.setdiff1d(np.arange(442), removed)
    refit = Ridge(alpha=0.5).fit(X_DIAB[keep], Y_DIAB[keep], sample_weight=w[keep])
    assert _relative(_theta(model), _theta(refit)) < 1e-8


def test_a_given_weight_must_match_and_a_mismatch_changes_nothing():
    model = UnlearnableRidge(alpha=0.1).fit(X_DIAB, Y_DIAB, sample_weight=W_DIAB)
    before = pickle.dumps(model.__getstate__())
    with pytest.raises(ValueError, match="do not match a training sample"):
        model.forget(X_DIAB[:3], Y_DIAB[:3], sample_weight=W_DIAB[:3] * 1.5)
    assert pickle.dumps(model.__getstate__()) == before
    for bad, match in [(np.ones(2), "shape"), ([1.0, -1.0, 1.0], "> 0"), (["a"] * 3, "numeric")]:
        with pytest.raises(ValueError, match=match):
            model.forget(X_DIAB[:3], Y_DIAB[:3], sample_weight=bad)
    assert pickle.dumps(model.__getstate__()) == before
    model.forget(X_DIAB[:3], Y_DIAB[:3], sample_weight=W_DIAB[:3])
    assert model.n_samples_ == 439


def test_copies_with_different_weights_are_distinct():
    X = np.vstack([X_DIAB, X_DIAB[:1]])
    y = np.r_[Y_DIAB, Y_DIAB[:1]]
    w = np.r_[np.ones(442), 3.0]  # sample 0 twice: weights 1 and 3
    model = UnlearnableRidge(alpha=0.1).fit(X, y, sample_weight=w)
    before = pickle.dumps(model.__getstate__())
    with pytest.raises(AmbiguousWeightError, match="different sample weights"):
        model.forget(X[:1], y[:1])
    assert pickle.dumps(model.__getstate__()) == before
    model.forget(X[:1], y[:1], sample_weight=[3.0])
    refit = Ridge(alpha=0.1).fit(X_DIAB, Y_DIAB)  # the weight-1 copy remains
    assert _relative(_theta(model), _theta(refit)) < 1e-8
    # One copy left: an unweighted request now names it unambiguously.
    model.forget(X[:1], y[:1])
    refit = Ridge(alpha=0.1).fit(X_DIAB[1:], Y_DIAB[1:])
    assert _relative(_theta(model), _theta(refit)) < 1e-8
    with pytest.raises(ValueError, match="do not match"):
        model.forget(X[:1], y[:1])


def test_unweighted_model_accepts_unit_weights_only():
    model = UnlearnableRidge(alpha=0.1).fit(X_DIAB, Y_DIAB)
    assert model.fingerprints_.weights is None
    with pytest.raises(ValueError, match="do not match"):
        model.forget(X_DIAB[:2], Y_DIAB[:2], sample_weight=[1.0, 2.0])
    model.forget(X_DIAB[:2], Y_DIAB[:2], sample_weight=[1.0, 1.0])
    assert model.n_samples_ == 440


def test_fingerprint_multiset_with_weights():
    digests = row_fingerprints(X_DIAB[[0, 0, 1, 2]], Y_DIAB[[0, 0, 1, 2]])
    prints = FingerprintMultiset(digests, np.array([1.0, 2.0, 2.0, 2.0]))
    assert len(prints) == 4 and prints.nbytes == 4 * (16 + 8 + 8)
    np.testing.assert_array_equal(prints.resolve_weights(digests[2:]), [2.0, 2.0])
    with pytest.raises(AmbiguousWeightError):
        prints.resolve_weights(digests[:1])
    np.testing.assert_array_equal(prints.missing(digests[:1], np.array([3.0])), [0])
    np.testing.assert_array_equal(prints.missing(digests[[0, 0]], np.array([2.0, 2.0])), [1])
    rest = prints.without(digests[:1], np.array([2.0]))
    assert len(rest) == 3
    np.testing.assert_array_equal(rest.resolve_weights(digests[:1]), [1.0])
    with pytest.raises(ValueError, match="not stored"):
        rest.without(digests[:1], np.array([2.0]))


def test_weighted_binary_logistic_is_the_weighted_newton_step(cancer):
    X, y = cancer
    w = np.random.default_rng(3).uniform(0.2, 4.0, len(y))
    C, k = 0.3, 15
    model = UnlearnableLogisticRegression(C=C, **TIGHT).fit(X, y, sample_weight=w)
    ref = LogisticRegression(C=C, **TIGHT).fit(X, y, sample_weight=w)
    assert _relative(_theta(model), _theta(ref)) < 1e-6
    theta = _theta(model)[0]
    n = len(y)
    Xt = np.hstack([X, np.ones((n, 1))])
    p = expit(Xt @ theta)
    P = np.diag(np.r_[np.full(X.shape[1], 1 / C), 0.0])
    H = Xt[k:].T @ ((w * p * (1 - p))[k:, None] * Xt[k:]) + P
    # The D∖S objective's gradient at θ: the weighted fit residual minus the removed terms.
    fit_residual = Xt.T @ (w * (p - y)) + P @ theta
    expected = theta + np.linalg.solve(H, Xt[:k].T @ (w * (p - y))[:k] - fit_residual)
    model.forget(X[:k], y[:k])
    np.testing.assert_allclose(_theta(model)[0], expected, rtol=1e-9, atol=1e-12)
    refit = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(
        X[k:], y[k:], sample_weight=w[k:]
    )
    start = _theta(ref)
    distance = np.linalg.norm(_theta(model) - _theta(refit)) / np.linalg.norm(start - _theta(refit))
    assert distance < 0.05, distance


@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0, 1: 0.5}])
def test_class_weight_matches_sklearn_and_is_fixed_at_fit(cancer, class_weight):
    X, y = cancer
    model = UnlearnableLogisticRegression(C=0.3, class_weight=class_weight, **TIGHT).fit(X, y)
    ref = LogisticRegression(C=0.3, class_weight=class_weight, **TIGHT).fit(X, y)
    assert _relative(_theta(model), _theta(ref)) < 1e-6
    # The per-sample weights of the fit are stored; forget removes them and does not
    # rebalance: it equals the weighted model fitted with those weights, then erased.
    weights = np.where(
        y == 1,
        *(
            [len(y) / (2 * np.sum(y == 1)), len(y) / (2 * np.sum(y == 0))]
            if class_weight == "balanced"
            else [0.5, 3.0]
        ),
    )
    same = UnlearnableLogisticRegression(C=0.3, **TIGHT).fit(X, y, sample_weight=weights)
    assert _relative(_theta(same), _theta(model)) < 1e-6
    model.forget(X[:10], y[:10])
    same.forget(X[:10], y[:10])
    assert _relative(_theta(same), _theta(model)) < 1e-6
    # set_params(class_weight=...) after fit would change the stored objective: refused.
    model.set_params(class_weight=None)
    with pytest.raises(ValueError, match="class_weight"):
        model.forget(X[10:12], y[10:12])


def test_class_weight_refused_for_multilabel_and_bad_weights_refused():
    Y = np.column_stack([Y_DIAB > 140, Y_DIAB > 100]).astype(int)
    with pytest.raises(ValueError, match="class_weight"):
        UnlearnableLogisticRegression(class_weight="balanced").fit(X_DIAB, Y)
    with pytest.raises(ValueError, match="non-negative"):
        UnlearnableRidge().fit(X_DIAB, Y_DIAB, sample_weight=-W_DIAB)
    with pytest.raises(ValueError, match="certified"):
        UnlearnableRidge(certified=True).fit(X_DIAB, Y_DIAB, sample_weight=W_DIAB)


def test_metadata_routing_of_sample_weight():
    with sklearn.config_context(enable_metadata_routing=True):
        model = (
            UnlearnableRidge(alpha=0.1)
            .set_fit_request(sample_weight=True)
            .set_score_request(sample_weight=False)
        )
        scores = cross_val_score(model, X_DIAB, Y_DIAB, cv=3, params={"sample_weight": W_DIAB})
        ref = (
            Ridge(alpha=0.1)
            .set_fit_request(sample_weight=True)
            .set_score_request(sample_weight=False)
        )
        expected = cross_val_score(ref, X_DIAB, Y_DIAB, cv=3, params={"sample_weight": W_DIAB})
        np.testing.assert_allclose(scores, expected, rtol=1e-8)
        pipe = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=False),
            UnlearnableRidge(alpha=0.1).set_fit_request(sample_weight=True),
        ).fit(X_DIAB, Y_DIAB, sample_weight=W_DIAB)
        scaled = StandardScaler().fit_transform(X_DIAB)
        refit = Ridge(alpha=0.1).fit(scaled, Y_DIAB, sample_weight=W_DIAB)
        np.testing.assert_allclose(pipe[-1].coef_, refit.coef_, rtol=1e-8)
        assert copy.deepcopy(pipe[-1]).fingerprints_.weights is not None
