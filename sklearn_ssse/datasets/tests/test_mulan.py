import gzip
import hashlib
import os
import re
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.io import arff

from sklearn_ssse.datasets import load_mulan, load_yeast

# The shared real data lives beside the repository root, not inside the package.
# $SKLEARN_SSSE_SHARED_DATA first, then ../shared/data beside the checkout, then the
# workplace's fixed location (a clean clone elsewhere, as CI makes, still finds it).
_CANDIDATES = [
    os.environ.get("SKLEARN_SSSE_SHARED_DATA", ""),
    Path(__file__).resolve().parents[3].parent / "shared" / "data",
    "/work/shared/data",
]
SHARED_DATA = next((Path(c) for c in _CANDIDATES if c and Path(c).is_dir()), Path(_CANDIDATES[1]))

# (name, n_train, n_test, n_features, n_labels, sparse file) from the shared README table.
MULAN = [
    ("yeast", 1500, 917, 103, 14, False),
    ("scene", 1211, 1196, 294, 6, False),
    ("emotions", 391, 202, 72, 6, False),
    ("enron", 1123, 579, 1001, 53, True),
]
DENSE = [name for name, *_, is_sparse in MULAN if not is_sparse]


def _shared_file(name, split):
    path = SHARED_DATA / f"mulan_{name}" / f"{name}-{split}.arff"
    if not path.is_file():
        pytest.skip(f"shared data file {path} not available")
    return path


def _write_arff(path, X, Y, *, layout="dense", header_extra=""):
    """Write features X and 0/1 labels Y as a Mulan ARFF file (dense, sparse or mixed)."""
    n_features, n_labels = X.shape[1], Y.shape[1]
    lines = ["@relation test", header_extra]
    lines += [f"@attribute f{j} numeric" for j in range(n_features)]
    lines += [f"@attribute y{j} {{0,1}}" for j in range(n_labels)]
    lines.append("@data")
    for i, row in enumerate(np.hstack([X, Y.astype(np.float64)])):
        texts = [repr(float(v)) if j < n_features else str(int(v)) for j, v in enumerate(row)]
        if layout == "sparse" or (layout == "mixed" and i % 2):
            entries = [
                f"{j} {t}" for j, (v, t) in enumerate(zip(row, texts, strict=True)) if v != 0
            ]
            lines.append("{" + ",".join(entries) + "}")
        else:
            lines.append(",".join(texts))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize(
    ("name", "n_train", "n_test", "n_features", "n_labels", "is_sparse"), MULAN
)
def test_mulan_shapes(name, split, n_train, n_test, n_features, n_labels, is_sparse):
    bunch = load_mulan(_shared_file(name, split))
    n_samples = n_train if split == "train" else n_test
    assert bunch.data.shape == (n_samples, n_features)
    assert bunch.target.shape == (n_samples, n_labels)
    assert bunch.data.dtype == np.float64
    assert bunch.target.dtype == np.int64
    assert sp.issparse(bunch.data) == is_sparse
    if is_sparse:
        assert isinstance(bunch.data, sp.csr_matrix)
    assert set(np.unique(bunch.target)) <= {0, 1}
    assert len(bunch.feature_names) == n_features
    assert len(bunch.target_names) == n_labels
    assert name in bunch.DESCR or f"{name}-{split}" in bunch.DESCR


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("name", DENSE)
def test_dense_files_match_scipy_loadarff(name, split):
    path = _shared_file(name, split)
    bunch = load_mulan(path)
    records, meta = arff.loadarff(path)
    names = meta.names()
    n_features = bunch.data.shape[1]
    assert bunch.feature_names + bunch.target_names == names
    expected_X = np.column_stack([records[c].astype(np.float64) for c in names[:n_features]])
    expected_Y = np.column_stack([records[c].astype(np.int64) for c in names[n_features:]])
    np.testing.assert_array_equal(bunch.data, expected_X)
    np.testing.assert_array_equal(bunch.target, expected_Y)


