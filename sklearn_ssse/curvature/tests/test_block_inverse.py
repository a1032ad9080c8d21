"""BlockFisherInverse against dense ``numpy.linalg.inv`` of the same matrices."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_ssse.curvature import (
    BlockFisherInverse,
    CurvatureError,
    SharedRowFactors,
    batch_average,
    sherman_morrison_inverse,
    weighted_gram,
)


def _dense_B(U, penalty, damping, m=None):
    m = U.shape[0] if m is None else m
    return (U.T @ U + np.diag(penalty)) / m + damping * np.eye(U.shape[1])


@st.composite
def problems(draw, max_blocks=3):
    n = draw(st.integers(8, 60))
    d = draw(st.integers(1, 12))
    n_blocks = draw(st.integers(1, max_blocks))
    seed = draw(st.integers(0, 2**32 - 1))
    damping = draw(st.sampled_from([0.0, 1e-3, 0.5]))
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.1, 3.0, size=n_blocks)
    factors = [rng.normal(size=(n, d)) * s for s in scales]
    penalty = np.r_[np.full(d - 1, rng.uniform(0.1, 2.0)), 0.0]
    return factors, penalty, damping, rng


def _rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


@settings(max_examples=40, deadline=None)
@given(problems())
def test_build_equals_dense_inverse(problem):
    factors, penalty, damping, _ = problem
    inv = BlockFisherInverse(damping=damping).fit(factors, penalty=penalty)
    for U, got in zip(factors, inv.inverse_dense()):
        expected = np.linalg.inv(_dense_B(U, penalty, damping))
        assert _rel(got, expected) < 1e-8


@settings(max_examples=40, deadline=None)
@given(problems(), st.integers(1, 9))
def test_recurrence_equals_dense_inverse(problem, chunk_size):
    factors, penalty, damping, _ = problem
    penalty = penalty + 0.05  # the recurrence starts from diag(P)/n + λI: make it definite
    inv = BlockFisherInverse(damping=damping, method="sherman-morrison", chunk_size=chunk_size).fit(
        factors, penalty=penalty
    )
    for U, got in zip(factors, inv.inverse_dense()):
        assert _rel(got, np.linalg.inv(_dense_B(U, penalty, damping))) < 1e-8


@settings(max_examples=30, deadline=None)
@given(problems(max_blocks=1), st.integers(2, 10))
def test_minibatch_recurrence_equals_dense_inverse(problem, batch_size):
    (U,), _, damping, _ = problem
    damping = max(damping, 1e-2)
    got = sherman_morrison_inverse(U, damping=damping, batch_size=batch_size, chunk_size=3)
    # Independent: average each consecutive group with a Python loop, then invert densely.
    groups = [U[i : i + batch_size].mean(axis=0) for i in range(0, len(U), batch_size)]
    G = np.array(groups)
    expected = np.linalg.inv(G.T @ G / len(G) + damping * np.eye(U.shape[1]))
    assert _rel(got, expected) < 1e-8
    inv = BlockFisherInverse(damping=damping, method="sherman-morrison", batch_size=batch_size)
    inv.fit([U])
    assert inv.n_samples_ == len(G)
    assert _rel(inv.inverse_dense()[0], expected) < 1e-8


def test_literal_rank_one_recurrence_matches_chunked():
    rng = np.random.default_rng(0)
    U = rng.normal(size=(300, 20))
    literal = sherman_morrison_inverse(U, damping=1e-2, chunk_size=1)
    chunked = sherman_morrison_inverse(U, damping=1e-2, chunk_size=64)
    np.testing.assert_allclose(literal, chunked, rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(problems(), st.integers(1, 6), st.integers(0, 6))
def test_downdate_then_update_equal_dense_inverse(problem, k_remove, k_add):
    factors, penalty, damping, rng = problem
    n, d = factors[0].shape
    k_remove = min(k_remove, n - d - 1)
    if k_remove < 1:
        return
    inv = BlockFisherInverse(damping=damping, max_pending_rank=4).fit(factors, penalty=penalty)
    removed = [U[:k_remove] for U in factors]
    inv.downdate(removed)
    assert inv.n_samples_ == n - k_remove
    for U, got in zip(factors, inv.inverse_dense()):
        expected = np.linalg.inv(_dense_B(U[k_remove:], penalty, damping))
        assert _rel(got, expected) < 1e-7
    added = [rng.normal(size=(k_add, d)) for _ in factors]
    inv.update(added)
    for U, A, got in zip(factors, added, inv.inverse_dense()):
        expected = np.linalg.inv(_dense_B(np.vstack([U[k_remove:], A]), penalty, damping))
        assert _rel(got, expected) < 1e-7


@settings(max_examples=30, deadline=None)
@given(problems(), st.integers(1, 5), st.integers(1, 4))
def test_solve_with_prepared_change_leaves_inverse_untouched(problem, k, n_rhs):
    factors, penalty, damping, rng = problem
    n, d = factors[0].shape
    k = min(k, n - d - 1)
    if k < 1:
        return
    inv = BlockFisherInverse(damping=damping).fit(factors, penalty=penalty)
    before = inv.inverse_dense()
    change = inv.prepare_change([U[:k] for U in factors])
    R = rng.normal(size=(len(factors), d, n_rhs))
    solved = inv.solve(R, change=change)
    for U, Rb, got in zip(factors, R, solved):
        expected = np.linalg.solve(_dense_B(U[k:], penalty, damping, m=n - k), Rb)
        assert _rel(got, expected) < 1e-7
    for a, b in zip(before, inv.inverse_dense()):
        np.testing.assert_array_equal(a, b)
    assert inv.n_samples_ == n


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fold_of_mixed_signs_matches_dense_inverse(dtype):
    # Removals and additions pending together give an indefinite capacitance: the fold's
    # two symmetric rank updates (one per sign) must reproduce the dense inverse.
    rng = np.random.default_rng(7)
    U = rng.normal(size=(120, 9))
    A = rng.normal(size=(3, 9))
    inv = BlockFisherInverse(max_pending_rank=6, dtype=dtype).fit([U], penalty=np.ones(9))
    inv.downdate([U[:4]])
    inv.update([A])  # rank 7 > 6: folded
    assert inv.pending_rank_ == [0]
    stored = inv.blocks_[0].inverse
    assert stored.dtype == dtype and stored.flags.c_contiguous
    np.testing.assert_array_equal(stored, stored.T)
    expected = np.linalg.inv(_dense_B(np.vstack([U[4:], A]), np.ones(9), 0.0))
    assert _rel(inv.inverse_dense()[0], expected) < (1e-12 if dtype == np.float64 else 1e-5)


def test_fold_preserves_matrix_and_clears_pending():
    rng = np.random.default_rng(1)
    U = rng.normal(size=(80, 6))
    for damping in (0.0, 0.2):
        inv = BlockFisherInverse(damping=damping, max_pending_rank=3).fit([U], penalty=np.ones(6))
        inv.downdate([U[:2]])
        assert inv.pending_rank_ == [2]
        inv.downdate([U[2:4]])  # rank 4 > 3: folded into the base
        assert inv.pending_rank_ == [0]
        expected = np.linalg.inv(_dense_B(U[4:], np.ones(6), damping))
        assert _rel(inv.inverse_dense()[0], expected) < 1e-10


def test_sparse_and_dense_factors_agree():
    rng = np.random.default_rng(2)
    U = rng.normal(size=(50, 7)) * (rng.random((50, 7)) < 0.4)
    dense = BlockFisherInverse().fit([U], penalty=np.ones(7))
    sparse = BlockFisherInverse().fit([sp.csr_matrix(U)], penalty=np.ones(7))
    np.testing.assert_allclose(dense.inverse_dense()[0], sparse.inverse_dense()[0], rtol=1e-12)
    dense.downdate([U[:3]])
    sparse.downdate([sp.csr_matrix(U[:3])])
    np.testing.assert_allclose(dense.inverse_dense()[0], sparse.inverse_dense()[0], rtol=1e-10)


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("sparse_input", [False, True])
def test_weighted_gram_matches_dense_formula(fit_intercept, sparse_input):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(301, 9)) * (rng.random((301, 9)) < 0.5)
    w = rng.random(301)
    Xt = np.hstack([X, np.ones((301, 1))]) if fit_intercept else X
    expected = Xt.T @ (w[:, None] * Xt)
    Xin = sp.csr_matrix(X) if sparse_input else X
    got = weighted_gram(Xin, w, fit_intercept=fit_intercept, chunk_rows=64)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got, got.T)


@pytest.mark.parametrize("density", [0.002, 0.3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weighted_gram_sparse_routes_match_dense_formula(density, dtype):
    # Very sparse wide rows take the sparse product, fuller ones are densified in chunks;
    # both must give the dense formula, and each density must take the route it claims.
    from sklearn_ssse.curvature._build import _sparse_product_is_cheaper

    rng = np.random.default_rng(5)
    X = sp.random(257, 400, density=density, format="csr", random_state=rng)
    w = rng.random(257)
    dense = np.hstack([X.toarray(), np.ones((257, 1))])
    expected = dense.T @ (w[:, None] * dense)
    assert _sparse_product_is_cheaper(X, 401) == (density < 0.01)
    got = weighted_gram(X, w, fit_intercept=True, dtype=dtype, chunk_rows=100)
    assert got.dtype == dtype and got.flags.c_contiguous
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * np.abs(expected).max())
    np.testing.assert_array_equal(got, got.T)


@pytest.mark.parametrize("sparse_input", [False, True])
def test_weighted_gram_writes_into_out(sparse_input):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(90, 6)) * (rng.random((90, 6)) < 0.5)
    w = rng.random(90)
    Xin = sp.csr_matrix(X) if sparse_input else X
    stack = np.full((2, 7, 7), np.nan)
    got = weighted_gram(Xin, w, fit_intercept=True, chunk_rows=32, out=stack[1])
    assert np.shares_memory(got, stack[1]) and np.isnan(stack[0]).all()
    Xt = np.hstack([X, np.ones((90, 1))])
    np.testing.assert_allclose(stack[1], Xt.T @ (w[:, None] * Xt), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(stack[1], stack[1].T)
    with pytest.raises(ValueError, match="C-contiguous float64 array of shape"):
        weighted_gram(X, w, fit_intercept=True, out=np.zeros((6, 6)))
    with pytest.raises(ValueError, match="C-contiguous"):
        weighted_gram(X, w, fit_intercept=True, out=np.zeros((7, 7), order="F")[:, :])


def test_float32_blocks_are_close_to_float64():
    rng = np.random.default_rng(4)
    U = rng.normal(size=(400, 30))
    f64 = BlockFisherInverse().fit([U], penalty=np.ones(30))
    f32 = BlockFisherInverse(dtype="float32").fit([U], penalty=np.ones(30))
    assert f32.nbytes * 2 == f64.nbytes
    r = rng.normal(size=(1, 30))
    np.testing.assert_allclose(f32.solve(r), f64.solve(r), rtol=1e-4)


def test_batch_average_keeps_last_partial_batch():
    U = np.arange(14.0).reshape(7, 2)
    np.testing.assert_allclose(batch_average(U, 3), [[2, 3], [8, 9], [12, 13]])


def test_errors_are_clear():
    rng = np.random.default_rng(5)
    U = rng.normal(size=(10, 4))
    with pytest.raises(CurvatureError, match="not positive definite"):
        BlockFisherInverse().fit([U[:2]])  # rank 2 < 4 without penalty or damping
    inv = BlockFisherInverse().fit([U], penalty=np.zeros(4))
    with pytest.raises(CurvatureError, match="singular or indefinite"):
        inv.prepare_change([U[:7]])  # 3 samples cannot determine 4 parameters
    with pytest.raises(ValueError, match="would leave none"):
        inv.prepare_change([U])
    with pytest.raises(ValueError, match="damping"):
        BlockFisherInverse(damping=-1).fit([U])
    with pytest.raises(ValueError, match="positive definite"):
        sherman_morrison_inverse(U, damping=0.0)
    with pytest.raises(ValueError, match="rows"):
        inv.solve([np.ones(3)])


# ------------------------------------------------------------------ shared rows, groups, threads
def _shared_problem(seed, n=70, d=6, n_blocks=3):
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, d))
    scales = rng.uniform(0.2, 1.5, size=(n, n_blocks))
    factors = [rows * scales[:, [b]] for b in range(n_blocks)]
    return rng, rows, scales, factors, np.r_[np.full(d - 1, 0.5), 0.0]


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(1, 12), min_size=1, max_size=14),
    st.sampled_from([0.0, 0.3]),
    st.sampled_from([None, 2]),
)
def test_shared_row_changes_equal_dense_inverse_over_many_requests(seed, sizes, damping, n_jobs):
    """Requests given as shared rows (one group per request, merged past eight, folded at
    the pending limit, run one block per thread with ``n_jobs``) equal the list of scaled
    factors and the dense inverse of the remaining rows, with right-hand sides solved in
    the same pass (requests of more than 8 rows skip the span test and write their
    columns straight into the product's input)."""
    rng, rows, scales, factors, penalty = _shared_problem(seed)
    n, d = rows.shape
    sizes = sizes[: max(1, sum(np.cumsum(sizes) <= n - d - 5))]
    shared = BlockFisherInverse(damping=damping, max_pending_rank=20, n_jobs=n_jobs)
    listed = BlockFisherInverse(damping=damping, max_pending_rank=20)
    shared.fit(factors, penalty=penalty)
    listed.fit(factors, penalty=penalty)
    start = 0
    for k in sizes:
        part = slice(start, start + k)
        rhs = [rng.normal(size=(d, 2)) for _ in factors]
        with_shared = shared.prepare_change(
            SharedRowFactors(rows[part], scales[part]), sign=-1, rhs=rhs
        )
        with_list = listed.prepare_change([U[part] for U in factors], sign=-1, rhs=rhs)
        for U, R, a, b in zip(factors, rhs, with_shared.solutions, with_list.solutions):
            expected = np.linalg.solve(_dense_B(U[start + k :], penalty, damping), R)
            assert _rel(a, expected) < 1e-8
            assert _rel(b, expected) < 1e-8
        shared.apply(with_shared)
        listed.apply(with_list)
        start += k
        assert shared.pending_rank_ == listed.pending_rank_
        groups = [len(blk.V) for blk in shared.blocks_]
        assert max(groups) <= 8
    for U, got in zip(factors, shared.inverse_dense()):
        assert _rel(got, np.linalg.inv(_dense_B(U[start:], penalty, damping))) < 1e-8
    if damping == 0:
        traces, rounding = shared.inverse_trace()
        for U, trace, error in zip(factors, traces, rounding):
            expected = np.trace(np.linalg.inv(_dense_B(U[start:], penalty, 0.0)))
            assert abs(trace - expected) <= 1e-9 * abs(expected) + error
        bounds, rounding = shared.inverse_norm_bound()
        for U, bound, error in zip(factors, bounds, rounding):
            largest = np.linalg.eigvalsh(np.linalg.inv(_dense_B(U[start:], penalty, 0.0)))[-1]
            assert bound + error >= largest * (1 - 1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.tuples(st.sampled_from([-1, 1]), st.integers(1, 5)), min_size=1, max_size=6),
    st.floats(0.2, 5.0),
    st.booleans(),
)
def test_the_norm_bound_holds_for_any_sequence_and_is_exact_for_a_scalar_base(
    seed, changes, scale, scalar_base
):
    """``inverse_norm_bound`` (``‖M₀⁻¹‖·λ_max(X)``, no pass over the block) is never below
    ``λ_max`` of the dense inverse after removals and joins in any order, also for a prepared
    change, and equals it when ``M₀`` is a multiple of the identity and the pending rank is
    below ``d`` (then ``‖M₀⁻¹‖`` is exact and ``M'⁻¹ = X/c``)."""
    rng = np.random.default_rng(seed)
    d, n = 5, 40
    if scalar_base:
        # M₀ = c·I exactly: n orthogonal rows of norm² c (a scaled identity per d rows).
        U = np.sqrt(scale) * np.vstack([np.eye(d)] * 1)
        penalty = np.zeros(d)
    else:
        U = rng.normal(size=(n, d)) * scale
        penalty = np.full(d, 0.5)
    inv = BlockFisherInverse().fit([U], penalty=penalty)
    M = U.T @ U + np.diag(penalty)
    count = U.shape[0]
    for sign, k in changes:
        if sign < 0:
            rows = 0.3 * rng.normal(size=(k, d)) / np.sqrt(d)
        else:
            rows = rng.normal(size=(k, d))
        M_new = M + sign * rows.T @ rows
        if np.linalg.eigvalsh(M_new)[0] <= 1e-3 * np.linalg.eigvalsh(M)[-1]:
            continue
        change = inv.prepare_change([rows], sign=sign, n_samples=0)
        prepared, _ = inv.inverse_norm_bound(change=change)
        inv.apply(change)
        M = M_new
        bound, error = inv.inverse_norm_bound()
        assert prepared[0] == pytest.approx(bound[0], rel=1e-12)
        largest = np.linalg.eigvalsh(np.linalg.inv(M / count))[-1]
        assert bound[0] + error[0] >= largest * (1 - 1e-12)
        if scalar_base and inv.pending_rank_[0] < d:
            # (X has the eigenvalue 1 off the pending columns' span while that is not ℝ^d)
            assert bound[0] == pytest.approx(largest, rel=1e-9)


