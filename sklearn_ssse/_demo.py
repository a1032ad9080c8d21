"""The main job: erase part of a rare label's samples from a multi-label model and compare
with a refit, on the bundled yeast data (or any Mulan ARFF file)."""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from .datasets import load_mulan, load_yeast
from .linear_model import UnlearnableLogisticRegression
from .model_selection import similarity_ratio_path

__all__ = [
    "erase_rare_label",
    "figure1_study",
    "format_figure1_table",
    "format_table",
    "plot_figure1",
    "run_demo",
    "run_erasure_demo",
]

DEFAULT_EPS_GRID = np.r_[0.0, np.logspace(-1, 1.5, 51)]
DEFAULT_RATES = (0.05, 0.2, 0.5)

MODES = {
    "newton (default: hessian, leave-out)": dict(curvature="hessian", leave_out=True),
    # The paper sets its dampening λ equal to the ℓ2 parameter; in the package's
    # mean-normalized B that term is already P/n = 1/(nC), so no extra damping.
    "SSSE paper (empirical Fisher, H_D, λ = 1/(nC))": dict(
        curvature="empirical_fisher", leave_out=False, damping=0.0
    ),
}


def _theta(model):
    return np.hstack([model.coef_, model.intercept_[:, None]])


def _scores_on(model, X, Y, label):
    proba = model.predict_proba(X)
    aucs = [
        roc_auc_score(Y[:, j], proba[:, j]) for j in range(Y.shape[1]) if 0 < Y[:, j].sum() < len(Y)
    ]
    return {
        "hamming_accuracy": float(np.mean(model.predict(X) == Y)),
        "mean_auc": float(np.mean(aucs)) if aucs else float("nan"),
        "erased_label_mean_proba": float(proba[:, label].mean()),
    }


def check_label(Y, label):
    """Raise ``ValueError`` unless ``label`` indexes a label of ``Y`` with positive samples."""
    n_labels = np.shape(Y)[1]
    if not (isinstance(label, (int, np.integer)) and 0 <= label < n_labels):
        raise ValueError(
            f"label={label} is out of range: the data has {n_labels} labels, numbered 0 to "
            f"{n_labels - 1}."
        )
    if not np.any(np.asarray(Y)[:, label] == 1):
        raise ValueError(f"label={label} has no positive sample to erase.")


def erase_rare_label(X, Y, *, C=1.0, label=None, fraction=0.2, random_state=0, tol=1e-8):
    """Fit, erase ``fraction`` of a rare label's positive samples, refit, and measure.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n, d)
    Y : ndarray of shape (n, L)
        Binary label indicator matrix.
    C : float, default=1.0
        Inverse regularization strength.
    label : int, default=None
        The label whose samples are erased; ``None`` picks the rarest label with at least
        50 positives.
    fraction : float, default=0.2
        Share of that label's positive samples to erase.
    random_state : int, default=0
    tol : float, default=1e-8
        Solver tolerance of the fits (the erasure step assumes an optimal model).

    Returns
    -------
    dict
        ``rows`` (one dict per model: original, refit, and each erasure mode) and the setup.
    """
    rng = np.random.default_rng(random_state)
    counts = np.asarray(Y).sum(axis=0)
    if label is None:
        eligible = np.flatnonzero(counts >= 50)
        if len(eligible) == 0:  # a small data set: the most frequent label instead
            eligible = np.array([int(np.argmax(counts))])
        label = int(eligible[np.argmin(counts[eligible])])
    check_label(Y, label)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction={fraction} must be strictly between 0 and 1.")
    positives = np.flatnonzero(Y[:, label] == 1)
    removed = np.sort(rng.choice(positives, max(1, int(fraction * len(positives))), replace=False))
    keep = np.setdiff1d(np.arange(X.shape[0]), removed)
    X_removed, Y_removed = X[removed], Y[removed]

    rows = []
    start = time.perf_counter()
    refit = UnlearnableLogisticRegression(C=C, tol=tol).fit(X[keep], Y[keep])
    refit_time = time.perf_counter() - start
    theta_refit = _theta(refit)
    original = None
    for name, params in MODES.items():
        fitted = UnlearnableLogisticRegression(C=C, tol=tol, **params).fit(X, Y)
        if original is None:
            original = fitted
            distance_original = np.linalg.norm(_theta(original) - theta_refit)
            rows.append(
                {
                    "model": "original (trained on D)",
                    "distance_to_refit": 1.0,
                    "forget_seconds": float("nan"),
                    **_scores_on(original, X_removed, Y_removed, label),
                }
            )
        erased = copy.deepcopy(fitted)
        start = time.perf_counter()
        erased.forget(X_removed, Y_removed)
        forget_time = time.perf_counter() - start
        rows.append(
            {
                "model": f"erased: {name}",
                "distance_to_refit": float(
                    np.linalg.norm(_theta(erased) - theta_refit) / distance_original
                ),
                "forget_seconds": forget_time,
                **_scores_on(erased, X_removed, Y_removed, label),
            }
        )
    rows.append(
        {
            "model": "refit on D∖S (gold standard)",
            "distance_to_refit": 0.0,
            "forget_seconds": float("nan"),
            **_scores_on(refit, X_removed, Y_removed, label),
        }
    )
    return {
        "label": label,
        "label_frequency": float(counts[label] / X.shape[0]),
        "n_samples": int(X.shape[0]),
        "n_removed": int(len(removed)),
        "refit_seconds": refit_time,
        "rows": rows,
    }


