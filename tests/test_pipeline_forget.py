"""``sklearn_ssse.forget`` on estimators and pipelines (no torch needed)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, Normalizer, StandardScaler

from sklearn_ssse import UnlearnableLogisticRegression, forget


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] + 0.5 * rng.normal(size=80) > 0).astype(int)
    return X, y


def test_forget_on_bare_estimator(data):
    X, y = data
    a = UnlearnableLogisticRegression().fit(X, y)
    b = UnlearnableLogisticRegression().fit(X, y)
    assert forget(a, X[:5], y[:5], eps=0.5) is a
    b.forget(X[:5], y[:5], eps=0.5)
    assert_allclose(a.coef_, b.coef_)
    assert a.n_samples_ == 75


def test_forget_through_frozen_and_stateless_steps(data):
    X, y = data
    scaler = StandardScaler().fit(np.random.default_rng(1).normal(size=(50, 4)))
    front = [FrozenEstimator(scaler), FunctionTransformer(np.tanh), Normalizer(), "passthrough"]
    pipe = make_pipeline(*front, UnlearnableLogisticRegression()).fit(X, y)

    # The same erasure done by hand on the transformed features.
    Xt = Normalizer().transform(np.tanh(scaler.transform(X)))
    manual = UnlearnableLogisticRegression().fit(Xt, y)
    assert_allclose(pipe[-1].coef_, manual.coef_)

    forget(pipe, X[:7], y[:7])
    manual.forget(Xt[:7], y[:7])
    assert_allclose(pipe[-1].coef_, manual.coef_, rtol=1e-12, atol=1e-12)
    assert_allclose(pipe[-1].intercept_, manual.intercept_, rtol=1e-12, atol=1e-12)
    assert pipe[-1].n_samples_ == 73


def test_nested_stateless_pipeline_is_accepted(data):
    X, y = data
    inner = Pipeline([("f", FunctionTransformer(np.tanh)), ("n", Normalizer())])
    pipe = make_pipeline(inner, UnlearnableLogisticRegression()).fit(X, y)
    forget(pipe, X[:3], y[:3])
    assert pipe[-1].n_forgotten_ == 3


def test_fitted_scaler_is_refused_and_nothing_changes(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), UnlearnableLogisticRegression()).fit(X, y)
    before = pipe[-1].coef_.copy()
    with pytest.raises(ValueError, match="standardscaler.*fitted on the training data"):
        forget(pipe, X[:5], y[:5])
    assert_allclose(pipe[-1].coef_, before)
    assert pipe[-1].n_samples_ == 80


def test_nested_learned_step_is_refused(data):
    X, y = data
    inner = Pipeline([("f", FunctionTransformer(np.tanh)), ("s", StandardScaler())])
    pipe = make_pipeline(inner, UnlearnableLogisticRegression()).fit(X, y)
    with pytest.raises(ValueError, match="its step 's'"):
        forget(pipe, X[:5], y[:5])


def test_not_unlearnable_is_a_type_error(data):
    X, y = data
    with pytest.raises(TypeError, match="cannot forget"):
        forget(LogisticRegression().fit(X, y), X[:2], y[:2])
    pipe = make_pipeline(Normalizer(), LogisticRegression()).fit(X, y)
    with pytest.raises(TypeError, match="no forget method"):
        forget(pipe, X[:2], y[:2])
