"""Linear estimators that can forget training samples."""

from ._logistic import UnlearnableLogisticRegression
from ._ridge import UnlearnableRidge

__all__ = ["UnlearnableLogisticRegression", "UnlearnableRidge"]