def _cell(value, spec):
    """``value`` formatted with ``spec``, or ``-`` when it is missing (None or NaN)."""
    if value is None or not np.isfinite(value):
        return "-"
    return format(value, spec)


def format_table(result):
    """Markdown table of :func:`erase_rare_label`'s result, with a legend under it."""
    lines = [
        "| model | ‖θ−θ₋S‖ / ‖θ*−θ₋S‖ | accuracy on S | mean AUC on S | P(erased label) on S "
        "| forget s | refit s / forget s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        forget = row["forget_seconds"]
        has_time = forget is not None and np.isfinite(forget)
        speedup = result["refit_seconds"] / forget if has_time else None
        lines.append(
            f"| {row['model']} | {_cell(row['distance_to_refit'], '.4f')} "
            f"| {_cell(row['hamming_accuracy'], '.4f')} | {_cell(row['mean_auc'], '.4f')} "
            f"| {_cell(row['erased_label_mean_proba'], '.4f')} | {_cell(forget, '.5f')} "
            f"| {_cell(speedup, '.0f')} |"
        )
    lines += [
        "",
        "S: the erased samples; θ*: the model trained on all data D; θ₋S: the model refit on "
        "D∖S (the gold",
        "standard); θ: each model's parameters. ‖θ−θ₋S‖ / ‖θ*−θ₋S‖ is 0 for the refit and 1 "
        "for doing nothing",
        "(lower is better). On S: accuracy is per-label (Hamming) accuracy, mean AUC the ROC AUC "
        "averaged over",
        "the labels with both classes in S, P(erased label) the mean predicted probability of "
        "the erased label;",
        "for these, the closer to the refit row the better (the original model was trained on S "
        "and scores higher).",
        "refit s / forget s: how many times faster the erasure is than the refit (higher is "
        "better). -: does not apply.",
    ]
    return "\n".join(lines)


def run_erasure_demo(*, data=None, C=1.0, label=None, fraction=0.2, random_state=0, out=print):
    """Load the data (bundled yeast by default), run :func:`erase_rare_label`, print a table."""
    if data is None:
        X, Y = load_yeast(return_X_y=True)
        source = "bundled Mulan yeast (train split)"
    else:
        X, Y = load_mulan(data, return_X_y=True)
        source = str(data)
    result = erase_rare_label(X, Y, C=C, label=label, fraction=fraction, random_state=random_state)
    out(
        f"Data: {source}, n={result['n_samples']}, d={X.shape[1]}, L={Y.shape[1]}. Erasing "
        f"{result['n_removed']} of the positive samples of label {result['label']} "
        f"(frequency {result['label_frequency']:.3f}); C={C}. Refit took "
        f"{result['refit_seconds']:.3f} s."
    )
    out(format_table(result))
    return result


class _Progress:
    """One self-overwriting line on stderr (only when it is a terminal or forced)."""

    def __init__(self, total, label, enabled):
        self.total, self.label, self.enabled, self.done = total, label, enabled, 0
        self.start = time.perf_counter()

    def step(self, note=""):
        self.done += 1
        if self.enabled:
            elapsed = time.perf_counter() - self.start
            sys.stderr.write(
                f"\r{self.label}: {self.done}/{self.total} ({elapsed:5.1f} s) {note:<30}"
            )
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def figure1_study(
    X,
    Y,
    *,
    C=1.0,
    rates=DEFAULT_RATES,
    eps_values=DEFAULT_EPS_GRID,
    max_frequency=0.2,
    random_state=0,
    tol=1e-8,
    progress=None,
):
    """The paper's section-3 protocol (Figure 1) on a multi-label data set.

    For every label with frequency ``<= max_frequency`` and every removal rate, erase that
    share of the label's positive samples, refit without them (the gold standard) and
    measure, over the grid of ``ε``, the similarity ratio ``γ_S`` (paper Eq. 5) and the
    normalized parameter distance ``‖θ̂_ε − θ₋S‖ / ‖θ* − θ₋S‖``, for the paper's SSSE
    (empirical Fisher over ``D``, its dampening ``λ`` being the ℓ2 term ``1/(nC)``) and the
    package default (Hessian, leave-out).

    A request whose removed samples leave no label with both classes has ``γ = 0/0``
    (every AUC is 0 by the paper's convention); it is reported as degenerate and left out
    of the ``γ`` averages (it stays in the distance averages).

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n, d)
    Y : ndarray of shape (n, L)
    C : float, default=1.0
    rates : sequence of float, default=(0.05, 0.2, 0.5)
    eps_values : array-like, default=51 log-spaced values in [0.1, 31.6] and 0
    max_frequency : float, default=0.2
    random_state : int, default=0
    tol : float, default=1e-8
    progress : bool, default=None
        Show progress on stderr; ``None`` shows it when stderr is a terminal.

    Returns
    -------
    dict
        ``eps``, per mode and rate the mean ``gamma`` and ``distance`` curves, the
        per-request records, and a ``summary``.
    """
    eps_values = np.asarray(eps_values, dtype=np.float64)
    progress = sys.stderr.isatty() if progress is None else progress
    rng = np.random.default_rng(random_state)
    labels = np.flatnonzero(Y.mean(axis=0) <= max_frequency)
    if len(labels) == 0:
        raise ValueError(f"No label has frequency <= {max_frequency}.")
    fitted, fit_seconds = {}, {}
    for mode, params in MODES.items():
        start = time.perf_counter()
        fitted[mode] = UnlearnableLogisticRegression(C=C, tol=tol, **params).fit(X, Y)
        fit_seconds[mode] = time.perf_counter() - start

    records = []
    bar = _Progress(len(rates) * len(labels), "refits and ε paths", progress)
    for rate in rates:
        for label in labels:
            positives = np.flatnonzero(Y[:, label] == 1)
            size = max(1, int(round(rate * len(positives))))
            removed = np.sort(rng.choice(positives, size, replace=False))
            keep = np.setdiff1d(np.arange(X.shape[0]), removed)
            start = time.perf_counter()
            refit = UnlearnableLogisticRegression(C=C, tol=tol).fit(X[keep], Y[keep])
            refit_seconds = time.perf_counter() - start
            theta_refit = _theta(refit)
            Y_removed = Y[removed]
            in_S = Y_removed.sum(axis=0)
            degenerate = not np.any((in_S > 0) & (in_S < len(removed)))
            for mode, model in fitted.items():
                start = time.perf_counter()
                step = model.forget_step(X[removed], Y_removed)
                forget_seconds = time.perf_counter() - start
                unit = np.hstack([step.coef, np.reshape(step.intercept, (-1, 1))])
                theta = _theta(model)
                norm = np.linalg.norm(theta - theta_refit)
                distance = [
                    float(np.linalg.norm(theta + eps * unit - theta_refit) / norm)
                    for eps in eps_values
                ]
                gamma, _ = similarity_ratio_path(model, X[removed], Y_removed, refit, eps_values)
                records.append(
                    {
                        "mode": mode,
                        "rate": rate,
                        "label": int(label),
                        "n_removed": int(size),
                        "degenerate": bool(degenerate),
                        "gamma": gamma.tolist(),
                        "distance": distance,
                        "forget_seconds": forget_seconds,
                        "refit_seconds": refit_seconds,
                    }
                )
            bar.step(f"rate {rate:.2f}, label {label}")

    curves, summary = {}, {}
    unit_index = int(np.argmin(np.abs(eps_values - 1.0)))
    for mode in MODES:
        curves[mode], best_per_rate, at_one = {}, [], []
        for rate in rates:
            rows = [r for r in records if r["mode"] == mode and r["rate"] == rate]
            valid = [r["gamma"] for r in rows if not r["degenerate"]]
            gamma = np.mean(valid, axis=0) if valid else np.full(len(eps_values), np.nan)
            distance = np.mean([r["distance"] for r in rows], axis=0)
            best = int(np.nanargmax(gamma)) if valid else 0
            curves[mode][str(rate)] = {
                "gamma": gamma.tolist(),
                "distance": distance.tolist(),
                "best_eps": float(eps_values[best]),
                "best_gamma": float(gamma[best]),
                "gamma_at_eps_1": float(gamma[unit_index]),
                "distance_at_eps_1": float(distance[unit_index]),
                "min_distance": float(distance.min()),
                "eps_min_distance": float(eps_values[int(np.argmin(distance))]),
                "n_labels": len(rows),
                "n_degenerate": sum(r["degenerate"] for r in rows),
                "mean_forget_seconds": float(np.mean([r["forget_seconds"] for r in rows])),
                "mean_refit_seconds": float(np.mean([r["refit_seconds"] for r in rows])),
            }
            best_per_rate.append(gamma[best])
            at_one.append(gamma[unit_index])
        summary[mode] = {
            "mean_gamma_at_eps_1": float(np.nanmean(at_one)),
            "mean_gamma_at_best_eps": float(np.nanmean(best_per_rate)),
            "fit_seconds": fit_seconds[mode],
        }
    return {
        "C": C,
        "labels": labels.tolist(),
        "rates": list(rates),
        "eps": eps_values.tolist(),
        "eps_index_of_1": unit_index,
        "curves": curves,
        "summary": summary,
        "records": records,
    }


def format_figure1_table(study):
    """Markdown table of :func:`figure1_study` (one row per mode and removal rate), with a
    legend under it.

    The columns of the best ``ε`` (largest ``γ``, smallest distance) are shown only when
    some row's best ``ε`` is not 1: otherwise they repeat the ``ε = 1`` columns.
    """
    curves = [
        (mode, rate, c) for mode, by_rate in study["curves"].items() for rate, c in by_rate.items()
    ]
    show_best_gamma = any(c["best_eps"] != 1.0 for _, _, c in curves)
    show_min_distance = any(c["eps_min_distance"] != 1.0 for _, _, c in curves)
    header = ["mode", "removed", "labels (degenerate)", "γ at ε=1"]
    header += ["best γ (ε)"] if show_best_gamma else []
    header += ["distance at ε=1"]
    header += ["min distance (ε)"] if show_min_distance else []
    header += ["refit s / forget s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for mode, rate, c in curves:
        speedup = c["mean_refit_seconds"] / c["mean_forget_seconds"]
        cells = [mode, f"{float(rate):.0%}", f"{c['n_labels']} ({c['n_degenerate']})"]
        cells.append(_cell(c["gamma_at_eps_1"], ".3f"))
        if show_best_gamma:
            cells.append(f"{_cell(c['best_gamma'], '.3f')} ({c['best_eps']:.3g})")
        cells.append(_cell(c["distance_at_eps_1"], ".3f"))
        if show_min_distance:
            cells.append(f"{_cell(c['min_distance'], '.3f')} ({c['eps_min_distance']:.3g})")
        cells.append(_cell(speedup, ".0f"))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "removed: share of the label's positive samples erased, one request per label and "
        "rate, means over labels.",
        "ε: scale of the erasure step (ε=1 is the plain Newton / SSSE step; the figure shows "
        "the whole ε curve).",
        "γ: the similarity ratio of the paper (Eq. 5) on S, from the per-label ROC AUCs of the "
        "erased, original",
        "and refit models: 1 = ranks S like the refit, 0 = like the original, 0.5 = half-way "
        "(higher is better).",
        "distance: ‖θ−θ₋S‖ / ‖θ*−θ₋S‖, 0 = the refit, 1 = nothing erased (lower is better).",
        "degenerate: requests whose S has no label with both classes, where γ is 0/0; they are "
        "left out of the γ means.",
    ]
    if not show_best_gamma:
        lines.append('Every row\'s γ is largest at ε=1 (so no "best ε" column).')
    lines.append("")
    for mode, s in study["summary"].items():
        at_one, at_best = s["mean_gamma_at_eps_1"], s["mean_gamma_at_best_eps"]
        text = f"- {mode}: mean γ over removal rates {_cell(at_one, '.3f')} at ε=1"
        if show_best_gamma and at_best != at_one:
            text += f", {_cell(at_best, '.3f')} at each rate's best ε"
        lines.append(text)
    return "\n".join(lines)


# Line style per mode and color per removal rate, as in the gallery's Figure-1 example
# (examples/plot_figure1_yeast.py): the paper's SSSE solid, the package default dashed.
RATE_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]


