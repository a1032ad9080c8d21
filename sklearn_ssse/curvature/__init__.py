"""The curvature engine: block-diagonal Fisher/Hessian inverses built with BLAS-3,
solved for many right-hand sides at once, and changed by rank-k Woodbury downdates."""

from ._block_inverse import BlockFisherInverse, CurvatureChange, CurvatureError
from ._build import batch_average, sherman_morrison_inverse, weighted_gram
from ._streaming import ArrayChunks, curvature_pass, fit_streaming, iter_chunks

__all__ = [
    "ArrayChunks",
    "BlockFisherInverse",
    "CurvatureChange",
    "CurvatureError",
    "batch_average",
    "curvature_pass",
    "fit_streaming",
    "iter_chunks",
    "sherman_morrison_inverse",
    "weighted_gram",
]
