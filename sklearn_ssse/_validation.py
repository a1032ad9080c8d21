"""Input validation of the estimators: malformed fit input, removal requests (samples,
targets, weights, ``eps``) and the guard against settings changed since the fit."""

from __future__ import annotations

from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted, validate_data


class ValidationMixin:
    """Validation of requests and the fit-time settings guard."""

    def _validate_eps(self, eps):
        eps = self.eps if eps is None else eps
        if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (Real, np.number)):
            raise TypeError(f"eps must be a real number, got {type(eps).__name__}: {eps!r}.")
        eps = float(eps)
        if not np.isfinite(eps) or eps < 0:
            raise ValueError(f"eps must be a finite number >= 0, got {eps!r}.")
        return eps

    def _refuse_malformed_fit_input(self, X, y):
        """The package's own messages for inputs numpy would refuse in its own words."""
        if not (sp.issparse(X) or hasattr(X, "shape")) and _is_ragged(X):
            raise ValueError(
                "X is a ragged list (its rows have different lengths); pass a 2-D array of "
                "shape (n_samples, n_features)."
            )
        if y is not None and not (sp.issparse(y) or hasattr(y, "shape")):
            if _is_ragged(y):
                raise ValueError(
                    "y is a ragged list (its rows have different lengths); pass one target "
                    "row per sample, all of the same length."
                )
            if hasattr(y, "__len__") and len(y) == 0:
                raise ValueError("y is empty: give one target per sample of X.")
        if y is not None and _contains_none(y):
            raise ValueError("y contains None; every sample needs its target.")

    def _validate_removed(self, X, y, what="X_removed"):
        check_is_fitted(self, "curvature_")
        if y is None:
            raise ValueError(f"{what} needs its targets y, got None.")
        if sp.issparse(X) or hasattr(X, "shape"):
            n_rows = X.shape[0] if len(X.shape) else None
        else:
            n_rows = len(X) if hasattr(X, "__len__") else None
        if n_rows == 0:
            raise ValueError(f"{what} is empty (0 samples): there is nothing to erase.")
        y_what = "y_removed" if what == "X_removed" else "y"
        if not (sp.issparse(X) or hasattr(X, "shape")) and _is_ragged(X):
            raise ValueError(
                f"{what} is a ragged list (its rows have different lengths); pass a 2-D "
                f"array of shape (n_samples, {self.n_features_in_})."
            )
        if not (sp.issparse(y) or hasattr(y, "shape")):
            if _is_ragged(y):
                raise ValueError(
                    f"{y_what} is a ragged list (its rows have different lengths); pass one "
                    "target row per sample, all of the same length."
                )
            if hasattr(y, "__len__") and len(y) == 0:
                raise ValueError(f"{y_what} is empty: give one target per sample of {what}.")
        if _contains_none(y):
            raise ValueError(f"{y_what} contains None; every sample needs its label.")
        try:
            X = validate_data(
                self,
                X,
                reset=False,
                accept_sparse="csr",
                dtype=np.float64,
                ensure_min_samples=1,
            )
        except (TypeError, ValueError) as error:
            if "convert" not in str(error) and "argument must be" not in str(error):
                raise
            raise ValueError(f"{what} must be numeric: {error}") from error
        Y = self._encode_removed_targets(y)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"X_removed has {X.shape[0]} samples but y_removed has {Y.shape[0]}.")
        if not np.all(np.isfinite(Y)):
            raise ValueError("y_removed contains NaN or infinity.")
        return X, Y

    # Parameters baked into the stored curvature, the fitted parameters or the certificate at
    # fit time. ``eps``, ``leave_out``, ``check_membership`` and ``n_jobs`` are read at each
    # request and may change freely after fit.
    _settings_fixed_at_fit = (
        "C",
        "alpha",
        "fit_intercept",
        "curvature",
        "damping",
        "curvature_dtype",
        "certified",
        "noise_sigma",
        "certified_epsilon",
        "certified_delta",
    )

    def _fit_settings(self):
        return {
            name: getattr(self, name)
            for name in self._settings_fixed_at_fit
            if name in self.get_params(deep=False)
        }

    def _check_fit_settings(self):
        """Refuse a request after ``set_params`` changed what the stored state was built with:
        half of the step would follow the new setting and half the old one."""
        at_fit = getattr(self, "_settings_at_fit", None)
        if at_fit is None:  # saved before the settings were recorded
            return
        now = self._fit_settings()
        changed = [name for name in at_fit if not _same_setting(now.get(name), at_fit[name])]
        if changed:
            detail = ", ".join(f"{n}={at_fit[n]!r} at fit, now {now.get(n)!r}" for n in changed)
            raise ValueError(
                f"{type(self).__name__} parameters changed after fit ({detail}); the stored "
                "curvature and parameters were built with the fit-time values. Set them back "
                "or fit again; eps, leave_out and check_membership may change freely."
            )


def _is_ragged(value):
    """Whether a nested list has rows of different lengths (numpy would refuse it with its
    own wording)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        return False
    lengths = {len(row) if isinstance(row, (list, tuple, np.ndarray)) else -1 for row in value}
    return len(lengths) > 1


def _contains_none(y):
    if y is None:
        return True
    if isinstance(y, np.ndarray):
        return y.dtype.kind == "O" and any(v is None for v in y.ravel())
    if isinstance(y, (list, tuple)):
        return any(
            v is None or (isinstance(v, (list, tuple)) and any(w is None for w in v)) for v in y
        )
    return False


def _same_setting(a, b):
    """Settings compared by their exact value in float64 and by kind: ``np.float32(0.1)``
    is not ``0.1`` (numpy alone compares a float32 with a Python float in float32, where
    they are equal), ``True`` is not ``1``, and strings compare as strings."""
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        return isinstance(a, (bool, np.bool_)) and isinstance(b, (bool, np.bool_)) and a == b
    if isinstance(a, (Real, np.number)) and isinstance(b, (Real, np.number)):
        return bool(np.float64(a) == np.float64(b))
    return type(a) is type(b) and a == b


def _check_removed_weights(sample_weight, k):
    """A removal request's ``sample_weight``: ``k`` finite positive numbers."""
    if isinstance(sample_weight, (Real, np.number)) and not isinstance(sample_weight, bool):
        sample_weight = np.full(k, float(sample_weight))
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"sample_weight must be numeric: {error}") from error
    if weights.shape != (k,):
        raise ValueError(f"sample_weight must have shape ({k},), got {weights.shape}.")
    if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        raise ValueError("sample_weight must be finite and > 0 for every removed sample.")
    return weights + 0.0
