"""``sklearn_ssse.pipeline.Pipeline``: forget, forget_step and was_erased on raw samples."""

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.compose import ColumnTransformer, make_column_transformer
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import FeatureUnion
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.preprocessing import FunctionTransformer, Normalizer, StandardScaler

import sklearn_ssse
from sklearn_ssse import UnlearnableLogisticRegression, UnlearnableRidge
from sklearn_ssse.pipeline import Pipeline, PipelineBypassWarning, make_pipeline


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4))
    y = (X[:, 0] - X[:, 2] + 0.5 * rng.normal(size=90) > 0).astype(int)
    return X, y


def _state(model):
    return model.coef_.copy(), np.copy(model.intercept_), model.n_samples_


def _assert_same_state(model, state):
    coef, intercept, n = state
    assert_array_equal(model.coef_, coef)
    assert_array_equal(model.intercept_, intercept)
    assert model.n_samples_ == n


def test_pipeline_forget_equals_the_erasure_by_hand_and_the_function(data):
    X, y = data
    frozen = FrozenEstimator(StandardScaler().fit(np.random.default_rng(1).normal(size=(40, 4))))
    front = [frozen, FunctionTransformer(np.tanh), Normalizer()]
    pipe = make_pipeline(*front, UnlearnableLogisticRegression()).fit(X, y)
    plain = SkPipeline(pipe.steps[:-1] + [("m", UnlearnableLogisticRegression())]).fit(X, y)
    Xt = Normalizer().transform(np.tanh(frozen.transform(X)))
    manual = UnlearnableLogisticRegression().fit(Xt, y)

    step = pipe.forget_step(X[:8], y[:8])
    assert_allclose(step.coef, manual.forget_step(Xt[:8], y[:8]).coef, rtol=1e-12)
    assert pipe.forget(X[:8], y[:8], eps=0.7) is pipe
    sklearn_ssse.forget(plain, X[:8], y[:8], eps=0.7)
    manual.forget(Xt[:8], y[:8], eps=0.7)
    for erased in (pipe[-1], plain[-1]):
        assert_allclose(erased.coef_, manual.coef_, rtol=1e-12, atol=1e-14)
        assert_allclose(erased.intercept_, manual.intercept_, rtol=1e-12, atol=1e-14)
    assert_array_equal(pipe.was_erased(X[:10], y[:10]), [True] * 8 + [False] * 2)


def test_ridge_pipeline_forget_is_the_refit(data):
    X, _ = data
    y = X @ [1.0, -2.0, 0.5, 3.0] + np.random.default_rng(2).normal(size=len(X))
    pipe = make_pipeline(FunctionTransformer(np.tanh), UnlearnableRidge(alpha=0.3)).fit(X, y)
    pipe.forget(X[:12], y[:12])
    refit = make_pipeline(FunctionTransformer(np.tanh), UnlearnableRidge(alpha=0.3))
    refit.fit(X[12:], y[12:])
    assert_allclose(pipe[-1].coef_, refit[-1].coef_, rtol=1e-10)
    assert_allclose(pipe.predict(X), refit.predict(X), rtol=1e-10)


@pytest.mark.parametrize("method", ["forget", "forget_step", "was_erased"])
def test_every_method_refuses_a_fitted_scaler_and_changes_nothing(data, method):
    X, y = data
    pipe = make_pipeline(StandardScaler(), UnlearnableLogisticRegression()).fit(X, y)
    before = _state(pipe[-1])
    with pytest.raises(ValueError, match="standardscaler.*fitted on the training data"):
        getattr(pipe, method)(X[:5], y[:5])
    _assert_same_state(pipe[-1], before)


def test_stateless_column_transformer_and_feature_union_are_accepted(data):
    X, y = data
    columns = make_column_transformer(
        (FunctionTransformer(np.tanh), [0, 1]),
        (FrozenEstimator(StandardScaler().fit(X[:30, 2:])), [2, 3]),
        remainder="drop",
    )
    union = FeatureUnion([("tanh", FunctionTransformer(np.tanh)), ("norm", Normalizer())])
    for front in (columns, union):
        pipe = make_pipeline(front, UnlearnableLogisticRegression()).fit(X, y)
        Xt = clone(front).fit_transform(X) if front is union else pipe[0].transform(X)
        manual = UnlearnableLogisticRegression().fit(Xt, y)
        pipe.forget(X[:6], y[:6])
        sklearn_ssse.forget(manual, Xt[:6], y[:6])
        assert_allclose(pipe[-1].coef_, manual.coef_, rtol=1e-12, atol=1e-14)
        assert pipe[-1].n_forgotten_ == 6


