"""
Deep features and a linear multi-label head: erasing through a pipeline
=======================================================================

The SSSE paper's CelebA experiment erases samples from an ℓ2-regularized linear
multi-attribute classifier on top of features from a network pre-trained on another
data set (VGG-16 trained on VGGFace). Because the feature network learned nothing from
the classifier's training set, erasing samples from the linear head erases them from the
whole model.

This example builds the same structure at CPU scale on the MNIST digits kept in
``../shared/data``:

1. a small CNN is trained to recognise digits on images 0-4,999 (the "other" data set);
2. it is frozen inside :class:`sklearn_ssse.torch.TorchFeatureExtractor` (features of its
   penultimate layer) in front of an :class:`~sklearn_ssse.UnlearnableLogisticRegression`
   trained on images 5,000-7,999 for four binary attributes of the digit (even, greater
   than 4, prime, drawn with a closed loop) in the paper's mode (empirical Fisher,
   damping 1e-4);
3. the pipeline's :meth:`~sklearn_ssse.pipeline.Pipeline.forget` erases 20% of the
   "prime" samples;
   the result matches erasing with the features computed by hand, and is compared with a
   head refit without them.

Set ``SKLEARN_SSSE_EXAMPLE_QUICK=1`` for a quicker run (the CNN trained on 2,000 images
for one epoch, the head on 1,500).
"""

# %%
# The feature network, trained on other data
# ------------------------------------------
import gzip
import os
import struct
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from sklearn_ssse import UnlearnableLogisticRegression
from sklearn_ssse.pipeline import make_pipeline
from sklearn_ssse.torch import TorchFeatureExtractor

# One thread: the network is small, and on shared cores a second thread mostly waits.
torch.set_num_threads(1)
QUICK = os.environ.get("SKLEARN_SSSE_EXAMPLE_QUICK", "") not in ("", "0")
N_OTHER, N_HEAD, EPOCHS = (2000, 1500, 1) if QUICK else (5000, 3000, 2)
root = Path(os.environ.get("SSSE_DATA", Path.cwd().parent / "shared" / "data"))
if not root.exists():
    root = Path("/work/shared/data")


def read_idx(path):
    """Read a gzipped IDX file (the MNIST format): magic, dimensions, then uint8 data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    n_dims = raw[3]
    shape = struct.unpack(">" + "I" * n_dims, raw[4 : 4 + 4 * n_dims])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape).copy()


images = read_idx(root / "mnist_test10k" / "t10k-images-idx3-ubyte.gz")
digits = read_idx(root / "mnist_test10k" / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
X = (images[:, None].astype(np.float32) / 255.0 - 0.13) / 0.31  # (n, 1, 28, 28)

torch.manual_seed(0)
cnn = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(16 * 7 * 7, 32),
    nn.ReLU(),
    nn.Linear(32, 10),
)
opt = torch.optim.Adam(cnn.parameters(), lr=2e-3)
X_other, y_other = torch.from_numpy(X[:N_OTHER]), torch.from_numpy(digits[:N_OTHER])
t0 = time.perf_counter()
for _ in range(EPOCHS):
    perm = torch.randperm(N_OTHER)
    for start in range(0, N_OTHER, 100):
        rows = perm[start : start + 100]
        opt.zero_grad()
        nn.functional.cross_entropy(cnn(X_other[rows]), y_other[rows]).backward()
        opt.step()
print(f"feature CNN trained in {time.perf_counter() - t0:.0f}s")

# %%
# Multi-label attributes and the pipeline
# ---------------------------------------
attributes = ["even", "greater than 4", "prime", "closed loop"]
table = np.array(
    [[d % 2 == 0, d > 4, d in (2, 3, 5, 7), d in (0, 6, 8, 9)] for d in range(10)], dtype=int
)
Y = table[digits]
train, test = np.arange(5000, 5000 + N_HEAD), np.arange(8000, 10000)

head_params = dict(C=1.0, curvature="empirical_fisher", leave_out=False, damping=1e-4)
# Features of the penultimate layer (index "8": the ReLU after the 32-unit layer).
pipe = make_pipeline(
    TorchFeatureExtractor(cnn, layer="8", dtype="float64"),
    UnlearnableLogisticRegression(**head_params),
).fit(X[train], Y[train])
print("test accuracy per attribute:", np.round((pipe.predict(X[test]) == Y[test]).mean(axis=0), 3))

# %%
# Erase 20% of the "prime" samples through the pipeline
# -----------------------------------------------------
rng = np.random.default_rng(0)
prime = train[Y[train, 2] == 1]
removed = np.sort(rng.choice(prime, len(prime) // 5, replace=False))
kept = np.setdiff1d(train, removed)

# The same erasure with the features computed by hand.
extractor = pipe[0]
F_train, F_removed = extractor.transform(X[train]), extractor.transform(X[removed])
manual = UnlearnableLogisticRegression(**head_params).fit(F_train, Y[train])
original_scores = pipe.decision_function(X[removed])
original_coef = pipe[-1].coef_.copy()

EPS = 1.0
pipe.forget(X[removed], Y[removed], eps=EPS)
manual.forget(F_removed, Y[removed], eps=EPS)
gap = np.abs(pipe[-1].coef_ - manual.coef_).max()
print(f"removed {len(removed)} samples; max |coef(pipeline) − coef(by hand)| = {gap:.2e}")
print("pipeline erasure matches the erasure by hand:", bool(gap <= 1e-10))

# %%
# Against a head refit without the removed samples
# ------------------------------------------------
# Per-attribute ROC AUC on the removed samples, for attributes with both classes there.
refit = UnlearnableLogisticRegression(**head_params).fit(extractor.transform(X[kept]), Y[kept])
erased_scores = pipe.decision_function(X[removed])
refit_scores = refit.decision_function(F_removed)
print("| attribute | AUC original | AUC erased | AUC refit |")
print("|---|---|---|---|")
auc_table = {}
for j, name in enumerate(attributes):
    if len(np.unique(Y[removed, j])) < 2:
        print(f"| {name} | (one class in S) | | |")
        continue
    aucs = [
        roc_auc_score(Y[removed, j], s[:, j])
        for s in (original_scores, erased_scores, refit_scores)
    ]
    auc_table[name] = aucs
    print(f"| {name} | " + " | ".join(f"{a:.4f}" for a in aucs) + " |")
distance = np.linalg.norm(pipe[-1].coef_ - refit.coef_) / np.linalg.norm(
    original_coef - refit.coef_
)
print(f"normalized parameter distance to the refit ‖θ̂ − θ*₋S‖ / ‖θ* − θ*₋S‖ = {distance:.3f}")

# %%
# The per-attribute AUCs on the removed samples
# ---------------------------------------------
# The erased head's bars should stand next to the refit's, not the original's.
fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
names = list(auc_table)
positions = np.arange(len(names))
for k, (model, color) in enumerate(
    zip(["original", "erased", "refit"], ["tab:red", "tab:blue", "tab:green"], strict=True)
):
    values = [auc_table[name][k] for name in names]
    ax.bar(positions + (k - 1) * 0.27, values, width=0.27, color=color, label=model)
ax.set_xticks(positions, names)
low = min(min(v) for v in auc_table.values())
ax.set(
    ylim=(max(0.0, low - 0.05), 1.0),
    ylabel="ROC AUC on the removed samples",
    title="Deep features + linear head: erasing through the pipeline",
)
ax.legend(loc="lower right")
plt.show()
