"""The curvature engine: block-diagonal Fisher/Hessian inverses built with BLAS-3,
solved for many right-hand sides at once, and changed by rank-k Woodbury downdates."""

from ._block_inverse import BlockFisherInverse, CurvatureChange, CurvatureError
from ._build import batch_average, sherman_morrison_inverse, weighted_gram

__all__ = [
    "BlockFisherInverse",
    "CurvatureChange",
    "CurvatureError",
    "batch_average",
    "sherman_morrison_inverse",
    "weighted_gram",
]
