"""Similarity ratio (SSSE paper, Section 3, Eq. 5) and normalized parameter distance.

The similarity ratio compares three fitted models on the removed subset S: the
original model trained on the full data (theta*), the erased model produced by an
unlearning update (theta_hat) and the model retrained from scratch without S
(theta*_{-S}).
"""

import numpy as np
from scipy import sparse
from scipy.stats import rankdata
from sklearn.utils.validation import check_array, column_or_1d

__all__ = ["parameter_distance", "similarity_ratio"]


def _check_X_Y(X, Y, *, x_name="X", y_name="Y"):
    """Validate a feature matrix and its targets (1-D labels or 2-D indicator)."""
    X = check_array(X, accept_sparse=("csr", "csc"), input_name=x_name)
    if sparse.issparse(Y):
        Y = Y.toarray()
    Y = np.asarray(Y)
    if Y.ndim not in (1, 2):
        raise ValueError(
            f"{y_name} must be 1-D (class labels) or 2-D (label indicator matrix), "
            f"got an array of shape {Y.shape}."
        )
    # A single indicator column carries the same information as binary 1-D labels.
    if Y.ndim == 2 and Y.shape[1] == 1:
        Y = Y.ravel()
    if Y.ndim == 1:
        Y = column_or_1d(Y)
        Y = check_array(Y, ensure_2d=False, dtype=None, input_name=y_name)
    else:
        Y = check_array(Y, dtype=None, input_name=y_name)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{x_name} and {y_name} have inconsistent numbers of samples: "
            f"{X.shape[0]} != {Y.shape[0]}."
        )
    return X, Y


def _model_classes(model):
    classes = getattr(model, "classes_", None)
    if classes is None:
        return None
    classes = np.asarray(classes)
    # MultiOutputClassifier exposes one class array per output; it has no flat class list.
    return classes if classes.ndim == 1 else None


def _label_kind(values):
    """``"numeric"``, ``"string"`` or ``"mixed"``: the type family of a label array."""
    values = np.asarray(values)
    if values.dtype.kind in "biuf":
        return "numeric"
    if values.dtype.kind in "US":
        return "string"
    kinds = {
        "string"
        if isinstance(v, str)
        else "numeric"
        if isinstance(v, (int, float, np.number))
        else "other"
        for v in values.ravel().tolist()
    }
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _resolve_targets(model, Y, *, y_name="Y", strict=True):
    """Turn targets into a boolean (n_samples, n_labels) indicator.

    Returns ``(problem, labels, indicator)`` where ``problem`` is ``"binary"``,
    ``"multiclass"`` or ``"multilabel"`` and ``labels`` names the indicator columns.
    ``model`` (the reference model) decides the label set of 1-D targets.
    """
    if Y.ndim == 2:
        if not np.isin(Y, (0, 1)).all():
            raise ValueError(
                f"2-D {y_name} is read as a multi-label indicator matrix and must only "
                "contain 0 and 1."
            )
        return "multilabel", np.arange(Y.shape[1]), Y.astype(bool)

    classes = _model_classes(model)
    if classes is not None and _label_kind(Y) != _label_kind(classes):
        # np.isin would call every label unknown and the metrics would score the samples
        # as random guesses: "no leakage" for input that is simply of the wrong type.
        raise ValueError(
            f"{y_name} holds {_label_kind(Y)} labels but the reference model's classes are "
            f"{_label_kind(classes)} ({classes.tolist()[:10]}); pass the labels the model "
            "was trained with."
        )
    if classes is not None and classes.size > 2:
        unknown = ~np.isin(Y, classes)
        if strict and unknown.any():
            raise ValueError(
                f"{y_name} contains labels unknown to the reference model: "
                f"{np.unique(Y[unknown]).tolist()}."
            )
        return "multiclass", classes, Y[:, None] == classes[None, :]

    positive = classes[-1] if classes is not None else 1
    if strict and classes is not None and not np.isin(Y, classes).all():
        raise ValueError(
            f"{y_name} contains labels unknown to the reference model "
            f"(classes_={classes.tolist()})."
        )
    return "binary", np.array([positive]), (Y == positive)[:, None]


