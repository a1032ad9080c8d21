"""Matrix-free inverse of a damped empirical Fisher block from its stored gradients."""

from __future__ import annotations

import numpy as np
from scipy import linalg

__all__ = ["MatrixFreeFisherInverse"]


class MatrixFreeFisherInverse:
    """Apply ``B⁻¹`` for ``B = diag(D) + (1/m)·GᵀG`` without forming a ``d × d`` matrix.

    ``G`` holds the ``m`` (mini-batch averaged) gradients as rows and ``D = λ + p`` is the
    damping plus an optional diagonal penalty. By the Woodbury identity::

        B⁻¹ = D⁻¹ − D⁻¹Gᵀ (m·I + G D⁻¹ Gᵀ)⁻¹ G D⁻¹

    so only ``G`` (``m·d`` numbers) and the Cholesky factor of the ``m × m`` capacitance
    are stored. The setup costs ``O(m²·d)``, each solve ``O(m·d)``. This is the same
    matrix that the paper's Sherman-Morrison recurrence (Eq. 3) builds, and the same
    representation as M-FAC (Frantar, Kurtic & Alistarh, 2021), which applies the
    recurrence implicitly to ``m`` stored gradients.

    Parameters
    ----------
    gradients : ndarray of shape (m, d)
        The stored gradients ``g_j`` (kept by reference, not copied, when float64).
    diagonal : float or ndarray of shape (d,)
        ``D``: the damping ``λ`` plus the penalty's contribution; must be positive.

    Attributes
    ----------
    n_terms : int
        ``m``.
    size : int
        ``d``.
    """

    def __init__(self, gradients, diagonal):
        G = np.ascontiguousarray(gradients, dtype=np.float64)
        if G.ndim != 2:
            raise ValueError(f"gradients must be 2-D (m, d), got shape {G.shape}.")
        m, d = G.shape
        D = np.broadcast_to(np.asarray(diagonal, dtype=np.float64), (d,)).copy()
        if np.any(D <= 0) or not np.all(np.isfinite(D)):
            raise ValueError(
                "The matrix-free inverse needs a positive diagonal (damping λ > 0 or a "
                "positive penalty on every coordinate)."
            )
        self.G, self.D_inv = G, 1.0 / D
        self.n_terms, self.size = m, d
        GD = G * self.D_inv  # G D⁻¹
        capacitance = GD @ G.T
        capacitance.flat[:: m + 1] += m
        # m·I plus a Gram matrix in the D⁻¹ metric: symmetric positive definite.
        self._factor = linalg.cho_factor(capacitance, lower=True, check_finite=False)

    @property
    def nbytes(self):
        """Bytes held: the gradients, the diagonal and the capacitance factor."""
        return int(self.G.nbytes + self.D_inv.nbytes + self._factor[0].nbytes)

    def solve(self, r):
        """Return ``B⁻¹ r`` for a vector ``(d,)`` or a matrix ``(d, k)`` of right-hand sides.

        Parameters
        ----------
        r : ndarray of shape (d,) or (d, k)

        Returns
        -------
        ndarray, same shape as ``r``
        """
        r = np.asarray(r, dtype=np.float64)
        vector = r.ndim == 1
        R = r[:, None] if vector else r
        if R.shape[0] != self.size:
            raise ValueError(f"Right-hand side has {R.shape[0]} rows, expected {self.size}.")
        DR = R * self.D_inv[:, None]
        coeffs = linalg.cho_solve(self._factor, self.G @ DR, check_finite=False)
        X = DR - (self.G.T @ coeffs) * self.D_inv[:, None]
        return X[:, 0] if vector else X

    def to_dense(self):
        """The dense ``B`` (``O(d²)`` memory; for checks on small blocks)."""
        return np.diag(1.0 / self.D_inv) + self.G.T @ self.G / self.n_terms
