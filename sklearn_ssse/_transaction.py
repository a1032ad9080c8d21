"""The forget transaction: the per-model lock registry, ``transactional``, the commit in
one step, and ``forget`` / ``forget_step`` (validate and plan, then commit).

The plan itself (``_plan_forget``) is the estimator's (``_base``); this module only runs it
under the model's lock and publishes its result atomically."""

from __future__ import annotations

import copy
import functools
import threading
import weakref
from numbers import Real

import numpy as np
from sklearn.utils.validation import check_is_fitted

from . import _bounds
from ._pipeline import warn_if_fitted_in_pipeline

#: One re-entrant lock per model object. Kept outside the instance ``__dict__`` so that no
#: restore, copy or unpickling can lose or share it: a copy (``copy``, ``deepcopy``,
#: ``clone``, ``pickle``) is a new object and gets a new lock on first use; the entry goes
#: with the object.
_LOCKS = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
_MISSING = object()


def _model_lock(model):
    try:
        return _LOCKS[model]
    except KeyError:
        with _LOCKS_GUARD:
            return _LOCKS.setdefault(model, threading.RLock())


def _commit(model, before, changes, removed=()):
    """Publish a new state in one step: build the new ``__dict__`` aside, then rebind it.

    Rebinding ``__dict__`` is a single reference assignment, so a reader that fetched the
    dict (see :meth:`UnlearnableLinearMixin._committed`) sees either the whole old state or
    the whole new one. Attributes set on the model since ``before`` (``set_params`` from
    another thread) are kept unless the transaction changed them too."""
    state = dict(model.__dict__)
    for name in removed:
        state.pop(name, None)
    state.update(changes)
    model.__dict__ = state


