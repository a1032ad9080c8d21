"""Test-only models, real-data erasure problems and an independent Eq. 5 reference."""

import copy
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from scipy.io import arff
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.extmath import safe_sparse_dot

YEAST_TRAIN = Path("/work/shared/data/mulan_yeast/yeast-train.arff")


class PerLabelLogistic(ClassifierMixin, BaseEstimator):
    """One binary logistic regression per label, exposed as stacked linear parameters."""

    def __init__(self, C=1.0, max_iter=2000):
        self.C = C
        self.max_iter = max_iter

    def fit(self, X, Y):
        Y = np.asarray(Y)
        models = [
            LogisticRegression(C=self.C, max_iter=self.max_iter).fit(X, Y[:, j])
            for j in range(Y.shape[1])
        ]
        self.coef_ = np.vstack([m.coef_ for m in models])
        self.intercept_ = np.concatenate([m.intercept_ for m in models])
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X):
        return safe_sparse_dot(X, self.coef_.T) + self.intercept_

    def predict_proba(self, X):
        return expit(self.decision_function(X))

    def predict(self, X):
        return (self.decision_function(X) > 0).astype(int)


def blend(original, retrained, t, noise=0.0, seed=0):
    """Copy of ``original`` with parameters ``(1 - t) * original + t * retrained`` (+ noise)."""
    model = copy.deepcopy(original)
    rng = np.random.default_rng(seed)
    for name in ("coef_", "intercept_"):
        a, b = getattr(original, name), getattr(retrained, name)
        mixed = (1.0 - t) * a + t * b
        setattr(model, name, mixed + noise * rng.standard_normal(np.shape(a)))
    return model


def _split(n_samples, n_removed, seed):
    rng = np.random.default_rng(seed)
    removed = np.zeros(n_samples, dtype=bool)
    removed[rng.choice(n_samples, n_removed, replace=False)] = True
    return removed


def _problem(X, Y, removed, make_model):
    original = make_model().fit(X, Y)
    retrained = make_model().fit(X[~removed], Y[~removed])
    return SimpleNamespace(
        X_removed=X[removed],
        Y_removed=Y[removed],
        X_retain=X[~removed],
        Y_retain=Y[~removed],
        original=original,
        retrained=retrained,
    )


@lru_cache
def binary_problem():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return _problem(X, y, _split(len(y), 150, 0), lambda: LogisticRegression(C=10.0))


@lru_cache
def multiclass_problem():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return _problem(X, y, _split(len(y), 40, 1), lambda: LogisticRegression(C=10.0))


def digits_labels(digit):
    """Multi-label targets from digit identity; several labels are on per sample."""
    return np.column_stack(
        [digit % 2 == 0, digit > 4, np.isin(digit, (1, 4, 7)), digit == 0, digit == 3]
    ).astype(int)


@lru_cache
def multilabel_problem():
    digits = load_digits()
    # Pixels are in [0, 16]; dividing keeps always-blank pixels at 0 instead of 0 / 0.
    X, Y = digits.data / 16.0, digits_labels(digits.target)
    return _problem(X, Y, _split(len(Y), 200, 2), lambda: PerLabelLogistic(C=1.0))


def load_yeast():
    data, _ = arff.loadarff(YEAST_TRAIN)
    table = np.array(data.tolist(), dtype=object)
    X = table[:, :-14].astype(float)
    Y = (table[:, -14:] == b"1").astype(int)
    return X, Y


@lru_cache
def yeast_problem():
    X, Y = load_yeast()
    X = StandardScaler().fit_transform(X)
    # Erase a share of the samples carrying a rare label, as in the paper's attribute
    # removal experiment, plus a few random others so that the label stays mixed in S.
    rng = np.random.default_rng(3)
    rare = np.flatnonzero(Y[:, 0] == 1)
    chosen = np.r_[rng.choice(rare, len(rare) // 3, replace=False), rng.choice(len(Y), 60)]
    removed = np.zeros(len(Y), dtype=bool)
    removed[chosen] = True
    return _problem(X, Y, removed, lambda: PerLabelLogistic(C=0.1))


def reference_similarity_ratio(original, erased, retrained, X, Y, score=None):
    """Plain transcription of the paper's Eq. 5; ``Y`` is an (n, L) indicator matrix."""
    if score is None:

        def score(model):
            return model.decision_function(X)

    def per_label_auc(model):
        scores = np.asarray(score(model), dtype=float).reshape(len(X), -1)
        aucs = []
        for label in range(Y.shape[1]):
            y_label = Y[:, label]
            if len(set(y_label.tolist())) < 2:
                aucs.append(0.0)  # absent or constant label: AUC 0 by convention
            else:
                aucs.append(roc_auc_score(y_label, scores[:, label]))
        return aucs

    a_original = per_label_auc(original)
    a_erased = per_label_auc(erased)
    a_retrained = per_label_auc(retrained)
    d_original = sum(abs(e - o) for e, o in zip(a_erased, a_original, strict=True))
    d_retrained = sum(abs(e - r) for e, r in zip(a_erased, a_retrained, strict=True))
    return d_original / (d_original + d_retrained)
