"""Deep features and deep networks (needs the optional ``torch`` extra).

* :class:`TorchFeatureExtractor`: a scikit-learn transformer around a (frozen) PyTorch
  module, to put deep features in front of an unlearnable linear model (the SSSE paper's
  CelebA setting) and erase through the pipeline with :func:`sklearn_ssse.forget`.
* :class:`NetworkEraser`: SSSE (Peste, Alistarh & Lampert, 2021, Eq. 2-4) for trained
  non-convex networks, with a block-diagonal empirical Fisher whose large blocks are kept
  matrix-free (M-FAC style, from the stored mini-batch gradients).
* :func:`lcodec_select`: L-CODEC / FOCI selection of the units (neurons, conv filters)
  most tied to the removed samples' loss (Mehta et al., CVPR 2022), to restrict the
  update to their parameters.
* :class:`FineTuneEraser`, :class:`NegGradEraser`, :class:`FisherForgettingEraser`: the
  standard baselines of deep unlearning (fine-tuning on the remaining data, gradient ascent
  on the removed samples, Fisher forgetting of Golatkar et al., CVPR 2020), with the same
  ``fit`` / ``forget`` interface.

Install with ``pip install "sklearn-ssse[torch]"``.
"""

try:
    import torch  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "sklearn_ssse.torch needs PyTorch, which is an optional dependency: install the "
        "'torch' extra with `pip install \"sklearn-ssse[torch]\"` (or `pip install torch`). "
        "The rest of sklearn_ssse works without it."
    ) from error

from ._baselines import FineTuneEraser, FisherForgettingEraser, NegGradEraser
from ._eraser import NetworkEraser, NetworkForgetStep
from ._features import TorchFeatureExtractor
from ._lcodec import codec, foci, lcodec_select
from ._woodbury import MatrixFreeFisherInverse

__all__ = [
    "FineTuneEraser",
    "FisherForgettingEraser",
    "MatrixFreeFisherInverse",
    "NegGradEraser",
    "NetworkEraser",
    "NetworkForgetStep",
    "TorchFeatureExtractor",
    "codec",
    "foci",
    "lcodec_select",
]