def _mode_style(mode):
    return "-" if mode.startswith("SSSE") else "--"


def _short_mode(mode):
    return "SSSE paper (empirical Fisher)" if mode.startswith("SSSE") else "default (Newton)"


def plot_figure1(study, path):
    """Write the two panels of the paper's Figure 1 (γ and distance against ε) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    eps = np.asarray(study["eps"])
    positive = eps > 0
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.0), layout="constrained")
    rates = list(next(iter(study["curves"].values())))
    colors = dict(zip(rates, RATE_COLORS * (1 + len(rates) // len(RATE_COLORS))))
    for mode, by_rate in study["curves"].items():
        for rate, c in by_rate.items():
            style = dict(color=colors[rate], linestyle=_mode_style(mode), marker=".", ms=3)
            gamma = np.array([np.nan if g is None else g for g in c["gamma"]], dtype=float)
            left.plot(eps[positive], gamma[positive], **style)
            right.plot(eps[positive], np.asarray(c["distance"])[positive], **style)
    reference = dict(color="grey", linewidth=1.0, linestyle=":")
    left.axhline(0.5, **reference)
    right.axhline(1.0, **reference)
    left.set(
        xscale="log",
        xlabel=r"step scale $\varepsilon$",
        ylabel=r"similarity ratio $\gamma_S$ (higher is better)",
        title=r"(a) similarity ratio $\gamma_S$ on the erased samples",
    )
    right.set(
        xscale="log",
        yscale="log",
        xlabel=r"step scale $\varepsilon$",
        ylabel=r"$\|\hat\theta_\varepsilon - \theta_{-S}\| \,/\, \|\theta^* - \theta_{-S}\|$"
        " (lower is better)",
        title=r"(b) distance to the refit $\theta_{-S}$",
    )
    handles = [
        Line2D([], [], color=colors[rate], marker=".", label=f"{float(rate):.0%} removed")
        for rate in rates
    ]
    handles += [
        Line2D([], [], color="black", linestyle=_mode_style(mode), label=_short_mode(mode))
        for mode in study["curves"]
    ]
    handles += [
        Line2D([], [], **reference, label=r"$\gamma_S = 0.5$: half-way between original and refit"),
        Line2D([], [], **reference, label="distance 1: nothing erased (the original)"),
    ]
    # One legend under both panels: readable at page width, covering no curve.
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=9, frameon=False)
    fig.suptitle(
        f"Figure 1 of the SSSE paper on {study.get('data', 'the data')}: labels "
        f"{study['labels']}, C={study['C']:g}, means over labels"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _json_safe(value):
    """``value`` with every NaN or infinity replaced by None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def run_demo(
    *,
    data=None,
    C=1.0,
    output="ssse_output",
    rates=DEFAULT_RATES,
    progress=None,
    label=None,
    fraction=0.2,
    random_state=0,
    max_frequency=0.2,
    out=print,
):
    """The main job: the single-request table, then the Figure-1 study with JSON and PNG.

    Runs with one BLAS thread: its blocks are about 100 × 100, for which BLAS threads only
    add synchronization (tenfold the CPU time on a busy two-core machine).
    """
    with threadpool_limits(1, user_api="blas"):
        return _run_demo(
            data=data,
            C=C,
            output=output,
            rates=rates,
            progress=progress,
            label=label,
            fraction=fraction,
            random_state=random_state,
            max_frequency=max_frequency,
            out=out,
        )


