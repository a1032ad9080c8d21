"""Dask support: fit the curvature (and the model) from dask arrays, blockwise, on a cluster.

Each pass of the estimators' ``fit_streaming`` is a map over row blocks and a
sum. :class:`DaskChunks` runs that map on the dask scheduler — a ``dask.distributed``
cluster if a ``Client`` is active — and sums the per-block results in a tree
(``split_every`` at a time), so only ``O(L·d²)`` statistics travel, never the rows.

Example::

    from dask.distributed import Client
    import dask.array as da
    from sklearn_ssse import UnlearnableLogisticRegression

    client = Client("tcp://scheduler:8786")
    X = da.from_zarr(...)          # (n, p), chunked along rows
    Y = da.from_zarr(...)          # (n, L)
    model = UnlearnableLogisticRegression(C=1.0).fit_dask(X, Y)
    model.forget(X_removed, Y_removed)   # forgetting itself is local: O(L·d²) state

Blocks may also be built and solved through joblib: ``n_jobs`` and
``joblib.parallel_config(backend="dask")`` (or ``"ray"``) send the per-block work of
:class:`~sklearn_ssse.curvature.BlockFisherInverse` and of
:class:`~sklearn_ssse.curvature.ArrayChunks` to the cluster unchanged.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np

from ._build import weighted_gram
from ._streaming import _combine

__all__ = ["DaskChunks", "dask_weighted_gram", "fit_dask", "is_dask_array"]


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError as error:  # pragma: no cover - exercised without dask
        raise ImportError(
            "This needs dask: pip install 'sklearn-ssse[dask]' (dask[distributed])."
        ) from error
    return dask, da


def is_dask_array(X):
    """Whether ``X`` is a :class:`dask.array.Array` (without importing dask)."""
    return type(X).__module__.startswith("dask.") and hasattr(X, "to_delayed")


def _row_blocks(X):
    """Delayed row blocks of a dask array, rechunked to whole rows (all columns)."""
    if X.ndim == 1:
        return list(X.to_delayed().ravel())
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return list(X.to_delayed()[:, 0])


def _tree_sum(dask, parts, split_every):
    combine = dask.delayed(_combine_many, pure=True)
    while len(parts) > 1:
        parts = [combine(parts[i : i + split_every]) for i in range(0, len(parts), split_every)]
    return parts[0]


def _combine_many(items):
    total = items[0]
    for item in items[1:]:
        total = _combine(total, item)
    return total


class DaskChunks:
    """Chunk source over the row blocks of dask arrays ``X`` (n, p) and ``Y`` (n,) or (n, L).

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
    Y : dask.array.Array or ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Rechunked along rows to match ``X``.
    split_every : int, default=8
        Fan-in of the tree sum of per-block statistics.
    """

    def __init__(self, X, Y, *, split_every=8):
        dask, da = _import_dask()
        if not is_dask_array(X):
            X = da.from_array(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D, got {X.ndim}-D.")
        if not is_dask_array(Y):
            Y = da.from_array(
                np.asarray(Y), chunks=(X.chunks[0],) + ((-1,) if np.ndim(Y) == 2 else ())
            )
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}.")
        if Y.chunks[0] != X.chunks[0]:
            Y = Y.rechunk({0: X.chunks[0]})
        if Y.ndim == 2 and len(Y.chunks[1]) > 1:
            Y = Y.rechunk({1: -1})
        self.X, self.Y = X, Y
        self.split_every = int(split_every)
        self.target_ndim = Y.ndim

    def __len__(self):
        return len(self.X.chunks[0])

    def map_reduce(self, function):
        """Compute ``Σ_blocks function(X_block, Y_block)`` on the active dask scheduler."""
        dask, _ = _import_dask()
        apply = dask.delayed(function, pure=True)
        parts = [apply(x, y) for x, y in zip(_row_blocks(self.X), _row_blocks(self.Y))]
        (total,) = dask.compute(_tree_sum(dask, parts, self.split_every))
        return total


def _gram_block(x, w, *, fit_intercept):
    return {"gram": weighted_gram(x, w, fit_intercept=fit_intercept)}


def dask_weighted_gram(X, weights=None, *, fit_intercept=False, dtype=np.float64, split_every=8):
    """``X̃ᵀ diag(weights) X̃`` of a dask array, accumulated blockwise on the dask scheduler.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
    weights : dask.array.Array or ndarray of shape (n_samples,), default=None
    fit_intercept : bool, default=False
    dtype : {np.float64, np.float32}, default=np.float64
        Precision of the result (the per-block sums are float64).
    split_every : int, default=8

    Returns
    -------
    ndarray of shape (d, d)
    """
    dask, da = _import_dask()
    if not is_dask_array(X):
        X = da.from_array(X)
    if weights is None:
        weights = da.ones(X.shape[0], chunks=(X.chunks[0],))
    elif not is_dask_array(weights):
        weights = da.from_array(np.asarray(weights, dtype=np.float64), chunks=(X.chunks[0],))
    elif weights.chunks[0] != X.chunks[0]:
        weights = weights.rechunk({0: X.chunks[0]})
    apply = dask.delayed(partial(_gram_block, fit_intercept=fit_intercept), pure=True)
    parts = [apply(x, w) for x, w in zip(_row_blocks(X), _row_blocks(weights))]
    (total,) = dask.compute(_tree_sum(dask, parts, split_every))
    return np.ascontiguousarray(total["gram"], dtype=dtype)


def fit_dask(estimator, X, Y, **params):
    """Deprecated: use ``estimator.fit_dask(X, Y, ...)``.

    Parameters
    ----------
    estimator : UnlearnableRidge or UnlearnableLogisticRegression
    X : dask.array.Array of shape (n_samples, n_features)
    Y : dask.array.Array or ndarray of shape (n_samples,) or (n_samples, n_outputs)
    **params
        ``split_every``, ``max_iter``, ``tol``, ``fingerprints`` of the estimator's
        ``fit_dask``.

    Returns
    -------
    estimator
    """
    warnings.warn(
        "sklearn_ssse.curvature.fit_dask(model, X, Y) is deprecated; call "
        "model.fit_dask(X, Y), which fits as one transaction of the model.",
        FutureWarning,
        stacklevel=2,
    )
    return estimator.fit_dask(X, Y, **params)
