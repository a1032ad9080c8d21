"""Persistence (issue 7): pickle, joblib and skops round trips after fits and forgets.

A restored model predicts identically, holds the identical state (curvature included) and
makes identical subsequent forgets. The stored state carries the package version and a
format number; a newer format is refused with a clear error.
"""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
from _trust_helpers import (
    assert_same_state,
    data_of,
    fitted,
    single_blas_thread,  # noqa: F401 - autouse fixture
)

import sklearn_ssse
import sklearn_ssse._base as base
import sklearn_ssse._persistence as persistence
from sklearn_ssse import SKOPS_TRUSTED_TYPES, UnlearnableRidge

NAMES = [
    "logistic-binary",
    "logistic-fisher",  # damped: eigendecomposed blocks
    "logistic-multiclass",
    "logistic-multinomial",  # one coupled block
    "logistic-multilabel",
    "ridge",
    "ridge-two-targets",
    "logistic-certified",
    "ridge-certified",
    "poisson",  # GLMCurvature: data Gram and weight sum
    "tweedie",
    "linear-svc",
]


def _pickle(model, tmp_path):
    return pickle.loads(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))


def _joblib(model, tmp_path):
    path = tmp_path / "model.joblib"
    joblib.dump(model, path, compress=3)
    return joblib.load(path)


def _skops(model, tmp_path):
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    # Only the package's own types (and numpy / builtins) need trusting.
    assert set(sio.get_untrusted_types(file=path)) <= set(SKOPS_TRUSTED_TYPES)
    return sio.load(path, trusted=SKOPS_TRUSTED_TYPES)


FORMATS = {"pickle": _pickle, "joblib": _joblib, "skops": _skops}


def _predictions(model, X):
    outputs = [model.predict(X)]
    if hasattr(model, "predict_proba"):
        outputs.append(model.predict_proba(X))
    return outputs


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("name", NAMES)
def test_round_trip_after_fit_and_forgets(name, fmt, tmp_path):
    X, y = data_of(name)
    model = fitted(name)
    for stage in ("fit", "forgets"):
        if stage == "forgets":
            model.forget(X[:3], y[:3]).forget(
                X[7:9], y[7:9], eps=0.5 if name.startswith("ridge-t") else 1.0
            )
        restored = FORMATS[fmt](model, tmp_path)
        assert type(restored) is type(model)
        assert_same_state(restored, model)  # curvature, fingerprints, log, certificate
        for got, expected in zip(_predictions(restored, X), _predictions(model, X)):
            np.testing.assert_array_equal(got, expected)
        # Identical subsequent forgets (the log times aside).
        restored.forget(X[20:24], y[20:24])
        twin = pickle.loads(pickle.dumps(model))
        twin.forget(X[20:24], y[20:24])
        assert_same_state(restored, twin, ignore_keys=("time",))
        np.testing.assert_array_equal(
            restored.was_erased(X[:10], y[:10]), twin.was_erased(X[:10], y[:10])
        )


def test_state_carries_format_and_package_version():
    model = fitted("ridge")
    state = model.__getstate__()
    assert state["_sklearn_ssse_format"] == base.FORMAT_VERSION == persistence.FORMAT_VERSION == 3
    assert state["_sklearn_ssse_version"] == sklearn_ssse.__version__
    assert "curvature_" in state and "_forget_lock" not in state
    # The version keys are metadata, not attributes of the restored model.
    restored = pickle.loads(pickle.dumps(model))
    assert "_sklearn_ssse_format" not in restored.__dict__
    assert "_sklearn_ssse_version" not in restored.__dict__


def _dump_as_newer_format(model, monkeypatch, dump):
    with monkeypatch.context() as patch:
        patch.setattr(persistence, "FORMAT_VERSION", base.FORMAT_VERSION + 1)
        patch.setattr(sklearn_ssse, "__version__", "99.0")
        return dump(model)


def test_pickle_of_newer_format_is_refused(monkeypatch):
    model = fitted("logistic-binary")
    blob = _dump_as_newer_format(model, monkeypatch, pickle.dumps)
    with pytest.raises(
        ValueError,
        match=r"saved by sklearn_ssse 99\.0 in persistence format 4; this installation "
        r"\(sklearn_ssse 0\.1\.0\) reads formats up to 3\. Upgrade sklearn_ssse",
    ):
        pickle.loads(blob)


def test_joblib_of_newer_format_is_refused(monkeypatch, tmp_path):
    path = tmp_path / "newer.joblib"
    _dump_as_newer_format(fitted("ridge"), monkeypatch, lambda m: joblib.dump(m, path))
    with pytest.raises(ValueError, match="persistence format 4"):
        joblib.load(path)


def test_skops_of_newer_format_is_refused(monkeypatch, tmp_path):
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "newer.skops"
    _dump_as_newer_format(fitted("ridge"), monkeypatch, lambda m: sio.dump(m, path))
    with pytest.raises(ValueError, match="persistence format 4"):
        sio.load(path, trusted=SKOPS_TRUSTED_TYPES)


@pytest.mark.parametrize(
    "marker, expected",
    [
        ("1", r"invalid persistence format marker '1' \(str, not an integer\)"),
        (1.0, r"marker 1.0 \(float, not an integer\)"),
        (True, r"marker True \(bool, not an integer\)"),
        (None, r"marker None \(NoneType, not an integer\)"),
        (0, r"marker 0 \(formats are numbered from 1\)"),
        (-1, r"marker -1 \(formats are numbered from 1\)"),
    ],
)
def test_malformed_format_marker_is_refused(marker, expected):
    """Only a real int in 1..FORMAT_VERSION is a format; anything else is named as corrupt,
    never answered with "upgrade"."""
    state = fitted("ridge").__getstate__()
    state["_sklearn_ssse_format"] = marker
    with pytest.raises(ValueError, match=expected) as info:
        UnlearnableRidge.__new__(UnlearnableRidge).__setstate__(state)
    assert "Upgrade" not in str(info.value)


def test_numpy_integer_format_marker_loads():
    model = fitted("ridge")
    state = model.__getstate__()
    state["_sklearn_ssse_format"] = np.int64(1)
    restored = UnlearnableRidge.__new__(UnlearnableRidge)
    restored.__setstate__(state)
    assert_same_state(restored, model)


def test_state_without_marker_loads():
    """States written before the marker existed (format 1 semantics) still load."""
    model = fitted("ridge")
    state = model.__getstate__()
    del state["_sklearn_ssse_format"], state["_sklearn_ssse_version"]
    restored = UnlearnableRidge.__new__(UnlearnableRidge)
    restored.__setstate__(state)
    assert_same_state(restored, model)


def test_restored_curvature_is_independent_of_the_original():
    X, y = data_of("logistic-multiclass")
    model = fitted("logistic-multiclass")
    restored = pickle.loads(pickle.dumps(model))
    reference = pickle.loads(pickle.dumps(model))
    restored.forget(X[:5], y[:5])
    assert_same_state(model, reference)