@pytest.mark.parametrize("split", ["train", "test"])
def test_enron_sparse_binary(split):
    path = _shared_file("enron", split)
    X, Y = load_mulan(path, return_X_y=True)
    assert X.nnz > 0
    assert set(np.unique(X.data)) == {1.0}  # canonical CSR: no explicit zeros stored
    assert X.has_sorted_indices
    assert Y.sum() > 0
    X_dense, Y_dense = load_mulan(path, sparse=False, return_X_y=True)
    assert isinstance(X_dense, np.ndarray)
    assert set(np.unique(X_dense)) == {0.0, 1.0}
    np.testing.assert_array_equal(X.toarray(), X_dense)
    np.testing.assert_array_equal(Y, Y_dense)


def test_label_order_follows_arff_not_xml():
    path = _shared_file("yeast", "train")
    xml_names = re.findall(r'<label name="([^"]+)"', path.with_name("yeast.xml").read_text())
    bunch = load_mulan(path)
    assert bunch.target_names == [f"Class{k}" for k in range(1, 15)]
    assert sorted(xml_names) == sorted(bunch.target_names)
    assert xml_names != bunch.target_names


def test_yeast_train_label_frequencies():
    Y = load_yeast(return_X_y=True)[1]
    assert set(np.unique(Y)) == {0, 1}
    # Positives per label (ARFF order Class1..Class14) out of 1500, i.e. fractions
    # .317 .430 .399 .355 .294 .252 .174 .193 .065 .107 .132 .752 .744 .014.
    counts = [476, 645, 598, 532, 441, 378, 261, 289, 98, 161, 198, 1128, 1116, 21]
    np.testing.assert_array_equal(Y.sum(axis=0), counts)
    np.testing.assert_allclose(Y.mean(axis=0), np.array(counts) / 1500)


@pytest.mark.parametrize("subset", ["train", "test", "all"])
def test_load_yeast_subsets(subset):
    bunch = load_yeast(subset=subset)
    n_samples = {"train": 1500, "test": 917, "all": 2417}[subset]
    assert bunch.data.shape == (n_samples, 103)
    assert bunch.target.shape == (n_samples, 14)
    assert bunch.feature_names == [f"Att{k}" for k in range(1, 104)]
    assert "Elisseeff" in bunch.DESCR
    X, Y = load_yeast(subset=subset, return_X_y=True)
    np.testing.assert_array_equal(X, bunch.data)
    np.testing.assert_array_equal(Y, bunch.target)


def test_load_yeast_all_is_train_then_test():
    X_train, Y_train = load_yeast(subset="train", return_X_y=True)
    X_test, Y_test = load_yeast(subset="test", return_X_y=True)
    X_all, Y_all = load_yeast(subset="all", return_X_y=True)
    np.testing.assert_array_equal(X_all, np.vstack([X_train, X_test]))
    np.testing.assert_array_equal(Y_all, np.vstack([Y_train, Y_test]))


@pytest.mark.parametrize("split", ["train", "test"])
def test_bundled_yeast_matches_shared_copy(split):
    X, Y = load_mulan(_shared_file("yeast", split), return_X_y=True)
    X_bundled, Y_bundled = load_yeast(subset=split, return_X_y=True)
    np.testing.assert_array_equal(X, X_bundled)
    np.testing.assert_array_equal(Y, Y_bundled)


def test_load_yeast_bad_subset():
    with pytest.raises(ValueError, match="subset must be"):
        load_yeast(subset="validation")


def _recorded_sha256():
    """sha256 per file name from the bundled SOURCES.txt table."""
    text = (resources.files("sklearn_ssse.datasets") / "data" / "SOURCES.txt").read_text()
    return dict(re.findall(r"^(\S+)\t.*\t([0-9a-f]{64})$", text, flags=re.MULTILINE))