def test_shared_rows_are_kept_once_for_all_blocks():
    _, rows, scales, factors, penalty = _shared_problem(0, n_blocks=4)
    inv = BlockFisherInverse().fit(factors, penalty=penalty)
    before = inv.nbytes
    inv.apply(inv.prepare_change(SharedRowFactors(rows[:5], scales[:5])))
    groups = [blk.V[0] for blk in inv.blocks_]
    assert all(g.rows is groups[0].rows for g in groups)
    # the rows once (5·d), a scale per block, Z per block (d·5) and small matrices
    d = rows.shape[1]
    assert inv.nbytes - before < 8 * (5 * d + 4 * (5 + d * 5 + 3 * 25 + 5))


def test_the_threaded_path_equals_the_sequential_one():
    """Blocks changed one per thread (with single-threaded BLAS) give what one thread gives,
    to round-off, and leave nothing behind: a second request still agrees."""
    rng = np.random.default_rng(4)
    d = 40
    factors = [rng.normal(size=(200, d)) for _ in range(5)]
    threaded = BlockFisherInverse(n_jobs=2).fit(factors, penalty=np.ones(d))
    sequential = BlockFisherInverse(n_jobs=1).fit(factors, penalty=np.ones(d))
    assert threaded._block_workers(5) == 2 and sequential._block_workers(5) == 1
    for part in (slice(0, 7), slice(7, 9)):
        rhs = [rng.normal(size=d) for _ in factors]
        a = threaded.prepare_change([U[part] for U in factors], rhs=rhs)
        b = sequential.prepare_change([U[part] for U in factors], rhs=rhs)
        for x, y in zip(a.solutions, b.solutions):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)
        threaded.apply(a)
        sequential.apply(b)
    R = [rng.normal(size=(d, 3)) for _ in factors]
    for x, y in zip(threaded.solve(R), sequential.solve(R)):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("old_format", [1, 2])
