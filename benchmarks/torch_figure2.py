"""The SSSE paper's Figure 2 at CPU scale, and L-CODEC versus full-parameter SSSE.

One command (about 5-10 minutes on two shared cores)::

    /work/venv/bin/python benchmarks/torch_figure2.py

prints a JSON summary and markdown tables and writes ``benchmarks/results/torch_figure2.json``
and ``benchmarks/results/torch_figure2.md``.

Setting (scaled down from the paper's section 4 so that it runs on a CPU in minutes):

* a ResNet-20-style network (3 stages × 3 basic blocks, 19 convolutions with batch-norm
  and a linear head, as in He et al., 2016) with 4-8-16 channels instead of 16-32-64
  (17,462 parameters instead of about 270,000);
* MNIST digits (the 10,000 official test images in ``../shared/data``) averaged down to
  14 × 14: the first 5,000 to train, the last 5,000 to test; a CIFAR-10 network of this
  size does not learn enough within the budget for the comparison to mean much;
* SGD with momentum 0.9 and weight decay 5e-4, one-cycle learning rate, batch 64, no
  augmentation, a few epochs, from seed 0; the retrained networks start from the same seed
  and see the remaining samples in the same shuffling scheme;
* SSSE (Eq. 4) with the empirical Fisher of the 5,000 training samples, gradients averaged
  over mini-batches of 10 (500 terms, as in the paper), blocks of 4,500 parameters (a
  quarter of the network, as 70,000 is of ResNet-20) stored matrix-free;
* requests from one class: (a) all its training samples, (b) 10% and 50% of them; ``ε`` on
  a grid; absolute accuracy differences to the retrained network on the removed samples,
  the remaining training samples, the erased class's test samples and the other test
  samples. ``ε = 0`` is the "do nothing" baseline (the original network);
* L-CODEC: for each request, units (conv filters, linear neurons) selected by FOCI on 100
  Gaussian perturbations of (at most 64 of) the removed samples, and the SSSE step on their
  parameters only (curvature and step on the subset).

"Best ε" is chosen by looking at the retrained network (an oracle, as when reading the
paper's figure); the full grid is in the tables.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sklearn_ssse.torch import NetworkEraser, lcodec_select

HERE = Path(__file__).resolve().parent
COLUMNS = ["train S", "train D∖S", "test erased class", "test other classes"]


def data_root():
    for candidate in (
        os.environ.get("SSSE_DATA"),
        HERE.parent.parent / "shared" / "data",
        "/work/shared/data",
    ):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    raise FileNotFoundError("../shared/data not found; set SSSE_DATA.")


def read_idx(path):
    """Read a gzipped IDX file (the MNIST format): magic, dimensions, then uint8 data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    n_dims = raw[3]
    shape = struct.unpack(">" + "I" * n_dims, raw[4 : 4 + 4 * n_dims])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape).copy()


