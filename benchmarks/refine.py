"""Exact erasure with the remaining data: ``refine`` against scikit-learn's refits.

    python benchmarks/refine.py [--out benchmarks/results] [--quick]

Prints JSON and a markdown table and writes ``refine.{json,md}``. On each data set a model
is fitted, 5% of the samples are erased with ``forget``, and then the exact refit on the
rest is reached, measured side by side in one process:

* ``refine``: :meth:`~sklearn_ssse.UnlearnableLogisticRegression.refine` from the erased
  parameters, at the loosest of the tolerances below that reaches the accuracy (its time
  includes the membership check and the rebuild of the stored curvature at the new point,
  which a refit from scratch would also need before further erasures);
* scikit-learn's ``LogisticRegression`` (``lbfgs``, the package's default solver, and
  ``newton-cholesky``) per label, from scratch ("cold") and with ``warm_start=True`` from
  the fitted ``θ*``; for each, the loosest of ``tol ∈ {1e-6, 1e-8, 1e-10, 1e-12}`` that
  reaches the accuracy is the one timed (as if it were known in advance).

Every time is the best of three runs, one BLAS thread for all.

Accuracy: ``‖θ − θ₋S‖ ≤ 1e-8·‖θ₋S‖`` against a tight refit (Newton–Cholesky at
``tol=1e-12``, run first and not timed). Passes: data passes of ``refine`` (each over all
labels) and scikit-learn's solver iterations summed over the labels divided by the number
of labels (each iteration reads the data at least once per label).

Data: yeast (dense, 14 labels), enron (sparse, 1001 features; the first 8 labels with at
least 5 positives: the 53 labels' scikit-learn refits at four tolerances take too long on
a shared machine) and the CelebA-scale synthetic scenario of ``benchmarks/run.py`` reduced
to ``p=256`` features and 8 labels (``n=16277``): its full size (``p=4096``, 40 labels) is
a 5 GB curvature that the shared machine cannot hold next to the other benchmarks.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklearn_ssse import UnlearnableLogisticRegression
from sklearn_ssse.datasets import load_mulan, load_yeast

try:  # run as a script or imported by the smoke test
    from bounds import SHARED
    from run import celeba_like
except ImportError:  # pragma: no cover
    from benchmarks.bounds import SHARED
    from benchmarks.run import celeba_like

ACCURACY = 1e-8
REPEATS = 3
TOLERANCES = (1e-6, 1e-8, 1e-10, 1e-12)


def load(name, quick):
    if name == "yeast":
        X, Y = load_yeast(return_X_y=True)
        return StandardScaler().fit_transform(X), Y, 1.0
    if name == "enron":
        path = None if SHARED is None else SHARED / "mulan_enron" / "enron-train.arff"
        if path is None or not path.is_file():
            return None
        X, Y = load_mulan(path, return_X_y=True)
        Y = np.asarray(Y.toarray() if hasattr(Y, "toarray") else Y)
        Y = Y[:, (Y.sum(axis=0) >= 5) & (Y.sum(axis=0) <= len(Y) - 5)]
        return X.tocsr(), Y[:, :4] if quick else Y[:, :8], 1.0
    n, p, labels = (2000, 64, 2) if quick else (16277, 256, 8)
    X, Y = celeba_like(n, p, labels)
    return X, Y, 1.0


def theta_of(model):
    return np.hstack([np.atleast_2d(model.coef_), np.reshape(model.intercept_, (-1, 1))])


def sklearn_refit(X, Y, C, solver, tol, start=None):
    """One LogisticRegression per label; returns θ (L, d̃), total iterations, seconds."""
    rows, iterations = [], 0
    tick = time.perf_counter()
    for label in range(Y.shape[1]):
        model = LogisticRegression(
            C=C, solver=solver, tol=tol, max_iter=10000, warm_start=start is not None
        )
        if start is not None:
            model.coef_ = start[label : label + 1, :-1].copy()
            model.intercept_ = start[label, -1:].copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, Y[:, label])
        rows.append(np.r_[model.coef_[0], model.intercept_])
        iterations += int(model.n_iter_[0])
    return np.array(rows), iterations, time.perf_counter() - tick


def scenario(name, quick, seed=0):
    loaded = load(name, quick)
    if loaded is None:
        return None
    X, Y, C = loaded
    n = X.shape[0]
    model = UnlearnableLogisticRegression(C=C, tol=1e-8, max_iter=5000).fit(X, Y)
    theta_star = theta_of(model)
    rng = np.random.default_rng(seed)
    removed = rng.choice(n, int(0.05 * n), replace=False)
    keep = np.setdiff1d(np.arange(n), removed)
    model.forget(X[removed], Y[removed])
    Xk, Yk = X[keep], Y[keep]
    reference, _, reference_seconds = sklearn_refit(Xk, Yk, C, "newton-cholesky", 1e-12)
    scale = np.linalg.norm(reference)

    def error(theta):
        return float(np.linalg.norm(theta - reference) / scale)

    row = {
        "data": name,
        "n": int(n),
        "d": int(X.shape[1]),
        "labels": int(Y.shape[1]),
        "n_removed": len(removed),
        "erased_error": error(theta_of(model)),
        "reference_seconds": reference_seconds,
    }
    # As for scikit-learn below: the loosest tolerance that reaches the accuracy, then the
    # best of REPEATS runs at it (the machine is shared).
    for tol in TOLERANCES:
        refined = copy.deepcopy(model)
        refined.refine(Xk, Yk, tol=tol)
        if error(theta_of(refined)) <= ACCURACY:
            break
    seconds = np.inf
    for _ in range(REPEATS):
        candidate = copy.deepcopy(model)
        tick = time.perf_counter()
        candidate.refine(Xk, Yk, tol=tol)
        elapsed = time.perf_counter() - tick
        if elapsed < seconds:
            seconds, refined = elapsed, candidate
    entry = refined.erasure_log_[-1]
    row["refine"] = {
        "seconds": seconds,
        "seconds_to_solution": entry["seconds_to_solution"],
        "passes": entry["n_passes"],
        "curvature_rebuilds": entry["n_curvature_rebuilds"],
        "rejected_steps": entry["n_rejected_steps"],
        "tol": tol,
        "error": error(theta_of(refined)),
    }
    for solver in ("lbfgs", "newton-cholesky"):
        for mode, start in (("cold", None), ("warm", theta_star)):
            result = {"seconds": None, "tol": None, "passes": None, "error": None}
            for tol in TOLERANCES:
                theta, iterations, seconds = sklearn_refit(Xk, Yk, C, solver, tol, start)
                result.update(
                    seconds=seconds,
                    tol=tol,
                    passes=iterations / Y.shape[1],
                    error=error(theta),
                )
                if result["error"] <= ACCURACY:
                    break
            for _ in range(REPEATS - 1):
                _, _, seconds = sklearn_refit(Xk, Yk, C, solver, result["tol"], start)
                result["seconds"] = min(result["seconds"], seconds)
            result["reached"] = result["error"] <= ACCURACY
            row[f"{solver} {mode}"] = result
    # Against the fastest warm-started refit that reaches the accuracy (lbfgs does not,
    # even at tol=1e-12, on these data), and against the fastest of all that reach it.
    reached = {key: row[key]["seconds"] for key in row if " " in key and row[key]["reached"]}
    warm = [t for key, t in reached.items() if key.endswith("warm")]
    baselines = (
        ("warm", min(warm, default=np.nan)),
        ("best", min(reached.values(), default=np.nan)),
    )
    for name, baseline in baselines:
        row[f"speedup_vs_{name}"] = baseline / row["refine"]["seconds"]
        row[f"speedup_vs_{name}_to_solution"] = baseline / row["refine"]["seconds_to_solution"]
    print(json.dumps(row), flush=True)
    return row


def markdown(rows):
    lines = [
        f"Time (s) and passes to reach {ACCURACY:g} relative of a tight refit after erasing 5%.",
        "",
        "refine: total, and in brackets until θ is accurate (before the curvature refresh) and "
        "the tolerance used. "
        "Speed-ups against the fastest warm-started and the fastest scikit-learn refit that "
        "reaches the accuracy: total (to solution).",
        "",
        "| data | n | d | labels | refine | lbfgs cold | lbfgs warm | newton-cholesky cold "
        "| newton-cholesky warm | vs fastest warm | vs fastest |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(result):
        mark = "" if result.get("reached", True) else " (not reached)"
        return f"{result['seconds']:.3g} s, {result['passes']:.3g} passes{mark}"

    for row in rows:
        lines.append(
            f"| {row['data']} | {row['n']} | {row['d']} | {row['labels']} | "
            f"{cell(row['refine'])} ({row['refine']['seconds_to_solution']:.3g} s; "
            f"tol {row['refine']['tol']:g}) | "
            f"{cell(row['lbfgs cold'])} | {cell(row['lbfgs warm'])} | "
            f"{cell(row['newton-cholesky cold'])} | {cell(row['newton-cholesky warm'])} | "
            f"{row['speedup_vs_warm']:.2f}x ({row['speedup_vs_warm_to_solution']:.2f}x) | "
            f"{row['speedup_vs_best']:.2f}x ({row['speedup_vs_best_to_solution']:.2f}x) |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", default=["yeast", "enron", "celeba"])
    args = parser.parse_args(argv)
    with threadpool_limits(1):
        rows = [r for r in (scenario(name, args.quick) for name in args.only) if r is not None]
    table = markdown(rows)
    print(json.dumps(rows, indent=2))
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "refine.json").write_text(json.dumps(rows, indent=2))
    (args.out / "refine.md").write_text(table + "\n")
    return rows


if __name__ == "__main__":
    main()