def test_blocks_saved_with_an_explicit_inverse_load(old_format):
    """Formats 1 and 2 stored the base inverse ``M₀⁻¹`` explicitly and ``Z = M₀⁻¹V`` (format
    1 as single arrays, format 2 in groups with ``ZᵀZ``): such a block loads into the
    triangular factor and its frame (``Z = TᵀV``) and solves as before."""
    from sklearn_ssse.curvature._block_inverse import _Block

    rng = np.random.default_rng(2)
    U = rng.normal(size=(60, 5))
    inv = BlockFisherInverse().fit([U], penalty=np.ones(5))
    inv.downdate([U[:3]])
    inv.downdate([U[3:5]])
    blk = inv.blocks_[0]
    P = np.linalg.inv(U.T @ U + np.eye(5))  # M₀⁻¹, independently
    V = U[:5].T
    Z = P @ V
    old_state = {
        "size": 5,
        "inverse": P,
        "eigvecs": None,
        "eigvals": None,
        "signs": -np.ones(5),
        "capacitance": -np.eye(5) + V.T @ Z,
    }
    if old_format == 1:
        old_state.update(V=V, Z=Z)
    else:
        old_state.update(V=(V[:, :3], V[:, 3:]), Z=(Z[:, :3], Z[:, 3:]), ZtZ=Z.T @ Z)
        old_state["base_trace"] = float(np.trace(P))
    loaded = _Block.__new__(_Block)
    loaded.__setstate__(old_state)
    assert loaded.rank == 5 and loaded.factor is not None
    np.testing.assert_allclose(loaded.inverse, P, rtol=1e-12)
    T = np.tril(loaded.factor) if loaded.lower else np.triu(loaded.factor)
    np.testing.assert_allclose(np.hstack(loaded.Z), T.T @ V, rtol=1e-12, atol=1e-14)
    restored = copy.deepcopy(inv)
    restored.blocks_ = [loaded]
    R = rng.normal(size=(5, 2))
    np.testing.assert_allclose(restored.solve([R])[0], inv.solve([R])[0], rtol=1e-12)
    expected = np.linalg.solve(_dense_B(U[5:], np.ones(5), 0.0), R)
    assert _rel(restored.solve([R])[0], expected) < 1e-10
    assert _rel(blk.inverse, P) < 1e-12


