"""The main job, ``python -m sklearn_ssse demo``: the paper's Figure-1 protocol on yeast."""

import copy
import json

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import sklearn_ssse
from sklearn_ssse import UnlearnableLogisticRegression
from sklearn_ssse.__main__ import main
from sklearn_ssse._demo import MODES, figure1_study, format_figure1_table
from sklearn_ssse.datasets import load_yeast
from sklearn_ssse.metrics import parameter_distance, similarity_ratio


@pytest.fixture(scope="module")
def study():
    X, Y = load_yeast(return_X_y=True)
    # Many ~100x100 solves: BLAS threads only add overhead (a lot on a busy machine).
    with threadpool_limits(1):
        return X, Y, figure1_study(X, Y, progress=False)


def test_figure1_meets_the_issue_thresholds(study):
    """Default mode averages γ >= 0.95 at ε = 1, the paper's SSSE >= 0.85 at its best ε."""
    _, Y, result = study
    default, paper = (result["summary"][mode] for mode in MODES)
    assert default["mean_gamma_at_eps_1"] >= 0.95
    assert paper["mean_gamma_at_best_eps"] >= 0.85
    # The protocol: every label with frequency <= 20%, three removal rates, both modes.
    assert result["labels"] == np.flatnonzero(Y.mean(axis=0) <= 0.2).tolist()
    assert len(result["records"]) == 2 * 3 * len(result["labels"])


@pytest.mark.parametrize("mode", list(MODES))
def test_recorded_curves_equal_an_erasure_done_by_hand(study, mode):
    """A recorded γ and distance equal forget(eps) on a copy, measured by the metrics."""
    X, Y, result = study
    record = next(
        r
        for r in result["records"]
        if r["mode"] == mode and r["rate"] == 0.2 and not r["degenerate"]
    )
    # Replay the request: the study draws removed samples with this generator, in this order.
    rng = np.random.default_rng(0)
    for rate in result["rates"]:
        for label in result["labels"]:
            positives = np.flatnonzero(Y[:, label] == 1)
            size = max(1, int(round(rate * len(positives))))
            removed = np.sort(rng.choice(positives, size, replace=False))
            if rate == record["rate"] and label == record["label"]:
                break
        else:
            continue
        break
    keep = np.setdiff1d(np.arange(len(X)), removed)
    with threadpool_limits(1):
        original = UnlearnableLogisticRegression(tol=1e-8, **MODES[mode]).fit(X, Y)
        refit = UnlearnableLogisticRegression(tol=1e-8).fit(X[keep], Y[keep])
        index = result["eps"].index(next(e for e in result["eps"] if e > 1.5))
        eps = result["eps"][index]
        erased = copy.deepcopy(original).forget(X[removed], Y[removed], eps=eps)
    gamma = similarity_ratio(original, erased, refit, X[removed], Y[removed])
    distance = parameter_distance(erased, original, refit)
    assert record["gamma"][index] == pytest.approx(gamma, abs=1e-9)
    assert record["distance"][index] == pytest.approx(distance, rel=1e-6)


def test_cli_writes_table_json_and_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    with threadpool_limits(1):
        code = main(["demo", "--output", str(tmp_path), "--no-progress", "--rates", "0.5"])
    assert code == 0
    out = capsys.readouterr().out
    assert "refit on D∖S (gold standard)" in out and "| 50% |" in out
    # Missing values print as "-", and the legend under each table explains the columns.
    assert "nan" not in out.lower()
    assert "| original (trained on D) | 1.0000 |" in out and "| - | - |" in out
    assert "per-label (Hamming) accuracy" in out and "higher is better" in out
    assert "degenerate: requests whose S has no label with both classes" in out

    def no_nan(constant):
        raise AssertionError(f"figure1.json holds {constant}, which is not JSON")

    saved = json.loads((tmp_path / "figure1.json").read_text(), parse_constant=no_nan)
    assert saved["single_request"]["rows"][0]["forget_seconds"] is None
    assert set(saved["summary"]) == set(MODES)
    assert saved["rates"] == [0.5]
    assert (tmp_path / "figure1.png").stat().st_size > 10_000


