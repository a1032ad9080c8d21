"""Cost and effect of ridge's data-free accuracy check (doc/trust.rst, "Accuracy check").

    python benchmarks/accuracy_check.py [--out benchmarks/results]

Prints a JSON summary and a markdown table and writes ``accuracy_check.{json,md}``:

* **cost**: the time of ``forget`` (k = 10 rows) with the check against the same request with
  the check switched off, side by side in one run, for a well-conditioned ridge of d
  features (the check is the downdate of the stored Gram, ``O(k·d²)``, and one residual,
  ``O(d²)``; a forget reads the d × d inverse once or twice);
* **effect**: the reported ill-conditioned cases (n < d, tiny alpha, float32 blocks), the
  error of the erased model against a backward-stable least-squares reference (SVD of the
  augmented system) next to a refit's error, with and without the check.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from sklearn_ssse import UnlearnableRidge


def _theta(model):
    return np.append(np.ravel(model.coef_), np.ravel(model.intercept_))


def _reference(X, y, alpha):
    Xt = np.hstack([X, np.ones((len(y), 1))])
    root = np.full(Xt.shape[1], np.sqrt(alpha))
    root[-1] = 0.0
    A = np.vstack([Xt, np.diag(root)])
    return np.linalg.lstsq(A, np.concatenate([y, np.zeros(Xt.shape[1])]), rcond=None)[0]


def _unchecked(model):
    """The same model with the check switched off (as before it existed)."""
    model = copy.deepcopy(model)
    model.__dict__.pop("_normal_gram")
    model.__dict__.pop("_normal_rhs")
    return model


def _best_time(function, repeat):
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def cost(sizes=(200, 500, 1000), k=10, repeat=7):
    rows = []
    rng = np.random.default_rng(0)
    for d in sizes:
        n = 4 * d
        X, y = rng.normal(size=(n, d)), rng.normal(size=n)
        model = UnlearnableRidge(alpha=1.0).fit(X, y)
        plain = _unchecked(model)
        checked_time = _best_time(
            lambda m=model, X=X, y=y: copy.copy(m).forget(X[:k], y[:k]), repeat
        )
        plain_time = _best_time(lambda m=plain, X=X, y=y: copy.copy(m).forget(X[:k], y[:k]), repeat)
        rows.append(
            {
                "d": d,
                "k": k,
                "forget_checked_s": checked_time,
                "forget_unchecked_s": plain_time,
                "ratio": checked_time / plain_time,
            }
        )
    return rows


def effect():
    cases = [
        (30, 60, 10, 1e-6, "float64"),
        (60, 61, 20, 1e-7, "float64"),
        (300, 80, 100, 1e-2, "float32"),
    ]
    rows = []
    for n, d, k, alpha, dtype in cases:
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(n, d)), rng.normal(size=n)
        model = UnlearnableRidge(alpha=alpha, curvature_dtype=dtype).fit(X, y)
        plain = _unchecked(model)
        reference = _reference(X[k:], y[k:], alpha)
        scale = np.linalg.norm(reference)
        refit = UnlearnableRidge(alpha=alpha).fit(X[k:], y[k:])
        row = {"n": n, "d": d, "k": k, "alpha": alpha, "dtype": dtype}
        row["refit_error"] = float(np.linalg.norm(_theta(refit) - reference) / scale)
        model.forget(X[:k], y[:k])
        row["forget_error_checked"] = float(np.linalg.norm(_theta(model) - reference) / scale)
        row["repair"] = model.erasure_log_[-1]["accuracy_repair"]
        try:
            plain.forget(X[:k], y[:k])
            row["forget_error_unchecked"] = float(np.linalg.norm(_theta(plain) - reference) / scale)
        except Exception as error:  # the release before could also refuse
            row["forget_error_unchecked"] = f"refused: {type(error).__name__}"
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with threadpool_limits(limits=1, user_api="blas"):
        result = {"cost": cost(), "effect": effect()}
    text = json.dumps(result, indent=2)
    print(text)
    table = ["| d | k | forget with check (ms) | without (ms) | ratio |", "|---|---|---|---|---|"]
    for r in result["cost"]:
        table.append(
            f"| {r['d']} | {r['k']} | {1e3 * r['forget_checked_s']:.2f} | "
            f"{1e3 * r['forget_unchecked_s']:.2f} | {r['ratio']:.2f} |"
        )
    table += [
        "",
        "| n | d | k | alpha | blocks | refit error | forget, checked | repair "
        "| forget, unchecked |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["effect"]:
        unchecked = r["forget_error_unchecked"]
        unchecked = unchecked if isinstance(unchecked, str) else f"{unchecked:.2g}"
        table.append(
            f"| {r['n']} | {r['d']} | {r['k']} | {r['alpha']:g} | {r['dtype']} | "
            f"{r['refit_error']:.2g} | {r['forget_error_checked']:.2g} | {r['repair']} | "
            f"{unchecked} |"
        )
    print("\n".join(table))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "accuracy_check.json").write_text(text + "\n", encoding="utf-8")
        (args.out / "accuracy_check.md").write_text("\n".join(table) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
