"""Metrics to evaluate how well samples were erased from a trained model.

- :func:`similarity_ratio`: the SSSE paper's similarity ratio (Eq. 5), comparing the
  per-label ROC AUCs of the erased, original and retrained models on the removed samples.
- :func:`parameter_distance`: normalized distance to the retrained model in parameter space.
- :func:`membership_inference` and :func:`membership_inference_report`: loss-based
  membership inference attacks.
- :func:`make_similarity_scorer`: the similarity ratio as a scikit-learn scorer.
"""

from ._membership import (
    MembershipInferenceResult,
    membership_inference,
    membership_inference_report,
)
from ._scorer import make_similarity_scorer
from ._similarity import parameter_distance, similarity_ratio

__all__ = [
    "MembershipInferenceResult",
    "make_similarity_scorer",
    "membership_inference",
    "membership_inference_report",
    "parameter_distance",
    "similarity_ratio",
]
