"""The coupled curvature block of multinomial (softmax) logistic regression.

Parameters ``θ = [θ_1; …; θ_K]`` (class-major, ``θ_k = [w_k, b_k]`` of length ``d̃``). The
per-sample Hessian of the softmax cross-entropy in ``θ`` is

    ∇²ℓ_i = (diag(p_i) − p_i p_iᵀ) ⊗ x̃_i x̃_iᵀ,

so the ``(k, l)`` sub-block of ``Σ_i w_i ∇²ℓ_i`` is the weighted Gram
``X̃ᵀ diag(w ⊙ (p_k δ_kl − p_k ⊙ p_l)) X̃``: the whole block is ``K(K+1)/2`` weighted Grams,
built here with one BLAS-3 product each over row chunks. The empirical Fisher's
``∇ℓ_i∇ℓ_iᵀ = (r_i r_iᵀ) ⊗ x̃_i x̃_iᵀ`` (``r_i = p_i − y_i``) has the same structure.

**The null direction.** Softmax is invariant to a common shift of the logits, so with
unpenalized intercepts the objective is flat along ``v = (1_K ⊗ e_b)/√K`` (all intercepts
up by the same amount): ``(diag(p) − ppᵀ)1 = 0`` and ``rᵀ1 = 0``, so every curvature term and
every gradient is orthogonal to ``v``, the block is singular along ``v`` and nowhere else
(the coefficients are penalized). scikit-learn's fit leaves the intercepts at some mean;
the refit on ``D∖S`` is determined up to that same shift. The step is taken in the
orthogonal complement of ``v``, keeping the fitted intercepts' mean: the stored matrix is
``M + c·vvᵀ`` (``c`` > 0 the mean intercept diagonal of ``M``, so the scale matches). For a
right-hand side ``g ⊥ v``, ``(M + c·vvᵀ)⁻¹ g`` is exactly the minimum-norm solution of
``M x = g`` in ``v^⊥`` (``v`` is an eigenvector of both ``M + c·vvᵀ`` and its inverse), for any
``c > 0``: a constraint, not a damping. Removing a sample subtracts factor columns
orthogonal to ``v`` (:meth:`~sklearn_ssse._loss.MultinomialLoss.hessian_factor` has column
sums 0; ``r_i`` sums to 0), so the ``c·vvᵀ`` term is never downdated and stays exact; the
right-hand side and the step are projected onto ``v^⊥`` to remove round-off along ``v``.

**Removal factors.** The term of sample ``i`` is ``w_i (F_i ⊗ x̃_i)(F_i ⊗ x̃_i)ᵀ`` with
``F_i F_iᵀ = diag(p_i) − p_i p_iᵀ`` (``K`` columns, rank ``K − 1``): ``K`` factor rows per
removed sample, passed to :meth:`BlockFisherInverse.prepare_change` with
``n_samples=k``. The empirical Fisher has one row per sample, ``√w_i·r_i ⊗ x̃_i``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._loss import MultinomialLoss, augment
from ..curvature._build import check_curvature_memory

__all__ = ["coupled_gram", "null_direction", "removal_factors"]


def _pair_weights(raw, Y, curvature, sample_weight):
    """Per-sample ``(K, K)`` coefficient matrices of the curvature terms (times weights)."""
    if curvature == "hessian":
        C = MultinomialLoss.hessian_matrix(raw)
    else:
        r = MultinomialLoss.gradient(raw, Y)
        C = r[:, :, None] * r[:, None, :]
    if sample_weight is not None:
        C = C * np.asarray(sample_weight, dtype=np.float64)[:, None, None]
    return C


def coupled_gram(X, raw, Y, *, curvature, fit_intercept, sample_weight=None, chunk_rows=2048):
    """``Σ_i w_i C_i ⊗ x̃_i x̃_iᵀ`` (float64), shape ``(K·d̃, K·d̃)``, class-major.

    ``C_i`` is ``diag(p_i) − p_i p_iᵀ`` (``curvature="hessian"``) or ``r_i r_iᵀ`` (empirical
    Fisher), ``p_i = softmax(raw_i)``. One weighted Gram per class pair ``k <= l``.
    """
    n, p = X.shape
    K = raw.shape[1]
    d = p + int(fit_intercept)
    check_curvature_memory([K * d], np.float64, workspace_blocks=0)
    G = np.zeros((K, d, K, d))
    Xt = augment(X, fit_intercept)
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        rows = Xt[start:stop]
        C = _pair_weights(
            raw[start:stop],
            Y[start:stop],
            curvature,
            None if sample_weight is None else sample_weight[start:stop],
        )
        dense = not sp.issparse(rows)
        for k in range(K):
            for l in range(k, K):
                c = C[:, k, l]
                if dense:
                    block = (rows * c[:, None]).T @ rows
                else:
                    block = (rows.T @ sp.csr_matrix(rows.multiply(c[:, None]))).toarray()
                    block = (block + block.T) / 2
                G[k, :, l, :] += block
    for k in range(K):
        for l in range(k + 1, K):
            G[l, :, k, :] = G[k, :, l, :].T
    return G.reshape(K * d, K * d)


def null_direction(n_classes, n_coefficients):
    """Unit vector ``(1_K ⊗ e_b)/√K`` of the common intercept shift, class-major."""
    v = np.zeros((n_classes, n_coefficients))
    v[:, -1] = 1.0 / np.sqrt(n_classes)
    return v.ravel()


def removal_factors(Xt, raw_fit, Y, *, curvature, sample_weight=None):
    """Factor rows of the removed samples' curvature terms (at the fitted ``θ``).

    Returns an array of shape ``(k·K, K·d̃)`` (Hessian: the ``K`` columns of ``F_i``, each
    ``⊗ x̃_i``) or ``(k, K·d̃)`` (empirical Fisher: ``r_i ⊗ x̃_i``), scaled by ``√w_i``.
    """
    k, d = Xt.shape
    K = raw_fit.shape[1]
    root = np.ones(k) if sample_weight is None else np.sqrt(sample_weight)
    if curvature == "hessian":
        F = MultinomialLoss.hessian_factor(raw_fit) * root[:, None, None]  # (k, K, K)
        # row (i, j) = F_i[:, j] ⊗ x̃_i
        rows = np.einsum("iaj,ib->ijab", F, Xt)
        return rows.reshape(k * K, K * d)
    r = MultinomialLoss.gradient(raw_fit, Y) * root[:, None]
    return np.einsum("ia,ib->iab", r, Xt).reshape(k, K * d)
