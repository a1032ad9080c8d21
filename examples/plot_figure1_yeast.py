r"""
=======================================================
The SSSE paper's Figure 1 on the yeast multi-label data
=======================================================

The SSSE paper (Peste, Alistarh & Lampert, 2021, Figure 1) erases part of the positive
samples of a rare attribute from a multi-label linear classifier, refits the classifier
without them (the gold standard), and plots two measures as a function of the step scale
:math:`\varepsilon`:

* the **similarity ratio** :math:`\gamma_S` (paper Eq. 5,
  :func:`sklearn_ssse.metrics.similarity_ratio`), which compares the per-label ROC AUCs of
  the erased, original and refit models on the removed samples :math:`S`: 1 means the
  erased model ranks :math:`S` like the refit, 0 like the original model;
* the **normalized parameter distance**
  :math:`\|\hat\theta - \theta^*_{-S}\| \,/\, \|\theta^* - \theta^*_{-S}\|`
  (:func:`sklearn_ssse.metrics.parameter_distance`): 0 is the refit, 1 is doing nothing.

This example redoes the study on the bundled Mulan *yeast* data (14 labels) for the labels
that occur in at most 20% of the training samples, removing 5%, 20% and 50% of the label's
positive samples, for two erasure modes:

* the paper's SSSE step: ``curvature="empirical_fisher", leave_out=False``; the paper
  sets its dampening ``λ`` equal to the ℓ2 parameter, and the package's mean-normalized
  curvature already carries that term as ``1/(nC)``, so no extra ``damping``;
* the package default: the Newton step (``curvature="hessian"``, ``leave_out=True``,
  no damping), which needs no tuning of ``ε``.

The erased parameters are ``θ̂_ε = θ* + ε·Δ`` with ``Δ`` the unit step of
:meth:`~sklearn_ssse.UnlearnableLogisticRegression.forget_step`, so a single curvature
solve per request gives the whole ``ε`` curve:
:func:`sklearn_ssse.similarity_ratio_path` computes ``γ`` for every ``ε``, and the
parameters ``θ* + ε·Δ`` give the distance.

To keep the gallery fast, only three labels and a coarse ``ε`` grid are used here. The
command-line job ``python -m sklearn_ssse demo`` runs the erasure study on the full data;
set ``N_LABELS = None`` below to average over every eligible label.
"""

# %%
# Data and the labels to erase
# ----------------------------
import time

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from sklearn_ssse import UnlearnableLogisticRegression, similarity_ratio_path
from sklearn_ssse.datasets import load_yeast
from sklearn_ssse.metrics import parameter_distance

X, Y = load_yeast(return_X_y=True)
frequency = Y.mean(axis=0)
eligible = np.flatnonzero(frequency <= 0.20)
print(f"yeast: {X.shape[0]} samples, {X.shape[1]} features, {Y.shape[1]} labels")
print("labels with frequency <= 20%:", {int(j): round(float(frequency[j]), 3) for j in eligible})

N_LABELS = 3  # None: all eligible labels (slower)
# The most frequent eligible labels, so that even a 5% removal is several samples.
labels = eligible[np.argsort(-frequency[eligible])][:N_LABELS]
labels = np.sort(labels)
print("labels used here:", labels.tolist())

RATES = [0.05, 0.20, 0.50]
EPS_GRID = np.logspace(-2, 2, 13)
C = 1.0
TOL = 1e-8  # the erasure step starts from the optimum: fit it tightly

MODES = {
    "SSSE (empirical Fisher, H_D, λ = 1/(nC))": dict(
        curvature="empirical_fisher", leave_out=False, damping=0.0
    ),
    "default (Hessian, leave-out)": dict(curvature="hessian", leave_out=True),
}

# %%
# Fit once per mode, then erase, refit and evaluate
# -------------------------------------------------
# The fitted parameters ``θ*`` do not depend on the curvature settings (they only change
# what :meth:`forget` stores), so one refit per (label, rate) serves both modes.


def parameters(model):
    """``θ = [coef, intercept]`` of a fitted multi-label model, one row per label."""
    return np.hstack([model.coef_, model.intercept_[:, None]])


start = time.perf_counter()
fitted = {
    name: UnlearnableLogisticRegression(C=C, tol=TOL, **params).fit(X, Y)
    for name, params in MODES.items()
}
print(f"fitted the two original models in {time.perf_counter() - start:.1f} s")