@pytest.mark.parametrize("name", ["yeast-train.arff", "yeast-test.arff", "yeast.xml"])
def test_bundled_files_hash_to_recorded_sha256(name):
    recorded = _recorded_sha256()
    if name not in recorded:
        pytest.skip(f"no sha256 recorded for {name} in SOURCES.txt")
    data_dir = resources.files("sklearn_ssse.datasets") / "data"
    bundled = data_dir / (name + ".gz" if name.endswith(".arff") else name)
    raw = bundled.read_bytes()
    if name.endswith(".arff"):
        raw = gzip.decompress(raw)
    assert hashlib.sha256(raw).hexdigest() == recorded[name]
    # The README must carry the same checksums as the provenance record.
    assert recorded[name] in (data_dir / "README.md").read_text()


def test_gzip_and_plain_give_identical_results(tmp_path):
    source = _shared_file("yeast", "test")
    plain = tmp_path / "yeast-test.arff"
    plain.write_bytes(source.read_bytes())
    packed = tmp_path / "yeast-test.arff.gz"
    packed.write_bytes(gzip.compress(source.read_bytes()))
    # A compressed file is recognised by its content, not its name.
    disguised = tmp_path / "disguised.arff"
    disguised.write_bytes(packed.read_bytes())
    a = load_mulan(plain, n_labels=14)
    for other in (packed, disguised):
        b = load_mulan(other, n_labels=14)
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(a.target, b.target)
        assert a.feature_names == b.feature_names
        assert a.target_names == b.target_names


def test_default_xml_path_strips_split_and_gz_suffixes(tmp_path):
    X = np.array([[1.5, 0.0], [0.0, -2.0]])
    Y = np.array([[1, 0, 1], [0, 1, 1]])
    (tmp_path / "toy.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<labels xmlns="http://mulan.sourceforge.net/labels">\n'
        '<label name="y0"></label><label name="y1"></label><label name="y2"></label>\n'
        "</labels>\n"
    )
    plain = _write_arff(tmp_path / "toy-train.arff", X, Y)
    packed = tmp_path / "toy-test.arff.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed, _write_arff(tmp_path / "toy.arff", X, Y)):
        bunch = load_mulan(path)
        np.testing.assert_array_equal(bunch.data, X)
        np.testing.assert_array_equal(bunch.target, Y)
        assert bunch.target_names == ["y0", "y1", "y2"]


def test_sparse_file_equals_dense_twin(tmp_path):
    X = np.array([[0.0, 2.5, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 1e-300, 0.0]])
    Y = np.array([[1, 0], [0, 0], [1, 1]])
    dense = load_mulan(_write_arff(tmp_path / "d.arff", X, Y), n_labels=2)
    sparse = load_mulan(_write_arff(tmp_path / "s.arff", X, Y, layout="sparse"), n_labels=2)
    mixed = load_mulan(_write_arff(tmp_path / "m.arff", X, Y, layout="mixed"), n_labels=2)
    assert isinstance(dense.data, np.ndarray)
    assert isinstance(sparse.data, sp.csr_matrix)
    assert isinstance(mixed.data, sp.csr_matrix)
    for bunch in (dense, sparse, mixed):
        got = bunch.data.toarray() if sp.issparse(bunch.data) else bunch.data
        np.testing.assert_array_equal(got, X)
        np.testing.assert_array_equal(bunch.target, Y)
        assert bunch.feature_names == ["f0", "f1", "f2", "f3"]
    # Forcing the output layout works both ways.
    forced_sparse = load_mulan(tmp_path / "d.arff", n_labels=2, sparse=True).data
    assert isinstance(forced_sparse, sp.csr_matrix)
    assert forced_sparse.nnz == np.count_nonzero(X)
    np.testing.assert_array_equal(forced_sparse.toarray(), X)
    forced_dense = load_mulan(tmp_path / "s.arff", n_labels=2, sparse=False).data
    assert isinstance(forced_dense, np.ndarray)
    np.testing.assert_array_equal(forced_dense, X)


