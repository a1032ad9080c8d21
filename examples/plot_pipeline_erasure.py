"""
=================================================
Erasing samples from a scikit-learn Pipeline
=================================================

:class:`sklearn_ssse.pipeline.Pipeline` is scikit-learn's
:class:`~sklearn.pipeline.Pipeline` with a :meth:`~sklearn_ssse.pipeline.Pipeline.forget`
method (:func:`sklearn_ssse.forget` does the same for any scikit-learn pipeline): the
removed samples go through the earlier steps with ``transform`` and the last step, an
unlearnable estimator, forgets them. That is only an erasure if the earlier steps learned
nothing from the training data. A :class:`~sklearn.preprocessing.StandardScaler` fitted
inside the pipeline keeps the removed samples in its mean and variance, so ``forget``
refuses such a pipeline.

The fix shown here: fit the scaler on *public* data that nobody asks to erase (here the
first half of yeast's test split) and freeze it with
:class:`sklearn.frozen.FrozenEstimator`, so that fitting the pipeline leaves it alone.
We then erase, compare with a refit of the pipeline's last step without the removed
samples, and run a membership inference attack
(:func:`sklearn_ssse.metrics.membership_inference_report`) against the original, erased
and refit models.
"""

# %%
# Data: training set, removed samples, public and held-out data
# -------------------------------------------------------------
import copy

import matplotlib.pyplot as plt
import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import StandardScaler

from sklearn_ssse import UnlearnableLogisticRegression
from sklearn_ssse.datasets import load_yeast
from sklearn_ssse.metrics import (
    membership_inference_report,
    parameter_distance,
    similarity_ratio,
)
from sklearn_ssse.pipeline import make_pipeline

X, Y = load_yeast(return_X_y=True)
X_test, Y_test = load_yeast(subset="test", return_X_y=True)
half = X_test.shape[0] // 2
X_public = X_test[:half]  # fits the scaler; never part of a removal request
X_heldout, Y_heldout = X_test[half:], Y_test[half:]  # non-members for the attack

# Erase half of the positive samples of a rare label (about 11% of the samples).
label = 9
positives = np.flatnonzero(Y[:, label] == 1)
removed = np.sort(np.random.default_rng(0).choice(positives, len(positives) // 2, False))
keep = np.setdiff1d(np.arange(X.shape[0]), removed)
X_S, Y_S = X[removed], Y[removed]
print(f"training set {X.shape}, erasing {len(removed)} samples of label {label}")

C = 10.0  # weak regularization: the model fits its training samples more closely

# %%
# A scaler fitted on the training data is refused
# -----------------------------------------------
leaky = make_pipeline(StandardScaler(), UnlearnableLogisticRegression(C=C, tol=1e-8))
leaky.fit(X, Y)
try:
    leaky.forget(X_S, Y_S)
except ValueError as error:
    print(f"ValueError: {error}")
# Nothing was changed by the refused request.
print("samples still in the model:", leaky[-1].n_samples_)

# %%
# The fix: a scaler fitted on public data, frozen
# -----------------------------------------------
# ``FrozenEstimator`` makes ``fit`` a no-op, so the pipeline's fit only trains the last
# step, and ``forget`` accepts the pipeline.
scaler = FrozenEstimator(StandardScaler().fit(X_public))
original = make_pipeline(scaler, UnlearnableLogisticRegression(C=C, tol=1e-8)).fit(X, Y)
erased = copy.deepcopy(original).forget(X_S, Y_S)
print("samples in the erased model:", erased[-1].n_samples_)

# The gold standard: refit the last step without the removed samples (same frozen scaler).
refit = make_pipeline(scaler, UnlearnableLogisticRegression(C=C, tol=1e-8))
refit.fit(X[keep], Y[keep])

gamma = similarity_ratio(original, erased, refit, X_S, Y_S)
distance = parameter_distance(erased[-1], original[-1], refit[-1])
print(f"similarity ratio γ_S = {gamma:.3f} (1: ranks S like the refit)")
print(f"parameter distance to the refit = {distance:.4f} (0: the refit, 1: no erasure)")

# %%
# Membership inference
# --------------------
# An attack learns from each model's per-sample loss to tell training samples (the
# retained ones) from samples it never saw (the held-out half of the test split), and is
# then asked about the removed samples. After erasure they should look like non-members,
# as they do for the refit.
report = membership_inference_report(
    original,
    erased,
    refit,
    X[keep],
    Y[keep],
    X_heldout,
    Y_heldout,
    X_S,
    Y_S,
    random_state=0,
)
print(f"{'model':10s} {'attack AUC':>11s} {'removed called members':>23s} {'mean score':>11s}")
for name, result in report.items():
    print(
        f"{name:10s} {result.attack_auc:11.3f} {result.target_member_rate:23.3f} "
        f"{result.target_mean_score:11.3f}"
    )

# %%
# The attack's membership scores on the removed samples
# -----------------------------------------------------
# A linear model on a thousand samples leaks little (attack AUCs near 0.6 for all three
# models), and the removed samples, positives of a rare label, already have large losses.
# What matters is the comparison: the erased model's scores on them move from the
# original model's to the refit's.
fig, ax = plt.subplots(figsize=(6.4, 4), layout="constrained")
bins = np.linspace(0, 1, 31)
for (name, result), color in zip(report.items(), ["tab:red", "tab:blue", "tab:green"], strict=True):
    ax.hist(result.target_scores, bins=bins, histtype="step", color=color, label=name)
ax.set(
    xlabel="attack membership score on the removed samples",
    ylabel="samples",
    title="Membership inference after erasing through a pipeline",
)
ax.legend()
plt.show()
