"""The catalogue of bad removal requests (issue 7, "Input and state").

Every bad input must raise an error that names the problem, and leave the model exactly
as it was: coefficients, curvature, counts, fingerprints and erasure log are compared
bit for bit with an untouched deep copy (``assert_same_state``).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import scipy.sparse as sp
from _trust_helpers import (
    assert_same_state,
    data_of,
    fitted,
    single_blas_thread,  # noqa: F401 - autouse fixture
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

from sklearn_ssse import UnlearnableLogisticRegression, UnlearnableRidge

CLASSIFIERS = ["logistic-binary", "logistic-multiclass"]
MULTILABEL = ["logistic-multilabel"]
REGRESSORS = ["ridge", "ridge-two-targets"]
ALL = CLASSIFIERS + MULTILABEL + REGRESSORS


def _with(X, value):
    X = np.array(X[:3], dtype=np.float64)
    X[1, 2] = value
    return X


def _float_targets(y, value):
    y = np.array(y[:3], dtype=np.float64)
    y.flat[1] = value
    return y


# (case id, configurations, builder (X, y) -> (X_bad, y_bad), exception, message pattern)
CATALOGUE = [
    ("nan-in-X", ALL, lambda X, y: (_with(X, np.nan), y[:3]), ValueError, "Input X contains NaN"),
    (
        "inf-in-X",
        ALL,
        lambda X, y: (_with(X, np.inf), y[:3]),
        ValueError,
        "Input X contains infinity",
    ),
    (
        "nan-in-y",
        CLASSIFIERS + REGRESSORS,
        lambda X, y: (X[:3], _float_targets(y, np.nan)),
        ValueError,
        "y_removed contains NaN or infinity",
    ),
    (
        "inf-in-y",
        CLASSIFIERS + REGRESSORS,
        lambda X, y: (X[:3], _float_targets(y, -np.inf)),
        ValueError,
        "y_removed contains NaN or infinity",
    ),
    (
        "nan-in-label-matrix",
        MULTILABEL,
        lambda X, y: (X[:3], _float_targets(y, np.nan)),
        ValueError,
        "must contain only 0 and 1",
    ),
    (
        "too-few-features",
        ALL,
        lambda X, y: (X[:3, :-1], y[:3]),
        ValueError,
        r"X has \d+ features, but Unlearnable\w+ is expecting \d+ features",
    ),
    (
        "too-many-features",
        ALL,
        lambda X, y: (np.hstack([X[:3], X[:3, :1]]), y[:3]),
        ValueError,
        r"X has \d+ features, but Unlearnable\w+ is expecting \d+ features",
    ),
    (
        "1d-X",
        ALL,
        lambda X, y: (X[0], y[:1]),
        ValueError,
        "Expected 2D array, got 1D array",
    ),
    (
        "label-count-mismatch",
        ALL,
        lambda X, y: (X[:3], y[:2]),
        ValueError,
        "X_removed has 3 samples but y_removed has 2",
    ),
    (
        "2d-labels-for-1d-model",
        CLASSIFIERS,
        lambda X, y: (X[:3], np.column_stack([y[:3], y[:3]])),
        ValueError,
        r"y_removed must be 1-D for this model, got shape \(3, 2\)",
    ),
    (
        "wrong-target-shape",
        REGRESSORS,
        lambda X, y: (X[:3], np.column_stack([y[:3], y[:3], y[:3]])),
        ValueError,
        r"y_removed must have shape \(k,.*\), got \(3, \d\)",
    ),
    (
        "wrong-label-columns",
        MULTILABEL,
        lambda X, y: (X[:3], y[:3, :-1]),
        ValueError,
        r"label indicator matrix with \d+ columns, got shape \(3, \d+\)",
    ),
    (
        "unseen-class",
        CLASSIFIERS,
        lambda X, y: (X[:3], np.array([y[0], 7, 9])),
        ValueError,
        r"labels not seen in training: \[7, 9\]",
    ),
    (
        "unseen-string-class",
        CLASSIFIERS,
        lambda X, y: (X[:2], np.array(["cat", "dog"], dtype=object)),
        ValueError,
        r"labels not seen in training: \['cat', 'dog'\]",
    ),
    (
        "label-not-0-1",
        MULTILABEL,
        lambda X, y: (X[:3], np.where(y[:3] == 1, 2, 0)),
        ValueError,
        "must contain only 0 and 1",
    ),
    (
        "string-targets",
        REGRESSORS,
        lambda X, y: (X[:2], np.array(["a", "b"]) if y.ndim == 1 else np.array([["a"] * 2] * 2)),
        ValueError,
        "y_removed must be numeric, got dtype <U1",
    ),
    (
        "object-dtype-X",
        ALL,
        lambda X, y: (np.array([["a"] * X.shape[1]] * 2, dtype=object), y[:2]),
        ValueError,
        "X_removed must be numeric: could not convert string to float",
    ),
    (
        "complex-X",
        ALL,
        lambda X, y: (X[:2] + 1j, y[:2]),
        ValueError,
        "Complex data not supported",
    ),
    (
        "complex-y",
        CLASSIFIERS + MULTILABEL,
        lambda X, y: (X[:2], y[:2] + 0j),
        ValueError,
        "y_removed has a complex dtype",
    ),
    (
        "complex-y-regression",
        REGRESSORS,
        lambda X, y: (X[:2], y[:2] + 0j),
        ValueError,
        "y_removed must be numeric, got dtype complex128",
    ),
    (
        "sparse-targets",
        CLASSIFIERS + REGRESSORS,
        lambda X, y: (X[:2], sp.csr_matrix(np.reshape(y[:2], (2, -1)))),
        ValueError,
        "y_removed is a sparse matrix",
    ),
    ("missing-targets", ALL, lambda X, y: (X[:2], None), ValueError, "needs its targets y"),
    (
        "empty-removal-set",
        ALL,
        lambda X, y: (X[:0], y[:0]),
        ValueError,
        r"X_removed is empty \(0 samples\)",
    ),
    (
        "remove-all-samples",
        ALL,
        lambda X, y: (X, y),
        ValueError,
        r"Cannot remove \d+ samples from a model that holds \d+: at least one must remain",
    ),
    (
        "remove-more-than-held",
        ALL,
        lambda X, y: (np.vstack([X, X[:5]]), np.concatenate([y, y[:5]])),
        ValueError,
        r"Cannot remove \d+ samples from a model that holds \d+",
    ),
    (
        "never-trained-on",
        ALL,
        lambda X, y: (X[:3] + 1e-3, y[:3]),
        ValueError,
        r"3 of the 3 removed samples \(rows 0, 1, 2\) do not match a training sample",
    ),
    (
        "right-features-wrong-label",
        CLASSIFIERS,
        lambda X, y: (X[:1], np.array([[c for c in np.unique(y) if c != y[0]][0]])),
        ValueError,
        r"1 of the 1 removed samples \(rows 0\) do not match a training sample",
    ),
    (
        "duplicate-in-request",
        ALL,
        lambda X, y: (X[[0, 0]], y[[0, 0]]),
        ValueError,
        r"1 of the 2 removed samples \(rows 1\) do not match",
    ),
    (
        "sparse-with-nan",
        ALL,
        lambda X, y: (sp.csr_matrix(_with(X, np.nan)), y[:3]),
        ValueError,
        "Input X contains NaN",
    ),
]


def _cases():
    for case, names, build, error, match in CATALOGUE:
        for name in names:
            yield pytest.param(name, build, error, match, id=f"{case}-{name}")


@pytest.mark.parametrize("name, build, error, match", list(_cases()))
def test_bad_removal_request_names_problem_and_changes_nothing(name, build, error, match):
    model = fitted(name)
    reference = copy.deepcopy(model)
    X_bad, y_bad = build(*data_of(name))
    with pytest.raises(error, match=match):
        model.forget(X_bad, y_bad)
    assert_same_state(model, reference)
    # forget_step validates the same way (and never changes anything).
    with pytest.raises(error, match=match):
        model.forget_step(X_bad, y_bad)
    assert_same_state(model, reference)


@pytest.mark.parametrize("name", ["logistic-binary", "ridge", "logistic-multilabel"])
def test_already_erased_sample_is_refused(name):
    X, y = data_of(name)
    model = fitted(name).forget(X[:2], y[:2])
    reference = copy.deepcopy(model)
    with pytest.raises(ValueError, match=r"2 of them are in erasure_log_ as already erased"):
        model.forget(X[:2], y[:2])
    assert_same_state(model, reference)
    # A mixed request (one erased, one still in the model) is refused as a whole.
    with pytest.raises(ValueError, match=r"1 of the 2 removed samples \(rows 0\)"):
        model.forget(X[1:3], y[1:3])
    assert_same_state(model, reference)


@pytest.mark.parametrize("name", ["logistic-binary", "ridge"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    eps=st.one_of(
        st.floats(max_value=-1e-300, allow_nan=False),
        st.sampled_from([np.nan, np.inf, -np.inf, np.float32("nan"), -0.5]),
    )
)
def test_bad_eps_value(name, eps):
    model = _cached_copy(name)
    reference = copy.deepcopy(model)
    X, y = data_of(name)
    with pytest.raises(ValueError, match=r"eps must be a finite number >= 0, got"):
        model.forget(X[:2], y[:2], eps=eps)
    assert_same_state(model, reference)


@pytest.mark.parametrize("name", ["logistic-binary", "ridge"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    eps=st.one_of(
        st.text(max_size=5),
        st.booleans(),
        st.lists(st.floats(0, 1), max_size=2),
        st.just(1 + 0j),
        st.just(np.array([0.5])),
    )
)
def test_non_numeric_eps(name, eps):
    model = _cached_copy(name)
    reference = copy.deepcopy(model)
    X, y = data_of(name)
    with pytest.raises(TypeError, match=r"eps must be a real number, got"):
        model.forget(X[:2], y[:2], eps=eps)
    assert_same_state(model, reference)


_MODELS = {}


def _cached_copy(name):
    # Hypothesis reuses the function across examples: one copy per configuration is
    # enough because every example must leave it unchanged (which is what is checked).
    if name not in _MODELS:
        _MODELS[name] = fitted(name)
    return _MODELS[name]


@pytest.mark.parametrize("Estimator", [UnlearnableLogisticRegression, UnlearnableRidge])
@pytest.mark.parametrize(
    "method", ["forget", "forget_step", "was_erased", "gradient_residual", "erasure_log_to_json"]
)
def test_before_fit_is_not_fitted_error(Estimator, method):
    model = Estimator()
    reference = copy.deepcopy(model)
    X, y = data_of("logistic-binary")
    args = () if method == "erasure_log_to_json" else (X[:2], y[:2])
    with pytest.raises(NotFittedError, match=f"This {Estimator.__name__} instance is not fitted"):
        getattr(model, method)(*args)
    assert_same_state(model, reference)
    assert not hasattr(model, "erasure_log_")


@pytest.mark.parametrize("name", ["logistic-binary", "logistic-multilabel", "ridge"])
def test_mixing_sparse_and_dense_is_accepted_and_identical(name):
    """Mixing is not an error: rows are matched by their canonical dense values, and the
    step is computed from the same numbers, so the result is bit for bit the same."""
    X, y = data_of(name)
    dense_fit = fitted(name)
    by_dense = copy.deepcopy(dense_fit).forget(X[5:9], y[5:9])
    by_sparse = copy.deepcopy(dense_fit).forget(sp.csr_matrix(X[5:9]), y[5:9])
    assert_same_state(by_sparse, by_dense, ignore_keys=("time",))
    by_coo = copy.deepcopy(dense_fit).forget(sp.coo_matrix(X[5:9]), y[5:9])
    assert_same_state(by_coo, by_dense, ignore_keys=("time",))


def test_sparse_fit_dense_forget_matches_membership():
    X, y = data_of("ridge")
    X = np.where(np.abs(X) < 0.02, 0.0, X)  # make the design actually sparse
    model = UnlearnableRidge(alpha=0.1).fit(sp.csr_matrix(X), y)
    twin = copy.deepcopy(model)
    model.forget(X[:4], y[:4])
    twin.forget(sp.csr_matrix(X[:4]), y[:4])
    assert_same_state(model, twin, ignore_keys=("time",))
    assert model.was_erased(sp.csr_matrix(X[:6]), y[:6]).tolist() == [True] * 4 + [False] * 2


@pytest.mark.parametrize("name", ["logistic-binary", "ridge"])
def test_numeric_object_array_is_accepted(name):
    """An object array of numbers is valid input (converted as by ``fit``)."""
    X, y = data_of(name)
    expected = fitted(name).forget(X[:3], y[:3])
    model = fitted(name).forget(X[:3].astype(object), y[:3].astype(object))
    assert_same_state(model, expected, ignore_keys=("time",))
