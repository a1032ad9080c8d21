"""Shared fixtures of the trust tests: real data sets, model configurations and a strict
comparison of two models' complete state."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklearn_ssse import (
    UnlearnableLinearSVC,
    UnlearnableLogisticRegression,
    UnlearnablePoissonRegressor,
    UnlearnableRidge,
    UnlearnableTweedieRegressor,
)
from sklearn_ssse.datasets import load_yeast


@pytest.fixture(autouse=True, scope="module")
def single_blas_thread():
    """The trust tests use small matrices; on a shared machine a multi-threaded BLAS only
    oversubscribes the cores (a 100x100 Cholesky then takes 0.1 s instead of 0.1 ms).
    Imported by each trust test module, so it applies to those modules only."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@functools.cache
def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@functools.cache
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y


@functools.cache
def diabetes_two_targets():
    X, y = load_diabetes(return_X_y=True)
    # Two real targets: the disease progression and the (held-out) blood-pressure column.
    return np.delete(X, 3, axis=1), np.column_stack([y, X[:, 3]])


@functools.cache
def diabetes_counts():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), np.round(y / 25.0)


@functools.cache
def digits():
    X, y = load_digits(return_X_y=True)
    keep = y < 4  # four classes keep the multiclass fits quick
    return StandardScaler().fit_transform(X[keep]), y[keep]


@functools.cache
def yeast():
    X, Y = load_yeast(return_X_y=True)
    X, Y = np.asarray(X, dtype=np.float64)[:400], np.asarray(Y)[:400]
    keep = (Y.min(axis=0) != Y.max(axis=0)) & (Y[:200].sum(axis=0) >= 2)
    return StandardScaler().fit_transform(X), Y[:, keep].astype(int)


#: name -> (model factory, data loader); the fits are small enough to repeat per test.
CONFIGS = {
    "logistic-binary": (lambda: UnlearnableLogisticRegression(C=0.1), breast_cancer),
    "logistic-fisher": (
        lambda: UnlearnableLogisticRegression(
            C=0.1, curvature="empirical_fisher", leave_out=False, damping=1e-4
        ),
        breast_cancer,
    ),
    "logistic-multiclass": (
        lambda: UnlearnableLogisticRegression(C=0.05, multi_class="ovr"),
        digits,
    ),
    "logistic-multinomial": (lambda: UnlearnableLogisticRegression(C=0.05), digits),
    "logistic-multilabel": (lambda: UnlearnableLogisticRegression(C=0.05), yeast),
    "ridge": (lambda: UnlearnableRidge(alpha=0.1), diabetes),
    "ridge-two-targets": (lambda: UnlearnableRidge(alpha=0.1), diabetes_two_targets),
    "logistic-certified": (
        lambda: UnlearnableLogisticRegression(
            C=0.01, certified=True, noise_sigma=10.0, random_state=0
        ),
        breast_cancer,
    ),
    "poisson": (lambda: UnlearnablePoissonRegressor(alpha=0.01), diabetes_counts),
    "tweedie": (lambda: UnlearnableTweedieRegressor(power=1.5, alpha=0.01), diabetes_counts),
    "linear-svc": (lambda: UnlearnableLinearSVC(C=0.1), digits),
    "ridge-certified": (
        lambda: UnlearnableRidge(alpha=0.1, certified=True, random_state=0),
        diabetes,
    ),
}


@functools.cache
def _fitted(name):
    factory, data = CONFIGS[name]
    X, y = data()
    return factory().fit(X, y)


def fitted(name):
    """A fresh fitted model of configuration ``name`` (a deep copy of a cached fit)."""
    import copy

    return copy.deepcopy(_fitted(name))


def data_of(name):
    return CONFIGS[name][1]()


def model_state(model):
    """The model's persisted state (everything but the lock)."""
    return model.__getstate__()


def assert_same_state(actual, expected, path="model", *, ignore_keys=()):
    """Assert that two objects hold exactly the same state, recursively and bit for bit.

    Arrays must agree in dtype, shape and every value (NaN equal to NaN); objects in type
    and every attribute. The estimators are compared through their pickled state.
    Dictionary entries whose key is in ``ignore_keys`` (e.g. the ``"time"`` of erasure log
    entries) are skipped."""
    if hasattr(expected, "get_params") and hasattr(expected, "__getstate__"):
        assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"
        actual, expected = model_state(actual), model_state(expected)
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), f"{path}: {type(actual)} is not an array"
        assert actual.dtype == expected.dtype, f"{path}: dtype {actual.dtype} != {expected.dtype}"
        assert actual.shape == expected.shape, f"{path}: shape {actual.shape} != {expected.shape}"
        assert np.array_equal(actual, expected, equal_nan=actual.dtype.kind in "fc"), (
            f"{path}: values differ"
        )
        return
    assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), f"{path}: keys {actual.keys() ^ expected.keys()}"
        for key in expected:
            if key not in ignore_keys:
                assert_same_state(
                    actual[key], expected[key], f"{path}[{key!r}]", ignore_keys=ignore_keys
                )
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), f"{path}: length differs"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same_state(a, e, f"{path}[{i}]", ignore_keys=ignore_keys)
    elif dataclasses.is_dataclass(expected) or hasattr(expected, "__dict__"):
        assert_same_state(vars(actual), vars(expected), f"{path}.__dict__", ignore_keys=ignore_keys)
    elif isinstance(expected, float) and np.isnan(expected):
        assert np.isnan(actual), f"{path}: {actual!r} != nan"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def matches_either(actual, candidates, ignore_keys=("time",)):
    """Whether ``actual`` has exactly the state of one of ``candidates``."""
    for candidate in candidates:
        try:
            assert_same_state(actual, candidate, ignore_keys=ignore_keys)
        except AssertionError:
            continue
        return True
    return False


def certified_logistic(**params):
    """A certified logistic model whose budget allows a few dozen removals on breast_cancer.

    Its noise is reproducible (the documented opt-in): the tests count removals within the
    budget, which depends on the draw, and must not turn red by chance."""
    from sklearn_ssse import UnlearnableLogisticRegression

    options = dict(
        C=0.01,
        certified=True,
        noise_sigma=10.0,
        certified_epsilon=1.0,
        multi_class="ovr",
        reproducible_noise=True,
    )
    options.update(params)
    return UnlearnableLogisticRegression(random_state=0, **options)
