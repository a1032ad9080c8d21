"""Reader for Mulan multi-label ARFF files and the bundled yeast data set.

Mulan ships each split of a multi-label data set as one ARFF file whose last ``L``
attributes are the binary labels, plus an XML header that lists the label names. The
reader below is self-contained rather than built on :mod:`scipy.io.arff` because scipy
cannot read sparse ARFF rows (``{index value, ...}``), which several Mulan data sets
(enron, bibtex, ...) use.
"""

from __future__ import annotations

import gzip
import numbers
import os
import re
import warnings
import xml.etree.ElementTree as ET
from contextlib import ExitStack
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch

__all__ = ["load_mulan", "load_yeast"]

_GZIP_MAGIC = b"\x1f\x8b"
_NUMERIC_TYPES = frozenset({"numeric", "real", "integer"})
_QUOTES = "'\""
_ESCAPE = re.compile(r"\\(.)")
_WEIGHTED_SPARSE = re.compile(r"\}\s*,\s*\{")


def _unescape(text):
    return _ESCAPE.sub(r"\1", text)


def _unquote(token):
    if len(token) >= 2 and token[0] in _QUOTES and token[-1] == token[0]:
        return _unescape(token[1:-1])
    return token


def _split_quoted(text, sep):
    """Split ``text`` on ``sep`` outside quotes, stopping at a ``%`` comment.

    Returns the stripped pieces with their quotes kept, so that a quoted ``'?'`` stays
    distinguishable from the missing-value marker ``?``.
    """
    if not any(q in text for q in _QUOTES):
        # Fast path: almost every Mulan line is unquoted.
        return [piece.strip() for piece in text.split("%", 1)[0].split(sep)]
    pieces, current, quote, i = [], [], None, 0
    while i < len(text):
        char = text[i]
        if quote is not None:
            current.append(char)
            if char == "\\" and i + 1 < len(text):
                current.append(text[i + 1])
                i += 1
            elif char == quote:
                quote = None
        elif char in _QUOTES:
            quote = char
            current.append(char)
        elif char == "%":
            break
        elif char == sep:
            pieces.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        i += 1
    if quote is not None:
        raise ValueError(f"unterminated {quote} quote")
    pieces.append("".join(current).strip())
    return pieces


def _strip_comment(line):
    # '%' starts a comment anywhere outside quotes, as in Weka's tokenizer.
    if "%" not in line:
        return line.strip()
    return ",".join(_split_quoted(line, ",")).strip()


def _leading_name(text):
    """Split ``text`` into its first (possibly quoted) name and the remainder."""
    text = text.strip()
    if text and text[0] in _QUOTES:
        quote, i = text[0], 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == quote:
                return _unescape(text[1:i]), text[i + 1 :].strip()
            i += 1
        raise ValueError(f"unterminated {quote} quote")
    match = re.match(r"[^\s{]+", text)
    if match is None:
        raise ValueError("missing name")
    return match.group(), text[match.end() :].strip()


class _Attribute:
    """One ARFF attribute: its name and a converter from a data token to a float."""

    def __init__(self, name, type_text):
        self.name = name
        lowered = type_text.lower()
        if lowered in _NUMERIC_TYPES:
            self.nominal = None
        elif type_text.startswith("{") and type_text.endswith("}"):
            values = [_unquote(v) for v in _split_quoted(type_text[1:-1], ",")]
            try:
                codes = [float(v) for v in values]
            except ValueError:
                # Non-numeric categories get Weka's internal code: their declared index.
                codes = [float(i) for i in range(len(values))]
            self.nominal = dict(zip(values, codes, strict=True))
        else:
            kind = lowered.split(None, 1)[0] if lowered else "(none)"
            raise ValueError(
                f"attribute {name!r} has unsupported type {kind!r}; only numeric, real, "
                "integer and nominal {...} attributes are supported"
            )

    def convert(self, token):
        if self.nominal is None:
            return float(token)
        value = _unquote(token)
        if value not in self.nominal:
            raise ValueError(f"{value!r} is not one of the declared values")
        return self.nominal[value]


