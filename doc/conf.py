"""Sphinx configuration of the sklearn_ssse documentation.

Build (from the repository root)::

    python -m sphinx -W --keep-going -b html doc doc/_build/html

Nothing is fetched from the network: intersphinx is not used, and MathJax is only loaded
by the reader's browser.
"""

import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path

# The gallery examples do many small (~100x100) dense solves, for which BLAS threads only
# add overhead, and much of it on a busy machine. Set before numpy is first imported.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("MPLBACKEND", "Agg")

DOC = Path(__file__).resolve().parent
ROOT = DOC.parent
sys.path.insert(0, str(ROOT))  # document the checkout even if it is not installed

import sklearn_ssse

# -- Project -----------------------------------------------------------------------------
project = "sklearn_ssse"
author = "sklearn_ssse developers"
copyright = "sklearn_ssse developers, BSD-3-Clause"
version = release = sklearn_ssse.__version__

# -- General -----------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "README.md", "**/README.md"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = "literal"
pygments_style = "sphinx"
language = "en"

# -- Optional torch subpackage ------------------------------------------------------------
# sklearn_ssse.torch needs PyTorch. Without it the API pages are still built from a mock
# of torch, and the gallery skips the torch examples.
HAS_TORCH = importlib.util.find_spec("torch") is not None
if HAS_TORCH:
    try:
        importlib.import_module("torch")
    except Exception:  # an installed but broken torch counts as absent
        HAS_TORCH = False
autodoc_mock_imports = [] if HAS_TORCH else ["torch"]

# -- autodoc / autosummary / numpydoc ----------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- sphinx-gallery ----------------------------------------------------------------------
# The core examples run at every build (seconds each). plot_torch_* examples need PyTorch
# and are slow: they are executed only when torch imports, otherwise left out of the
# gallery.
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py" if HAS_TORCH else r"(__init__\.py|plot_torch_.*\.py)",
    "within_subsection_order": "FileNameSortKey",
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("sklearn_ssse",),
    "reference_url": {"sklearn_ssse": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "abort_on_example_error": True,
    "plot_gallery": "True",
}

# -- HTML --------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_ssse {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False

# Check that every public name is documented: a name in a public module's __all__ that
# api.rst does not list is reported as a warning, which fails the -W build.
PUBLIC_MODULES = [
    "sklearn_ssse",
    "sklearn_ssse.metrics",
    "sklearn_ssse.datasets",
    "sklearn_ssse.curvature",
    "sklearn_ssse.linear_model",
    "sklearn_ssse.model_selection",
    "sklearn_ssse.torch",
]
UNDOCUMENTED_OK = {"__version__"}


def _check_api_coverage(app):
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    api = (DOC / "api.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\s+([A-Za-z_][\w.]*)\s*$", api, flags=re.MULTILINE))
    listed_names = {entry.rsplit(".", 1)[-1] for entry in listed}
    for module_name in PUBLIC_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in getattr(module, "__all__", []):
            if name not in UNDOCUMENTED_OK and name not in listed_names:
                logger.warning(
                    "%s.%s is public (in __all__) but not listed in doc/api.rst",
                    module_name,
                    name,
                )


def _skip_metadata_request_methods(app, what, name, obj, skip, options):
    # set_fit_request & co. are generated by scikit-learn's metadata routing for every
    # estimator; their docstrings point into scikit-learn's own documentation.
    if re.fullmatch(r"set_\w+_request", name):
        return True
    return None


def setup(app):
    app.connect("builder-inited", _check_api_coverage)
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)
