"""The standard baselines of deep unlearning, with the interface of :class:`NetworkEraser`.

* :class:`FineTuneEraser`: keep training on the remaining samples ``D∖S`` for a few epochs
  (or a time budget), so that the network drifts away from ``S`` ("catastrophic
  forgetting" used as unlearning);
* :class:`NegGradEraser`: gradient ascent on the loss of the removed samples ``S``;
* :class:`FisherForgettingEraser`: Fisher forgetting (Golatkar, Achille & Soatto, "Eternal
  Sunshine of the Spotless Net: Selective Forgetting in Deep Networks", CVPR 2020): add
  Gaussian noise whose covariance is proportional to the inverse of the diagonal Fisher of
  ``D∖S``, so that the parameters the remaining data do not pin down are scrambled.

Fine-tuning and Fisher forgetting need the remaining data: :meth:`fit` keeps the training
set and :meth:`forget` finds the removed samples in it (by exact content). SSSE needs only
``S`` at request time. All three restore the module exactly when a request is refused.
"""

from __future__ import annotations

import copy
import hashlib
import time
from numbers import Integral, Real

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

__all__ = ["FineTuneEraser", "FisherForgettingEraser", "NegGradEraser"]


def _as_tensors(module, X, y):
    named = dict(module.named_parameters())
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


def _flat_parameters(module):
    """All parameters as one float64 vector (logical order, any memory format)."""
    return np.concatenate(
        [p.detach().to("cpu", torch.float64).reshape(-1).numpy() for p in module.parameters()]
    )


def _set_flat_parameters(module, vector):
    offset = 0
    with torch.no_grad():
        for p in module.parameters():
            values = torch.from_numpy(vector[offset : offset + p.numel()].reshape(p.shape))
            p.copy_(values.to(device=p.device, dtype=p.dtype))
            offset += p.numel()


def _fingerprints(X, y):
    """One digest per sample of its input and target bytes (exact content)."""
    Xn = X.detach().to("cpu").contiguous().numpy().reshape(X.shape[0], -1)
    yn = y.detach().to("cpu").contiguous().numpy().reshape(y.shape[0], -1)
    return [
        hashlib.blake2b(Xn[i].tobytes() + yn[i].tobytes(), digest_size=16).digest()
        for i in range(X.shape[0])
    ]


