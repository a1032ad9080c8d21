"""Fitting the estimators from row chunks (the estimator side of out-of-core fitting).

The chunk sources and the per-chunk kernels (sums of Grams, gradients and fingerprints) are
the curvature engine's (:mod:`sklearn_ssse.curvature._streaming`); this module turns their
sums into a fitted estimator. It is called by the estimators' ``fit_streaming`` and
``fit_dask`` methods (:class:`OutOfCoreMixin`) on the scratch copy of a transaction (see
``_transaction.transactional``), so a failure leaves the model as it was.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
from scipy import linalg
from sklearn.exceptions import ConvergenceWarning

from ._bounds import store_fit_state_from_stats, store_ridge_fit_state
from ._transaction import transactional
from .curvature._block_inverse import CurvatureError
from .curvature._build import check_curvature_memory
from .curvature._dask import DaskChunks
from .curvature._normal import solve_normal_equations
from .curvature._streaming import (
    _check_reiterable,
    _curvature_kernel,
    _map_reduce,
    _newton_kernel,
    _ridge_kernel,
    _scan_kernel,
)

__all__ = ["OutOfCoreMixin", "fit_from_chunks", "rebuild_curvature"]


def _is_logistic(estimator):
    return getattr(estimator._loss, "name", None) == "log_loss"


def _target_of(estimator):
    if not _is_logistic(estimator):
        return ("regression", None)
    return (
        estimator._target_type,
        np.asarray(estimator.classes_) if estimator._target_type != "multilabel" else None,
    )


def _install_curvature(estimator, grams, n, theta, digests, penalized=False, label_counts=None):
    """Set the fitted state as ``fit`` does (the estimator's own ``_install_curvature`` and
    ``_reset_erasure_state``), from summed statistics."""
    penalty = estimator._penalty_vector()
    dtype = np.dtype(estimator.curvature_dtype)

    def blocks():
        for G in grams:
            G = np.asarray(G, dtype=np.float64)
            if not penalized:
                G.flat[:: G.shape[0] + 1] += penalty
            yield G.astype(dtype, copy=False)

    estimator._install_curvature(blocks(), n, theta)
    estimator._reset_erasure_state(digests, label_counts)
    return estimator


def rebuild_curvature(
    estimator, chunks, *, fingerprints=True, _normal_equations_valid=False, _bound_gram=None
):
    """Stage 2 of the two-stage protocol: build a fitted estimator's curvature in one pass.

    The estimator's parameters (``coef_``, ``intercept_``) must already be fitted on exactly
    the rows of ``chunks`` (by ``fit_streaming``, by ``fit`` on a sample that fits in
    memory and then refined, or by any solver); the curvature blocks, the fingerprints and
    ``n_samples_`` are (re)built from one pass over the chunks. Memory is
    ``O(chunk_rows·d + L·d²)``.

    Parameters
    ----------
    estimator : UnlearnableLogisticRegression or UnlearnableRidge
        Fitted (``coef_`` and the target encoding are used).
    chunks : chunk source
        See the module documentation.
    fingerprints : bool, default=True
        Also rebuild ``fingerprints_`` (needed for ``check_membership``).

    Returns
    -------
    estimator
    """
    if not hasattr(estimator, "coef_"):
        raise ValueError("curvature_pass needs a fitted estimator (coef_ is missing).")
    theta = estimator._get_theta()
    n_blocks = 1 if estimator._shared_block else theta.shape[0]
    # The running sum and one chunk's blocks are float64 (L, d, d) stacks.
    check_curvature_memory([theta.shape[1]] * n_blocks, np.float64, workspace_blocks=n_blocks)
    kernel = partial(
        _curvature_kernel,
        theta=theta,
        fit_intercept=estimator.fit_intercept,
        target=_target_of(estimator),
        loss_name=estimator._loss.name,
        curvature=estimator.curvature,
        shared=estimator._shared_block,
        fingerprints=fingerprints,
        bound_gram=_bound_gram is None,
    )
    total = _map_reduce(chunks, kernel)
    if total["n_features"] != estimator.n_features_in_:
        raise ValueError(
            f"The chunks have {total['n_features']} features, the estimator "
            f"{estimator.n_features_in_}."
        )
    grams = total.pop("grams")
    if not fingerprints:  # the old ones may name other samples
        estimator.__dict__.pop("fingerprints_", None)
    if not _normal_equations_valid:  # ridge's stored X̃ᵀX̃ and X̃ᵀY may be of other rows
        estimator.__dict__.pop("_normal_gram", None)
        estimator.__dict__.pop("_normal_rhs", None)
    # A copy: installing the curvature adds the penalty to the summed Grams in place.
    if _bound_gram is not None:  # the caller's, of exactly these rows
        bound_gram = _bound_gram
    elif "bound_gram" in total:
        bound_gram = total["bound_gram"]
    else:
        bound_gram = grams[0].copy()
    _install_curvature(estimator, _unstack(grams), total["n"], theta, total.get("digests"))
    # The fit's residual, the unweighted Gram and R of the per-request bounds (``_bounds``).
    store_fit_state_from_stats(estimator, total, bound_gram)
    return estimator


def _unstack(stack):
    """Yield the blocks of a (L, d, d) array and drop the stack's reference as we go."""
    for index in range(stack.shape[0]):
        yield stack[index]