def test_header_syntax_variants(tmp_path):
    path = tmp_path / "variants.arff"
    path.write_text(
        "% leading comment\n"
        "@RELATION 'my relation'\n"
        "\n"
        "@ATTRIBUTE 'feature one' NUMERIC  % trailing comment\n"
        '@attribute "feature, two" real\n'
        "@attribute f3 integer\n"
        "@attribute colour {'red', green, 'dark blue'}\n"
        "@attribute 'it\\'s a label' {0, 1}\n"
        "@attribute lab2{0,1}\n"
        "@data\n"
        "% a comment between rows\n"
        "1.5, -2, 3, green, 1, 0\n"
        "\n"
        "{0 4, 3 'dark blue', 5 1}   % sparse row with a comment\n"
        "{}\n"
        "0,0,0,'red',0,0\n"
    )
    bunch = load_mulan(path, n_labels=2)
    assert bunch.feature_names == ["feature one", "feature, two", "f3", "colour"]
    assert bunch.target_names == ["it's a label", "lab2"]
    # Non-numeric nominal values are coded by declaration index, as Weka does.
    expected_X = [[1.5, -2, 3, 1], [4, 0, 0, 2], [0, 0, 0, 0], [0, 0, 0, 0]]
    np.testing.assert_array_equal(bunch.data.toarray(), expected_X)
    np.testing.assert_array_equal(bunch.target, [[1, 0], [0, 1], [0, 0], [0, 0]])
    assert "my relation" in bunch.DESCR


HEADER = "@relation bad\n@attribute a numeric\n@attribute b numeric\n@attribute y {0,1}\n@data\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1,2,0\n1,?,1\n", r"line 7: missing value '\?' for attribute 'b'"),
        ("1,2,0\n{0 1, 1 ?}\n", r"line 7: missing value '\?' for attribute 'b'"),
        ("1,2,0\n1,2\n", r"line 7: expected 3 comma-separated values .* found 2"),
        ("1,2,0,4\n", r"line 6: expected 3 comma-separated values .* found 4"),
        ("1,abc,0\n", r"line 6: invalid value 'abc' for attribute 'b'"),
        ("1,2,2\n", r"line 6: invalid value '2' for attribute 'y'"),
        ("{0 1, 5 1}\n", r"line 6: sparse index 5 out of range for 3 attributes"),
        ("{0 1, 0 2}\n", r"line 6: sparse row repeats an attribute index"),
        ("{0 1, 2}\n", r"line 6: sparse entry '2' is not '<index> <value>'"),
        ("{0 1, 1 2\n", r"line 6: sparse row must end with '}'"),
        ("{0 1, 1 2}, {3}\n", r"line 6: Weka instance weights .* are not supported"),
        ("1,nan,0\n", r"line 6: non-finite value"),
        ("1,'2,0\n", r"line 6: unterminated ' quote"),
    ],
)
def test_malformed_rows_raise_with_line(tmp_path, body, message):
    path = tmp_path / "bad.arff"
    path.write_text(HEADER + body)
    with pytest.raises(ValueError, match=message):
        load_mulan(path, n_labels=1)


def test_numeric_label_must_be_binary(tmp_path):
    path = tmp_path / "bad.arff"
    path.write_text("@relation r\n@attribute a numeric\n@attribute y numeric\n@data\n1,0\n2,3\n")
    with pytest.raises(ValueError, match=r"line 6: label 'y' has value 3; labels must be 0 or 1"):
        load_mulan(path, n_labels=1)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("@relation r\n@attribute a numeric\n", "no @data section"),
        ("@relation r\n@data\n", r"line 2: @data before any @attribute"),
        ("@relation r\n@attribute s string\n@data\n", r"line 2: .*unsupported type 'string'"),
        ("@relation r\n@attribute d date 'yyyy'\n@data\n", r"unsupported type 'date'"),
        ("@relation r\n@attribute a numeric\nfoo\n@data\n", r"line 3: unexpected header"),
    ],
)
def test_malformed_header_raises(tmp_path, header, message):
    path = tmp_path / "bad.arff"
    path.write_text(header)
    with pytest.raises(ValueError, match=message):
        load_mulan(path, n_labels=1)


