"""sklearn_ssse: erase training samples from fitted scikit-learn models in one step.

The estimators fit like scikit-learn's linear models and gain ``forget(X_removed,
y_removed)``, a closed-form Newton/SSSE step (Peste, Alistarh & Lampert, 2021) on a stored
block curvature that needs no access to the training set.
"""

from ._base import SKOPS_TRUSTED_TYPES, ForgetStep
from ._bounds import RefitRequired
from ._certified import RemovalBudgetError
from ._fingerprint import AmbiguousWeightError
from ._pipeline import forget
from ._wrap import NotOptimalWarning, make_unlearnable
from .curvature import BlockFisherInverse, CurvatureError
from .linear_model import (
    UnlearnableGammaRegressor,
    UnlearnableLinearSVC,
    UnlearnableLogisticRegression,
    UnlearnablePoissonRegressor,
    UnlearnableRidge,
    UnlearnableRidgeClassifier,
    UnlearnableTweedieRegressor,
)
from .model_selection import SampleEraser, similarity_ratio_path

__version__ = "0.1.0"

__all__ = [
    "AmbiguousWeightError",
    "BlockFisherInverse",
    "CurvatureError",
    "ForgetStep",
    "NotOptimalWarning",
    "RefitRequired",
    "RemovalBudgetError",
    "SKOPS_TRUSTED_TYPES",
    "SampleEraser",
    "UnlearnableGammaRegressor",
    "UnlearnableLinearSVC",
    "UnlearnableLogisticRegression",
    "UnlearnablePoissonRegressor",
    "UnlearnableRidge",
    "UnlearnableRidgeClassifier",
    "UnlearnableTweedieRegressor",
    "__version__",
    "forget",
    "make_unlearnable",
    "similarity_ratio_path",
]
