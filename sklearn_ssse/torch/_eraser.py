"""SSSE for trained PyTorch networks: per-sample gradients, a block-diagonal empirical
Fisher with dense and matrix-free blocks, and the closed-form erasure step (Eq. 4)."""

from __future__ import annotations

import time
from numbers import Integral, Real

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from ..curvature import sherman_morrison_inverse
from ._woodbury import MatrixFreeFisherInverse

__all__ = ["NetworkEraser", "NetworkForgetStep"]


class NetworkForgetStep:
    """The unit (``ε = 1``) step of a removal request, not yet applied.

    Attributes
    ----------
    direction : ndarray of shape (n_params,)
        ``1/(n−k) · F̂⁻¹ Σ_{i∈S} ∇ℓ_i`` over the eraser's flat parameter vector; zero
        outside ``indices``.
    indices : ndarray of int
        Flat indices of the parameters the step changes.
    gradient : ndarray of shape (n_params,)
        ``Σ_{i∈S} ∇ℓ_i`` at the parameters the step was computed at.
    n_removed : int
    seconds : float
        Wall-clock time of the computation (gradients, subset curvature, solves).
    """

    def __init__(self, direction, indices, gradient, n_removed, seconds):
        self.direction = direction
        self.indices = indices
        self.gradient = gradient
        self.n_removed = n_removed
        self.seconds = seconds

    @property
    def n_params_touched(self):
        """Number of parameters the step may change."""
        return int(len(self.indices))

    def norm(self):
        """Euclidean norm of the direction."""
        return float(np.linalg.norm(self.direction))

    def __repr__(self):
        return (
            f"NetworkForgetStep(n_removed={self.n_removed}, "
            f"n_params_touched={self.n_params_touched}, norm={self.norm():.4g})"
        )


def _contiguous(idx):
    """A slice for a contiguous ascending index array (so column blocks are views)."""
    if len(idx) and idx[-1] - idx[0] + 1 == len(idx) and np.all(np.diff(idx) == 1):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


