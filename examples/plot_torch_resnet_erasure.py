"""
SSSE on a ResNet-20-style network (the paper's Figure 2 at CPU scale)
=====================================================================

Section 4 of the SSSE paper erases samples from a ResNet-20 trained on CIFAR-10 with a
block-diagonal empirical Fisher (blocks of 70,000 parameters, gradients averaged over
mini-batches of 10) and compares the erased network with one retrained from the same
seed without the removed samples: Figure 2 shows the absolute accuracy differences on
the train and test splits, for the erased class and the other classes, over the scale
``ε``.

This example does the same at CPU scale, where two shared cores allow a few seconds of
training per network: the ResNet-20 layout (3 stages of 3 basic blocks, 19 convolutions
and a linear head) with 4-8-16 channels instead of 16-32-64 (17,462 parameters), trained
without augmentation on MNIST digits downsampled to 14 × 14 (the 10,000 official test
images kept in ``../shared/data``: 5,000 to train, 5,000 to test; a CIFAR-10 network of
this size does not learn enough in that budget to make the comparison meaningful). The
Fisher blocks have 4,500 parameters (a quarter of the network, as 70,000 is of the
paper's 270,000) and are stored matrix-free. Three requests are erased from one class:
(a) all its samples, (b) 10% and 50% of them. The last section restricts the step to
the units chosen by L-CODEC.

``benchmarks/torch_figure2.py`` runs the same comparison over several classes. The
example takes about 90 seconds on two cores (it trains two networks, the original and the
retrained one, and erases three requests). Set ``SKLEARN_SSSE_EXAMPLE_QUICK=1`` for a
quicker run (2,000 training and 2,000 test images, 3 epochs) and ``SSSE_EXAMPLE_EPOCHS``
to choose the number of epochs.
"""

# %%
# Data, network and training
# --------------------------
import gzip
import os
import struct
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sklearn_ssse.torch import NetworkEraser, lcodec_select

