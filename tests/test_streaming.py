"""Out-of-core fitting from row chunks equals the in-memory fit."""

import numpy as np
import pytest
import scipy.sparse as sp
from joblib import parallel_config

from sklearn_ssse import UnlearnableLogisticRegression, UnlearnableRidge
from sklearn_ssse.curvature import (
    BlockFisherInverse,
    curvature_pass,
    iter_chunks,
    weighted_gram,
)


def _relative(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


def _inverses(model):
    return np.array(model.curvature_.inverse_dense())


@pytest.fixture
def regression():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1500, 12))
    Y = X @ rng.standard_normal((12, 3)) + rng.standard_normal((1500, 3))
    return X, Y


@pytest.fixture
def multilabel():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((1200, 8))
    Y = (X[:, :3] + rng.logistic(size=(1200, 3)) > np.array([0.0, 0.5, -0.5])).astype(int)
    return X, Y


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("one_d", [True, False])
def test_ridge_streaming_equals_fit(regression, fit_intercept, one_d):
    X, Y = regression
    Y = Y[:, 0] if one_d else Y
    expected = UnlearnableRidge(alpha=0.7, fit_intercept=fit_intercept).fit(X, Y)
    model = UnlearnableRidge(alpha=0.7, fit_intercept=fit_intercept).fit_streaming(
        iter_chunks(X, Y, chunk_rows=400)
    )
    assert np.shape(model.coef_) == np.shape(expected.coef_)
    assert _relative(model.coef_, expected.coef_) < 1e-10
    assert _relative(model.intercept_, expected.intercept_) < 1e-10 or not fit_intercept
    assert _relative(_inverses(model), _inverses(expected)) < 1e-10
    assert model.n_samples_ == expected.n_samples_ == X.shape[0]
    # Both forget the same samples identically (fingerprints were accumulated too).
    expected.forget(X[:7], Y[:7])
    model.forget(X[:7], Y[:7])
    assert _relative(model.coef_, expected.coef_) < 1e-10


def test_ridge_one_shot_iterator_and_sparse_chunks(regression):
    X, Y = regression
    expected = UnlearnableRidge(alpha=0.3).fit(X, Y)
    chunks = ((sp.csr_matrix(X[i : i + 256]), Y[i : i + 256]) for i in range(0, len(X), 256))
    model = UnlearnableRidge(alpha=0.3).fit_streaming(chunks)
    assert _relative(model.coef_, expected.coef_) < 1e-10


def test_ridge_memmap_source(regression, tmp_path):
    X, Y = regression
    path = tmp_path / "X.f64"
    stored = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    stored[:] = X
    stored.flush()
    del stored
    mapped = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)
    model = UnlearnableRidge().fit_streaming(iter_chunks(mapped, Y, chunk_rows=333))
    expected = UnlearnableRidge().fit(X, Y)
    assert _relative(model.coef_, expected.coef_) < 1e-10
    # the mapping is still readable after its pages were released
    assert np.array_equal(np.asarray(mapped[:5]), X[:5])


def test_ridge_empirical_fisher_two_passes(regression):
    X, Y = regression
    params = dict(alpha=0.5, curvature="empirical_fisher", damping=1e-3)
    expected = UnlearnableRidge(**params).fit(X, Y)
    model = UnlearnableRidge(**params).fit_streaming(iter_chunks(X, Y, chunk_rows=500))
    assert model.curvature_.n_blocks_ == 3
    assert _relative(_inverses(model), _inverses(expected)) < 1e-10


@pytest.mark.parametrize("target", ["multilabel", "binary", "multiclass"])
def test_logistic_streaming_matches_fit(multilabel, target):
    X, Y = multilabel
    y = {"multilabel": Y, "binary": Y[:, 0], "multiclass": Y[:, 0] + Y[:, 1]}[target]
    # The streaming fits build one-vs-rest problems (multinomial is fitted in memory only).
    ovr = dict(C=0.5, multi_class="ovr")
    expected = UnlearnableLogisticRegression(tol=1e-12, max_iter=10_000, **ovr).fit(X, y)
    model = UnlearnableLogisticRegression(**ovr).fit_streaming(iter_chunks(X, y, chunk_rows=300))
    # Newton and lbfgs reach the same optimum.
    assert _relative(model.coef_, expected.coef_) < 1e-6
    assert np.array_equal(model.predict(X), expected.predict(X))
    # The curvature pass at fixed parameters equals the in-memory build.
    again = curvature_pass(expected, iter_chunks(X, y, chunk_rows=300))
    reference = UnlearnableLogisticRegression(tol=1e-12, max_iter=10_000, **ovr).fit(X, y)
    assert _relative(_inverses(again), _inverses(reference)) < 1e-10
    model.forget(X[:3], y[:3])
    assert model.n_samples_ == X.shape[0] - 3