@pytest.mark.parametrize(
    "front, named",
    [
        (ColumnTransformer([("a", FunctionTransformer(), [0]), ("s", StandardScaler(), [1])]), "s"),
        (ColumnTransformer([("a", FunctionTransformer(), [0])], remainder=StandardScaler()), "rem"),
        (FeatureUnion([("f", FunctionTransformer()), ("scaled", StandardScaler())]), "scaled"),
    ],
)
def test_a_learned_part_of_a_column_transformer_or_union_is_refused(data, front, named):
    X, y = data
    pipe = make_pipeline(front, UnlearnableLogisticRegression()).fit(X, y)
    before = _state(pipe[-1])
    with pytest.raises(ValueError, match=f"its step '{named}.*fitted on the training data"):
        pipe.forget(X[:5], y[:5])
    with pytest.raises(ValueError, match=f"its step '{named}"):
        sklearn_ssse.forget(SkPipeline(pipe.steps), X[:5], y[:5])
    _assert_same_state(pipe[-1], before)


def test_forget_on_the_last_step_directly_warns(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), UnlearnableLogisticRegression()).fit(X, y)
    with pytest.warns(PipelineBypassWarning, match="'standardscaler'.*not erasable"):
        pipe[-1].forget(pipe[0].transform(X[:3]), y[:3])
    # After pickling too; a refit of the estimator on its own clears the mark.
    again = pickle.loads(pickle.dumps(make_pipeline(Normalizer(), pipe[-1]).fit(X, y)))
    with pytest.warns(PipelineBypassWarning, match="steps 'normalizer'"):
        again[-1].forget(again[0].transform(X[:3]), y[:3])
    alone = again[-1].fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PipelineBypassWarning)
        alone.forget(X[:3], y[:3])
        # Through the pipeline, and with only passthrough before the estimator: no warning.
        make_pipeline(Normalizer(), UnlearnableLogisticRegression()).fit(X, y).forget(X[:2], y[:2])
        direct = make_pipeline("passthrough", UnlearnableLogisticRegression()).fit(X, y)
        direct[-1].forget(X[:2], y[:2])


def test_clone_params_grid_search_and_pickle(data):
    X, y = data
    pipe = make_pipeline(Normalizer(), UnlearnableLogisticRegression())
    assert isinstance(clone(pipe), Pipeline)
    assert pipe.get_params()["unlearnablelogisticregression__C"] == 1.0
    search = GridSearchCV(pipe, {"unlearnablelogisticregression__C": [0.1, 10.0]}, cv=3)
    search.fit(X, y)
    best = search.best_estimator_
    assert isinstance(best, Pipeline)
    restored = pickle.loads(pickle.dumps(best))
    best.forget(X[:4], y[:4])
    restored.forget(X[:4], y[:4])
    assert_array_equal(best[-1].coef_, restored[-1].coef_)
    assert restored.was_erased(X[:4], y[:4]).all()


def test_last_step_without_forget_has_no_forget(data):
    X, y = data
    pipe = make_pipeline(Normalizer(), LogisticRegression()).fit(X, y)
    for method in ("forget", "forget_step", "was_erased"):
        assert not hasattr(pipe, method)
    with pytest.raises(AttributeError, match="has no attribute 'forget'") as error:
        pipe.forget(X[:2], y[:2])
    assert "'logisticregression' (LogisticRegression) has no forget" in str(error.value.__cause__)


@settings(max_examples=10)
@given(
    seed=st.integers(0, 2**16),
    k=st.integers(1, 10),
    eps=st.floats(0.1, 2.0),
)
def test_property_pipeline_forget_is_forget_on_transformed_samples(seed, k, eps):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(50, 3))
    Y = (rng.random((50, 2)) < 0.5).astype(int)
    Y[:2] = [[0, 0], [1, 1]]  # both classes of every label outside the removed rows
    Y[-2:] = [[0, 0], [1, 1]]
    removed = rng.choice(np.arange(2, 48), k, replace=False)
    front = ColumnTransformer(
        [("sin", FunctionTransformer(np.sin), [0, 1]), ("keep", "passthrough", [2])]
    )
    pipe = make_pipeline(front, UnlearnableLogisticRegression()).fit(X, Y)
    Xt = pipe[0].transform(X)
    manual = UnlearnableLogisticRegression().fit(Xt, Y)
    pipe.forget(X[removed], Y[removed], eps=eps)
    manual.forget(Xt[removed], Y[removed], eps=eps)
    assert_allclose(pipe[-1].coef_, manual.coef_, rtol=1e-12, atol=1e-13)
    assert_allclose(pipe[-1].intercept_, manual.intercept_, rtol=1e-12, atol=1e-13)


def test_data_frame_columns_by_name(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    front = make_column_transformer((FunctionTransformer(np.tanh), ["a", "c"]), remainder="drop")
    pipe = make_pipeline(front, UnlearnableLogisticRegression()).fit(frame, y)
    manual = UnlearnableLogisticRegression().fit(np.tanh(X[:, [0, 2]]), y)
    pipe.forget(frame.iloc[:5], y[:5])
    manual.forget(np.tanh(X[:5, [0, 2]]), y[:5])
    assert_allclose(pipe[-1].coef_, manual.coef_, rtol=1e-12, atol=1e-14)
    assert pipe.was_erased(frame.iloc[:6], y[:6]).tolist() == [True] * 5 + [False]
    with pytest.raises(ValueError, match="columns are missing"):
        pipe.forget(frame[["b", "d"]].iloc[5:7], y[5:7])
    assert pipe[-1].n_samples_ == len(X) - 5
