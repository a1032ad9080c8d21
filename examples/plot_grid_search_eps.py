"""
=================================================
Choosing the erasure scale ε with GridSearchCV
=================================================

The SSSE step ``θ ← θ* + ε/(n−k) · B⁻¹ Σ_{i∈S} ∇ℓ_i`` has a scale ``ε`` that the paper
tunes by the similarity ratio ``γ_S`` (Eq. 5) against a model refit without the removed
samples ``S``. This example tunes it two ways on the bundled yeast data and checks that
they agree:

1. scikit-learn's :class:`~sklearn.model_selection.GridSearchCV` over the ``eps`` of a
   :class:`sklearn_ssse.SampleEraser`, whose ``fit(X_S, Y_S)`` erases ``S`` from a copy
   of the fitted model, scored by
   :func:`sklearn_ssse.metrics.make_similarity_scorer` on ``S`` itself
   (``cv=[(idx, idx)]``: the eraser learns nothing from the data it is "fitted" on, it
   removes it);
2. :func:`sklearn_ssse.similarity_ratio_path`, which uses that the erased parameters
   ``θ* + ε·Δ`` are linear in ``ε``: one curvature solve gives ``γ`` for the whole grid.

Both pick the first ``ε`` with the highest ``γ``, so they choose the same value; the path is
much faster because the grid search copies the model and solves once per candidate.
"""

# %%
# A model, the samples to erase, and the gold standard
# ----------------------------------------------------
# We use the SSSE paper's mode (empirical Fisher over all of ``D``, damping ``1e-4``),
# whose step needs its scale tuned, and erase 20% of the positive samples of a rare label.
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV

from sklearn_ssse import SampleEraser, UnlearnableLogisticRegression, similarity_ratio_path
from sklearn_ssse.datasets import load_yeast
from sklearn_ssse.metrics import make_similarity_scorer

X, Y = load_yeast(return_X_y=True)
params = dict(C=1.0, tol=1e-8)
fitted = UnlearnableLogisticRegression(
    curvature="empirical_fisher", leave_out=False, damping=1e-4, **params
).fit(X, Y)

label = 9  # "Class10", in about 11% of the training samples
positives = np.flatnonzero(Y[:, label] == 1)
rng = np.random.default_rng(0)
removed = np.sort(rng.choice(positives, len(positives) // 5, replace=False))
keep = np.setdiff1d(np.arange(X.shape[0]), removed)
X_S, Y_S = X[removed], Y[removed]
retrained = UnlearnableLogisticRegression(**params).fit(X[keep], Y[keep])
print(f"erasing {len(removed)} of the {len(positives)} positive samples of label {label}")

eps_grid = np.logspace(-2, 1, 25)

# %%
# 1. GridSearchCV over SampleEraser
# ---------------------------------
idx = np.arange(len(X_S))
search = GridSearchCV(
    SampleEraser(fitted),
    {"eps": eps_grid},
    scoring=make_similarity_scorer(fitted, retrained),
    cv=[(idx, idx)],
)
start = time.perf_counter()
search.fit(X_S, Y_S)
search_seconds = time.perf_counter() - start
gamma_search = search.cv_results_["mean_test_score"]
print(
    f"GridSearchCV: best ε = {search.best_params_['eps']:.6g}, γ = {search.best_score_:.4f}, "
    f"{search_seconds:.2f} s"
)
# The fitted model itself was not touched: SampleEraser erases from copies.
assert fitted.n_samples_ == X.shape[0]

# %%
# 2. The whole path from one solve
# --------------------------------
start = time.perf_counter()
gamma_path, best_eps_path = similarity_ratio_path(fitted, X_S, Y_S, retrained, eps_grid)
path_seconds = time.perf_counter() - start
print(
    f"similarity_ratio_path: best ε = {best_eps_path:.6g}, γ = {gamma_path.max():.4f}, "
    f"{path_seconds:.3f} s ({search_seconds / path_seconds:.0f}x faster)"
)
print(f"largest |γ difference| over the grid: {np.abs(gamma_search - gamma_path).max():.2e}")

# A line for the tests (tests/test_examples.py) to parse.
print(f"BEST_EPS grid_search={float(search.best_params_['eps'])!r} path={best_eps_path!r}")

# %%
# γ against ε
# -----------
# Above 0.5 the erased model ranks ``S`` more like the refit than like the original model.
fig, ax = plt.subplots(figsize=(6.4, 4), layout="constrained")
ax.plot(eps_grid, gamma_search, "o", color="tab:blue", label="GridSearchCV(SampleEraser)")
ax.plot(eps_grid, gamma_path, "-", color="tab:orange", label="similarity_ratio_path")
ax.axvline(best_eps_path, color="grey", linestyle=":", label=f"best ε = {best_eps_path:.3g}")
ax.axhline(0.5, color="grey", linewidth=0.8)
ax.set(xscale="log", xlabel="ε", ylabel="γ_S", title="Tuning the SSSE scale on yeast")
ax.legend()
plt.show()