def _run_demo(
    *, data, C, output, rates, progress, label, fraction, random_state, max_frequency, out
):
    if data is None:
        X, Y = load_yeast(return_X_y=True)
    else:
        X, Y = load_mulan(data, return_X_y=True)
    if not np.any(np.asarray(Y).mean(axis=0) <= max_frequency):
        raise ValueError(
            f"No label has frequency <= {max_frequency}; pass a larger --max-frequency."
        )
    start = time.perf_counter()
    single = run_erasure_demo(
        data=data, C=C, label=label, fraction=fraction, random_state=random_state, out=out
    )
    out("")
    out(
        f"Figure 1 protocol (paper section 3): labels with frequency <= {max_frequency:.0%}, "
        f"removal rates "
        f"{', '.join(f'{r:.0%}' for r in rates)}, {len(DEFAULT_EPS_GRID)} values of ε."
    )
    study = figure1_study(
        X,
        Y,
        C=C,
        rates=rates,
        max_frequency=max_frequency,
        random_state=random_state,
        progress=progress,
    )
    out(format_figure1_table(study))
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    study["single_request"] = single
    study["data"] = "bundled yeast (train)" if data is None else str(data)
    study["total_seconds"] = time.perf_counter() - start
    json_path = output / "figure1.json"
    json_path.write_text(json.dumps(_json_safe(study), indent=1, allow_nan=False))
    out(f"\nWrote {json_path}")
    try:
        out(f"Wrote {plot_figure1(study, output / 'figure1.png')}")
    except ImportError:
        out("matplotlib is not installed (pip install 'sklearn-ssse[plot]'): no PNG written.")
    out(f"Total time {study['total_seconds']:.1f} s.")
    return study
