"""Sphinx configuration of the sklearn_ssse documentation.

Build (from the repository root)::

    python -m sphinx -W --keep-going -b html doc doc/_build/html

Nothing is fetched from the network, at build time or by the reader's browser:
intersphinx is not used, and MathJax 3 is served from the site itself, copied at build
time from the ``django-static-mathjax`` wheel of the ``docs`` extra (a plain copy of the
MathJax 3.2 distribution with no dependencies; TeX input, SVG output, so no web fonts).
Pre-rendered maths (``sphinx.ext.imgmath``) would need LaTeX and dvipng from the system
packages on every machine that builds the docs, about a gigabyte; a pip package keeps the
build to ``pip install -e ".[docs]"``.
"""

import importlib
import importlib.util
import os
import re
import shutil
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
html_static_path = ["_static"]
html_css_files = ["custom.css"]
# Method entries in the right-hand contents as "forget()", not the full dotted name.
toc_object_entries_show_parents = "hide"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    # Every top-level page in the navbar (the default hides all but five under "More"),
    # with the short titles of the toctree in index.rst so that they fit in one row at
    # 1280 px.
    "header_links_before_dropdown": 8,
    "navbar_align": "left",
}

# -- MathJax, served from the site (see the module docstring) ----------------------------
MATHJAX_FILES = ["tex-svg.js", "input", "output", "ui", "a11y", "adaptors", "sre"]
_mathjax_spec = importlib.util.find_spec("mathjax")
MATHJAX_SOURCE = (
    Path(_mathjax_spec.origin).parent / "static" / "mathjax" / "es5"
    if _mathjax_spec is not None and _mathjax_spec.origin
    else None
)
mathjax_path = "mathjax/tex-svg.js"  # relative to _static
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
    "sklearn_ssse.pipeline",
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


def _check_mathjax(app):
    from sphinx.util import logging

    if MATHJAX_SOURCE is None or not (MATHJAX_SOURCE / "tex-svg.js").is_file():
        logging.getLogger(__name__).warning(
            "MathJax is not installed (pip install django-static-mathjax, in the docs "
            "extra): the maths would load from nowhere"
        )


def _copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html" or MATHJAX_SOURCE is None:
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    for name in MATHJAX_FILES:
        source = MATHJAX_SOURCE / name
        if source.is_dir():
            shutil.copytree(source, target / name, dirs_exist_ok=True)
        elif source.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    license_file = MATHJAX_SOURCE.parent / "LICENSE"
    if license_file.is_file():
        shutil.copy2(license_file, target / "LICENSE")


def _check_templates(app):
    # autosummary falls back to its base template, silently, when a :template: named in
    # api.rst is not in templates_path: the class pages then lose their methods.
    from sphinx.util import logging

    api = (DOC / "api.rst").read_text(encoding="utf-8")
    for name in sorted(set(re.findall(r":template:\s*(\S+)", api))):
        if not any((DOC / folder / name).is_file() for folder in templates_path):
            logging.getLogger(__name__).warning(
                "doc/api.rst names the template %s, which is not in %s", name, templates_path
            )


_BARE_METHOD_ROLE = re.compile(r":(meth|attr):`(?![~.!])([A-Za-z_]\w*)`")


def _qualify_method_references(app, what, name, obj, options, lines):
    # In a class's docstrings, :meth:`forget` means the class's own method, but Sphinx
    # resolves a bare name to a module-level object first (here the function
    # sklearn_ssse.forget). Name the class's member in full (shown as its short name).
    name = name.replace("::", ".")  # autosummary's spelling of module::qualname
    if what == "class":
        class_name = name
    elif what in ("method", "attribute", "property"):
        class_name = name.rsplit(".", 1)[0]
    else:
        return
    module_name, _, qualname = class_name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), qualname)
    except (ImportError, AttributeError):
        return

    def qualify(match):
        role, member = match.groups()
        if not hasattr(cls, member):
            return match.group(0)
        return f":{role}:`~{class_name}.{member}`"

    lines[:] = [_BARE_METHOD_ROLE.sub(qualify, line) for line in lines]


def setup(app):
    app.connect("builder-inited", _check_api_coverage)
    app.connect("builder-inited", _check_templates)
    app.connect("builder-inited", _check_mathjax)
    app.connect("build-finished", _copy_mathjax)
    app.connect("autodoc-process-docstring", _qualify_method_references)
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)
