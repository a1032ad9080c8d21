import copy
import dataclasses

import numpy as np
import pytest
from scipy.stats import entropy
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from sklearn_ssse.metrics import (
    MembershipInferenceResult,
    membership_inference,
    membership_inference_report,
)
from sklearn_ssse.metrics._membership import _EPS, _attack_features

from ._helpers import YEAST_TRAIN, PerLabelLogistic, blend, digits_labels, load_yeast

needs_yeast = pytest.mark.skipif(not YEAST_TRAIN.exists(), reason="Mulan yeast not available")


def _shuffled_digits(seed=0):
    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    return digits.data[order] / 16.0, digits.target[order]


def _shuffled_yeast(seed=0):
    X, Y = load_yeast()
    order = np.random.default_rng(seed).permutation(len(Y))
    return StandardScaler().fit_transform(X)[order], Y[order]


def _overfit_case(kind):
    """(model, X, Y, n_train): few samples, many features and almost no regularization."""
    if kind == "multiclass":
        X, y = _shuffled_digits()
        return LogisticRegression(C=1e4, max_iter=10_000), X, y, 60
    if kind == "multilabel":
        X, y = _shuffled_digits()
        return PerLabelLogistic(C=1e4, max_iter=10_000), X, digits_labels(y), 60
    X, Y = _shuffled_yeast()
    if kind == "yeast-binary":
        return LogisticRegression(C=1e4, max_iter=10_000), X, Y[:, 0], 100
    return PerLabelLogistic(C=1e4, max_iter=10_000), X, Y, 100


@pytest.mark.parametrize(
    "kind, min_auc",
    [
        ("multiclass", 0.7),
        ("multilabel", 0.7),
        pytest.param("yeast-multilabel", 0.9, marks=needs_yeast),
        pytest.param("yeast-binary", 0.6, marks=needs_yeast),
    ],
)
def test_overfit_model_leaks_membership(kind, min_auc):
    model, X, Y, n = _overfit_case(kind)
    model.fit(X[:n], Y[:n])
    k = int(0.7 * n)
    # The attack learns on part of the members and of the non-members; the rest of each
    # group is queried as targets it has never seen.
    retain, heldout = (X[:k], Y[:k]), (X[n : n + 400], Y[n : n + 400])
    member_targets, non_member_targets = (X[k:n], Y[k:n]), (X[n + 400 :], Y[n + 400 :])

    on_members = membership_inference(model, *retain, *heldout, *member_targets, random_state=0)
    on_non_members = membership_inference(
        model, *retain, *heldout, *non_member_targets, random_state=0
    )
    assert on_members.attack_auc > min_auc
    assert on_members.retain_member_rate > on_members.heldout_member_rate + 0.15
    assert on_members.target_member_rate > on_non_members.target_member_rate
    assert on_members.target_mean_score > on_non_members.target_mean_score
    # Same attack (same seed and training data) in both calls.
    assert on_members.attack_auc == on_non_members.attack_auc


def test_report_erased_like_refit():
    model = LogisticRegression(C=1e4, max_iter=10_000)
    X, y = _shuffled_digits()
    n_train, removed = 80, np.arange(80) < 25
    X_train, y_train = X[:n_train], y[:n_train]
    data = dict(
        X_retain=X_train[~removed],
        Y_retain=y_train[~removed],
        X_heldout=X[n_train:],
        Y_heldout=y[n_train:],
        X_removed=X_train[removed],
        Y_removed=y_train[removed],
    )
    original = copy.deepcopy(model).fit(X_train, y_train)
    retrained = copy.deepcopy(model).fit(data["X_retain"], data["Y_retain"])
    erased = copy.deepcopy(retrained)

    report = membership_inference_report(original, erased, retrained, **data, random_state=0)
    assert set(report) == {"original", "erased", "retrained"}
    assert all(isinstance(r, MembershipInferenceResult) for r in report.values())
    # The removed samples are members of the original model only.
    assert report["original"].target_member_rate > report["retrained"].target_member_rate + 0.2
    # Same seed for every attack: an exact refit gives exactly the refit's result.
    same, refit = dataclasses.asdict(report["erased"]), dataclasses.asdict(report["retrained"])
    np.testing.assert_array_equal(same.pop("target_scores"), refit.pop("target_scores"))
    assert same == refit

    halfway = blend(original, retrained, 0.5)
    report = membership_inference_report(original, halfway, retrained, **data, random_state=0)
    assert 0.0 <= report["erased"].target_member_rate <= 1.0


