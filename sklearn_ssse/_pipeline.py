"""``forget`` for unlearnable estimators and for pipelines that end in one."""

from __future__ import annotations

from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags

__all__ = ["forget"]


def _is_passthrough(step):
    return step is None or (isinstance(step, str) and step == "passthrough")


def _learned_state_reason(step):
    """Return why ``step`` holds state learned from training data, or None if it does not.

    A step is safe when re-running it on the removed samples reproduces exactly what the
    final estimator saw at fit time *and* erasing the samples cannot change the step
    itself: frozen steps (``FrozenEstimator``), steps whose scikit-learn tags declare
    ``requires_fit=False`` (stateless transforms such as ``FunctionTransformer`` or
    ``Normalizer``, and :class:`sklearn_ssse.torch.TorchFeatureExtractor`), and nested
    pipelines made only of such steps.
    """
    if _is_passthrough(step) or isinstance(step, FrozenEstimator):
        return None
    if isinstance(step, Pipeline):
        for name, inner in step.steps:
            reason = _learned_state_reason(inner)
            if reason is not None:
                return f"its step {name!r}: {reason}"
        return None
    if not get_tags(step).requires_fit:
        return None
    return (
        f"{type(step).__name__} was fitted on the training data, so the removed samples "
        "are still in its learned state and it cannot be erased exactly"
    )


def check_erasable_pipeline(pipeline):
    """Return ``(earlier steps, final step)`` of a pipeline that can forget, else raise.

    Raises ``TypeError`` if the last step has no ``forget`` and ``ValueError`` if an
    earlier step holds state learned from the training data (see :func:`forget`).
    """
    steps = pipeline.steps
    name, final = steps[-1]
    if _is_passthrough(final) or not callable(getattr(final, "forget", None)):
        raise TypeError(
            f"The last step {name!r} of this pipeline ({type(final).__name__}) has no "
            "forget method; it must be an unlearnable estimator."
        )
    for step_name, step in steps[:-1]:
        reason = _learned_state_reason(step)
        if reason is not None:
            raise ValueError(
                f"Cannot erase samples through pipeline step {step_name!r}: {reason}. "
                "Only the last step can forget. Fit that step on other data and wrap "
                "it in sklearn.frozen.FrozenEstimator (its state then stays as it is), "
                "use a transformer without learned state, or refit the pipeline."
            )
    return [step for _, step in steps[:-1]], final


def forget(estimator, X_removed, y_removed, eps=None):
    """Erase training samples from an unlearnable estimator or a pipeline ending in one.

    For a :class:`~sklearn.pipeline.Pipeline`, the removed samples are sent through the
    earlier steps with ``transform`` and erased from the last step with its ``forget``.
    This is exact only if the earlier steps did not learn anything from the training
    data: a ``StandardScaler`` fitted on it still carries the removed samples in its mean
    and variance (and the final model was fitted on features scaled with them). Such
    pipelines are refused. Freeze pre-fitted steps with
    :class:`sklearn.frozen.FrozenEstimator` (fitted on other data, or accepted as not
    erased), or use steps without learned state.

    Parameters
    ----------
    estimator : estimator with a ``forget`` method, or Pipeline
        The fitted model. A pipeline's last step must have ``forget``.
    X_removed : array-like of shape (k, ...)
        The samples to erase, in the form given to ``fit`` (raw input for a pipeline).
    y_removed : array-like of shape (k,) or (k, n_outputs)
        Their targets.
    eps : float, default=None
        Scale ``ε`` of the step, passed to the final estimator's ``forget``; ``None``
        uses the estimator's own default.

    Returns
    -------
    estimator
        The same object, changed in place.

    Raises
    ------
    TypeError
        If the (final) estimator cannot forget.
    ValueError
        If a pipeline step before the last holds state learned from the training data.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_ssse import UnlearnableLogisticRegression, forget
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(60, 3)), np.arange(60) % 2
    >>> scaler = FrozenEstimator(StandardScaler().fit(rng.normal(size=(100, 3))))
    >>> model = make_pipeline(scaler, UnlearnableLogisticRegression()).fit(X, y)
    >>> forget(model, X[:5], y[:5])[-1].n_samples_
    55
    """
    if isinstance(estimator, Pipeline):
        steps, final = check_erasable_pipeline(estimator)
        # Validate every step before transforming, so that nothing changes on refusal.
        Xt = X_removed
        for step in steps:
            if not _is_passthrough(step):
                Xt = step.transform(Xt)
        final.forget(Xt, y_removed, eps=eps)
        return estimator
    if not callable(getattr(estimator, "forget", None)):
        raise TypeError(
            f"{type(estimator).__name__} cannot forget: pass an unlearnable estimator (one "
            "with a forget method) or a Pipeline ending in one."
        )
    estimator.forget(X_removed, y_removed, eps=eps)
    return estimator
