"""Dask support; the chunk source lives in the curvature engine
(:mod:`sklearn_ssse.curvature._dask`), the estimators' ``fit_dask`` in
:mod:`sklearn_ssse._out_of_core`. This module keeps the import path
``sklearn_ssse._dask`` working."""

from .curvature._dask import DaskChunks, dask_weighted_gram, fit_dask, is_dask_array

__all__ = ["DaskChunks", "dask_weighted_gram", "fit_dask", "is_dask_array"]
