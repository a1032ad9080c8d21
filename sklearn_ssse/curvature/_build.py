"""Building curvature blocks: weighted Gram matrices and the Sherman-Morrison recurrence.

Every routine here works on whole row chunks with BLAS-3 calls (``?syrk``, ``?gemm``,
``?potrf``); none loops over samples in Python except :func:`sherman_morrison_inverse`
with ``chunk_size=1``, which is the paper's literal recurrence kept as a reference.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy import linalg
from scipy.linalg import blas

__all__ = [
    "CurvatureMemoryError",
    "available_memory",
    "batch_average",
    "check_curvature_memory",
    "curvature_nbytes",
    "sherman_morrison_inverse",
    "weighted_gram",
]


class CurvatureMemoryError(MemoryError, ValueError):
    """The dense ``d × d`` curvature blocks do not fit in the memory available.

    Raised before anything large is allocated (on Linux an over-committed allocation would
    otherwise succeed and the process be killed later). The message gives the sizes and the
    ways out: float32 storage, fewer blocks, or the matrix-free representation
    :class:`~sklearn_ssse.curvature.MatrixFreeInverse`.
    """


def available_memory():
    """Bytes that can be allocated without swapping, by the OS's accounting, or None.

    ``MemAvailable`` of ``/proc/meminfo`` on Linux, else :mod:`psutil` if installed, else
    None (no check is made)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # pragma: no cover - non-Linux
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover
        return None


def curvature_nbytes(sizes, dtype=np.float64):
    """Bytes of dense curvature blocks of the given sizes (``Σ d_b²·itemsize``).

    Parameters
    ----------
    sizes : sequence of int
        Block dimensions ``d_b`` (``n_features + fit_intercept``, one per label or class;
        one for ridge's shared Hessian).
    dtype : {np.float64, np.float32}, default=np.float64

    Returns
    -------
    int
    """
    itemsize = np.dtype(dtype).itemsize
    return int(sum(int(d) * int(d) * itemsize for d in sizes))


def _too_large_message(need, available, sizes, dtype):
    sizes = list(sizes)
    d = max(sizes)
    return (
        f"The dense curvature needs {need / 1e9:.3g} GB ({len(sizes)} block(s) of up to "
        f"{d:,} × {d:,} {np.dtype(dtype).name}, {d * d * np.dtype(dtype).itemsize / 1e9:.3g} "
        f"GB each, plus workspace) but only {available / 1e9:.3g} GB of memory is available. "
        "Use curvature_dtype='float32' (half the memory), fewer blocks per model (fewer "
        "labels or features), or the matrix-free representation "
        "sklearn_ssse.curvature.MatrixFreeInverse, which stores the n per-sample factors "
        "(O(n·d) memory, no d × d matrix; it pays when n < d)."
    )


def check_curvature_memory(sizes, dtype=np.float64, *, workspace_blocks=1, available=None):
    """Raise :class:`CurvatureMemoryError` if dense blocks of these sizes do not fit.

    Parameters
    ----------
    sizes : sequence of int
        Block dimensions.
    dtype : {np.float64, np.float32}, default=np.float64
    workspace_blocks : int, default=1
        Extra blocks of the largest size needed while building (one Gram being formed).
    available : int, default=None
        Bytes available; None asks the OS (:func:`available_memory`).

    Returns
    -------
    need : int
        Bytes needed.
    """
    sizes = [int(d) for d in sizes]
    if not sizes:
        return 0
    itemsize = np.dtype(dtype).itemsize
    need = curvature_nbytes(sizes, dtype) + int(workspace_blocks) * max(sizes) ** 2 * itemsize
    available = available_memory() if available is None else available
    if available is not None and need > available:
        raise CurvatureMemoryError(_too_large_message(need, available, sizes, dtype))
    return need


_CHUNK_BYTES = 32 * 2**20  # bytes of one row chunk handed to ?syrk
_MIN_CHUNK_ROWS = 512


