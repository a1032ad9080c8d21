"""Check the built API reference: every public method of every public class is on its page.

Run after the HTML build, from the repository root::

    python -m sphinx -W --keep-going -b html doc doc/_build/html
    python doc/check_api_pages.py doc/_build/html

For each class in the ``__all__`` of the public modules (``PUBLIC_MODULES`` in conf.py),
the public methods are the callables whose name does not start with ``_`` and that a class
of this package defines (the class itself or one of its package bases; methods inherited
from scikit-learn or PyTorch are documented there). Each must appear on the class's page
``generated/<module>.<Class>.html`` as a definition with the id ``<module>.<Class>.<name>``.
A page whose class is used by a gallery example (sphinx-gallery's backreferences) must
also have its "Examples using" section. Exits 1 and lists what is missing; this catches an
autosummary template that Sphinx did not find (it falls back silently to one that
documents no inherited methods, and ``-W`` does not notice).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

DOC = Path(__file__).resolve().parent
ROOT = DOC.parent
# scikit-learn's metadata-routing setters, generated per estimator (conf.py skips them).
SKIPPED = re.compile(r"set_\w+_request")


class _Page(HTMLParser):
    """The ids of a page's definitions and the text of its headings."""

    def __init__(self):
        super().__init__()
        self.ids, self.headings, self._in_heading = set(), [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "dt" and attrs.get("id"):
            self.ids.add(attrs["id"])
        if re.fullmatch(r"h[1-6]", tag):
            self._in_heading = True
            self.headings.append("")

    def handle_endtag(self, tag):
        if re.fullmatch(r"h[1-6]", tag):
            self._in_heading = False

    def handle_data(self, data):
        if self._in_heading:
            self.headings[-1] += data


def public_methods(cls):
    """Public methods that a class of this package defines (itself or a package base)."""
    names = set()
    for klass in inspect.getmro(cls):
        if not getattr(klass, "__module__", "").startswith("sklearn_ssse"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or SKIPPED.fullmatch(name):
                continue
            if isinstance(value, (staticmethod, classmethod)) or inspect.isfunction(value):
                names.add(name)
            elif type(value).__name__ == "_AvailableIfDescriptor":  # sklearn's available_if
                names.add(name)
    return names


def public_classes(public_modules):
    """``{class: [public names]}``: every name under which a public module exports it (the
    page is named after the one api.rst documents it under)."""
    classes = {}
    for module_name in public_modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if not inspect.isclass(obj) or issubclass(obj, BaseException | Warning):
                continue
            classes.setdefault(obj, []).append(f"{module_name}.{name}")
    return classes


def check(html_root):
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(DOC))
    import conf  # the same list of public modules as the build's own coverage check

    classes = public_classes(conf.PUBLIC_MODULES)
    generated = Path(html_root) / "generated"
    backreferences = DOC / "gen_modules" / "backreferences"
    problems, checked = [], 0
    for cls, names in classes.items():
        pages = [(name, generated / f"{name}.html") for name in names]
        found = [(name, page) for name, page in pages if page.is_file()]
        if not found:
            problems.append(f"{names[0]}: no page (looked for {', '.join(n for n, _ in pages)})")
            continue
        documented, page_path = found[0]
        page = _Page()
        page.feed(page_path.read_text(encoding="utf-8"))
        missing = sorted(m for m in public_methods(cls) if f"{documented}.{m}" not in page.ids)
        if missing:
            problems.append(f"{documented}: {', '.join(missing)} missing from {page_path}")
        examples = backreferences / f"{documented}.examples"
        used = examples.is_file() and examples.read_text(encoding="utf-8").strip()
        if used and not any(h.startswith("Examples using") for h in page.headings):
            problems.append(f"{documented}: used in the gallery, but no 'Examples using' section")
        checked += 1
    for problem in problems:
        print(problem)
    print(f"checked {checked} class pages: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(check(sys.argv[1] if len(sys.argv) > 1 else DOC / "_build" / "html"))
