"""Products with a triangular factor by BLAS ``?trmm`` / ``?trmv``, outside the GIL.

A block's base inverse is kept as a triangular ``T`` with ``M₀⁻¹ = T·Tᵀ``: a request's
``Tᵀ·[factors, rhs]`` then costs ``d²·k`` flops, half of a product with the full inverse,
and a solve's two triangular passes read the block once. scipy's ``scipy.linalg.blas``
wrappers hold the GIL, so that two blocks' products would not overlap in threads; the same
BLAS routines are reached through ``scipy.linalg.cython_blas``'s exported function pointers
(ctypes releases the GIL during the call). If that lookup is unavailable the wrappers are
used instead (correct, but serialized between threads)."""

from __future__ import annotations

import ctypes

import numpy as np
from scipy.linalg import blas

__all__ = ["triangular_multiply"]

_INT = ctypes.POINTER(ctypes.c_int)
_PTR = ctypes.c_void_p
_CHAR = ctypes.c_char_p
_TRMM = ctypes.CFUNCTYPE(None, _CHAR, _CHAR, _CHAR, _CHAR, _INT, _INT, _PTR, _PTR, _INT, _PTR, _INT)
_TRMV = ctypes.CFUNCTYPE(None, _CHAR, _CHAR, _CHAR, _INT, _PTR, _INT, _PTR, _INT)
_SCALARS = {
    np.dtype(np.float64): ("d", ctypes.c_double),
    np.dtype(np.float32): ("s", ctypes.c_float),
}
_ROUTINES = {}

#: Up to this many columns, one ``?trmv`` per column: BLAS's narrow ``?trmm`` runs far below
#: memory speed (measured on OpenBLAS: 3 columns by ``?trmv`` cost what 2 by ``?trmm`` do).
_MAX_VECTOR_COLUMNS = 3


def _capsule_function(name, prototype):
    from scipy.linalg import cython_blas

    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    capsule = cython_blas.__pyx_capi__[name]
    pointer = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    if not pointer:
        raise LookupError(name)
    return prototype(pointer)


def _routines(dtype):
    """``(trmm, trmv)`` for ``dtype`` through ctypes, or ``None`` (use scipy's wrappers)."""
    if dtype not in _ROUTINES:
        prefix = _SCALARS[dtype][0]
        try:
            _ROUTINES[dtype] = (
                _capsule_function(prefix + "trmm", _TRMM),
                _capsule_function(prefix + "trmv", _TRMV),
            )
        except (ImportError, AttributeError, KeyError, LookupError, TypeError, ValueError):
            _ROUTINES[dtype] = None
    return _ROUTINES[dtype]


def _layout(T, lower, transpose):
    """BLAS flags for ``op(T)`` given ``T``'s memory order: a C-ordered ``T`` is ``Tᵀ`` in
    column-major order, triangular in the other triangle, so both flags flip."""
    if T.flags.f_contiguous:
        return lower, transpose, T
    if T.flags.c_contiguous:
        return not lower, not transpose, T.T
    raise ValueError("The triangular factor must be contiguous.")


def triangular_multiply(T, lower, X, *, transpose=False):
    """``X ← op(T)·X`` in place, ``op(T) = Tᵀ`` if ``transpose`` else ``T``.

    Parameters
    ----------
    T : ndarray of shape (d, d)
        Triangular (only the triangle named by ``lower`` is read), contiguous.
    lower : bool
    X : ndarray of shape (d,) or (d, k)
        Overwritten; Fortran-ordered (a vector: contiguous), of ``T``'s dtype.

    Returns
    -------
    X
    """
    # BLAS reads d·d elements of T and writes d·k of X whatever the arrays are: every
    # property it relies on is checked here (a wrong one would read or write past a buffer).
    T, X = np.asarray(T), np.asarray(X)
    if T.ndim != 2 or T.shape[0] != T.shape[1] or T.dtype not in _SCALARS:
        raise ValueError(f"T must be a square float32 or float64 matrix, got {T.shape} {T.dtype}.")
    dtype = T.dtype
    if X.ndim not in (1, 2) or X.dtype != dtype or X.shape[0] != T.shape[0]:
        raise ValueError(f"X must be ({T.shape[0]}, k) of dtype {dtype}, got {X.shape} {X.dtype}.")
    if X.ndim == 2 and not X.flags.f_contiguous or X.ndim == 1 and not X.flags.contiguous:
        raise ValueError("X must be Fortran-ordered.")
    if not X.flags.writeable:
        raise ValueError("X is overwritten in place: it must be writeable.")
    d = T.shape[0]
    if d == 0 or X.size == 0:
        return X
    low, trans, A = _layout(T, lower, transpose)
    uplo, op = (b"L" if low else b"U"), (b"T" if trans else b"N")
    routines = _routines(dtype)
    columns = 1 if X.ndim == 1 else X.shape[1]
    if routines is None:
        prefix = _SCALARS[dtype][0]
        trmm = getattr(blas, prefix + "trmm")
        X2 = X.reshape(d, columns, order="F")
        X2[...] = trmm(1.0, A, X2, lower=int(low), trans_a=int(trans))
        return X
    trmm, trmv = routines
    n, lda, one = ctypes.c_int(d), ctypes.c_int(A.shape[0]), ctypes.c_int(1)
    address = A.ctypes.data
    if columns <= _MAX_VECTOR_COLUMNS:
        step = X.strides[1] if X.ndim == 2 else 0
        for j in range(columns):
            trmv(uplo, op, b"N", n, address, lda, X.ctypes.data + j * step, one)
        return X
    alpha = _SCALARS[dtype][1](1.0)
    k = ctypes.c_int(columns)
    trmm(
        b"L",
        uplo,
        op,
        b"N",
        n,
        k,
        ctypes.cast(ctypes.pointer(alpha), _PTR),
        address,
        lda,
        X.ctypes.data,
        n,
    )
    return X
