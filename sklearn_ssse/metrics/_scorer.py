"""Scorer that plugs the similarity ratio into scikit-learn model selection."""

from ._similarity import similarity_ratio

__all__ = ["make_similarity_scorer"]


class _SimilarityScorer:
    """Callable ``scorer(estimator, X, y)`` returning the similarity ratio.

    A module-level class rather than a closure so that the scorer pickles, which
    parallel ``GridSearchCV`` (``n_jobs != 1``) may require.
    """

    def __init__(self, original, retrained):
        self.original = original
        self.retrained = retrained

    def __call__(self, estimator, X, y):
        return similarity_ratio(self.original, estimator, self.retrained, X, y)

    def __repr__(self):
        return "make_similarity_scorer(original=..., retrained=...)"


def make_similarity_scorer(original, retrained):
    """Make a scorer rating an erased model by its similarity ratio.

    The returned callable has the scorer signature ``scorer(estimator, X, y)`` and
    returns ``similarity_ratio(original, estimator, retrained, X, y)``, so it can be
    passed as ``scoring=`` to :class:`~sklearn.model_selection.GridSearchCV` or
    :func:`~sklearn.model_selection.cross_val_score`, e.g. to choose the scale of an
    erasure update. Higher is better: 1 means the estimator's AUCs on the removed
    samples match the retrained model's.

    The scorer must be evaluated on the removed samples ``S`` only; with
    ``GridSearchCV`` pass ``X_removed, Y_removed`` to ``fit`` and
    ``cv=[(idx, idx)]`` with ``idx = np.arange(len(X_removed))`` when the estimator
    does not learn from the data it is fitted on.

    Parameters
    ----------
    original : estimator
        Model fitted on the full training set.
    retrained : estimator
        Model fitted from scratch without the removed samples.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``.

    See Also
    --------
    similarity_ratio : The underlying metric.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = (X - X.mean(0)) / X.std(0)
    >>> original = LogisticRegression().fit(X, y)
    >>> retrained = LogisticRegression().fit(X[100:], y[100:])
    >>> scorer = make_similarity_scorer(original, retrained)
    >>> scorer(retrained, X[:100], y[:100])
    1.0
    """
    return _SimilarityScorer(original, retrained)
