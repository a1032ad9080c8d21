"""``benchmarks/run.py --quick`` runs end to end and writes the documented outputs.

Only the quick mode runs here (small sizes, about 10-40 s); the full benchmark is never
part of the unit tests (see benchmarks/README.md).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"

pytest.importorskip("matplotlib")
pytestmark = pytest.mark.skipif(not RUN.exists(), reason="benchmarks/ is not installed here")


def test_quick_benchmark_writes_json_markdown_and_plot(tmp_path):
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--no-dask", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["quick"] is True
    for key in (
        "machine",
        "gemm",
        "block_build",
        "sherman_morrison",
        "celeba",
        "mulan",
        "streaming",
        "scaling",
        "goals",
        "wall_s",
    ):
        assert key in results, key
    assert {"nproc", "cpu_model", "blas"} <= set(results["machine"])
    celeba = results["celeba"]
    for key in ("float64", "float32", "refit", "batch", "float32_vs_float64"):
        assert key in celeba, key
    for key in ("build_over_gemm", "forget1_over_read", "peak_over_data_plus_curvature"):
        assert key in celeba["float64"], key
    assert {"sklearn_over_forget1", "package_over_forget100"} <= set(celeba["refit"])
    assert results["sherman_morrison"][0]["max_rel_diff_rank1"] < 1e-10
    assert celeba["batch"]["max_rel_diff"] < 1e-10
    streaming = results["streaming"]
    assert streaming["ridge_stream_vs_memory_rel_diff"] < 1e-10
    assert {"stream_peak_growth_per_row_bytes", "runs"} <= set(streaming)
    assert {"axis", "n", "p", "fit_s", "forget1_s", "sklearn_lbfgs_s"} <= set(
        results["scaling"]["rows"][0]
    )
    figures = {goal["figure"] for goal in results["goals"]}
    assert any("Sherman-Morrison" in f for f in figures)
    assert any("peak RSS" in f for f in figures)
    assert all({"measured", "goal", "met"} <= set(goal) for goal in results["goals"])
    markdown = (tmp_path / "results.md").read_text()
    assert "| figure | scenario | measured | goal | met |" in markdown
    assert (tmp_path / "scaling.png").stat().st_size > 0
