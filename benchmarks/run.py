"""sklearn_ssse performance benchmarks: one command, JSON plus a markdown table.

    python benchmarks/run.py                 # full run (about 15 min on 2 cores)
    python benchmarks/run.py --labels 8      # CelebA-scale with 8 of the 40 labels
    python benchmarks/run.py --quick         # small sizes, < 1 min (used by the smoke test)

Writes ``<out>/results.json``, ``<out>/results.md`` and ``<out>/scaling.png`` (default
``benchmarks/results``). Every ratio is measured side by side in the same run (and, for the
scenarios run in a child process, in the same process) so that the machine's load, which
varies, cancels as far as possible. Never run from the unit tests except ``--quick``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
SCHEMA_VERSION = 1


# ============================================================================ utilities
def _timed(function, repeat=1):
    """(best, median, result) wall-clock seconds over ``repeat`` calls."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return float(np.min(times)), float(np.median(times)), result


def _peak_rss_bytes():
    """Peak resident set size of this process, by the OS's accounting.

    ``VmHWM`` of ``/proc/self/status`` (Linux): the high-water mark of this process's own
    address space. ``ru_maxrss`` is not used: Linux carries it across ``execve``, so a
    child started by ``subprocess`` would report its parent's peak."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _current_rss_bytes():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _forget_seconds(model, X, Y, requests):
    """Wall-clock seconds of ``model.forget`` for each request, applied in order."""
    times = []
    for S in requests:
        XS, YS = X[S], Y[S]
        start = time.perf_counter()
        model.forget(XS, YS)
        times.append(time.perf_counter() - start)
    return times


def gemm_rate(dtype, size, repeat=3):
    """Measured ``?gemm`` throughput (flop/s) of this machine on (size × size) matrices."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((size, size)).astype(dtype)
    B = rng.standard_normal((size, size)).astype(dtype)
    A @ B  # warm up the threads
    best, _, _ = _timed(lambda: A @ B, repeat)
    return 2.0 * size**3 / best


