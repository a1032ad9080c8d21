"""L-CODEC parameter selection (Mehta, Pal, Singh & Ravi, CVPR 2022) for SSSE.

For a removal request, the removed samples are perturbed with Gaussian noise many times;
each perturbation gives one observation of every unit's activation (a convolution's
output channel or a linear layer's neuron, averaged over the removed samples and the
spatial positions) and of the loss. The units whose activations carry the most
information about the loss, in the sense of Azadkia & Chatterjee's conditional
dependence coefficient ``T(Y, Z | X)`` (CODEC), are chosen by its forward selection
(FOCI), and the update is restricted to their parameters.

Differences from the authors' public code (github.com/vsingh-group/LCODEC-deep-unlearning,
read for reference, not copied; see also ``doc/torch.rst``):

* the update on the selected parameters is the SSSE step (empirical Fisher of the
  training set on the subset, Eq. 4), not their finite-difference Hessian from the
  gradients stored at the last two training epochs, and no noise is added;
* ranks count ties as in Azadkia & Chatterjee's definition (``R_i = #{j: y_j ≤ y_i}``,
  ``L_i = #{j: y_j ≥ y_i}``; their code ranks with ``argsort`` and ``L = n + 1 − R``),
  and ties between nearest neighbours are broken at random;
* unit activations are standardized before the nearest-neighbour searches (their code
  uses raw activations, so units with large activations dominate the distances), and
  constant units are dropped;
* the perturbation batch is a random subset of at most ``max_samples`` removed samples,
  the number of selected units can be capped, and candidate layers can be named.

As in their code, FOCI keeps the first unit even if its coefficient is not positive, so
that every request changes something.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.stats import rankdata

__all__ = ["LCODECSelection", "codec", "foci", "lcodec_select"]


def _nearest_other(points, rng):
    """Index of each point's nearest neighbour among the others (ties broken at random)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 1:
        points = points[:, None]
    n = points.shape[0]
    # A tiny jitter breaks exact ties (duplicated activations) at random, as the
    # coefficient's definition asks.
    jitter = 1e-12 * (1.0 + np.abs(points).max()) * rng.standard_normal(points.shape)
    _, neighbours = cKDTree(points + jitter).query(points + jitter, k=2)
    out = neighbours[:, 1].copy()
    self_first = neighbours[:, 1] == np.arange(n)
    out[self_first] = neighbours[self_first, 0]
    return out


def codec(y, Z, X=None, *, random_state=0):
    """Azadkia & Chatterjee's (conditional) dependence coefficient ``T(y, Z | X)``.

    ``T`` is about 0 when ``y`` is independent of ``Z`` (given ``X``) and 1 when ``y`` is
    a measurable function of ``Z`` (and ``X``); it can be slightly negative.

    Parameters
    ----------
    y : ndarray of shape (n,)
    Z : ndarray of shape (n,) or (n, q)
    X : ndarray of shape (n,) or (n, p), default=None
        The conditioning variables; ``None`` computes the unconditional ``T(y, Z)``.
    random_state : int, default=0
        Seed of the random tie-breaking of nearest neighbours.

    Returns
    -------
    float
    """
    rng = np.random.default_rng(random_state)
    y = np.asarray(y, dtype=np.float64).ravel()
    n = len(y)
    Z = np.asarray(Z, dtype=np.float64).reshape(n, -1)
    R = rankdata(y, method="max")  # #{j : y_j <= y_i}
    if X is None:
        L = rankdata(-y, method="max")  # #{j : y_j >= y_i}
        M = _nearest_other(Z, rng)
        denominator = np.sum(L * (n - L))
        if denominator == 0:
            return 0.0
        return float(np.sum(n * np.minimum(R, R[M]) - L**2) / denominator)
    X = np.asarray(X, dtype=np.float64).reshape(n, -1)
    N = _nearest_other(X, rng)
    M = _nearest_other(np.hstack([X, Z]), rng)
    denominator = np.sum(R - np.minimum(R, R[N]))
    if denominator == 0:
        return 0.0
    return float(np.sum(np.minimum(R, R[M]) - np.minimum(R, R[N])) / denominator)