def _check_n_features(model, X, name, x_name):
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and X.shape[1] != expected:
        raise ValueError(
            f"{x_name} has {X.shape[1]} features, but {name} was fitted on {expected}."
        )


def _raw_output(model, X, name):
    if hasattr(model, "decision_function"):
        return model.decision_function(X), "decision"
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X), "proba"
    raise TypeError(f"{name} must implement decision_function or predict_proba.")


def _positive_columns(model, probas):
    """Positive-class probabilities from a list of per-output ``predict_proba`` arrays."""
    classes = getattr(model, "classes_", None)
    columns = []
    for j, proba in enumerate(probas):
        proba = np.asarray(proba, dtype=float)
        output_classes = np.asarray(classes[j]) if classes is not None else np.arange(2)
        hit = np.flatnonzero(output_classes == 1)
        # An output fitted on a single (negative) class never predicts the positive one.
        columns.append(proba[:, hit[0]] if hit.size else np.zeros(proba.shape[0]))
    return np.column_stack(columns)


def _ranking_scores(model, X, problem, labels, name):
    """Scores of ``model`` on ``X``, one column per entry of ``labels``."""
    raw, kind = _raw_output(model, X, name)
    n_samples, n_labels = X.shape[0], len(labels)
    if problem == "multilabel":
        if isinstance(raw, list):
            raw = _positive_columns(model, raw)
        scores = np.asarray(raw, dtype=float)
        if scores.ndim == 1:
            scores = scores[:, None]
        if scores.shape != (n_samples, n_labels):
            raise ValueError(
                f"{name} returned scores of shape {scores.shape}, expected "
                f"{(n_samples, n_labels)} for {n_labels} labels."
            )
    else:
        raw = np.asarray(raw, dtype=float)
        classes = _model_classes(model)
        if raw.ndim == 1 or raw.shape[1] == 1:
            # Binary decision_function: the score ranks the second class; negating it
            # ranks the first one.
            raw = raw.reshape(-1)
            per_class = np.column_stack([-raw, raw])
        else:
            per_class = raw
        if classes is None:
            if per_class.shape[1] != 2 or problem != "binary":
                raise ValueError(
                    f"{name} has no classes_ attribute, so its {per_class.shape[1]} "
                    "score columns cannot be matched to labels."
                )
            classes = np.array([0, labels[0]])
        if per_class.shape[1] != classes.size:
            raise ValueError(
                f"{name} returned {per_class.shape[1]} score columns for {classes.size} classes."
            )
        scores = np.zeros((n_samples, n_labels))
        for j, label in enumerate(labels):
            hit = np.flatnonzero(classes == label)
            # A model that never saw a class (e.g. after removing all of its samples)
            # cannot rank it: a constant score gives the uninformative AUC of 0.5.
            if hit.size:
                scores[:, j] = per_class[:, hit[0]]
    if not np.isfinite(scores).all():
        raise ValueError(f"{name} returned non-finite scores (NaN or inf) on X_removed.")
    return scores