class NetworkEraser:
    """Erase training samples from a trained network with SSSE (Peste et al., 2021).

    After :meth:`fit` has built the inverse of the block-diagonal empirical Fisher at the
    trained parameters ``θ*``, :meth:`forget` applies the paper's Eq. 4 in place::

        θ ← θ* + ε/(n−k) · F̂⁻¹ · Σ_{i∈S} ∇ℓ_i(θ*),
        F̂ = (1/N)·Σ_j ḡ_j ḡ_jᵀ + P/n + λ·I   (block-diagonal),

    where ``ℓ_i`` is the loss of sample ``i`` alone (no mean over the removed batch), the
    ``ḡ_j`` are per-sample gradients averaged over ``N`` mini-batches of ``batch_size``
    (the paper uses 10; ``batch_size=1`` gives its Eq. 2 with ``N = n``), ``P`` the
    optional L2 penalty and ``λ`` the damping. Only parameters change: batch-norm running
    statistics and other buffers stay as they are. Only the removed samples are needed
    at request time, not the training set.

    Each block of the flat parameter vector is stored as

    * a dense inverse, built with the package's chunked Sherman-Morrison recurrence
      (:func:`sklearn_ssse.curvature.sherman_morrison_inverse`) when it has at most
      ``max_dense_block`` parameters;
    * otherwise matrix-free (:class:`MatrixFreeFisherInverse`): the ``N`` averaged
      gradients restricted to the block and an ``N × N`` Cholesky factor, ``O(N·d)`` per
      solve. The paper's blocks of 70,000 parameters would need 39 GB each if dense.

    Parameters
    ----------
    module : torch.nn.Module
        The trained network; its parameters are updated in place by :meth:`forget`.
    loss_fn : callable
        ``loss_fn(output, target)`` returning a scalar for a batch; it is called on
        batches of one sample to define ``ℓ_i`` (``torch.nn.CrossEntropyLoss()``,
        ``torch.nn.BCEWithLogitsLoss(reduction="sum")`` for a sum over labels, ...).
    params : list of str, default=None
        Names (as in ``module.named_parameters()``) of the parameters erased and
        included in the curvature; ``None`` takes all that require gradients. The flat
        vector lists them in ``named_parameters()`` order.
    block_size : int, default=70000
        Size of the contiguous blocks of the flat vector (the paper's value).
    blocks : list of array-like of int, default=None
        Explicit disjoint blocks of flat indices, overriding ``block_size``; parameters in
        no block are not updated.
    max_dense_block : int, default=4096
        Largest block stored as a dense ``d × d`` inverse.
    batch_size : int, default=10
        Per-sample gradients averaged over mini-batches of this size before entering the
        Fisher (the paper's section 4).
    damping : float, default=1e-4
        The paper's ``λ > 0``.
    penalty : float or dict, default=0.0
        L2 penalty ``P`` of the training objective written on the *sum* scale,
        ``Σ_i ℓ_i(θ) + ½·θᵀ diag(P) θ``; a float applies to every erased parameter, a dict
        maps parameter names to strengths (others get 0). It enters the curvature as
        ``P/n``. scikit-learn's ``C`` gives ``P = 1/C`` on coefficients and ``0`` on the
        intercept; PyTorch's ``weight_decay=wd`` on a mean loss gives ``P = n·wd`` (the
        step then neglects the ``k/(n−k)·wd·θ`` term from the changed mean).
    eps : float, default=1.0
        Default scale ``ε``.
    shuffle : bool, default=True
        Group the training samples into mini-batches in a random order (the order given to
        :meth:`fit` is often sorted by class).
    random_state : int, default=0
        Seed of that order.
    grad_batch_size : int, default=100
        Samples per gradient computation: per-sample gradients are vectorized over this many
        samples (memory ``grad_batch_size × n_params``); :meth:`fit` vectorizes
        ``grad_batch_size // batch_size`` mini-batch gradients per call, and the summed
        gradient of a removal request is one backward pass per ``grad_batch_size`` samples.
    keep_gradients : bool, default=False
        Keep the ``N × n_params`` averaged gradients after :meth:`fit`, which
        :meth:`forget` needs to build the curvature of a parameter ``subset`` (L-CODEC).
    progress : bool, default=False
        Print the progress of :meth:`fit` to stderr.

    Attributes
    ----------
    n_samples_ : int
        Samples still in the model (``n`` at fit, minus the removed ones).
    n_terms_ : int
        ``N``, the number of averaged gradients in the Fisher.
    n_params_ : int
        Length of the flat parameter vector.
    param_names_ : list of str
    block_indices_ : list of ndarray
    blocks_ : list of {ndarray, MatrixFreeFisherInverse}
        Dense inverses or matrix-free inverses.
    gradients_ : ndarray of shape (`n_terms_`, `n_params_`)
        Only with ``keep_gradients=True``.
    fit_seconds_ : float
        Wall-clock time of :meth:`fit`.
    gradient_seconds_ : float
        The part of it spent on the mini-batch gradients (the rest builds the blocks).

    Notes
    -----
    Gradients are taken with the module in evaluation mode, so that batch-norm uses its
    running statistics and ``ℓ_i`` depends on sample ``i`` only; the module's flags are
    restored afterwards. As in the paper, the curvature is that of the full training set
    ``D`` and is kept after a removal (averaged mini-batch gradients cannot be split back
    into samples), while ``n_samples_`` decreases so that the next request uses the
    right ``n − k``.
    """

    def __init__(
        self,
        module,
        loss_fn,
        *,
        params=None,
        block_size=70000,
        blocks=None,
        max_dense_block=4096,
        batch_size=10,
        damping=1e-4,
        penalty=0.0,
        eps=1.0,
        shuffle=True,
        random_state=0,
        grad_batch_size=100,
        keep_gradients=False,
        progress=False,
    ):
        self.module = module
        self.loss_fn = loss_fn
        self.params = params
        self.block_size = block_size
        self.blocks = blocks
        self.max_dense_block = max_dense_block
        self.batch_size = batch_size
        self.damping = damping
        self.penalty = penalty
        self.eps = eps
        self.shuffle = shuffle
        self.random_state = random_state
        self.grad_batch_size = grad_batch_size
        self.keep_gradients = keep_gradients
        self.progress = progress

    # ------------------------------------------------------------------ parameters
    def _check_params(self):
        if not isinstance(self.module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(self.module).__name__}.")
        if not callable(self.loss_fn):
            raise TypeError("loss_fn must be callable as loss_fn(output, target).")
        for name in ("block_size", "max_dense_block", "batch_size", "grad_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not (isinstance(self.damping, Real) and np.isfinite(self.damping) and self.damping > 0):
            raise ValueError(f"damping must be a finite number > 0, got {self.damping!r}.")

    def _selected(self):
        named = dict(self.module.named_parameters())
        if self.params is None:
            names = [n for n, p in named.items() if p.requires_grad]
        else:
            unknown = sorted(set(self.params) - set(named))
            if unknown:
                raise ValueError(
                    f"Unknown parameter names {unknown}; the module has {list(named)}."
                )
            wanted = set(self.params)
            names = [n for n in named if n in wanted]
        if not names:
            raise ValueError("No parameters to erase: none requires gradients.")
        return names, named

    def _layout(self):
        names, named = self._selected()
        shapes = [tuple(named[n].shape) for n in names]
        sizes = [int(np.prod(s)) for s in shapes]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        return names, shapes, offsets

    def _penalty_vector(self, names, offsets):
        d = int(offsets[-1])
        p = np.zeros(d)
        if isinstance(self.penalty, dict):
            unknown = sorted(set(self.penalty) - set(names))
            if unknown:
                raise ValueError(f"penalty names {unknown} are not erased parameters {names}.")
            for i, name in enumerate(names):
                p[offsets[i] : offsets[i + 1]] = float(self.penalty.get(name, 0.0))
        else:
            p[:] = float(self.penalty)
        if np.any(p < 0) or not np.all(np.isfinite(p)):
            raise ValueError("penalty must be finite and >= 0.")
        return p

    def _block_list(self, d):
        if self.blocks is None:
            return [np.arange(s, min(s + self.block_size, d)) for s in range(0, d, self.block_size)]
        blocks = [np.sort(np.asarray(b, dtype=int).ravel()) for b in self.blocks]
        joined = np.concatenate(blocks) if blocks else np.zeros(0, dtype=int)
        if len(joined) == 0 or joined.min() < 0 or joined.max() >= d:
            raise ValueError(f"blocks must hold flat indices in [0, {d}).")
        if len(np.unique(joined)) != len(joined):
            raise ValueError("blocks must be disjoint.")
        return blocks

    # ------------------------------------------------------------------ flat vector
    def parameters_to_vector(self):
        """The erased parameters as one flat float64 array (in ``param_names_`` order)."""
        names, named = self._selected()
        return np.concatenate(
            [named[n].detach().to("cpu", torch.float64).reshape(-1).numpy() for n in names]
        )

    def vector_to_parameters(self, vector):
        """Write a flat vector (as from :meth:`parameters_to_vector`) into the module in place.

        Parameters
        ----------
        vector : ndarray of shape (n_params,)
        """
        names, shapes, offsets = self._layout()
        vector = np.asarray(vector, dtype=np.float64)
        if vector.shape != (offsets[-1],):
            raise ValueError(f"vector must have shape ({offsets[-1]},), got {vector.shape}.")
        if not np.all(np.isfinite(vector)):
            raise ValueError("vector contains NaN or infinity.")
        named = dict(self.module.named_parameters())
        with torch.no_grad():
            for i, name in enumerate(names):
                p = named[name]
                values = torch.from_numpy(vector[offsets[i] : offsets[i + 1]].reshape(shapes[i]))
                p.copy_(values.to(device=p.device, dtype=p.dtype))

    # ------------------------------------------------------------------ gradients
    def _tensors(self, X, y):
        named = dict(self.module.named_parameters())
        reference = next(p for p in named.values() if p.is_floating_point())
        X = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
        X = X.to(device=reference.device, dtype=reference.dtype)
        y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
        if y.is_floating_point():
            y = y.to(dtype=reference.dtype)
        elif y.dtype != torch.bool:
            y = y.to(torch.long)
        y = y.to(reference.device)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}.")
        if X.shape[0] == 0:
            raise ValueError("Need at least one sample.")
        return X, y

    def _gradient_chunks(self, X, y, order, chunk):
        """Yield per-sample gradients ``(c, n_params)`` (float64 numpy) in ``order``."""
        names, named = self._selected()
        wanted = set(names)
        fixed = {n: p.detach() for n, p in named.items() if n not in wanted}
        fixed.update(dict(self.module.named_buffers()))
        selected = {n: named[n].detach() for n in names}
        module, loss_fn = self.module, self.loss_fn

        def sample_loss(params, x, target):
            out = functional_call(module, {**fixed, **params}, (x.unsqueeze(0),))
            return loss_fn(out, target.unsqueeze(0))

        per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
        flags = {m: m.training for m in module.modules()}
        module.eval()
        try:
            for start in range(0, len(order), chunk):
                rows = torch.as_tensor(order[start : start + chunk], device=X.device)
                grads = per_sample(selected, X[rows], y[rows])
                flat = torch.cat([grads[n].reshape(len(rows), -1) for n in names], dim=1)
                yield flat.to("cpu", torch.float64).numpy()
        finally:
            for m, flag in flags.items():
                m.training = flag

    def per_sample_gradients(self, X, y):
        """``∇ℓ_i`` of every sample over the flat parameter vector (for checks and tools).

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n, ...)
        y : array-like or torch.Tensor of shape (n, ...)

        Returns
        -------
        ndarray of shape (n, n_params)
        """
        self._check_params()
        X, y = self._tensors(X, y)
        order = np.arange(X.shape[0])
        return np.vstack(list(self._gradient_chunks(X, y, order, self.grad_batch_size)))

    def _group_loss(self):
        """``(params, X_group, y_group) -> mean_i ℓ_i`` and the selected parameters.

        The losses of the group are those of its samples taken one at a time (``loss_fn``
        on batches of one), so the gradient is the mean of the per-sample gradients for
        any ``loss_fn`` (in evaluation mode, where batch-norm does not couple samples).
        """
        names, named = self._selected()
        wanted = set(names)
        fixed = {n: p.detach() for n, p in named.items() if n not in wanted}
        fixed.update(dict(self.module.named_buffers()))
        selected = {n: named[n].detach() for n in names}
        module, loss_fn = self.module, self.loss_fn
        per_sample = vmap(lambda o, t: loss_fn(o.unsqueeze(0), t.unsqueeze(0)))

        def group_loss(params, x, target):
            out = functional_call(module, {**fixed, **params}, (x,))
            return per_sample(out, target).mean()

        return group_loss, names, selected

    def _group_gradient_chunks(self, X, y, order, size, groups_per_call):
        """Yield gradients of the mean loss of consecutive groups of ``size`` (in ``order``).

        A group's averaged gradient is the gradient of its averaged loss, so no per-sample
        gradient is formed: the cost is that of ordinary mini-batch backward passes,
        several groups vectorized per call with ``vmap``. The last group may be smaller.
        """
        group_loss, names, selected = self._group_loss()
        one = grad(group_loss)
        many = vmap(one, in_dims=(None, 0, 0))
        n_full = len(order) // size
        flags = {m: m.training for m in self.module.modules()}
        self.module.eval()
        try:
            for start in range(0, n_full, groups_per_call):
                g = min(groups_per_call, n_full - start)
                rows = torch.as_tensor(order[start * size : (start + g) * size], device=X.device)
                xb, yb = X[rows], y[rows]
                if g == 1:
                    grads = {n: v.unsqueeze(0) for n, v in one(selected, xb, yb).items()}
                else:
                    xb = xb.reshape(g, size, *xb.shape[1:])
                    grads = many(selected, xb, yb.reshape(g, size, *yb.shape[1:]))
                flat = torch.cat([grads[n].reshape(g, -1) for n in names], dim=1)
                yield flat.to("cpu", torch.float64).numpy()
            if n_full * size < len(order):
                rows = torch.as_tensor(order[n_full * size :], device=X.device)
                grads = one(selected, X[rows], y[rows])
                yield (
                    torch.cat([grads[n].reshape(1, -1) for n in names], dim=1)
                    .to("cpu", torch.float64)
                    .numpy()
                )
        finally:
            for m, flag in flags.items():
                m.training = flag

    def _gradient_sum(self, X, y):
        """``Σ_i ∇ℓ_i`` by ordinary backward passes over chunks (no per-sample gradients)."""
        X, y = self._tensors(X, y)
        n = X.shape[0]
        total = np.zeros(int(self._layout()[2][-1]))
        order = np.arange(n)
        for start in range(0, n, self.grad_batch_size):
            rows = order[start : start + self.grad_batch_size]
            for g in self._group_gradient_chunks(X, y, rows, len(rows), 1):
                total += len(rows) * g[0]
        return total, n

    # ------------------------------------------------------------------ curvature
    def _build_block(self, G, idx, diagonal_penalty):
        """Inverse of ``(1/N)·G_bᵀG_b + diag(p_b) + λI`` for the columns ``idx``."""
        cols = _contiguous(idx)
        Gb, pb = G[:, cols], diagonal_penalty[cols]
        N = G.shape[0]
        if len(idx) <= self.max_dense_block:
            # The recurrence divides its penalty by N: pass N·p to get p in the block.
            return sherman_morrison_inverse(
                Gb, damping=self.damping, penalty=pb * N, n_terms=N, batch_size=1
            )
        return MatrixFreeFisherInverse(Gb, self.damping + pb)

    @staticmethod
    def _solve(block, r):
        return block @ r if isinstance(block, np.ndarray) else block.solve(r)

    def fit(self, X, y):
        """Build the inverse block-diagonal empirical Fisher at the current parameters.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n, ...)
            The training inputs the network was trained on.
        y : array-like or torch.Tensor of shape (n, ...)
            Their targets, as ``loss_fn`` expects them.

        Returns
        -------
        self
        """
        self._check_params()
        start_time = time.perf_counter()
        names, shapes, offsets = self._layout()
        d = int(offsets[-1])
        X, y = self._tensors(X, y)
        n = X.shape[0]
        rng = np.random.default_rng(self.random_state)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        groups_per_call = max(1, self.grad_batch_size // self.batch_size)
        averaged = np.empty((-(-n // self.batch_size), d))
        row = 0
        gradient_start = time.perf_counter()
        for g in self._group_gradient_chunks(X, y, order, self.batch_size, groups_per_call):
            averaged[row : row + len(g)] = g
            row += len(g)
            if self.progress:
                print(f"\rgradients {min(row * self.batch_size, n)}/{n}", end="", flush=True)
        if self.progress:
            print(flush=True)
        gradient_seconds = time.perf_counter() - gradient_start
        if not np.all(np.isfinite(averaged)):
            raise ValueError("Some per-sample gradients are not finite.")
        penalty = self._penalty_vector(names, offsets) / n
        block_indices = self._block_list(d)
        self.blocks_ = [self._build_block(averaged, idx, penalty) for idx in block_indices]
        self.block_indices_ = block_indices
        self.param_names_ = names
        self.param_shapes_ = shapes
        self.param_offsets_ = offsets
        self.n_params_ = d
        self.n_terms_ = averaged.shape[0]
        self.n_samples_ = n
        self.n_forgotten_ = 0
        self._penalty_diag = penalty
        if self.keep_gradients:
            self.gradients_ = averaged
        self.fit_seconds_ = time.perf_counter() - start_time
        self.gradient_seconds_ = gradient_seconds
        return self

    @property
    def nbytes(self):
        """Bytes held by the stored curvature (and the kept gradients)."""
        total = sum(b.nbytes for b in self.blocks_)
        return int(total + (self.gradients_.nbytes if hasattr(self, "gradients_") else 0))

    def _check_fitted(self):
        if not hasattr(self, "blocks_"):
            raise AttributeError("This NetworkEraser is not fitted yet: call fit(X, y) first.")
        names, shapes, _ = self._layout()
        if names != self.param_names_ or shapes != self.param_shapes_:
            raise ValueError("The module's parameters changed shape or names since fit.")

    # ------------------------------------------------------------------ forgetting
    def forget_step(self, X_removed, y_removed, *, subset=None):
        """Compute the unit (``ε = 1``) step for these samples without applying it.

        Parameters
        ----------
        X_removed : array-like or torch.Tensor of shape (k, ...)
        y_removed : array-like or torch.Tensor of shape (k, ...)
        subset : array-like of int, default=None
            Flat parameter indices (for example from :func:`lcodec_select`) to which the
            update is restricted: the curvature is built on this subset only (from the
            gradients kept with ``keep_gradients=True``) and the other parameters stay.

        Returns
        -------
        NetworkForgetStep
        """
        self._check_fitted()
        start_time = time.perf_counter()
        gradient, k = self._gradient_sum(X_removed, y_removed)
        if k >= self.n_samples_:
            raise ValueError(
                f"Cannot remove {k} samples from a model that holds {self.n_samples_}."
            )
        direction = np.zeros(self.n_params_)
        if subset is None:
            for idx, block in zip(self.block_indices_, self.blocks_):
                cols = _contiguous(idx)
                direction[cols] = self._solve(block, gradient[cols])
            indices = np.concatenate(self.block_indices_)
        else:
            if not hasattr(self, "gradients_"):
                raise ValueError(
                    "A parameter subset needs the training gradients: fit with keep_gradients=True."
                )
            indices = np.unique(np.asarray(subset, dtype=int).ravel())
            if len(indices) == 0 or indices[0] < 0 or indices[-1] >= self.n_params_:
                raise ValueError(f"subset must hold flat indices in [0, {self.n_params_}).")
            block = self._build_block(self.gradients_, indices, self._penalty_diag)
            direction[indices] = self._solve(block, gradient[indices])
        direction /= self.n_samples_ - k
        if not np.all(np.isfinite(direction)):
            raise ValueError("The erasure step is not finite; increase damping.")
        return NetworkForgetStep(direction, indices, gradient, k, time.perf_counter() - start_time)

    def apply_step(self, step, eps=None):
        """Apply ``θ ← θ + ε·step.direction`` in place and record the removal.

        Parameters
        ----------
        step : NetworkForgetStep
        eps : float, default=None
            ``None`` uses the ``eps`` parameter.

        Returns
        -------
        self
        """
        eps = self.eps if eps is None else eps
        if isinstance(eps, bool) or not isinstance(eps, Real) or not np.isfinite(eps) or eps < 0:
            raise ValueError(f"eps must be a finite number >= 0, got {eps!r}.")
        self._check_fitted()
        self.vector_to_parameters(self.parameters_to_vector() + float(eps) * step.direction)
        self.n_samples_ -= step.n_removed
        self.n_forgotten_ += step.n_removed
        return self

    def forget(self, X_removed, y_removed, eps=None, *, subset=None):
        """Erase samples: apply Eq. 4 to the module's parameters in place.

        Parameters
        ----------
        X_removed : array-like or torch.Tensor of shape (k, ...)
            The samples to erase, as given to training.
        y_removed : array-like or torch.Tensor of shape (k, ...)
        eps : float, default=None
            Scale ``ε``; ``None`` uses the ``eps`` parameter.
        subset : array-like of int, default=None
            Restrict the update (and its curvature) to these flat parameter indices.

        Returns
        -------
        self
        """
        return self.apply_step(self.forget_step(X_removed, y_removed, subset=subset), eps)

    def unit_parameter_indices(self, units):
        """Flat indices of the parameters of units (output channels / neurons).

        Parameters
        ----------
        units : iterable of (str, int)
            ``(module_name, unit)`` pairs: output channel ``unit`` of a convolution or
            output neuron of a linear layer named ``module_name``. Its weight slice
            ``weight[unit]`` and bias ``bias[unit]`` are selected (if erased).

        Returns
        -------
        ndarray of int
        """
        names, shapes, offsets = self._layout()
        position = {n: i for i, n in enumerate(names)}
        chosen = []
        for module_name, unit in units:
            for suffix in ("weight", "bias"):
                name = f"{module_name}.{suffix}" if module_name else suffix
                if name not in position:
                    continue
                i = position[name]
                per_unit = int(np.prod(shapes[i][1:]))
                start = offsets[i] + int(unit) * per_unit
                chosen.append(np.arange(start, start + per_unit))
        if not chosen:
            return np.zeros(0, dtype=int)
        return np.unique(np.concatenate(chosen))
