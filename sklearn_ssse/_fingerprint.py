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

__all__ = ["FingerprintMultiset", "row_fingerprints"]

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


class FingerprintMultiset:
    """Multiset of sample fingerprints with exact removal accounting.

    Parameters
    ----------
    digests : ndarray of dtype S16
        One digest per training sample (duplicates allowed and counted).
    """

    def __init__(self, digests):
        self.digests, self.counts = np.unique(digests, return_counts=True)

    def __len__(self):
        return int(self.counts.sum())

    @property
    def nbytes(self):
        return self.digests.nbytes + self.counts.nbytes

    def counts_of(self, digests):
        """Number of stored copies of each digest (0 if absent)."""
        position = np.searchsorted(self.digests, digests)
        position = np.minimum(position, len(self.digests) - 1)
        found = (self.digests[position] == digests) if len(self.digests) else False
        return np.where(found, self.counts[position] if len(self.digests) else 0, 0)

    def missing(self, digests):
        """Indices (into ``digests``) of requests that exceed the stored copies.

        With duplicates in the request, the copies beyond the stored count are reported."""
        order = np.argsort(digests, kind="stable")
        sorted_digests = digests[order]
        # rank of each request among equal digests (0 for the first copy, 1 for the second…)
        first = np.searchsorted(sorted_digests, sorted_digests, side="left")
        rank_sorted = np.arange(len(sorted_digests)) - first
        rank = np.empty_like(rank_sorted)
        rank[order] = rank_sorted
        return np.flatnonzero(rank >= self.counts_of(digests))

    def without(self, digests):
        """Return a new multiset with one copy of each of ``digests`` removed."""
        unique, removed = np.unique(digests, return_counts=True)
        position = np.searchsorted(self.digests, unique)
        counts = self.counts.copy()
        counts[position] -= removed
        if np.any(counts < 0) or np.any(self.digests[position] != unique):
            raise ValueError("Cannot remove fingerprints that are not stored.")
        result = FingerprintMultiset.__new__(FingerprintMultiset)
        keep = counts > 0
        result.digests, result.counts = self.digests[keep], counts[keep]
        return result
