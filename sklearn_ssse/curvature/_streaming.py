"""Out-of-core and distributed fitting: curvature and parameters from chunks of rows.

Every quantity an unlearnable linear model needs is a sum over samples: the Gram blocks
``X̃ᵀ diag(w) X̃``, the normal-equation right-hand side ``X̃ᵀY``, Newton's gradient and
Hessian, and the multiset of sample fingerprints. So a model can be fitted from a source of
``(X, Y)`` row chunks in passes, each a map over the chunks followed by a sum, with memory
``O(chunk_rows·d + L·d²)`` whatever the number of rows ``n``:

* :class:`~sklearn_ssse.UnlearnableRidge` with ``curvature="hessian"``: **one pass**
  accumulates ``X̃ᵀX̃``, ``X̃ᵀY`` and the fingerprints; the fit is a Cholesky solve and
  ``X̃ᵀX̃ + αI`` is the stored curvature. Exact.
* Everything else (logistic regression, the empirical Fisher): the curvature is evaluated
  at the fitted parameters, so it takes **two stages**: (1) fit ``θ`` — here by Newton's
  method, one pass per iteration (each pass forms the per-label gradient and Hessian, which
  is as costly as the curvature build itself, and converges in a handful of passes), after
  one cheap scan pass for the classes; then (2) **one curvature pass** at ``θ*``.
  :func:`curvature_pass` alone is stage (2), for parameters fitted by any other means.

Chunk sources
    * :class:`ArrayChunks` (from :func:`iter_chunks`): row slices of in-memory arrays,
      sparse matrices or :class:`numpy.memmap` files. For a read-only memmap the pages of a
      chunk are released after use, so the process's resident memory stays
      ``O(chunk_rows·d)`` (the OS page cache may still keep the file). Chunks are mapped
      with :class:`joblib.Parallel` (threads by default): under
      ``joblib.parallel_config(backend=...)`` the same code runs on a dask or ray cluster.
    * :class:`sklearn_ssse._dask.DaskChunks`: the row blocks of dask arrays, mapped and
      tree-summed on the dask scheduler (a ``dask.distributed`` cluster if one is active).
    * Any re-iterable of ``(X, Y)`` tuples (a list, or a callable returning a fresh
      iterator), mapped sequentially. A one-shot iterator is enough for the one-pass ridge.
"""

from __future__ import annotations

import mmap
from functools import partial

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from scipy import linalg
from scipy.special import expit, log_expit
from sklearn.utils import check_array

from ._block_inverse import CurvatureError
from ._build import check_curvature_memory, weighted_gram

__all__ = ["ArrayChunks", "curvature_pass", "fit_streaming", "iter_chunks"]

_DEFAULT_CHUNK_ROWS = 65536


