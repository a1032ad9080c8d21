"""Properties of ``forget`` checked with hypothesis on real data."""

import copy

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes

from sklearn_ssse import UnlearnableLogisticRegression, UnlearnableRidge
from sklearn_ssse.datasets import load_yeast

X_YEAST, Y_YEAST = load_yeast(return_X_y=True)
X_YEAST, Y_YEAST = X_YEAST[:400], Y_YEAST[:400, [0, 6, 8, 10]]  # small: many examples
X_DIAB, y_DIAB = load_diabetes(return_X_y=True)

MODELS = {
    "logistic-hessian": UnlearnableLogisticRegression(C=1.0, tol=1e-10).fit(X_YEAST, Y_YEAST),
    "logistic-paper": UnlearnableLogisticRegression(
        C=1.0, curvature="empirical_fisher", leave_out=False, damping=1e-4
    ).fit(X_YEAST, Y_YEAST),
    "ridge": UnlearnableRidge(alpha=0.1).fit(X_DIAB, y_DIAB),
    "ridge-damped-fisher": UnlearnableRidge(
        alpha=0.1, curvature="empirical_fisher", damping=1e-2
    ).fit(X_DIAB, y_DIAB),
}


def _data(name):
    return (X_DIAB, y_DIAB) if name.startswith("ridge") else (X_YEAST, Y_YEAST)


def _theta(model):
    return np.hstack([np.atleast_2d(model.coef_), np.reshape(model.intercept_, (-1, 1))])


requests = st.lists(st.integers(0, 399), min_size=1, max_size=12, unique=True)
model_names = st.sampled_from(sorted(MODELS))


@settings(max_examples=25, deadline=None)
@given(model_names, requests)
def test_eps_zero_is_a_no_op_on_parameters(name, rows):
    X, y = _data(name)
    model = copy.deepcopy(MODELS[name]).forget(X[rows], y[rows], eps=0.0)
    np.testing.assert_array_equal(_theta(model), _theta(MODELS[name]))
    assert model.n_samples_ == MODELS[name].n_samples_ - len(rows)


@settings(max_examples=25, deadline=None)
@given(model_names, requests, st.floats(0.1, 20.0), st.floats(0.1, 20.0))
def test_step_is_linear_in_eps(name, rows, a, b):
    X, y = _data(name)
    start = _theta(MODELS[name])
    step_a = _theta(copy.deepcopy(MODELS[name]).forget(X[rows], y[rows], eps=a)) - start
    step_b = _theta(copy.deepcopy(MODELS[name]).forget(X[rows], y[rows], eps=b)) - start
    np.testing.assert_allclose(step_a / a, step_b / b, rtol=1e-7, atol=1e-12)
    unit = MODELS[name].forget_step(X[rows], y[rows])
    np.testing.assert_allclose(
        np.hstack([np.atleast_2d(unit.coef), np.reshape(unit.intercept, (-1, 1))]),
        step_a / a,
        rtol=1e-7,
        atol=1e-12,
    )


@settings(max_examples=25, deadline=None)
@given(model_names, requests, st.randoms(use_true_random=False))
def test_order_of_removed_samples_does_not_matter(name, rows, random):
    X, y = _data(name)
    shuffled = list(rows)
    random.shuffle(shuffled)
    a = copy.deepcopy(MODELS[name]).forget(X[rows], y[rows])
    b = copy.deepcopy(MODELS[name]).forget(X[shuffled], y[shuffled])
    np.testing.assert_allclose(_theta(a), _theta(b), rtol=1e-9, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 441), min_size=2, max_size=30, unique=True), st.data())
def test_ridge_sequential_requests_equal_one_joint_request(rows, data):
    split = data.draw(st.integers(1, len(rows) - 1))
    first, second = rows[:split], rows[split:]
    model = MODELS["ridge"]
    sequential = copy.deepcopy(model).forget(X_DIAB[first], y_DIAB[first])
    sequential.forget(X_DIAB[second], y_DIAB[second])
    joint = copy.deepcopy(model).forget(X_DIAB[rows], y_DIAB[rows])
    np.testing.assert_allclose(_theta(sequential), _theta(joint), rtol=1e-8, atol=1e-10)
    assert sequential.n_samples_ == joint.n_samples_