def _read_text(path):
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Old Weka files are sometimes Latin-1; only attribute names are affected.
        return raw.decode("latin-1")


def _parse_header(lines, where):
    """Parse up to ``@data``; return (relation, attributes, index of first data line)."""
    relation, attributes = "", []
    for i, line in enumerate(lines):
        line = _strip_comment(line)
        if not line:
            continue
        keyword = line.split(None, 1)[0].lower()
        try:
            if keyword == "@relation":
                relation = _leading_name(line[len(keyword) :])[0]
            elif keyword == "@attribute":
                name, type_text = _leading_name(line[len(keyword) :])
                attributes.append(_Attribute(name, type_text))
            elif keyword == "@data":
                if not attributes:
                    raise ValueError("@data before any @attribute declaration")
                return relation, attributes, i + 1
            else:
                raise ValueError(f"unexpected header line {line[:60]!r}")
        except ValueError as exc:
            raise ValueError(f"{where}: line {i + 1}: {exc}") from None
    raise ValueError(f"{where}: no @data section found")


def _missing_error(where, lineno, attribute):
    return ValueError(
        f"{where}: line {lineno}: missing value '?' for attribute {attribute.name!r}; "
        "missing values are not supported (impute them before saving the file)"
    )


def _parse_dense_row(text, attributes, where, lineno):
    try:
        tokens = _split_quoted(text, ",")
    except ValueError as exc:
        raise ValueError(f"{where}: line {lineno}: {exc}") from None
    if len(tokens) != len(attributes):
        raise ValueError(
            f"{where}: line {lineno}: expected {len(attributes)} comma-separated values "
            f"(one per @attribute), found {len(tokens)}"
        )
    values = np.empty(len(tokens))
    for j, (token, attribute) in enumerate(zip(tokens, attributes, strict=True)):
        if token == "?":
            raise _missing_error(where, lineno, attribute)
        try:
            values[j] = attribute.convert(token)
        except ValueError as exc:
            raise ValueError(
                f"{where}: line {lineno}: invalid value {token!r} for attribute "
                f"{attribute.name!r} ({exc})"
            ) from None
    columns = np.flatnonzero(values)
    return columns, values[columns]


