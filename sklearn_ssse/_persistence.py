"""Persistence of the estimators: the format version, the types skops must trust, and
the state mixin writing and checking the format marker."""

from __future__ import annotations

import sys

import numpy as np

from ._transaction import _MISSING

#: Version of the persisted (pickle / joblib / skops) state of the estimators. Raise it when
#: a release changes the meaning of stored attributes; older releases then refuse the file
#: instead of mis-reading it. 2: pending curvature terms in column groups (with shared rows
#: and ``ZᵀZ``) and the bounds' Gram with its removed rows. 3: undamped blocks keep a
#: triangular factor of the base inverse (``M₀⁻¹ = T·Tᵀ``) and the pending term in its frame
#: (``Z = TᵀV``). Format 1 and 2 files still load (the curvature blocks convert themselves,
#: an array Gram is still a Gram).
FORMAT_VERSION = 3

#: The package's own types in a persisted estimator, for ``skops.io.load(...,
#: trusted=SKOPS_TRUSTED_TYPES)``. skops refuses types it does not know unless trusted.
SKOPS_TRUSTED_TYPES = [
    "sklearn_ssse._bounds.DowndatedGram",
    "sklearn_ssse._certified.Certificate",
    "sklearn_ssse._fingerprint.FingerprintMultiset",
    "sklearn_ssse.curvature._block_inverse.BlockFisherInverse",
    "sklearn_ssse.curvature._block_inverse._Block",
    "sklearn_ssse.curvature._pending._ScaledColumns",
    "sklearn_ssse.linear_model._glm.GLMCurvature",
    "sklearn_ssse.linear_model._glm.UnlearnableGammaRegressor",
    "sklearn_ssse.linear_model._glm.UnlearnablePoissonRegressor",
    "sklearn_ssse.linear_model._glm.UnlearnableTweedieRegressor",
    "sklearn_ssse.linear_model._logistic.UnlearnableLogisticRegression",
    "sklearn_ssse.linear_model._ridge.UnlearnableRidge",
    "sklearn_ssse.linear_model._ridge_classifier.UnlearnableRidgeClassifier",
    "sklearn_ssse.linear_model._svm.UnlearnableLinearSVC",
]


class PersistenceMixin:
    """Pickle / joblib / skops state with the persistence format marker and the package
    version; a file in a newer format is refused with a clear error."""

    def __getstate__(self):
        # Under the lock so that a model pickled while another thread forgets is either
        # before or after that request.
        with self._lock():
            state = dict(super().__getstate__())
        state.pop("_forget_lock", None)
        state["_sklearn_ssse_format"] = FORMAT_VERSION
        state["_sklearn_ssse_version"] = _package_version()
        return state

    def __setstate__(self, state):
        state = dict(state)
        stored = state.pop("_sklearn_ssse_format", _MISSING)
        version = state.pop("_sklearn_ssse_version", "unknown")
        state.pop("_forget_lock", None)  # locks are never part of the state
        name = type(self).__name__
        if stored is _MISSING:  # written before the marker existed: format 1 semantics
            stored = 1
        if isinstance(stored, (bool, np.bool_)) or not isinstance(stored, (int, np.integer)):
            raise ValueError(
                f"This {name} state has an invalid persistence format marker {stored!r} "
                f"({type(stored).__name__}, not an integer): the file is corrupt or was not "
                "written by sklearn_ssse. Refit the model."
            )
        if stored < 1:
            raise ValueError(
                f"This {name} state has an invalid persistence format marker {stored!r} "
                "(formats are numbered from 1): the file is corrupt or was not written by "
                "sklearn_ssse. Refit the model."
            )
        if stored > FORMAT_VERSION:
            raise ValueError(
                f"This {name} was saved by sklearn_ssse {version} in persistence format "
                f"{stored!r}; this installation (sklearn_ssse {_package_version()}) reads "
                f"formats up to {FORMAT_VERSION}. Upgrade sklearn_ssse to load it."
            )
        super().__setstate__(state)


def _package_version():
    # The package's attribute, read at call time from the loaded package (a submodule is
    # only ever imported after it), without an import of the package from below it.
    return sys.modules[__package__].__version__
