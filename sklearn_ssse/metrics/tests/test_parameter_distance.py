import copy
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import MultiOutputClassifier

from sklearn_ssse.metrics import parameter_distance

from ._helpers import (
    binary_problem,
    blend,
    digits_labels,
    multiclass_problem,
    multilabel_problem,
)


@pytest.mark.parametrize("make_problem", [binary_problem, multiclass_problem, multilabel_problem])
@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 1.7])
def test_blend_distance_is_one_minus_t(make_problem, t):
    p = make_problem()
    erased = blend(p.original, p.retrained, t)
    distance = parameter_distance(erased, p.original, p.retrained)
    assert distance == pytest.approx(abs(1.0 - t), abs=1e-12)


def test_matches_direct_formula():
    p = multilabel_problem()
    erased = blend(p.original, p.retrained, 0.5, noise=0.2)

    def theta(model):
        return np.r_[model.coef_.ravel(), model.intercept_.ravel()]

    expected = np.linalg.norm(theta(erased) - theta(p.retrained)) / np.linalg.norm(
        theta(p.original) - theta(p.retrained)
    )
    assert parameter_distance(erased, p.original, p.retrained) == pytest.approx(expected)


def test_identical_references():
    theta = np.array([[1.0, -2.0, 3.0]])
    assert parameter_distance(theta, theta, theta.copy()) == 0.0
    assert parameter_distance(theta + 1e-9, theta, theta) == np.inf


def test_without_intercept_and_sparse_coef():
    p = binary_problem()
    models = [copy.deepcopy(m) for m in (p.original, p.retrained)]
    for model in models:
        model.sparsify()
    original, retrained = models
    erased = SimpleNamespace(coef_=0.5 * (p.original.coef_ + p.retrained.coef_))
    original_no_icpt = SimpleNamespace(coef_=p.original.coef_)
    retrained_no_icpt = SimpleNamespace(coef_=p.retrained.coef_)
    assert parameter_distance(erased, original_no_icpt, retrained_no_icpt) == pytest.approx(0.5)
    assert sparse.issparse(original.coef_)
    assert parameter_distance(retrained, original, retrained) == 0.0


def test_multioutput_classifier_estimators():
    digits = load_digits()
    X, Y = digits.data[:400] / 16.0, digits_labels(digits.target[:400])
    original = MultiOutputClassifier(LogisticRegression(max_iter=2000)).fit(X, Y)
    retrained = MultiOutputClassifier(LogisticRegression(max_iter=2000)).fit(X[50:], Y[50:])
    assert parameter_distance(original, original, retrained) == 1.0
    assert parameter_distance(retrained, original, retrained) == 0.0


def test_validation():
    p = multiclass_problem()
    q = binary_problem()
    with pytest.raises(ValueError, match="shapes differ"):
        parameter_distance(q.original, p.original, p.retrained)
    with pytest.raises(ValueError, match="shapes differ"):
        parameter_distance(np.ones((2, 3)), np.ones((3, 2)), np.zeros((3, 2)))
    no_intercept = SimpleNamespace(coef_=p.original.coef_)
    with pytest.raises(ValueError, match="intercept has shape"):
        parameter_distance(no_intercept, p.original, p.retrained)
    with pytest.raises(ValueError, match="non-finite"):
        parameter_distance(np.array([np.nan, 1.0]), np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match="fitted linear model"):
        parameter_distance("not a model", np.ones(2), np.zeros(2))
