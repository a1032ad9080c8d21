"""doc/check_api_pages.py, the check of the built API pages (on small hand-made pages)."""

import importlib.util
from pathlib import Path

import pytest

from sklearn_ssse import UnlearnableLogisticRegression
from sklearn_ssse.pipeline import Pipeline

SCRIPT = Path(__file__).resolve().parents[1] / "doc" / "check_api_pages.py"


@pytest.fixture(scope="module")
def checker():
    if not SCRIPT.exists():
        pytest.skip("doc/ is not in this checkout")
    spec = importlib.util.spec_from_file_location("check_api_pages", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_public_methods_include_inherited_package_methods(checker):
    methods = checker.public_methods(UnlearnableLogisticRegression)
    assert {"fit", "forget", "forget_step", "was_erased", "erasure_log_to_json"} <= methods
    assert "gradient_residual" in methods
    assert not any(name.startswith("_") or name.endswith("_request") for name in methods)
    # scikit-learn's own Pipeline methods are documented by scikit-learn.
    assert checker.public_methods(Pipeline) == {"fit", "forget", "forget_step", "was_erased"}


def test_page_parser_reads_definition_ids_and_headings(checker):
    page = checker._Page()
    page.feed(
        '<h1>Pipeline<a href="#">#</a></h1><dl><dt id="m.Pipeline.forget">forget</dt>'
        '<dt id="m.Pipeline.fit">fit</dt></dl><h2>Examples using <code>Pipeline</code></h2>'
    )
    assert page.ids == {"m.Pipeline.forget", "m.Pipeline.fit"}
    assert page.headings[0].startswith("Pipeline")
    assert page.headings[1] == "Examples using Pipeline"


def test_a_page_without_the_methods_fails(checker, tmp_path, capsys):
    (tmp_path / "generated").mkdir()
    assert checker.check(tmp_path) == 1  # no page at all
    assert "sklearn_ssse.UnlearnableLogisticRegression: no page" in capsys.readouterr().out
    page = tmp_path / "generated" / "sklearn_ssse.UnlearnableLogisticRegression.html"
    page.write_text('<dt id="sklearn_ssse.UnlearnableLogisticRegression.fit"></dt>')
    assert checker.check(tmp_path) == 1
    assert "forget, forget_step" in capsys.readouterr().out
