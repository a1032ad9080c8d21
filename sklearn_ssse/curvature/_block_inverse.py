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

* a triangular factor ``T`` of the inverse, ``M₀⁻¹ = T·Tᵀ``, when ``damping == 0``: a
  change's ``Tᵀ·[factors, rhs]`` costs ``d²·k`` flops (half of a product with ``M₀⁻¹``) and
  a solve takes two triangular passes, one read of the block;
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
from ._triangular import triangular_multiply

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

    Undamped blocks keep the base inverse as a triangular factor ``T`` with
    ``M₀⁻¹ = T·Tᵀ`` (``lower`` says which triangle), so that a change's product
    ``Tᵀ·[factors, rhs]`` costs half the flops of one with ``M₀⁻¹``. Pending columns are kept
    in groups, one per request (arrays, or a request's shared rows and this block's
    scales), so that a request appends its own columns and never copies the earlier ones;
    ``Z`` follows the same grouping: ``TᵀV`` when undamped, in which frame the pending
    term is ``M⁻¹ = T·(I − Z·cap⁻¹·Zᵀ)·Tᵀ``. No array of a block is written in place."""

    size: int
    factor: np.ndarray | None = None  # T, M₀⁻¹ = T·Tᵀ (damping == 0)
    lower: bool = False  # T is lower (else upper) triangular
    eigvecs: np.ndarray | None = None  # Q (damping > 0)
    eigvals: np.ndarray | None = None  # Λ (damping > 0)
    V: tuple = ()  # pending column groups, (d, k_j) each
    signs: np.ndarray = None  # (K,) +1 join, -1 leave
    Z: tuple | None = None  # TᵀV per group (damping == 0)
    capacitance: np.ndarray | None = None  # diag(s) + VᵀM₀⁻¹V = diag(s) + ZᵀZ (damping == 0)
    base_trace: float | None = None  # tr(M₀⁻¹) (damping == 0)
    base_norm: float | None = None  # ‖M₀⁻¹‖₁ (damping == 0)
    #: ``cond₁(M₀) = ‖M₀‖₁·‖M₀⁻¹‖₁`` (an upper bound after a fold), which scales the round-off
    #: of the stored factor and so the allowances of the bounds of ``‖M⁻¹‖`` (damping == 0).
    base_condition: float | None = None
    #: ‖D^{1/2}·M₀⁻¹·D^{1/2}‖₁ with ``D = diag M₀`` (the equilibrated inverse's 1-norm), for
    #: the conditioning check of a fit; None when the block was not factored from ``M₀``.
    scaled_inverse_norm: float | None = None

    def __post_init__(self):
        self.V = _as_groups(self.V)
        if self.signs is None:
            self.signs = np.zeros(0)
        if self.factor is not None:
            self.Z = () if self.Z is None else _as_groups(self.Z)
            if self.capacitance is None or not self.Z:
                self.capacitance = np.zeros((0, 0))
            if self.base_trace is None or self.base_norm is None:
                self.base_trace, self.base_norm = _inverse_statistics(self.inverse)[:2]
            if self.base_condition is None:
                # (blocks from the recurrence or an older file: O(d³), once)
                self.base_condition = float(np.linalg.cond(self.inverse.astype(np.float64), 1))

    def __setstate__(self, state):
        state = dict(state)
        if state.get("inverse") is not None:
            state = _factored_state(state)
        state.pop("inverse", None)
        state.pop("ZtZ", None)
        self.__dict__.update(state)
        names = ("factor", "lower", "base_trace", "base_norm", "base_condition")
        for name in names + ("scaled_inverse_norm",):
            self.__dict__.setdefault(name, False if name == "lower" else None)
        factor = self.__dict__["factor"]
        if factor is not None:
            # A loaded file decides what BLAS later reads: refuse anything but a contiguous
            # d × d float matrix (a wrong shape would be read past its end).
            if (
                not isinstance(factor, np.ndarray)
                or factor.shape != (self.size, self.size)
                or factor.dtype not in (np.float64, np.float32)
                or not (factor.flags.f_contiguous or factor.flags.c_contiguous)
            ):
                raise ValueError(
                    f"A stored curvature block's factor must be a contiguous float matrix of "
                    f"shape ({self.size}, {self.size}); got {getattr(factor, 'shape', None)}."
                )
        self.__post_init__()

    @property
    def inverse(self):
        """The dense base inverse ``M₀⁻¹ = T·Tᵀ`` (``O(d³)``; for checks), or None when
        damped."""
        if self.factor is None:
            return None
        T = np.tril(self.factor) if self.lower else np.triu(self.factor)
        return T @ T.T

    @property
    def rank(self):
        return _width(self.V)

    @property
    def nbytes(self):
        arrays = (self.factor, self.eigvecs, self.eigvals, self.signs, self.capacitance)
        groups = self.V + (self.Z or ())
        return sum(a.nbytes for a in arrays if a is not None) + sum(P.nbytes for P in groups)

    @property
    def dtype(self):
        return (self.factor if self.factor is not None else self.eigvecs).dtype

    def half_product(self, R, *, transpose=True):
        """``TᵀR`` (or ``TR``) in float64, one triangular pass over the block, ``R`` copied
        into the storage precision."""
        X = np.array(R, dtype=self.factor.dtype, order="F", copy=True)
        triangular_multiply(self.factor, self.lower, X, transpose=transpose)
        return X.astype(np.float64, copy=False)


def _inverse_statistics(P, root=None, *, upper_only=False):
    """``(tr P, ‖P‖₁, ‖D^{1/2}·P·D^{1/2}‖₁)`` of a symmetric ``P`` (the last with
    ``root = diag(D)^{1/2}``, else None), by row panels (``|P|`` is never formed whole).

    ``upper_only``: ``P`` holds the upper triangle and zeros below; the symmetric matrix's
    column sums are then the triangle's column sums plus its row sums less the diagonal."""
    if P.flags.f_contiguous and not P.flags.c_contiguous:
        # Row panels of the transpose are contiguous; the sums are the same for Pᵀ (the
        # symmetric matrix, or the triangle read with rows and columns exchanged).
        P = P.T
    d = P.shape[0]
    trace = float(np.trace(P, dtype=np.float64))
    weights = np.ones((d, 1)) if root is None else np.column_stack([np.ones(d), root])
    sums = np.zeros((d, weights.shape[1]))
    for start in range(0, d, 512):
        stop = start + 512
        panel = np.abs(P[start:stop]).astype(np.float64, copy=False)
        sums += panel.T @ weights[start:stop]
        if upper_only:
            sums[start:stop] += panel @ weights
    if upper_only:
        sums -= np.abs(np.diag(P)).astype(np.float64)[:, None] * weights
    one_norm = float(sums[:, 0].max()) if d else 0.0
    scaled = None if root is None else (float((sums[:, 1] * root).max()) if d else 0.0)
    return trace, one_norm, scaled


