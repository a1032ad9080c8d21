"""The dependency direction of the package, read from the imports of its source files."""

import ast
import pathlib

import pytest

import sklearn_ssse

ROOT = pathlib.Path(sklearn_ssse.__file__).resolve().parent

# What each module of the layers below the estimators may import from the package.
ALLOWED = {
    "_loss": set(),
    "_fingerprint": set(),
    "_validation": set(),
    "_membership": {"_validation"},
    "_accuracy": {"curvature"},
    "_certified": {"_fingerprint", "_loss", "_validation", "curvature"},
    "_bounds": {"_certified", "_loss", "curvature"},
    "_transaction": {"_bounds", "_pipeline"},
    "_persistence": {"_transaction"},
    "_record": {"_fingerprint", "_persistence"},
    "_out_of_core": {"_bounds", "_transaction", "curvature"},
}


def _package_imports(path):
    """The top-level package modules (``_loss``, ``curvature``, ...) a file imports."""
    inside = path.parent != ROOT  # a file of a subpackage such as _loss/
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            if inside and node.level == 1:
                continue  # within its own subpackage
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sklearn_ssse"))
    return found


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_lower_layers_import_only_what_is_below_them(module):
    path = ROOT / f"{module}.py"
    files = [path] if path.exists() else sorted((ROOT / module).glob("*.py"))
    assert files, module
    for file in files:
        extra = _package_imports(file) - ALLOWED[module]
        assert not extra, f"{file.name} of {module} imports {sorted(extra)}"


def test_base_is_imported_only_by_the_estimators():
    """``_base`` is the composition: nothing below it imports it."""
    for path in ROOT.glob("*.py"):
        if path.stem in ALLOWED:
            assert "_base" not in _package_imports(path), path.name
    for path in (ROOT / "curvature").glob("*.py"):
        assert "_base" not in _package_imports(path), path.name


def test_old_import_paths_still_work():
    from sklearn_ssse import _base
    from sklearn_ssse._base import (
        FORMAT_VERSION,
        SKOPS_TRUSTED_TYPES,
        ForgetStep,
        UnlearnableLinearMixin,
        transactional,
    )
    from sklearn_ssse._certified import CertifiedMixin
    from sklearn_ssse._dask import DaskChunks
    from sklearn_ssse._loss import LOSSES, LogisticLoss, MultinomialLoss, SquaredLoss
    from sklearn_ssse._persistence import PersistenceMixin
    from sklearn_ssse._transaction import ForgetTransactionMixin
    from sklearn_ssse.curvature import fit_dask, fit_streaming  # noqa: F401
    from sklearn_ssse.curvature._dask import DaskChunks as EngineDaskChunks

    assert FORMAT_VERSION == _base.FORMAT_VERSION == 3
    assert "sklearn_ssse._certified.Certificate" in SKOPS_TRUSTED_TYPES
    assert ForgetStep.__module__ == "sklearn_ssse._transaction"
    assert transactional.__module__ == "sklearn_ssse._transaction"
    assert DaskChunks is EngineDaskChunks
    assert issubclass(UnlearnableLinearMixin, ForgetTransactionMixin)
    assert issubclass(UnlearnableLinearMixin, PersistenceMixin)
    assert issubclass(UnlearnableLinearMixin, CertifiedMixin)
    assert {LogisticLoss, SquaredLoss, MultinomialLoss} <= set(LOSSES.values())
