"""Block-diagonal curvature inverse with rank-k downdates and updates.

Each block represents the normalized matrix

    B = (1/m)·(Σ_i u_i u_iᵀ + P) + damping·I = (M + m·damping·I) / m,

where ``M = Σ_i u_i u_iᵀ + P`` is the un-normalized sum over the ``m`` samples currently
in the model. Samples that leave (or join) change ``M`` by ``∓ Σ u_i u_iᵀ``. Such changes
are kept as a pending low-rank term ``M = M₀ + V·diag(s)·Vᵀ`` (``s = ±1``) and applied
through the Woodbury identity, so a change costs one pass over the stored matrix instead
of a refactorization; the term is folded into the base once its rank exceeds
``max_pending_rank``.

The base is stored as

* ``M₀⁻¹`` explicitly when ``damping == 0`` (one matrix-matrix product per solve);
* an eigendecomposition ``M₀ = QΛQᵀ`` when ``damping > 0``: the shift ``m·damping`` changes
  with ``m``, which is not a low-rank change, but it is a change of ``Λ`` only. A solve then
  costs two passes over ``Q`` plus ``O(d²·K)`` for a pending term of rank ``K``, and
  folding costs an ``O(d³)`` eigendecomposition.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed, effective_n_jobs
from scipy import linalg
from threadpoolctl import ThreadpoolController

from ._build import (
    CurvatureMemoryError,
    _symmetrize_upper,
    _syrk,
    _too_large_message,
    available_memory,
    check_curvature_memory,
    sherman_morrison_inverse,
    weighted_gram,
)
from ._pending import (
    _MAX_GROUPS,
    SharedRowFactors,
    _as_groups,
    _columns,
    _dot,
    _merge_groups,
    _Pending,
    _ScaledColumns,
    _transpose_dot,
    _width,
)

__all__ = ["BlockFisherInverse", "CurvatureError", "CurvatureMemoryError"]


class CurvatureError(np.linalg.LinAlgError, ValueError):
    """A curvature block is singular, indefinite or ill-conditioned for the requested operation."""


_POOLS = {}
_POOLS_GUARD = threading.Lock()


def _forget_pools_in_child():
    # A forked child has the pools but not their threads: it must start its own.
    global _POOLS_GUARD, _BLAS_LIMIT_GUARD
    _POOLS.clear()
    _POOLS_GUARD = threading.Lock()
    _BLAS_LIMIT.update(users=0, limiter=None, controller=None)
    _BLAS_LIMIT_GUARD = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_in_child)


def _pool(workers):
    with _POOLS_GUARD:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="sklearn_ssse")
        return _POOLS[workers]


_BLAS_LIMIT = {"users": 0, "limiter": None, "controller": None}
_BLAS_LIMIT_GUARD = threading.Lock()


@contextlib.contextmanager
def _blas_threads(limit):
    """BLAS limited to ``limit`` threads while any request's per-block threads run.

    The limit is process-wide (threadpoolctl): overlapping requests share one limiter, set
    by the first and restored, to the original values, by the last (nested
    ``threadpool_limits`` contexts left out of order would restore each other's limit)."""
    with _BLAS_LIMIT_GUARD:
        if _BLAS_LIMIT["users"] == 0:
            if _BLAS_LIMIT["controller"] is None:
                # Inspecting the loaded libraries reads /proc (~4 ms): once per process.
                _BLAS_LIMIT["controller"] = ThreadpoolController()
            _BLAS_LIMIT["limiter"] = _BLAS_LIMIT["controller"].limit(limits=limit, user_api="blas")
        _BLAS_LIMIT["users"] += 1
    try:
        yield
    finally:
        with _BLAS_LIMIT_GUARD:
            _BLAS_LIMIT["users"] -= 1
            if _BLAS_LIMIT["users"] == 0:
                _BLAS_LIMIT["limiter"].restore_original_limits()
                _BLAS_LIMIT["limiter"] = None


#: Blocks from this size on are changed one per thread (see ``_blockwise``).
_THREADED_BLOCK_SIZE = 1024


@dataclass
class _Block:
    """State of one block; ``size`` is its dimension ``d``.

    Pending columns are kept in groups, one per request (arrays, or a request's shared rows
    and this block's scales), so that a request appends its own columns and never copies
    the earlier ones; ``Z`` (the base inverse times them, when ``damping == 0``) follows
    the same grouping. No array of a block is written in place."""

    size: int
    inverse: np.ndarray | None = None  # M₀⁻¹ (damping == 0)
    eigvecs: np.ndarray | None = None  # Q (damping > 0)
    eigvals: np.ndarray | None = None  # Λ (damping > 0)
    V: tuple = ()  # pending column groups, (d, k_j) each
    signs: np.ndarray = None  # (K,) +1 join, -1 leave
    Z: tuple | None = None  # M₀⁻¹V per group (damping == 0)
    capacitance: np.ndarray | None = None  # diag(s) + VᵀM₀⁻¹V (damping == 0)
    ZtZ: np.ndarray | None = None  # ZᵀZ (damping == 0), for the trace of the inverse
    base_trace: float | None = None  # tr(M₀⁻¹) (damping == 0), read once per base

    def __post_init__(self):
        self.V = _as_groups(self.V)
        if self.signs is None:
            self.signs = np.zeros(0)
        if self.inverse is not None:
            self.Z = () if self.Z is None else _as_groups(self.Z)
            if self.capacitance is None or not self.Z:
                self.capacitance = np.zeros((0, 0))
            if self.ZtZ is None:
                Z = _columns(self.Z, self.size)
                self.ZtZ = Z.T @ Z
            if self.base_trace is None:
                # the diagonal of a d × d array is d reads a page apart: once, not per request
                self.base_trace = float(np.trace(self.inverse, dtype=np.float64))

    def __setstate__(self, state):
        # Format 1 kept the pending term as single arrays and no ZᵀZ.
        self.__dict__.update(state)
        self.__dict__.setdefault("ZtZ", None)
        self.__dict__.setdefault("base_trace", None)
        self.__post_init__()

    @property
    def rank(self):
        return _width(self.V)

    @property
    def nbytes(self):
        arrays = (self.inverse, self.eigvecs, self.eigvals, self.signs, self.capacitance, self.ZtZ)
        groups = self.V + (self.Z or ())
        return sum(a.nbytes for a in arrays if a is not None) + sum(P.nbytes for P in groups)

    @property
    def dtype(self):
        return (self.inverse if self.inverse is not None else self.eigvecs).dtype


@dataclass
class CurvatureChange:
    """A prepared (validated, not yet applied) change of samples in a :class:`BlockFisherInverse`.

    Obtain it from :meth:`BlockFisherInverse.prepare_change`; solve against the changed
    matrix with ``solve(R, change=...)`` and make it permanent with ``apply``.
    """

    n_samples: int
    blocks: list = field(default_factory=list)  # per block: (V, signs, Z, capacitance) after
    solutions: list | None = None  # B_b⁻¹R_b after the change, if prepared with ``rhs``
    # per block, the relative residual of ``solutions`` after refinement (see
    # :func:`_refine_woodbury`); 0 for a block without a low-rank term
    residuals: list | None = None


def _as_dense_factor(U, dtype):
    U = U.toarray() if sp.issparse(U) else np.asarray(U)
    if U.ndim != 2:
        raise ValueError(f"Each block's factor must be 2-D (k, d), got shape {U.shape}.")
    return np.ascontiguousarray(U, dtype=dtype)


class BlockFisherInverse:
    """Inverse of a block-diagonal curvature matrix built from per-sample factors.

    Block ``b`` stands for ``B_b = (1/m)·(Σ_i u_{b,i} u_{b,i}ᵀ + diag(P_b)) + damping·I``,
    where ``u_{b,i}`` is sample ``i``'s factor for that block (its gradient for the empirical
    Fisher, ``sqrt(h_i)·x̃_i`` for a generalized linear model's Hessian), ``P_b`` the penalty's
    Hessian diagonal and ``m`` the current number of samples.

    Parameters
    ----------
    damping : float, default=0.0
        The paper's λ, added after normalization (``λ·I``).
    method : {"cholesky", "sherman-morrison"}, default="cholesky"
        How blocks are built: a ``?syrk`` Gram plus a Cholesky inverse, or the paper's
        recurrence (Eq. 3) run in Woodbury chunks. Both give the same matrix.
    batch_size : int, default=1
        With ``method="sherman-morrison"``, average gradients over consecutive mini-batches
        of this size first (the paper uses 10); ``m`` then counts mini-batches.
    chunk_size : int, default=256
        Rank of each Woodbury step of the recurrence.
    dtype : {"float64", "float32"}, default="float64"
        Storage precision of the blocks. Small matrices (capacitances) stay in float64.
    n_jobs : int, default=None
        Threads for the per-block work. Building: blocks in parallel with joblib (threads
        unless ``joblib.parallel_config`` says otherwise; BLAS is already multi-threaded, so
        this pays for many small blocks). Changes and solves: ``None`` changes blocks of
        1,024 parameters or more one per core, each with single-threaded BLAS (a product
        with a few hundred columns runs faster so than on a multi-threaded BLAS, and each
        thread's small operations overlap the other's product), smaller ones in the calling
        thread; an integer sets the number of threads.
    max_pending_rank : int, default=256
        Rank of pending downdates/updates above which they are folded into the base.

    Attributes
    ----------
    n_samples_ : int
        Current normalization count ``m``.
    block_sizes_ : list of int
    n_blocks_ : int
    """

    def __init__(
        self,
        *,
        damping=0.0,
        method="cholesky",
        batch_size=1,
        chunk_size=256,
        dtype="float64",
        n_jobs=None,
        max_pending_rank=256,
    ):
        self.damping = damping
        self.method = method
        self.batch_size = batch_size
        self.chunk_size = chunk_size
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.max_pending_rank = max_pending_rank

    # ------------------------------------------------------------------ building
    def _check_params(self):
        if not (np.isfinite(self.damping) and self.damping >= 0):
            raise ValueError(f"damping must be a finite number >= 0, got {self.damping!r}.")
        if self.method not in ("cholesky", "sherman-morrison"):
            raise ValueError(
                f"method must be 'cholesky' or 'sherman-morrison', got {self.method!r}."
            )
        if np.dtype(self.dtype) not in (np.float64, np.float32):
            raise ValueError(f"dtype must be float64 or float32, got {self.dtype!r}.")
        if self.batch_size < 1 or self.chunk_size < 1:
            raise ValueError("batch_size and chunk_size must be >= 1.")
        if self.batch_size > 1 and self.method != "sherman-morrison":
            raise ValueError("batch_size > 1 is defined for method='sherman-morrison' only.")
        return np.dtype(self.dtype)

    def _parallel(self, function, items):
        if self.n_jobs in (None, 1) or len(items) <= 1:
            return [function(*item) for item in items]
        return Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(function)(*item) for item in items
        )

    def _blockwise(self, function, items, *, light=False):
        """Per-block work of a change or a solve, in threads with single-threaded BLAS when
        the blocks are large: a ``d × k`` product runs below the square-GEMM rate on a
        multi-threaded BLAS, one product per core does not, and each thread's small
        operations overlap the other's product. ``light`` work (no pass over a block) stays
        in the calling thread unless ``n_jobs`` asks otherwise."""
        workers = 1 if light and self.n_jobs is None else self._block_workers(len(items))
        if workers == 1:
            return [function(*item) for item in items]
        cores = max(1, effective_n_jobs(-1))
        with _blas_threads(max(1, cores // workers)):
            # A standing pool: joblib's per-call pool costs ~20 ms, a whole small request.
            futures = [_pool(workers).submit(function, *item) for item in items]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:  # a refused block refuses the change: stop the rest
                    future.cancel()
                raise

    def _block_workers(self, n_items):
        if n_items < 2:
            return 1
        if self.n_jobs is not None:
            return max(1, min(effective_n_jobs(self.n_jobs), n_items))
        if max(blk.size for blk in self.blocks_) < _THREADED_BLOCK_SIZE:
            return 1
        return max(1, min(effective_n_jobs(-1), n_items))

    @staticmethod
    def _penalties(penalty, sizes):
        if penalty is None:
            return [np.zeros(d) for d in sizes]
        penalty = [np.asarray(p, dtype=np.float64) for p in _as_block_list(penalty, sizes)]
        for p, d in zip(penalty, sizes):
            if p.shape != (d,) or np.any(p < 0) or not np.all(np.isfinite(p)):
                raise ValueError(f"Each penalty must be a finite non-negative vector of size {d}.")
        return penalty

    def fit(self, factors, *, penalty=None):
        """Build every block from per-sample factors.

        Parameters
        ----------
        factors : sequence of {ndarray, sparse matrix} of shape (n, d_b), or ndarray (L, n, d)
            Block ``b``'s factor rows ``u_{b,i}``; every block has the same ``n``.
        penalty : sequence of ndarray of shape (d_b,) or ndarray (d,), default=None
            Diagonal of ``P_b``; a single vector is shared by all blocks.

        Returns
        -------
        self
        """
        dtype = self._check_params()
        factors = list(factors)
        counts = {U.shape[0] for U in factors}
        if len(counts) != 1:
            raise ValueError(f"All blocks need the same number of rows, got {sorted(counts)}.")
        n = counts.pop()
        sizes = [U.shape[1] for U in factors]
        # Dense blocks whose d² does not fit fail here, clearly (see MatrixFreeInverse).
        check_curvature_memory(sizes, dtype, workspace_blocks=1)
        penalties = self._penalties(penalty, sizes)
        if self.method == "sherman-morrison":
            m = -(-n // self.batch_size)

            def build(U, p):
                U = U.toarray() if sp.issparse(U) else U
                B_inv = sherman_morrison_inverse(
                    U,
                    damping=self.damping,
                    penalty=p,
                    batch_size=self.batch_size,
                    chunk_size=self.chunk_size,
                    dtype=dtype,
                )
                return self._block_from_normalized_inverse(B_inv, m)

            self.blocks_ = self._parallel(build, list(zip(factors, penalties)))
            self.n_samples_ = m
            return self

        def gram(U, p):
            G = weighted_gram(U, dtype=dtype)
            G.flat[:: G.shape[0] + 1] += p.astype(dtype)
            return G

        if self.n_jobs in (None, 1):
            grams = (gram(U, p) for U, p in zip(factors, penalties))  # one block at a time
        else:
            grams = self._parallel(gram, list(zip(factors, penalties)))
        return self.fit_gram(grams, n_samples=n)

    def fit_gram(self, grams, *, n_samples):
        """Build every block from its un-normalized matrix ``M_b = Σ_i u_i u_iᵀ + P_b``.

        Use this when the Gram matrices are cheaper to form directly (a weighted Gram of a
        design matrix, see :func:`sklearn_ssse.curvature.weighted_gram`).

        Parameters
        ----------
        grams : iterable of ndarray of shape (d_b, d_b)
            Symmetric positive semi-definite matrices (definite when ``damping == 0``).
            They may be overwritten. A generator is consumed one block at a time and each
            block is factored in place, so peak memory is the stored blocks plus one.
        n_samples : int
            The number ``m`` of samples summed in each ``M_b``.

        Returns
        -------
        self
        """
        dtype = self._check_params()
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}.")

        def check_and_factor(b, G):
            if G.ndim != 2 or G.shape[0] != G.shape[1]:
                raise ValueError(f"Block {b} is not a square matrix: shape {G.shape}.")
            if not np.all(np.isfinite(G)):
                raise ValueError(f"Block {b} contains NaN or infinity.")
            return self._factor(b, G, dtype)

        blocks = []
        try:
            if isinstance(grams, (list, tuple)) and self.n_jobs not in (None, 1):
                blocks = self._parallel(check_and_factor, list(enumerate(grams)))
            else:
                # One block at a time: a generator's gram is released once it is factored.
                for b, G in enumerate(grams):
                    blocks.append(check_and_factor(b, G))
        except CurvatureMemoryError:
            raise
        except MemoryError as error:
            sizes = [blk.size for blk in blocks] or [1]
            raise CurvatureMemoryError(
                f"Out of memory after {len(blocks)} curvature block(s). "
                + _too_large_message(
                    sum(blk.nbytes for blk in blocks), available_memory() or 0, sizes, dtype
                )
            ) from error
        if not blocks:
            raise ValueError("fit_gram needs at least one block.")
        self.blocks_ = blocks
        self.n_samples_ = int(n_samples)
        return self

    def _factor(self, b, G, dtype):
        G = np.asarray(G, dtype=dtype)
        d = G.shape[0]
        if self.damping == 0:
            # G is symmetric, so its Fortran-ordered view G.T is the same matrix: LAPACK then
            # factors and inverts it in place (the caller's gram is overwritten, as documented).
            A = G.T if G.flags.c_contiguous else np.asfortranarray(G)
            potrf, potri = linalg.get_lapack_funcs(("potrf", "potri"), (A,))
            chol, info = potrf(A, lower=False, overwrite_a=True, clean=False)
            if info != 0:
                raise CurvatureError(
                    f"Curvature block {b} is not positive definite (Cholesky failed at "
                    f"column {info}); use damping > 0 or a stronger penalty."
                )
            inverse, info = potri(chol, lower=False, overwrite_c=True)
            if info != 0:
                raise CurvatureError(f"Curvature block {b} is singular.")
            inverse = _symmetrize_upper(inverse)
            return _Block(size=d, inverse=inverse.T if inverse.flags.f_contiguous else inverse)
        # In float64 whatever the storage: the eigenvalues then carry float64's absolute
        # error u·λ_max, and storing Q in float32 perturbs B⁻¹ = QΛ⁻¹Qᵀ by a relative
        # u₃₂ in norm, independent of the condition number (one block of float64
        # workspace, released at once).
        eigvals, eigvecs = linalg.eigh(
            np.asarray(G, dtype=np.float64), overwrite_a=True, check_finite=False
        )
        if eigvals[0] < -1e-8 * max(eigvals[-1], 1.0):
            raise CurvatureError(
                f"Curvature block {b} has a negative eigenvalue {eigvals[0]:.3g}; it must be "
                "positive semi-definite."
            )
        return _Block(size=d, eigvecs=eigvecs.astype(dtype), eigvals=np.maximum(eigvals, 0))

    def _block_from_normalized_inverse(self, B_inv, m):
        """Convert ``B⁻¹`` (the recurrence's output) into the stored representation."""
        d = B_inv.shape[0]
        if self.damping == 0:
            return _Block(size=d, inverse=B_inv / m)
        mu, eigvecs = linalg.eigh(B_inv)
        # B = M/m + λI has eigenvalues 1/mu, so M has m·(1/mu − λ).
        eigvals = np.maximum(m * (1.0 / mu - self.damping), 0.0)
        return _Block(size=d, eigvecs=eigvecs.astype(B_inv.dtype), eigvals=eigvals)

    # ------------------------------------------------------------------ introspection
    def _check_fitted(self):
        if not hasattr(self, "blocks_"):
            raise AttributeError("This BlockFisherInverse is not built yet: call fit first.")

    @property
    def n_blocks_(self):
        self._check_fitted()
        return len(self.blocks_)

    @property
    def block_sizes_(self):
        self._check_fitted()
        return [blk.size for blk in self.blocks_]

    @property
    def pending_rank_(self):
        """Rank of the changes not yet folded into each block's base."""
        self._check_fitted()
        return [blk.rank for blk in self.blocks_]

    @property
    def nbytes(self):
        """Bytes held by the stored blocks (base factors and pending low-rank terms)."""
        self._check_fitted()
        shared = {
            id(P.rows): P.rows.nbytes
            for blk in self.blocks_
            for P in blk.V
            if isinstance(P, _ScaledColumns)
        }
        return int(sum(blk.nbytes for blk in self.blocks_) + sum(shared.values()))

    # ------------------------------------------------------------------ solving
    def _base_solve(self, blk, R, m):
        """``(M₀ + m·damping·I)⁻¹ R``."""
        if blk.inverse is not None:
            return _symmetric_product(blk.inverse, R.astype(blk.inverse.dtype, copy=False))
        Q = blk.eigvecs
        scaled = (Q.T @ R.astype(Q.dtype, copy=False)) / (blk.eigvals + m * self.damping)[
            :, None
        ].astype(Q.dtype)
        return Q @ scaled

    def _block_pieces(self, blk, m, extra=None, memo=None):
        """A block's pending term ``(V, s, Z, cap, ZtZ)`` (``Z = base⁻¹V`` per column group),
        with ``extra = (W, t, ZW)`` appended for a change being prepared (``ZW = base⁻¹W``
        from the same pass as the right-hand sides).

        Only new groups and small matrices are made: the block's own groups are shared,
        never copied or written (``memo`` shares merged rows between blocks)."""
        if blk.inverse is not None:
            V, s, Z, cap, ZtZ = blk.V, blk.signs, blk.Z, blk.capacitance, blk.ZtZ
        else:
            Vc = _columns(blk.V, blk.size)
            if Vc.shape[1]:
                Zc = self._base_solve(blk, Vc, m).astype(np.float64)
                V, Z, cap = (Vc,), (Zc,), np.diag(blk.signs) + Vc.T @ Zc
            else:
                V, Z, cap = (), (), np.zeros((0, 0))
            s, ZtZ = blk.signs, None
        if extra is None:
            return _Pending(V, s, Z, cap, ZtZ)
        W, t, ZW = extra
        cross = _transpose_dot(V, ZW)
        inner = W.T @ ZW if isinstance(W, np.ndarray) else W.transpose_dot(ZW)
        cap = np.block([[cap, cross], [cross.T, np.diag(t) + inner]])
        if ZtZ is not None:
            zz = _transpose_dot(Z, ZW)
            ZtZ = np.block([[ZtZ, zz], [zz.T, ZW.T @ ZW]])
        V, Z = V + (W,), Z + (ZW,)
        if len(V) > _MAX_GROUPS:
            V = _merge_groups(V, blk.size, {} if memo is None else memo)
            Z = (_columns(Z, blk.size),)
        return _Pending(V, np.concatenate([s, t]), Z, cap, ZtZ)

    @staticmethod
    def _woodbury_apply(ZR, V, Z, cap, R_rhs_proj):
        """``base⁻¹R − Z·cap⁻¹·(Vᵀ base⁻¹R)``; ``R_rhs_proj = Vᵀ base⁻¹R``."""
        if not _width(V):
            return ZR
        coeffs = linalg.solve(cap, R_rhs_proj, assume_a="sym", check_finite=False)
        return ZR - _dot(Z, coeffs)

    def solve(self, R, *, change=None):
        """Return ``B_b⁻¹ R_b`` for every block, optionally for the matrix after ``change``.

        Parameters
        ----------
        R : sequence of ndarray of shape (d_b,) or (d_b, r), or ndarray (L, d, r)
            Right-hand sides, any number per block, solved in one pass over each block.
        change : CurvatureChange, default=None
            Solve with the matrix as it would be after :meth:`apply` of this change (used
            for leave-``S``-out curvature), without modifying anything.

        Returns
        -------
        list of ndarray, or ndarray if ``R`` was an ndarray
        """
        self._check_fitted()
        as_array = isinstance(R, np.ndarray)
        Rs = list(R)
        if len(Rs) != len(self.blocks_):
            raise ValueError(
                f"Expected right-hand sides for {len(self.blocks_)} blocks, got {len(Rs)}."
            )
        if change is not None and len(change.blocks) != len(self.blocks_):
            raise ValueError("This change was prepared for another BlockFisherInverse.")
        m = self.n_samples_ if change is None else change.n_samples
        Rs = [np.asarray(Rb, dtype=np.float64) for Rb in Rs]
        for b, (blk, Rb) in enumerate(zip(self.blocks_, Rs)):
            if Rb.shape[0] != blk.size:
                raise ValueError(
                    f"Right-hand side of block {b} has {Rb.shape[0]} rows, expected {blk.size}."
                )

        def solve_block(b, blk, Rb):
            vector = Rb.ndim == 1
            Rb = Rb[:, None] if vector else Rb
            pending = self._block_pieces(blk, m) if change is None else change.blocks[b]
            V, _, Z, cap, _ = pending
            ZR = self._base_solve(blk, Rb, m).astype(np.float64)
            x = m * self._woodbury_apply(ZR, V, Z, cap, _transpose_dot(V, ZR))
            return x[:, 0] if vector else x

        items = [(b, blk, Rb) for b, (blk, Rb) in enumerate(zip(self.blocks_, Rs))]
        out = self._blockwise(solve_block, items)
        return np.stack(out) if as_array else out

    def inverse_trace(self, *, change=None):
        """``tr(B_b⁻¹)`` per block (damping 0), optionally after ``change``, without a pass
        over the blocks: ``m·(tr(M₀⁻¹) − tr(cap⁻¹ZᵀZ))`` from the stored inverse's diagonal
        and the pending term's ``K × K`` matrices.

        Returns
        -------
        traces : ndarray of shape (n_blocks,)
        rounding : ndarray of shape (n_blocks,)
            A bound of the round-off of each trace, ``u`` the storage precision's: the
            summation's ``64·u·(|base| + |pending|)`` and the capacitance's round-off
            amplified by its solve, ``64·(d + K)·u·max(‖cap‖, 1)·‖cap⁻¹‖²·tr(ZᵀZ)``, times
            ``m``.
        """
        self._check_fitted()
        if any(blk.inverse is None for blk in self.blocks_):
            raise ValueError("inverse_trace needs undamped blocks (damping == 0).")
        m = self.n_samples_ if change is None else change.n_samples

        def trace_block(b, blk):
            pieces = self._block_pieces(blk, m) if change is None else change.blocks[b]
            _, _, _, cap, ZtZ = pieces
            base = blk.base_trace
            u = np.finfo(blk.inverse.dtype).eps
            pending = amplified = 0.0
            if cap.shape[0]:
                pending = float(np.trace(linalg.solve(cap, ZtZ, assume_a="sym")))
                eigvals = getattr(pieces, "eigenvalues", None)
                if eigvals is None:
                    eigvals = np.linalg.eigvalsh((cap + cap.T) / 2)
                # The capacitance carries the round-off of VᵀZ (and of Z = M₀⁻¹V in the
                # storage precision), ‖E‖ ≲ (d + K)·u·max(‖cap‖, 1); the solve amplifies it
                # to ‖E‖·‖cap⁻¹‖²·tr(ZᵀZ), large when a change nearly empties a direction.
                smallest = float(np.min(np.abs(eigvals)))
                size = blk.size + cap.shape[0]
                perturbation = 64 * size * u * max(float(np.max(np.abs(eigvals))), 1.0)
                amplified = perturbation * float(np.trace(ZtZ)) / smallest**2
            rounding = 64 * u * (abs(base) + abs(pending)) + amplified
            return m * (base - pending), m * rounding

        # Without a pass over the blocks this is light unless the pending rank is large.
        if change is None:
            ranks = [blk.rank for blk in self.blocks_]
        else:
            ranks = [cap.shape[0] for _, _, _, cap, _ in change.blocks]
        light = max(ranks, default=0) < 64
        traces = self._blockwise(trace_block, list(enumerate(self.blocks_)), light=light)
        return np.array([t for t, _ in traces]), np.array([r for _, r in traces])

    # ------------------------------------------------------------------ changes
    def prepare_change(self, factors, *, sign=-1, rhs=None, n_samples=None):
        """Validate and precompute a rank-k change without modifying the inverse.

        Parameters
        ----------
        factors : sequence of {ndarray, sparse matrix} of shape (k, d_b), or SharedRowFactors
            The factor rows of the samples leaving (``sign=-1``) or joining (``sign=+1``),
            one array per block, in the same convention as :meth:`fit`. With
            :class:`SharedRowFactors` the pending term keeps the rows once for all blocks.
        sign : {-1, +1}, default=-1
        rhs : sequence of ndarray of shape (d_b,) or (d_b, r), default=None
            Right-hand sides to solve against the changed matrix in the same pass over each
            block as the change itself (one matrix product with ``[factors, rhs]`` instead
            of two passes); the result, equal to ``solve(rhs, change=change)``, is stored in
            ``change.solutions``.
        n_samples : int, default=None
            Number of samples the factor rows belong to (the change of ``n_samples_``).
            ``None``: one sample per row. A coupled loss gives several rows per sample (the
            columns of the factor of its curvature term, e.g. ``K`` for softmax).

        Returns
        -------
        CurvatureChange

        Raises
        ------
        CurvatureError
            If the changed blocks would not be positive definite (for example, removing the
            only samples that made a direction identifiable).
        """
        self._check_fitted()
        if sign not in (-1, 1):
            raise ValueError(f"sign must be -1 or +1, got {sign!r}.")
        shared = factors if isinstance(factors, SharedRowFactors) else None
        if shared is None:
            factors = list(factors)
        if len(factors) != len(self.blocks_):
            raise ValueError(
                f"Expected factors for {len(self.blocks_)} blocks, got {len(factors)}."
            )
        if shared is None:
            ks = {U.shape[0] for U in factors}
            if len(ks) != 1:
                raise ValueError(f"All blocks need the same number of rows, got {sorted(ks)}.")
            k = ks.pop()
        else:
            k = shared.rows.shape[0]
            if not (np.all(np.isfinite(shared.rows)) and np.all(np.isfinite(shared.scales))):
                raise ValueError("The factors contain NaN or infinity.")
        if n_samples is not None and int(n_samples) < 0:
            raise ValueError(f"n_samples must be a count >= 0, got {n_samples!r}.")
        m_new = self.n_samples_ + sign * (k if n_samples is None else int(n_samples))
        if m_new < 1:
            raise ValueError(
                f"Removing {k} samples from {self.n_samples_} would leave none; refit instead."
            )
        if rhs is not None:
            rhs = list(rhs)
            if len(rhs) != len(self.blocks_):
                raise ValueError(
                    f"Expected right-hand sides for {len(self.blocks_)} blocks, got {len(rhs)}."
                )
        memo = {}
        sign_columns = np.full(k, float(sign))

        def prepare_block(b, blk):
            if shared is None:
                W = _as_dense_factor(factors[b], np.float64).T  # (d, k)
                group = W
            else:
                W = shared.rows.T * shared.scales[:, b]  # (d, k), for this block's product
                group = _ScaledColumns(shared.rows, np.ascontiguousarray(shared.scales[:, b]))
            if W.shape[0] != blk.size:
                raise ValueError(
                    f"Factor of block {b} has {W.shape[0]} columns, expected {blk.size}."
                )
            if shared is None and not np.all(np.isfinite(W)):
                raise ValueError(f"Factor of block {b} contains NaN or infinity.")
            Rb = vector = None
            if rhs is not None:
                Rb = np.asarray(rhs[b], dtype=np.float64)
                vector = Rb.ndim == 1
                Rb = Rb[:, None] if vector else Rb
                if Rb.shape[0] != blk.size:
                    raise ValueError(
                        f"Right-hand side of block {b} has {Rb.shape[0]} rows, expected {blk.size}."
                    )
            t = sign_columns
            # New columns (and right-hand sides) go through the base in one matrix product.
            old = None if blk.inverse is not None else _columns(blk.V, blk.size)
            width = k if old is None else old.shape[1] + k
            # A gradient sum of the changed samples usually lies in the span of their factor
            # columns (both are multiples of the same rows x̃_i): then base⁻¹R = base⁻¹W·c
            # and the pass over the block carries k columns instead of k + r.
            in_span = _span_coefficients(W, Rb) if Rb is not None else None
            pieces = [W] if old is None else [old, W]
            if Rb is not None and in_span is None:
                pieces.append(Rb)
            cols = np.empty((blk.size, sum(P.shape[1] for P in pieces)), dtype=blk.dtype, order="F")
            start = 0
            for P in pieces:
                cols[:, start : start + P.shape[1]] = P
                start += P.shape[1]
            solved = self._base_solve(blk, cols, m_new).astype(np.float64, copy=False)
            del cols
            ZR = None
            if in_span is not None:
                ZR = solved[:, width - k : width] @ in_span
            elif Rb is not None:
                ZR = solved[:, width:]
            if old is None:
                pending = self._block_pieces(blk, m_new, extra=(group, t, solved[:, :k]), memo=memo)
            else:
                # With damping the shift m·λ changes, so base⁻¹ of old columns is recomputed.
                Vall = np.hstack([old, W])
                sall = np.concatenate([blk.signs, t])
                Z = np.ascontiguousarray(solved[:, :width])
                pending = _Pending((Vall,), sall, (Z,), np.diag(sall) + Vall.T @ Z)
            V, s, Z, cap, _ = pending
            pending.eigenvalues = self._check_definite(b, s, cap)
            if Rb is None:
                return pending, None, None
            x = self._woodbury_apply(ZR, V, Z, cap, _transpose_dot(V, ZR))
            x, residual = _refine_woodbury(x, ZR, V, s, Z, cap)
            x = m_new * x
            return pending, (x[:, 0] if vector else x), residual

        done = self._blockwise(prepare_block, list(enumerate(self.blocks_)))
        blocks = [pending for pending, _, _ in done]
        solutions = None if rhs is None else [x for _, x, _ in done]
        residuals = None if rhs is None else [r for _, _, r in done]
        return CurvatureChange(
            n_samples=m_new, blocks=blocks, solutions=solutions, residuals=residuals
        )

    @staticmethod
    def _check_definite(b, signs, cap):
        """Haynsworth inertia: base + V·diag(s)·Vᵀ is positive definite iff the capacitance
        ``diag(s) + Vᵀ base⁻¹ V`` has exactly as many negative eigenvalues as ``s`` has −1."""
        if cap.shape[0] == 0:
            return np.zeros(0)
        eigvals = np.linalg.eigvalsh((cap + cap.T) / 2)
        scale = max(np.abs(eigvals).max(), 1.0)
        negatives = int(np.sum(eigvals < 0))
        if negatives != int(np.sum(signs < 0)) or np.min(np.abs(eigvals)) < 1e-12 * scale:
            raise CurvatureError(
                f"After this change curvature block {b} would be singular or indefinite: the "
                "remaining samples do not determine the parameters. Use damping > 0 or refit."
            )
        return eigvals

    def apply(self, change):
        """Make a prepared change permanent. Cannot fail half-way: the new state is assigned
        block by block from arrays computed in :meth:`prepare_change`, and folding a pending
        term into the base leaves each block's matrix unchanged."""
        self._check_fitted()
        if len(change.blocks) != len(self.blocks_):
            raise ValueError("This change was prepared for another BlockFisherInverse.")
        for blk, (V, s, Z, cap, ZtZ) in zip(self.blocks_, change.blocks):
            blk.V, blk.signs = V, s
            if blk.inverse is not None:
                blk.Z, blk.capacitance, blk.ZtZ = Z, cap, ZtZ
        self.n_samples_ = change.n_samples
        for blk in self.blocks_:
            if blk.rank > self.max_pending_rank:
                try:
                    self._fold(blk)
                except (MemoryError, np.linalg.LinAlgError, ValueError):
                    # Folding changes the representation, never the matrix, and assigns
                    # nothing until it has succeeded: keep the pending term (still exact)
                    # rather than fail a change that is already applied.
                    pass
        return self

    def downdate(self, factors):
        """Remove samples: ``M ← M − Σ u uᵀ``, ``m ← m − k``. Returns self."""
        return self.apply(self.prepare_change(factors, sign=-1))

    def update(self, factors):
        """Add samples: ``M ← M + Σ u uᵀ``, ``m ← m + k``. Returns self."""
        return self.apply(self.prepare_change(factors, sign=+1))

    def fold_pending(self):
        """Fold every block's pending low-rank term into its base (the matrices stay the
        same; the pending columns, and with them the factor rows of the changed samples, are
        dropped). Returns self."""
        self._check_fitted()
        for blk in self.blocks_:
            if blk.rank:
                self._fold(blk)
        return self

    def _fold(self, blk):
        if blk.inverse is not None:
            Z = _columns(blk.Z, blk.size)
            blk.inverse = _fold_woodbury(blk.inverse, Z, blk.capacitance)
            blk.Z, blk.capacitance, blk.ZtZ = (), np.zeros((0, 0)), np.zeros((0, 0))
            blk.base_trace = float(np.trace(blk.inverse, dtype=np.float64))
        else:
            Q = blk.eigvecs.astype(np.float64)
            V = _columns(blk.V, blk.size)
            M = (Q * blk.eigvals) @ Q.T + (V * blk.signs) @ V.T
            eigvals, eigvecs = linalg.eigh(M, overwrite_a=True, check_finite=False)
            blk.eigvecs, blk.eigvals = eigvecs.astype(blk.dtype), np.maximum(eigvals, 0.0)
        blk.V = ()
        blk.signs = np.zeros(0)

    # ------------------------------------------------------------------ dense views
    def to_dense(self):
        """Return the dense matrices ``B_b`` (for checks; ``O(d³)`` for damped blocks)."""
        return [np.linalg.inv(Binv) for Binv in self.inverse_dense()]

    def inverse_dense(self):
        """Return the dense inverses ``B_b⁻¹`` (``d`` solves per block; for checks)."""
        self._check_fitted()
        return self.solve([np.eye(blk.size) for blk in self.blocks_])


def _fold_woodbury(inverse, Z, capacitance):
    """``M₀⁻¹ − Z·cap⁻¹·Zᵀ`` as a new symmetric array, by two symmetric rank-r updates.

    With ``cap = QΛQᵀ`` and ``Y = Z·Q·|Λ|^{-1/2}``, ``Z·cap⁻¹·Zᵀ = Σ_j sign(λ_j)·y_j y_jᵀ``:
    ``?syrk`` updates one triangle in ``d²·r`` flops, half of a ``?gemm`` with ``cap⁻¹Zᵀ``,
    and the result is symmetric by construction. A new array, so that a failure (memory)
    leaves the block as it was."""
    eigvals, Q = np.linalg.eigh((capacitance + capacitance.T) / 2)
    Y = (Z @ Q) / np.sqrt(np.abs(eigvals))
    syrk = _syrk(inverse.dtype)
    # The C-ordered copy's transpose is the same symmetric matrix, Fortran-ordered: BLAS
    # updates it in place.
    work = np.array(inverse, order="C").T
    for columns, alpha in ((eigvals > 0, -1.0), (eigvals < 0, 1.0)):
        if np.any(columns):
            factor = np.asfortranarray(Y[:, columns], dtype=inverse.dtype)
            updated = syrk(alpha, factor, beta=1.0, c=work, trans=0, lower=0, overwrite_c=1)
            if not np.shares_memory(updated, work):
                work[...] = updated
    return _symmetrize_upper(work).T


def _refine_woodbury(x, ZR, V, s, Z, cap, *, steps=2):
    """Check and refine a Woodbury solution ``x = (base + V·diag(s)·Vᵀ)⁻¹ R``.

    The base is stored as an inverse, so the residual is taken in the base-preconditioned
    form ``e = base⁻¹R − (x + Z·diag(s)·Vᵀx)`` (``Z = base⁻¹V``, ``ZR = base⁻¹R``), which
    is ``base⁻¹`` times the true residual and costs ``O(d·K)`` per column, against the
    ``O(d²)`` pass over the block the solve itself took. Round-off amplified by an
    ill-conditioned capacitance (a removal that nearly empties a direction) shows up there;
    each refinement ``x ← x + (e − Z·cap⁻¹·Vᵀe)`` solves for the error with the same
    factors. Returns the best ``x`` and its relative residual
    ``‖e‖ / (‖ZR‖ + ‖x‖ + ‖Z·diag(s)·Vᵀx‖)``.
    """
    if not _width(V):
        return x, 0.0

    def residual(x):
        w = _dot(Z, s[:, None] * _transpose_dot(V, x))
        e = ZR - x - w
        scale = np.linalg.norm(ZR) + np.linalg.norm(x) + np.linalg.norm(w)
        return e, (float(np.linalg.norm(e) / scale) if scale > 0 else 0.0)

    e, relative = residual(x)
    floor = 4 * np.sqrt(x.shape[0]) * np.finfo(np.float64).eps
    for _ in range(steps):
        if not relative > floor:
            break
        coeffs = linalg.solve(cap, _transpose_dot(V, e), assume_a="sym", check_finite=False)
        candidate = x + (e - _dot(Z, coeffs))
        e_candidate, candidate_relative = residual(candidate)
        if not candidate_relative < relative:
            break
        x, e, relative = candidate, e_candidate, candidate_relative
    return x, relative


def _symmetric_product(A, R):
    """``A @ R`` for a symmetric ``A``, streamed at memory bandwidth when ``R`` is narrow.

    BLAS ``?gemm`` with a handful of columns runs well below the speed of ``?gemv``; for one
    column use ``?gemv``, for a few use ``(Rᵀ A)ᵀ`` (row-major ``?gemm`` that walks ``A``
    once along its rows), which equals ``A R`` because ``A`` is symmetric."""
    if R.ndim == 1:
        return A @ R
    if R.shape[1] == 1:
        return (A @ R[:, 0])[:, None]
    if R.shape[1] <= 8 or R.flags.f_contiguous:
        # (also the faster form of a wide product on one thread per block, see _blockwise)
        return (np.ascontiguousarray(R.T) @ A).T
    return A @ R


def _span_coefficients(W, R, *, max_columns=8, rtol=1e-13, max_growth=1e4):
    """``C`` with ``R = W C`` to round-off (and no large cancellation in ``W C``), or None.

    Only for a few columns (``k <= max_columns``): that is where dropping the right-hand
    sides from the pass over a block pays (a narrow product runs at memory speed, so each
    column costs a full read); for wider ``W`` one more column costs ``1/k`` of the pass.
    The coefficients come from the ``k × k`` normal equations, ``O(d·k²)``; the residual
    check makes sure they reproduce ``R``.

    Parameters
    ----------
    W : ndarray of shape (d, k)
    R : ndarray of shape (d, r)

    Returns
    -------
    ndarray of shape (k, r) or None
    """
    d, k = W.shape
    if k == 0 or k > max_columns or k >= d:
        return None
    try:
        with warnings.catch_warnings():
            # An ill-conditioned W only means "use the plain product": the residual decides.
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            C = linalg.solve(W.T @ W, W.T @ R, assume_a="pos", check_finite=False)
    except (linalg.LinAlgError, ValueError):
        return None
    norm_r = np.linalg.norm(R)
    if norm_r == 0.0 or not np.all(np.isfinite(C)):
        return None
    if np.linalg.norm(R - W @ C) > rtol * norm_r:
        return None
    if np.linalg.norm(np.abs(W) @ np.abs(C)) > max_growth * norm_r:
        return None
    return C


def _symmetric_from_upper(A):
    upper = np.triu(A)
    return np.ascontiguousarray(upper + np.triu(A, 1).T)


def _as_block_list(value, sizes):
    value = value if isinstance(value, (list, tuple)) else [value] * len(sizes)
    if len(value) != len(sizes):
        raise ValueError(f"Expected {len(sizes)} penalty vectors, got {len(value)}.")
    return value
