"""The curvature engine: block-diagonal Fisher/Hessian inverses built with BLAS-3,
solved for many right-hand sides at once, and changed by rank-k Woodbury downdates."""

from ._block_inverse import (
    BlockFisherInverse,
    CurvatureChange,
    CurvatureError,
    SharedRowFactors,
)
from ._build import (
    CurvatureMemoryError,
    available_memory,
    batch_average,
    check_curvature_memory,
    curvature_nbytes,
    sherman_morrison_inverse,
    weighted_gram,
)
from ._dask import dask_weighted_gram, fit_dask
from ._matrix_free import MatrixFreeInverse
from ._normal import NormalEquationResidual, normal_equation_residual, solve_normal_equations
from ._streaming import ArrayChunks, curvature_pass, fit_streaming, iter_chunks

__all__ = [
    "ArrayChunks",
    "BlockFisherInverse",
    "CurvatureChange",
    "CurvatureError",
    "CurvatureMemoryError",
    "MatrixFreeInverse",
    "NormalEquationResidual",
    "SharedRowFactors",
    "available_memory",
    "batch_average",
    "check_curvature_memory",
    "curvature_nbytes",
    "curvature_pass",
    "dask_weighted_gram",
    "fit_dask",
    "fit_streaming",
    "iter_chunks",
    "normal_equation_residual",
    "sherman_morrison_inverse",
    "solve_normal_equations",
    "weighted_gram",
]
