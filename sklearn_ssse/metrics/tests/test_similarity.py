import copy

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import load_digits, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import MultiOutputClassifier
from sklearn.preprocessing import StandardScaler, label_binarize

from sklearn_ssse.metrics import similarity_ratio

from ._helpers import (
    YEAST_TRAIN,
    PerLabelLogistic,
    binary_problem,
    blend,
    digits_labels,
    multiclass_problem,
    multilabel_problem,
    reference_similarity_ratio,
    yeast_problem,
)


def _indicator(problem):
    Y = np.asarray(problem.Y_removed)
    if Y.ndim == 2:
        return Y
    classes = problem.original.classes_
    if len(classes) == 2:
        return (Y == classes[1]).astype(int)[:, None]
    return label_binarize(Y, classes=classes)


@pytest.mark.parametrize(
    "make_problem", [binary_problem, multiclass_problem, multilabel_problem, yeast_problem]
)
@pytest.mark.parametrize("t", [0.3, 0.6, 1.4])
def test_matches_reference_implementation(make_problem, t):
    if make_problem is yeast_problem and not YEAST_TRAIN.exists():
        pytest.skip("Mulan yeast data not available")
    p = make_problem()
    erased = blend(p.original, p.retrained, t, noise=0.05, seed=int(10 * t))
    gamma = similarity_ratio(p.original, erased, p.retrained, p.X_removed, p.Y_removed)
    expected = reference_similarity_ratio(
        p.original, erased, p.retrained, p.X_removed, _indicator(p)
    )
    assert gamma == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_matches_reference_for_one_vs_rest_multiclass():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    removed = np.arange(len(y)) % 4 == 0
    original = OneVsRestClassifier(LogisticRegression()).fit(X, y)
    retrained = OneVsRestClassifier(LogisticRegression()).fit(X[~removed], y[~removed])
    erased = OneVsRestClassifier(LogisticRegression(C=0.05)).fit(X[~removed], y[~removed])
    gamma = similarity_ratio(original, erased, retrained, X[removed], y[removed])
    expected = reference_similarity_ratio(
        original, erased, retrained, X[removed], label_binarize(y[removed], classes=[0, 1, 2])
    )
    assert gamma == pytest.approx(expected)


def test_predict_proba_fallback_with_multioutput_classifier():
    digits = load_digits()
    X, Y = digits.data / 16.0, digits_labels(digits.target)
    removed = np.arange(len(Y)) % 7 == 0

    def fit(C, mask):
        return MultiOutputClassifier(LogisticRegression(C=C, max_iter=2000)).fit(X[mask], Y[mask])

    original, retrained, erased = fit(1.0, slice(None)), fit(1.0, ~removed), fit(0.3, ~removed)
    assert not hasattr(original, "decision_function")

    def positive_proba(model):
        return np.column_stack([proba[:, 1] for proba in model.predict_proba(X[removed])])

    gamma = similarity_ratio(original, erased, retrained, X[removed], Y[removed])
    expected = reference_similarity_ratio(
        original, erased, retrained, X[removed], Y[removed], score=positive_proba
    )
    assert gamma == pytest.approx(expected)


def test_paper_convention_for_absent_and_constant_labels():
    p = multilabel_problem()
    digits = load_digits()
    X, digit = digits.data / 16.0, digits.target
    # On digits {1, 2, 4, 7}: "even", "> 4" and "in {1, 4, 7}" are mixed while
    # "== 0" and "== 3" are absent.
    in_s = np.isin(digit, (1, 2, 4, 7))
    X_s, Y_s = X[in_s], digits_labels(digit[in_s])
    erased = blend(p.original, p.retrained, 0.5, noise=0.1)
    gamma, details = similarity_ratio(
        p.original, erased, p.retrained, X_s, Y_s, return_details=True
    )
    assert details["label_is_valid"].tolist() == [True, True, True, False, False]
    for key in ("auc_original", "auc_erased", "auc_retrained"):
        assert np.all(details[key][3:] == 0.0)
        assert np.all(details[key][:3] > 0.5)

    # Dropping the absent labels altogether gives the same ratio.
    three = copy.deepcopy(p.original), copy.deepcopy(erased), copy.deepcopy(p.retrained)
    for model in three:
        model.coef_, model.intercept_ = model.coef_[:3], model.intercept_[:3]
    assert similarity_ratio(*three, X_s, Y_s[:, :3]) == pytest.approx(gamma)

    # A label present in every sample of S (constant) is undefined too: AUC 0.
    Y_const = Y_s.copy()
    Y_const[:, 4] = 1
    gamma_const, details = similarity_ratio(
        p.original, erased, p.retrained, X_s, Y_const, return_details=True
    )
    assert not details["label_is_valid"][4]
    assert details["auc_erased"][4] == 0.0
    assert gamma_const == pytest.approx(gamma)


def test_degenerate_ratio_when_no_label_is_mixed():
    p = binary_problem()
    erased = blend(p.original, p.retrained, 0.5)
    positives = p.Y_removed == 1
    gamma, details = similarity_ratio(
        p.original,
        erased,
        p.retrained,
        p.X_removed[positives],
        p.Y_removed[positives],
        return_details=True,
    )
    assert gamma == 0.5
    assert details["degenerate"]
    assert details["distance_to_original"] == details["distance_to_retrained"] == 0.0


def test_degenerate_ratio_when_all_models_rank_alike():
    p = multilabel_problem()
    # Rescaling a linear model's scores leaves every ranking, hence every AUC, unchanged.
    scaled = copy.deepcopy(p.original)
    scaled.coef_, scaled.intercept_ = 3.0 * p.original.coef_, 3.0 * p.original.intercept_
    gamma, details = similarity_ratio(
        p.original, scaled, scaled, p.X_removed, p.Y_removed, return_details=True
    )
    assert gamma == 0.5
    assert details["degenerate"]


