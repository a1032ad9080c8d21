"""Triangular products through BLAS pointers against numpy's dense products."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_ssse.curvature import _triangular
from sklearn_ssse.curvature._triangular import triangular_multiply


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 30),
    st.integers(0, 9),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["C", "F"]),
    st.sampled_from([np.float64, np.float32]),
)
def test_products_equal_the_dense_triangle(seed, d, k, lower, transpose, order, dtype):
    """Any layout of ``T`` (C or F order, either triangle; the other triangle holds
    garbage that must not be read), vectors and 1 to 9 columns (``?trmv`` per column or
    ``?trmm``), in both precisions."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(d, d)).astype(dtype)
    T = np.array(A, order=order)
    triangle = np.tril(A) if lower else np.triu(A)
    op = triangle.T if transpose else triangle
    X = rng.normal(size=(d,) if k == 0 else (d, k)).astype(dtype)
    X = np.asfortranarray(X)
    expected = op.astype(np.float64) @ X.astype(np.float64)
    out = triangular_multiply(T, lower, X.copy(order="F"), transpose=transpose)
    tolerance = 1e-12 if dtype == np.float64 else 1e-4
    scale = max(np.abs(np.abs(op) @ np.abs(X.astype(np.float64))).max(), 1e-300)
    assert np.abs(out - expected).max() <= tolerance * scale


def test_the_fallback_without_blas_pointers_gives_the_same_products(monkeypatch):
    rng = np.random.default_rng(3)
    T = np.asfortranarray(np.tril(rng.normal(size=(20, 20))))
    X = np.asfortranarray(rng.normal(size=(20, 6)))
    direct = triangular_multiply(T, True, X.copy(order="F"), transpose=True)
    monkeypatch.setattr(_triangular, "_routines", lambda dtype: None)
    fallback = triangular_multiply(T, True, X.copy(order="F"), transpose=True)
    np.testing.assert_allclose(fallback, direct, rtol=1e-13)
    np.testing.assert_allclose(fallback, T.T @ X, rtol=1e-12)
    vector = triangular_multiply(T, True, X[:, 0].copy())
    np.testing.assert_allclose(vector, T @ X[:, 0], rtol=1e-12)


def test_products_in_threads_are_each_correct():
    """Calls from several threads at once (the GIL is released) do not mix their
    arguments."""
    rng = np.random.default_rng(4)
    factors = [np.asfortranarray(np.triu(rng.normal(size=(300, 300)))) for _ in range(8)]
    inputs = [np.asfortranarray(rng.normal(size=(300, 5 + j))) for j in range(8)]

    def run(j):
        return triangular_multiply(factors[j], False, inputs[j].copy(order="F"))

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(8)))
    for T, X, got in zip(factors, inputs, results):
        np.testing.assert_allclose(got, T @ X, rtol=1e-11, atol=1e-11)


def test_wrong_inputs_are_refused():
    T = np.eye(4)
    with pytest.raises(ValueError, match="dtype"):
        triangular_multiply(T, True, np.ones((4, 2), dtype=np.float32, order="F"))
    with pytest.raises(ValueError, match="Fortran"):
        triangular_multiply(T, True, np.ones((4, 5), order="C"))
    with pytest.raises(ValueError, match="contiguous"):
        triangular_multiply(np.eye(8)[::2, ::2], True, np.ones((4, 2), order="F"))


def test_inputs_that_would_let_blas_leave_the_buffers_are_refused():
    """BLAS trusts the shapes it is given: a non-square or 1-D factor, a 3-D or read-only
    right-hand side would be read or written past their buffers (found by review)."""
    X = np.ones((6, 2), order="F")
    with pytest.raises(ValueError, match="square"):
        triangular_multiply(np.ones(36), True, X)
    with pytest.raises(ValueError, match="square"):
        triangular_multiply(np.ones((6, 2), order="F"), True, X)
    with pytest.raises(ValueError, match=r"\(6, k\)"):
        triangular_multiply(np.eye(6), True, np.ones((6, 2, 3), order="F"))
    frozen = np.ones((6, 2), order="F")
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        triangular_multiply(np.eye(6), True, frozen)


def test_a_loaded_block_with_a_wrong_factor_is_refused_and_solve_checks_dimensions():
    import pickle

    from sklearn_ssse.curvature import BlockFisherInverse

    rng = np.random.default_rng(5)
    U = rng.normal(size=(40, 6))
    inv = BlockFisherInverse().fit([U], penalty=np.ones(6))
    state = dict(inv.blocks_[0].__dict__)
    state["factor"] = np.ones((6, 1))
    broken = type(inv.blocks_[0]).__new__(type(inv.blocks_[0]))
    with pytest.raises(ValueError, match="factor must be a contiguous float matrix"):
        broken.__setstate__(state)
    assert pickle.loads(pickle.dumps(inv)).solve([np.ones(6)])[0].shape == (6,)
    with pytest.raises(ValueError, match=r"must be \(d,\) or \(d, r\)"):
        inv.solve(np.ones((1, 6, 2, 3)))
    with pytest.raises(ValueError, match=r"must be \(d,\) or \(d, r\)"):
        inv.prepare_change([U[:2]], rhs=[np.ones((6, 2, 2))])
