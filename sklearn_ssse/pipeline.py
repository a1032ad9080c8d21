"""Pipelines that can forget: scikit-learn's ``Pipeline`` with ``forget``.

:class:`Pipeline` extends :class:`sklearn.pipeline.Pipeline` (as imbalanced-learn does)
with :meth:`~Pipeline.forget`, :meth:`~Pipeline.forget_step` and
:meth:`~Pipeline.was_erased`, which send the removed samples through the earlier steps and
call the last step's method. They apply the rules of :func:`sklearn_ssse.forget` (the same
implementation): every earlier step must be frozen (:class:`sklearn.frozen.FrozenEstimator`),
stateless (``FunctionTransformer``, ``Normalizer``, ...), ``"passthrough"``, or a nested
``Pipeline``, ``ColumnTransformer`` or ``FeatureUnion`` made only of such steps.
"""

from __future__ import annotations

from sklearn import pipeline as _sk_pipeline
from sklearn.utils.metaestimators import available_if

from ._pipeline import PIPELINE_MARK, PipelineBypassWarning, describe_earlier_steps, pipeline_call

__all__ = ["Pipeline", "PipelineBypassWarning", "make_pipeline"]


def _final_estimator_has(attribute):
    def check(self):
        final = self._final_estimator
        if not hasattr(final, attribute):
            raise AttributeError(
                f"The last step {self.steps[-1][0]!r} ({type(final).__name__}) has no "
                f"{attribute} method; it must be an unlearnable estimator."
            )
        return True

    return check


class Pipeline(_sk_pipeline.Pipeline):
    """A scikit-learn :class:`~sklearn.pipeline.Pipeline` whose last step can forget.

    Everything of :class:`sklearn.pipeline.Pipeline` (parameters, ``fit``, ``predict``,
    ``clone``, ``get_params``, grid search, pickling) works unchanged. When the last step
    is an unlearnable estimator, the pipeline gains :meth:`forget`, :meth:`forget_step`
    and :meth:`was_erased`, which take the samples in their raw form (as given to
    ``fit``) and apply the rules of :func:`sklearn_ssse.forget`.

    After ``fit`` the last step remembers that it was fitted inside a pipeline: calling
    *its own* ``forget`` (``pipe[-1].forget(...)``) then emits a
    :class:`PipelineBypassWarning`, since that call skips the check of the earlier steps
    and needs samples already transformed by them. Refitting the estimator on its own
    clears the mark.

    Parameters
    ----------
    steps : list of tuples
        ``(name, transform)`` pairs, the last one an estimator; see
        :class:`sklearn.pipeline.Pipeline`.
    transform_input : list of str, default=None
        See :class:`sklearn.pipeline.Pipeline` (scikit-learn >= 1.6, metadata routing).
    memory : str or object with the joblib.Memory interface, default=None
        Caching of the fitted transformers; see :class:`sklearn.pipeline.Pipeline`.
    verbose : bool, default=False
        Print the time elapsed while fitting each step.

    Attributes
    ----------
    named_steps : :class:`~sklearn.utils.Bunch`
        The steps by name.

    See Also
    --------
    make_pipeline : Build a :class:`Pipeline` from estimators, naming the steps.
    sklearn_ssse.forget : The same erasure as a function, for any scikit-learn
        ``Pipeline``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import Normalizer
    >>> from sklearn_ssse import UnlearnableLogisticRegression
    >>> from sklearn_ssse.pipeline import make_pipeline
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(60, 3)), np.arange(60) % 2
    >>> pipe = make_pipeline(Normalizer(), UnlearnableLogisticRegression()).fit(X, y)
    >>> pipe.forget(X[:5], y[:5])[-1].n_samples_
    55
    >>> pipe.was_erased(X[:6], y[:6]).tolist()
    [True, True, True, True, True, False]
    """

    def fit(self, X, y=None, **params):
        """Fit the pipeline, then mark the last step as fitted inside it.

        Parameters
        ----------
        X : iterable
            Training data, in the form the first step takes.
        y : iterable, default=None
            Training targets.
        **params : dict
            Fit parameters routed to the steps; see
            :meth:`sklearn.pipeline.Pipeline.fit`.

        Returns
        -------
        self : Pipeline
        """
        super().fit(X, y, **params)
        self._mark_final_estimator()
        return self

    def _mark_final_estimator(self):
        final = self._final_estimator
        if final == "passthrough" or not callable(getattr(final, "forget", None)):
            return
        description = describe_earlier_steps(self)
        if description is not None:
            final.__dict__[PIPELINE_MARK] = description

    @available_if(_final_estimator_has("forget"))
    def forget(self, X_removed, y_removed, eps=None):
        """Erase training samples: transform them by the earlier steps, forget in the last.

        Parameters
        ----------
        X_removed : array-like of shape (k, ...)
            The samples to erase, in the form given to ``fit`` (raw input).
        y_removed : array-like of shape (k,) or (k, n_outputs)
            Their targets.
        eps : float, default=None
            Scale ``ε`` of the step; ``None`` uses the last step's ``eps``.

        Returns
        -------
        self : Pipeline
            The same pipeline; its last step changed in place.

        Raises
        ------
        ValueError
            If a step before the last holds state learned from the training data (a
            fitted ``StandardScaler``, say): the erasure could not be exact. Nothing is
            changed.
        """
        return pipeline_call(self, "forget", X_removed, y_removed, eps=eps)

    @available_if(_final_estimator_has("forget_step"))
    def forget_step(self, X_removed, y_removed):
        """The last step's unit (``ε = 1``) erasure step for these raw samples, not applied.

        Parameters
        ----------
        X_removed : array-like of shape (k, ...)
            The samples, in the form given to ``fit``.
        y_removed : array-like of shape (k,) or (k, n_outputs)
            Their targets.

        Returns
        -------
        ForgetStep
        """
        return pipeline_call(self, "forget_step", X_removed, y_removed)

    @available_if(_final_estimator_has("was_erased"))
    def was_erased(self, X, y):
        """Whether each raw sample was erased by a :meth:`forget` of the last step's fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples in the form given to ``fit``.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their targets.

        Returns
        -------
        ndarray of bool of shape (n_samples,)
        """
        return pipeline_call(self, "was_erased", X, y)


def make_pipeline(*steps, memory=None, verbose=False, **kwargs):
    """Build a :class:`Pipeline` from estimators, naming each step after its class.

    Parameters
    ----------
    *steps : list of estimators
        The steps; the last one an unlearnable estimator for :meth:`Pipeline.forget`.
    memory : str or object with the joblib.Memory interface, default=None
        Caching of the fitted transformers.
    verbose : bool, default=False
        Print the time elapsed while fitting each step.
    **kwargs : dict
        Other parameters of :class:`Pipeline` (``transform_input``).

    Returns
    -------
    Pipeline

    Examples
    --------
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from sklearn_ssse import UnlearnableRidge
    >>> from sklearn_ssse.pipeline import make_pipeline
    >>> make_pipeline(FunctionTransformer(), UnlearnableRidge())
    Pipeline(steps=[('functiontransformer', FunctionTransformer()),
                    ('unlearnableridge', UnlearnableRidge())])
    """
    return Pipeline(_sk_pipeline._name_estimators(steps), memory=memory, verbose=verbose, **kwargs)