def transactional(method):
    """Run ``method`` under the model's lock, as a transaction.

    The method runs on a scratch object holding a shallow copy of the model's attributes
    (fits only assign new objects, never change the old ones in place), so readers never
    see a half-built state, and a failure, at any point, leaves the model untouched. On
    success the attributes the method set or removed are published in one step
    (:func:`_commit`).
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock():
            before = dict(self.__dict__)
            work = object.__new__(type(self))
            work.__dict__.update(before)
            result = method(work, *args, **kwargs)
            after = work.__dict__
            changes = {k: v for k, v in after.items() if before.get(k, _MISSING) is not v}
            _commit(self, before, changes, removed=before.keys() - after.keys())
        return self if result is work else result

    return wrapper


class ForgetStep:
    """The unit (``ε = 1``) parameter step of a removal request, not yet applied.

    Attributes
    ----------
    coef : ndarray of shape like ``coef_``
    intercept : ndarray or float, like ``intercept_``
    n_removed : int
    """

    def __init__(self, coef, intercept, n_removed):
        self.coef = coef
        self.intercept = intercept
        self.n_removed = n_removed

    def __repr__(self):
        return f"ForgetStep(n_removed={self.n_removed}, norm={self.norm():.4g})"

    def norm(self):
        """Euclidean norm of the step over coefficients and intercepts."""
        return float(np.sqrt(np.sum(np.square(self.coef)) + np.sum(np.square(self.intercept))))


class ForgetTransactionMixin:
    """``forget`` and ``forget_step`` as transactions of the model: the plan (the
    estimator's ``_plan_forget``) is computed under the model's lock, then committed in
    one step."""

    def _lock(self):
        return _model_lock(self)

    def _committed(self):
        """The committed attributes (a dict that is never changed once published): read
        ``coef_`` and ``intercept_`` from one call to get a consistent pair."""
        return self.__dict__

    def forget_step(self, X_removed, y_removed, *, sample_weight=None):
        """Compute the unit (``ε = 1``) erasure step for these samples without applying it.

        The step of :meth:`forget` is ``eps`` times this one: the update is linear in ``ε``,
        which is what :func:`sklearn_ssse.model_selection.similarity_ratio_path` exploits.

        Parameters
        ----------
        X_removed : {array-like, sparse matrix} of shape (k, n_features)
        y_removed : array-like of shape (k,) or (k, n_outputs)
        sample_weight : array-like of shape (k,), default=None
            As in :meth:`forget`.

        Returns
        -------
        ForgetStep
        """
        with self._lock():
            plan = self._plan_forget(X_removed, y_removed, sample_weight)
        coef, intercept = self._split_theta(plan.direction)
        return ForgetStep(coef, intercept, plan.n_removed)

    def forget(
        self, X_removed, y_removed, eps=None, *, sample_weight=None, max_distance=None, bound=None
    ):
        """Erase training samples from the fitted model in one closed-form step.

        Applies, per curvature block, ``θ ← θ + ε/(n−k) · B⁻¹ · Σ_{i∈S} ∇ℓ_i(θ)`` and
        removes the samples' terms from the stored curvature, so that later requests see
        ``D∖S``. Each request appends an entry to :attr:`erasure_log_`.

        Parameters
        ----------
        X_removed : {array-like, sparse matrix} of shape (k, n_features)
            The samples to erase, exactly as they were given to ``fit``. Dense rows erase
            samples trained as sparse rows and vice versa (they are converted; the
            fingerprints hash the canonical dense values).
        y_removed : array-like of shape (k,) or (k, n_outputs)
            Their targets.
        eps : float, default=None
            Scale ``ε`` of the step; ``None`` uses the ``eps`` parameter.
        sample_weight : array-like of shape (k,), default=None
            The weights the samples were trained with. ``None``: each sample leaves with
            the weight stored with its fingerprint at fit time (the request is refused with
            :class:`~sklearn_ssse.AmbiguousWeightError` when the model holds copies of a
            sample with different weights). If given, each ``(sample, weight)`` must match a
            training sample still in the model; copies with different weights are distinct.
        max_distance : float, default=None
            Refuse the request (:class:`~sklearn_ssse.RefitRequired`, nothing changed) if
            its guaranteed bound on the distance ``‖θ̂ − θ₋S‖`` to the exact refit exceeds
            this (see ``doc/bounds.rst``); ``None`` accepts every request. Every request
            records the bound in :attr:`erasure_log_` (``distance_bound``).
        bound : {"fast", "tight"}, default=None
            How the recorded bound is computed. Both are guaranteed; ``"fast"`` bounds
            ``‖M'⁻¹‖`` from a norm of the stored base and ``K×K`` matrices (nearly free),
            ``"tight"`` spends a dense inverse and
            eigendecompositions per curvature block (blocks up to 400 parameters; about as
            much as the step itself on yeast) and is finite for larger requests. ``None``:
            ``"tight"`` when ``max_distance`` is given, else ``"fast"``.

        Returns
        -------
        self

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For invalid input (see the input catalogue in the documentation), samples that
            are not in the model, or a request that would leave no sample.
        CurvatureError
            If the curvature after the removal is singular or the step is not finite.
        RemovalBudgetError
            In certified mode, if the removal would exceed the ``(ε, δ)`` budget.
        RefitRequired
            If the request's distance bound exceeds ``max_distance``.

        Notes
        -----
        **Atomicity.** Everything the request changes (step, curvature change, fingerprints,
        log entry, certificate) is computed first, into new objects (the curvature change
        is applied to a copy that shares the unchanged arrays); the model then takes them
        in one ``__dict__`` update. The objects the model held are never modified, so on
        any error, including one injected after the curvature change, the model is
        exactly what it was.

        **Threads.** ``fit``, ``forget``, ``forget_step``, ``gradient_residual``,
        ``erasure_log_to_json`` and pickling hold a per-model re-entrant lock, so concurrent
        requests are serialized and each applies exactly once, against the state left by
        the previous one (a duplicate request from a second thread then fails the
        membership check). ``predict`` and other readers do not take it; a prediction made
        during a ``forget`` may use the old or the new parameters (``coef_`` and
        ``intercept_`` are replaced in the same update, but a reader may fetch one before
        and the other after it).
        """
        eps = self._validate_eps(eps)
        warn_if_fitted_in_pipeline(self)
        if max_distance is not None and not (
            isinstance(max_distance, (Real, np.number))
            and not isinstance(max_distance, (bool, np.bool_))
            and max_distance >= 0
        ):
            raise ValueError(f"max_distance must be a number >= 0 or None, got {max_distance!r}.")
        if bound not in (None, "fast", "tight"):
            raise ValueError(f"bound must be 'fast', 'tight' or None, got {bound!r}.")
        tight = bound == "tight" or (bound is None and max_distance is not None)
        with self._lock():
            plan = self._plan_forget(X_removed, y_removed, sample_weight)
            theta_now = self._get_theta()
            with np.errstate(over="ignore", invalid="ignore"):
                step = eps * plan.direction
                theta_new = theta_now + step
            if not (np.all(np.isfinite(theta_new)) and np.isfinite(np.linalg.norm(step))):
                raise ValueError(
                    f"The erasure step scaled by eps={eps!r} is not finite (its unit step has "
                    f"norm {np.linalg.norm(plan.direction):.4g}); nothing was changed. Use a "
                    "smaller eps."
                )
            # Copy on write: the change is applied to a shallow copy of the curvature (new
            # block records, shared arrays that are never written in place), so that the
            # objects the model holds now are never modified and a state taken by
            # ``__getstate__`` before this request stays consistent.
            if plan.refactored is not None:
                curvature = plan.refactored
            else:
                curvature = _copy_curvature(self.curvature_).apply(plan.change)
            accuracy = plan.accuracy  # of the unit step, which this one scales
            coef, intercept = self._split_theta(theta_new)
            new_state = {"coef_": coef, "intercept_": intercept}
            if plan.normal is not None:
                new_state["_normal_gram"], new_state["_normal_rhs"] = plan.normal
            certificate = self.__dict__.get("_certificate")
            entry = self._log_entry(plan, eps, float(np.linalg.norm(step)))
            entry.update(
                accuracy or {"normal_equation_residual": None, "accuracy_repair": "unchecked"}
            )
            bound_state, bound_fields = _bounds.plan_bounds(self, plan, step, eps, exact=tight)
            entry.update(bound_fields)
            bound = bound_fields["distance_bound"]
            if max_distance is not None and (bound is None or not bound <= max_distance):
                guarantee = (
                    "has no guaranteed bound"
                    if bound is None
                    else f"is guaranteed only to within {bound:.4g}"
                )
                raise _bounds.RefitRequired(
                    f"The distance of this erasure to the exact refit {guarantee}, above "
                    f"max_distance={max_distance:g}"
                    + (f" ({bound_fields['bound_note']})" if bound_fields["bound_note"] else "")
                    + ". Nothing was changed: refit on the remaining data or refine()."
                )
            new_state.update(bound_state)
            if certificate is not None:
                certificate = self._plan_certificate(certificate, plan, theta_now, step)
                entry["residual_bound_step"] = certificate.last_step
                entry["residual_bound_total"] = certificate.bound
                entry["budget_remaining"] = certificate.remaining
                new_state.update(
                    _certificate=certificate,
                    gradient_residual_bound_=certificate.bound,
                    removal_budget_remaining_=certificate.remaining,
                )
            new_state["curvature_"] = curvature
            if plan.fingerprints is not None:
                new_state["fingerprints_"] = plan.fingerprints
            new_state.update(
                n_samples_=self.n_samples_ - plan.n_removed,
                n_forgotten_=self.n_forgotten_ + plan.n_removed,
                erasure_log_=[*self.erasure_log_, entry],
            )
            if plan.label_counts is not None:
                new_state["_label_counts"] = plan.label_counts
            # Commit: one rebinding of the attribute dict, which cannot fail half-way.
            _commit(self, None, new_state)
        return self

    @transactional
    def compact(self):
        """Fold the pending low-rank changes into the stored matrices; the state then keeps
        no feature row of an erased sample.

        Between folds, which ``forget`` makes once a block's pending rank exceeds
        ``max_pending_rank`` (256), the curvature keeps what the Woodbury identity needs of
        the samples erased since the last fold: their rows ``x̃_i`` (once for all blocks)
        and the stored inverse times their scaled rows; the distance bound's Gram keeps the
        same rows. ``compact`` replaces both by the matrices of the remaining samples (one
        copy and one rank-``K`` update per block), as one transaction. Call it before a
        model that has erased samples is saved or shared; predictions do not change, and
        later requests agree with those of the model before it to round-off. The erasure
        log keeps what it always does (digests of the erased samples' fingerprints).

        Returns
        -------
        self
        """
        check_is_fitted(self)
        curvature = self.curvature_
        if hasattr(curvature, "fold_pending") and any(curvature.pending_rank_):
            self.curvature_ = _copy_curvature(curvature).fold_pending()
        gram = self.__dict__.get("_bound_gram")
        if isinstance(gram, _bounds.DowndatedGram) and gram.rows:
            self._bound_gram = gram.toarray()
        return self


def _copy_curvature(curvature):
    """A copy of a BlockFisherInverse that shares its arrays but not its block records.

    ``BlockFisherInverse.apply`` only rebinds the attributes of the blocks (and of the
    inverse itself) to new arrays; applied to this copy it leaves the original untouched.
    """
    new = copy.copy(curvature)
    new.blocks_ = [copy.copy(blk) for blk in curvature.blocks_]
    return new
