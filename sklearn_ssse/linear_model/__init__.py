"""Linear estimators that can forget training samples."""

from ._glm import (
    UnlearnableGammaRegressor,
    UnlearnablePoissonRegressor,
    UnlearnableTweedieRegressor,
)
from ._logistic import UnlearnableLogisticRegression
from ._ridge import UnlearnableRidge
from ._ridge_classifier import UnlearnableRidgeClassifier

__all__ = [
    "UnlearnableGammaRegressor",
    "UnlearnableLogisticRegression",
    "UnlearnablePoissonRegressor",
    "UnlearnableRidge",
    "UnlearnableRidgeClassifier",
    "UnlearnableTweedieRegressor",
]