# One thread: these convolutions are tiny, and on shared cores a second thread mostly waits.
torch.set_num_threads(1)
QUICK = os.environ.get("SKLEARN_SSSE_EXAMPLE_QUICK", "") not in ("", "0")
N_TRAIN = N_TEST = 2_000 if QUICK else 5_000
EPOCHS = int(os.environ.get("SSSE_EXAMPLE_EPOCHS", 3 if QUICK else 5))
SEED, ERASED_CLASS, WIDTH, BLOCK_SIZE = 0, 0, 4, 4_500
EPS_GRID = [0.0, 0.003, 0.01, 0.02, 0.03, 0.05, 0.1, 0.3, 1.0]

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
labels = read_idx(root / "mnist_test10k" / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
X_all = torch.from_numpy(images).float().div(255.0)[:, None]
X_all = torch.nn.functional.avg_pool2d(X_all, 2)  # 28 × 28 -> 14 × 14
X_all = (X_all - X_all.mean()) / X_all.std()
X_train, X_test = X_all[:N_TRAIN], X_all[-N_TEST:]
y_train, y_test = torch.from_numpy(labels[:N_TRAIN]), torch.from_numpy(labels[-N_TEST:])


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet20(nn.Module):
    """ResNet-20 (He et al., 2016): 3 stages × 3 basic blocks; ``width`` channels first."""

    def __init__(self, width=WIDTH, n_classes=10, in_channels=1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        layers, c_in = [], width
        for stage, c_out in enumerate([width, 2 * width, 4 * width]):
            for b in range(3):
                layers.append(BasicBlock(c_in, c_out, 2 if (b == 0 and stage > 0) else 1))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, n_classes)

    def forward(self, x):
        out = self.layers(torch.relu(self.bn(self.conv(x))))
        return self.fc(out.mean(dim=(2, 3)))


def train(X, y, seed=SEED, epochs=EPOCHS):
    """SGD with momentum from a fixed seed (same initialization for every run)."""
    torch.manual_seed(seed)
    net = ResNet20()
    order = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    steps = epochs * -(-len(X) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=order)
        for start in range(0, len(X), 64):
            rows = perm[start : start + 64]
            opt.zero_grad()
            loss_fn(net(X[rows]), y[rows]).backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def accuracy(net, X, y):
    if len(X) == 0:
        return float("nan")
    net.eval()
    pred = torch.cat([net(X[s : s + 500]).argmax(1) for s in range(0, len(X), 500)])
    return float((pred == y).float().mean())


t0 = time.perf_counter()
net = train(X_train, y_train)
train_seconds = time.perf_counter() - t0
n_params = sum(p.numel() for p in net.parameters())
print(
    f"trained {n_params} parameters in {train_seconds:.0f}s: train accuracy "
    f"{accuracy(net, X_train, y_train):.3f}, test accuracy {accuracy(net, X_test, y_test):.3f}"
)

# %%
# The empirical Fisher of the trained network
# -------------------------------------------
# Per-sample gradients (``torch.func``: vmap of grad), averaged over mini-batches of 10
# (500 of them for 5,000 samples), in blocks of 4,500 parameters, each kept matrix-free as
# its 500 averaged gradients plus a 500 × 500 Cholesky factor. ``keep_gradients`` keeps
# the averaged gradients for the L-CODEC section (a curvature on a parameter subset).
eraser = NetworkEraser(
    net,
    nn.CrossEntropyLoss(),
    block_size=BLOCK_SIZE,
    batch_size=10,
    damping=1e-4,
    max_dense_block=2048,
    grad_batch_size=100,
    keep_gradients=True,
).fit(X_train, y_train)
print(
    f"Fisher blocks {[len(b) for b in eraser.block_indices_]} built in "
    f"{eraser.fit_seconds_:.0f}s, {eraser.nbytes / 1e6:.0f} MB"
)
theta_star = eraser.parameters_to_vector()

# %%
# Erase, retrain, compare
# -----------------------
rng = np.random.default_rng(SEED)
class_rows = np.flatnonzero(y_train.numpy() == ERASED_CLASS)
requests = {
    f"all of class {ERASED_CLASS}": class_rows,
    f"10% of class {ERASED_CLASS}": np.sort(
        rng.choice(class_rows, len(class_rows) // 10, replace=False)
    ),
    f"50% of class {ERASED_CLASS}": np.sort(
        rng.choice(class_rows, len(class_rows) // 2, replace=False)
    ),
}
test_in = y_test.numpy() == ERASED_CLASS
columns = ["train S", "train D∖S", f"test class {ERASED_CLASS}", "test other"]


def split_accuracies(model, removed):
    kept = np.setdiff1d(np.arange(len(X_train)), removed)
    return np.array(
        [
            accuracy(model, X_train[removed], y_train[removed]),
            accuracy(model, X_train[kept], y_train[kept]),
            accuracy(model, X_test[test_in], y_test[test_in]),
            accuracy(model, X_test[~test_in], y_test[~test_in]),
        ]
    )


results = {}
for name, removed in requests.items():
    kept = np.setdiff1d(np.arange(len(X_train)), removed)
    t0 = time.perf_counter()
    retrained = train(X_train[kept], y_train[kept])
    retrain_seconds = time.perf_counter() - t0
    target = split_accuracies(retrained, removed)
    step = eraser.forget_step(X_train[removed], y_train[removed])
    rows = []
    for eps in EPS_GRID:
        # θ* + ε·step, as eraser.forget(X, y, eps) would do in place (which also records
        # the removal); the grid needs every ε from the same θ*.
        eraser.vector_to_parameters(theta_star + eps * step.direction)
        rows.append(np.abs(split_accuracies(net, removed) - target))
    eraser.vector_to_parameters(theta_star)  # back to θ* for the next request
    results[name] = (np.array(rows), target, retrain_seconds, step.seconds, removed)

# %%
# Absolute accuracy differences to the retrained network
# ------------------------------------------------------
# ``ε = 0`` is the original network; the paper's Figure 2 reads the same way.
for name, (rows, target, retrain_seconds, step_seconds, _) in results.items():
    print(
        f"\n{name}: retrain {retrain_seconds:.0f}s, SSSE step {step_seconds:.1f}s; "
        f"retrained accuracies " + ", ".join(f"{c} {a:.3f}" for c, a in zip(columns, target))
    )
    print("| ε | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for eps, row in zip(EPS_GRID, rows):
        print(f"| {eps:g} | " + " | ".join(f"{v:.3f}" for v in row) + " |")

# %%
# L-CODEC: the step on a few selected units only
# ----------------------------------------------
# For each request, 100 Gaussian perturbations of (at most 64 of) the removed samples
# give activations of every unit (conv filter, linear neuron) and the loss; FOCI with
# Azadkia & Chatterjee's conditional dependence coefficient picks the units, and the SSSE
# step is computed and applied on their parameters only.
print("\n| request | method | parameters touched | seconds | best ε | mean |diff| |")
print("|---|---|---|---|---|---|")
for name, (rows, target, _, step_seconds, removed) in results.items():
    t0 = time.perf_counter()
    selection = lcodec_select(eraser, X_train[removed], y_train[removed], random_state=SEED)
    sub = eraser.forget_step(X_train[removed], y_train[removed], subset=selection.parameter_indices)
    seconds = time.perf_counter() - t0
    sub_rows = []
    for eps in EPS_GRID:
        eraser.vector_to_parameters(theta_star + eps * sub.direction)
        sub_rows.append(np.abs(split_accuracies(net, removed) - target))
    eraser.vector_to_parameters(theta_star)
    sub_rows = np.array(sub_rows)
    for method, r, touched, sec in (
        ("SSSE", rows, n_params, step_seconds),
        (f"L-CODEC ({len(selection.units)} units)", sub_rows, sub.n_params_touched, seconds),
    ):
        i = int(np.argmin(r.mean(axis=1)))
        print(
            f"| {name} | {method} | {touched} | {sec:.2f} | {EPS_GRID[i]:g} | {r[i].mean():.3f} |"
        )

# %%
# Plot
# ----
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, len(results), figsize=(12, 3.5), sharey=True)
for ax, (name, (rows, *_)) in zip(np.atleast_1d(axes), results.items()):
    grid = np.array(EPS_GRID[1:])
    for j, column in enumerate(columns):
        ax.semilogx(grid, rows[1:, j], marker="o", label=column)
    ax.set_title(name)
    ax.set_xlabel("ε")
np.atleast_1d(axes)[0].set_ylabel("|accuracy(SSSE) − accuracy(retrained)|")
np.atleast_1d(axes)[0].legend()
fig.tight_layout()
plt.show()