def fit_from_chunks(estimator, chunks, *, max_iter=50, tol=1e-10, fingerprints=True):
    """Fit an unlearnable linear model from row chunks, with memory independent of ``n``.

    Parameters
    ----------
    estimator : UnlearnableRidge or UnlearnableLogisticRegression
        Unfitted (its parameters are used); it is fitted in place and returned.
    chunks : chunk source
        :func:`iter_chunks` over arrays or memmaps, a :class:`sklearn_ssse._dask.DaskChunks`,
        a list of ``(X, Y)`` tuples, or a callable returning a fresh iterator of them. Ridge
        with ``curvature="hessian"`` also accepts a one-shot iterator (one pass).
    max_iter : int, default=50
        Maximum Newton passes (logistic regression).
    tol : float, default=1e-10
        Newton stops when every label's step changes the objective by less than
        ``tol·(1 + |objective|)`` (the Newton decrement) .
    fingerprints : bool, default=True
        Fingerprint the rows for ``check_membership`` (``O(n)`` memory, 24 bytes a row).

    Returns
    -------
    estimator

    Notes
    -----
    Passes over the data: ridge (Hessian curvature) 1; ridge (empirical Fisher) 2; logistic
    regression ``1 + n_iter + 1`` (scan, Newton, curvature). The result equals ``fit`` on
    the concatenated chunks to round-off for ridge; for logistic regression the parameters
    are the same optimum reached by Newton's method instead of scikit-learn's solver, so
    they agree to the solvers' tolerance and the curvature is built at them exactly as
    ``fit`` would.
    """
    estimator._validate_params()
    if getattr(estimator._loss, "name", None) not in ("log_loss", "squared_error"):
        # The GLM regressors and the SVM have their own fits (scikit-learn's solvers).
        raise NotImplementedError(
            f"Streaming and dask fits support ridge and logistic regression only, not "
            f"{type(estimator).__name__}; fit it with fit()."
        )
    if getattr(estimator, "certified", False):
        raise NotImplementedError(
            "certified=True builds its certificate from the data in memory; fit it with fit()."
        )
    # ``estimator`` is the transaction's scratch copy: a new fit starts from nothing.
    for attribute in ("coef_", "curvature_", "fingerprints_", "_normal_gram", "_normal_rhs"):
        estimator.__dict__.pop(attribute, None)
    if _is_logistic(estimator):
        _check_reiterable(chunks, "Fitting a logistic regression")
        return _fit_logistic(
            estimator, chunks, max_iter=max_iter, tol=tol, fingerprints=fingerprints
        )
    return _fit_ridge(estimator, chunks, fingerprints=fingerprints)


def _fit_ridge(estimator, chunks, *, fingerprints):
    source = chunks
    shared = estimator.curvature == "hessian"
    kernel = partial(
        _ridge_kernel,
        fit_intercept=estimator.fit_intercept,
        target=("regression", None),
        fingerprints=fingerprints and shared,
    )
    total = _map_reduce(source, kernel)
    estimator.n_features_in_ = int(total["n_features"])
    estimator._target_1d = total["ndim"] == 1
    gram = total["gram"]
    gram.flat[:: gram.shape[0] + 1] += estimator._penalty_vector()
    theta = solve_normal_equations(gram, total["rhs"])
    estimator.coef_, estimator.intercept_ = estimator._split_theta(theta)
    # Kept for the accuracy check of each erasure, as by ``fit``.
    estimator._normal_gram, estimator._normal_rhs = gram.copy(), np.asarray(total["rhs"])
    if not shared:
        _check_reiterable(chunks, "The empirical Fisher curvature")
        return rebuild_curvature(
            estimator, source, fingerprints=fingerprints, _normal_equations_valid=True
        )
    # X̃ᵀX̃ + αI itself (penalty included) is the curvature, as in ``fit``.
    unweighted = gram.copy()
    unweighted.flat[:: gram.shape[0] + 1] -= estimator._penalty_vector()
    _install_curvature(estimator, [gram], total["n"], theta, total.get("digests"), penalized=True)
    store_ridge_fit_state(estimator, unweighted, total["rhs"], total["rowmax"], total["n"])
    return estimator