def test_unknown_n_labels_raises(tmp_path):
    path = tmp_path / "orphan-train.arff"
    path.write_text(HEADER + "1,2,0\n")
    with pytest.raises(ValueError, match=r"pass n_labels=.*orphan\.xml"):
        load_mulan(path)


@pytest.mark.parametrize(
    ("n_labels", "message"),
    [(0, "must leave at least one feature"), (3, "must leave"), (1.5, "must be an integer")],
)
def test_invalid_n_labels_raises(tmp_path, n_labels, message):
    path = tmp_path / "x.arff"
    path.write_text(HEADER + "1,2,0\n")
    with pytest.raises(ValueError, match=message):
        load_mulan(path, n_labels=n_labels)


def test_xml_header_checks(tmp_path):
    path = tmp_path / "x.arff"
    path.write_text(HEADER + "1,2,1\n")
    xml = tmp_path / "other.xml"
    xml.write_text('<labels xmlns="http://mulan.sourceforge.net/labels"><label name="y"/></labels>')
    assert load_mulan(path, xml_path=xml).target.tolist() == [[1]]
    with pytest.raises(ValueError, match="disagrees with the 1 labels"):
        load_mulan(path, n_labels=2, xml_path=xml)
    xml.write_text('<labels><label name="zz"/></labels>')
    with pytest.warns(UserWarning, match="do not match"):
        load_mulan(path, xml_path=xml)
    xml.write_text("<labels></labels>")
    with pytest.raises(ValueError, match="no <label> elements"):
        load_mulan(path, xml_path=xml)
    xml.write_text("<labels><label>")
    with pytest.raises(ValueError, match="invalid Mulan XML"):
        load_mulan(path, xml_path=xml)


@pytest.mark.parametrize("sparse", ["yes", 1, None])
def test_invalid_sparse_argument(tmp_path, sparse):
    path = tmp_path / "x.arff"
    path.write_text(HEADER + "1,2,0\n")
    with pytest.raises(ValueError, match="sparse must be"):
        load_mulan(path, n_labels=1, sparse=sparse)


_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def _multilabel_data(draw):
    n_samples = draw(st.integers(0, 6))
    n_features = draw(st.integers(1, 5))
    n_labels = draw(st.integers(1, 4))
    # Zeros are drawn often so that sparse rows actually omit entries.
    X = draw(arrays(np.float64, (n_samples, n_features), elements=st.one_of(st.just(0.0), _finite)))
    Y = draw(arrays(np.int64, (n_samples, n_labels), elements=st.integers(0, 1)))
    return X, Y


@settings(max_examples=60, deadline=None)
@given(data=_multilabel_data())
def test_roundtrip_dense_and_sparse_arff(data):
    X, Y = data
    # Hypothesis forbids function-scoped fixtures such as tmp_path in @given tests.
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ("dense", "sparse", "mixed"):
            path = _write_arff(Path(tmp) / f"{layout}.arff", X, Y, layout=layout)
            X_got, Y_got = load_mulan(path, n_labels=Y.shape[1], return_X_y=True)
            # "auto" goes sparse as soon as one row is written in sparse form.
            has_sparse_row = {"dense": False, "sparse": len(X) >= 1, "mixed": len(X) >= 2}
            assert sp.issparse(X_got) == has_sparse_row[layout]
            X_got = X_got.toarray() if sp.issparse(X_got) else X_got
            assert X_got.shape == X.shape
            assert Y_got.shape == Y.shape
            np.testing.assert_array_equal(X_got, X)
            np.testing.assert_array_equal(Y_got, Y)
