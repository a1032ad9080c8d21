"""Fidelity of one-step erasure against refits from scratch, on real data.

    python benchmarks/fidelity.py [--out benchmarks/results]

Prints a JSON summary and a markdown table and writes ``fidelity.{json,md}``:

* ridge (diabetes; one and two outputs; with and without intercept): three erasure requests in
  a row against ``sklearn.linear_model.Ridge`` refits on what remains, maximum relative error
  of the coefficients (exact in exact arithmetic);
* logistic regression (bundled yeast, the Hessian/leave-out default): erasing 5% of the
  positive samples of every label of frequency <= 20%, normalized distance
  ``‖θ̂ − θ₋S‖ / ‖θ* − θ₋S‖`` to a tight refit.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from threadpoolctl import threadpool_limits

from sklearn_ssse import UnlearnableLogisticRegression, UnlearnableRidge
from sklearn_ssse.datasets import load_yeast


def ridge_against_refits(alpha=0.1):
    X, y = load_diabetes(return_X_y=True)
    two_outputs = (np.delete(X, 3, axis=1), np.column_stack([y, X[:, 3]]))
    rows = []
    for name, (XX, yy) in {
        "diabetes, 1 output": (X, y),
        "diabetes, 2 outputs": two_outputs,
    }.items():
        for fit_intercept in (True, False):
            model = UnlearnableRidge(alpha=alpha, fit_intercept=fit_intercept).fit(XX, yy)
            keep = np.ones(len(XX), dtype=bool)
            errors = []
            for removed in (slice(0, 10), slice(10, 40), slice(40, 41)):
                model.forget(XX[removed], yy[removed])
                keep[removed] = False
                refit = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="cholesky")
                refit.fit(XX[keep], yy[keep])
                scale = np.abs(refit.coef_).max()
                errors.append(float(np.abs(model.coef_ - refit.coef_).max() / scale))
            rows.append(
                {"data": name, "fit_intercept": fit_intercept, "max_relative_error": max(errors)}
            )
    return rows


def logistic_against_refits(rate=0.05, C=1.0, tol=1e-8, seed=0):
    X, Y = load_yeast(return_X_y=True)
    rng = np.random.default_rng(seed)
    original = UnlearnableLogisticRegression(C=C, tol=tol).fit(X, Y)

    def theta(model):
        return np.hstack([model.coef_, model.intercept_[:, None]])

    rows = []
    for label in np.flatnonzero(Y.mean(axis=0) <= 0.2):
        positives = np.flatnonzero(Y[:, label] == 1)
        removed = rng.choice(positives, max(1, round(rate * len(positives))), replace=False)
        keep = np.setdiff1d(np.arange(len(X)), removed)
        refit = UnlearnableLogisticRegression(C=C, tol=tol).fit(X[keep], Y[keep])
        erased = copy.deepcopy(original).forget(X[removed], Y[removed])
        distance = np.linalg.norm(theta(erased) - theta(refit)) / np.linalg.norm(
            theta(original) - theta(refit)
        )
        rows.append({"label": int(label), "n_removed": len(removed), "distance": float(distance)})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    with threadpool_limits(1):
        result = {"ridge": ridge_against_refits(), "logistic_yeast": logistic_against_refits()}
    lines = [
        "| ridge data | intercept | max relative error vs Ridge refit (3 requests in a row) |",
        "|---|---|---|",
        *(
            f"| {r['data']} | {r['fit_intercept']} | {r['max_relative_error']:.1e} |"
            for r in result["ridge"]
        ),
        "",
        "| yeast label (5% of its positives erased) | removed | ‖θ̂ − θ₋S‖ / ‖θ* − θ₋S‖ |",
        "|---|---|---|",
        *(
            f"| {r['label']} | {r['n_removed']} | {r['distance']:.4f} |"
            for r in result["logistic_yeast"]
        ),
    ]
    table = "\n".join(lines)
    print(json.dumps(result, indent=1))
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fidelity.json").write_text(json.dumps(result, indent=1))
    (args.out / "fidelity.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