def test_cli_reports_a_data_set_without_rare_labels(tmp_path, capsys):
    code = main(["demo", "--output", str(tmp_path), "--max-frequency", "0.001"])
    assert code == 2
    assert "No label has frequency <= 0.001" in capsys.readouterr().err
    assert not (tmp_path / "figure1.json").exists()


def test_figure1_table_shows_best_eps_only_when_it_is_not_one(study):
    _, _, result = study
    table = format_figure1_table(result)
    rows = [c for by_rate in result["curves"].values() for c in by_rate.values()]
    assert ("best γ (ε)" in table) == any(c["best_eps"] != 1.0 for c in rows)
    # A curve whose best ε is not 1 brings the column back, with that ε in it.
    changed = copy.deepcopy(result)
    first = next(iter(next(iter(changed["curves"].values())).values()))
    first["best_eps"], first["best_gamma"] = 3.16, 0.5
    assert "| 0.500 (3.16) |" in format_figure1_table(changed)


def test_help_lists_defaults_and_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "Figure-1 protocol" in out
    for default in ("(default: 1.0)", "(default: 0.2)", "(default: ssse_output)"):
        assert default in out
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sklearn_ssse {sklearn_ssse.__version__}"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--C", "0"], "argument --C: must be > 0"),
        (["--C", "-1"], "argument --C: must be > 0"),
        (["--C", "abc"], "argument --C: takes a number, got 'abc'"),
        (["--C", "nan"], "argument --C: must be finite"),
        (["--fraction", "1.5"], "argument --fraction: must be a share strictly between 0 and 1"),
        (["--fraction", "0"], "argument --fraction: must be a share strictly between 0 and 1"),
        (["--rates", "0"], "argument --rates: must be a share strictly between 0 and 1"),
        (["--rates", "0.2", "1"], "argument --rates: must be a share strictly between 0 and 1"),
        (["--rates", "0.2", "0.2"], "argument --rates: give each rate once"),
        (["--max-frequency", "0"], "argument --max-frequency: must be in (0, 1]"),
        (["--max-frequency", "2"], "argument --max-frequency: must be in (0, 1]"),
        (["--label", "-1"], "argument --label: must be >= 0"),
        (["--label", "x"], "argument --label: takes a whole number"),
        (["--seed", "-3"], "argument --seed: must be >= 0"),
        (["--data", "no/such/file.arff"], "argument --data: no such file: no/such/file.arff"),
        (["--data", "."], "argument --data: not a file: ."),
    ],
)
def test_each_bad_option_is_one_clear_line_before_any_work(tmp_path, capsys, argv, message):
    output = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--output", str(output), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"python -m sklearn_ssse demo: error: {message}" in err
    assert "Traceback" not in err
    assert not output.exists()


@pytest.mark.parametrize("where", ["file", "below a file"])
def test_bad_output_folder(tmp_path, capsys, where):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    output, message = {
        "file": (a_file, f"{a_file} exists and is not a folder"),
        "below a file": (
            a_file / "sub",
            f"cannot create {a_file / 'sub'}: {a_file} is not a folder",
        ),
    }[where]
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--output", str(output)])
    assert exit_info.value.code == 2
    assert f"error: argument --output: {message}" in capsys.readouterr().err


def test_label_out_of_range_is_refused_before_any_fit(tmp_path, capsys, monkeypatch):
    fits = []
    monkeypatch.setattr(UnlearnableLogisticRegression, "fit", lambda self, *a, **k: fits.append(1))
    code = main(["demo", "--output", str(tmp_path / "out"), "--label", "99"])
    assert code == 2
    err = capsys.readouterr().err
    assert "error: label=99 is out of range: the data has 14 labels, numbered 0 to 13." in err
    assert fits == [] and not (tmp_path / "out").exists()


def test_unreadable_data_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.arff"
    bad.write_text("this is not an ARFF file\n")
    code = main(["demo", "--output", str(tmp_path / "out"), "--data", str(bad)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m sklearn_ssse demo: error: ") and "Traceback" not in err
    assert not (tmp_path / "out").exists()