# ---------------------------------------------------------------------------- sources
class ArrayChunks:
    """Re-iterable source of ``(X[i:j], Y[i:j])`` row chunks of arrays or memmaps.

    Parameters
    ----------
    X : {ndarray, numpy.memmap, sparse matrix} of shape (n_samples, n_features)
    Y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    chunk_rows : int, default=65536
    n_jobs : int, default=None
        Chunks mapped in parallel by joblib (``prefer="threads"``; ``parallel_config``
        may choose another backend, such as dask or ray).
    """

    def __init__(self, X, Y, *, chunk_rows=_DEFAULT_CHUNK_ROWS, n_jobs=None):
        if X.shape[0] != np.shape(Y)[0]:
            raise ValueError(f"X has {X.shape[0]} rows but Y has {np.shape(Y)[0]}.")
        if int(chunk_rows) < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}.")
        self.X, self.Y = X, Y
        self.chunk_rows = int(chunk_rows)
        self.n_jobs = n_jobs

    def __len__(self):
        return -(-self.X.shape[0] // self.chunk_rows)

    def _chunk(self, start):
        stop = min(start + self.chunk_rows, self.X.shape[0])
        X, Y = self.X[start:stop], self.Y[start:stop]
        if isinstance(self.X, np.memmap) or isinstance(self.Y, np.memmap):
            # Copy out of the mapping, then let the kernel drop the mapped pages.
            X, Y = np.array(X), np.array(Y)
            _release(self.X, start, stop)
            _release(self.Y, start, stop)
        return X, Y

    def __iter__(self):
        for start in range(0, self.X.shape[0], self.chunk_rows):
            yield self._chunk(start)

    def map_reduce(self, function):
        """``Σ_chunks function(X_chunk, Y_chunk)`` (see :func:`_combine`)."""
        starts = range(0, self.X.shape[0], self.chunk_rows)
        if self.n_jobs in (None, 1) or len(starts) <= 1:
            return _reduce(function(*self._chunk(s)) for s in starts)
        parallel = Parallel(n_jobs=self.n_jobs, prefer="threads", return_as="generator")
        return _reduce(parallel(delayed(_apply_to_chunk)(self, s, function) for s in starts))


def _apply_to_chunk(source, start, function):
    return function(*source._chunk(start))


def _release(array, start, stop):
    """Drop the resident pages of rows ``start:stop`` of a read-only memmap (no data loss:
    they are re-read from the file if touched again)."""
    if not isinstance(array, np.memmap) or array.mode != "r" or array.ndim == 0:
        return
    handle = getattr(array, "_mmap", None)
    if handle is None or not hasattr(handle, "madvise") or not array.flags.c_contiguous:
        return
    row_bytes = array.strides[0]
    begin = array.offset + start * row_bytes
    end = array.offset + stop * row_bytes
    page = mmap.PAGESIZE
    aligned = (begin // page) * page
    try:
        handle.madvise(mmap.MADV_DONTNEED, aligned, end - aligned)
    except (OSError, ValueError):  # pragma: no cover - best effort
        pass


def iter_chunks(X, Y, *, chunk_rows=_DEFAULT_CHUNK_ROWS, n_jobs=None):
    """Return an :class:`ArrayChunks` source over row chunks of ``(X, Y)``.

    Parameters
    ----------
    X : {ndarray, numpy.memmap, sparse matrix} of shape (n_samples, n_features)
    Y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    chunk_rows : int, default=65536
    n_jobs : int, default=None

    Returns
    -------
    ArrayChunks
    """
    return ArrayChunks(X, Y, chunk_rows=chunk_rows, n_jobs=n_jobs)


def _combine(a, b):
    """Sum two chunk statistics: dicts of arrays/numbers; ``digests`` and ``labels`` are
    concatenated / united, ``min``/``max`` entries combined elementwise."""
    out = {}
    for key in a:
        if key == "digests":
            out[key] = np.concatenate([a[key], b[key]])
        elif key == "labels":
            out[key] = np.union1d(a[key], b[key])
        elif key == "colmin":
            out[key] = np.minimum(a[key], b[key])
        elif key == "colmax":
            out[key] = np.maximum(a[key], b[key])
        elif key in ("n_features", "ndim"):
            if a[key] != b[key]:
                raise ValueError(f"Chunks disagree on {key}: {a[key]} and {b[key]}.")
            out[key] = a[key]
        else:
            out[key] = a[key] + b[key]
    return out


def _reduce(results):
    total = None
    for result in results:
        total = result if total is None else _combine(total, result)
    if total is None:
        raise ValueError("The chunk source is empty: no rows to fit.")
    return total


def _map_reduce(source, function):
    if hasattr(source, "map_reduce"):
        return source.map_reduce(function)
    chunks = source() if callable(source) else source
    return _reduce(function(X, Y) for X, Y in chunks)


def _check_reiterable(source, what):
    if callable(source) or hasattr(source, "map_reduce") or isinstance(source, (list, tuple)):
        return
    if iter(source) is source:
        raise TypeError(
            f"{what} needs several passes over the data, but a one-shot iterator was given. "
            "Pass a list of chunks, a callable returning a fresh iterator, iter_chunks(X, Y) "
            "or a DaskChunks source."
        )


# ---------------------------------------------------------------------------- kernels
def _check_chunk(X, Y):
    X = check_array(X, accept_sparse="csr", dtype=np.float64)
    Y = np.asarray(Y)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"A chunk has {X.shape[0]} rows in X but {Y.shape[0]} in Y.")
    return X, Y


def _augment_dense(X, fit_intercept):
    X = X.toarray() if sp.issparse(X) else X
    return np.hstack([X, np.ones((X.shape[0], 1))]) if fit_intercept else X


def _encode(Y, target):
    kind, classes = target
    if kind == "regression":
        Y = np.asarray(Y, dtype=np.float64)
        return Y.reshape(Y.shape[0], -1)
    if kind == "multilabel":
        Y = np.asarray(Y.toarray() if hasattr(Y, "toarray") else Y, dtype=np.float64)
        if not np.isin(Y, (0, 1)).all():
            raise ValueError("A multi-label indicator matrix must contain only 0 and 1.")
        return Y
    y = np.asarray(Y).reshape(-1)
    if kind == "binary":
        return (y == classes[1]).astype(np.float64)[:, None]
    return (y[:, None] == classes[None, :]).astype(np.float64)


def _fingerprints(X, Y):
    from .._fingerprint import row_fingerprints

    return row_fingerprints(X, Y)


def _scan_kernel(X, Y, *, classify, fingerprints):
    """First pass: row count, feature count, label set and (optionally) fingerprints."""
    X, Y = _check_chunk(X, Y)
    out = {"n": X.shape[0], "n_features": X.shape[1], "ndim": Y.ndim}
    if classify:
        if Y.ndim == 2 and Y.shape[1] > 1:
            Yd = np.asarray(Y.toarray() if hasattr(Y, "toarray") else Y)
            out["colmin"], out["colmax"] = Yd.min(axis=0), Yd.max(axis=0)
            out["labels"] = np.unique(Yd)
        else:
            out["labels"] = np.unique(np.asarray(Y).reshape(-1))
    return out


def _ridge_kernel(X, Y, *, fit_intercept, target, fingerprints):
    """One-pass ridge: ``X̃ᵀX̃``, ``X̃ᵀY``, row count and fingerprints."""
    X, Y = _check_chunk(X, Y)
    Ye = _encode(Y, target)
    out = {
        "n": X.shape[0],
        "n_features": X.shape[1],
        "ndim": np.ndim(Y),
        "gram": weighted_gram(X, None, fit_intercept=fit_intercept),
        "rhs": np.asarray(_augment_x(X, fit_intercept).T @ Ye),
    }
    if fingerprints:
        out["digests"] = _fingerprints(X, Ye)
    return out


def _augment_x(X, fit_intercept):
    from .._loss import augment

    return augment(X, fit_intercept)


def _newton_kernel(X, Y, *, theta, fit_intercept, target):
    """Per-label logistic loss, gradient and Hessian ``X̃ᵀ diag(p(1−p)) X̃`` at ``theta``."""
    X, Y = _check_chunk(X, Y)
    Ye = _encode(Y, target)
    Xt = _augment_x(X, fit_intercept)
    raw = np.asarray(Xt @ theta.T)
    p = expit(raw)
    loss = -(Ye * log_expit(raw) + (1 - Ye) * log_expit(-raw)).sum(axis=0)
    gradient = np.asarray(Xt.T @ (p - Ye)).T  # (L, d̃)
    weights = p * (1 - p)
    hessian = np.stack(
        [weighted_gram(X, weights[:, c], fit_intercept=fit_intercept) for c in range(p.shape[1])]
    )
    return {"n": X.shape[0], "loss": loss, "gradient": gradient, "hessian": hessian}


def _curvature_kernel(
    X, Y, *, theta, fit_intercept, target, loss_name, curvature, shared, fingerprints
):
    """Final pass: the curvature blocks at ``theta`` (un-normalized, without penalty)."""
    from .._loss import LOSSES, curvature_factors

    X, Y = _check_chunk(X, Y)
    Ye = _encode(Y, target)
    p = X.shape[1]
    raw = np.asarray(X @ theta[:, :p].T)
    if theta.shape[1] > p:
        raw = raw + theta[:, p]
    if shared:
        grams = weighted_gram(X, None, fit_intercept=fit_intercept)[None]
    else:
        factors = curvature_factors(LOSSES[loss_name], raw, Ye, curvature)
        grams = np.stack(
            [
                weighted_gram(X, factors[:, c] ** 2, fit_intercept=fit_intercept)
                for c in range(Ye.shape[1])
            ]
        )
    out = {"n": X.shape[0], "n_features": p, "grams": grams}
    if fingerprints:
        out["digests"] = _fingerprints(X, Ye)
    return out


# ---------------------------------------------------------------------------- estimators
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


def curvature_pass(estimator, chunks, *, fingerprints=True):
    """Stage 2 of the two-stage protocol: build a fitted estimator's curvature in one pass.

    The estimator's parameters (``coef_``, ``intercept_``) must already be fitted on exactly
    the rows of ``chunks`` (by :func:`fit_streaming`, by ``fit`` on a sample that fits in
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
    )
    total = _map_reduce(chunks, kernel)
    if total["n_features"] != estimator.n_features_in_:
        raise ValueError(
            f"The chunks have {total['n_features']} features, the estimator "
            f"{estimator.n_features_in_}."
        )
    grams = total.pop("grams")
    return _install_curvature(estimator, _unstack(grams), total["n"], theta, total.get("digests"))


def _unstack(stack):
    """Yield the blocks of a (L, d, d) array and drop the stack's reference as we go."""
    for index in range(stack.shape[0]):
        yield stack[index]


def fit_streaming(estimator, chunks, *, max_iter=50, tol=1e-10, fingerprints=True):
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
    for attribute in ("coef_", "curvature_", "fingerprints_"):
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
    from ..linear_model._ridge import solve_normal_equations  # the estimators import us

    theta = solve_normal_equations(gram, total["rhs"])
    estimator.coef_, estimator.intercept_ = estimator._split_theta(theta)
    if not shared:
        _check_reiterable(chunks, "The empirical Fisher curvature")
        return curvature_pass(estimator, source, fingerprints=fingerprints)
    # X̃ᵀX̃ + αI itself (penalty included) is the curvature, as in ``fit``.
    return _install_curvature(
        estimator, [gram], total["n"], theta, total.get("digests"), penalized=True
    )


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
        import warnings

        from sklearn.exceptions import ConvergenceWarning

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
    return curvature_pass(estimator, chunks, fingerprints=fingerprints)
