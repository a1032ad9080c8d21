"""``benchmarks/torch_cifar_resnet20.py --quick`` runs end to end on the real CIFAR subset.

The study itself (the real ResNet-20, 5,000 images, 15 retrained networks) is never run
here: the quick mode trains a width-8 ResNet-20 for one epoch on 200 images and runs one
class's three requests through every method, the attack and the table writers.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "torch_cifar_resnet20.py"
CANDIDATES = [
    os.environ.get("SKLEARN_SSSE_SHARED_DATA"),
    ROOT.parent / "shared" / "data",
    "/work/shared/data",
]
DATA = next(
    (
        Path(c)
        for c in CANDIDATES
        if c and (Path(c) / "cifar10_jpeg_subset" / "cifar10_subset_5k_1k.npz").exists()
    ),
    None,
)

pytestmark = [
    pytest.mark.skipif(not SCRIPT.exists(), reason="benchmarks/ is not installed here"),
    pytest.mark.skipif(DATA is None, reason="../shared/data (CIFAR-10 subset) not available"),
]


def test_quick_study_writes_results_tables_and_torch_md(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SKLEARN_SSSE_SHARED_DATA": str(DATA)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=400,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "torch_cifar_resnet20.json").read_text())
    cfg = result["config"]
    assert cfg["quick"] is True and cfg["n_train"] == 200 and cfg["n_test"] == 100
    assert cfg["batch_size"] == 10 and cfg["n_terms"] == 20
    requests = result["requests"]
    assert [r["name"] for r in requests] == [
        "(a) all of the class",
        "(b) 10% of the class",
        "(b) 50% of the class",
    ]
    assert [r["n_removed"] for r in requests] == [20, 2, 10]
    whole = requests[0]
    # The network retrained without the class can never predict it.
    assert whole["retrained_accuracy"][0] == 0.0 and whole["retrained_accuracy"][2] == 0.0
    n_eps = len(cfg["eps_grid"])
    for r in requests:
        assert np.array(r["ssse"]["abs_diff"]).shape == (n_eps, 4)
        assert np.array(r["lcodec"]["abs_diff"]).shape == (n_eps, 4)
        assert 0 < r["lcodec"]["n_params_touched"] < r["ssse"]["n_params_touched"]
        assert r["ssse"]["n_params_touched"] == cfg["n_params"]
        for key in ("finetune", "neggrad", "fisher_forgetting"):
            diffs = np.array(r[key]["abs_diff"])
            assert diffs.shape[1] == 4 and np.all((diffs >= 0) & (diffs <= 1))
        # Budgeted baselines stop near SSSE's time (one step of slack).
        assert r["finetune"]["seconds"] < r["finetune"]["budget"] + 5
        assert set(r["mia"]) == {
            "SSSE",
            "L-CODEC + SSSE",
            "fine-tune",
            "NegGrad",
            "Fisher forgetting",
        }
        for m in r["mia"].values():
            assert set(m) == {"original", "erased", "retrained"}
            assert all(0 <= v["auc"] <= 1 and 0 <= v["member_rate"] <= 1 for v in m.values())
    table = (tmp_path / "torch_cifar_resnet20.md").read_text()
    for heading in (
        "Figure 2 at the paper's scale",
        "All methods side by side",
        "Membership inference on S",
        "Profile",
    ):
        assert heading in table
    torch_md = (tmp_path / "TORCH.md").read_text()
    assert "QUICK MODE" in torch_md and table in torch_md
    assert (tmp_path / "torch_cifar_resnet20.log").read_text().count("done class") == 3
    # The partial record rebuilds the same tables.
    again = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--assemble",
            str(tmp_path / "torch_cifar_resnet20.partial.jsonl"),
            "--quick",
            "--out",
            str(tmp_path / "again"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    rebuilt = (tmp_path / "again" / "torch_cifar_resnet20.md").read_text()
    # Only the whole-run time is unknown to the partial record.
    strip = lambda text: [x for x in text.splitlines() if "Whole run" not in x]  # noqa: E731
    assert strip(rebuilt) == strip(table)
