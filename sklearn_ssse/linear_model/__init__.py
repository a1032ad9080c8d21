"""Linear estimators that can forget training samples."""

from ._glm import (
    UnlearnableGammaRegressor,
    UnlearnablePoissonRegressor,
    UnlearnableTweedieRegressor,
)
from ._logistic import UnlearnableLogisticRegression
from ._ridge import UnlearnableRidge
from ._ridge_classifier import UnlearnableRidgeClassifier
from ._svm import UnlearnableLinearSVC

__all__ = [
    "UnlearnableGammaRegressor",
    "UnlearnableLinearSVC",
    "UnlearnableLogisticRegression",
    "UnlearnablePoissonRegressor",
    "UnlearnableRidge",
    "UnlearnableRidgeClassifier",
    "UnlearnableTweedieRegressor",
]
