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
import warnings

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from scipy.special import expit, log_expit
from sklearn.utils import check_array

from .._fingerprint import row_fingerprints
from .._loss import LOSSES, augment, curvature_factors, design_gradient, raw_scores
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
        elif key in ("colmax", "rowmax"):
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
    out["rowmax"] = _chunk_rowmax(X, fit_intercept)
    if fingerprints:
        out["digests"] = _fingerprints(X, Ye)
    return out


def row_norms(Xt):
    """Euclidean norms of the rows of a dense or sparse matrix."""
    if sp.issparse(Xt):
        return np.sqrt(np.asarray(Xt.multiply(Xt).sum(axis=1)).ravel())
    return np.sqrt(np.einsum("ij,ij->i", Xt, Xt))


def _chunk_rowmax(X, fit_intercept):
    norms = row_norms(_augment_x(X, fit_intercept))
    return float(norms.max()) if len(norms) else 0.0


def chunk_fit_state(X, Ye, raw, loss, fit_intercept, want_gram):
    """One chunk's share of the fit state that the per-request bounds need (the objective's
    data gradient, its magnitude for the round-off allowance, ``max ‖x̃_i‖`` and, when the
    curvature blocks are not it already, the unweighted Gram); summed over chunks."""
    weights = loss.gradient(raw, Ye)
    norms = row_norms(X)
    if fit_intercept:  # ‖[x, 1]‖ without forming [X, 1]
        norms = np.sqrt(norms**2 + 1.0)
    out = {
        "fit_gradient": design_gradient(X, weights, fit_intercept),
        "fit_magnitude": np.abs(weights).T @ norms,
        "rowmax": float(norms.max()) if len(norms) else 0.0,
    }
    if want_gram:
        out["bound_gram"] = weighted_gram(X, None, fit_intercept=fit_intercept)
    return out


def _augment_x(X, fit_intercept):
    return augment(X, fit_intercept)


def _weighted_gram_stack(X, weights, fit_intercept):
    """``(L, d̃, d̃)``: one weighted Gram per column of ``weights``, each written in place."""
    d = X.shape[1] + int(fit_intercept)
    check_curvature_memory([d] * weights.shape[1], np.float64, workspace_blocks=0)
    stack = np.empty((weights.shape[1], d, d))
    for c in range(weights.shape[1]):
        weighted_gram(X, weights[:, c], fit_intercept=fit_intercept, out=stack[c])
    return stack


def _newton_kernel(X, Y, *, theta, fit_intercept, target):
    """Per-label logistic loss, gradient and Hessian ``X̃ᵀ diag(p(1−p)) X̃`` at ``theta``."""
    X, Y = _check_chunk(X, Y)
    Ye = _encode(Y, target)
    Xt = _augment_x(X, fit_intercept)
    raw = np.asarray(Xt @ theta.T)
    p = expit(raw)
    loss = -(Ye * log_expit(raw) + (1 - Ye) * log_expit(-raw)).sum(axis=0)
    gradient = np.asarray(Xt.T @ (p - Ye)).T  # (L, d̃)
    hessian = _weighted_gram_stack(X, p * (1 - p), fit_intercept)
    return {"n": X.shape[0], "loss": loss, "gradient": gradient, "hessian": hessian}


def _curvature_kernel(
    X,
    Y,
    *,
    theta,
    fit_intercept,
    target,
    loss_name,
    curvature,
    shared,
    fingerprints,
    bound_gram=True,
):
    """Final pass: the curvature blocks at ``theta`` (un-normalized, without penalty)."""
    X, Y = _check_chunk(X, Y)
    Ye = _encode(Y, target)
    p = X.shape[1]
    raw = raw_scores(X, theta)
    if shared:
        grams = weighted_gram(X, None, fit_intercept=fit_intercept)[None]
    else:
        factors = curvature_factors(LOSSES[loss_name], raw, Ye, curvature)
        grams = _weighted_gram_stack(X, factors**2, fit_intercept)
    out = {"n": X.shape[0], "n_features": p, "grams": grams}
    # The fit's residual, the unweighted Gram and R for the per-request bounds.
    out.update(
        chunk_fit_state(X, Ye, raw, LOSSES[loss_name], fit_intercept, bound_gram and not shared)
    )
    if fingerprints:
        out["digests"] = _fingerprints(X, Ye)
    return out


# ---------------------------------------------------------------------------- deprecated
def curvature_pass(estimator, chunks, *, fingerprints=True):
    """Stage 2 of the two-stage protocol: build a fitted estimator's curvature in one pass.

    The estimator's parameters (``coef_``, ``intercept_``) must already be fitted on exactly
    the rows of ``chunks``; the curvature blocks, the fingerprints and ``n_samples_`` are
    rebuilt from one pass over the chunks, as one transaction of the estimator (on failure
    it is left as it was). Memory is ``O(chunk_rows·d + L·d²)``.

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
    if not hasattr(estimator, "_curvature_pass"):
        raise TypeError(f"curvature_pass needs an unlearnable estimator, got {estimator!r}.")
    return estimator._curvature_pass(chunks, fingerprints=fingerprints)


def fit_streaming(estimator, chunks, **params):
    """Deprecated: use ``estimator.fit_streaming(chunks, ...)``.

    Parameters
    ----------
    estimator : UnlearnableRidge or UnlearnableLogisticRegression
    chunks : chunk source
    **params
        ``max_iter``, ``tol``, ``fingerprints`` of the estimator's ``fit_streaming``.

    Returns
    -------
    estimator
    """
    warnings.warn(
        "sklearn_ssse.curvature.fit_streaming(model, chunks) is deprecated; call "
        "model.fit_streaming(chunks), which fits as one transaction of the model.",
        FutureWarning,
        stacklevel=2,
    )
    return estimator.fit_streaming(chunks, **params)