def _parse_sparse_row(text, attributes, where, lineno):
    if _WEIGHTED_SPARSE.search(text):
        raise ValueError(
            f"{where}: line {lineno}: Weka instance weights ('{{...}}, {{w}}') are not supported"
        )
    if not text.endswith("}"):
        raise ValueError(f"{where}: line {lineno}: sparse row must end with '}}'")
    inner = text[1:-1].strip()
    if not inner:
        return np.empty(0, dtype=np.intp), np.empty(0)
    try:
        entries = _split_quoted(inner, ",")
    except ValueError as exc:
        raise ValueError(f"{where}: line {lineno}: {exc}") from None
    columns = np.empty(len(entries), dtype=np.intp)
    values = np.empty(len(entries))
    for k, entry in enumerate(entries):
        parts = entry.split(None, 1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(
                f"{where}: line {lineno}: sparse entry {entry!r} is not '<index> <value>'"
            )
        index = int(parts[0])
        if index >= len(attributes):
            raise ValueError(
                f"{where}: line {lineno}: sparse index {index} out of range for "
                f"{len(attributes)} attributes"
            )
        attribute, token = attributes[index], parts[1].strip()
        if token == "?":
            raise _missing_error(where, lineno, attribute)
        try:
            values[k] = attribute.convert(token)
        except ValueError as exc:
            raise ValueError(
                f"{where}: line {lineno}: invalid value {token!r} for attribute "
                f"{attribute.name!r} ({exc})"
            ) from None
        columns[k] = index
    if np.unique(columns).size != columns.size:
        raise ValueError(f"{where}: line {lineno}: sparse row repeats an attribute index")
    keep = values != 0
    return columns[keep], values[keep]


def _count_xml_labels(xml_path):
    """Return the label names of a Mulan XML header, in document order."""
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{xml_path}: invalid Mulan XML label file ({exc})") from None
    # Mulan puts the elements in a namespace and may nest labels for hierarchies.
    return [
        element.get("name", "")
        for element in root.iter()
        if element.tag.rsplit("}", 1)[-1] == "label"
    ]


def _default_xml_path(arff_path):
    stem = arff_path.name
    if stem.lower().endswith(".gz"):
        stem = stem[:-3]
    if stem.lower().endswith(".arff"):
        stem = stem[:-5]
    stem = re.sub(r"-(train|test)$", "", stem, flags=re.IGNORECASE)
    return arff_path.with_name(stem + ".xml")


def _resolve_n_labels(n_labels, xml_path, arff_path, attributes):
    n_attributes = len(attributes)
    xml_labels = None
    if xml_path is not None:
        xml_labels = _count_xml_labels(Path(xml_path))
    elif n_labels is None:
        candidate = _default_xml_path(arff_path)
        if not candidate.is_file():
            raise ValueError(
                f"{arff_path}: cannot tell how many of the {n_attributes} attributes are "
                f"labels: pass n_labels=..., or xml_path=... (no Mulan XML header found "
                f"at the default location {candidate})"
            )
        xml_path, xml_labels = candidate, _count_xml_labels(candidate)

    if xml_labels is not None:
        if not xml_labels:
            raise ValueError(f"{xml_path}: no <label> elements found")
        if n_labels is not None and n_labels != len(xml_labels):
            raise ValueError(
                f"n_labels={n_labels} disagrees with the {len(xml_labels)} labels "
                f"declared in {xml_path}"
            )
        n_labels = len(xml_labels)

    if not isinstance(n_labels, numbers.Integral) or isinstance(n_labels, bool):
        raise ValueError(f"n_labels must be an integer, got {n_labels!r}")
    if not 1 <= n_labels < n_attributes:
        raise ValueError(
            f"n_labels={n_labels} is invalid for a file with {n_attributes} attributes: "
            "it must leave at least one feature and one label"
        )
    n_labels = int(n_labels)

    if xml_labels is not None:
        arff_labels = [a.name for a in attributes[-n_labels:]]
        # Order may legitimately differ (yeast); different names mean a mismatched header.
        if sorted(xml_labels) != sorted(arff_labels):
            warnings.warn(
                f"label names in {xml_path} do not match the last {n_labels} attributes "
                f"of {arff_path}; using the ARFF columns",
                UserWarning,
                stacklevel=3,
            )
    return n_labels


def load_mulan(arff_path, *, n_labels=None, xml_path=None, sparse="auto", return_X_y=False):
    """Load a Mulan multi-label data set stored as an ARFF file.

    The last ``n_labels`` attributes of every row are taken as binary labels and the
    others as features. Dense rows (``v1,v2,...``) and sparse rows (``{index value,
    ...}``, 0-based indices, omitted entries are 0) are both accepted, also mixed in one
    file. The file may be plain text or gzip-compressed (detected from its content, so
    ``.arff.gz`` and ``.arff`` both work).

    Parameters
    ----------
    arff_path : str or path-like
        Path of the ARFF file, for example ``"yeast-train.arff"`` or
        ``"yeast-train.arff.gz"``.
    n_labels : int, default=None
        Number of label attributes (the last columns). If None, it is the number of
        ``<label>`` elements in the Mulan XML header.
    xml_path : str or path-like, default=None
        Mulan XML header listing the labels. If None and ``n_labels`` is None, the
        sibling file named after the ARFF stem without its ``-train``/``-test`` suffix
        is used (``yeast-train.arff.gz`` -> ``yeast.xml``). Only the number of labels is
        taken from it; label names and order always come from the ARFF columns. If both
        ``n_labels`` and ``xml_path`` are given they must agree.
    sparse : {"auto", True, False}, default="auto"
        Format of the returned feature matrix. ``"auto"`` returns a sparse matrix if the
        file contains sparse rows and a dense array otherwise.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples, n_features) or scipy.sparse.csr_matrix
            Features as float64; a CSR matrix (canonical: sorted indices, no explicit
            zeros) when the output is sparse.
        target : ndarray of shape (n_samples, n_labels)
            Labels as int64 zeros and ones, in ARFF column order.
        feature_names : list of str
            Names of the feature attributes.
        target_names : list of str
            Names of the label attributes, in ARFF column order (which can differ from
            the order of the XML header).
        DESCR : str
            Short description of the loaded file.

    (data, target) : tuple if ``return_X_y`` is True
        The feature matrix and the label matrix described above.

    Raises
    ------
    ValueError
        If the file is malformed (the message names the line), contains missing values
        (``?``), has labels other than 0/1, or the number of labels cannot be
        determined.

    See Also
    --------
    load_yeast : The bundled yeast data set, loaded with this function.

    Notes
    -----
    Nominal attributes whose declared values are all numbers (such as Mulan's ``{0,1}``
    labels) take those numbers as values; other nominal attributes are coded by the
    position of the value in the declaration, as Weka does internally. String, date and
    relational attributes and Weka instance weights are not supported.

    Examples
    --------
    >>> from sklearn_ssse.datasets import load_mulan
    >>> X, Y = load_mulan("yeast-train.arff", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, Y.shape  # doctest: +SKIP
    ((1500, 103), (1500, 14))
    """
    if not (sparse == "auto" if isinstance(sparse, str) else isinstance(sparse, bool)):
        raise ValueError(f"sparse must be 'auto', True or False, got {sparse!r}")
    arff_path = Path(os.fspath(arff_path))
    where = str(arff_path)
    lines = _read_text(arff_path).splitlines()
    relation, attributes, first_data = _parse_header(lines, where)
    n_labels = _resolve_n_labels(n_labels, xml_path, arff_path, attributes)
    n_features = len(attributes) - n_labels

    row_columns, row_values, line_numbers = [], [], []
    any_sparse = False
    for i in range(first_data, len(lines)):
        text = _strip_comment(lines[i])
        if not text:
            continue
        if text.startswith("{"):
            any_sparse = True
            columns, values = _parse_sparse_row(text, attributes, where, i + 1)
        else:
            columns, values = _parse_dense_row(text, attributes, where, i + 1)
        if not np.isfinite(values).all():
            raise ValueError(f"{where}: line {i + 1}: non-finite value (nan or inf)")
        row_columns.append(columns)
        row_values.append(values)
        line_numbers.append(i + 1)

    n_samples = len(line_numbers)
    counts = np.fromiter((c.size for c in row_columns), dtype=np.intp, count=n_samples)
    rows = np.repeat(np.arange(n_samples), counts)
    columns = np.concatenate(row_columns) if n_samples else np.empty(0, dtype=np.intp)
    values = np.concatenate(row_values) if n_samples else np.empty(0)

    is_label = columns >= n_features
    bad = np.flatnonzero(is_label & (values != 1))
    if bad.size:
        k = bad[0]
        raise ValueError(
            f"{where}: line {line_numbers[rows[k]]}: label "
            f"{attributes[columns[k]].name!r} has value {values[k]:g}; labels must be 0 or 1"
        )
    target = np.zeros((n_samples, n_labels), dtype=np.int64)
    target[rows[is_label], columns[is_label] - n_features] = 1

    is_feature = ~is_label
    if any_sparse if sparse == "auto" else sparse:
        data = sp.csr_matrix(
            (values[is_feature], (rows[is_feature], columns[is_feature])),
            shape=(n_samples, n_features),
            dtype=np.float64,
        )
        data.sum_duplicates()
    else:
        data = np.zeros((n_samples, n_features), dtype=np.float64)
        data[rows[is_feature], columns[is_feature]] = values[is_feature]

    if return_X_y:
        return data, target
    feature_names = [a.name for a in attributes[:n_features]]
    target_names = [a.name for a in attributes[n_features:]]
    layout = "sparse CSR" if sp.issparse(data) else "dense"
    descr = (
        f"Mulan multi-label data set {relation!r} read from {arff_path.name}.\n\n"
        f"{n_samples} samples, {n_features} features ({layout}), {n_labels} binary "
        f"labels.\nLabels in ARFF column order: {', '.join(target_names)}.\n"
    )
    return Bunch(
        data=data,
        target=target,
        feature_names=feature_names,
        target_names=target_names,
        DESCR=descr,
    )


def load_yeast(*, subset="train", return_X_y=False):
    """Load the yeast multi-label data set bundled with the package.

    Yeast (Elisseeff & Weston, 2001, as distributed by Mulan) describes 2417 genes by
    103 numeric expression features and 14 binary functional-class labels. The files
    ship with the package, so nothing is downloaded.

    ==============   =========================
    Samples          1500 train, 917 test
    Features         103, real, dense
    Labels           14, binary (multi-label)
    ==============   =========================

    Parameters
    ----------
    subset : {"train", "test", "all"}, default="train"
        Split to load. ``"all"`` stacks the training rows followed by the test rows.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples, 103)
            Features as float64.
        target : ndarray of shape (n_samples, 14)
            Labels as int64 zeros and ones, in ARFF column order (``Class1`` ...
            ``Class14``, which differs from the order of ``yeast.xml``).
        feature_names : list of str
            ``Att1`` ... ``Att103``.
        target_names : list of str
            Label names in ARFF column order.
        DESCR : str
            Description and citation of the data set.

    (data, target) : tuple if ``return_X_y`` is True
        The feature matrix and the label matrix described above.

    See Also
    --------
    load_mulan : Read any Mulan ARFF file.

    References
    ----------
    .. [1] A. Elisseeff and J. Weston, "A kernel method for multi-labelled
       classification", Advances in Neural Information Processing Systems 14, 2001.
    .. [2] G. Tsoumakas, E. Spyromitros-Xioufis, J. Vilcek and I. Vlahavas, "Mulan: A
       Java Library for Multi-Label Learning", JMLR 12:2411-2414, 2011.

    Examples
    --------
    >>> from sklearn_ssse.datasets import load_yeast
    >>> X, Y = load_yeast(subset="test", return_X_y=True)
    >>> X.shape, Y.shape
    ((917, 103), (917, 14))
    """
    splits = {"train": ("train",), "test": ("test",), "all": ("train", "test")}
    if not isinstance(subset, str) or subset not in splits:
        raise ValueError(f"subset must be 'train', 'test' or 'all', got {subset!r}")
    data_dir = resources.files(__package__) / "data"
    parts = []
    # as_file gives real paths even if the package is imported from a zip archive.
    with ExitStack() as stack:
        xml_path = stack.enter_context(resources.as_file(data_dir / "yeast.xml"))
        for split in splits[subset]:
            arff = stack.enter_context(resources.as_file(data_dir / f"yeast-{split}.arff.gz"))
            parts.append(load_mulan(arff, xml_path=xml_path))
    X = np.vstack([part.data for part in parts])
    Y = np.vstack([part.target for part in parts])
    if return_X_y:
        return X, Y
    descr = (data_dir / "README.md").read_text(encoding="utf-8")
    return Bunch(
        data=X,
        target=Y,
        feature_names=parts[0].feature_names,
        target_names=parts[0].target_names,
        DESCR=f"Subset: {subset} ({X.shape[0]} samples)\n\n{descr}",
    )
