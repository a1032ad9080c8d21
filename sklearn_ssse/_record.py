"""The erasure record: one log entry per removal request (fingerprints, not data),
``was_erased`` and the record as strict JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._fingerprint import row_fingerprints
from ._persistence import _package_version


class ErasureRecordMixin:
    """``erasure_log_`` entries, ``was_erased`` and ``erasure_log_to_json``."""

    def _log_entry(self, plan, eps, step_norm):
        return {
            "index": len(self.erasure_log_) + 1,
            "time": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            "n_samples": int(plan.n_removed),
            "n_unmatched": int(plan.n_unmatched),
            "eps": float(eps),
            "curvature": self.curvature,
            "leave_out": bool(self.leave_out),
            "damping": float(self.damping),
            "step_norm": step_norm,
            "fingerprints": [digest.hex() for digest in plan.erased_digests],
            "n_forgotten_total": int(self.n_forgotten_ + plan.n_removed),
            "n_samples_remaining": int(self.n_samples_ - plan.n_removed),
        }

    def _erased_digests(self):
        log = getattr(self, "erasure_log_", [])
        hexes = [h for entry in log for h in entry["fingerprints"]]
        return np.array([bytes.fromhex(h) for h in hexes], dtype="S16")

    def was_erased(self, X, y):
        """Whether each sample was erased by a :meth:`forget` of this fit.

        Samples are matched by fingerprint (features and targets, as given to ``forget``).
        A sample trained on several times counts as erased once any copy was erased.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        ndarray of bool of shape (n_samples,)
        """
        X, Y = self._validate_removed(X, y, what="X")
        return np.isin(row_fingerprints(X, Y), self._erased_digests())

    def erasure_log_to_json(self, path=None, *, indent=2):
        """The erasure record as JSON: one entry per :meth:`forget`, fingerprints not data.

        Parameters
        ----------
        path : str or path-like, default=None
            Also write the JSON to this file.
        indent : int, default=2

        Returns
        -------
        str
        """
        check_is_fitted(self, "curvature_")
        with self._lock():
            counts = int(self.n_samples_), int(self.n_forgotten_)
            entries = self.erasure_log_
        record = {
            "format": "sklearn_ssse.erasure_log",
            "format_version": 1,
            "package_version": _package_version(),
            "estimator": type(self).__name__,
            "fingerprint": "blake2b-128 of the float64 feature row followed by the encoded "
            "targets (dense, -0.0 as 0.0)",
            "certified": bool(self.certified),
            "n_samples_remaining": counts[0],
            "n_forgotten": counts[1],
            "entries": entries,
        }
        try:
            # Strict JSON: NaN and infinity are not JSON (forget refuses non-finite steps, so
            # a record holding one was not written by this release).
            text = json.dumps(record, indent=indent, allow_nan=False)
        except ValueError as error:
            raise ValueError(
                f"The erasure record contains a non-finite number and cannot be written as "
                f"strict JSON: {error}."
            ) from error
        if path is not None:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        return text