def foci(y, Z, *, max_features=None, early_stop=True, random_state=0):
    """Feature Ordering by Conditional Independence (Azadkia & Chatterjee, 2021).

    Greedily adds the column of ``Z`` with the largest ``T(y, Z_j | selected)`` (the
    unconditional ``T(y, Z_j)`` for the first), stopping when no column increases the
    dependence (``T ≤ 0``) or after ``max_features``. The first column is always kept.

    Parameters
    ----------
    y : ndarray of shape (n,)
    Z : ndarray of shape (n, p)
    max_features : int, default=None
    early_stop : bool, default=True
        Stop at the first non-positive coefficient.
    random_state : int, default=0

    Returns
    -------
    selected : list of int
        Column indices in selection order.
    scores : list of float
        The coefficient of each selected column when it was added.
    """
    Z = np.asarray(Z, dtype=np.float64)
    p = Z.shape[1]
    limit = p if max_features is None else min(p, max_features)
    selected, scores = [], []
    remaining = list(range(p))
    while remaining and len(selected) < limit:
        X = Z[:, selected] if selected else None
        values = [codec(y, Z[:, j], X, random_state=random_state) for j in remaining]
        best = int(np.argmax(values))
        if early_stop and values[best] <= 0 and selected:
            break
        selected.append(remaining.pop(best))
        scores.append(float(values[best]))
    return selected, scores


@dataclass
class LCODECSelection:
    """Result of :func:`lcodec_select`.

    Attributes
    ----------
    units : list of (str, int)
        Selected ``(module_name, unit)`` pairs in selection order.
    scores : list of float
        Their conditional dependence coefficients when selected.
    parameter_indices : ndarray of int
        Flat indices (in the eraser's parameter vector) of the units' parameters.
    n_units : int
        Number of candidate units.
    """

    units: list
    scores: list
    parameter_indices: np.ndarray
    n_units: int


def lcodec_select(
    eraser,
    X_removed,
    y_removed,
    *,
    n_perturbations=100,
    noise=0.1,
    max_samples=64,
    max_units=None,
    layer_types=(torch.nn.Conv2d, torch.nn.Linear),
    layers=None,
    random_state=0,
):
    """Select the units (and their parameters) to update for a removal request (L-CODEC).

    Parameters
    ----------
    eraser : NetworkEraser
        Gives the network, its loss and the flat parameter layout.
    X_removed, y_removed : array-like or torch.Tensor
        The removal request.
    n_perturbations : int, default=100
        Number of noisy copies of the removed batch (observations for FOCI).
    noise : float, default=0.1
        Standard deviation of the Gaussian input perturbation (the authors' value).
    max_samples : int, default=64
        At most this many removed samples (chosen at random) form the perturbed batch.
    max_units : int, default=None
        Cap on the number of selected units.
    layer_types : tuple of type, default=(Conv2d, Linear)
        Modules whose output units are candidates.
    layers : list of str, default=None
        Names (as in ``module.named_modules()``) of the modules whose output units are
        candidates, instead of all modules of ``layer_types``.
    random_state : int, default=0

    Returns
    -------
    LCODECSelection
    """
    rng = np.random.default_rng(random_state)
    module = eraser.module
    X, y = eraser._tensors(X_removed, y_removed)
    if X.shape[0] > max_samples:
        rows = torch.as_tensor(np.sort(rng.choice(X.shape[0], max_samples, replace=False)))
        X, y = X[rows], y[rows]
    if layers is None:
        layers = [(n, m) for n, m in module.named_modules() if isinstance(m, tuple(layer_types))]
        if not layers:
            raise ValueError(f"The module has no layer of types {layer_types}.")
    else:
        named = dict(module.named_modules())
        missing = [n for n in layers if n not in named]
        if missing:
            raise ValueError(f"The module has no layer {missing}; it has {list(named)[:20]}.")
        layers = [(n, named[n]) for n in layers]
    captured = {}

    def make_hook(name):
        def hook(_module, _inputs, output):
            # One value per unit: mean over the batch and any spatial positions.
            dims = [0] + list(range(2, output.ndim))
            captured[name] = output.detach().mean(dim=dims).to("cpu", torch.float64)

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in layers]
    flags = {m: m.training for m in module.modules()}
    module.eval()
    generator = torch.Generator(device="cpu").manual_seed(int(random_state))
    activations, losses = [], []
    try:
        with torch.no_grad():
            for _ in range(n_perturbations):
                perturbation = torch.randn(X.shape, generator=generator, dtype=X.dtype)
                out = module(X + noise * perturbation.to(X.device))
                losses.append(float(eraser.loss_fn(out, y)))
                activations.append(torch.cat([captured[n] for n, _ in layers]).numpy())
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags.items():
            m.training = flag
    A = np.vstack(activations)
    unit_names = [(n, u) for n, _ in layers for u in range(len(captured[n]))]
    spread = A.std(axis=0)
    keep = np.flatnonzero(spread > 0)  # constant units carry no information
    Z = (A[:, keep] - A[:, keep].mean(axis=0)) / spread[keep]
    selected, scores = foci(
        np.asarray(losses), Z, max_features=max_units, random_state=random_state
    )
    units = [unit_names[keep[j]] for j in selected]
    return LCODECSelection(
        units=units,
        scores=scores,
        parameter_indices=eraser.unit_parameter_indices(units),
        n_units=len(unit_names),
    )