def test_logistic_needs_reiterable(multilabel):
    X, Y = multilabel
    chunks = ((X[i : i + 100], Y[i : i + 100]) for i in range(0, len(X), 100))
    with pytest.raises(TypeError, match="one-shot iterator"):
        UnlearnableLogisticRegression().fit_streaming(chunks)
    # a callable returning a fresh iterator is fine
    model = UnlearnableLogisticRegression().fit_streaming(
        lambda: ((X[i : i + 100], Y[i : i + 100]) for i in range(0, len(X), 100)),
    )
    assert model.coef_.shape == (3, 8)


def test_parallel_chunks_any_joblib_backend(multilabel):
    X, Y = multilabel
    serial = UnlearnableLogisticRegression().fit_streaming(iter_chunks(X, Y, chunk_rows=200))
    with parallel_config(backend="threading"):
        parallel = UnlearnableLogisticRegression().fit_streaming(
            iter_chunks(X, Y, chunk_rows=200, n_jobs=2)
        )
    assert _relative(parallel.coef_, serial.coef_) < 1e-10
    assert _relative(_inverses(parallel), _inverses(serial)) < 1e-10


def test_weighted_gram_is_symmetric_and_contiguous():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((700, 300))
    w = rng.random(700)
    G = weighted_gram(X, w, fit_intercept=True, chunk_rows=128)
    Xt = np.hstack([X, np.ones((700, 1))])
    assert G.flags.c_contiguous
    assert np.array_equal(G, G.T)
    assert _relative(G, Xt.T @ (w[:, None] * Xt)) < 1e-12


@pytest.mark.parametrize("damping", [0.0, 1e-2])
def test_prepare_change_with_rhs_equals_solve(damping):
    rng = np.random.default_rng(4)
    factors = [rng.standard_normal((400, 30)) for _ in range(3)]
    engine = BlockFisherInverse(damping=damping).fit(factors, penalty=np.full(30, 0.1))
    engine.downdate([U[:5] for U in factors])  # a pending term exists
    leaving = [U[5:9] for U in factors]
    rhs = [rng.standard_normal(30), rng.standard_normal((30, 2)), rng.standard_normal(30)]
    change = engine.prepare_change(leaving, rhs=rhs)
    expected = engine.solve(rhs, change=engine.prepare_change(leaving))
    for got, want in zip(change.solutions, expected):
        assert got.shape == want.shape
        assert _relative(got, want) < 1e-12


@pytest.mark.parametrize("damping", [0.0, 1e-2])
@pytest.mark.parametrize("k", [1, 3, 9])
def test_prepare_change_rhs_in_span_of_factors(damping, k):
    # Gradient sums of the leaving samples lie in the span of their factor columns; the
    # solve then reuses base⁻¹W (one pass with k columns) and must equal the plain solve.
    rng = np.random.default_rng(6)
    factors = [rng.standard_normal((400, 30)) for _ in range(3)]
    engine = BlockFisherInverse(damping=damping).fit(factors, penalty=np.full(30, 0.1))
    engine.downdate([U[:2] for U in factors])  # a pending term exists
    leaving = [U[10 : 10 + k] for U in factors]
    rhs = [U.T @ rng.standard_normal(k) for U in leaving[:2]]  # in the span
    rhs.append(rng.standard_normal(30))  # not in the span
    change = engine.prepare_change(leaving, rhs=rhs)
    expected = engine.solve(rhs, change=engine.prepare_change(leaving))
    for got, want in zip(change.solutions, expected):
        assert _relative(got, want) < 1e-11


def test_fit_gram_generator_factors_in_place():
    rng = np.random.default_rng(5)
    U = rng.standard_normal((200, 20))
    grams = [U.T @ U + np.eye(20) for _ in range(3)]
    copies = [G.copy() for G in grams]
    engine = BlockFisherInverse().fit_gram((G for G in grams), n_samples=200)
    for block, G in zip(engine.inverse_dense(), copies):
        assert _relative(block, 200 * np.linalg.inv(G)) < 1e-10


def test_module_functions_are_deprecated_wrappers_of_the_methods():
    """``sklearn_ssse.curvature.fit_streaming`` / ``fit_dask`` still work, warn, and give
    the same model as the estimator methods."""
    from sklearn_ssse.curvature import fit_streaming

    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(200, 5)), rng.normal(size=200)
    with pytest.warns(FutureWarning, match="model.fit_streaming"):
        old = fit_streaming(UnlearnableRidge(alpha=0.5), iter_chunks(X, y, chunk_rows=64))
    new = UnlearnableRidge(alpha=0.5).fit_streaming(iter_chunks(X, y, chunk_rows=64))
    np.testing.assert_array_equal(old.coef_, new.coef_)