rng = np.random.default_rng(0)
gamma = {(name, rate): [] for name in MODES for rate in RATES}
distance = {(name, rate): [] for name in MODES for rate in RATES}
refit_seconds, step_seconds = [], []
for label in labels:
    positives = np.flatnonzero(Y[:, label] == 1)
    for rate in RATES:
        removed = np.sort(rng.choice(positives, max(1, round(rate * len(positives))), False))
        keep = np.setdiff1d(np.arange(X.shape[0]), removed)
        X_S, Y_S = X[removed], Y[removed]

        start = time.perf_counter()
        refit = UnlearnableLogisticRegression(C=C, tol=TOL).fit(X[keep], Y[keep])
        refit_seconds.append(time.perf_counter() - start)

        for name, model in fitted.items():
            gammas, _ = similarity_ratio_path(model, X_S, Y_S, refit, EPS_GRID)
            start = time.perf_counter()
            step = model.forget_step(X_S, Y_S)
            step_seconds.append(time.perf_counter() - start)
            theta, delta = parameters(model), np.hstack([step.coef, step.intercept[:, None]])
            distances = [
                parameter_distance(theta + eps * delta, theta, parameters(refit))
                for eps in EPS_GRID
            ]
            gamma[name, rate].append(gammas)
            distance[name, rate].append(distances)

print(
    f"{len(refit_seconds)} refits took {np.mean(refit_seconds):.2f} s each; "
    f"an erasure step took {1000 * np.mean(step_seconds):.1f} ms"
)

# %%
# Best scale per mode and removal rate
# ------------------------------------
# The paper's SSSE step needs its ``ε`` tuned; the Newton step is best near ``ε = 1``.
for name in MODES:
    for rate in RATES:
        mean_gamma = np.mean(gamma[name, rate], axis=0)
        mean_distance = np.mean(distance[name, rate], axis=0)
        best = int(np.argmax(mean_gamma))
        print(
            f"{name:38s} rate {rate:4.0%}: best ε = {EPS_GRID[best]:7.3g}, "
            f"mean γ = {mean_gamma[best]:.3f}; min distance {mean_distance.min():.3f} "
            f"at ε = {EPS_GRID[np.argmin(mean_distance)]:.3g}; at ε = 1: "
            f"γ = {mean_gamma[np.argmin(np.abs(EPS_GRID - 1))]:.3f}"
        )

# %%
# Figure 1: γ and parameter distance against ε, averaged over labels
# ------------------------------------------------------------------
# Color: removal rate; line style: mode; dotted grey: the reference lines.
# A figure of page width (8.5 in) keeps the text readable when the page scales it down.
fig, (ax_gamma, ax_distance) = plt.subplots(1, 2, figsize=(8.5, 5.6), layout="constrained")
colors = dict(zip(RATES, ["tab:blue", "tab:orange", "tab:green"], strict=True))
styles = dict(zip(MODES, ["-", "--"], strict=True))
for name in MODES:
    for rate in RATES:
        kwargs = dict(color=colors[rate], linestyle=styles[name], marker=".")
        ax_gamma.plot(EPS_GRID, np.mean(gamma[name, rate], axis=0), **kwargs)
        ax_distance.plot(EPS_GRID, np.mean(distance[name, rate], axis=0), **kwargs)
reference = dict(color="grey", linewidth=1.0, linestyle=":")
ax_gamma.axhline(0.5, **reference)
ax_gamma.set(
    xscale="log",
    xlabel=r"step scale $\varepsilon$",
    ylabel=r"$\gamma_S$ (higher is better)",
    title=r"(a) similarity ratio $\gamma_S$",
)
ax_distance.axhline(1.0, **reference)
ax_distance.set(
    xscale="log",
    yscale="log",
    xlabel=r"step scale $\varepsilon$",
    ylabel=r"$\|\hat\theta_\varepsilon - \theta^*_{-S}\| \,/\, \|\theta^* - \theta^*_{-S}\|$"
    " (lower is better)",
    title=r"(b) distance to the refit $\theta^*_{-S}$",
)
handles = [Line2D([], [], color=colors[r], marker=".", label=f"{r:.0%} removed") for r in RATES]
handles += [Line2D([], [], color="black", linestyle=styles[n], label=n) for n in MODES]
handles += [
    Line2D([], [], **reference, label=r"$\gamma_S = 0.5$: half-way between original and refit"),
    Line2D([], [], **reference, label="distance 1: nothing erased (the original model)"),
]
fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=10, frameon=False)
fig.suptitle(f"Figure 1 on yeast: labels {labels.tolist()}, means over labels")
plt.show()