def _default_chunk_rows(n, d, itemsize):
    """Rows per ``?syrk`` call: about 32 MiB of rows, at least 512.

    Few large calls matter for narrow matrices (each BLAS call synchronizes its threads,
    which dominates when ``d`` is small); the byte budget keeps the chunk's copy small
    next to a ``d × d`` block when ``d`` is large."""
    rows = max(_MIN_CHUNK_ROWS, _CHUNK_BYTES // max(itemsize * d, 1))
    return int(max(1, min(rows, n)))


def _syrk(dtype):
    return blas.dsyrk if np.dtype(dtype) == np.float64 else blas.ssyrk


def _symmetrize_upper(gram, strip=256):
    """Copy the upper triangle written by ``?syrk`` into the lower one, in place.

    Works in column strips so that the temporaries are ``O(strip·d)``, not ``O(d²)``."""
    d = gram.shape[0]
    for start in range(0, d, strip):
        stop = min(start + strip, d)
        diagonal = gram[start:stop, start:stop]
        diagonal[...] = np.triu(diagonal) + np.triu(diagonal, 1).T
        if stop < d:
            gram[stop:, start:stop] = gram[start:stop, stop:].T
    return gram


def _sparse_product_is_cheaper(X, d):
    """Whether ``XᵀWX`` by a sparse product beats densified row chunks and ``?syrk``.

    The sparse product costs ``Σ_i nnz_i²`` scalar updates at roughly 1/200 of the speed of
    a BLAS-3 flop, and its output is a sparse ``d × d`` matrix; the dense route costs
    ``n·d²`` flops. Text-like data (a few dozen words a row out of ``10⁵``) stay sparse;
    rows that are a few percent full, as in the Mulan sets, are densified."""
    X = sp.csr_matrix(X)
    row_nnz = np.diff(X.indptr).astype(np.float64)
    return 200.0 * float(row_nnz @ row_nnz) < X.shape[0] * float(d) * d


def weighted_gram(
    X, weights=None, *, fit_intercept=False, dtype=np.float64, chunk_rows=None, out=None
):
    """Return ``X̃ᵀ diag(weights) X̃`` with ``X̃ = [X, 1]`` if ``fit_intercept``.

    Input is processed in row chunks, each scaled by ``sqrt(weights)`` into a C-ordered
    buffer whose transpose ``?syrk`` reads without a copy, so memory is
    ``O(chunk_rows * d + d²)`` whatever ``n``. Sparse input is densified chunk by chunk,
    unless its rows are so sparse that a sparse product is cheaper.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Design matrix.
    weights : ndarray of shape (n_samples,), default=None
        Non-negative sample weights; ``None`` means all ones.
    fit_intercept : bool, default=False
        Whether to append a column of ones (the intercept's feature).
    dtype : {np.float64, np.float32}, default=np.float64
        Precision of the accumulation and of the result.
    chunk_rows : int, default=None
        Rows per BLAS call; if None, about 32 MiB of rows (at least 512).
    out : ndarray of shape (d, d), default=None
        C-contiguous array of ``dtype`` to write the result into (e.g. one block of a
        stack), instead of a new array.

    Returns
    -------
    gram : ndarray of shape (d, d)
        ``d = n_features + fit_intercept``; symmetric, C-contiguous (``out`` if given).
    """
    dtype = np.dtype(dtype)
    n, p = X.shape
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (n,):
            raise ValueError(f"weights must have shape ({n},), got {weights.shape}.")
        if np.any(weights < 0) or not np.all(np.isfinite(weights)):
            raise ValueError("weights must be finite and non-negative.")
    d = p + int(fit_intercept)
    if out is not None:
        if out.shape != (d, d) or out.dtype != dtype or not out.flags.c_contiguous:
            raise ValueError(
                f"out must be a C-contiguous {dtype} array of shape ({d}, {d}), got "
                f"{out.dtype} {out.shape}."
            )
    else:
        # A d × d result that cannot fit must fail clearly, not by over-commit.
        check_curvature_memory([d], dtype, workspace_blocks=0)
    if sp.issparse(X) and _sparse_product_is_cheaper(X, d):
        Xw = X if weights is None else sp.csr_matrix(X.multiply(weights[:, None]))
        gram = np.zeros((d, d), dtype=np.float64)
        product = (X.T @ Xw).toarray()
        # The sparse product sums in a different order for (i, j) and (j, i).
        gram[:p, :p] = (product + product.T) / 2
        if fit_intercept:
            column = np.asarray(Xw.sum(axis=0)).ravel()
            gram[:p, p] = column
            gram[p, :p] = column
            gram[p, p] = n if weights is None else weights.sum()
        if out is not None:
            out[...] = gram
            return out
        return np.ascontiguousarray(gram, dtype=dtype)
    if sp.issparse(X):
        X = sp.csr_matrix(X)  # row slices of CSR are cheap

    syrk = _syrk(dtype)
    chunk_rows = chunk_rows or _default_chunk_rows(n, d, dtype.itemsize)
    # A C-ordered output's transpose is the Fortran-ordered matrix BLAS updates in place.
    gram = np.empty((d, d), dtype=dtype, order="F") if out is None else out.T
    gram[...] = 0.0
    # C-ordered rows: the scaling writes contiguously, and ``rows.T`` is the Fortran-ordered
    # (d, m) operand of ``syrk(trans=0)``, so neither the scaling nor BLAS transposes a copy.
    block = np.empty((min(chunk_rows, max(n, 1)), d), dtype=dtype)
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        rows = block[: stop - start]
        chunk = X[start:stop]
        if sp.issparse(chunk):
            chunk = chunk.toarray()
        if weights is None:
            rows[:, :p] = chunk
            if fit_intercept:
                rows[:, p] = 1.0
        else:
            scale = np.sqrt(weights[start:stop]).astype(dtype)
            np.multiply(chunk, scale[:, None], out=rows[:, :p], casting="unsafe")
            if fit_intercept:
                rows[:, p] = scale
        updated = syrk(1.0, rows.T, beta=1.0, c=gram, trans=0, lower=0, overwrite_c=1)
        if updated is not gram and not np.shares_memory(updated, gram):
            gram[...] = updated  # f2py copied (it does not for an aligned Fortran array)
    # The Fortran-ordered result is symmetric: its transpose is the same matrix, C-ordered,
    # without a copy.
    return _symmetrize_upper(gram).T


def batch_average(factors, batch_size):
    """Average consecutive groups of ``batch_size`` rows (the last group may be smaller).

    The paper (section 4) builds the empirical Fisher from gradients averaged over
    mini-batches of 10; each average then counts as one term of the Fisher sum.

    Parameters
    ----------
    factors : ndarray of shape (n, d)
        Per-sample gradients.
    batch_size : int
        Number of consecutive rows averaged together.

    Returns
    -------
    averaged : ndarray of shape (ceil(n / batch_size), d)
    """
    factors = np.asarray(factors)
    if batch_size == 1:
        return factors
    n = factors.shape[0]
    starts = np.arange(0, n, batch_size)
    sums = np.add.reduceat(factors, starts, axis=0)
    counts = np.diff(np.append(starts, n))
    return sums / counts[:, None].astype(sums.dtype)


def sherman_morrison_inverse(
    factors,
    *,
    damping,
    penalty=None,
    n_terms=None,
    batch_size=1,
    chunk_size=256,
    dtype=np.float64,
):
    """Inverse of ``(1/N)·(Σ_j u_j u_jᵀ + diag(penalty)) + damping·I`` by the recurrence of Eq. 3.

    Starting from the inverse of ``diag(penalty)/N + damping·I``, the terms ``u_j`` are
    added ``chunk_size`` at a time with the Woodbury identity::

        F⁻¹ ← F⁻¹ − F⁻¹U (N·I + UᵀF⁻¹U)⁻¹ UᵀF⁻¹

    which equals ``chunk_size`` successive rank-1 Sherman-Morrison steps of the paper's
    Eq. 3 in exact arithmetic, at BLAS-3 speed. ``chunk_size=1`` runs the published
    rank-1 recurrence literally, one vector at a time.

    Parameters
    ----------
    factors : ndarray of shape (n, d)
        Per-sample vectors (gradients ``∇ℓ_i`` for the empirical Fisher).
    damping : float
        The paper's λ; with ``penalty`` it must make the starting matrix invertible.
    penalty : ndarray of shape (d,), default=None
        Diagonal of the penalty's Hessian ``P`` (zeros if None).
    n_terms : int, default=None
        Normalization ``N``; defaults to the number of (batch-averaged) rows.
    batch_size : int, default=1
        Average consecutive rows in groups of this size first (:func:`batch_average`).
    chunk_size : int, default=256
        Rank of each Woodbury update.
    dtype : {np.float64, np.float32}, default=np.float64

    Returns
    -------
    inverse : ndarray of shape (d, d)
    """
    dtype = np.dtype(dtype)
    U = batch_average(np.asarray(factors, dtype=np.float64), batch_size).astype(dtype, copy=False)
    n, d = U.shape
    N = float(n if n_terms is None else n_terms)
    start = np.full(d, float(damping)) if penalty is None else np.asarray(penalty) / N + damping
    if np.any(start <= 0):
        raise ValueError(
            "The Sherman-Morrison recurrence starts from diag(penalty)/N + damping·I, which "
            "must be positive definite: use damping > 0 or penalize every coordinate."
        )
    inverse = np.diag(1.0 / start).astype(dtype)
    if chunk_size == 1:
        for u in U:
            v = inverse @ u
            inverse -= np.outer(v, v) / (N + u @ v)
        return inverse
    for begin in range(0, n, chunk_size):
        chunk = U[begin : begin + chunk_size].T  # (d, c)
        projected = inverse @ chunk  # F⁻¹U
        capacitance = chunk.T @ projected
        capacitance.flat[:: capacitance.shape[0] + 1] += N
        # The capacitance is SPD (N·I plus a Gram in the F⁻¹ metric): Cholesky is safe.
        factor = linalg.cho_factor(capacitance, lower=True, check_finite=False)
        correction = linalg.cho_solve(factor, projected.T, check_finite=False)
        inverse = blas_gemm_update(inverse, projected, correction)
    return (inverse + inverse.T) / 2


def blas_gemm_update(target, left, right, alpha=-1.0):
    """Return ``target + alpha·left @ right`` computed in place by one ``?gemm`` call."""
    gemm = blas.dgemm if target.dtype == np.float64 else blas.sgemm
    if not target.flags.f_contiguous:
        # gemm writes in place only into Fortran arrays: update the (Fortran) transpose view
        # with the transposed product instead.
        result = gemm(alpha, right.T, left.T, beta=1.0, c=target.T, overwrite_c=1)
        return result.T
    return gemm(alpha, left, right, beta=1.0, c=target, overwrite_c=1)