def _per_label_auc(indicator, scores, valid):
    """ROC AUC of every valid label column, 0 for the others (the paper's convention).

    ``scores`` may carry extra trailing axes (one score matrix per ``ε`` of a path, say):
    shape ``(n_samples, n_labels, ...)``. The AUC is the Mann-Whitney statistic on
    mid-ranks, which is exactly the trapezoidal area that
    :func:`sklearn.metrics.roc_auc_score` computes (ties count one half), for all columns
    in one vectorized ranking instead of one validated call per column.
    """
    indicator = np.asarray(indicator, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    auc = np.zeros(scores.shape[1:])
    columns = np.flatnonzero(valid)
    if columns.size == 0:
        return auc
    ranks = rankdata(scores[:, columns], axis=0, method="average")
    positive = indicator[:, columns].reshape(
        indicator.shape[0], columns.size, *[1] * (scores.ndim - 2)
    )
    n_positive = positive.sum(axis=0)
    n_negative = indicator.shape[0] - n_positive
    rank_sum = np.where(positive, ranks, 0.0).sum(axis=0)
    auc[columns] = (rank_sum - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative)
    return auc


def similarity_ratio(original, erased, retrained, X_removed, Y_removed, *, return_details=False):
    r"""Similarity ratio :math:`\gamma_S` of an erased model (SSSE paper, Eq. 5).

    .. math::

        \gamma_S(\hat\theta; \theta^\star, \theta^\star_{-S}) =
        \frac{D_S(\hat\theta, \theta^\star)}
             {D_S(\hat\theta, \theta^\star) + D_S(\hat\theta, \theta^\star_{-S})},
        \qquad
        D_S(\theta_1, \theta_2) = \sum_l |\alpha^S_l(\theta_1) - \alpha^S_l(\theta_2)|,

    where :math:`\alpha^S_l(\theta)` is the ROC AUC of label ``l`` computed on the
    removed samples ``S``. A value above 0.5 means the erased model is closer to the
    retrained model than to the original one; 1 means its AUCs on ``S`` match the
    retrained model exactly and 0 means they match the original model exactly.

    Parameters
    ----------
    original : estimator
        Model fitted on the full training set (:math:`\theta^\star`).
    erased : estimator
        Model after erasing ``S`` (:math:`\hat\theta`).
    retrained : estimator
        Model fitted from scratch without ``S`` (:math:`\theta^\star_{-S}`).
    X_removed : {array-like, sparse matrix} of shape (n_samples, n_features)
        Features of the removed samples ``S``.
    Y_removed : array-like of shape (n_samples,) or (n_samples, n_labels)
        Targets of ``S``. 1-D targets are binary when ``original.classes_`` has at
        most two classes (the positive label is ``original.classes_[-1]``, or 1 if the
        model has no ``classes_``) and otherwise multiclass, scored one-vs-rest over
        ``original.classes_``. 2-D targets form a multi-label indicator matrix.
    return_details : bool, default=False
        If True, also return a dictionary describing the computation.

    Returns
    -------
    gamma : float
        Similarity ratio in ``[0, 1]``.
    details : dict
        Only returned if ``return_details`` is True, with keys

        - ``"labels"``: label of each AUC entry;
        - ``"auc_original"``, ``"auc_erased"``, ``"auc_retrained"``: per-label AUCs;
        - ``"label_is_valid"``: whether the label has both classes in ``S``;
        - ``"distance_to_original"``: :math:`D_S(\hat\theta, \theta^\star)`;
        - ``"distance_to_retrained"``: :math:`D_S(\hat\theta, \theta^\star_{-S})`;
        - ``"distance_original_retrained"``: :math:`D_S(\theta^\star, \theta^\star_{-S})`,
          how distinguishable the two references are on ``S``;
        - ``"degenerate"``: True when the ratio is 0/0 and 0.5 was returned.

    Notes
    -----
    As in the paper, a label that is absent from ``S`` has AUC 0 for every model; so
    does a label that is constant on ``S`` (all samples positive), since its AUC is
    undefined too. Such labels contribute 0 to :math:`D_S`.

    Scores come from ``decision_function`` when available, otherwise from
    ``predict_proba``. For multiclass targets each model's columns are matched to
    labels through its own ``classes_``; a class the model does not know gets a
    constant score, hence AUC 0.5.

    If both distances are 0 (the erased model's AUCs equal those of both references,
    or no label has both classes in ``S``), the ratio is 0/0. The erased model is then
    equally close to both references, so 0.5 -- no preference -- is returned and
    ``details["degenerate"]`` is True.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = (X - X.mean(0)) / X.std(0)
    >>> original = LogisticRegression().fit(X, y)
    >>> retrained = LogisticRegression().fit(X[100:], y[100:])
    >>> similarity_ratio(original, retrained, retrained, X[:100], y[:100])
    1.0
    """
    X, Y = _check_X_Y(X_removed, Y_removed, x_name="X_removed", y_name="Y_removed")
    problem, labels, indicator = _resolve_targets(original, Y, y_name="Y_removed")
    n_positive = indicator.sum(axis=0)
    valid = (n_positive > 0) & (n_positive < indicator.shape[0])

    auc = {}
    for key, model in (("original", original), ("erased", erased), ("retrained", retrained)):
        _check_n_features(model, X, key, "X_removed")
        scores = _ranking_scores(model, X, problem, labels, key)
        auc[key] = _per_label_auc(indicator, scores, valid)

    to_original = float(np.abs(auc["erased"] - auc["original"]).sum())
    to_retrained = float(np.abs(auc["erased"] - auc["retrained"]).sum())
    denominator = to_original + to_retrained
    degenerate = denominator == 0.0
    gamma = 0.5 if degenerate else to_original / denominator
    if not return_details:
        return gamma
    details = {
        "labels": labels,
        "auc_original": auc["original"],
        "auc_erased": auc["erased"],
        "auc_retrained": auc["retrained"],
        "label_is_valid": valid,
        "distance_to_original": to_original,
        "distance_to_retrained": to_retrained,
        "distance_original_retrained": float(np.abs(auc["original"] - auc["retrained"]).sum()),
        "degenerate": degenerate,
    }
    return gamma, details


def _parameters(model, name):
    """``(coef, intercept)`` of a fitted linear model, or ``(array, empty)`` for arrays."""
    if hasattr(model, "coef_"):
        coef, intercept = model.coef_, getattr(model, "intercept_", np.zeros(0))
    elif hasattr(model, "estimators_") and all(hasattr(e, "coef_") for e in model.estimators_):
        # One binary linear model per label (e.g. MultiOutputClassifier).
        coef = np.vstack([_dense(e.coef_) for e in model.estimators_])
        intercept = np.concatenate(
            [np.ravel(getattr(e, "intercept_", np.zeros(0))) for e in model.estimators_]
        )
    else:
        coef, intercept = model, np.zeros(0)
    try:
        coef = np.asarray(_dense(coef), dtype=float)
        intercept = np.atleast_1d(np.asarray(_dense(intercept), dtype=float))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a fitted linear model (with coef_) or an array of parameters."
        ) from exc
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        raise ValueError(f"{name} has non-finite parameters (NaN or inf).")
    return coef, intercept