def test_shared_row_factors_validate_and_index():
    rows, scales = np.ones((3, 4)), np.arange(6.0).reshape(3, 2)
    factors = SharedRowFactors(rows, scales)
    assert len(factors) == 2
    np.testing.assert_array_equal(factors[1], rows * scales[:, [1]])
    assert [f.shape for f in factors] == [(3, 4), (3, 4)]
    with pytest.raises(ValueError, match="same k"):
        SharedRowFactors(rows, scales[:2])
    inv = BlockFisherInverse().fit([np.eye(4) * 3] * 2, penalty=np.ones(4))
    with pytest.raises(ValueError, match="NaN or infinity"):
        inv.prepare_change(SharedRowFactors(rows, np.full((3, 2), np.nan)))


def test_a_refused_block_in_the_threaded_path_refuses_the_change():
    """A change that one block cannot take raises the same CurvatureError from the threads,
    and leaves the inverse as it was."""
    rng = np.random.default_rng(5)
    factors = [rng.normal(size=(12, 4)) for _ in range(6)]
    factors[3] = np.vstack([np.eye(4)[:3].repeat(4, axis=0)[:11], np.eye(4)[3:]])
    inv = BlockFisherInverse(n_jobs=2).fit(factors, penalty=np.zeros(4))
    before = inv.inverse_dense()
    with pytest.raises(CurvatureError, match="block 3"):
        inv.prepare_change([U[-1:] for U in factors])
    for a, b in zip(before, inv.inverse_dense()):
        np.testing.assert_array_equal(a, b)