class _BaseBaselineEraser:
    """Validation, bookkeeping and restore-on-error shared by the baselines."""

    _needs_remaining = True

    def _check_common(self):
        if not isinstance(self.module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(self.module).__name__}.")
        if not callable(self.loss_fn):
            raise TypeError("loss_fn must be callable as loss_fn(output, target).")
        if self.max_seconds is not None and not (
            isinstance(self.max_seconds, Real) and self.max_seconds > 0
        ):
            raise ValueError(f"max_seconds must be None or > 0, got {self.max_seconds!r}.")

    @staticmethod
    def _positive_int(name, value):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")

    @staticmethod
    def _positive_real(name, value, allow_zero=False):
        ok = isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value)
        if not ok or value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")

    def fit(self, X, y):
        """Record the training set (kept only by the baselines that need ``D∖S``).

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
        X, y = _as_tensors(self.module, X, y)
        if self._needs_remaining:
            self.X_, self.y_ = X, y
            self._where = {}
            for i, key in enumerate(_fingerprints(X, y)):
                self._where.setdefault(key, []).append(i)
            self._alive = np.ones(X.shape[0], dtype=bool)
        self.n_samples_ = int(X.shape[0])
        self.n_forgotten_ = 0
        return self

    def _check_fitted(self):
        if not hasattr(self, "n_samples_"):
            raise AttributeError(
                f"This {type(self).__name__} is not fitted yet: call fit(X, y) first."
            )

    def _locate(self, X_removed, y_removed):
        """Rows of the stored training set holding the removed samples (each used once)."""
        taken, missing = [], 0
        used = {}
        for key in _fingerprints(X_removed, y_removed):
            rows = [r for r in self._where.get(key, ()) if self._alive[r]]
            j = used.get(key, 0)
            if j >= len(rows):
                missing += 1
                continue
            taken.append(rows[j])
            used[key] = j + 1
        if missing:
            raise ValueError(
                f"{missing} of the {len(X_removed)} removed samples are not in the training "
                "set given to fit (or were already removed)."
            )
        return np.asarray(taken, dtype=int)

    def forget(self, X_removed, y_removed):
        """Erase samples from the module in place.

        Parameters
        ----------
        X_removed : array-like or torch.Tensor of shape (k, ...)
            The samples to erase, as given to training.
        y_removed : array-like or torch.Tensor of shape (k, ...)

        Returns
        -------
        self
        """
        self._check_fitted()
        self._check_params()
        start = time.perf_counter()
        X_removed, y_removed = _as_tensors(self.module, X_removed, y_removed)
        k = X_removed.shape[0]
        if k >= self.n_samples_:
            raise ValueError(
                f"Cannot remove {k} samples from a model that holds {self.n_samples_}."
            )
        rows = self._locate(X_removed, y_removed) if self._needs_remaining else None
        state = copy.deepcopy(self.module.state_dict())
        flags = {m: m.training for m in self.module.modules()}
        try:
            if self._needs_remaining:
                alive = self._alive.copy()
                alive[rows] = False
                self._run(X_removed, y_removed, np.flatnonzero(alive), start)
            else:
                self._run(X_removed, y_removed, None, start)
            for p in self.module.parameters():
                if not torch.all(torch.isfinite(p)):
                    raise ValueError(
                        f"{type(self).__name__} produced non-finite parameters; lower the "
                        "learning rate or the noise scale."
                    )
        except BaseException:
            self.module.load_state_dict(state)
            raise
        finally:
            for m, flag in flags.items():
                m.training = flag
        if self._needs_remaining:
            self._alive[rows] = False
        self.n_samples_ -= k
        self.n_forgotten_ += k
        self.forget_seconds_ = time.perf_counter() - start
        return self


def _sgd_epochs(
    module,
    loss_fn,
    X,
    y,
    rows,
    *,
    sign,
    epochs,
    lr,
    momentum,
    weight_decay,
    batch_size,
    max_seconds,
    start,
    augment,
    generator,
    train_mode,
):
    """SGD on ``sign·loss`` over ``X[rows]`` for ``epochs`` (or until ``max_seconds``)."""
    optimizer = torch.optim.SGD(
        module.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    module.train(train_mode)
    n_steps, epochs_done = 0, 0.0
    rows = torch.as_tensor(rows)
    for _ in range(epochs):
        perm = rows[torch.randperm(len(rows), generator=generator)]
        for s in range(0, len(perm), batch_size):
            if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                return n_steps, epochs_done
            batch = perm[s : s + batch_size]
            xb = X[batch]
            if augment is not None:
                xb = augment(xb, generator)
            optimizer.zero_grad()
            loss = sign * loss_fn(module(xb), y[batch])
            loss.backward()
            optimizer.step()
            n_steps += 1
            epochs_done += len(batch) / len(perm)
    return n_steps, epochs_done


class FineTuneEraser(_BaseBaselineEraser):
    """Fine-tune the network on the remaining samples ``D∖S`` (the "fine-tuning" baseline).

    :meth:`forget` runs SGD with momentum on the training loss of the remaining samples,
    with the module in training mode (batch-norm statistics follow ``D∖S``), for
    ``epochs`` epochs or until ``max_seconds`` have passed since the request arrived,
    whichever comes first. It needs the training set, which :meth:`fit` keeps.

    Parameters
    ----------
    module : torch.nn.Module
        The trained network, updated in place.
    loss_fn : callable
        ``loss_fn(output, target)``, a mean over the batch (as used for training).
    epochs : int, default=2
    lr : float, default=0.01
        Constant learning rate.
    momentum : float, default=0.9
    weight_decay : float, default=0.0
    batch_size : int, default=128
    max_seconds : float, default=None
        Time budget of one request (the remaining-data baselines are given the time
        SSSE takes in the benchmarks).
    augment : callable, default=None
        ``augment(X_batch, generator) -> X_batch``, the training augmentation.
    random_state : int, default=0
        Seed of the shuffling (and of ``augment``).

    Attributes
    ----------
    n_samples_ : int
    n_forgotten_ : int
    n_steps_ : int
        SGD steps of the last request.
    epochs_done_ : float
        Epochs (fractional) of the last request.
    forget_seconds_ : float
    """

    def __init__(
        self,
        module,
        loss_fn,
        *,
        epochs=2,
        lr=0.01,
        momentum=0.9,
        weight_decay=0.0,
        batch_size=128,
        max_seconds=None,
        augment=None,
        random_state=0,
    ):
        self.module = module
        self.loss_fn = loss_fn
        self.epochs = epochs
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_seconds = max_seconds
        self.augment = augment
        self.random_state = random_state

    def _check_params(self):
        self._check_common()
        self._positive_int("epochs", self.epochs)
        self._positive_int("batch_size", self.batch_size)
        self._positive_real("lr", self.lr)
        self._positive_real("momentum", self.momentum, allow_zero=True)
        self._positive_real("weight_decay", self.weight_decay, allow_zero=True)

    def _run(self, X_removed, y_removed, remaining, start):
        generator = torch.Generator().manual_seed(int(self.random_state))
        self.n_steps_, self.epochs_done_ = _sgd_epochs(
            self.module,
            self.loss_fn,
            self.X_,
            self.y_,
            remaining,
            sign=1.0,
            epochs=self.epochs,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            max_seconds=self.max_seconds,
            start=start,
            augment=self.augment,
            generator=generator,
            train_mode=True,
        )


class NegGradEraser(_BaseBaselineEraser):
    """Gradient ascent on the loss of the removed samples ("NegGrad").

    :meth:`forget` runs SGD on ``−loss`` over ``S`` for ``epochs`` epochs, with the module in
    evaluation mode so that batch-norm keeps the running statistics of ``D`` (batches of
    ``S`` alone, often one class, would otherwise replace them). Only ``S`` is needed.

    Parameters
    ----------
    module : torch.nn.Module
    loss_fn : callable
        ``loss_fn(output, target)``, a mean over the batch.
    epochs : int, default=1
    lr : float, default=0.01
    momentum : float, default=0.0
    batch_size : int, default=64
    max_seconds : float, default=None
    random_state : int, default=0

    Attributes
    ----------
    n_samples_ : int
    n_forgotten_ : int
    n_steps_ : int
    forget_seconds_ : float
    """

    _needs_remaining = False

    def __init__(
        self,
        module,
        loss_fn,
        *,
        epochs=1,
        lr=0.01,
        momentum=0.0,
        batch_size=64,
        max_seconds=None,
        random_state=0,
    ):
        self.module = module
        self.loss_fn = loss_fn
        self.epochs = epochs
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.max_seconds = max_seconds
        self.random_state = random_state

    def _check_params(self):
        self._check_common()
        self._positive_int("epochs", self.epochs)
        self._positive_int("batch_size", self.batch_size)
        self._positive_real("lr", self.lr)
        self._positive_real("momentum", self.momentum, allow_zero=True)

    def _run(self, X_removed, y_removed, remaining, start):
        generator = torch.Generator().manual_seed(int(self.random_state))
        self.n_steps_, _ = _sgd_epochs(
            self.module,
            self.loss_fn,
            X_removed,
            y_removed,
            np.arange(len(X_removed)),
            sign=-1.0,
            epochs=self.epochs,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=0.0,
            batch_size=self.batch_size,
            max_seconds=self.max_seconds,
            start=start,
            augment=None,
            generator=generator,
            train_mode=False,
        )


class FisherForgettingEraser(_BaseBaselineEraser):
    """Fisher forgetting (Golatkar, Achille & Soatto, CVPR 2020).

    :meth:`forget` estimates the diagonal Fisher ``F`` of the remaining samples ``D∖S`` at
    the current parameters and adds Gaussian noise with covariance
    ``alpha · diag(min(1/(F + damping), max_inverse))``::

        θ ← θ + sqrt(alpha · min(1/(F + damping), max_inverse)) ⊙ ξ,   ξ ~ N(0, I).

    Parameters the remaining data constrain (large ``F``) barely move; the others, which
    can only carry information about ``S``, are scrambled. This is the noise form of the
    authors' public code (covariance ``∝ F⁻¹`` with the inverse clipped); the paper writes
    the optimal noise for a quadratic loss with ``(λσ²)^{1/4} F^{-1/4}``. The per-layer
    heuristics of that code (averaging the variance over a filter's inputs, ten times more
    noise on the last layer and on batch-norm) are not applied.

    ``F`` is estimated from per-sample gradients (``torch.func`` ``vmap`` of ``grad``) of
    the remaining samples in a random order, in evaluation mode, until all are used or
    ``max_seconds`` (counted from the request) or ``max_samples`` is reached. With
    ``fisher="empirical"`` the gradients are those of the true labels; with
    ``fisher="sampled"`` one label per sample is drawn from the network's softmax output
    (a Monte Carlo estimate of the true Fisher, which the authors use; it needs targets
    that are class indices).

    Parameters
    ----------
    module : torch.nn.Module
    loss_fn : callable
        ``loss_fn(output, target)``; called on batches of one sample.
    alpha : float, default=1e-6
        Scale of the noise covariance.
    damping : float, default=1e-8
        Added to ``F`` before inverting.
    max_inverse : float, default=1000.0
        Clip of ``1/(F + damping)`` (the authors' value).
    fisher : {"empirical", "sampled"}, default="empirical"
    grad_batch_size : int, default=64
        Samples per vectorized gradient computation.
    max_samples : int, default=None
        At most this many remaining samples enter ``F``.
    max_seconds : float, default=None
    random_state : int, default=0
        Seed of the sample order, the sampled labels and the noise.

    Attributes
    ----------
    fisher_diagonal_ : ndarray of shape (n_params,)
        ``F`` of the last request, over the flat vector of ``module.parameters()`` (each
        flattened in its logical order).
    variance_ : ndarray of shape (n_params,)
        The noise variance of the last request.
    noise_ : ndarray of shape (n_params,)
        The ``ξ`` drawn for the last request.
    n_fisher_samples_ : int
        Remaining samples that entered ``F``.
    n_samples_ : int
    n_forgotten_ : int
    forget_seconds_ : float
    """

    def __init__(
        self,
        module,
        loss_fn,
        *,
        alpha=1e-6,
        damping=1e-8,
        max_inverse=1000.0,
        fisher="empirical",
        grad_batch_size=64,
        max_samples=None,
        max_seconds=None,
        random_state=0,
    ):
        self.module = module
        self.loss_fn = loss_fn
        self.alpha = alpha
        self.damping = damping
        self.max_inverse = max_inverse
        self.fisher = fisher
        self.grad_batch_size = grad_batch_size
        self.max_samples = max_samples
        self.max_seconds = max_seconds
        self.random_state = random_state

    def _check_params(self):
        self._check_common()
        self._positive_real("alpha", self.alpha, allow_zero=True)
        self._positive_real("damping", self.damping)
        self._positive_real("max_inverse", self.max_inverse)
        self._positive_int("grad_batch_size", self.grad_batch_size)
        if self.max_samples is not None:
            self._positive_int("max_samples", self.max_samples)
        if self.fisher not in ("empirical", "sampled"):
            raise ValueError(f"fisher must be 'empirical' or 'sampled', got {self.fisher!r}.")

    def diagonal_fisher(self, X, y, *, generator=None, max_seconds=None, start=None):
        """Mean squared per-sample gradient over ``X`` (at most ``max_seconds``).

        Parameters
        ----------
        X : torch.Tensor of shape (n, ...)
        y : torch.Tensor of shape (n, ...)
        generator : torch.Generator, default=None
            Draws the labels when ``fisher="sampled"``.

        Returns
        -------
        fisher : ndarray of shape (n_params,)
        n_used : int
        """
        module, loss_fn = self.module, self.loss_fn
        named = dict(module.named_parameters())
        names = list(named)
        buffers = dict(module.named_buffers())
        params = {n: p.detach() for n, p in named.items()}

        def sample_loss(p, x, target):
            out = functional_call(module, {**buffers, **p}, (x.unsqueeze(0),))
            return loss_fn(out, target.unsqueeze(0))

        per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
        total = torch.zeros(sum(p.numel() for p in params.values()), dtype=torch.float64)
        module.eval()
        n_used = 0
        for s in range(0, X.shape[0], self.grad_batch_size):
            if max_seconds is not None and n_used and time.perf_counter() - start >= max_seconds:
                break
            xb, yb = X[s : s + self.grad_batch_size], y[s : s + self.grad_batch_size]
            if self.fisher == "sampled":
                with torch.no_grad():
                    probs = torch.softmax(module(xb), dim=1).to("cpu", torch.float64)
                yb = torch.multinomial(probs, 1, generator=generator)[:, 0].to(yb.device)
            grads = per_sample(params, xb, yb)
            flat = torch.cat([grads[n].reshape(len(xb), -1) for n in names], dim=1)
            total += flat.to("cpu", torch.float64).pow(2).sum(dim=0)
            n_used += len(xb)
        return (total / n_used).numpy(), n_used

    def _run(self, X_removed, y_removed, remaining, start):
        generator = torch.Generator().manual_seed(int(self.random_state))
        order = remaining[torch.randperm(len(remaining), generator=generator).numpy()]
        if self.max_samples is not None:
            order = order[: self.max_samples]
        rows = torch.as_tensor(order, device=self.X_.device)
        fisher, n_used = self.diagonal_fisher(
            self.X_[rows],
            self.y_[rows],
            generator=generator,
            max_seconds=self.max_seconds,
            start=start,
        )
        variance = self.alpha * np.minimum(1.0 / (fisher + self.damping), self.max_inverse)
        noise = torch.randn(len(variance), generator=generator, dtype=torch.float64).numpy()
        _set_flat_parameters(self.module, _flat_parameters(self.module) + np.sqrt(variance) * noise)
        self.fisher_diagonal_ = fisher
        self.variance_ = variance
        self.noise_ = noise
        self.n_fisher_samples_ = int(n_used)