def _fitted(kind):
    if kind == "binary":
        X, y = load_breast_cancer(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        return LogisticRegression().fit(X, y), X, y
    if kind == "multiclass":
        X, y = load_iris(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        return LogisticRegression().fit(X, y), X, y
    X, digit = _shuffled_digits()
    X, Y = X[:500], digits_labels(digit[:500])
    return PerLabelLogistic().fit(X, Y), X, Y


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_loss_feature_is_per_sample_cross_entropy(kind):
    model, X, Y = _fitted(kind)
    loss = np.exp(_attack_features(model, X, Y, "loss", "Y")[:, 0]) - _EPS
    proba = model.predict_proba(X)
    if kind == "multilabel":
        expected = sum(
            log_loss(Y[:, j], proba[:, j], normalize=False, labels=[0, 1])
            for j in range(Y.shape[1])
        )
    else:
        expected = log_loss(Y, proba, normalize=False, labels=model.classes_)
    assert loss.sum() == pytest.approx(expected, rel=1e-9)
    if kind == "binary":
        p_true = proba[np.arange(len(Y)), Y]
        expected = -np.log(np.clip(p_true, _EPS, 1 - _EPS))
        np.testing.assert_allclose(loss, expected, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_entropy_feature(kind):
    model, X, Y = _fitted(kind)
    H = np.exp(_attack_features(model, X, Y, "entropy", "Y")[:, 0]) - _EPS
    proba = model.predict_proba(X)
    if kind == "multilabel":
        expected = sum(entropy([1 - proba[:, j], proba[:, j]]) for j in range(Y.shape[1]))
    else:
        expected = entropy(proba.T)
    np.testing.assert_allclose(H, expected, rtol=1e-6, atol=1e-12)
    both = _attack_features(model, X, Y, "both", "Y")
    assert both.shape == (len(X), 2)


def test_decision_function_fallback_and_custom_attack():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = LinearSVC(C=10.0, max_iter=20_000).fit(X[:150], y[:150])
    assert not hasattr(model, "predict_proba")
    result = membership_inference(
        model,
        X[:150],
        y[:150],
        X[150:],
        y[150:],
        X[:20],
        y[:20],
        feature="both",
        attack=LinearSVC(),
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        random_state=0,
    )
    assert 0.0 <= result.attack_auc <= 1.0
    assert result.target_scores.shape == (20,)
    assert result.feature == "both"


def test_balancing_and_reproducibility():
    model, X, y = _fitted("multiclass")
    args = (model, X[:100], y[:100], X[100:], y[100:], X[:10], y[:10])
    first = membership_inference(*args, random_state=42)
    second = membership_inference(*args, random_state=42)
    assert first.n_members == first.n_non_members == 50
    assert first.attack_auc == second.attack_auc
    np.testing.assert_array_equal(first.target_scores, second.target_scores)
    assert 0.0 <= first.target_member_rate <= 1.0
    assert "target_scores" not in repr(first)


@pytest.mark.parametrize("n_known", [2, 9])
def test_class_unknown_to_the_model_gets_maximal_loss(n_known):
    # A retrained model can lose a class whose samples were all erased; held-out samples
    # of that class can only be predicted wrong.
    X, y = _shuffled_digits()
    model = LogisticRegression(max_iter=2000).fit(X[y < n_known], y[y < n_known])
    loss = np.exp(_attack_features(model, X[y == 9], y[y == 9], "loss", "Y")[:, 0]) - _EPS
    np.testing.assert_allclose(loss, -np.log(_EPS))


def test_validation():
    model, X, Y = _fitted("multilabel")
    good = (X[:100], Y[:100], X[100:200], Y[100:200], X[200:250], Y[200:250])
    with pytest.raises(ValueError, match="feature must be one of"):
        membership_inference(model, *good, feature="confidence")
    with pytest.raises(ValueError, match="same number of features"):
        membership_inference(model, *good[:4], X[:5, :10], Y[:5])
    narrow = [a[:, :10] if a.shape[1] == X.shape[1] else a for a in good]
    with pytest.raises(ValueError, match="X_retain has 10 features, but model was fitted on 64"):
        membership_inference(model, *narrow)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        membership_inference(model, X[:100], Y[:99], *good[2:])
    X_nan = X[:100].copy()
    X_nan[3, 3] = np.nan
    with pytest.raises(ValueError, match="X_retain contains NaN"):
        membership_inference(model, X_nan, *good[1:])
    with pytest.raises(ValueError, match="same layout"):
        membership_inference(model, *good[:4], X[:5], Y[:5, :3])
    with pytest.raises(ValueError, match="expected"):
        membership_inference(model, *[a[:, :3] if a.shape[1] == 5 else a for a in good])
    with pytest.raises(ValueError, match="at least cv=5"):
        membership_inference(model, X[:4], Y[:4], *good[2:])