def test_shared_rows_are_not_the_callers_array():
    """The pending term keeps the rows: a later write into the caller's array must not
    change the stored curvature."""
    rng = np.random.default_rng(6)
    U = rng.normal(size=(40, 5))
    inv = BlockFisherInverse().fit([U, 2 * U], penalty=np.ones(5))
    rows, scales = U[:3].copy(), np.ones((3, 2))
    inv.apply(inv.prepare_change(SharedRowFactors(rows, scales)))
    single = BlockFisherInverse().fit([U], penalty=np.ones(5))
    one_scale = np.ones((3, 1))  # a column of a C-ordered (k, 1) array is contiguous
    single.apply(single.prepare_change(SharedRowFactors(rows, one_scale)))
    before = inv.inverse_dense() + single.inverse_dense()
    rows[...], scales[...], one_scale[...] = 7.0, 0.5, 0.5
    for a, b in zip(before, inv.inverse_dense() + single.inverse_dense()):
        np.testing.assert_array_equal(a, b)


def test_the_trace_rounding_covers_a_removal_that_nearly_empties_a_direction():
    """``inverse_trace``'s rounding bound holds against exact rational arithmetic on the same
    float64 rows when the capacitance is ill-conditioned (its error is amplified by
    ``‖cap⁻¹‖²``, not only the summation's)."""
    from fractions import Fraction

    def exact_trace_of_inverse(rows, m):
        d = rows.shape[1]
        R = [[Fraction(float(x)) for x in r] for r in rows]
        A = [
            [sum(r[i] * r[j] for r in R) / m for j in range(d)]
            + [Fraction(int(i == j)) for j in range(d)]
            for i in range(d)
        ]
        for c in range(d):  # Gauss-Jordan, exactly
            p = next(i for i in range(c, d) if A[i][c] != 0)
            A[c], A[p] = A[p], A[c]
            A[c] = [x / A[c][c] for x in A[c]]
            for i in range(d):
                if i != c and A[i][c] != 0:
                    f = A[i][c]
                    A[i] = [a - f * b for a, b in zip(A[i], A[c])]
        return float(sum(A[i][d + i] for i in range(d)))

    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(40):
        U = rng.normal(size=(12, 4))
        U[2:, 0] *= 10.0 ** rng.uniform(-6, -2)  # the removed rows carry direction 0
        inv = BlockFisherInverse().fit([U], penalty=np.zeros(4))
        try:
            change = inv.prepare_change([U[:2]])
        except CurvatureError:
            continue
        traces, rounding = inv.inverse_trace(change=change)
        assert abs(traces[0] - exact_trace_of_inverse(U[2:], 10)) <= rounding[0]
        checked += 1
    assert checked >= 20


