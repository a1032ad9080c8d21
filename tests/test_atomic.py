"""Atomic forget and refit (issue 7, "Input and state").

A failure at any stage of a request (an exception injected into each step, a curvature
that would become singular) leaves the model exactly as it was, and the request can then
be made again with the result of an untouched model. Ill-conditioned curvature is
refused with a clear error, and damping is the documented fallback.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
from _trust_helpers import (
    assert_same_state,
    data_of,
    digits,
    fitted,
    single_blas_thread,  # noqa: F401 - autouse fixture
)
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sklearn_ssse import CurvatureError, UnlearnableLogisticRegression, UnlearnableRidge
from sklearn_ssse._base import UnlearnableLinearMixin, _check_conditioning, _scaled_one_norm
from sklearn_ssse._certified import Certificate
from sklearn_ssse._fingerprint import FingerprintMultiset
from sklearn_ssse.curvature import BlockFisherInverse


class Injected(Exception):
    pass


def _raise(*args, **kwargs):
    raise Injected("injected failure")


_ORIGINAL_APPLY = BlockFisherInverse.apply


def _apply_then_raise(self, change):
    # The worst case for atomicity: the curvature change has been made, then the request
    # fails.
    _ORIGINAL_APPLY(self, change)
    raise Injected("injected failure after applying the curvature change")


# (stage, object, attribute, replacement); every stage of _plan_forget and of the commit.
STAGES = [
    ("validation", UnlearnableLinearMixin, "_validate_removed", _raise),
    ("fingerprints", "sklearn_ssse._base.row_fingerprints", None, _raise),
    ("membership", FingerprintMultiset, "without", _raise),
    ("curvature-factors", "sklearn_ssse._base.curvature_factors", None, _raise),
    ("prepare-change", BlockFisherInverse, "prepare_change", _raise),
    ("split-theta", UnlearnableLinearMixin, "_split_theta", _raise),
    ("log-entry", UnlearnableLinearMixin, "_log_entry", _raise),
    ("apply-change", BlockFisherInverse, "apply", _raise),
    ("after-apply", BlockFisherInverse, "apply", _apply_then_raise),
    ("keyboard-interrupt", BlockFisherInverse, "prepare_change", "interrupt"),
]


def _patch(monkeypatch, target, attribute, replacement):
    if replacement == "interrupt":

        def replacement(*args, **kwargs):
            raise KeyboardInterrupt

    if attribute is None:
        monkeypatch.setattr(target, replacement)
    else:
        monkeypatch.setattr(target, attribute, replacement)


@pytest.mark.parametrize(
    "name",
    [
        "logistic-binary",
        "logistic-fisher",
        "logistic-multiclass",
        "ridge-two-targets",
        "logistic-certified",
    ],
)
@pytest.mark.parametrize(
    "stage, target, attribute, replacement", STAGES, ids=[s[0] for s in STAGES]
)
def test_failure_at_any_stage_leaves_model_untouched(
    name, stage, target, attribute, replacement, monkeypatch
):
    X, y = data_of(name)
    model = fitted(name).forget(X[:3], y[:3])  # some history, pending curvature terms
    reference = copy.deepcopy(model)
    with monkeypatch.context() as patch:
        _patch(patch, target, attribute, replacement)
        with pytest.raises((Injected, KeyboardInterrupt)):
            model.forget(X[10:14], y[10:14])
    assert_same_state(model, reference)
    # The failed attempt left no trace: the request now succeeds exactly as on the copy.
    model.forget(X[10:14], y[10:14])
    reference.forget(X[10:14], y[10:14])
    assert_same_state(model, reference, ignore_keys=("time",))
    assert len(model.erasure_log_) == 2


def test_certificate_failure_leaves_model_untouched(monkeypatch):
    X, y = data_of("logistic-certified")
    model = fitted("logistic-certified")
    reference = copy.deepcopy(model)
    monkeypatch.setattr(Certificate, "plan", _raise)
    with pytest.raises(Injected):
        model.forget(X[:2], y[:2])
    assert_same_state(model, reference)


def test_strict_comparison_detects_one_ulp():
    """The comparison the atomicity tests rely on sees a change of one unit in the last
    place anywhere in the curvature, and a changed count or log."""
    model = fitted("logistic-multiclass")
    reference = copy.deepcopy(model)
    block = model.curvature_.blocks_[2]
    block.factor = block.factor.copy()
    i, j = (4, 3) if block.lower else (3, 4)
    block.factor[i, j] = np.nextafter(block.factor[i, j], np.inf)
    with pytest.raises(AssertionError, match=r"blocks_'\]\[2\]\.__dict__\['factor'\]"):
        assert_same_state(model, reference)
    other = copy.deepcopy(reference)
    other.n_samples_ -= 1
    with pytest.raises(AssertionError, match="n_samples_"):
        assert_same_state(other, reference)
    other = copy.deepcopy(reference)
    other.erasure_log_.append({})
    with pytest.raises(AssertionError, match="erasure_log_"):
        assert_same_state(other, reference)


def _one_sample_pixel():
    """Raw digits without constant pixels, and a sample that alone lights a pixel."""
    X, y = load_digits(return_X_y=True)
    X = X[:, X.std(axis=0) > 0]
    nonzero = (X != 0).sum(axis=0)
    column = int(np.flatnonzero(nonzero == 1)[0])
    return X, y.astype(np.float64), int(np.flatnonzero(X[:, column])[0])


def test_removal_that_makes_curvature_singular_is_refused():
    """Without a penalty, a pixel lit by one sample is determined by that sample only:
    erasing it would leave a singular curvature block."""
    X, y, row = _one_sample_pixel()
    model = UnlearnableRidge(alpha=0.0).fit(X, y)
    reference = copy.deepcopy(model)
    with pytest.raises(CurvatureError, match="would be singular or indefinite"):
        model.forget(X[[row, 0]], y[[row, 0]])
    assert_same_state(model, reference)
    # The documented fallback: damping keeps every block positive definite.
    damped = UnlearnableRidge(alpha=0.0, damping=1e-3).fit(X, y).forget(X[[row]], y[[row]])
    assert damped.n_samples_ == len(y) - 1
    assert np.all(np.isfinite(damped.coef_))


def test_singular_curvature_at_fit_is_refused_and_previous_fit_kept():
    X, y, _ = _one_sample_pixel()
    model = UnlearnableRidge(alpha=0.0).fit(X, y).forget(X[:2], y[:2])
    reference = copy.deepcopy(model)
    collinear = np.hstack([X, X[:, :1] * 3.0])
    with pytest.raises(CurvatureError, match="singular|not positive definite"):
        model.fit(collinear, y)
    # ``fit`` is transactional too: the failed refit keeps the previous model, erasure
    # history included (not a mix of a new n_features_in_ and the old curvature).
    assert_same_state(model, reference)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.fit(np.where(X == 16, np.nan, X), y)
    assert_same_state(model, reference)


def test_numerically_singular_block_detected_by_condition_estimate():
    """A Cholesky factor can exist for a matrix singular to working precision; the
    condition estimate ``‖S‖₁‖S⁻¹‖₁`` of the equilibrated block refuses it."""
    X, y = data_of("ridge")
    # A column that is the sum of two others: singular in exact arithmetic, and depending
    # on round-off either the Cholesky factorization or the condition estimate refuses it.
    collinear = np.hstack([X, X[:, :1] + X[:, 1:2]])
    with pytest.raises(CurvatureError, match=r"numerically singular \(condition number|singular"):
        UnlearnableRidge(alpha=0.0).fit(collinear, y)
    # Damping is the documented fallback.
    model = UnlearnableRidge(alpha=0.0, damping=1e-6).fit(collinear, y)
    assert np.all(np.isfinite(model.coef_))
    # The estimate itself, on a block whose Cholesky factor exists in IEEE arithmetic:
    # [[1, a], [a, 1]] with a = 1 − 2⁻⁵² has the pivot 1 − a² = 2⁻⁵¹ > 0, condition ≈ 4.5e15.
    a = 1.0 - 2.0**-52
    gram = np.array([[1.0, a], [a, 1.0]])
    curvature = BlockFisherInverse().fit_gram([gram.copy()], n_samples=10)
    with pytest.raises(CurvatureError, match=r"block 0 is numerically singular \(condition"):
        _check_conditioning(curvature, [_scaled_one_norm(gram)], np.dtype(np.float64))


def test_badly_scaled_but_well_posed_features_are_accepted():
    """The condition estimate is taken after diagonal scaling: a feature in other units
    (here 1e-8 times smaller) is not a singular problem, and the erasure stays exact."""
    X, y = data_of("ridge")
    X = X.copy()
    X[:, 0] *= 1e-8
    model = UnlearnableRidge(alpha=0.0).fit(X, y).forget(X[:10], y[:10])
    refit = UnlearnableRidge(alpha=0.0).fit(X[10:], y[10:])
    np.testing.assert_allclose(model.coef_, refit.coef_, rtol=1e-9)
    np.testing.assert_allclose(model.intercept_, refit.intercept_, rtol=1e-9)


def test_ill_conditioned_logistic_curvature_refused():
    """Constant (all-zero after scaling) digits pixels are determined by the penalty alone;
    with a negligible penalty the logistic Hessian fails its Cholesky factorization."""
    X, y = digits()
    assert np.any(X.std(axis=0) == 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(CurvatureError, match="not positive definite|numerically singular"):
            UnlearnableLogisticRegression(C=1e300, max_iter=50, tol=1e-3).fit(X[:300], y[:300] == 1)
        # The documented fallback: damping.
        model = UnlearnableLogisticRegression(C=1e300, max_iter=50, tol=1e-3, damping=1e-4)
        model.fit(X[:300], y[:300] == 1)
    assert model.curvature_.n_blocks_ == 1


def test_error_message_names_a_remedy():
    X, y, row = _one_sample_pixel()
    model = UnlearnableRidge(alpha=0.0).fit(X, y)
    with pytest.raises(CurvatureError, match="Use damping > 0 or refit"):
        model.forget(X[[row]], y[[row]])


@pytest.mark.parametrize("name", ["logistic-binary", "ridge"])
def test_forget_step_never_changes_the_model(name):
    X, y = data_of(name)
    model = fitted(name)
    reference = copy.deepcopy(model)
    step = model.forget_step(X[:5], y[:5])
    assert step.n_removed == 5
    assert_same_state(model, reference)