def _factored_state(state):
    """A block saved by format 1 or 2 (``M₀⁻¹`` explicit, ``Z = M₀⁻¹V``) in this format:
    the Cholesky factor ``M₀⁻¹ = C·Cᵀ`` and ``Z = CᵀV``."""
    P = np.asarray(state["inverse"])
    C = linalg.cholesky(np.asarray(P, dtype=np.float64), lower=True).astype(P.dtype)
    size = P.shape[0]
    state["factor"], state["lower"] = np.asfortranarray(C), True
    groups = _as_groups(state.get("V", ()))
    state["Z"] = tuple(
        triangular_multiply(
            state["factor"],
            True,
            np.array(G if isinstance(G, np.ndarray) else G.toarray(), dtype=P.dtype, order="F"),
            transpose=True,
        ).astype(np.float64)
        for G in groups
    )
    state["base_trace"], state["base_norm"], _ = _inverse_statistics(P)
    state["base_condition"] = float(np.linalg.cond(P.astype(np.float64), 1))
    state.setdefault("size", size)
    return state


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
        check_curvature_memory(sizes, dtype, workspace_blocks=2)
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

        def check_and_factor(b, G, workspace=None):
            if G.ndim != 2 or G.shape[0] != G.shape[1]:
                raise ValueError(f"Block {b} is not a square matrix: shape {G.shape}.")
            if not np.all(np.isfinite(G)):
                raise ValueError(f"Block {b} contains NaN or infinity.")
            return self._factor(b, G, dtype, workspace)

        blocks = []
        try:
            if isinstance(grams, (list, tuple)) and self.n_jobs not in (None, 1):
                blocks = self._parallel(check_and_factor, list(enumerate(grams)))
            else:
                # One block at a time: a generator's gram is released once it is factored,
                # and one workspace (touched once) serves every block's inverse statistics.
                workspace = {}
                for b, G in enumerate(grams):
                    blocks.append(check_and_factor(b, G, workspace))
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

    def _factor(self, b, G, dtype, workspace=None):
        G = np.asarray(G, dtype=dtype)
        d = G.shape[0]
        if self.damping == 0:
            return _factored_block(b, G, workspace)
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
            P = np.asarray(B_inv / m)
            trace, norm, _ = _inverse_statistics(P)
            try:
                C = linalg.cholesky(P, lower=True, check_finite=False)
            except linalg.LinAlgError as error:
                raise CurvatureError(
                    "The recurrence's inverse is not positive definite."
                ) from error
            return _Block(
                size=d,
                factor=np.asfortranarray(C, dtype=P.dtype),
                lower=True,
                base_trace=trace,
                base_norm=norm,
                base_condition=float(np.linalg.cond(P.astype(np.float64), 1)),
            )
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
        """``(M₀ + m·damping·I)⁻¹ R`` in float64 for a damped block (an undamped one works in
        its factor's frame, see :meth:`_pending_solve`)."""
        Q = blk.eigvecs
        scaled = (Q.T @ R.astype(Q.dtype, copy=False)) / (blk.eigvals + m * self.damping)[
            :, None
        ].astype(Q.dtype)
        return (Q @ scaled).astype(np.float64, copy=False)

    def _block_pieces(self, blk, m, extra=None, memo=None):
        """A block's pending term :class:`_Pending` ``(V, s, Z, cap, L)``, with
        ``extra = (W, t, ZW)`` appended for a change being prepared (``W`` the new columns,
        ``ZW`` their image from the same pass as the right-hand sides).

        Undamped: ``Z = L = TᵀV`` (the frame ``y = TᵀR``); damped: ``Z = base⁻¹V``,
        ``L = V``. Only new groups and small matrices are made: the block's own groups are
        shared, never copied or written (``memo`` shares merged rows between blocks)."""
        if blk.factor is not None:
            V, s, Z, cap = blk.V, blk.signs, blk.Z, blk.capacitance
        else:
            Vc = _columns(blk.V, blk.size)
            if Vc.shape[1]:
                Zc = self._base_solve(blk, Vc, m)
                V, Z, cap = (Vc,), (Zc,), np.diag(blk.signs) + Vc.T @ Zc
            else:
                V, Z, cap = (), (), np.zeros((0, 0))
            s = blk.signs
        if extra is None:
            return _Pending(V, s, Z, cap, Z if blk.factor is not None else V)
        W, t, ZW = extra
        # Undamped only (a damped change recomputes every column): VᵀM₀⁻¹W = ZᵀZ_W.
        cross = _transpose_dot(Z, ZW)
        inner = ZW.T @ ZW
        cap = np.block([[cap, cross], [cross.T, np.diag(t) + (inner + inner.T) / 2]])
        V, Z = V + (W,), Z + (ZW,)
        if len(V) > _MAX_GROUPS:
            V = _merge_groups(V, blk.size, {} if memo is None else memo)
            Z = (_columns(Z, blk.size),)
        return _Pending(V, np.concatenate([s, t]), Z, cap, Z)

    @staticmethod
    def _woodbury_apply(ZR, L, Z, cap, R_rhs_proj):
        """``ZR − Z·cap⁻¹·(Lᵀ ZR)``; ``R_rhs_proj = Lᵀ ZR``."""
        if not _width(L):
            return ZR
        coeffs = linalg.solve(cap, R_rhs_proj, assume_a="sym", check_finite=False)
        return ZR - _dot(Z, coeffs)

    def _pending_solve(self, blk, pending, Rb, m):
        """``m·B⁻¹Rb`` with the pending term ``pending``; undamped: ``T·(y − Z·cap⁻¹·Zᵀy)``
        with ``y = TᵀRb``, two triangular passes (one read of the block)."""
        _, _, Z, cap, L = pending
        if blk.factor is not None:
            y = blk.half_product(Rb)
            u = self._woodbury_apply(y, L, Z, cap, _transpose_dot(L, y))
            return m * blk.half_product(u, transpose=False)
        ZR = self._base_solve(blk, Rb, m)
        return m * self._woodbury_apply(ZR, L, Z, cap, _transpose_dot(L, ZR))

    def solve(self, R, *, change=None):
        """Return ``B_b⁻¹ R_b`` for every block, optionally for the matrix after ``change``.

        Parameters
        ----------
        R : sequence of ndarray of shape (d_b,) or (d_b, r), or ndarray (L, d, r)
            Right-hand sides, any number per block, solved in one read of each block.
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
            if Rb.ndim not in (1, 2):
                raise ValueError(
                    f"Right-hand side of block {b} must be (d,) or (d, r), got shape {Rb.shape}."
                )
            if Rb.shape[0] != blk.size:
                raise ValueError(
                    f"Right-hand side of block {b} has {Rb.shape[0]} rows, expected {blk.size}."
                )

        def solve_block(b, blk, Rb):
            vector = Rb.ndim == 1
            Rb = Rb[:, None] if vector else Rb
            pending = self._block_pieces(blk, m) if change is None else change.blocks[b]
            x = self._pending_solve(blk, pending, Rb, m)
            return x[:, 0] if vector else x

        items = [(b, blk, Rb) for b, (blk, Rb) in enumerate(zip(self.blocks_, Rs))]
        out = self._blockwise(solve_block, items)
        return np.stack(out) if as_array else out

    def _check_undamped(self, name):
        self._check_fitted()
        if any(blk.factor is None for blk in self.blocks_):
            raise ValueError(f"{name} needs undamped blocks (damping == 0).")

    def inverse_trace(self, *, change=None):
        """``tr(B_b⁻¹)`` per block (damping 0), optionally after ``change``:
        ``m·(tr(M₀⁻¹) − tr(cap⁻¹·ZᵀTᵀTZ))``, the stored inverse's trace and the pending
        term's, which takes one triangular pass over each block with a pending term (for
        a bound of ``‖B⁻¹‖₂`` without a pass, see :meth:`inverse_norm_bound`).

        Returns
        -------
        traces : ndarray of shape (n_blocks,)
        rounding : ndarray of shape (n_blocks,)
            A bound of the round-off of each trace, ``u`` the storage precision's: the
            summation's ``64·u·(|base| + |pending|)`` and the capacitance's round-off
            amplified by its solve, ``64·(d + K)·u·κ·max(‖cap‖, 1)·‖cap⁻¹‖²·tr(YᵀY)``
            (``κ = cond₁(M₀)``, ``Y = TZ``), times ``m``.
        """
        self._check_undamped("inverse_trace")
        m = self.n_samples_ if change is None else change.n_samples

        def trace_block(b, blk):
            pieces = self._block_pieces(blk, m) if change is None else change.blocks[b]
            _, _, Z, cap, _ = pieces
            base = blk.base_trace
            u = np.finfo(blk.dtype).eps
            pending = amplified = 0.0
            if cap.shape[0]:
                Y = blk.half_product(_columns(Z, blk.size), transpose=False)  # M₀⁻¹V
                YtY = Y.T @ Y
                pending = float(np.trace(linalg.solve(cap, YtY, assume_a="sym")))
                eigvals = _capacitance_eigenvalues(pieces)
                # The capacitance carries the round-off of its products (and of Z in the
                # storage precision), ‖E‖ ≲ (d + K)·u·max(‖cap‖, 1); the solve amplifies it
                # to ‖E‖·‖cap⁻¹‖²·tr(YᵀY), large when a change nearly empties a direction.
                smallest = float(np.min(np.abs(eigvals)))
                size = blk.size + cap.shape[0]
                kappa = max(float(blk.base_condition), 1.0)
                perturbation = 64 * size * u * kappa * max(float(np.max(np.abs(eigvals))), 1.0)
                amplified = perturbation * float(np.trace(YtY)) / smallest**2
            rounding = 64 * u * (abs(base) + abs(pending)) + amplified
            return m * (base - pending), m * rounding

        traces = self._blockwise(trace_block, list(enumerate(self.blocks_)))
        return np.array([t for t, _ in traces]), np.array([r for _, r in traces])

    def inverse_norm_bound(self, *, change=None):
        """An upper bound of ``‖B_b⁻¹‖₂`` per block (damping 0), optionally after ``change``,
        from ``K × K`` matrices only (no pass over the blocks).

        ``M⁻¹ = T·X·Tᵀ`` with ``X = (I + Z·diag(s)·Zᵀ)⁻¹``, so
        ``‖M⁻¹‖₂ ≤ ‖M₀⁻¹‖₂·λ_max(X)``: the first is bounded by ``min(‖M₀⁻¹‖₁, tr M₀⁻¹)``
        (stored with the base), and ``1/λ_max(X)`` is the smallest of ``1`` and the
        eigenvalues of ``I + G^{1/2}·diag(s)·G^{1/2}``, ``G = ZᵀZ = cap − diag(s)``.

        Returns
        -------
        bounds : ndarray of shape (n_blocks,)
        rounding : ndarray of shape (n_blocks,)
            Allowance for round-off (``u`` the storage precision's, ``κ = cond₁(M₀)``, kept
            with the base): ``G`` carries ``‖E‖ ≲ 64·(d + K)·u·κ·max(‖G‖, 1)`` (the stored
            factor's error grows with ``κ``), which moves the smallest eigenvalue ``σ`` by
            at most ``‖E‖`` (``inf`` when ``σ <= ‖E‖``), plus ``64·d·u·κ`` relative.
        """
        self._check_undamped("inverse_norm_bound")
        m = self.n_samples_ if change is None else change.n_samples

        def norm_block(b, blk):
            pieces = self._block_pieces(blk, m) if change is None else change.blocks[b]
            _, s, _, cap, _ = pieces
            # The stored factor's round-off grows with cond(M₀) and reaches G = ZᵀZ with it:
            # near-singular removals from an ill-conditioned base need that much room.
            u = np.finfo(blk.dtype).eps
            kappa = max(float(blk.base_condition), 1.0)
            smallest, allowance = 1.0, 0.0
            if cap.shape[0] and np.all(s > 0):
                pass  # X = (I + ZZᵀ)⁻¹ ≼ I
            elif cap.shape[0] and np.all(s < 0):
                # X = (I − ZZᵀ)⁻¹: 1/λ_max(X) = 1 − λ_max(G) = −λ_max(cap) (from the inertia
                # check's eigenvalues when it has run)
                eigvals = _capacitance_eigenvalues(pieces)
                smallest = min(1.0, -float(eigvals.max()))
                allowance = 64 * (blk.size + cap.shape[0]) * u * kappa * max(1.0 - smallest, 1.0)
            elif cap.shape[0]:
                G = cap - np.diag(s)
                values, vectors = np.linalg.eigh((G + G.T) / 2)
                values = np.maximum(values, 0.0)
                root = vectors * np.sqrt(values)
                H = root.T @ (s[:, None] * root)
                mu = np.linalg.eigvalsh((H + H.T) / 2)
                smallest = min(1.0, float(1.0 + mu.min()))
                allowance = (
                    64 * (blk.size + cap.shape[0]) * u * kappa * max(float(values.max()), 1.0)
                )
            # ‖M₀⁻¹‖₂ <= ‖M₀⁻¹‖₁ (symmetric) and <= tr M₀⁻¹ (positive definite)
            base = min(blk.base_norm, blk.base_trace) * (1 + 64 * blk.size * u * kappa)
            if smallest <= allowance:
                return np.inf, np.inf
            value = m * base / smallest
            return value, m * base / (smallest - allowance) - value

        bounds = self._blockwise(norm_block, list(enumerate(self.blocks_)), light=True)
        return np.array([v for v, _ in bounds]), np.array([r for _, r in bounds])

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
                # This block's d × k columns are written straight into the product's input
                # unless the span test or a damped block needs them apart (a d × k array of
                # fresh pages per block costs more than its product with a few columns).
                W = None
                group = _ScaledColumns(shared.rows, np.ascontiguousarray(shared.scales[:, b]))
            size = shared.rows.shape[1] if W is None else W.shape[0]
            if size != blk.size:
                raise ValueError(f"Factor of block {b} has {size} columns, expected {blk.size}.")
            if shared is None and not np.all(np.isfinite(W)):
                raise ValueError(f"Factor of block {b} contains NaN or infinity.")
            Rb = vector = None
            if rhs is not None:
                Rb = np.asarray(rhs[b], dtype=np.float64)
                if Rb.ndim not in (1, 2):
                    raise ValueError(
                        f"Right-hand side of block {b} must be (d,) or (d, r), got {Rb.shape}."
                    )
                vector = Rb.ndim == 1
                Rb = Rb[:, None] if vector else Rb
                if Rb.shape[0] != blk.size:
                    raise ValueError(
                        f"Right-hand side of block {b} has {Rb.shape[0]} rows, expected {blk.size}."
                    )
            t = sign_columns
            # New columns (and right-hand sides) go through the base in one product: ``Tᵀ``
            # undamped (the frame of the pending term), the base inverse damped.
            old = None if blk.factor is not None else _columns(blk.V, blk.size)
            width = k if old is None else old.shape[1] + k
            if W is None and (old is not None or (Rb is not None and k <= _SPAN_MAX_COLUMNS)):
                W = group.toarray()
            # A gradient sum of the changed samples usually lies in the span of their factor
            # columns (both are multiples of the same rows x̃_i): then TᵀR = TᵀW·c
            # and the pass over the block carries k columns instead of k + r.
            in_span = _span_coefficients(W, Rb) if Rb is not None and W is not None else None
            pieces = [group if W is None else W] if old is None else [old, W]
            if Rb is not None and in_span is None:
                pieces.append(Rb)
            cols = np.empty((blk.size, sum(P.shape[1] for P in pieces)), dtype=blk.dtype, order="F")
            start = 0
            for P in pieces:
                stop = start + P.shape[1]
                if isinstance(P, _ScaledColumns):
                    np.multiply(P.rows.T, P.scale, out=cols[:, start:stop], casting="same_kind")
                else:
                    cols[:, start:stop] = P
                start = stop
            if old is None:
                solved = triangular_multiply(blk.factor, blk.lower, cols, transpose=True)
                solved = solved.astype(np.float64, copy=False)
            else:
                solved = self._base_solve(blk, cols, m_new)
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
                pending = _Pending((Vall,), sall, (Z,), np.diag(sall) + Vall.T @ Z, (Vall,))
            _, s, Z, cap, L = pending
            pending.eigenvalues = self._check_definite(b, s, cap)
            if Rb is None:
                return pending, None, None
            x = self._woodbury_apply(ZR, L, Z, cap, _transpose_dot(L, ZR))
            x, residual = _refine_woodbury(x, ZR, L, s, Z, cap)
            if old is None:
                x = blk.half_product(x, transpose=False)  # back from the frame y = TᵀR
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
        for blk, (V, s, Z, cap, _) in zip(self.blocks_, change.blocks):
            blk.V, blk.signs = V, s
            if blk.factor is not None:
                blk.Z, blk.capacitance = Z, cap
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
        if blk.factor is not None:
            # M⁻¹ = M₀⁻¹ − Y·cap⁻¹·Yᵀ with Y = T·Z = M₀⁻¹V, then its Cholesky factor. Nothing
            # is assigned until all of it has succeeded.
            dtype = blk.dtype
            Y = blk.half_product(_columns(blk.Z, blk.size), transpose=False)
            P = _factor_product(blk.factor, blk.lower)
            inverse = _fold_woodbury(P, Y, blk.capacitance)
            trace, norm, _ = _inverse_statistics(inverse)
            # The new factor: M⁻¹ = C·Cᵀ, C lower (the symmetric inverse's C-ordered array is
            # its own Fortran-ordered transpose: factored in place).
            work = inverse.T if inverse.flags.c_contiguous else np.asfortranarray(inverse)
            potrf = linalg.get_lapack_funcs("potrf", (work,))
            C, info = potrf(work, lower=True, overwrite_a=True, clean=True)
            if info != 0:
                raise CurvatureError("The folded inverse is not positive definite.")
            # ‖M‖₁ <= ‖M₀‖₁ + Σ_j ‖v_j‖₁·‖v_j‖_∞ for M = M₀ + Σ_j s_j v_j v_jᵀ
            V = _columns(blk.V, blk.size)
            change_norm = float(np.sum(np.abs(V).sum(axis=0) * np.abs(V).max(axis=0, initial=0)))
            matrix_norm = blk.base_condition / max(blk.base_norm, np.finfo(float).tiny)
            factor = C.astype(dtype, copy=False)
            blk.factor, blk.lower = factor, True
            blk.base_condition = (matrix_norm + change_norm) * norm
            blk.base_trace, blk.base_norm = trace, norm
            blk.scaled_inverse_norm = None
            blk.Z, blk.capacitance = (), np.zeros((0, 0))
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


def _factored_block(b, G, workspace=None):
    """A block from its matrix ``M₀`` (overwritten): ``M₀ = UᵀU`` (``?potrf``) and
    ``T = U⁻¹`` (``?trtri``), so ``M₀⁻¹ = T·Tᵀ``; the inverse's trace and norms are read
    from ``T·Tᵀ`` (``?lauum`` in one block of workspace: kept in ``workspace``, a dict, for
    the next block of the same shape, since fresh pages cost more here than the pass)."""
    dtype = G.dtype
    root = np.sqrt(np.abs(np.diag(G)).astype(np.float64))
    gram_norm = _inverse_statistics(G)[1]  # ‖M₀‖₁ (the same column sums, of G)
    # G is symmetric, so its Fortran-ordered view G.T is the same matrix: LAPACK then
    # factors it in place (the caller's gram is overwritten, as documented).
    A = G.T if G.flags.c_contiguous else np.asfortranarray(G)
    potrf, trtri = linalg.get_lapack_funcs(("potrf", "trtri"), (A,))
    chol, info = potrf(A, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise CurvatureError(
            f"Curvature block {b} is not positive definite (Cholesky failed at "
            f"column {info}); use damping > 0 or a stronger penalty."
        )
    # The strict lower triangle still holds the gram's: zeroed column by column (contiguous
    # in Fortran order; potrf's own clean costs several times this).
    for j in range(chol.shape[0] - 1):
        chol[j + 1 :, j] = 0
    T, info = trtri(chol, lower=False, overwrite_c=True)
    if info != 0 or not np.all(np.isfinite(np.diag(T))):
        raise CurvatureError(f"Curvature block {b} is singular.")
    T = np.asfortranarray(T)
    upper = _factor_product(T, False, workspace, full=False)
    trace, norm, scaled = _inverse_statistics(upper, root, upper_only=True)
    return _Block(
        size=G.shape[0],
        factor=T.astype(dtype, copy=False),
        lower=False,
        base_trace=trace,
        base_norm=norm,
        base_condition=gram_norm * norm,
        scaled_inverse_norm=scaled,
    )


def _factor_product(T, lower, workspace=None, *, full=True):
    """``T·Tᵀ`` as a symmetric C-ordered array (``?lauum``, ``d³/3`` flops; in ``workspace``
    when given, else new). ``?lauum``
    forms ``U·Uᵀ`` for an upper ``U``; a lower ``T`` is one after reversing rows and
    columns (``J·T·J``, and ``T·Tᵀ = J·(JTJ)(JTJ)ᵀ·J``)."""
    upper = T if not lower else T[::-1, ::-1]
    lauum = linalg.get_lapack_funcs("lauum", (upper,))
    key = (upper.shape, upper.dtype)
    work = None if workspace is None else workspace.get(key)
    if work is None:
        work = np.empty(upper.shape, dtype=upper.dtype, order="F")
        if workspace is not None:
            workspace.clear()
            workspace[key] = work
    work[...] = upper
    P, info = lauum(work, lower=False, overwrite_c=True)
    if info != 0:
        raise CurvatureError(f"Forming the base inverse failed (lauum info {info}).")
    if not full and not lower:
        return P  # Fortran-ordered, the upper triangle (the strict lower one is T's, zero)
    P = _symmetrize_upper(P)
    if lower:
        P = P[::-1, ::-1]
    # symmetric: the transpose of a Fortran-ordered P is the same matrix, C-ordered
    return P.T if P.flags.f_contiguous else np.ascontiguousarray(P)


def _fold_woodbury(inverse, Z, capacitance):
    """``M₀⁻¹ − Z·cap⁻¹·Zᵀ`` by two symmetric rank-r updates of ``inverse``, a symmetric
    work array (C-ordered: updated in place) formed from the block's factor, never the
    block's own.

    With ``cap = QΛQᵀ`` and ``Y = Z·Q·|Λ|^{-1/2}``, ``Z·cap⁻¹·Zᵀ = Σ_j sign(λ_j)·y_j y_jᵀ``:
    ``?syrk`` updates one triangle in ``d²·r`` flops, half of a ``?gemm`` with ``cap⁻¹Zᵀ``,
    and the result is symmetric by construction."""
    eigvals, Q = np.linalg.eigh((capacitance + capacitance.T) / 2)
    Y = (Z @ Q) / np.sqrt(np.abs(eigvals))
    syrk = _syrk(inverse.dtype)
    # The C-ordered copy's transpose is the same symmetric matrix, Fortran-ordered: BLAS
    # updates it in place.
    work = inverse.T if inverse.flags.c_contiguous else np.array(inverse, order="C").T
    for columns, alpha in ((eigvals > 0, -1.0), (eigvals < 0, 1.0)):
        if np.any(columns):
            factor = np.asfortranarray(Y[:, columns], dtype=inverse.dtype)
            updated = syrk(alpha, factor, beta=1.0, c=work, trans=0, lower=0, overwrite_c=1)
            if not np.shares_memory(updated, work):
                work[...] = updated
    return _symmetrize_upper(work).T


def _capacitance_eigenvalues(pieces):
    """The capacitance's eigenvalues, from the inertia check when it has run."""
    eigvals = getattr(pieces, "eigenvalues", None)
    if eigvals is None:
        cap = pieces[3]
        eigvals = np.linalg.eigvalsh((cap + cap.T) / 2)
    return eigvals


def _refine_woodbury(x, ZR, V, s, Z, cap, *, steps=2):
    """Check and refine a Woodbury solution in the base's frame.

    Damped (the base stored as ``base⁻¹``): ``x = (base + V·diag(s)·Vᵀ)⁻¹R`` with the
    residual in the base-preconditioned form ``e = base⁻¹R − (x + Z·diag(s)·Vᵀx)``
    (``Z = base⁻¹V``, ``ZR = base⁻¹R``). Undamped (``M₀⁻¹ = T·Tᵀ``), called with
    ``V = Z = TᵀV``, ``ZR = TᵀR`` and ``x = T⁻¹·solution``: the system is
    ``(I + Z·diag(s)·Zᵀ)·x = TᵀR``, the true one multiplied by ``Tᵀ``. Either way the
    residual costs ``O(d·K)`` per column, against the ``O(d²)`` pass over the block the
    solve itself took. Round-off amplified by an ill-conditioned capacitance (a removal
    that nearly empties a direction) shows up there; each refinement
    ``x ← x + (e − Z·cap⁻¹·Vᵀe)`` solves for the error with the same factors. Returns the
    best ``x`` and its relative residual ``‖e‖ / (‖ZR‖ + ‖x‖ + ‖Z·diag(s)·Vᵀx‖)``.
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


#: Changes of at most this many columns test whether the right-hand sides lie in their span.
_SPAN_MAX_COLUMNS = 8


def _span_coefficients(W, R, *, max_columns=_SPAN_MAX_COLUMNS, rtol=1e-13, max_growth=1e4):
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