@pytest.mark.parametrize("make_problem", [binary_problem, multiclass_problem, multilabel_problem])
def test_extremes(make_problem):
    p = make_problem()
    args = (p.X_removed, p.Y_removed)
    assert similarity_ratio(p.original, copy.deepcopy(p.retrained), p.retrained, *args) == 1.0
    assert similarity_ratio(p.original, copy.deepcopy(p.original), p.retrained, *args) == 0.0


def test_details_content():
    p = multilabel_problem()
    erased = blend(p.original, p.retrained, 0.5)
    gamma, details = similarity_ratio(
        p.original, erased, p.retrained, p.X_removed, p.Y_removed, return_details=True
    )
    assert not details["degenerate"]
    np.testing.assert_array_equal(details["labels"], np.arange(5))
    d_o = np.abs(details["auc_erased"] - details["auc_original"]).sum()
    d_r = np.abs(details["auc_erased"] - details["auc_retrained"]).sum()
    assert details["distance_to_original"] == pytest.approx(d_o)
    assert details["distance_to_retrained"] == pytest.approx(d_r)
    assert gamma == pytest.approx(d_o / (d_o + d_r))
    assert details["distance_original_retrained"] > 0


def test_string_class_labels():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    removed = np.arange(len(y)) % 3 == 0
    original = LogisticRegression(C=10).fit(X, names)
    retrained = LogisticRegression(C=10).fit(X[~removed], names[~removed])
    erased = blend(original, retrained, 0.5, noise=0.3)
    gamma = similarity_ratio(original, erased, retrained, X[removed], names[removed])
    numeric = reference_similarity_ratio(
        original, erased, retrained, X[removed], label_binarize(y[removed], classes=[0, 1, 2])
    )
    assert gamma == pytest.approx(numeric)


def test_retrained_model_missing_a_class():
    # Erasing every sample of a class leaves a retrained model that cannot score it.
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    removed = (y == 2) | (np.arange(len(y)) % 5 == 0)
    original = LogisticRegression().fit(X, y)
    retrained = LogisticRegression().fit(X[~removed], y[~removed])
    assert retrained.classes_.tolist() == [0, 1]
    gamma, details = similarity_ratio(
        original, retrained, retrained, X[removed], y[removed], return_details=True
    )
    assert details["auc_retrained"][2] == 0.5
    # Its 1-D decision ranks class 1; its negation ranks class 0.
    score = retrained.decision_function(X[removed])
    for label, sign in ((0, -1.0), (1, 1.0)):
        expected = roc_auc_score(y[removed] == label, sign * score)
        assert details["auc_retrained"][label] == pytest.approx(expected)
    assert gamma == 1.0


def test_sparse_input():
    p = multilabel_problem()
    erased = blend(p.original, p.retrained, 0.5)
    dense = similarity_ratio(p.original, erased, p.retrained, p.X_removed, p.Y_removed)
    X_sparse = sparse.csr_matrix(p.X_removed)
    # PerLabelLogistic only does X @ coef.T, which scipy sparse supports.
    assert similarity_ratio(p.original, erased, p.retrained, X_sparse, p.Y_removed) == dense


def test_input_validation():
    p = multilabel_problem()
    models = (p.original, blend(p.original, p.retrained, 0.5), p.retrained)
    X, Y = p.X_removed, p.Y_removed

    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="X_removed contains NaN"):
        similarity_ratio(*models, X_nan, Y)
    Y_nan = Y.astype(float)
    Y_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        similarity_ratio(*models, X, Y_nan)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        similarity_ratio(*models, X, Y[:-1])
    with pytest.raises(ValueError, match="1-D .* or 2-D"):
        similarity_ratio(*models, X, Y[:, :, None])
    with pytest.raises(ValueError, match="only contain 0 and 1"):
        similarity_ratio(*models, X, 2 * Y)
    with pytest.raises(ValueError, match="expected"):
        similarity_ratio(*models, X, Y[:, :3])
    with pytest.raises(ValueError, match="features"):
        similarity_ratio(*models, X[:, :10], Y)
    with pytest.raises(ValueError, match="0 sample"):
        similarity_ratio(*models, X[:0], Y[:0])

    q = multiclass_problem()
    with pytest.raises(ValueError, match="unknown to the reference model"):
        similarity_ratio(q.original, q.retrained, q.retrained, q.X_removed, q.Y_removed + 5)

    regressor = LinearRegression().fit(X, Y[:, 0])
    with pytest.raises(TypeError, match="decision_function or predict_proba"):
        similarity_ratio(p.original, regressor, p.retrained, X, Y)


def test_non_finite_scores_are_rejected():
    p = multilabel_problem()
    broken = copy.deepcopy(p.original)
    broken.coef_ = np.full_like(p.original.coef_, np.nan)
    with pytest.raises(ValueError, match="non-finite scores"):
        similarity_ratio(p.original, broken, p.retrained, p.X_removed, p.Y_removed)


def test_per_label_wrapper_matches_multioutput_decision():
    # Guard for the test helper itself: its scores equal the per-label sklearn models'.
    digits = load_digits()
    X, Y = digits.data[:300] / 16.0, digits_labels(digits.target[:300])
    wrapper = PerLabelLogistic().fit(X, Y)
    reference = MultiOutputClassifier(LogisticRegression(max_iter=2000)).fit(X, Y)
    expected = np.column_stack([e.decision_function(X) for e in reference.estimators_])
    np.testing.assert_allclose(wrapper.decision_function(X), expected, rtol=1e-6, atol=1e-6)
