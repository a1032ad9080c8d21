"""Guards on state that fit fixes: parameters changed after fit, precision that cannot hold a
damped block, pipelines that cannot be erased through, and labels left with one class."""

import copy
import warnings

import numpy as np
import pytest
from _trust_helpers import assert_same_state, breast_cancer, diabetes, digits
from sklearn.datasets import load_breast_cancer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_ssse import (
    UnlearnableLogisticRegression,
    UnlearnableRidge,
    similarity_ratio_path,
)


@pytest.mark.parametrize(
    "make, data, change",
    [
        (UnlearnableLogisticRegression, breast_cancer, {"curvature": "empirical_fisher"}),
        (UnlearnableLogisticRegression, breast_cancer, {"damping": 0.1}),
        (UnlearnableLogisticRegression, breast_cancer, {"C": 3.0}),
        (UnlearnableLogisticRegression, breast_cancer, {"curvature_dtype": "float32"}),
        (UnlearnableRidge, diabetes, {"curvature": "empirical_fisher"}),
        (UnlearnableRidge, diabetes, {"alpha": 10.0}),
        (UnlearnableRidge, diabetes, {"fit_intercept": False}),
    ],
)
def test_parameters_changed_after_fit_are_refused(make, data, change):
    X, y = data()
    model = make().fit(X, y)
    untouched = copy.deepcopy(model)
    model.set_params(**change)
    name = next(iter(change))
    with pytest.raises(ValueError, match=rf"parameters changed after fit \({name}="):
        model.forget(X[:5], y[:5])
    with pytest.raises(ValueError, match="Set them back or fit again"):
        model.forget_step(X[:5], y[:5])
    model.set_params(**{name: untouched.get_params()[name]})
    assert_same_state(model, untouched)
    # Back to the fit-time value, the request goes through.
    model.forget(X[:5], y[:5])
    assert model.n_samples_ == untouched.n_samples_ - 5


def test_request_time_parameters_may_change_after_fit():
    """eps, leave_out and check_membership are read at each request: same as at fit."""
    X, y = breast_cancer()
    fitted = UnlearnableLogisticRegression().fit(X, y)
    for change in ({"eps": 0.5}, {"leave_out": False}, {"check_membership": False}):
        changed = copy.deepcopy(fitted).set_params(**change).forget(X[:5], y[:5])
        expected = UnlearnableLogisticRegression(**change).fit(X, y).forget(X[:5], y[:5])
        np.testing.assert_array_equal(changed.coef_, expected.coef_)
        np.testing.assert_array_equal(changed.intercept_, expected.intercept_)


def test_float32_damped_block_is_decomposed_in_float64():
    """Unscaled features (areas in the thousands next to ratios below one): a float32
    eigendecomposition would lose the small eigenvalues, so the blocks are decomposed in
    float64 and only stored in float32; the float32 step then agrees with float64's."""
    X, y = load_breast_cancer(return_X_y=True)
    params = dict(C=0.5, damping=1e-3, max_iter=5000)
    single = UnlearnableLogisticRegression(curvature_dtype="float32", **params).fit(X, y)
    double = UnlearnableLogisticRegression(**params).fit(X, y)
    for rows in (slice(0, 5), slice(100, 130)):
        a, b = single.forget_step(X[rows], y[rows]), double.forget_step(X[rows], y[rows])
        ta, tb = np.append(a.coef, a.intercept), np.append(b.coef, b.intercept)
        assert np.linalg.norm(ta - tb) <= 1e-2 * np.linalg.norm(tb)


def test_similarity_ratio_path_refuses_a_pipeline_forget_refuses():
    X, y = load_breast_cancer(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), UnlearnableLogisticRegression()).fit(X, y)
    retrained = make_pipeline(StandardScaler(), UnlearnableLogisticRegression()).fit(X[9:], y[9:])
    with pytest.raises(ValueError, match="Cannot erase samples through pipeline step"):
        similarity_ratio_path(pipe, X[:9], y[:9], retrained, [0.0, 1.0])


def test_removing_every_sample_of_a_class_warns():
    X, y = digits()
    model = UnlearnableLogisticRegression().fit(X, y)
    gone = y == 3
    with pytest.warns(UserWarning, match=r"label\(s\) \[3\] have samples of one class"):
        model.forget(X[gone], y[gone])
    # A request that leaves both classes in every label does not warn.
    other = np.flatnonzero(y == 2)[:5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.forget(X[other], y[other])
