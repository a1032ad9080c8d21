"""Two threads forgetting at once (issue 7, "Concurrency").

``forget``, ``forget_step`` and pickling hold a per-model re-entrant lock: concurrent
requests are serialized, each applies exactly once, against the state left by the other.
To make the race real, the tests slow down the planning stage of every request (where an
unlocked implementation would read the state that the other thread is about to replace).
"""

from __future__ import annotations

import contextlib
import copy
import pickle
import threading
import time

import pytest
from _trust_helpers import (
    assert_same_state,
    data_of,
    fitted,
    matches_either,
    single_blas_thread,  # noqa: F401 - autouse fixture
)

import sklearn_ssse._base as base

SLOW = 0.05  # seconds spent in the planning stage of each request


@pytest.fixture
def slow_planning(monkeypatch):
    """Every request pauses inside ``_plan_forget``, after reading the model's state."""
    original = base.curvature_factors

    def slow(*args, **kwargs):
        time.sleep(SLOW)
        return original(*args, **kwargs)

    monkeypatch.setattr(base, "curvature_factors", slow)


def _run_together(*jobs):
    """Start all jobs at the same moment; return their results or exceptions."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def run(i, job):
        barrier.wait()
        try:
            results[i] = job()
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _two_requests(name):
    X, y = data_of(name)
    return (X[:3], y[:3]), (X[20:25], y[20:25])


def _sequential(name, first, second):
    model = fitted(name)
    model.forget(*first)
    model.forget(*second)
    return model


@pytest.mark.parametrize("name", ["logistic-binary", "logistic-multiclass", "ridge"])
def test_two_threads_forget_each_applies_exactly_once(name, slow_planning):
    a, b = _two_requests(name)
    model = fitted(name)
    results = _run_together(lambda: model.forget(*a), lambda: model.forget(*b))
    assert all(result is model for result in results), results
    # Serialized: the outcome is exactly one of the two sequential orders, bit for bit.
    orders = [_sequential(name, a, b), _sequential(name, b, a)]
    assert matches_either(model, orders)
    assert model.n_forgotten_ == 8
    assert [entry["n_forgotten_total"] for entry in model.erasure_log_] in ([3, 8], [5, 8])


def test_without_the_lock_the_race_loses_an_update(monkeypatch):
    """The test above can fail: with the lock disabled, one request's changes are lost.

    Both requests are held inside their planning stage until the other has reached it
    too (a barrier), so the race happens regardless of thread scheduling."""
    name = "logistic-binary"
    a, b = _two_requests(name)
    model = fitted(name)
    orders = [_sequential(name, a, b), _sequential(name, b, a)]
    both_planning = threading.Barrier(2, timeout=10)
    original = base.curvature_factors

    def meet(*args, **kwargs):
        both_planning.wait()
        return original(*args, **kwargs)

    monkeypatch.setattr(base, "curvature_factors", meet)
    monkeypatch.setattr(base.UnlearnableLinearMixin, "_lock", lambda self: contextlib.nullcontext())
    results = _run_together(lambda: model.forget(*a), lambda: model.forget(*b))
    assert all(result is model for result in results), results
    assert not matches_either(model, orders)
    assert len(model.fingerprints_) != model.n_samples_ or model.n_forgotten_ != 8


@pytest.mark.parametrize("name", ["logistic-binary", "ridge"])
def test_duplicate_request_from_two_threads_applies_once(name, slow_planning):
    X, y = data_of(name)
    model = fitted(name)
    results = _run_together(lambda: model.forget(X[:4], y[:4]), lambda: model.forget(X[:4], y[:4]))
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and sum(r is model for r in results) == 1
    assert isinstance(errors[0], ValueError)
    assert "in erasure_log_ as already erased" in str(errors[0])
    expected = fitted(name).forget(X[:4], y[:4])
    assert_same_state(model, expected, ignore_keys=("time",))


def test_many_threads_each_one_sample():
    name = "logistic-binary"
    X, y = data_of(name)
    model = fitted(name)
    rows = list(range(8))
    results = _run_together(*[lambda i=i: model.forget(X[[i]], y[[i]]) for i in rows])
    assert all(result is model for result in results)
    assert model.n_forgotten_ == 8 and model.n_samples_ == len(y) - 8
    assert len(model.fingerprints_) == len(y) - 8
    assert model.was_erased(X[:10], y[:10]).tolist() == [True] * 8 + [False] * 2
    # The log is in commit order with a running count.
    assert [e["index"] for e in model.erasure_log_] == list(range(1, 9))
    assert [e["n_forgotten_total"] for e in model.erasure_log_] == list(range(1, 9))


@pytest.mark.parametrize("name", ["logistic-multiclass", "logistic-certified"])
def test_pickle_during_forget_is_before_or_after(name, slow_planning):
    a, _ = _two_requests(name)
    model = fitted(name)
    before = copy.deepcopy(model)
    results = _run_together(
        lambda: model.forget(*a), lambda: (time.sleep(SLOW / 2), pickle.dumps(model))[1]
    )
    assert results[0] is model
    snapshot = pickle.loads(results[1])
    after = copy.deepcopy(before).forget(*a)
    assert matches_either(snapshot, [before, after])
    assert_same_state(model, after, ignore_keys=("time",))


def test_lock_is_reentrant_and_not_persisted():
    model = fitted("ridge")
    X, y = data_of("ridge")
    with model._lock():
        # The same thread may call forget while holding the lock (re-entrant).
        model.forget(X[:1], y[:1])
    assert "_forget_lock" not in model.__getstate__()
    assert "_forget_lock" not in pickle.loads(pickle.dumps(model)).__dict__
    assert "_forget_lock" not in copy.deepcopy(model).__dict__
