"""Curvature and models from dask arrays, on a loopback dask.distributed cluster."""

import numpy as np
import pytest
from joblib import parallel_config

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

from sklearn_ssse import UnlearnableLogisticRegression, UnlearnableRidge  # noqa: E402
from sklearn_ssse._dask import DaskChunks, dask_weighted_gram, fit_dask  # noqa: E402
from sklearn_ssse.curvature import (  # noqa: E402
    BlockFisherInverse,
    iter_chunks,
    weighted_gram,
)


def _relative(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",  # real sockets, on loopback only
        host="127.0.0.1",
        dashboard_address=None,
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 10))
    Y = (X[:, :3] + rng.logistic(size=(2000, 3)) > 0).astype(int)
    return X, Y


def test_dask_weighted_gram(client, data):
    X, _ = data
    w = np.random.default_rng(1).random(X.shape[0])
    Xd = da.from_array(X, chunks=(300, 4))  # column chunks too: rechunked to whole rows
    G = dask_weighted_gram(Xd, da.from_array(w, chunks=250), fit_intercept=True)
    assert _relative(G, weighted_gram(X, w, fit_intercept=True)) < 1e-10


def test_fit_dask_ridge_equals_fit(client, data):
    X, Y = data
    y = Y.astype(float) + X[:, :3]
    model = UnlearnableRidge(alpha=0.4).fit_dask(da.from_array(X, chunks=(256, 10)), y)
    with pytest.warns(FutureWarning, match="model.fit_dask"):
        old = fit_dask(UnlearnableRidge(alpha=0.4), da.from_array(X, chunks=(256, 10)), y)
    np.testing.assert_allclose(old.coef_, model.coef_, rtol=1e-12)
    expected = UnlearnableRidge(alpha=0.4).fit(X, y)
    assert _relative(model.coef_, expected.coef_) < 1e-10
    assert (
        _relative(
            np.array(model.curvature_.inverse_dense()),
            np.array(expected.curvature_.inverse_dense()),
        )
        < 1e-10
    )
    model.forget(X[:4], y[:4])
    expected.forget(X[:4], y[:4])
    assert _relative(model.coef_, expected.coef_) < 1e-10


def test_fit_dask_logistic_curvature_equals_in_memory(client, data):
    X, Y = data
    source = DaskChunks(da.from_array(X, chunks=(400, 10)), da.from_array(Y, chunks=(400, 3)))
    model = UnlearnableLogisticRegression(C=0.5).fit_streaming(source)
    single = UnlearnableLogisticRegression(C=0.5).fit_streaming(iter_chunks(X, Y))
    assert _relative(model.coef_, single.coef_) < 1e-10
    # The stored curvature is the Hessian at the fitted parameters, built in memory here.
    Xt = np.hstack([X, np.ones((X.shape[0], 1))])
    theta = np.hstack([model.coef_, model.intercept_[:, None]])
    p = 1 / (1 + np.exp(-(Xt @ theta.T)))
    penalty = np.r_[np.full(10, 2.0), 0.0]
    grams = [
        weighted_gram(X, p[:, c] * (1 - p[:, c]), fit_intercept=True) + np.diag(penalty)
        for c in range(3)
    ]
    expected = BlockFisherInverse().fit_gram(grams, n_samples=X.shape[0]).inverse_dense()
    assert _relative(np.array(model.curvature_.inverse_dense()), np.array(expected)) < 1e-10


def test_joblib_dask_backend(client, data):
    X, Y = data
    serial = UnlearnableLogisticRegression().fit_streaming(iter_chunks(X, Y, chunk_rows=500))
    with parallel_config(backend="dask"):
        remote = UnlearnableLogisticRegression().fit_streaming(
            iter_chunks(X, Y, chunk_rows=500, n_jobs=2)
        )
        factors = [X * 0.5, X * 0.25]
        engine = BlockFisherInverse(n_jobs=2, damping=1e-3).fit(factors)
    assert _relative(remote.coef_, serial.coef_) < 1e-10
    local = BlockFisherInverse(damping=1e-3).fit(factors)
    assert _relative(np.array(engine.inverse_dense()), np.array(local.inverse_dense())) < 1e-10
