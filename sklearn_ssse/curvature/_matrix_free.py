"""Matrix-free curvature inverse: the per-sample factors, never a ``d × d`` matrix.

When a dense block does not fit in memory (``d²`` too large, see
:class:`~sklearn_ssse.curvature.CurvatureMemoryError`), the block

    B = (1/m)·(Σ_i u_i u_iᵀ + diag(P)) + λ·I = D + (1/m)·Vᵀ diag(s) V,    D = P/m + λ

is represented by its factor rows ``V`` (``r × d``, one row per sample with ``s = +1``, plus
one row per removed sample with ``s = −1``) and applied through the Woodbury identity::

    B⁻¹ = D⁻¹ − D⁻¹Vᵀ C⁻¹ V D⁻¹,      C = m·diag(s) + V D⁻¹ Vᵀ    (r × r)

Memory is ``O(r·d + r²)`` instead of ``O(d²)``; a solve costs two passes over ``V``
(``O(r·d)`` per right-hand side) and a change of samples one ``O(r²·d + r³)`` refactoring of
``C``. It pays when ``r < d`` (fewer samples than features). ``D`` must be positive:
``damping > 0`` or a positive penalty on every coordinate (the unpenalized intercept needs
``damping > 0``). This is the representation of M-FAC (Frantar, Kurtic & Alistarh, 2021)
and the numpy counterpart of :class:`sklearn_ssse.torch.MatrixFreeFisherInverse`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy import linalg

from ._build import batch_average

__all__ = ["MatrixFreeInverse"]


@dataclass
class _FreeBlock:
    V: np.ndarray  # (r, d) factor rows
    signs: np.ndarray  # (r,)
    penalty: np.ndarray  # (d,)
    lu: tuple | None = None  # LU factors of the capacitance C

    @property
    def size(self):
        return self.V.shape[1]

    @property
    def nbytes(self):
        extra = self.lu[0].nbytes if self.lu is not None else 0
        return int(self.V.nbytes + self.signs.nbytes + self.penalty.nbytes + extra)


@dataclass
class MatrixFreeChange:
    """A prepared change of a :class:`MatrixFreeInverse` (see ``prepare_change``)."""

    n_samples: int
    blocks: list
    solutions: list | None = None


class MatrixFreeInverse:
    """Block curvature inverse stored as per-sample factors (no ``d × d`` matrix).

    The same matrix as :class:`~sklearn_ssse.curvature.BlockFisherInverse` with the same
    ``fit`` / ``solve`` / ``prepare_change`` / ``apply`` / ``downdate`` / ``update``
    interface, for blocks whose ``d²`` does not fit in memory.

    Parameters
    ----------
    damping : float, default=0.0
        The paper's λ (added after normalization). ``damping + penalty/m`` must be positive
        on every coordinate.
    batch_size : int, default=1
        Average consecutive factor rows in groups of this size first (the paper's
        mini-batches of 10); ``m`` then counts groups and so does the stored ``r``.
    dtype : {"float64", "float32"}, default="float64"
        Storage precision of the factor rows; the capacitance is float64.

    Attributes
    ----------
    n_samples_ : int
        Current normalization count ``m``.
    blocks_ : list
        One record per block (factor rows, signs, penalty, capacitance factor).
    """

    def __init__(self, damping=0.0, *, batch_size=1, dtype="float64"):
        self.damping = damping
        self.batch_size = batch_size
        self.dtype = dtype

    # ------------------------------------------------------------------ building
    def _diagonal(self, blk, m):
        D = blk.penalty / m + self.damping
        if np.any(D <= 0) or not np.all(np.isfinite(D)):
            raise ValueError(
                "The matrix-free inverse needs damping + penalty/m > 0 on every coordinate: "
                "use damping > 0 (an unpenalized intercept otherwise has none)."
            )
        return D

    def _factorize(self, b, blk, m):
        """LU factors of ``C = m·diag(s) + V D⁻¹ Vᵀ``, after an inertia check."""
        D_inv = 1.0 / self._diagonal(blk, m)
        V = blk.V.astype(np.float64, copy=False)
        C = (V * D_inv) @ V.T
        C.flat[:: C.shape[0] + 1] += m * blk.signs
        if blk.signs.size and np.any(blk.signs < 0):
            # B is positive definite iff C has exactly as many negative eigenvalues as s
            # has −1 entries (Haynsworth inertia), as in BlockFisherInverse.
            eigvals = np.linalg.eigvalsh(C)
            scale = max(np.abs(eigvals).max(), 1.0)
            negatives = int(np.sum(eigvals < 0))
            if negatives != int(np.sum(blk.signs < 0)) or np.abs(eigvals).min() < 1e-12 * scale:
                from ._block_inverse import CurvatureError

                raise CurvatureError(
                    f"After this change curvature block {b} would be singular or indefinite."
                )
        return linalg.lu_factor(C, check_finite=False) if C.shape[0] else None

    def fit(self, factors, *, penalty=None):
        """Store every block's factor rows and factor its capacitance.

        Parameters
        ----------
        factors : sequence of {ndarray, sparse matrix} of shape (n, d_b)
        penalty : sequence of ndarray of shape (d_b,) or ndarray (d,), default=None

        Returns
        -------
        self
        """
        dtype = np.dtype(self.dtype)
        if dtype not in (np.float64, np.float32):
            raise ValueError(f"dtype must be float64 or float32, got {self.dtype!r}.")
        if not (np.isfinite(self.damping) and self.damping >= 0):
            raise ValueError(f"damping must be a finite number >= 0, got {self.damping!r}.")
        factors = [U.toarray() if sp.issparse(U) else np.asarray(U) for U in factors]
        counts = {U.shape[0] for U in factors}
        if len(counts) != 1:
            raise ValueError(f"All blocks need the same number of rows, got {sorted(counts)}.")
        if penalty is None:
            penalties = [np.zeros(U.shape[1]) for U in factors]
        elif isinstance(penalty, (list, tuple)):
            penalties = [np.asarray(p, dtype=np.float64) for p in penalty]
        else:
            penalties = [np.asarray(penalty, dtype=np.float64)] * len(factors)
        blocks = []
        for U, p in zip(factors, penalties):
            V = batch_average(np.asarray(U, dtype=np.float64), self.batch_size)
            blocks.append(
                _FreeBlock(V=np.ascontiguousarray(V, dtype=dtype), signs=np.ones(len(V)), penalty=p)
            )
        m = blocks[0].V.shape[0]
        for b, blk in enumerate(blocks):
            blk.lu = self._factorize(b, blk, m)
        self.blocks_, self.n_samples_ = blocks, int(m)
        return self

    # ------------------------------------------------------------------ introspection
    @property
    def block_sizes_(self):
        return [blk.size for blk in self.blocks_]

    @property
    def nbytes(self):
        """Bytes held (factor rows and capacitance factors)."""
        return int(sum(blk.nbytes for blk in self.blocks_))

    # ------------------------------------------------------------------ solving
    def _solve_block(self, blk, R, m):
        D_inv = 1.0 / self._diagonal(blk, m)
        DR = R * D_inv[:, None]
        if blk.lu is None:
            return DR
        V = blk.V.astype(np.float64, copy=False)
        coeffs = linalg.lu_solve(blk.lu, V @ DR, check_finite=False)
        return DR - (V.T @ coeffs) * D_inv[:, None]

    def solve(self, R, *, change=None):
        """Return ``B_b⁻¹ R_b`` for every block (optionally after a prepared ``change``).

        Parameters
        ----------
        R : sequence of ndarray of shape (d_b,) or (d_b, r), or ndarray (L, d, r)
        change : MatrixFreeChange, default=None

        Returns
        -------
        list of ndarray, or ndarray if ``R`` was an ndarray
        """
        as_array = isinstance(R, np.ndarray)
        blocks = self.blocks_ if change is None else change.blocks
        m = self.n_samples_ if change is None else change.n_samples
        Rs = list(R)
        if len(Rs) != len(blocks):
            raise ValueError(f"Expected right-hand sides for {len(blocks)} blocks, got {len(Rs)}.")
        out = []
        for blk, Rb in zip(blocks, Rs):
            Rb = np.asarray(Rb, dtype=np.float64)
            vector = Rb.ndim == 1
            Rb = Rb[:, None] if vector else Rb
            if Rb.shape[0] != blk.size:
                raise ValueError(f"Right-hand side has {Rb.shape[0]} rows, expected {blk.size}.")
            x = self._solve_block(blk, Rb, m)
            out.append(x[:, 0] if vector else x)
        return np.stack(out) if as_array else out

    # ------------------------------------------------------------------ changes
    def prepare_change(self, factors, *, sign=-1, rhs=None):
        """Validate and factor a change of samples without modifying the inverse.

        Parameters
        ----------
        factors : sequence of {ndarray, sparse matrix} of shape (k, d_b)
        sign : {-1, +1}, default=-1
        rhs : sequence of ndarray, default=None
            Right-hand sides solved against the changed matrix (``change.solutions``).

        Returns
        -------
        MatrixFreeChange
        """
        if sign not in (-1, 1):
            raise ValueError(f"sign must be -1 or +1, got {sign!r}.")
        factors = [U.toarray() if sp.issparse(U) else np.asarray(U) for U in factors]
        if len(factors) != len(self.blocks_):
            raise ValueError(f"Expected factors for {len(self.blocks_)} blocks.")
        k = factors[0].shape[0]
        m_new = self.n_samples_ + sign * k
        if m_new < 1:
            raise ValueError(f"Removing {k} samples from {self.n_samples_} would leave none.")
        blocks = []
        for b, (blk, W) in enumerate(zip(self.blocks_, factors)):
            if W.shape != (k, blk.size) or not np.all(np.isfinite(W)):
                raise ValueError(f"Factor of block {b} must be finite of shape ({k}, {blk.size}).")
            new = _FreeBlock(
                V=np.vstack([blk.V, W.astype(blk.V.dtype)]),
                signs=np.concatenate([blk.signs, np.full(k, float(sign))]),
                penalty=blk.penalty,
            )
            new.lu = self._factorize(b, new, m_new)
            blocks.append(new)
        change = MatrixFreeChange(n_samples=m_new, blocks=blocks)
        if rhs is not None:
            change.solutions = self.solve(list(rhs), change=change)
        return change

    def apply(self, change):
        """Make a prepared change permanent. Returns self."""
        self.blocks_ = list(change.blocks)
        self.n_samples_ = change.n_samples
        return self

    def downdate(self, factors):
        """Remove samples (``m ← m − k``). Returns self."""
        return self.apply(self.prepare_change(factors, sign=-1))

    def update(self, factors):
        """Add samples (``m ← m + k``). Returns self."""
        return self.apply(self.prepare_change(factors, sign=+1))

    def __copy__(self):
        new = self.__class__.__new__(self.__class__)
        new.__dict__.update(self.__dict__)
        new.blocks_ = [copy.copy(blk) for blk in self.blocks_]
        return new

    # ------------------------------------------------------------------ dense views
    def to_dense(self):
        """The dense ``B_b`` (``O(d²)``; for checks on small blocks)."""
        m = self.n_samples_
        return [
            np.diag(self._diagonal(blk, m)) + (blk.V.T * blk.signs) @ blk.V / m
            for blk in self.blocks_
        ]

    def inverse_dense(self):
        """The dense ``B_b⁻¹`` (``O(d²)``; for checks on small blocks)."""
        return self.solve([np.eye(blk.size) for blk in self.blocks_])
