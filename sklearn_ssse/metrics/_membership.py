"""Membership inference attacks against fitted classifiers.

A loss-threshold style attack (Shokri et al., 2017; Yeom et al., 2018) as commonly used
to audit machine unlearning ("MIA efficacy"): an attack classifier learns to separate
samples the model was trained on (members) from samples it never saw (non-members)
using per-sample statistics of the model's predictions, and is then applied to the
removed samples. After a good erasure, the removed samples should look like
non-members, as they do for the model retrained from scratch.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, check_cv
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

from ._similarity import (
    _check_n_features,
    _check_X_Y,
    _model_classes,
    _positive_columns,
    _resolve_targets,
)

__all__ = [
    "MembershipInferenceResult",
    "membership_inference",
    "membership_inference_report",
]

_FEATURES = ("loss", "entropy", "both")
# Keeps log(0) out of the loss: a model that is certain and wrong gets a large but
# finite loss (-log(2.2e-16) ~ 36), as in sklearn.metrics.log_loss.
_EPS = np.finfo(np.float64).eps


@dataclass
class MembershipInferenceResult:
    """Outcome of a membership inference attack on one model.

    Attributes
    ----------
    attack_auc : float
        Mean cross-validated ROC AUC of the attack separating retained (members) from
        held-out (non-members) samples. 0.5 means the model leaks no membership signal
        through the chosen features.
    attack_auc_std : float
        Standard deviation of the AUC across the cross-validation folds.
    target_member_rate : float
        Fraction of target samples the attack (refit on all balanced data) calls
        members.
    target_mean_score : float
        Mean attack membership probability (or decision score, for attacks without
        ``predict_proba``) on the target samples.
    retain_member_rate : float
        Fraction of the (balanced) retained samples called members, out of fold.
    heldout_member_rate : float
        Fraction of the (balanced) held-out samples called members, out of fold.
    n_members : int
        Number of retained samples used to train the attack (after balancing).
    n_non_members : int
        Number of held-out samples used to train the attack (after balancing).
    feature : str
        The attack features: ``"loss"``, ``"entropy"`` or ``"both"``.
    target_scores : ndarray of shape (n_target,)
        Attack membership score of each target sample.
    """

    attack_auc: float
    attack_auc_std: float
    target_member_rate: float
    target_mean_score: float
    retain_member_rate: float
    heldout_member_rate: float
    n_members: int
    n_non_members: int
    feature: str
    target_scores: np.ndarray = field(repr=False)


def _bernoulli_probabilities(model, X, problem):
    """Positive-class probability per label, shape (n_samples, n_labels)."""
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        if isinstance(proba, list):
            return _positive_columns(model, proba)
        proba = np.asarray(proba, dtype=float)
        if problem == "binary":
            # Column of the second class, which is the positive one of _resolve_targets.
            return proba[:, -1:]
        return proba
    if hasattr(model, "decision_function"):
        # Margin-based models (e.g. LinearSVC) have no probabilities; the logistic link
        # of the margin is the probability a logistic model with those weights gives.
        scores = np.asarray(model.decision_function(X), dtype=float)
        return expit(scores.reshape(X.shape[0], -1))
    raise TypeError("model must implement predict_proba or decision_function.")


def _categorical_probabilities(model, X):
    """Class probabilities, shape (n_samples, n_classes), columns in model.classes_ order."""
    if hasattr(model, "predict_proba"):
        proba = np.clip(np.asarray(model.predict_proba(X), dtype=float), 0.0, None)
        # One-vs-rest probabilities need not sum to one; renormalize so that -log p_true
        # is a proper cross-entropy.
        total = proba.sum(axis=1, keepdims=True)
        return np.divide(
            proba, total, out=np.full_like(proba, 1.0 / proba.shape[1]), where=total > 0
        )
    if hasattr(model, "decision_function"):
        return softmax(np.asarray(model.decision_function(X), dtype=float), axis=1)
    raise TypeError("model must implement predict_proba or decision_function.")


def _attack_features(model, X, Y, feature, y_name):
    """Per-sample loss and/or prediction entropy of ``model``; shape (n_samples, k)."""
    problem, labels, indicator = _resolve_targets(model, Y, y_name=y_name, strict=False)
    if problem == "multiclass":
        proba = np.clip(_categorical_probabilities(model, X), _EPS, 1.0 - _EPS)
        if proba.shape != indicator.shape:
            raise ValueError(
                f"model returned probabilities of shape {proba.shape}, expected "
                f"{indicator.shape} for its {labels.size} classes."
            )
        # Labels the model never saw have no column: p_true falls to the clip floor.
        p_true = np.where(indicator.any(axis=1), (proba * indicator).sum(axis=1), _EPS)
        loss = -np.log(p_true)
        entropy = -(proba * np.log(proba)).sum(axis=1)
    else:
        proba = np.clip(_bernoulli_probabilities(model, X, problem), _EPS, 1.0 - _EPS)
        if proba.shape != indicator.shape:
            raise ValueError(
                f"model returned probabilities of shape {proba.shape}, expected {indicator.shape}."
            )
        log_p, log_q = np.log(proba), np.log1p(-proba)
        # Binary cross-entropy summed over labels (a single label in the binary case).
        loss = -np.where(indicator, log_p, log_q).sum(axis=1)
        classes = _model_classes(model)
        if problem == "binary" and classes is not None:
            # The indicator reads a label the model never saw as the negative class; like
            # in the multiclass case its true-class probability is 0 instead.
            loss[~np.isin(Y, classes)] = -np.log(_EPS)
        entropy = -(proba * log_p + (1.0 - proba) * log_q).sum(axis=1)
    columns = {"loss": [loss], "entropy": [entropy], "both": [loss, entropy]}[feature]
    # Both statistics are positive and, for members of an overfit model, spread over many
    # orders of magnitude near zero; on the raw scale a linear attack cannot tell 1e-9
    # from 1e-4 once standardized next to losses of order 10. The log is monotone, so a
    # threshold on it is still a loss-threshold attack.
    return np.log(np.column_stack(columns) + _EPS)


def _attack_scores(attack, F):
    if hasattr(attack, "predict_proba"):
        return attack.predict_proba(F)[:, 1]
    return attack.decision_function(F)


def membership_inference(
    model,
    X_retain,
    Y_retain,
    X_heldout,
    Y_heldout,
    X_target,
    Y_target,
    *,
    feature="loss",
    attack=None,
    cv=5,
    random_state=None,
):
    """Run a membership inference attack on a fitted model.

    Per-sample features of ``model`` are computed on retained samples (members, the
    model was trained on them) and held-out samples (non-members). The larger group is
    subsampled so that both have the same size, an attack classifier is evaluated by
    cross-validation on them and then refit on all of them to classify the target
    samples (typically the removed samples ``S``).

    Parameters
    ----------
    model : estimator
        Fitted classifier with ``predict_proba`` or, failing that,
        ``decision_function`` (turned into probabilities by a sigmoid for binary and
        multi-label models and a softmax for multiclass ones).
    X_retain : {array-like, sparse matrix} of shape (n_retain, n_features)
        Samples the model was trained on.
    Y_retain : array-like of shape (n_retain,) or (n_retain, n_labels)
        Their targets: class labels or a multi-label indicator matrix.
    X_heldout : {array-like, sparse matrix} of shape (n_heldout, n_features)
        Samples the model never saw.
    Y_heldout : array-like of shape (n_heldout,) or (n_heldout, n_labels)
        Their targets.
    X_target : {array-like, sparse matrix} of shape (n_target, n_features)
        Samples whose membership is queried.
    Y_target : array-like of shape (n_target,) or (n_target, n_labels)
        Their targets.
    feature : {"loss", "entropy", "both"}, default="loss"
        Attack features: the per-sample cross-entropy loss (summed over labels for
        multi-label targets), the entropy of the predicted distribution, or both.
    attack : classifier, default=None
        Unfitted binary classifier trained on the features (label 1 = member). It is
        cloned. Defaults to a logistic regression on standardized features.
    cv : int or cross-validation splitter, default=5
        Cross-validation used to estimate the attack AUC. An int gives a shuffled
        stratified K-fold seeded from ``random_state``.
    random_state : int, RandomState instance or None, default=None
        Controls the balancing subsample and the shuffling of the folds.

    Returns
    -------
    result : MembershipInferenceResult
        Attack AUC and membership rates; see :class:`MembershipInferenceResult`.

    Notes
    -----
    Probabilities are clipped to ``[eps, 1 - eps]`` (``eps`` the float64 machine
    epsilon, as in :func:`sklearn.metrics.log_loss`), so a target label the model never
    saw gets the largest loss, ``-log(eps)``. The attack sees the logarithm of the
    features: a monotone change that keeps it a loss-threshold attack while letting a
    linear attack resolve the tiny losses of the members of an overfit model.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = (X - X.mean(0)) / X.std(0)
    >>> model = LogisticRegression(C=1e4, max_iter=10_000).fit(X[:60], y[:60])
    >>> result = membership_inference(
    ...     model, X[:60], y[:60], X[60:], y[60:], X[:60], y[:60], random_state=0
    ... )
    >>> bool(result.attack_auc > 0.5)
    True
    """
    if feature not in _FEATURES:
        raise ValueError(f"feature must be one of {_FEATURES}, got {feature!r}.")
    sets = {}
    for name, X, Y in (
        ("retain", X_retain, Y_retain),
        ("heldout", X_heldout, Y_heldout),
        ("target", X_target, Y_target),
    ):
        sets[name] = _check_X_Y(X, Y, x_name=f"X_{name}", y_name=f"Y_{name}")
    n_features = {X.shape[1] for X, _ in sets.values()}
    if len(n_features) > 1:
        raise ValueError(
            "X_retain, X_heldout and X_target must have the same number of features, got "
            + ", ".join(str(X.shape[1]) for X, _ in sets.values())
            + "."
        )
    target_ndims = {Y.ndim for _, Y in sets.values()}
    if len(target_ndims) > 1 or len({Y.shape[1:] for _, Y in sets.values()}) > 1:
        raise ValueError("Y_retain, Y_heldout and Y_target must have the same layout.")

    for name, (X, _) in sets.items():
        _check_n_features(model, X, "model", f"X_{name}")
    features = {
        name: _attack_features(model, X, Y, feature, f"Y_{name}") for name, (X, Y) in sets.items()
    }

    rng = check_random_state(random_state)
    n_balanced = min(features["retain"].shape[0], features["heldout"].shape[0])
    members = features["retain"][rng.choice(features["retain"].shape[0], n_balanced, False)]
    non_members = features["heldout"][rng.choice(features["heldout"].shape[0], n_balanced, False)]
    F = np.vstack([members, non_members])
    is_member = np.r_[np.ones(n_balanced, dtype=int), np.zeros(n_balanced, dtype=int)]

    if isinstance(cv, int | np.integer):
        if n_balanced < cv:
            raise ValueError(
                f"Need at least cv={cv} retained and held-out samples, got {n_balanced} "
                "after balancing."
            )
        cv = StratifiedKFold(n_splits=cv, shuffle=True, random_state=rng.randint(2**31 - 1))
    else:
        cv = check_cv(cv, is_member, classifier=True)
    attack = make_pipeline(StandardScaler(), LogisticRegression()) if attack is None else attack

    fold_auc = []
    called_member = np.zeros(F.shape[0], dtype=bool)
    for train, test in cv.split(F, is_member):
        fold_attack = clone(attack).fit(F[train], is_member[train])
        fold_auc.append(roc_auc_score(is_member[test], _attack_scores(fold_attack, F[test])))
        called_member[test] = fold_attack.predict(F[test]) == 1

    final_attack = clone(attack).fit(F, is_member)
    target_scores = np.asarray(_attack_scores(final_attack, features["target"]), dtype=float)
    target_called = final_attack.predict(features["target"]) == 1
    return MembershipInferenceResult(
        attack_auc=float(np.mean(fold_auc)),
        attack_auc_std=float(np.std(fold_auc)),
        target_member_rate=float(np.mean(target_called)),
        target_mean_score=float(np.mean(target_scores)),
        retain_member_rate=float(np.mean(called_member[is_member == 1])),
        heldout_member_rate=float(np.mean(called_member[is_member == 0])),
        n_members=int(n_balanced),
        n_non_members=int(n_balanced),
        feature=feature,
        target_scores=target_scores,
    )


def membership_inference_report(
    original,
    erased,
    retrained,
    X_retain,
    Y_retain,
    X_heldout,
    Y_heldout,
    X_removed,
    Y_removed,
    *,
    feature="loss",
    attack=None,
    cv=5,
    random_state=None,
):
    """Membership inference on the original, erased and retrained models.

    A separate attack is trained against each model, with retained samples as members
    and held-out samples as non-members, then applied to the removed samples. A good
    erasure makes the erased model's result on the removed samples resemble the
    retrained model's (low ``target_member_rate``) rather than the original model's.

    Parameters
    ----------
    original : estimator
        Model fitted on retained and removed samples.
    erased : estimator
        Model after erasing the removed samples.
    retrained : estimator
        Model fitted from scratch on the retained samples only.
    X_retain, Y_retain : array-like
        Retained training samples and their targets (members for all three models).
    X_heldout, Y_heldout : array-like
        Samples none of the models was trained on and their targets.
    X_removed, Y_removed : array-like
        Removed samples and their targets; the attack target.
    feature : {"loss", "entropy", "both"}, default="loss"
        Attack features, see :func:`membership_inference`.
    attack : classifier, default=None
        Attack classifier, see :func:`membership_inference`.
    cv : int or cross-validation splitter, default=5
        Cross-validation of the attack, see :func:`membership_inference`.
    random_state : int or None, default=None
        Seed shared by the three attacks, so that they use the same balanced subsample
        and folds. A RandomState instance would advance between attacks, so it is
        turned into one seed first.

    Returns
    -------
    report : dict of str to MembershipInferenceResult
        Results keyed by ``"original"``, ``"erased"`` and ``"retrained"``.
    """
    seed = check_random_state(random_state).randint(2**31 - 1)
    return {
        name: membership_inference(
            model,
            X_retain,
            Y_retain,
            X_heldout,
            Y_heldout,
            X_removed,
            Y_removed,
            feature=feature,
            attack=attack,
            cv=cv,
            random_state=seed,
        )
        for name, model in (("original", original), ("erased", erased), ("retrained", retrained))
    }
