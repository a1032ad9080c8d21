"""A scikit-learn transformer that computes features with a frozen PyTorch module."""

from __future__ import annotations

import copy
import sys
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError

__all__ = ["TorchFeatureExtractor"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class _StopForward(Exception):
    """Raised by the layer hook so the rest of the network is not computed."""


class _Progress:
    """A dependency-free text progress bar on stderr."""

    def __init__(self, total, enabled):
        self.total, self.enabled, self.start = total, enabled, time.perf_counter()

    def update(self, done):
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / max(self.total, 1))
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} batches {elapsed:.1f}s"
        )
        if done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _as_tensor(X, dtype):
    if isinstance(X, torch.Tensor):
        return X.detach().to(dtype=dtype)
    if isinstance(X, (list, tuple)):
        X = np.stack([np.asarray(x) for x in X])
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must be a numeric array of samples, got dtype {X.dtype}.")
    return torch.as_tensor(X).to(dtype=dtype)


class TorchFeatureExtractor(TransformerMixin, BaseEstimator):
    """Features of a PyTorch module (or of one of its layers) as a scikit-learn transformer.

    The module is used as it is: it is never trained here, and ``fit`` learns nothing
    from the data (it only records the output width for :meth:`get_feature_names_out`).
    That is what makes it safe to erase samples *through* a pipeline that starts with it,
    see :func:`sklearn_ssse.forget`: the features of a sample do not depend on the other
    training samples. The scikit-learn tag ``requires_fit`` is therefore ``False``.

    Inputs are run in evaluation mode (batch-norm uses its running statistics, dropout is
    off) and without gradient tracking, in batches; the module's own train/eval flags are
    restored afterwards. The last, incomplete batch is padded with zeros to ``batch_size``
    rows: CPU kernels picked by the batch shape change the last bits of the result, and a
    sample must get bit-identical features whether it is transformed with the whole
    training set or alone in a removal request (the unlearnable estimators check removal
    requests against exact fingerprints of the samples they were fitted on).

    Parameters
    ----------
    module : torch.nn.Module
        The network, already trained (for example on another data set).
    layer : str, default=None
        Dotted name of a submodule (as in ``module.named_modules()``) whose output are the
        features; the forward pass stops there. ``None`` uses the module's output.
    batch_size : int, default=256
        Samples per forward pass.
    device : str or torch.device, default="cpu"
    dtype : {"float32", "float64"}, default="float32"
        Precision of the computation; a converted copy of the module is used if the
        module's parameters are in another precision or on another device.
    progress : bool or "auto", default="auto"
        Show a progress bar on stderr; ``"auto"`` shows it for more than 20 batches when
        stderr is a terminal.

    Attributes
    ----------
    n_features_out_ : int
        Width of the flattened features, set by ``fit`` or ``fit_transform``.

    Notes
    -----
    Pickling stores the module's architecture without weights (a copy on PyTorch's
    ``meta`` device) and the weights as a CPU ``state_dict``; unpickling rebuilds the
    module on the CPU and loads the state dict. The module's class must be importable.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn_ssse.torch import TorchFeatureExtractor
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5), torch.nn.ReLU())
    >>> X = np.random.default_rng(0).normal(size=(7, 3, 2, 2))
    >>> TorchFeatureExtractor(net).fit_transform(X).shape
    (7, 5)
    """

    def __init__(
        self, module, *, layer=None, batch_size=256, device="cpu", dtype="float32", progress="auto"
    ):
        self.module = module
        self.layer = layer
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.progress = progress

    # ------------------------------------------------------------------ helpers
    def _check_params(self):
        if not isinstance(self.module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(self.module).__name__}.")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}.")
        if not (isinstance(self.batch_size, (int, np.integer)) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}.")
        if self.progress not in (True, False, "auto"):
            raise ValueError(f"progress must be True, False or 'auto', got {self.progress!r}.")
        if self.layer is not None:
            try:
                self.module.get_submodule(self.layer)
            except AttributeError as error:
                names = [name for name, _ in self.module.named_modules() if name][:20]
                raise ValueError(
                    f"The module has no layer {self.layer!r}; its layers include {names}."
                ) from error
        return _DTYPES[self.dtype], torch.device(self.device)

    def _runtime_module(self, dtype, device):
        """The module itself if it already has the right dtype and device, else a cached copy."""
        tensors = list(self.module.parameters()) + list(self.module.buffers())
        floating = [t for t in tensors if t.is_floating_point()]
        if all(t.dtype == dtype and t.device == device for t in floating):
            return self.module
        key = (id(self.module), dtype, device)
        cached = self.__dict__.get("_runtime_cache")
        if cached is None or cached[0] != key:
            runtime = copy.deepcopy(self.module).to(device=device, dtype=dtype)
            self.__dict__["_runtime_cache"] = (key, runtime)
            cached = self.__dict__["_runtime_cache"]
        return cached[1]

    def _compute(self, X, pad=True):
        dtype, device = self._check_params()
        X = _as_tensor(X, dtype)
        if X.ndim < 1 or X.shape[0] == 0:
            raise ValueError("X must hold at least one sample along its first axis.")
        module = self._runtime_module(dtype, device)
        n_batches = -(-X.shape[0] // self.batch_size)
        show = self.progress is True or (
            self.progress == "auto" and n_batches > 20 and sys.stderr.isatty()
        )
        bar = _Progress(n_batches, show)
        captured = {}
        handle = None
        if self.layer is not None:

            def hook(_module, _inputs, output):
                captured["out"] = output
                raise _StopForward

            handle = module.get_submodule(self.layer).register_forward_hook(hook)
        # Restore each submodule's own flag: a user may keep parts of a module in train mode.
        flags = {m: m.training for m in module.modules()}
        module.eval()
        outputs = []
        try:
            with torch.inference_mode():
                for b, start in enumerate(range(0, X.shape[0], self.batch_size)):
                    batch = X[start : start + self.batch_size].to(device)
                    n_rows = batch.shape[0]
                    if pad and n_rows < self.batch_size:
                        # Pad to a full batch: kernels chosen by batch shape change the
                        # last bits, and a sample must get the same features whether it
                        # is transformed with the training set or in a removal request.
                        filler = batch.new_zeros((self.batch_size - n_rows, *batch.shape[1:]))
                        batch = torch.cat([batch, filler])
                    try:
                        out = module(batch)
                    except _StopForward:
                        out = captured.pop("out")
                    if isinstance(out, (tuple, list)):
                        out = out[0]
                    out = out[:n_rows]
                    outputs.append(out.reshape(n_rows, -1).to("cpu", torch.float64))
                    bar.update(b + 1)
        finally:
            if handle is not None:
                handle.remove()
            for m, flag in flags.items():
                m.training = flag
        return torch.cat(outputs).numpy().astype(self.dtype, copy=False)

    # ------------------------------------------------------------------ estimator API
    def fit(self, X, y=None):
        """Record the feature width from one sample; nothing is learned from ``X``.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, ...)
        y : None
            Ignored.

        Returns
        -------
        self
        """
        # One sample is enough (lists, arrays and tensors all slice).
        self.n_features_out_ = self._compute(X[:1], pad=False).shape[1]
        return self

    def transform(self, X):
        """Compute the flattened features of ``X``.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, ...)
            Samples in the layout the module expects (for images usually
            ``(n, channels, height, width)``).

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out)
        """
        return self._compute(X)

    def fit_transform(self, X, y=None, **fit_params):
        """Transform ``X`` once and record the feature width.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, ...)
        y : None
            Ignored.
        **fit_params : dict
            Ignored.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out)
        """
        features = self._compute(X)
        self.n_features_out_ = features.shape[1]
        return features

    def get_feature_names_out(self, input_features=None):
        """Names ``torchfeatureextractor0, torchfeatureextractor1, ...``.

        Parameters
        ----------
        input_features : None
            Ignored (the inputs are tensors, not named columns).

        Returns
        -------
        ndarray of str of shape (`n_features_out_`,)
        """
        if not hasattr(self, "n_features_out_"):
            raise NotFittedError(
                "The feature width is known after fit or fit_transform; call one of them."
            )
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        # A copy: object.__getstate__ returns the instance's own __dict__.
        state = dict(super().__getstate__())
        state.pop("_runtime_cache", None)
        module = state.get("module")
        if isinstance(module, torch.nn.Module):
            weights = {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}
            state["module"] = _PickledModule(copy.deepcopy(module).to("meta"), weights)
        return state

    def __setstate__(self, state):
        module = state.get("module")
        if isinstance(module, _PickledModule):
            state["module"] = module.restore()
        super().__setstate__(state)


class _PickledModule:
    """Architecture (weights on the ``meta`` device, so without data) plus a state dict."""

    def __init__(self, skeleton, state_dict):
        self.skeleton = skeleton
        self.state_dict = state_dict

    def restore(self):
        module = self.skeleton.to_empty(device="cpu")
        module.load_state_dict(self.state_dict)
        return module
