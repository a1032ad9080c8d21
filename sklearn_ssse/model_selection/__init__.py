"""Choosing the erasure scale ε: a meta-estimator for scikit-learn's search tools and the
whole γ(ε) curve from one solve."""

from ._eraser import SampleEraser
from ._path import similarity_ratio_path

__all__ = ["SampleEraser", "similarity_ratio_path"]
