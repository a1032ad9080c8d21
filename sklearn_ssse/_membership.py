"""Membership: a removal request's samples matched by fingerprint (features, targets and
weight) against the multiset of :class:`~sklearn_ssse._fingerprint.FingerprintMultiset`
the model holds; unmatched samples are refused under ``check_membership``.

(Not to be confused with :mod:`sklearn_ssse.metrics`' membership-inference attacks.)"""

from __future__ import annotations

import numpy as np

from ._validation import _check_removed_weights


class MembershipMixin:
    """The membership check of a removal request against the stored fingerprints."""

    def _match_removed(self, digests, k, sample_weight):
        """Match the removed samples' fingerprints (and weights) against the model's.

        Returns each removed sample's weight, the rows that match no sample still in the
        model, the digests of those that do, and the fingerprints after the removal (``None``
        for a model fitted without fingerprints). Refuses unmatched samples under
        ``check_membership``."""
        stored = self.__dict__.get("fingerprints_")
        if stored is None:
            if self.check_membership:
                raise ValueError(
                    "This model was fitted without fingerprints (fit_streaming(..., "
                    "fingerprints=False)), so it cannot check that the removed samples are "
                    "its own. Pass check_membership=False to erase them without the check, or "
                    "refit with fingerprints=True."
                )
            # Fitted from chunks without fingerprints: unit weights unless the request says.
            weights = (
                np.ones(k) if sample_weight is None else _check_removed_weights(sample_weight, k)
            )
            missing = np.zeros(0, dtype=np.intp)
        else:
            if sample_weight is not None:
                weights = _check_removed_weights(sample_weight, k)
            else:
                # Each sample leaves with the weight it was trained with (refused if ambiguous).
                weights = stored.resolve_weights(digests)
            missing = stored.missing(digests, weights)
        if self.check_membership:
            if len(missing):
                shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
                erased = np.isin(digests[missing], self._erased_digests())
                raise ValueError(
                    f"{len(missing)} of the {k} removed samples (rows {shown}) do not match a "
                    "training sample that is still in the model: never trained on, already "
                    "forgotten, or given with different features or labels "
                    f"({int(erased.sum())} of them are in erasure_log_ as already erased). "
                    "Pass check_membership=False to skip this check."
                )
        # Without the check, the fingerprints of samples that were in the model still go.
        matched = np.delete(digests, missing)
        fingerprints = (
            None if stored is None else stored.without(matched, np.delete(weights, missing))
        )
        return weights, missing, matched, fingerprints
