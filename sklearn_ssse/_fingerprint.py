"""Compact fingerprints of training samples, to check that a removal request names samples
the model was trained on and has not yet forgotten.

A fingerprint is a 16-byte BLAKE2b digest of the sample's features and targets in
canonical float64 form (dense row bytes, so a sparse row and its dense twin agree). The
model keeps a multiset of fingerprints (sorted unique digests and their counts): 24 bytes
per distinct sample, never the raw data.
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp

__all__ = ["AmbiguousWeightError", "FingerprintMultiset", "row_fingerprints"]

_DIGEST = 16
_CHUNK = 4096


def row_fingerprints(X, Y):
    """Return an array of dtype ``S16`` with one digest per row of ``(X, Y)``."""
    n = X.shape[0]
    Y = np.asarray(Y, dtype=np.float64).reshape(n, -1)
    out = np.empty(n, dtype=f"S{_DIGEST}")
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        rows = X[start:stop]
        rows = rows.toarray() if sp.issparse(rows) else rows
        # +0.0 turns -0.0 into 0.0 so that equal values hash equally.
        block = np.hstack([np.asarray(rows, dtype=np.float64), Y[start:stop]]) + 0.0
        block = np.ascontiguousarray(block)
        for i, row in enumerate(block):
            out[start + i] = hashlib.blake2b(row.tobytes(), digest_size=_DIGEST).digest()
    return out


class AmbiguousWeightError(ValueError):
    """An unweighted removal request matches stored copies trained with different weights."""


def _keys(digests, weights):
    """Composite ``S24`` keys: the 16-byte digest followed by the float64 weight's bytes, so
    that sorting keeps the copies of one sample (any weight) adjacent."""
    digests = np.ascontiguousarray(digests, dtype=f"S{_DIGEST}")
    weights = np.ascontiguousarray(np.asarray(weights, dtype="<f8") + 0.0)
    n = len(digests)
    raw = np.hstack(
        [digests.view(np.uint8).reshape(n, _DIGEST), weights.view(np.uint8).reshape(n, 8)]
    )
    return np.ascontiguousarray(raw).view(f"S{_DIGEST + 8}").ravel()


class FingerprintMultiset:
    """Multiset of sample fingerprints (and the weights they were trained with) with exact
    removal accounting.

    Parameters
    ----------
    digests : ndarray of dtype S16
        One digest per training sample (duplicates allowed and counted).
    weights : ndarray of shape (n,), default=None
        The sample weight of each sample. ``None``: every sample has weight 1 (24 bytes per
        distinct sample); otherwise a copy of a sample trained with another weight is a
        distinct member (32 bytes per distinct (sample, weight)).

    Notes
    -----
    A removal request names each sample by its digest and, optionally, its weight. Without
    a weight, the request takes the weight of the stored copies; when the stored copies of a
    sample carry different weights the request is ambiguous and is refused
    (:class:`AmbiguousWeightError`): pass ``sample_weight`` to say which copy goes.
    """

    def __init__(self, digests, weights=None):
        if weights is None:
            self.digests, self.counts = np.unique(digests, return_counts=True)
            self.weights = None
            return
        keys, self.counts = np.unique(_keys(digests, weights), return_counts=True)
        raw = keys.view(np.uint8).reshape(len(keys), _DIGEST + 8)
        self.digests = np.ascontiguousarray(raw[:, :_DIGEST]).view(f"S{_DIGEST}").ravel()
        self.weights = np.ascontiguousarray(raw[:, _DIGEST:]).view("<f8").ravel().copy()

    def __len__(self):
        return int(self.counts.sum())

    @property
    def nbytes(self):
        weights = 0 if getattr(self, "weights", None) is None else self.weights.nbytes
        return self.digests.nbytes + self.counts.nbytes + weights

    def _stored_keys(self):
        if getattr(self, "weights", None) is None:
            return self.digests
        return _keys(self.digests, self.weights)

    def _request_keys(self, digests, weights):
        if getattr(self, "weights", None) is None:
            if weights is not None and np.any(np.asarray(weights) != 1.0):
                # An unweighted model holds weight-1 samples only: other weights never match.
                return _keys(digests, weights), _keys(self.digests, np.ones(len(self.digests)))
            return digests, self.digests
        if weights is None:
            weights = self.resolve_weights(digests)
        return _keys(digests, weights), self._stored_keys()

    def resolve_weights(self, digests):
        """The training weight of each requested digest (1 for an unweighted multiset).

        A digest not stored gets weight 1 (it is reported by :meth:`missing`).

        Raises
        ------
        AmbiguousWeightError
            If the stored copies of a requested sample carry different weights.
        """
        if getattr(self, "weights", None) is None or not len(self.digests):
            return np.ones(len(digests))
        lo = np.searchsorted(self.digests, digests, side="left")
        hi = np.searchsorted(self.digests, digests, side="right")
        ambiguous = np.flatnonzero(hi - lo > 1)
        if len(ambiguous):
            rows = ", ".join(map(str, ambiguous[:10])) + (" …" if len(ambiguous) > 10 else "")
            raise AmbiguousWeightError(
                f"{len(ambiguous)} removed samples (rows {rows}) match training copies with "
                "different sample weights; pass sample_weight to forget to say which copy "
                "to erase."
            )
        found = hi > lo
        return np.where(found, self.weights[np.minimum(lo, len(self.weights) - 1)], 1.0)

    def counts_of(self, digests, weights=None):
        """Number of stored copies of each digest (with that weight, if given; 0 if absent)."""
        requested, stored = self._request_keys(digests, weights)
        return _counts_of(stored, self.counts, requested)

    def missing(self, digests, weights=None):
        """Indices (into ``digests``) of requests that exceed the stored copies.

        With duplicates in the request, the copies beyond the stored count are reported."""
        requested, stored = self._request_keys(digests, weights)
        order = np.argsort(requested, kind="stable")
        sorted_keys = requested[order]
        # rank of each request among equal keys (0 for the first copy, 1 for the second…)
        first = np.searchsorted(sorted_keys, sorted_keys, side="left")
        rank_sorted = np.arange(len(sorted_keys)) - first
        rank = np.empty_like(rank_sorted)
        rank[order] = rank_sorted
        return np.flatnonzero(rank >= _counts_of(stored, self.counts, requested))

    def without(self, digests, weights=None):
        """Return a new multiset with one copy of each of ``digests`` removed."""
        requested, stored = self._request_keys(digests, weights)
        unique, removed = np.unique(requested, return_counts=True)
        position = np.searchsorted(stored, unique)
        position = np.minimum(position, max(len(stored) - 1, 0))
        counts = self.counts.copy()
        if len(unique) and (not len(stored) or np.any(stored[position] != unique)):
            raise ValueError("Cannot remove fingerprints that are not stored.")
        counts[position] -= removed
        if np.any(counts < 0):
            raise ValueError("Cannot remove fingerprints that are not stored.")
        result = FingerprintMultiset.__new__(FingerprintMultiset)
        keep = counts > 0
        result.digests, result.counts = self.digests[keep], counts[keep]
        weights = getattr(self, "weights", None)
        result.weights = None if weights is None else weights[keep]
        return result


def _counts_of(stored, counts, requested):
    if not len(stored):
        return np.zeros(len(requested), dtype=counts.dtype)
    position = np.minimum(np.searchsorted(stored, requested), len(stored) - 1)
    return np.where(stored[position] == requested, counts[position], 0)