def _dense(a):
    return a.toarray() if sparse.issparse(a) else a


def parameter_distance(erased, original, retrained):
    r"""Normalized parameter-space distance of an erased model to the retrained one.

    .. math::

        \frac{\|\hat\theta - \theta^\star_{-S}\|}{\|\theta^\star - \theta^\star_{-S}\|}

    where each :math:`\theta` concatenates ``coef_`` and ``intercept_`` and the norm is
    the Frobenius (Euclidean) norm. 0 means the erased model is exactly the retrained
    one; 1 means it is no closer to it than the original model (doing nothing).

    Parameters
    ----------
    erased : estimator or array-like
        Erased model (:math:`\hat\theta`): a fitted linear model exposing ``coef_``
        (and optionally ``intercept_``), a model with per-label ``estimators_`` that
        do, or an array of parameters.
    original : estimator or array-like
        Model fitted on the full training set (:math:`\theta^\star`).
    retrained : estimator or array-like
        Model fitted from scratch without the removed samples (:math:`\theta^\star_{-S}`).

    Returns
    -------
    distance : float
        Non-negative normalized distance. If the original and retrained parameters are
        identical, the ratio is undefined: 0.0 is returned when the erased parameters
        equal them too, ``inf`` otherwise.

    Raises
    ------
    ValueError
        If the parameter shapes differ or contain NaN or inf.

    Examples
    --------
    >>> import numpy as np
    >>> parameter_distance(np.array([1.0, 1.0]), np.array([2.0, 2.0]), np.zeros(2))
    0.5
    """
    params = {
        name: _parameters(model, name)
        for name, model in (("erased", erased), ("original", original), ("retrained", retrained))
    }
    reference = params["retrained"]
    for name in ("erased", "original"):
        for part, mine, theirs in zip(("coef", "intercept"), params[name], reference, strict=True):
            if mine.shape != theirs.shape:
                raise ValueError(
                    f"Parameter shapes differ: {name} {part} has shape {mine.shape}, "
                    f"retrained {part} has shape {theirs.shape}."
                )
    flat = {
        name: np.concatenate([coef.ravel(), intercept.ravel()])
        for name, (coef, intercept) in params.items()
    }
    numerator = float(np.linalg.norm(flat["erased"] - flat["retrained"]))
    denominator = float(np.linalg.norm(flat["original"] - flat["retrained"]))
    if denominator == 0.0:
        return 0.0 if numerator == 0.0 else float("inf")
    return numerator / denominator
