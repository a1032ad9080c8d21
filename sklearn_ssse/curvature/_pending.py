"""Pending low-rank terms kept in column groups.

A request adds one group of columns to every block's pending Woodbury term: the factor rows
of its samples, either as an array or as the request's rows (shared by all blocks) with this
block's scales. Groups are appended, never copied or written, and merged only when there are
many of them; these helpers compute ``VᵀX`` and ``VC`` group by group."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["SharedRowFactors"]


class SharedRowFactors(Sequence):
    """Factors that share their rows: block ``b``'s factor rows are ``scales[:, b] * rows``.

    A multi-output linear model's curvature terms have this form: sample ``i`` contributes
    ``a_{ib}·x̃_i`` to every block ``b`` (``a = √ℓ''`` for the Hessian, ``ℓ'`` for the
    empirical Fisher). Passed to :meth:`BlockFisherInverse.prepare_change`, the pending
    columns of all blocks then keep the ``k × d`` rows once (and a scale per block)
    instead of ``L`` scaled copies; elsewhere it behaves as the list of the scaled
    factors.

    Parameters
    ----------
    rows : ndarray of shape (k, d)
    scales : ndarray of shape (k, L)
    """

    def __init__(self, rows, scales):
        # Copies: rows and scales are kept in the pending term, so they must not be the
        # caller's arrays (a later write into them would change the stored curvature).
        rows = np.array(rows, dtype=np.float64, order="C", copy=True)
        scales = np.array(scales, dtype=np.float64, copy=True)
        if rows.ndim != 2 or scales.ndim != 2 or scales.shape[0] != rows.shape[0]:
            raise ValueError(
                f"rows (k, d) and scales (k, L) must have the same k, got {rows.shape} and "
                f"{scales.shape}."
            )
        self.rows, self.scales = rows, scales

    def __len__(self):
        return self.scales.shape[1]

    def __getitem__(self, b):
        if not -len(self) <= b < len(self):
            raise IndexError(b)
        return self.rows * self.scales[:, [b]]

    @property
    def shape(self):
        return self.rows.shape


class _ScaledColumns:
    """The columns ``rowsᵀ·diag(scale)`` (a ``d × k`` group of pending columns), kept as the
    shared rows and one scale per column."""

    def __init__(self, rows, scale):
        self.rows, self.scale = rows, scale

    @property
    def shape(self):
        return (self.rows.shape[1], self.rows.shape[0])

    @property
    def nbytes(self):
        return self.scale.nbytes  # the rows are shared by every block

    def transpose_dot(self, X):
        return self.scale[:, None] * (self.rows @ X)

    def dot(self, C):
        return self.rows.T @ (self.scale[:, None] * C)

    def toarray(self):
        return self.rows.T * self.scale


#: Pending column groups kept side by side before they are concatenated (each group is a
#: request; a few groups cost a few more small products, a concatenation copies them all).
_MAX_GROUPS = 8


def _width(parts):
    return sum(P.shape[1] for P in parts)


def _columns(parts, d):
    """The column groups as one ``d × K`` array."""
    arrays = [P if isinstance(P, np.ndarray) else P.toarray() for P in parts]
    if not arrays:
        return np.zeros((d, 0))
    return arrays[0] if len(arrays) == 1 else np.hstack(arrays)


def _transpose_dot(parts, X):
    """``Vᵀ X`` for ``V`` given as column groups, shape ``(K, r)``."""
    products = [P.T @ X if isinstance(P, np.ndarray) else P.transpose_dot(X) for P in parts]
    if not products:
        return np.zeros((0, X.shape[1]))
    return products[0] if len(products) == 1 else np.vstack(products)


def _dot(parts, C):
    """``V C`` for ``V`` given as column groups (``C`` has ``K`` rows)."""
    out, start = None, 0
    for P in parts:
        stop = start + P.shape[1]
        term = P @ C[start:stop] if isinstance(P, np.ndarray) else P.dot(C[start:stop])
        if out is None:
            out = term
        else:
            out += term
        start = stop
    return out


def _merge_groups(groups, d, memo):
    """One group for several: shared rows are stacked once for all blocks (``memo``)."""
    if all(isinstance(P, _ScaledColumns) for P in groups):
        key = tuple(id(P.rows) for P in groups)
        rows = memo.get(key)
        if rows is None:  # (threads: setdefault keeps one stack for all blocks)
            rows = memo.setdefault(key, np.vstack([P.rows for P in groups]))
        return (_ScaledColumns(rows, np.concatenate([P.scale for P in groups])),)
    return (_columns(groups, d),)


def _as_groups(value):
    if value is None:
        return ()
    if isinstance(value, np.ndarray):
        return (value,) if value.shape[1] else ()
    return tuple(value)


class _Pending(tuple):
    """A block's pending term after a change: ``(V, signs, Z, capacitance, L)``, and the
    capacitance's eigenvalues once the inertia check has computed them (``eigenvalues``).

    A solve's correction is ``Z·cap⁻¹·Lᵀy`` in the frame ``y`` of the base: undamped,
    ``y = TᵀR`` and ``L = Z = TᵀV``; damped, ``y = base⁻¹R``, ``Z = base⁻¹V`` and
    ``L = V``."""

    def __new__(cls, V, signs, Z, capacitance, L):
        pending = super().__new__(cls, (V, signs, Z, capacitance, L))
        pending.eigenvalues = None
        return pending