def _fit_logistic(estimator, chunks, *, max_iter, tol, fingerprints):
    # Pass 1: classes and shape.
    scan = _map_reduce(chunks, partial(_scan_kernel, classify=True, fingerprints=False))
    estimator.n_features_in_ = int(scan["n_features"])
    if "colmin" in scan:
        estimator._encode_fit_targets(np.vstack([scan["colmin"], scan["colmax"]]).astype(int))
    else:
        labels = scan["labels"]
        estimator._encode_fit_targets(labels)
    target = _target_of(estimator)
    n_labels = 1 if estimator._target_type == "binary" else (len(estimator.classes_))
    d = estimator.n_features_in_ + int(estimator.fit_intercept)
    penalty = estimator._penalty_vector()
    # Newton's per-label Hessians: the running sum and one chunk's, as float64 stacks.
    check_curvature_memory([d] * n_labels, np.float64, workspace_blocks=n_labels)
    theta = np.zeros((n_labels, d))
    # Passes 2..: Newton with exact Hessians; a label whose objective rose is halved back.
    objective_prev = np.full(n_labels, np.inf)
    step_prev = np.zeros_like(theta)
    done = np.zeros(n_labels, dtype=bool)
    n_iter = np.zeros(n_labels, dtype=np.int32)
    kernel = partial(_newton_kernel, fit_intercept=estimator.fit_intercept, target=target)
    C = float(estimator.C)
    for _ in range(max_iter):
        stats = _map_reduce(chunks, partial(kernel, theta=theta))
        # Objective divided by C: Σℓ + ½θᵀPθ (P = 1/C on coefficients).
        objective = stats["loss"] + 0.5 * np.einsum("ld,d,ld->l", theta, penalty, theta)
        for label in np.flatnonzero(~done):
            if objective[label] > objective_prev[label] + 1e-12 * abs(objective_prev[label]):
                step_prev[label] /= 2  # back-track: the previous full step overshot
                theta[label] -= step_prev[label]
                continue
            g = stats["gradient"][label] + penalty * theta[label]
            H = stats["hessian"][label]
            H.flat[:: d + 1] += penalty
            try:
                step = -linalg.solve(H, g, assume_a="pos", check_finite=False)
            except linalg.LinAlgError as error:
                raise CurvatureError(
                    f"The Hessian of label {label} is singular; use a smaller C."
                ) from error
            decrement = float(-g @ step)
            objective_prev[label] = objective[label]
            n_iter[label] += 1
            if decrement <= tol * (1.0 + abs(objective[label])):
                done[label] = True
                theta[label] += step  # the last (tiny) Newton step is free
                continue
            theta[label] += step
            step_prev[label] = step
        if done.all():
            break
    else:
        warnings.warn(
            f"Newton did not converge in {max_iter} passes; the erasure step assumes an "
            "optimal model. Increase max_iter.",
            ConvergenceWarning,
            stacklevel=3,
        )
    del C
    estimator.coef_ = theta[:, : estimator.n_features_in_].copy()
    estimator.intercept_ = theta[:, -1].copy() if estimator.fit_intercept else np.zeros(n_labels)
    estimator.n_iter_ = n_iter
    # Last pass: curvature at θ*, and the fingerprints.
    return rebuild_curvature(estimator, chunks, fingerprints=fingerprints)


class OutOfCoreMixin:
    """``fit_streaming`` and ``fit_dask``: fits from row chunks or dask arrays, each one
    transaction of the model."""

    @transactional
    def fit_streaming(self, chunks, *, max_iter=50, tol=1e-10, fingerprints=True):
        """Fit from row chunks, with memory independent of the number of rows.

        Runs as one transaction, like :meth:`fit`: under the model's lock, and on any
        failure the previously fitted model is left exactly as it was.

        Parameters
        ----------
        chunks : chunk source
            :func:`sklearn_ssse.curvature.iter_chunks` over arrays or memmaps, a
            :class:`sklearn_ssse._dask.DaskChunks`, a list of ``(X, Y)`` tuples, or a
            callable returning a fresh iterator of them. Ridge with
            ``curvature="hessian"`` also accepts a one-shot iterator (one pass).
        max_iter : int, default=50
            Maximum Newton passes (logistic regression).
        tol : float, default=1e-10
            Newton stops when every label's step changes the objective by less than
            ``tol·(1 + |objective|)`` (the Newton decrement).
        fingerprints : bool, default=True
            Fingerprint the rows for ``check_membership`` (24 bytes a row). Without them
            the model can only forget with ``check_membership=False``.

        Returns
        -------
        self

        Notes
        -----
        Passes over the data: ridge (Hessian curvature) 1; ridge (empirical Fisher) 2;
        logistic regression ``1 + n_iter + 1`` (scan, Newton, curvature). The result
        equals ``fit`` on the concatenated chunks to round-off for ridge; for logistic
        regression the parameters are the same optimum reached by Newton's method, so
        they agree to the solvers' tolerance.
        """
        return fit_from_chunks(self, chunks, max_iter=max_iter, tol=tol, fingerprints=fingerprints)

    def fit_dask(self, X, Y, *, split_every=8, **params):
        """Fit on dask arrays, blockwise on the dask scheduler (see :meth:`fit_streaming`).

        Parameters
        ----------
        X : dask.array.Array of shape (n_samples, n_features)
        Y : dask.array.Array or ndarray of shape (n_samples,) or (n_samples, n_outputs)
        split_every : int, default=8
            Fan-in of the tree sum of per-block statistics.
        **params
            ``max_iter``, ``tol``, ``fingerprints`` of :meth:`fit_streaming`.

        Returns
        -------
        self
        """
        return self.fit_streaming(DaskChunks(X, Y, split_every=split_every), **params)

    @transactional
    def _curvature_pass(self, chunks, *, fingerprints=True):
        return rebuild_curvature(self, chunks, fingerprints=fingerprints)