def test_a_forked_child_runs_threaded_changes():
    """The standing thread pool does not survive ``fork``: a child starts its own instead of
    waiting for threads it does not have."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    rng = np.random.default_rng(8)
    factors = [rng.normal(size=(50, 6)) for _ in range(3)]
    inv = BlockFisherInverse(n_jobs=2).fit(factors, penalty=np.ones(6))
    R = [rng.normal(size=6) for _ in factors]
    expected = inv.solve(R)  # the parent's pool exists now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        result = pool.apply_async(inv.solve, (R,)).get(timeout=60)
    for a, b in zip(result, expected):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_overlapping_requests_restore_the_blas_threads():
    """Requests whose per-block threads overlap (two models in two threads) share one BLAS
    limit and leave the original thread counts behind, also when the first to start is the
    first to finish (nested limits would then restore each other's)."""
    import threading

    from threadpoolctl import threadpool_info, threadpool_limits

    from sklearn_ssse.curvature import _block_inverse

    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with _block_inverse._blas_threads(1):
            first_in.set()
            second_in.wait(timeout=10)
        first_out.set()

    def second():
        first_in.wait(timeout=10)
        with _block_inverse._blas_threads(1):
            second_in.set()
            first_out.wait(timeout=10)

    with threadpool_limits(limits=2, user_api="blas"):
        original = blas_threads()
        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        assert blas_threads() == original
    assert all(n == 2 for n in original)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 1100), st.sampled_from(["C", "F"]))
