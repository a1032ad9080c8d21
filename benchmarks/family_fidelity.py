"""Erasure of the estimator family against tight refits from scratch, on real data.

    python benchmarks/family_fidelity.py [--out benchmarks/results] [--skip-mnist]

(the MNIST rows read ``../shared/data`` beside the project root, or ``$SKLEARN_SSSE_DATA``)

Prints a JSON summary and a markdown table and writes ``family_fidelity.{json,md}``. For each
model: fit (tight), erase a request ``S``, refit scikit-learn's estimator on ``D∖S`` (tight)
and report the normalized distance ``‖θ̂ − θ₋S‖ / ‖θ* − θ₋S‖`` (0 is the refit, 1 is no
erasure at all) and the largest relative difference of the fit to scikit-learn's own fit.
Multinomial refits are compared after moving their intercepts' mean to the fitted one (the
softmax objective is flat along that shift; the erasure step keeps the mean).

* multinomial logistic regression: digits (1797 × 64, 10 classes), MNIST test set (the first
  3000 images, 2×2-pooled to 14×14 = 196 pixels; needs ../shared/data);
* the same with sample weights (digits);
* ridge with sample weights (diabetes): exact;
* ridge classifier (digits): exact;
* ``make_unlearnable`` of a scikit-learn ``LogisticRegression`` (digits);
* Poisson (diabetes target in counts of 25), Gamma and Tweedie (power 1.5) regressors on
  diabetes, weighted;
* ``LinearSVC`` (squared hinge, primal) on breast cancer and digits.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.linear_model import (
    GammaRegressor,
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    RidgeClassifier,
    TweedieRegressor,
)
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from sklearn_ssse import (
    UnlearnableGammaRegressor,
    UnlearnableLinearSVC,
    UnlearnableLogisticRegression,
    UnlearnablePoissonRegressor,
    UnlearnableRidge,
    UnlearnableRidgeClassifier,
    UnlearnableTweedieRegressor,
    make_unlearnable,
)

TIGHT = dict(tol=1e-10, max_iter=50_000)
REFIT = dict(tol=1e-12, max_iter=100_000)
# ../shared/data beside the project root, or $SKLEARN_SSSE_DATA.
DATA = Path(
    os.environ.get("SKLEARN_SSSE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def _theta(model):
    return np.hstack([np.atleast_2d(model.coef_), np.reshape(model.intercept_, (-1, 1))])


def _mnist(n=3000):
    folder = DATA / "mnist_test10k"
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz") as handle:
        images = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz") as handle:
        labels = np.frombuffer(handle.read(), dtype=np.uint8, offset=8)
    pooled = images[:n].reshape(n, 14, 2, 14, 2).mean(axis=(2, 4)) / 255.0
    return pooled.reshape(n, -1), labels[:n].astype(int)


def _distance(erased, start, refit, center=False):
    refit = refit.copy()
    if center:
        refit[:, -1] += start[:, -1].mean() - refit[:, -1].mean()
    return float(np.linalg.norm(erased - refit) / np.linalg.norm(start - refit))


def multinomial(name, X, y, C, removed, weights=None):
    keep = np.setdiff1d(np.arange(len(y)), removed)
    model = UnlearnableLogisticRegression(C=C, **TIGHT).fit(X, y, sample_weight=weights)
    ref = LogisticRegression(C=C, **TIGHT).fit(X, y, sample_weight=weights)
    fit_error = float(np.linalg.norm(_theta(model) - _theta(ref)) / np.linalg.norm(_theta(ref)))
    start = _theta(model)
    model.forget(X[removed], y[removed])
    w_keep = None if weights is None else weights[keep]
    refit = LogisticRegression(C=C, **REFIT).fit(X[keep], y[keep], sample_weight=w_keep)
    return {
        "model": name,
        "n": len(y),
        "k": len(removed),
        "fit_vs_sklearn": fit_error,
        "normalized_distance": _distance(_theta(model), start, _theta(refit), center=True),
    }


def against_refit(name, ours, theirs, X, y, removed, weights=None):
    """Fit ours and scikit-learn's (both tight), erase ``removed``, refit theirs on D∖S."""
    keep = np.setdiff1d(np.arange(len(y)), removed)
    model = ours.fit(X, y, sample_weight=weights)
    ref = theirs.fit(X, y, sample_weight=weights)
    fit_error = float(np.linalg.norm(_theta(model) - _theta(ref)) / np.linalg.norm(_theta(ref)))
    start = _theta(model)
    model.forget(X[removed], y[removed])
    w_keep = None if weights is None else weights[keep]
    refit = theirs.fit(X[keep], y[keep], sample_weight=w_keep)
    return {
        "model": name,
        "n": len(y),
        "k": len(removed),
        "fit_vs_sklearn": fit_error,
        "normalized_distance": _distance(_theta(model), start, _theta(refit)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--skip-mnist", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    removed = np.arange(0, len(y), 36)  # 50 samples
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    with threadpool_limits(1):
        rows.append(multinomial("multinomial logistic, digits", X, y, 0.1, removed))
        rows.append(multinomial("multinomial logistic, digits, weighted", X, y, 0.1, removed, w))
        if not args.skip_mnist and (DATA / "mnist_test10k").is_dir():
            Xm, ym = _mnist()
            rows.append(
                multinomial(
                    "multinomial logistic, MNIST 3000×196", Xm, ym, 0.1, np.arange(0, 3000, 30)
                )
            )
        keep = np.setdiff1d(np.arange(len(y)), removed)
        wrapped = make_unlearnable(LogisticRegression(C=0.1, **TIGHT).fit(X, y), X, y)
        start = _theta(wrapped)
        wrapped.forget(X[removed], y[removed])
        refit = LogisticRegression(C=0.1, **REFIT).fit(X[keep], y[keep])
        rows.append(
            {
                "model": "make_unlearnable(LogisticRegression), digits",
                "n": len(y),
                "k": len(removed),
                "fit_vs_sklearn": 0.0,
                "normalized_distance": _distance(_theta(wrapped), start, _theta(refit), True),
            }
        )
        Xd, yd = load_diabetes(return_X_y=True)
        wd = np.random.default_rng(1).uniform(0.1, 5.0, len(yd))
        model = UnlearnableRidge(alpha=0.1).fit(Xd, yd, sample_weight=wd)
        start = _theta(model)
        model.forget(Xd[:40], yd[:40])
        refit = Ridge(alpha=0.1).fit(Xd[40:], yd[40:], sample_weight=wd[40:])
        rows.append(
            {
                "model": "ridge, diabetes, weighted",
                "n": len(yd),
                "k": 40,
                "fit_vs_sklearn": 0.0,
                "normalized_distance": _distance(_theta(model), start, _theta(refit)),
            }
        )
        model = UnlearnableRidgeClassifier(alpha=1.0).fit(X, y)
        ref = RidgeClassifier(alpha=1.0, solver="cholesky").fit(X, y)
        fit_error = float(np.linalg.norm(_theta(model) - _theta(ref)) / np.linalg.norm(_theta(ref)))
        start = _theta(model)
        model.forget(X[removed], y[removed])
        refit = RidgeClassifier(alpha=1.0, solver="cholesky").fit(X[keep], y[keep])
        rows.append(
            {
                "model": "ridge classifier, digits",
                "n": len(y),
                "k": len(removed),
                "fit_vs_sklearn": fit_error,
                "normalized_distance": _distance(_theta(model), start, _theta(refit)),
            }
        )
        Xd = StandardScaler().fit_transform(Xd)
        glm = dict(alpha=0.01, tol=1e-12, max_iter=1000, solver="newton-cholesky")
        removed_d = np.arange(0, len(yd), 11)  # 41 samples
        for name, ours, theirs, target in [
            ("Poisson, diabetes counts", UnlearnablePoissonRegressor, PoissonRegressor, "counts"),
            ("Gamma, diabetes", UnlearnableGammaRegressor, GammaRegressor, "y"),
            ("Tweedie 1.5, diabetes", UnlearnableTweedieRegressor, TweedieRegressor, "y"),
        ]:
            params = {"power": 1.5} if theirs is TweedieRegressor else {}
            target = np.round(yd / 25.0) if target == "counts" else yd
            rows.append(
                against_refit(
                    f"{name}, weighted",
                    ours(**params, **glm),
                    theirs(**params, **glm),
                    Xd,
                    target,
                    removed_d,
                    wd,
                )
            )
        Xb, yb = load_breast_cancer(return_X_y=True)
        Xb = StandardScaler().fit_transform(Xb)
        svc = dict(C=0.1, tol=1e-12, max_iter=100_000)
        for name, Xs, ys, rem in [
            ("LinearSVC, breast cancer", Xb, yb, np.arange(0, len(yb), 20)),
            ("LinearSVC, digits (one-vs-rest)", X, y, removed),
        ]:
            rows.append(
                against_refit(
                    name, UnlearnableLinearSVC(**svc), LinearSVC(dual=False, **svc), Xs, ys, rem
                )
            )
    print(json.dumps(rows, indent=2))
    lines = [
        "| model | n | k | fit vs scikit-learn | normalized distance to refit |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['n']} | {r['k']} | {r['fit_vs_sklearn']:.1e} | "
        f"{r['normalized_distance']:.2e} |"
        for r in rows
    ]
    print("\n".join(lines))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "family_fidelity.json").write_text(json.dumps(rows, indent=2))
        (out / "family_fidelity.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
