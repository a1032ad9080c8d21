"""``forget`` for unlearnable estimators and for pipelines that end in one.

The rules (which earlier steps may stand before the unlearnable last step) live here once:
:func:`forget` and the methods of :class:`sklearn_ssse.pipeline.Pipeline` both go through
:func:`erasable_steps` and :func:`pipeline_forget`.
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings

from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils import get_tags

__all__ = ["forget"]

# Set while a pipeline erases through its last step: that call has been checked, the
# direct call the warning below is about has not.
_THROUGH_PIPELINE = contextvars.ContextVar("sklearn_ssse_through_pipeline", default=False)

# Attribute that sklearn_ssse.pipeline.Pipeline.fit sets on its final estimator; a new fit
# of the estimator drops it (``_reset_erasure_state``).
PIPELINE_MARK = "_fitted_in_pipeline"


class PipelineBypassWarning(UserWarning):
    """``forget`` was called on the last step of a pipeline instead of on the pipeline.

    The estimator was fitted by :class:`sklearn_ssse.pipeline.Pipeline` on features
    transformed by the earlier steps. Calling its own ``forget`` skips the pipeline's
    check of those steps (a fitted ``StandardScaler`` still carries the removed samples)
    and needs the *transformed* samples. Call ``pipeline.forget(X_raw, y)`` instead.
    """


def warn_if_fitted_in_pipeline(estimator):
    """Warn when ``estimator.forget`` is called directly on a pipeline's final step."""
    mark = estimator.__dict__.get(PIPELINE_MARK)
    if mark is None or _THROUGH_PIPELINE.get():
        return
    warnings.warn(
        f"This {type(estimator).__name__} was fitted as the last step of a Pipeline, on "
        f"features transformed by its earlier steps ({mark}). Its own forget bypasses the "
        "pipeline's check of those steps and expects transformed samples: call the "
        "pipeline's forget (or sklearn_ssse.forget(pipeline, X, y)) with the raw samples.",
        PipelineBypassWarning,
        stacklevel=3,
    )


@contextlib.contextmanager
def _through_pipeline():
    token = _THROUGH_PIPELINE.set(True)
    try:
        yield
    finally:
        _THROUGH_PIPELINE.reset(token)


def _is_passthrough(step):
    return step is None or (isinstance(step, str) and step == "passthrough")


def _is_drop(step):
    return isinstance(step, str) and step == "drop"


def _first_reason(named_steps):
    for name, inner in named_steps:
        reason = _learned_state_reason(inner)
        if reason is not None:
            return f"its step {name!r}: {reason}"
    return None


def _learned_state_reason(step):
    """Return why ``step`` holds state learned from training data, or None if it does not.

    A step is safe when re-running it on the removed samples reproduces exactly what the
    final estimator saw at fit time *and* erasing the samples cannot change the step
    itself: frozen steps (``FrozenEstimator``), steps whose scikit-learn tags declare
    ``requires_fit=False`` (stateless transforms such as ``FunctionTransformer`` or
    ``Normalizer``, and :class:`sklearn_ssse.torch.TorchFeatureExtractor`), and nested
    pipelines made only of such steps.
    A ``ColumnTransformer`` or ``FeatureUnion`` is safe when all its (fitted)
    transformers are: the columns it routes are fixed, its parts learn nothing.
    """
    if _is_passthrough(step) or _is_drop(step) or isinstance(step, FrozenEstimator):
        return None
    if isinstance(step, Pipeline):
        return _first_reason((name, inner) for name, inner in step.steps)
    if isinstance(step, ColumnTransformer):
        fitted = getattr(step, "transformers_", None)
        parts = fitted if fitted is not None else step.transformers
        if fitted is None and step.remainder not in ("drop", "passthrough"):
            parts = [*parts, ("remainder", step.remainder, None)]
        return _first_reason((name, inner) for name, inner, _ in parts)
    if isinstance(step, FeatureUnion):
        return _first_reason((name, inner) for name, inner in step.transformer_list)
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


def pipeline_call(pipeline, method, X, y, **kwargs):
    """Check ``pipeline`` (:func:`check_erasable_pipeline`), send ``X`` through its earlier
    steps with ``transform`` and call ``method`` of its last step on the result.

    ``forget`` returns the pipeline (changed in place), other methods their own result.
    """
    # Validate every step before transforming, so that nothing changes on refusal.
    steps, final = check_erasable_pipeline(pipeline)
    Xt = X
    for step in steps:
        if not (_is_passthrough(step) or _is_drop(step)):
            Xt = step.transform(Xt)
    with _through_pipeline():
        result = getattr(final, method)(Xt, y, **kwargs)
    return pipeline if method == "forget" else result


def describe_earlier_steps(pipeline):
    """What the warning of :func:`warn_if_fitted_in_pipeline` says about the earlier steps,
    or ``None`` when they are all ``passthrough`` (the last step saw the raw samples)."""
    names, learned = [], []
    for name, step in pipeline.steps[:-1]:
        if _is_passthrough(step) or _is_drop(step):
            continue
        names.append(repr(name))
        if _learned_state_reason(step) is not None:
            learned.append(repr(name))
    if not names:
        return None
    text = "steps " + ", ".join(names)
    if learned:
        text += "; learned from the training data, so not erasable: " + ", ".join(learned)
    return text


def forget(estimator, X_removed, y_removed, eps=None):
    """Erase training samples from an unlearnable estimator or a pipeline ending in one.

    For a :class:`~sklearn.pipeline.Pipeline`, the removed samples are sent through the
    earlier steps with ``transform`` and erased from the last step with its ``forget``.
    This is exact only if the earlier steps did not learn anything from the training
    data: a ``StandardScaler`` fitted on it still carries the removed samples in its mean
    and variance (and the final model was fitted on features scaled with them). Such
    pipelines are refused. Freeze pre-fitted steps with
    :class:`sklearn.frozen.FrozenEstimator` (fitted on other data, or accepted as not
    erased), or use steps without learned state. A ``ColumnTransformer`` or
    ``FeatureUnion`` is accepted when all its transformers are frozen or stateless.

    :class:`sklearn_ssse.pipeline.Pipeline` offers the same as a method,
    ``pipe.forget(X_removed, y_removed)``, with the same rules (one implementation).
    Calling ``forget`` of the last step directly skips this check and needs samples
    already transformed; when that step was fitted by
    :class:`sklearn_ssse.pipeline.Pipeline` it warns
    (:class:`~sklearn_ssse.pipeline.PipelineBypassWarning`).

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
        return pipeline_call(estimator, "forget", X_removed, y_removed, eps=eps)
    if not callable(getattr(estimator, "forget", None)):
        raise TypeError(
            f"{type(estimator).__name__} cannot forget: pass an unlearnable estimator (one "
            "with a forget method) or a Pipeline ending in one."
        )
    estimator.forget(X_removed, y_removed, eps=eps)
    return estimator
