"""``compact``: the pending low-rank changes folded, no feature row of an erased sample left
in the state, nothing else changed (predictions; later requests to round-off)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from _trust_helpers import assert_same_state
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from sklearn_ssse import UnlearnableLogisticRegression, UnlearnableRidge
from sklearn_ssse.curvature import BlockFisherInverse
from sklearn_ssse.datasets import load_yeast


def _arrays(obj, seen=None):
    """Every ndarray reachable from ``obj``'s state (through dicts, lists, tuples and
    attribute dicts)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _arrays(value, seen)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _arrays(value, seen)
    elif hasattr(obj, "__dict__"):
        yield from _arrays(vars(obj), seen)


def _holds_row(model, row):
    """Whether some stored array has ``row`` (or a multiple of it) as a row or a column."""
    row = row / np.linalg.norm(row)
    for array in _arrays(model):
        if array.ndim != 2 or array.dtype.kind != "f":
            continue
        for lines in (array, array.T):
            if lines.shape[1] != row.size:
                continue
            norms = np.linalg.norm(lines, axis=1)
            keep = norms > 0
            cosines = np.abs(lines[keep] @ row) / norms[keep]
            if np.any(cosines > 1 - 1e-12):
                return True
    return False


@pytest.mark.parametrize("make", [lambda: UnlearnableLogisticRegression(C=1.0), "yeast"])
def test_compact_leaves_no_erased_row_and_changes_nothing_else(make):
    if make == "yeast":
        X, y = load_yeast(subset="train", return_X_y=True)
        X, y = X[:600], y[:600]
        model = UnlearnableLogisticRegression(C=1.0)
    else:
        X, y = load_breast_cancer(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        model = make()
    model.fit(X, y)
    erased = [0, 7, 11]
    model.forget(X[erased], y[erased])
    row = np.r_[X[7], 1.0]
    assert max(model.curvature_.pending_rank_) == 3
    assert _holds_row(model, row)  # the check can see a kept row
    before = copy.deepcopy(model)
    model.compact()
    assert model.curvature_.pending_rank_ == [0] * model.curvature_.n_blocks_
    assert isinstance(model._bound_gram, np.ndarray)
    assert not _holds_row(model, row)
    np.testing.assert_array_equal(model.predict_proba(X), before.predict_proba(X))
    np.testing.assert_array_equal(model.coef_, before.coef_)
    # the matrices are the remaining samples' (to round-off): the next request agrees
    for one in (model, before):
        one.forget(X[20:25], y[20:25])
    np.testing.assert_allclose(model.coef_, before.coef_, rtol=1e-9, atol=1e-12)
    bound, other = (m.erasure_log_[-1]["distance_bound"] for m in (model, before))
    assert (bound is None) == (other is None)
    assert bound is None or bound == pytest.approx(other, rel=1e-6)
    assert len(model.erasure_log_) == len(before.erasure_log_)
    restored = pickle.loads(pickle.dumps(model))
    assert not _holds_row(restored, row)


def test_compact_of_a_model_without_pending_changes_is_a_no_op():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = UnlearnableRidge(alpha=1.0).fit(X, y.astype(float))
    before = copy.deepcopy(model)
    assert model.compact() is model
    assert_same_state(model, before)


def test_compact_is_a_transaction(monkeypatch):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = UnlearnableLogisticRegression(C=1.0).fit(X, y)
    model.forget(X[:4], y[:4])
    before = copy.deepcopy(model)

    def fail(self):
        raise MemoryError("injected")

    monkeypatch.setattr(BlockFisherInverse, "fold_pending", fail)
    with pytest.raises(MemoryError, match="injected"):
        model.compact()
    assert_same_state(model, before)


@pytest.mark.parametrize("Estimator", [UnlearnableLogisticRegression, UnlearnableRidge])
def test_the_state_never_holds_the_callers_arrays(Estimator):
    """Rows kept by a request (the pending term, the bounds' Gram) are copies: a caller who
    reuses its ``X_removed`` buffer afterwards (here without an intercept, where ``[X, 1]``
    is not formed) changes nothing in the model."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = (X[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    if Estimator is UnlearnableRidge:
        y = X @ np.ones(5) + rng.normal(size=300)
    model = Estimator(fit_intercept=False).fit(X, y)
    buffer = X[:4].copy()
    model.forget(buffer, y[:4])
    before = copy.deepcopy(model)
    buffer[:] = X[100:104]
    assert_same_state(model, before)
    for array in _arrays(model):
        assert not np.shares_memory(array, buffer)