def load_mnist(n_train, n_test):
    root = data_root() / "mnist_test10k"
    images = read_idx(root / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(root / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    X = nn.functional.avg_pool2d(torch.from_numpy(images).float().div(255.0)[:, None], 2)
    X = (X - X.mean()) / X.std()
    y = torch.from_numpy(labels)
    return X[:n_train], y[:n_train], X[-n_test:], y[-n_test:]


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
    """ResNet-20 layout (He et al., 2016) with ``width``, ``2·width``, ``4·width`` channels."""

    def __init__(self, width=4, n_classes=10, in_channels=1):
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


def train(X, y, *, width, epochs, seed=0, batch=64):
    """SGD with momentum from a fixed seed (same initialization for every run)."""
    torch.manual_seed(seed)
    net = ResNet20(width)
    order = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    steps = epochs * -(-len(X) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=order)
        for start in range(0, len(X), batch):
            rows = perm[start : start + batch]
            opt.zero_grad()
            nn.functional.cross_entropy(net(X[rows]), y[rows]).backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def predictions(net, X):
    net.eval()
    return torch.cat([net(X[s : s + 1000]).argmax(1) for s in range(0, len(X), 1000)]).numpy()


def split_accuracies(pred_train, pred_test, y_train, y_test, removed, erased_class):
    kept = np.setdiff1d(np.arange(len(y_train)), removed)
    test_in = y_test == erased_class
    return np.array(
        [
            np.mean(pred_train[removed] == y_train[removed]),
            np.mean(pred_train[kept] == y_train[kept]),
            np.mean(pred_test[test_in] == y_test[test_in]),
            np.mean(pred_test[~test_in] == y_test[~test_in]),
        ]
    )


def eps_curve(net, eraser, theta_star, direction, eps_grid, data, removed, erased_class, target):
    X_train, X_test, y_train, y_test = data
    rows = []
    for eps in eps_grid:
        eraser.vector_to_parameters(theta_star + eps * direction)
        acc = split_accuracies(
            predictions(net, X_train),
            predictions(net, X_test),
            y_train,
            y_test,
            removed,
            erased_class,
        )
        rows.append(np.abs(acc - target))
    eraser.vector_to_parameters(theta_star)
    return np.array(rows)


def best(rows, eps_grid):
    i = int(np.argmin(rows.mean(axis=1)))
    return float(eps_grid[i]), rows[i]


def _fmt(values):
    values = np.asarray(values, dtype=float)
    if values.shape[0] == 1:
        return [f"{v:.3f}" for v in values[0]]
    mean, std = values.mean(axis=0), values.std(axis=0)
    return [f"{m:.3f} ± {s:.3f}" for m, s in zip(mean, std)]


def summarize(result):
    """Per request type: mean (± std over erased classes) of the |accuracy differences|."""
    names = list(dict.fromkeys(r["name"] for r in result["requests"]))
    summary = {}
    for name in names:
        reqs = [r for r in result["requests"] if r["name"] == name]
        ssse = np.array([r["ssse_abs_diff"] for r in reqs])  # (classes, eps, columns)
        lcodec = np.array([r["lcodec"]["abs_diff"] for r in reqs])
        # One ε for all classes: the grid point with the best mean over classes and columns.
        i_ssse = int(np.argmin(ssse.mean(axis=(0, 2))))
        i_lcodec = int(np.argmin(lcodec.mean(axis=(0, 2))))
        summary[name] = {
            "n_removed": [r["n_removed"] for r in reqs],
            "ssse_mean": ssse.mean(axis=0).tolist(),
            "ssse_std": ssse.std(axis=0).tolist(),
            "ssse_best_eps": result["config"]["eps_grid"][i_ssse],
            "ssse_best": ssse[:, i_ssse].tolist(),
            "lcodec_best_eps": result["config"]["eps_grid"][i_lcodec],
            "lcodec_best": lcodec[:, i_lcodec].tolist(),
            "nothing": ssse[:, 0].tolist(),
            "ssse_best_per_class": [r["ssse"]["best_abs_diff"] for r in reqs],
            "ssse_best_eps_per_class": [r["ssse"]["best_eps"] for r in reqs],
            "lcodec_best_per_class": [r["lcodec"]["best_abs_diff"] for r in reqs],
            "lcodec_best_eps_per_class": [r["lcodec"]["best_eps"] for r in reqs],
            "ssse_params": [r["ssse"]["n_params_touched"] for r in reqs],
            "lcodec_params": [r["lcodec"]["n_params_touched"] for r in reqs],
            "ssse_seconds": [r["ssse"]["seconds"] for r in reqs],
            "lcodec_seconds": [r["lcodec"]["seconds"] for r in reqs],
            "retrain_seconds": [r["retrain_seconds"] for r in reqs],
            "retrained_accuracy": [r["retrained_accuracy"] for r in reqs],
        }
    return summary


def markdown(result):
    cfg = result["config"]
    summary = result["summary"]
    classes = cfg["erased_classes"]
    lines = [
        "## Figure 2 at CPU scale: |accuracy(SSSE) − accuracy(retrained)|",
        "",
        f"ResNet-20-style network, widths {cfg['width']}-{2 * cfg['width']}-"
        f"{4 * cfg['width']} ({cfg['n_params']} parameters), MNIST 14×14, "
        f"{cfg['n_train']} train / {cfg['n_test']} test, {cfg['epochs']} epochs of SGD, seed 0; "
        f"Fisher: {cfg['n_terms']} gradients averaged over mini-batches of {cfg['batch_size']}, "
        f"blocks of {cfg['block_size']} (matrix-free), λ = {cfg['damping']:g}, built in "
        f"{cfg['fit_seconds']:.0f} s ({cfg['fisher_mb']:.0f} MB with the kept gradients). "
        f"Original network: train accuracy {cfg['train_accuracy']:.3f}, test "
        f"{cfg['test_accuracy']:.3f}, trained in {cfg['train_seconds']:.0f} s. Erased classes "
        f"{classes}: mean ± standard deviation over them (the paper averages over the first 5 "
        f"classes). Whole run {cfg['total_seconds']:.0f} s on {cfg['threads']} thread(s).",
        "",
        "Columns: the removed samples S, the remaining training samples D∖S, the test samples "
        "of the erased class, the test samples of the other classes. ε = 0 is the original "
        "network (do nothing).",
        "",
    ]
    for name, summ in summary.items():
        retrain = np.mean(summ["retrain_seconds"])
        acc = np.mean(summ["retrained_accuracy"], axis=0)
        lines += [
            f"### {name} ({'/'.join(map(str, summ['n_removed']))} samples; retrain "
            f"{retrain:.0f} s on average)",
            "",
            "retrained accuracies (mean): "
            + ", ".join(f"{c} {a:.3f}" for c, a in zip(COLUMNS, acc)),
            "",
            "| ε | " + " | ".join(COLUMNS) + " | mean |",
            "|---|" + "---|" * (len(COLUMNS) + 1),
        ]
        for i, eps in enumerate(cfg["eps_grid"]):
            label = "0 (do nothing)" if eps == 0 else f"{eps:g}"
            mean, std = np.array(summ["ssse_mean"][i]), np.array(summ["ssse_std"][i])
            cells = [f"{m:.3f} ± {s:.3f}" for m, s in zip(mean, std)]
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {mean.mean():.3f} |")
        lines.append("")
    lines += [
        "## L-CODEC versus full-parameter SSSE (same requests, same Fisher)",
        "",
        "| request | method | parameters touched | seconds | ε | "
        + " | ".join(COLUMNS)
        + " | mean |",
        "|---|---|---|---|---|" + "---|" * (len(COLUMNS) + 1),
    ]
    for name, summ in summary.items():
        per_class = "/".join
        for label, key, params, seconds, eps in (
            ("do nothing", "nothing", [0], [0.0], "-"),
            (
                "SSSE, all parameters",
                "ssse_best",
                summ["ssse_params"],
                summ["ssse_seconds"],
                f"{summ['ssse_best_eps']:g}",
            ),
            (
                "SSSE, all parameters, ε per class",
                "ssse_best_per_class",
                summ["ssse_params"],
                summ["ssse_seconds"],
                per_class(f"{e:g}" for e in summ["ssse_best_eps_per_class"]),
            ),
            (
                "L-CODEC + SSSE",
                "lcodec_best",
                summ["lcodec_params"],
                summ["lcodec_seconds"],
                f"{summ['lcodec_best_eps']:g}",
            ),
            (
                "L-CODEC + SSSE, ε per class",
                "lcodec_best_per_class",
                summ["lcodec_params"],
                summ["lcodec_seconds"],
                per_class(f"{e:g}" for e in summ["lcodec_best_eps_per_class"]),
            ),
        ):
            values = np.asarray(summ[key])
            lines.append(
                f"| {name} | {label} | {np.mean(params):.0f} | {np.mean(seconds):.2f} | {eps} | "
                + " | ".join(_fmt(values))
                + f" | {values.mean():.3f} |"
            )
    lines += [
        "",
        "Parameters touched and seconds are means over the erased classes. Seconds: SSSE = "
        "per-sample gradients of the removed samples and the block solves (the Fisher is built "
        "once, beforehand); L-CODEC = selection (100 perturbations, FOCI) plus the subset "
        "curvature and solve. ε: one grid point for all classes (the smallest mean difference "
        "over classes and columns), or the best grid point of each class; both are read off "
        "the retrained networks (an oracle choice, as when reading the paper's figure).",
        "",
        "Units selected by L-CODEC:",
        "",
    ]
    for req in result["requests"]:
        lc = req["lcodec"]
        lines.append(
            f"* class {req['erased_class']}, {req['name']}: {len(lc['units'])} of "
            f"{lc['n_units']} units: " + ", ".join(f"`{n}[{u}]`" for n, u in lc["units"])
        )
    return "\n".join(lines) + "\n"


def run_request(args, net, eraser, theta_star, data, name, c, removed):
    """Retrain without ``removed``; SSSE and L-CODEC + SSSE over the ε grid."""
    X_train, X_test, yt, ys = data
    y_train = torch.from_numpy(yt)
    kept = np.setdiff1d(np.arange(len(yt)), removed)
    t0 = time.perf_counter()
    retrained = train(X_train[kept], y_train[kept], width=args.width, epochs=args.epochs)
    retrain_seconds = time.perf_counter() - t0
    target = split_accuracies(
        predictions(retrained, X_train), predictions(retrained, X_test), yt, ys, removed, c
    )
    eps_grid = args.eps_grid
    step = eraser.forget_step(X_train[removed], y_train[removed])
    rows = eps_curve(net, eraser, theta_star, step.direction, eps_grid, data, removed, c, target)
    best_eps, best_row = best(rows, eps_grid)

    t0 = time.perf_counter()
    selection = lcodec_select(eraser, X_train[removed], y_train[removed], random_state=0)
    sub_step = eraser.forget_step(
        X_train[removed], y_train[removed], subset=selection.parameter_indices
    )
    lcodec_seconds = time.perf_counter() - t0
    sub_rows = eps_curve(
        net, eraser, theta_star, sub_step.direction, eps_grid, data, removed, c, target
    )
    sub_best_eps, sub_best_row = best(sub_rows, eps_grid)
    return {
        "name": name,
        "erased_class": int(c),
        "n_removed": int(len(removed)),
        "retrain_seconds": retrain_seconds,
        "retrained_accuracy": target.tolist(),
        "ssse_abs_diff": rows.tolist(),
        "ssse": {
            "n_params_touched": step.n_params_touched,
            "seconds": step.seconds,
            "best_eps": best_eps,
            "best_abs_diff": best_row.tolist(),
        },
        "lcodec": {
            "n_params_touched": sub_step.n_params_touched,
            "seconds": lcodec_seconds,
            "best_eps": sub_best_eps,
            "best_abs_diff": sub_best_row.tolist(),
            "abs_diff": sub_rows.tolist(),
            "units": [[n, int(u)] for n, u in selection.units],
            "n_units": selection.n_units,
        },
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=5000)
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--classes", type=str, default="0,1,2,3,4", help="erased classes")
    parser.add_argument("--block-size", type=int, default=4500)
    parser.add_argument("--damping", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--eps",
        type=str,
        default="0,1e-3,3e-3,0.01,0.02,0.03,0.04,0.05,0.07,0.1,0.3,1,3",
        help="comma-separated ε grid",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    # One thread: on shared cores, two threads per tiny convolution mostly wait.
    torch.set_num_threads(args.threads)
    eps_grid = args.eps_grid = [float(e) for e in args.eps.split(",")]
    classes = [int(c) for c in args.classes.split(",")]
    start = time.perf_counter()

    X_train, y_train, X_test, y_test = load_mnist(args.n_train, args.n_test)
    yt, ys = y_train.numpy(), y_test.numpy()
    t0 = time.perf_counter()
    net = train(X_train, y_train, width=args.width, epochs=args.epochs)
    train_seconds = time.perf_counter() - t0
    pred_train, pred_test = predictions(net, X_train), predictions(net, X_test)
    log = print if sys.stderr is None else lambda *a: print(*a, file=sys.stderr, flush=True)
    log(f"trained in {train_seconds:.0f}s")

    eraser = NetworkEraser(
        net,
        nn.CrossEntropyLoss(),
        block_size=args.block_size,
        batch_size=10,
        damping=args.damping,
        max_dense_block=2048,
        keep_gradients=True,
    ).fit(X_train, y_train)
    theta_star = eraser.parameters_to_vector()
    log(f"Fisher built in {eraser.fit_seconds_:.0f}s")

    data = (X_train, X_test, yt, ys)
    out_requests = []
    for c in classes:
        rng = np.random.default_rng(c)
        class_rows = np.flatnonzero(yt == c)
        requests = [
            ("(a) all of the class", class_rows),
            ("(b) 10% of the class", np.sort(rng.choice(class_rows, len(class_rows) // 10, False))),
            ("(b) 50% of the class", np.sort(rng.choice(class_rows, len(class_rows) // 2, False))),
        ]
        for name, removed in requests:
            out_requests.append(run_request(args, net, eraser, theta_star, data, name, c, removed))
            log(
                f"class {c}, {name}: retrain {out_requests[-1]['retrain_seconds']:.0f}s, best ε "
                f"{out_requests[-1]['ssse']['best_eps']:g} / "
                f"{out_requests[-1]['lcodec']['best_eps']:g}"
            )

    result = {
        "config": {
            "dataset": "MNIST test set, 14x14",
            "n_train": args.n_train,
            "n_test": args.n_test,
            "width": args.width,
            "epochs": args.epochs,
            "n_params": eraser.n_params_,
            "erased_classes": classes,
            "block_size": args.block_size,
            "batch_size": 10,
            "n_terms": eraser.n_terms_,
            "damping": args.damping,
            "eps_grid": eps_grid,
            "train_seconds": train_seconds,
            "fit_seconds": eraser.fit_seconds_,
            "fisher_mb": eraser.nbytes / 1e6,
            "train_accuracy": float(np.mean(pred_train == yt)),
            "test_accuracy": float(np.mean(pred_test == ys)),
            "threads": args.threads,
            "torch": torch.__version__,
            "total_seconds": time.perf_counter() - start,
        },
        "columns": COLUMNS,
        "requests": out_requests,
    }
    result["summary"] = summarize(result)
    table = markdown(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "torch_figure2.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "torch_figure2.md").write_text(table)
    print(json.dumps(result["summary"]))
    print(table)
    return result


if __name__ == "__main__":
    main()
