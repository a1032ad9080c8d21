"""The erasure record (issue 7): ``erasure_log_``, ``was_erased`` and the JSON export."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import datetime, timezone

import numpy as np
import pytest
from _trust_helpers import (
    assert_same_state,
    data_of,
    fitted,
    single_blas_thread,  # noqa: F401 - autouse fixture
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sklearn_ssse import UnlearnableRidge, __version__
from sklearn_ssse._fingerprint import row_fingerprints

ENTRY_KEYS = {
    "accuracy_repair",
    "normal_equation_residual",
    "distance_bound",
    "gradient_residual_bound",
    "bound_method",
    "bound_note",
    "index",
    "time",
    "n_samples",
    "n_unmatched",
    "eps",
    "curvature",
    "leave_out",
    "damping",
    "step_norm",
    "fingerprints",
    "n_forgotten_total",
    "n_samples_remaining",
}
CERTIFIED_KEYS = {"residual_bound_step", "residual_bound_total", "budget_remaining"}


def _theta(model):
    return model._get_theta()


@pytest.mark.parametrize(
    "name", ["logistic-binary", "logistic-fisher", "logistic-multilabel", "ridge-two-targets"]
)
def test_each_forget_appends_a_complete_entry(name):
    X, y = data_of(name)
    model = fitted(name)
    n = model.n_samples_
    assert model.erasure_log_ == []
    requests = [(slice(0, 3), 1.0), (slice(10, 11), 0.5), (slice(30, 37), None)]
    start = datetime.now(timezone.utc)
    for number, (rows, eps) in enumerate(requests, start=1):
        before = _theta(model)
        model.forget(X[rows], y[rows], eps=eps)
        entry = model.erasure_log_[-1]
        assert len(model.erasure_log_) == number
        assert set(entry) == ENTRY_KEYS
        k = len(X[rows])
        assert entry["index"] == number and entry["n_samples"] == k
        assert entry["n_unmatched"] == 0
        assert entry["eps"] == (model.eps if eps is None else eps)
        assert entry["curvature"] == model.curvature
        assert entry["leave_out"] == model.leave_out and entry["damping"] == model.damping
        np.testing.assert_allclose(
            entry["step_norm"], np.linalg.norm(_theta(model) - before), rtol=1e-9
        )
        Y = model._encode_removed_targets(y[rows])
        assert entry["fingerprints"] == [d.hex() for d in row_fingerprints(X[rows], Y)]
        assert entry["n_forgotten_total"] == model.n_forgotten_
        assert entry["n_samples_remaining"] == model.n_samples_ == n - model.n_forgotten_
        when = datetime.fromisoformat(entry["time"])
        assert when.tzinfo is not None and when.utcoffset().total_seconds() == 0
        assert start <= when <= datetime.now(timezone.utc)
        start = when
    assert model.n_forgotten_ == 3 + 1 + 7


def test_log_holds_fingerprints_never_raw_data():
    X, y = data_of("ridge")
    model = fitted("ridge").forget(X[:5], y[:5])
    record = json.loads(model.erasure_log_to_json())
    for entry in model.erasure_log_:
        for digest in entry["fingerprints"]:
            assert len(digest) == 32 and int(digest, 16) >= 0  # 16-byte hex digests

    # No feature value or target of the erased rows is among the record's numbers, and its
    # only strings are digests, the time stamp and names. (A substring search is not a test:
    # "141" occurs in hex digests and in time stamps by chance.)
    numbers, strings = [], []

    def walk(node, key=None):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, bool) or node is None:
            return
        elif isinstance(node, (int, float)):
            numbers.append(float(node))
        else:
            strings.append((key, node))

    walk(record)
    erased_values = np.concatenate([X[:5].ravel(), y[:5]])
    assert not np.isin(np.asarray(numbers), erased_values).any()
    for key, text in strings:
        if key == "fingerprints":
            assert len(text) == 32 and int(text, 16) >= 0
        elif key == "time":
            datetime.fromisoformat(text)  # a time stamp and nothing else
        else:
            assert not any(repr(float(v)) in text for v in erased_values), (key, text)


@pytest.mark.parametrize("name", ["ridge", "logistic-binary"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_was_erased_answers_per_sample(name, data):
    X, y = data_of(name)
    n = len(y)
    erased = data.draw(
        st.lists(st.integers(0, n - 1), min_size=1, max_size=40, unique=True), label="erased"
    )
    n_batches = data.draw(st.integers(1, min(3, len(erased))), label="batches")
    model = fitted(name)
    for batch in np.array_split(np.array(erased), n_batches):
        model.forget(X[batch], y[batch])
    expected = np.zeros(n, dtype=bool)
    expected[erased] = True
    asked = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=60), label="asked")
    np.testing.assert_array_equal(model.was_erased(X[asked], y[asked]), expected[asked])
    np.testing.assert_array_equal(model.was_erased(X, y), expected)
    # Unknown samples were never erased.
    assert not model.was_erased(X[:3] + 1e-3, y[:3]).any()


def test_was_erased_with_duplicated_training_sample():
    X, y = data_of("ridge")
    Xd, yd = np.vstack([X, X[:1]]), np.concatenate([y, y[:1]])
    model = UnlearnableRidge(alpha=0.1).fit(Xd, yd)
    model.forget(X[:1], y[:1])
    # One copy was erased: the sample counts as erased, and the second copy can still go.
    assert model.was_erased(X[:2], y[:2]).tolist() == [True, False]
    model.forget(X[:1], y[:1])
    assert [e["fingerprints"] for e in model.erasure_log_][0] == model.erasure_log_[1][
        "fingerprints"
    ]
    with pytest.raises(ValueError, match="already erased"):
        model.forget(X[:1], y[:1])


def test_was_erased_does_not_change_the_model():
    X, y = data_of("logistic-multiclass")
    model = fitted("logistic-multiclass").forget(X[:3], y[:3])
    reference = copy.deepcopy(model)
    assert model.was_erased(X[:5], y[:5]).tolist() == [True] * 3 + [False] * 2
    assert_same_state(model, reference)
    with pytest.raises(ValueError, match="labels not seen in training"):
        model.was_erased(X[:2], np.array([7, 8]))
    assert_same_state(model, reference)


@pytest.mark.parametrize("name", ["logistic-multilabel", "logistic-certified"])
def test_json_export(name, tmp_path):
    X, y = data_of(name)
    model = fitted(name).forget(X[:2], y[:2]).forget(X[5:8], y[5:8])
    path = tmp_path / "erasures.json"
    text = model.erasure_log_to_json(path)
    assert path.read_text(encoding="utf-8") == text
    record = json.loads(text)
    assert record["format"] == "sklearn_ssse.erasure_log" and record["format_version"] == 1
    assert record["package_version"] == __version__
    assert record["estimator"] == "UnlearnableLogisticRegression"
    assert record["certified"] == model.certified
    assert record["n_forgotten"] == 5 and record["n_samples_remaining"] == len(y) - 5
    assert record["entries"] == model.erasure_log_
    keys = ENTRY_KEYS | (CERTIFIED_KEYS if model.certified else set())
    assert all(set(entry) == keys for entry in record["entries"])
    if model.certified:
        last = record["entries"][-1]
        assert last["residual_bound_total"] == model.gradient_residual_bound_
        assert last["budget_remaining"] == model.removal_budget_remaining_
        steps = [e["residual_bound_step"] for e in record["entries"]]
        assert last["residual_bound_total"] == pytest.approx(
            model._certificate.initial_residual + sum(steps), rel=1e-12
        )


@pytest.mark.parametrize("name", ["logistic-binary", "ridge"])
def test_record_survives_persistence(name):
    X, y = data_of(name)
    model = fitted(name).forget(X[:4], y[:4])
    restored = pickle.loads(pickle.dumps(model))
    assert restored.erasure_log_ == model.erasure_log_
    np.testing.assert_array_equal(restored.was_erased(X[:6], y[:6]), [True] * 4 + [False] * 2)
    assert restored.erasure_log_to_json() == model.erasure_log_to_json()
    restored.forget(X[4:5], y[4:5])
    assert [e["index"] for e in restored.erasure_log_] == [1, 2]
    assert len(model.erasure_log_) == 1  # the copies are independent


def test_refit_starts_a_new_record():
    X, y = data_of("logistic-binary")
    model = fitted("logistic-binary").forget(X[:2], y[:2])
    model.fit(X, y)
    assert model.erasure_log_ == [] and model.n_forgotten_ == 0
    assert not model.was_erased(X[:2], y[:2]).any()


def test_unmatched_samples_are_recorded_when_membership_is_not_checked():
    X, y = data_of("ridge")
    model = UnlearnableRidge(alpha=0.1, check_membership=False).fit(X, y)
    model.forget(np.vstack([X[:2], X[:1] + 1e-3]), np.concatenate([y[:2], y[:1]]))
    entry = model.erasure_log_[-1]
    assert entry["n_samples"] == 3 and entry["n_unmatched"] == 1
    assert len(entry["fingerprints"]) == 2  # only samples that were in the model
    assert model.was_erased(X[:3], y[:3]).tolist() == [True, True, False]
