"""Erasure against tight refits: the fit's tolerance, and the guaranteed distance bound.

    python benchmarks/bounds.py [--out benchmarks/results] [--quick]

Prints a JSON summary and markdown tables and writes ``bounds.{json,md}``:

* **tolerance** (yeast, scene): the fidelity protocol (erase 5% of the positives of each
  label of frequency <= 20%); median normalized distance ``‖θ̂ − θ₋S‖ / ‖θ* − θ₋S‖`` to a
  tight refit for fits at ``tol=1e-4`` and ``1e-10``, and at ``1e-4`` without the residual
  correction (the step as it was before);
* **bounds** (every real data set in ``../shared/data`` and scikit-learn's bundled
  classification sets): requests of 1 sample to 20% of the data (log-uniform sizes, some in
  sequences of two), the logged ``distance_bound`` against the true distance to a tight
  refit (scikit-learn's Newton–Cholesky solver at ``tol=1e-12``): violations (must be 0),
  the share of requests with a finite bound, and its tightness (bound ÷ true distance,
  median and worst over the finite ones).

Features are standardized. MNIST's 784 pixels and CIFAR-10's images are reduced (2×2 and
8×8 mean pooling of the grey image: 196 and 16 features) so that hundreds of tight refits
fit in a few minutes; enron (1001 sparse features, 53 labels) gets fewer requests.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklearn_ssse import UnlearnableLogisticRegression
from sklearn_ssse.datasets import load_mulan, load_yeast

_ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = [
    os.environ.get("SKLEARN_SSSE_SHARED_DATA", ""),
    _ROOT.parent / "shared" / "data",
    "/work/shared/data",
]
SHARED = next((Path(c) for c in _CANDIDATES if c and Path(c).is_dir()), None)


def _scale(X):
    return StandardScaler(with_mean=not hasattr(X, "tocsr")).fit_transform(X)


def _onehot(y):
    classes = np.unique(y)
    return (y[:, None] == classes[None, :]).astype(int)


def load(name):
    """``(X, Y, C)``: standardized features, a label matrix (or binary vector), ``C``."""
    if name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
        return _scale(X), y, 0.5
    if name == "iris_binary":
        X, y = load_iris(return_X_y=True)
        return _scale(X), (y == 1).astype(int), 1.0
    if name == "digits_binary":
        X, y = load_digits(return_X_y=True)
        return _scale(X), y % 2, 0.1
    if name == "wine":
        X, y = load_wine(return_X_y=True)
        return _scale(X), _onehot(y), 0.5
    if name == "yeast":
        X, Y = load_yeast(return_X_y=True)
        return _scale(X), Y, 1.0
    if SHARED is None:
        return None
    if name in ("scene", "emotions", "enron"):
        path = SHARED / f"mulan_{name}" / f"{name}-train.arff"
        if not path.is_file():
            return None
        X, Y = load_mulan(path, return_X_y=True)
        Y = np.asarray(Y.toarray() if hasattr(Y, "toarray") else Y)
        keep = (Y.min(axis=0) < Y.max(axis=0)) & (Y.sum(axis=0) >= 5)  # labels with both classes
        if hasattr(X, "tocsr"):
            X = X.tocsr()
            return X, Y[:, keep], 1.0  # binary features: kept as they are (sparse)
        return _scale(X), Y[:, keep], 1.0
    if name == "mnist_test10k":
        folder = SHARED / "mnist_test10k"
        with gzip.open(folder / "t10k-images-idx3-ubyte.gz") as handle:
            images = np.frombuffer(handle.read(), np.uint8, offset=16).reshape(-1, 28, 28)
        with gzip.open(folder / "t10k-labels-idx1-ubyte.gz") as handle:
            labels = np.frombuffer(handle.read(), np.uint8, offset=8)
        pooled = images[:4000].reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(-1, 196)
        return _scale(pooled / 255.0), _onehot(labels[:4000]), 0.1
    if name == "cifar10_subset":
        data = np.load(SHARED / "cifar10_jpeg_subset" / "cifar10_subset_5k_1k.npz")
        images, labels = data["x_train"], data["y_train"]
        grey = images.astype(float).mean(axis=-1) / 255.0
        side = grey.shape[1] // 4
        pooled = grey.reshape(-1, 4, side, 4, side).mean(axis=(2, 4)).reshape(-1, 16)
        return _scale(pooled), _onehot(labels), 1.0
    raise ValueError(name)


def theta(model):
    return np.hstack([np.atleast_2d(model.coef_), np.reshape(model.intercept_, (-1, 1))])


def tight_refit(X, Y, C):
    Y = Y.reshape(X.shape[0], -1)
    rows = []
    for label in range(Y.shape[1]):
        fit = LogisticRegression(C=C, tol=1e-12, max_iter=1000, solver="newton-cholesky")
        fit.fit(X, Y[:, label])
        rows.append(np.r_[fit.coef_[0], fit.intercept_])
    return np.array(rows)


# ---------------------------------------------------------------------------- tolerance
def tolerance_rows(rate=0.05, seed=0):
    rows = []
    for name in ("yeast", "scene"):
        loaded = load(name)
        if loaded is None:
            continue
        X, Y, C = loaded
        fits = {
            tol: UnlearnableLogisticRegression(C=C, tol=tol, max_iter=5000).fit(X, Y)
            for tol in (1e-4, 1e-10)
        }
        uncorrected = copy.deepcopy(fits[1e-4])
        del uncorrected.__dict__["_objective_gradient"]
        rng = np.random.default_rng(seed)
        distances = {"1e-4": [], "1e-10": [], "1e-4 uncorrected": []}
        for label in np.flatnonzero(Y.mean(axis=0) <= 0.2):
            positives = np.flatnonzero(Y[:, label] == 1)
            removed = rng.choice(positives, max(1, round(rate * len(positives))), replace=False)
            keep = np.setdiff1d(np.arange(X.shape[0]), removed)
            refit = tight_refit(X[keep], Y[keep], C)
            scale = np.linalg.norm(theta(fits[1e-10]) - refit)
            for key, model in (
                ("1e-4", fits[1e-4]),
                ("1e-10", fits[1e-10]),
                ("1e-4 uncorrected", uncorrected),
            ):
                erased = copy.deepcopy(model).forget(X[removed], Y[removed])
                distances[key].append(float(np.linalg.norm(theta(erased) - refit) / scale))
        medians = {key: float(np.median(values)) for key, values in distances.items()}
        rows.append(
            {
                "data": name,
                "n_requests": len(distances["1e-4"]),
                "median_distance": medians,
                "ratio_1e-4_over_1e-10": medians["1e-4"] / medians["1e-10"],
            }
        )
    return rows


# ---------------------------------------------------------------------------- bounds
DATA = [
    ("breast_cancer", 60),
    ("iris_binary", 40),
    ("digits_binary", 60),
    ("wine", 40),
    ("yeast", 50),
    ("scene", 40),
    ("emotions", 50),
    ("enron", 4),
    ("mnist_test10k", 12),
    ("cifar10_subset", 40),
]


def bound_rows(quick=False, seed=0, only=None):
    rows = []
    for name, n_requests in DATA:
        if only is not None and name not in only:
            continue
        loaded = load(name)
        if loaded is None:
            continue
        X, Y, C = loaded
        n_requests = max(4, n_requests // 4) if quick else n_requests
        start = time.perf_counter()
        model = UnlearnableLogisticRegression(C=C, tol=1e-10, max_iter=5000).fit(X, Y)
        rng = np.random.default_rng(seed)
        n = X.shape[0]
        ratios, sizes, finite_sizes, violations, checked = [], [], [], 0, 0
        forget_time = 0.0
        for r in range(n_requests):
            size = int(np.round(np.exp(rng.uniform(0, np.log(0.2 * n)))))
            erased = copy.deepcopy(model)
            keep = np.ones(n, dtype=bool)
            for _ in range(2 if r % 3 == 2 else 1):  # every third request is a sequence
                rows_ = rng.choice(np.flatnonzero(keep), max(1, size), replace=False)
                tick = time.perf_counter()
                erased.forget(X[rows_], Y[rows_], bound="tight")
                forget_time += time.perf_counter() - tick
                keep[rows_] = False
                refit = tight_refit(X[keep], Y[keep], C)
                distance = float(np.linalg.norm(theta(erased) - refit))
                bound = erased.erasure_log_[-1]["distance_bound"]
                bound = np.inf if bound is None else bound
                checked += 1
                sizes.append(len(rows_))
                if bound < distance - 1e-9 * np.linalg.norm(refit):
                    violations += 1
                if np.isfinite(bound):
                    ratios.append(bound / max(distance, 1e-300))
                    finite_sizes.append(len(rows_))
        rows.append(
            {
                "data": name,
                "n_samples": int(n),
                "n_features": int(X.shape[1]),
                "n_labels": int(np.reshape(Y, (n, -1)).shape[1]),
                "n_requests": checked,
                "sizes": [int(min(sizes)), int(max(sizes))],
                "violations": violations,
                "finite_share": len(ratios) / checked,
                "largest_finite_request": int(max(finite_sizes)) if finite_sizes else None,
                "tightness_median": float(np.median(ratios)) if ratios else None,
                "tightness_worst": float(np.max(ratios)) if ratios else None,
                "forget_seconds_mean": forget_time / checked,
                "seconds": time.perf_counter() - start,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(tolerance, bounds):
    lines = [
        "Median normalized distance to a tight refit (fidelity protocol).",
        "",
        "| data | requests | tol=1e-10 | tol=1e-4 | ratio | tol=1e-4 without the correction |",
        "|---|---|---|---|---|---|",
    ]
    for row in tolerance:
        m = row["median_distance"]
        lines.append(
            f"| {row['data']} | {row['n_requests']} | {m['1e-10']:.4f} | {m['1e-4']:.4f} | "
            f"{row['ratio_1e-4_over_1e-10']:.3f} | {m['1e-4 uncorrected']:.4f} |"
        )
    lines += [
        "",
        "Guaranteed distance bound against the true distance to a tight refit.",
        "",
        "| data | n | d | labels | requests | sizes | violations | finite | largest finite "
        "| tightness median | worst |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def fmt(value):
        return "–" if value is None else f"{value:.3g}"

    for row in bounds:
        lines.append(
            f"| {row['data']} | {row['n_samples']} | {row['n_features']} | {row['n_labels']} | "
            f"{row['n_requests']} | {row['sizes'][0]}–{row['sizes'][1]} | {row['violations']} | "
            f"{row['finite_share']:.0%} | {fmt(row['largest_finite_request'])} | "
            f"{fmt(row['tightness_median'])} | {fmt(row['tightness_worst'])} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--quick", action="store_true", help="a quarter of the requests")
    parser.add_argument("--only", nargs="*", default=None, help="data sets (default: all)")
    args = parser.parse_args(argv)
    with threadpool_limits(1):
        tolerance = tolerance_rows() if args.only is None else []
        bounds = bound_rows(quick=args.quick, only=args.only)
    result = {"tolerance": tolerance, "bounds": bounds}
    table = markdown(tolerance, bounds)
    print(json.dumps(result, indent=2))
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bounds.json").write_text(json.dumps(result, indent=2))
    (args.out / "bounds.md").write_text(table + "\n")
    return result


if __name__ == "__main__":
    main()
