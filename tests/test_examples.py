"""Run the gallery examples that need only the core package, each in its own process.

The torch examples (``examples/plot_torch_*.py``) run in their quick mode
(``SKLEARN_SSSE_EXAMPLE_QUICK=1``: fewer epochs and a smaller ε grid) when torch is installed.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TIMEOUT = 60  # seconds per example

# One BLAS thread: the examples do many small (≈100×100) solves, for which threads only
# add overhead, and a lot of it on a loaded machine.
ENV = {
    **os.environ,
    "MPLBACKEND": "Agg",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def run_example(name, tmp_path, env=ENV, timeout=TIMEOUT):
    path = EXAMPLES / name
    if not path.exists():
        pytest.skip(f"{name} is not in this checkout (examples/ is not installed)")
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    seconds = time.perf_counter() - start
    assert completed.returncode == 0, (
        f"{name} exited with {completed.returncode} after {seconds:.1f} s\n"
        f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
    )
    return completed.stdout


def test_figure1_yeast(tmp_path):
    out = run_example("plot_figure1_yeast.py", tmp_path)
    assert "labels used here" in out
    assert out.count("best ε") == 6  # two modes × three removal rates


def test_grid_search_eps(tmp_path):
    out = run_example("plot_grid_search_eps.py", tmp_path)
    match = re.search(r"^BEST_EPS grid_search=(\S+) path=(\S+)$", out, flags=re.MULTILINE)
    assert match is not None, out
    assert float(match.group(1)) == float(match.group(2))


def test_pipeline_erasure(tmp_path):
    out = run_example("plot_pipeline_erasure.py", tmp_path)
    assert "ValueError: Cannot erase samples through pipeline step" in out
    for name in ("original", "erased", "retrained"):
        assert re.search(rf"^{name}\s+\d", out, flags=re.MULTILINE), out


TORCH_ENV = {**ENV, "SKLEARN_SSSE_EXAMPLE_QUICK": "1"}


def test_torch_feature_pipeline(tmp_path):
    pytest.importorskip("torch")
    out = run_example("plot_torch_feature_pipeline.py", tmp_path, env=TORCH_ENV, timeout=180)
    assert "pipeline erasure matches the erasure by hand: True" in out


def test_torch_resnet_erasure(tmp_path):
    pytest.importorskip("torch")
    out = run_example("plot_torch_resnet_erasure.py", tmp_path, env=TORCH_ENV, timeout=300)
    assert "| ε | train S |" in out
    assert re.search(r"^\| all of class 0 \| SSSE \|", out, flags=re.MULTILINE), out