def read_rate(nbytes, repeat=5):
    """Measured bandwidth (bytes/s) of one pass of ``?gemv`` over a large matrix."""
    d = 4096
    rows = max(int(nbytes // (8 * d)), 1)
    A = np.random.default_rng(0).standard_normal((rows, d))
    v = np.ones(d)
    A @ v
    best, _, _ = _timed(lambda: A @ v, repeat)
    return A.nbytes / best


def read_blocks_time(engine, repeat=5):
    """Time to read every stored curvature factor once (one ``?gemv`` per block): the
    memory-bandwidth bound of a solve."""
    arrays = [blk.factor if blk.factor is not None else blk.eigvecs for blk in engine.blocks_]
    vectors = [np.ones(a.shape[1], dtype=a.dtype) for a in arrays]

    def run():
        for a, v in zip(arrays, vectors):
            a @ v

    run()
    best, _, _ = _timed(run, repeat)
    return best, int(sum(a.nbytes for a in arrays))


def narrow_product_time(engine, columns, repeat=3):
    """Best time of BLAS alone for a request's products with every stored block and a
    ``d × columns`` matrix, one multi-threaded product per block or one block per core on
    single-threaded BLAS (as ``forget`` runs them): ``?gemm`` with a full ``d × d`` matrix
    (the product the roofline counts, ``2·d²·columns`` flops) and ``?trmm`` with the
    stored triangular factor (the one ``forget`` makes, half the flops). The floor that the
    package's 100-sample request can reach on this BLAS, whatever its own overhead."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from sklearn_ssse.curvature._triangular import triangular_multiply

    blocks = engine.blocks_
    arrays = [blk.factor for blk in blocks]
    R = np.ones((columns, arrays[0].shape[0]), dtype=arrays[0].dtype)
    F = np.asfortranarray(R.T)

    def gemm(A):
        return R @ A

    def trmm(blk):
        return triangular_multiply(blk.factor, blk.lower, F.copy(order="F"), transpose=True)

    cores = os.cpu_count() or 1
    out = {}
    for label, product, items in (("", gemm, arrays), ("trmm_", trmm, blocks)):

        def sequential(product=product, items=items):
            for item in items:
                product(item)

        def threaded(product=product, items=items):
            with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(cores) as pool:
                list(pool.map(product, items))

        for name, run in (("sequential_s", sequential), ("threaded_s", threaded)):
            run()
            out[label + name], _, _ = _timed(run, repeat)
        out[label + "best_s"] = min(out[label + "sequential_s"], out[label + "threaded_s"])
    return out


def machine_info():
    info = {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as handle:
            info["mem_total_gb"] = round(int(handle.readline().split()[1]) / 1024**2, 1)
    except OSError:
        pass
    import scipy
    import sklearn

    info["numpy"], info["scipy"], info["sklearn"] = (
        np.__version__,
        scipy.__version__,
        sklearn.__version__,
    )
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = (
            f"{blas.get('name')} {blas.get('version')} "
            f"({blas.get('openblas configuration', '')})".strip()
        )
    except Exception:
        info["blas"] = "unknown"
    try:
        from threadpoolctl import threadpool_info

        info["blas_threads"] = [
            p.get("num_threads") for p in threadpool_info() if p.get("user_api") == "blas"
        ]
    except ImportError:
        pass
    return info


def _scenario(args, in_process=False):
    """Run a child scenario in a fresh process (full runs: its own peak-memory accounting)
    or, with ``--quick``, in this process (no interpreter start-up; the memory figures of a
    quick run are then this process's and mean nothing)."""
    if in_process:
        result = _dispatch_child([str(a) for a in args])
        return json.loads(json.dumps(result, default=float))
    return _child(args)


def _dispatch_child(child_args):
    kind, *rest = child_args
    if kind == "celeba":
        n, p, L, C, quick, nc = rest
        return child_celeba(int(n), int(p), int(L), float(C), quick == "1", nc == "1")
    directory, n, mode = rest
    return child_stream(directory, int(n), mode)


def _child(args, timeout=3600):
    """Run ``run.py --child ...`` in a fresh process; returns its JSON (last stdout line)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", *map(str, args)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ============================================================================ synthetic data
def celeba_like(n, p, n_labels, seed=0):
    """Synthetic stand-in for CelebA VGG features: Gaussian features, 40 labels from random
    logistic models with frequencies spread from 2% to 50% (there is no CelebA here)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    W = rng.standard_normal((p, n_labels)) * (2.0 / np.sqrt(p))
    Z = X @ W
    frequencies = np.linspace(0.02, 0.5, n_labels)
    offsets = -np.array([np.quantile(Z[:, j], 1 - f) for j, f in enumerate(frequencies)])
    Z += offsets + rng.logistic(size=Z.shape)
    return X, (Z > 0).astype(np.int64)


# ============================================================================ scenarios
def bench_gemm(quick):
    size = 512 if quick else 4096
    return {
        "size": size,
        "dgemm_flops": gemm_rate(np.float64, size),
        "sgemm_flops": gemm_rate(np.float32, size),
        "read_bytes_per_s": read_rate(2**26 if quick else 2**30),
    }


def bench_block_build(d, n, dtype):
    """One curvature block: ?syrk Gram, ?potrf, ?potri, each against ?gemm (same process)."""
    from scipy import linalg

    from sklearn_ssse.curvature import weighted_gram

    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, d - 1))
    w = rng.random(n)
    rate = gemm_rate(dtype, min(d, 4096))
    t_gram, _, G = _timed(lambda: weighted_gram(X, w, fit_intercept=True, dtype=dtype), 2)
    G.flat[:: d + 1] += 1.0
    A = np.asfortranarray(G)
    potrf, potri = linalg.get_lapack_funcs(("potrf", "potri"), (A,))
    t_potrf, _, (chol, _) = _timed(lambda: potrf(A.copy(order="F"), lower=False, clean=False), 2)
    t_potri, _, _ = _timed(lambda: potri(chol.copy(order="F"), lower=False), 2)
    # The machine is shared: take the better of GEMM just before and just after.
    rate = max(rate, gemm_rate(dtype, min(d, 4096)))
    flops = {"syrk": n * d * (d + 1.0), "potrf": d**3 / 3.0, "potri": 2.0 * d**3 / 3.0}
    times = {"syrk": t_gram, "potrf": t_potrf, "potri": t_potri}
    return {
        "dtype": np.dtype(dtype).name,
        "n": n,
        "d": d,
        "gemm_flops": rate,
        "seconds": times,
        "fraction_of_gemm": {k: flops[k] / times[k] / rate for k in flops},
        "total_fraction_of_gemm": sum(flops.values()) / sum(times.values()) / rate,
    }


def bench_sherman_morrison(d, n):
    """The paper's rank-1 recurrence (Eq. 3, one sample at a time) against the package's
    build (Gram + Cholesky), and the package's own Woodbury-chunked recurrence."""
    from sklearn_ssse.curvature import BlockFisherInverse

    rng = np.random.default_rng(2)
    U = rng.standard_normal((n, d)) / np.sqrt(d)
    penalty = np.full(d, 1.0)
    t_pkg, _, pkg = _timed(lambda: BlockFisherInverse().fit([U], penalty=penalty), 3)
    t_chunk, _, chunked = _timed(
        lambda: BlockFisherInverse(method="sherman-morrison", chunk_size=256).fit(
            [U], penalty=penalty
        )
    )
    t_rank1, _, rank1 = _timed(
        lambda: BlockFisherInverse(method="sherman-morrison", chunk_size=1).fit(
            [U], penalty=penalty
        )
    )
    ref = pkg.blocks_[0].inverse
    scale = np.abs(ref).max()
    return {
        "n": n,
        "d": d,
        "package_build_s": t_pkg,
        "rank1_recurrence_s": t_rank1,
        "chunked_recurrence_s": t_chunk,
        "ratio_rank1_over_package": t_rank1 / t_pkg,
        "ratio_rank1_over_chunked": t_rank1 / t_chunk,
        "max_rel_diff_rank1": float(np.abs(rank1.blocks_[0].inverse - ref).max() / scale),
        "max_rel_diff_chunked": float(np.abs(chunked.blocks_[0].inverse - ref).max() / scale),
    }


def _build_timer(cls):
    """Wrap ``cls._build_curvature`` to record its wall-clock time (no extra work)."""
    record = []
    original = cls._build_curvature

    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        result = original(self, *args, **kwargs)
        record.append(time.perf_counter() - start)
        return result

    cls._build_curvature = timed
    return record, original


def _install_float32_curvature(model, X, Y):
    """Build the model's curvature in float32 at its fitted parameters through the engine
    (the same Grams and factorization as ``fit`` with ``curvature_dtype="float32"``, without
    the estimator's conditioning check) and reset its sample count and fingerprints.

    Returns the build's wall-clock seconds and each block's 1-norm condition number."""
    from sklearn_ssse import _bounds
    from sklearn_ssse._fingerprint import row_fingerprints
    from sklearn_ssse._loss import curvature_factors
    from sklearn_ssse.curvature import BlockFisherInverse, weighted_gram

    Yenc = model._encode_fit_targets(Y)
    theta = model._get_theta()
    penalty = model._penalty_vector().astype(np.float32)
    norms = []

    def grams(factors):
        for c in range(factors.shape[1]):
            G = weighted_gram(
                X, factors[:, c] ** 2, fit_intercept=model.fit_intercept, dtype=np.float32
            )
            G.flat[:: G.shape[0] + 1] += penalty
            norms.append(float(np.abs(G).sum(axis=0).max()))
            yield G

    start = time.perf_counter()
    factors = curvature_factors(model._loss, model._raw(X, theta), Yenc, model.curvature)
    engine = BlockFisherInverse(dtype="float32").fit_gram(grams(factors), n_samples=X.shape[0])
    seconds = time.perf_counter() - start
    conditions = [
        norm * blk.base_norm  # ‖M‖₁·‖M⁻¹‖₁
        for norm, blk in zip(norms, engine.blocks_)
    ]
    model.curvature_dtype = "float32"
    model.curvature_, model._theta_at_fit = engine, theta
    model.n_samples_ = X.shape[0]
    # A new fit's erasure state (fingerprints, log, settings) and the residual, Gram and
    # radius of the bounds measured at these parameters, as ``fit`` leaves them: the float64
    # requests before changed them, and the step corrects for the residual.
    model._reset_erasure_state(row_fingerprints(X, Yenc), model._count_labels(Yenc))
    _bounds.fit_state_from_data(model, X, Yenc)
    return seconds, conditions


def _sklearn_refit(X, Y, C, tol, solver="lbfgs", labels=None):
    from sklearn.linear_model import LogisticRegression

    labels = range(Y.shape[1]) if labels is None else labels
    total = 0.0
    for j in labels:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            LogisticRegression(C=C, tol=tol, solver=solver, max_iter=1000).fit(X, Y[:, j])
        total += time.perf_counter() - start
    return total


def _requests(n, rng):
    """Disjoint removal requests: three of 1 sample, two of 100 (in that order)."""
    order = rng.permutation(n)
    singles = [order[i : i + 1] for i in range(3)]
    hundreds = [np.sort(order[3 + 100 * i : 103 + 100 * i]) for i in range(2)]
    return singles, hundreds


def _batched_steps(model, requests, X, Y):
    """Unit steps of many single requests in one multi-right-hand-side product per block
    (leave-S-out curvature, damping 0), equal to ``forget_step`` of each request.

    A request's gradient ``g_i·x̃_i`` is a multiple of its curvature factor ``a_i·x̃_i``, so
    one product ``B⁻¹[a_1 x̃_1, …, a_r x̃_r]`` per block serves both (as in ``forget``)."""
    from sklearn_ssse._loss import curvature_factors
    from sklearn_ssse.curvature._pending import _transpose_dot
    from sklearn_ssse.curvature._triangular import triangular_multiply

    engine = model.curvature_
    theta, theta_fit = model._get_theta(), model._theta_at_fit
    Xt = np.hstack([X[requests], np.ones((len(requests), 1))])
    Yr = Y[requests]
    G = model._loss.gradient(Xt @ theta.T, Yr)  # (r, L)
    A = curvature_factors(model._loss, Xt @ theta_fit.T, Yr, model.curvature)
    m_new = engine.n_samples_ - 1
    steps = np.empty((len(requests),) + theta.shape)
    for b, blk in enumerate(engine.blocks_):
        W = (Xt * A[:, b : b + 1]).T  # (d, r)
        # A factor can underflow to 0 (p(1−p) of a confident prediction): such requests'
        # gradients join the product as columns of their own.
        own = np.flatnonzero(A[:, b] == 0)
        R_own = (Xt[own] * G[own, b : b + 1]).T
        cols = np.asfortranarray(np.hstack([W, R_own]), dtype=blk.dtype)
        # one pass: Tᵀ·cols, the frame of the pending term (M₀⁻¹ = T·Tᵀ)
        solved = triangular_multiply(blk.factor, blk.lower, cols, transpose=True)
        solved = solved.astype(np.float64)
        solved_rhs = solved[:, : len(requests)] * np.divide(
            G[:, b], A[:, b], out=np.zeros(len(requests)), where=A[:, b] != 0
        )  # B⁻¹(g_j x̃_j)
        solved_rhs[:, own] = solved[:, len(requests) :]
        solved = solved[:, : len(requests)]
        frames = np.empty((blk.size, len(requests)))
        for j in range(len(requests)):
            _, _, Z, cap, L = engine._block_pieces(
                blk, m_new, extra=(W[:, [j]], np.array([-1.0]), solved[:, [j]])
            )
            y = solved_rhs[:, [j]]
            frames[:, j] = engine._woodbury_apply(y, L, Z, cap, _transpose_dot(L, y))[:, 0]
        steps[:, b] = blk.half_product(frames, transpose=False).T  # back: one more pass
    return steps


def child_celeba(n, p, n_labels, C, quick, newton_cholesky):
    """CelebA-scale scenario in its own process (for the peak-memory accounting)."""
    import sklearn_ssse
    from sklearn_ssse import UnlearnableLogisticRegression

    out = {"n": n, "p": p, "d": p + 1, "n_labels": n_labels, "C": C}
    baseline = _peak_rss_bytes()
    out["baseline_rss_bytes"] = baseline
    X, Y = celeba_like(n, p, n_labels)
    out["label_frequencies"] = [float(f) for f in Y.mean(axis=0)]
    d = p + 1
    rate64 = gemm_rate(np.float64, min(d, 4096))
    record, original = _build_timer(sklearn_ssse._base.UnlearnableLinearMixin)
    try:
        model = UnlearnableLogisticRegression(C=C)
        t_fit, _, _ = _timed(lambda: model.fit(X, Y))
        peak = _peak_rss_bytes()
        t_build = record[-1]
        # The machine is shared: the better of GEMM just before and just after the fit.
        rate64 = max(rate64, gemm_rate(np.float64, min(d, 4096)))
        flops = n_labels * (n * d * (d + 1.0) + d**3)
        stored = model.curvature_.nbytes
        out["float64"] = {
            "fit_s": t_fit,
            "build_s": t_build,
            "solver_s": t_fit - t_build,
            "gemm_flops": rate64,
            "build_flops": flops / t_build,
            "build_over_gemm": flops / t_build / rate64,
            "peak_rss_bytes": peak,
            "data_bytes": X.nbytes + Y.nbytes,
            "curvature_bytes": stored,
            "peak_over_data_plus_curvature": peak / (X.nbytes + Y.nbytes + stored),
            "peak_minus_baseline_over_data_plus_curvature": (peak - baseline)
            / (X.nbytes + Y.nbytes + stored),
        }
        theta0 = (model.coef_.copy(), model.intercept_.copy())
        rng = np.random.default_rng(5)
        singles, hundreds = _requests(n, rng)
        reference_steps = {
            "1": model.forget_step(X[singles[0]], Y[singles[0]]),
            "100": model.forget_step(X[hundreds[0]], Y[hundreds[0]]),
        }
        t_read, read_bytes = read_blocks_time(model.curvature_)
        forget1 = _forget_seconds(model, X, Y, singles)
        forget100 = _forget_seconds(model, X, Y, hundreds)
        t_read_after, _ = read_blocks_time(model.curvature_)
        out["float64"].update(
            {
                "read_s": min(t_read, t_read_after),
                "read_bytes": read_bytes,
                "forget1_s": float(np.median(forget1)),
                "forget100_s": float(np.median(forget100)),
                "pending_rank_after": int(max(model.curvature_.pending_rank_)),
            }
        )
        out["float64"]["forget1_over_read"] = out["float64"]["forget1_s"] / out["float64"]["read_s"]
        # k = 100 is compute bound: 2·d²·(k+1) flops per block; compare with the roofline.
        roof100 = max(out["float64"]["read_s"], n_labels * 2.0 * d * d * 101 / rate64)
        out["float64"]["forget100_roofline_s"] = roof100
        out["float64"]["forget100_over_read"] = (
            out["float64"]["forget100_s"] / out["float64"]["read_s"]
        )
        out["float64"]["forget100_over_roofline"] = out["float64"]["forget100_s"] / roof100
        # What BLAS itself reaches for these products (101 columns), and the package's time
        # over it: the part of the gap to the roofline that is not the package's.
        narrow = narrow_product_time(model.curvature_, 101, repeat=1 if quick else 3)
        out["float64"]["narrow_product"] = narrow
        out["float64"]["narrow_product_over_roofline"] = narrow["best_s"] / roof100
        out["float64"]["trmm_product_over_roofline"] = narrow["trmm_best_s"] / roof100
        out["float64"]["forget100_over_narrow_product"] = (
            out["float64"]["forget100_s"] / narrow["best_s"]
        )

        # A batch of many single-sample requests: one multi-RHS product per block.
        r = 5 if quick else 20
        removed = np.concatenate(singles + hundreds)
        batch = [int(i) for i in rng.choice(np.setdiff1d(np.arange(n), removed), r, replace=False)]
        t_seq, _, seq_steps = _timed(lambda: [model.forget_step(X[[i]], Y[[i]]) for i in batch])
        t_batch, _, steps = _timed(lambda: _batched_steps(model, batch, X, Y))
        expected = np.stack(
            [
                np.hstack([np.atleast_2d(s.coef), np.reshape(s.intercept, (-1, 1))])
                for s in seq_steps
            ]
        )
        out["batch"] = {
            "requests": r,
            "sequential_forget_step_s": t_seq,
            "batched_s": t_batch,
            "speedup": t_seq / t_batch,
            "max_rel_diff": float(np.abs(steps - expected).max() / np.abs(expected).max()),
        }

        # Refitting, side by side.
        keep = np.setdiff1d(np.arange(n), hundreds[0])
        t_sk = _sklearn_refit(X[keep], Y[keep], C, 1e-6)
        out["refit"] = {
            "sklearn_lbfgs_s": t_sk,
            "package_fit_s": t_fit,
            "sklearn_over_forget1": t_sk / out["float64"]["forget1_s"],
            "sklearn_over_forget100": t_sk / out["float64"]["forget100_s"],
            "package_over_forget1": t_fit / out["float64"]["forget1_s"],
            "package_over_forget100": t_fit / out["float64"]["forget100_s"],
        }
        if newton_cholesky:
            t_nc = _sklearn_refit(X[keep], Y[keep], C, 1e-6, solver="newton-cholesky", labels=[0])
            out["refit"]["sklearn_newton_cholesky_one_label_s"] = t_nc

        # float32: same parameters, curvature stored in single precision.
        f64_steps = {
            k: np.hstack([np.atleast_2d(s.coef), np.reshape(s.intercept, (-1, 1))])
            for k, s in reference_steps.items()
        }
        del model.curvature_
        model.coef_, model.intercept_ = theta0
        rate32 = gemm_rate(np.float32, min(d, 4096))
        t_build32, conditions = _install_float32_curvature(model, X, Y)
        rate32 = max(rate32, gemm_rate(np.float32, min(d, 4096)))
        t_read32, read_bytes32 = read_blocks_time(model.curvature_)
        s1 = model.forget_step(X[singles[0]], Y[singles[0]])
        s100 = model.forget_step(X[hundreds[0]], Y[hundreds[0]])
        f32_steps = {
            k: np.hstack([np.atleast_2d(s.coef), np.reshape(s.intercept, (-1, 1))])
            for k, s in (("1", s1), ("100", s100))
        }
        forget1_32 = _forget_seconds(model, X, Y, singles)
        forget100_32 = _forget_seconds(model, X, Y, hundreds)
        out["float32"] = {
            "build_s": t_build32,
            "gemm_flops": rate32,
            "build_flops": flops / t_build32,
            "build_over_gemm": flops / t_build32 / rate32,
            "curvature_bytes": model.curvature_.nbytes,
            "read_s": t_read32,
            "read_bytes": read_bytes32,
            "forget1_s": float(np.median(forget1_32)),
            "forget100_s": float(np.median(forget100_32)),
            "step_rel_error_vs_float64": {
                k: float(np.linalg.norm(f32_steps[k] - f64_steps[k]) / np.linalg.norm(f64_steps[k]))
                for k in f64_steps
            },
        }
        out["float32"]["forget1_over_read"] = out["float32"]["forget1_s"] / t_read32
        # The estimators refuse undamped blocks whose 1-norm condition number reaches
        # 1/(d·eps) of the storage precision (_base._check_conditioning); report whether
        # curvature_dtype="float32" would have been accepted here.
        limit32 = 1.0 / (d * np.finfo(np.float32).eps)
        out["float32"]["max_condition_number"] = float(max(conditions))
        out["float32"]["estimator_condition_limit"] = float(limit32)
        out["float32"]["estimator_accepts"] = bool(max(conditions) < limit32)
        out["float32_vs_float64"] = {
            "build_speedup": t_build / t_build32,
            "forget1_speedup": out["float64"]["forget1_s"] / out["float32"]["forget1_s"],
            "forget100_speedup": out["float64"]["forget100_s"] / out["float32"]["forget100_s"],
        }
    finally:
        sklearn_ssse._base.UnlearnableLinearMixin._build_curvature = original
    return out


def bench_mulan(quick):
    from sklearn.preprocessing import StandardScaler

    from sklearn_ssse import UnlearnableLogisticRegression
    from sklearn_ssse.datasets import load_mulan

    results = {}
    for name in ("yeast", "scene", "enron"):
        path = DATA / f"mulan_{name}" / f"{name}-train.arff"
        if quick and name != "yeast":
            results[name] = {"skipped": "not run with --quick"}
            continue
        if not path.exists():
            results[name] = {"skipped": f"{path} not found"}
            continue
        X, Y = load_mulan(path, return_X_y=True)
        if quick:
            X, Y = X[:300], Y[:300]
        Y = Y[:, Y.min(axis=0) != Y.max(axis=0)]  # a logistic model needs both classes
        if quick:
            Y = Y[:, :4]
        if not hasattr(X, "toarray"):
            X = StandardScaler().fit_transform(X)
        n, p = X.shape
        rng = np.random.default_rng(0)
        model = UnlearnableLogisticRegression(C=1.0)
        t_fit, _, _ = _timed(partial(model.fit, X, Y))
        singles, hundreds = _requests(n, rng)
        t_read, _ = read_blocks_time(model.curvature_)
        forget1 = float(np.median(_forget_seconds(model, X, Y, singles)))
        forget100 = float(np.median(_forget_seconds(model, X, Y, hundreds)))
        keep = np.setdiff1d(np.arange(n), hundreds[0])
        t_sk = _sklearn_refit(X[keep], Y[keep], 1.0, 1e-6)
        results[name] = {
            "n": n,
            "p": p,
            "n_labels": Y.shape[1],
            "sparse": hasattr(X, "toarray"),
            "fit_s": t_fit,
            "sklearn_lbfgs_s": t_sk,
            "forget1_s": forget1,
            "forget100_s": forget100,
            "read_s": t_read,
            "sklearn_over_forget1": t_sk / forget1,
            "sklearn_over_forget100": t_sk / forget100,
            "package_over_forget1": t_fit / forget1,
            "forget1_over_read": forget1 / t_read,
        }
        results[name]["eps_path"] = bench_eps_path(X, Y, quick)
    return results


def bench_eps_path(X, Y, quick):
    """``similarity_ratio_path`` against ``GridSearchCV(SampleEraser)`` on the same grid."""
    try:
        from sklearn.model_selection import GridSearchCV

        from sklearn_ssse import SampleEraser, UnlearnableLogisticRegression, similarity_ratio_path
        from sklearn_ssse.metrics import make_similarity_scorer
    except ImportError as error:
        return {"skipped": f"not landed: {error}"}
    if hasattr(X, "toarray"):
        return {"skipped": "dense data sets only"}
    label = int(np.argmin(np.abs(Y.mean(axis=0) - 0.1)))
    rng = np.random.default_rng(0)
    removed = np.sort(rng.choice(np.flatnonzero(Y[:, label]), 32, replace=False))
    keep = np.setdiff1d(np.arange(len(X)), removed)
    params = dict(C=1.0, curvature="empirical_fisher", leave_out=False, damping=1e-4, tol=1e-8)
    fitted = UnlearnableLogisticRegression(**params).fit(X, Y)
    retrained = UnlearnableLogisticRegression(**params).fit(X[keep], Y[keep])
    grid = np.linspace(0.0, 16.0, 5 if quick else 33)
    idx = np.arange(len(removed))
    XS, YS = X[removed], Y[removed]

    def search():
        return GridSearchCV(
            SampleEraser(fitted),
            {"eps": list(grid)},
            scoring=make_similarity_scorer(fitted, retrained),
            cv=[(idx, idx)],
        ).fit(XS, YS)

    t_grid, _, result = _timed(search)
    t_path, _, (gammas, best) = _timed(
        lambda: similarity_ratio_path(fitted, XS, YS, retrained, grid), 3
    )
    return {
        "grid_size": len(grid),
        "gridsearchcv_s": t_grid,
        "path_s": t_path,
        "speedup": t_grid / t_path,
        "same_best_eps": bool(best == result.best_params_["eps"]),
        "max_abs_gamma_diff": float(np.abs(gammas - result.cv_results_["mean_test_score"]).max()),
    }


# ---------------------------------------------------------------------------- streaming
def _write_stream_files(directory, n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = np.lib.format.open_memmap(
        directory / f"X_{n}.npy", mode="w+", dtype=np.float64, shape=(n, p)
    )
    y_reg = np.lib.format.open_memmap(
        directory / f"yreg_{n}.npy", mode="w+", dtype=np.float64, shape=(n,)
    )
    y_bin = np.lib.format.open_memmap(
        directory / f"ybin_{n}.npy", mode="w+", dtype=np.float64, shape=(n,)
    )
    w = rng.standard_normal(p) / np.sqrt(p) * 2
    for start in range(0, n, 100_000):
        stop = min(start + 100_000, n)
        block = rng.standard_normal((stop - start, p))
        X[start:stop] = block
        z = block @ w
        y_reg[start:stop] = z + rng.standard_normal(stop - start)
        y_bin[start:stop] = (z + rng.logistic(size=stop - start) > 0).astype(np.float64)
    for a in (X, y_reg, y_bin):
        a.flush()
    del X, y_reg, y_bin


def child_stream(directory, n, mode):
    """Fit from the .npy files: ``stream-ridge``/``stream-logistic`` with fit_streaming over
    a read-only memmap; ``memory-ridge``/``memory-logistic`` load everything and call fit;
    ``dask-ridge`` on a loopback dask.distributed cluster reading row blocks from the file."""
    from sklearn_ssse import UnlearnableLogisticRegression, UnlearnableRidge
    from sklearn_ssse.curvature import iter_chunks

    directory = Path(directory)
    baseline = _peak_rss_bytes()
    kind, loss = mode.split("-")
    y_name = "yreg" if loss == "ridge" else "ybin"
    make = (
        (lambda: UnlearnableRidge(alpha=1.0))
        if loss == "ridge"
        else (lambda: UnlearnableLogisticRegression(C=1.0, tol=1e-8))
    )
    X = np.load(directory / f"X_{n}.npy", mmap_mode="r")
    y = np.load(directory / f"{y_name}_{n}.npy", mmap_mode="r")
    out = {"mode": mode, "n": n, "p": X.shape[1], "data_bytes": X.nbytes + y.nbytes}
    if kind == "stream":
        t, _, model = _timed(lambda: make().fit_streaming(iter_chunks(X, y, chunk_rows=65536)))
        if loss == "logistic":
            out["newton_passes"] = int(model.n_iter_.max())
    elif kind == "memory":
        Xm, ym = np.array(X), np.array(y)
        t, _, model = _timed(lambda: make().fit(Xm, ym))
    else:  # dask
        import dask
        import dask.array as da
        from dask.distributed import Client, LocalCluster

        rows = 125_000
        path = str(directory / f"X_{n}.npy")
        load = dask.delayed(lambda a, b: np.array(np.load(path, mmap_mode="r")[a:b]), pure=True)
        blocks = [
            da.from_delayed(
                load(a, min(a + rows, n)),
                shape=(min(a + rows, n) - a, X.shape[1]),
                dtype=np.float64,
            )
            for a in range(0, n, rows)
        ]
        Xd = da.concatenate(blocks)
        with (
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            Client(cluster),
        ):
            t, _, model = _timed(lambda: make().fit_dask(Xd, np.array(y)))
    out["fit_s"] = t
    out["peak_rss_bytes"] = _peak_rss_bytes()
    out["baseline_rss_bytes"] = baseline
    out["curvature_bytes"] = model.curvature_.nbytes
    out["fingerprint_bytes"] = model.fingerprints_.nbytes
    i = np.array([3])
    out["forget1_s"] = _timed(lambda: model.forget(np.array(X[i]), np.array(y[i])))[0]
    np.save(directory / f"coef_{mode}_{n}.npy", np.atleast_2d(model._get_theta()))
    return out


def bench_streaming(quick, use_dask):
    p = 64
    sizes = (5_000, 20_000) if quick else (100_000, 1_000_000)
    with tempfile.TemporaryDirectory(prefix="ssse_stream_") as tmp:
        directory = Path(tmp)
        for n in sizes:
            _write_stream_files(directory, n, p)
        big = sizes[-1]
        runs = {}
        for n, mode in [(n, "stream-ridge") for n in sizes] + [
            (big, "memory-ridge"),
            (big, "stream-logistic"),
            (big, "memory-logistic"),
        ]:
            runs[f"{mode}-{n}"] = _scenario(["stream", tmp, n, mode], in_process=quick)
        if use_dask:
            try:
                runs[f"dask-ridge-{big}"] = _child(["stream", tmp, big, "dask-ridge"])
            except RuntimeError as error:
                runs[f"dask-ridge-{big}"] = {"skipped": str(error)[-300:]}
        coef = {
            key: np.load(directory / f"coef_{key.rsplit('-', 1)[0]}_{key.rsplit('-', 1)[1]}.npy")
            for key in runs
            if "skipped" not in runs[key]
        }

    def diff(a, b):
        return float(np.abs(coef[a] - coef[b]).max() / np.abs(coef[b]).max())

    out = {"p": p, "sizes": list(sizes), "runs": runs}
    out["ridge_stream_vs_memory_rel_diff"] = diff(f"stream-ridge-{big}", f"memory-ridge-{big}")
    out["logistic_stream_vs_memory_rel_diff"] = diff(
        f"stream-logistic-{big}", f"memory-logistic-{big}"
    )
    if f"dask-ridge-{big}" in coef:
        out["ridge_dask_vs_memory_rel_diff"] = diff(f"dask-ridge-{big}", f"memory-ridge-{big}")
    small, large = runs[f"stream-ridge-{sizes[0]}"], runs[f"stream-ridge-{big}"]
    out["stream_peak_growth_bytes"] = large["peak_rss_bytes"] - small["peak_rss_bytes"]
    out["stream_peak_growth_per_row_bytes"] = out["stream_peak_growth_bytes"] / (big - sizes[0])
    return out


# ---------------------------------------------------------------------------- scaling
def bench_scaling(quick):
    """Forget and refit time against n (d fixed) and d (n fixed), 4 labels."""
    from sklearn_ssse import UnlearnableLogisticRegression

    L = 2 if quick else 4
    if quick:
        ns, d_fixed, ds, n_fixed = [300, 600], 32, [16, 32], 300
    else:
        ns, d_fixed, ds, n_fixed = (
            [2000, 4000, 8000, 16000, 32000],
            1024,
            [128, 256, 512, 1024, 2048],
            16000,
        )
    rows = []
    for axis, configs in (("n", [(n, d_fixed) for n in ns]), ("d", [(n_fixed, d) for d in ds])):
        for n, p in configs:
            X, Y = celeba_like(n, p, L, seed=n + p)
            rng = np.random.default_rng(1)
            model = UnlearnableLogisticRegression(C=1.0)
            t_fit, _, _ = _timed(partial(model.fit, X, Y))
            singles, _ = _requests(n, rng)
            forget1 = float(np.median(_forget_seconds(model, X, Y, singles)))
            keep = np.setdiff1d(np.arange(n), singles[0])
            t_sk = _sklearn_refit(X[keep], Y[keep], 1.0, 1e-6)
            rows.append(
                {
                    "axis": axis,
                    "n": n,
                    "p": p,
                    "labels": L,
                    "fit_s": t_fit,
                    "sklearn_lbfgs_s": t_sk,
                    "forget1_s": forget1,
                }
            )
    return {"labels": L, "d_fixed": d_fixed, "n_fixed": n_fixed, "rows": rows}


def plot_scaling(scaling, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, axis in zip(axes, ("n", "d")):
        rows = [r for r in scaling["rows"] if r["axis"] == axis]
        x = np.array([r["n"] if axis == "n" else r["p"] + 1 for r in rows], dtype=float)
        for key, label, style in (
            ("forget1_s", "forget (1 sample)", "o-"),
            ("fit_s", "refit: package fit (solver + curvature)", "s-"),
            ("sklearn_lbfgs_s", "refit: scikit-learn lbfgs", "^-"),
        ):
            y = np.array([r[key] for r in rows])
            slope = np.polyfit(np.log(x), np.log(y), 1)[0]
            ax.loglog(x, y, style, label=f"{label} (slope {slope:.2f})")
        fixed = f"d = {scaling['d_fixed'] + 1}" if axis == "n" else f"n = {scaling['n_fixed']}"
        ax.set_xticks(x, [f"{int(v):,}" for v in x], minor=False)
        ax.set_xticks([], minor=True)
        ax.set_xlabel("n (samples)" if axis == "n" else "d (features + intercept)")
        ax.set_ylabel("seconds")
        ax.set_title(f"against {axis}, {fixed}, {scaling['labels']} labels")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ============================================================================ reporting
def _fmt(x, digits=3):
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{x:,}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def goals_table(results):
    """Rows (figure, scenario, measured, goal, met)."""
    rows = []
    c = results.get("celeba", {})
    f64, f32 = c.get("float64", {}), c.get("float32", {})
    scen = (
        f"CelebA-scale synthetic n={_fmt(c.get('n'))}, d={_fmt(c.get('d'))}, "
        f"{c.get('n_labels')} labels"
    )

    def add(figure, scenario, value, goal, op):
        if goal is None:  # a figure for context, not a goal
            rows.append((figure, scenario, value, "–", None))
            return
        met = None if value is None else (value >= goal if op == ">=" else value <= goal)
        rows.append((figure, scenario, value, f"{op} {goal}", met))

    if f64:
        add(
            "curvature build flop/s ÷ dgemm flop/s",
            scen + ", float64",
            f64["build_over_gemm"],
            0.6,
            ">=",
        )
        add(
            "curvature build flop/s ÷ sgemm flop/s",
            scen + ", float32",
            f32.get("build_over_gemm"),
            0.6,
            ">=",
        )
    for sm in results.get("sherman_morrison", []):
        add(
            "paper's rank-1 Sherman-Morrison ÷ package build",
            f"n={_fmt(sm['n'])}, d={_fmt(sm['d'])} (max rel diff {sm['max_rel_diff_rank1']:.1e})",
            sm["ratio_rank1_over_package"],
            30,
            ">=",
        )
    r = c.get("refit", {})
    if r:
        add(
            "refit (scikit-learn lbfgs) ÷ forget, 1 sample",
            scen,
            r["sklearn_over_forget1"],
            500,
            ">=",
        )
        add(
            "refit (scikit-learn lbfgs) ÷ forget, 100 samples",
            scen,
            r["sklearn_over_forget100"],
            500,
            ">=",
        )
        add("refit (package fit) ÷ forget, 1 sample", scen, r["package_over_forget1"], 500, ">=")
        add(
            "refit (package fit) ÷ forget, 100 samples",
            scen,
            r["package_over_forget100"],
            500,
            ">=",
        )
    if f64:
        add(
            "forget ÷ read stored curvature once, 1 sample",
            scen + ", float64",
            f64["forget1_over_read"],
            2,
            "<=",
        )
        add(
            "forget ÷ read stored curvature once, 1 sample",
            scen + ", float32",
            f32.get("forget1_over_read"),
            2,
            "<=",
        )
        add(
            "forget ÷ read once, 100 samples (compute bound)",
            scen + ", float64",
            f64["forget100_over_read"],
            2,
            "<=",
        )
        add(
            "forget ÷ roofline max(read, flops/dgemm), 100 samples",
            scen + ", float64",
            f64["forget100_over_roofline"],
            1.3,
            "<=",
        )
        if "narrow_product" in f64:
            add(
                "BLAS's own 101-column ?gemm products ÷ roofline (not a goal: what the "
                "roofline's product reaches on this BLAS)",
                scen + ", float64",
                f64["narrow_product_over_roofline"],
                None,
                None,
            )
        if "trmm_product_over_roofline" in f64:
            add(
                "BLAS's own 101-column ?trmm products with the stored factors ÷ roofline "
                "(not a goal: the floor of forget's own products)",
                scen + ", float64",
                f64["trmm_product_over_roofline"],
                None,
                None,
            )
        add(
            "peak RSS ÷ (data + curvature)",
            scen + ", float64 fit",
            f64["peak_over_data_plus_curvature"],
            1.3,
            "<=",
        )
        add(
            "(peak RSS − interpreter) ÷ (data + curvature)",
            scen + ", float64 fit",
            f64["peak_minus_baseline_over_data_plus_curvature"],
            1.3,
            "<=",
        )
    for name, m in results.get("mulan", {}).items():
        if "skipped" in m:
            continue
        add(
            "refit (scikit-learn lbfgs) ÷ forget, 1 sample",
            f"Mulan {name} n={m['n']}, p={m['p']}, {m['n_labels']} labels "
            "(goal set for CelebA scale; small d: per-call overhead dominates forget)",
            m["sklearn_over_forget1"],
            500,
            ">=",
        )
        eps = m.get("eps_path", {})
        if "speedup" in eps:
            add(
                "GridSearchCV(SampleEraser) ÷ similarity_ratio_path",
                f"Mulan {name}, {eps['grid_size']} ε values",
                eps["speedup"],
                20,
                ">=",
            )
    return rows


def markdown(results):
    lines = []
    m = results["machine"]
    g = results["gemm"]
    lines += [
        f"Machine: {m.get('cpu_model')} · {m['nproc']} cores · {m.get('mem_total_gb')} GB · "
        f"{m['blas']} · "
        f"numpy {m['numpy']}, scipy {m['scipy']}, scikit-learn {m['sklearn']}.",
        f"Measured in this run: dgemm {g['dgemm_flops'] / 1e9:.1f} GFLOP/s, "
        f"sgemm {g['sgemm_flops'] / 1e9:.1f} "
        f"GFLOP/s ({g['size']}³), memory read (gemv) {g['read_bytes_per_s'] / 1e9:.1f} GB/s. "
        f"Mode: {'quick' if results['quick'] else 'full'}; wall time {results['wall_s']:.0f} s.",
        "",
        "| figure | scenario | measured | goal | met |",
        "|---|---|---|---|---|",
    ]
    for figure, scenario, value, goal, met in goals_table(results):
        lines.append(
            f"| {figure} | {scenario} | {_fmt(value)} | {goal} | "
            f"{'–' if met is None else ('PASS' if met else 'MISS')} |"
        )
    c = results.get("celeba")
    if c:
        f64, f32, r = c["float64"], c["float32"], c["refit"]
        per = c["n_labels"]
        lines += [
            "",
            f"CelebA-scale detail ({per} labels; every time below is for all {per} labels, "
            "so the ratios "
            "are also the per-label ratios):",
            "",
            "| quantity | float64 | float32 |",
            "|---|---|---|",
            f"| package fit (lbfgs + curvature) s | {_fmt(f64['fit_s'])} | – |",
            f"| curvature build s | {_fmt(f64['build_s'])} | {_fmt(f32['build_s'])} |",
            f"| build GFLOP/s (GEMM GFLOP/s) | {f64['build_flops'] / 1e9:.1f} "
            f"({f64['gemm_flops'] / 1e9:.1f}) | "
            f"{f32['build_flops'] / 1e9:.1f} ({f32['gemm_flops'] / 1e9:.1f}) |",
            f"| stored curvature GB | {f64['curvature_bytes'] / 1e9:.2f} | "
            f"{f32['curvature_bytes'] / 1e9:.2f} |",
            f"| read curvature once s | {_fmt(f64['read_s'])} | {_fmt(f32['read_s'])} |",
            f"| forget 1 sample s | {_fmt(f64['forget1_s'])} | {_fmt(f32['forget1_s'])} |",
            f"| forget 100 samples s | {_fmt(f64['forget100_s'])} | {_fmt(f32['forget100_s'])} |",
            "| its products alone on BLAS, ?gemm / ?trmm (best of sequential / threaded) s | "
            f"{_fmt(f64.get('narrow_product', {}).get('best_s'))} / "
            f"{_fmt(f64.get('narrow_product', {}).get('trmm_best_s'))} | – |",
            f"| step error vs float64 (1 / 100 samples) | – | "
            f"{f32['step_rel_error_vs_float64']['1']:.1e} / "
            f"{f32['step_rel_error_vs_float64']['100']:.1e} |",
            f"| peak RSS GB (interpreter baseline GB) | {f64['peak_rss_bytes'] / 1e9:.2f} "
            f"({c['baseline_rss_bytes'] / 1e9:.2f}) | – |",
            f"| data + curvature GB | "
            f"{(f64['data_bytes'] + f64['curvature_bytes']) / 1e9:.2f} | – |",
            "",
            f"Refit: scikit-learn lbfgs {_fmt(r['sklearn_lbfgs_s'])} s for {per} labels"
            + (
                f"; scikit-learn newton-cholesky "
                f"{_fmt(r['sklearn_newton_cholesky_one_label_s'])} s for ONE label"
                if "sklearn_newton_cholesky_one_label_s" in r
                else ""
            )
            + f". Batch of {c['batch']['requests']} single-sample requests: sequential forget_step "
            f"{_fmt(c['batch']['sequential_forget_step_s'])} s, one multi-RHS product per block "
            f"{_fmt(c['batch']['batched_s'])} s ({c['batch']['speedup']:.1f}x, max rel diff "
            f"{c['batch']['max_rel_diff']:.1e}).",
        ]
    blocks = results.get("block_build", [])
    if blocks:
        lines += [
            "",
            "One curvature block, phases against GEMM (same process):",
            "",
            "| dtype | n | d | syrk | potrf | potri | whole block |",
            "|---|---|---|---|---|---|---|",
        ]
        for b in blocks:
            fr = b["fraction_of_gemm"]
            lines.append(
                f"| {b['dtype']} | {_fmt(b['n'])} | {_fmt(b['d'])} | {fr['syrk']:.2f} | "
                f"{fr['potrf']:.2f} | "
                f"{fr['potri']:.2f} | {b['total_fraction_of_gemm']:.2f} |"
            )
    sm = results.get("sherman_morrison", [])
    if sm:
        lines += [
            "",
            "| Sherman-Morrison | n | d | rank-1 (paper) s | chunked recurrence s | "
            "package build s | "
            "rank-1 ÷ package | max rel diff |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in sm:
            lines.append(
                f"| | {_fmt(s['n'])} | {_fmt(s['d'])} | {_fmt(s['rank1_recurrence_s'])} | "
                f"{_fmt(s['chunked_recurrence_s'])} | {_fmt(s['package_build_s'])} | "
                f"{_fmt(s['ratio_rank1_over_package'])} | {s['max_rel_diff_rank1']:.1e} |"
            )
    mu = results.get("mulan", {})
    if mu:
        lines += [
            "",
            "| Mulan (train split) | n | p | labels | package fit s | sklearn lbfgs s | "
            "forget 1 s | "
            "forget 100 s | read s | sklearn ÷ forget1 | ε path speedup (grid) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, m in mu.items():
            if "skipped" in m:
                lines.append(f"| {name} | skipped: {m['skipped']} |")
                continue
            e = m.get("eps_path", {})
            eps = (
                f"{e['speedup']:.0f}x ({e['grid_size']})"
                if "speedup" in e
                else e.get("skipped", "–")
            )
            lines.append(
                f"| {name}{' (sparse)' if m['sparse'] else ''} | {m['n']} | {m['p']} | "
                f"{m['n_labels']} | "
                f"{_fmt(m['fit_s'])} | {_fmt(m['sklearn_lbfgs_s'])} | {_fmt(m['forget1_s'])} | "
                f"{_fmt(m['forget100_s'])} | {_fmt(m['read_s'])} | "
                f"{_fmt(m['sklearn_over_forget1'])} | {eps} |"
            )
    st = results.get("streaming")
    if st:
        lines += [
            "",
            f"Streaming (p = {st['p']}, float64 .npy memmap read in 65,536-row chunks; peak RSS by "
            "VmHWM of a fresh process):",
            "",
            "| run | n | fit s | peak RSS MB | data MB | curvature MB | fingerprints MB | "
            "forget 1 s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, run in st["runs"].items():
            if "skipped" in run:
                lines.append(f"| {key} | skipped |")
                continue
            passes = f" ({run['newton_passes']} Newton passes)" if "newton_passes" in run else ""
            lines.append(
                f"| {run['mode']}{passes} "
                f"| {_fmt(run['n'])} | {_fmt(run['fit_s'])} | {run['peak_rss_bytes'] / 1e6:.0f} | "
                f"{run['data_bytes'] / 1e6:.0f} | {run['curvature_bytes'] / 1e6:.2f} | "
                f"{run['fingerprint_bytes'] / 1e6:.1f} | {_fmt(run['forget1_s'])} |"
            )
        lines += [
            "",
            f"Streamed vs in-memory parameters, max relative difference: ridge "
            f"{st['ridge_stream_vs_memory_rel_diff']:.1e}, logistic (Newton vs lbfgs) "
            f"{st['logistic_stream_vs_memory_rel_diff']:.1e}"
            + (
                f", dask ridge {st['ridge_dask_vs_memory_rel_diff']:.1e}"
                if "ridge_dask_vs_memory_rel_diff" in st
                else ""
            )
            + f". Streaming peak RSS grows by "
            f"{st['stream_peak_growth_per_row_bytes']:.1f} bytes per row "
            f"(the data is {8 * (st['p'] + 1)} bytes per row).",
        ]
    sc = results.get("scaling")
    if sc:
        lines += [
            "",
            f"Scaling ({sc['labels']} labels; plot: scaling.png):",
            "",
            "| axis | n | d | package fit s | sklearn lbfgs s | forget 1 s | sklearn ÷ forget |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in sc["rows"]:
            lines.append(
                f"| {r['axis']} | {_fmt(r['n'])} | {_fmt(r['p'] + 1)} | {_fmt(r['fit_s'])} | "
                f"{_fmt(r['sklearn_lbfgs_s'])} | {_fmt(r['forget1_s'])} | "
                f"{_fmt(r['sklearn_lbfgs_s'] / r['forget1_s'])} |"
            )
    return "\n".join(lines) + "\n"


# ============================================================================ main
def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (< 1 min), for the smoke test"
    )
    parser.add_argument(
        "--labels", type=int, default=None, help="CelebA-scale labels (default 40; 2 with --quick)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="subset of: gemm block sm celeba mulan streaming scaling",
    )
    parser.add_argument("--no-dask", action="store_true", help="skip the dask.distributed run")
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help="re-render results.md and scaling.png from an existing results.json (no runs)",
    )
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.report:
        results = json.loads(args.report.read_text())
        results["goals"] = [
            {"figure": f, "scenario": s, "measured": v, "goal": g, "met": m}
            for f, s, v, g, m in goals_table(results)
        ]
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1, default=float))
        (args.out / "results.md").write_text(markdown(results))
        if "scaling" in results:
            plot_scaling(results["scaling"], args.out / "scaling.png")
        print(markdown(results))
        return 0

    if args.child:
        print(json.dumps(_dispatch_child(args.child)))
        return 0

    quick = args.quick
    only = (
        set(args.only)
        if args.only
        else {"gemm", "block", "sm", "celeba", "mulan", "streaming", "scaling"}
    )
    start = time.perf_counter()
    results = {"schema_version": SCHEMA_VERSION, "quick": quick, "machine": machine_info()}
    results["gemm"] = bench_gemm(quick)

    args.out.mkdir(parents=True, exist_ok=True)

    def log(message):
        # Save what has been measured so far: a late failure loses only its own phase.
        (args.out / "results.partial.json").write_text(json.dumps(results, default=float))
        print(f"[{time.perf_counter() - start:7.1f}s] {message}", file=sys.stderr, flush=True)

    if "block" in only:
        log("one curvature block against GEMM")
        d, n = (129, 1000) if quick else (4097, 16277)
        results["block_build"] = [
            bench_block_build(d, n, np.float64),
            bench_block_build(d, n, np.float32),
        ]
    if "sm" in only:
        log("Sherman-Morrison rank-1 recurrence")
        configs = [(500, 128)] if quick else [(16277, 1024), (4000, 2048)]
        results["sherman_morrison"] = [bench_sherman_morrison(d, n) for n, d in configs]
    if "celeba" in only:
        labels = args.labels or (2 if quick else 40)
        n, p = (1000, 128) if quick else (16277, 4096)
        log(f"CelebA-scale synthetic, n={n}, p={p}, {labels} labels (child process)")
        results["celeba"] = _scenario(
            ["celeba", n, p, labels, 1.0, int(quick), int(not quick)], in_process=quick
        )
    if "mulan" in only:
        log("Mulan data sets")
        results["mulan"] = bench_mulan(quick)
    if "streaming" in only:
        log("streaming / memmap / dask")
        results["streaming"] = bench_streaming(quick, use_dask=not (args.no_dask or quick))
    if "scaling" in only:
        log("scaling in n and d")
        results["scaling"] = bench_scaling(quick)
    results["wall_s"] = time.perf_counter() - start
    results["goals"] = [
        {"figure": f, "scenario": s, "measured": v, "goal": g, "met": m}
        for f, s, v, g, m in goals_table(results)
    ]
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    text = markdown(results)
    (args.out / "results.md").write_text(text)
    if "scaling" in results:
        try:
            plot_scaling(results["scaling"], args.out / "scaling.png")
        except ImportError:
            log("matplotlib missing: no plot")
    print(text)
    log(f"done: {args.out}")
    (args.out / "results.partial.json").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