def test_inverse_statistics_of_a_triangle_equal_those_of_the_symmetric_matrix(seed, d, order):
    """Trace, 1-norm and equilibrated 1-norm from the upper triangle alone (the build reads
    them so) equal the dense formulas on the whole symmetric matrix, in either memory
    order and across row panels."""
    from sklearn_ssse.curvature._block_inverse import _inverse_statistics

    rng = np.random.default_rng(seed)
    d = min(d, 40) if seed % 4 else d  # mostly small, sometimes several panels
    A = rng.normal(size=(d, d))
    P = A + A.T
    root = rng.uniform(0.1, 3.0, size=d)
    expected = (
        np.trace(P),
        np.abs(P).sum(axis=0).max(),
        (np.abs(P) * root[:, None] * root[None, :]).sum(axis=0).max(),
    )
    upper = np.array(np.triu(P), order=order)
    for got in (
        _inverse_statistics(np.array(P, order=order), root),
        _inverse_statistics(upper, root, upper_only=True),
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_a_built_factor_keeps_nothing_of_the_gram_in_its_other_triangle():
    rng = np.random.default_rng(8)
    U = rng.normal(size=(50, 7))
    inv = BlockFisherInverse().fit([U], penalty=np.ones(7))
    blk = inv.blocks_[0]
    other = np.tril(blk.factor, -1) if not blk.lower else np.triu(blk.factor, 1)
    assert not np.any(other)
    assert _rel(blk.inverse, np.linalg.inv(U.T @ U + np.eye(7))) < 1e-12


@pytest.mark.parametrize(
    "dtype, M0, v",
    [
        (
            "float64",
            [
                [1.705175391890558e-05, -0.0047298439628981805],
                [-0.0047298439628981805, 1.3120300258279178],
            ],
            [-2.7458018395172494e-05, -9.898564823791462e-08],
        ),
        (
            "float32",
            [
                [9.462214469909668, -0.1335235834121704],
                [-0.1335235834121704, 0.0018862637225538492],
            ],
            [-2.0342199361249147e-05, -0.0014415595901559337],
        ),
    ],
)
def test_the_norm_and_trace_bounds_hold_for_a_near_singular_removal_from_an_ill_conditioned_base(
    dtype, M0, v
):
    """Found by review: one accepted removal that nearly empties the weakest direction of an
    ill-conditioned ``M₀`` (cond 1.7e9 and 4.6e6). The stored factor's round-off, which grows
    with cond(M₀), reaches the ``K×K`` matrices, and an allowance of ``O(u)`` gave bounds 0.61
    and 0.95 of the exact ``λ_max``; with the allowance scaled by cond(M₀) both bounds hold
    (or say there is none). The exact value comes from 80-digit arithmetic."""
    from decimal import Decimal, getcontext

    getcontext().prec = 80
    M0, v = np.array(M0), np.array(v)
    inv = BlockFisherInverse(dtype=dtype).fit_gram([M0.copy()], n_samples=100)
    inv.apply(inv.prepare_change([v[None, :]], sign=-1))
    a, b, c = (
        Decimal(float(M0[i, j])) - Decimal(float(v[i])) * Decimal(float(v[j]))
        for i, j in ((0, 0), (0, 1), (1, 1))
    )
    smallest = (a + c) / 2 - (((a - c) / 2) ** 2 + b**2).sqrt()
    exact = float(Decimal(99) / smallest)  # λ_max(B⁻¹) = m·λ_max(M⁻¹), m = 99
    bound, rounding = inv.inverse_norm_bound()
    assert bound[0] + rounding[0] >= exact
    trace, trace_rounding = inv.inverse_trace()
    assert trace[0] + trace_rounding[0] >= exact


def test_a_fold_that_fails_at_its_last_step_leaves_the_block_as_it_was(monkeypatch):
    """A fold computes the new factor and its statistics before it assigns any of them: a
    failure after the refactorization (here, memory for the pending columns' norms) keeps
    the pending term and the old factor together, so solves still equal the dense inverse."""
    from sklearn_ssse.curvature import _block_inverse

    rng = np.random.default_rng(11)
    U = rng.normal(size=(60, 5))
    inv = BlockFisherInverse(max_pending_rank=3).fit([U], penalty=np.ones(5))
    before = inv.blocks_[0].factor.copy()
    real_columns = _block_inverse._columns

    def columns(parts, d):
        if any(P is V for P in parts for V in inv.blocks_[0].V):
            raise MemoryError("no room for the pending columns")
        return real_columns(parts, d)

    monkeypatch.setattr(_block_inverse, "_columns", columns)
    inv.downdate([U[:4]])  # rank 4 > 3: apply tries to fold, which fails and is skipped
    monkeypatch.setattr(_block_inverse, "_columns", real_columns)
    blk = inv.blocks_[0]
    assert blk.rank == 4 and np.array_equal(blk.factor, before)
    expected = np.linalg.inv(_dense_B(U[4:], np.ones(5), 0.0))
    assert _rel(inv.inverse_dense()[0], expected) < 1e-10
