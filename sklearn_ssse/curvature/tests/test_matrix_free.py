"""Matrix-free inverse equals the dense one; blocks too large fail clearly."""

import copy

import numpy as np
import pytest

from sklearn_ssse import UnlearnableRidge
from sklearn_ssse.curvature import (
    BlockFisherInverse,
    CurvatureError,
    CurvatureMemoryError,
    MatrixFreeInverse,
    _build,
    check_curvature_memory,
    curvature_nbytes,
    weighted_gram,
)


def _relative(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.fixture
def factors():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((40, 60)), rng.standard_normal((40, 60)) * 2]


@pytest.mark.parametrize("penalty", [None, np.full(60, 0.5)])
def test_matrix_free_equals_dense(factors, penalty):
    dense = BlockFisherInverse(damping=0.1).fit(factors, penalty=penalty)
    free = MatrixFreeInverse(damping=0.1).fit(factors, penalty=penalty)
    R = np.random.default_rng(1).standard_normal((2, 60, 3))
    assert _relative(free.solve(R), dense.solve(R)) < 1e-10
    assert _relative(np.array(free.to_dense()), np.array(dense.to_dense())) < 1e-10
    # A downdate (leave-S-out) and its prepared solve, as forget uses them.
    W = [U[:5] for U in factors]
    change = free.prepare_change(W, sign=-1, rhs=list(R))
    dense_change = dense.prepare_change(W, sign=-1, rhs=list(R))
    assert _relative(np.array(change.solutions), np.array(dense_change.solutions)) < 1e-9
    before = free.solve(R)
    copy.copy(free).apply(change)  # a shallow copy leaves the original as it was
    assert np.array_equal(free.solve(R), before)
    free.apply(change)
    dense.apply(dense_change)
    assert free.n_samples_ == dense.n_samples_ == 35
    assert _relative(free.solve(R), dense.solve(R)) < 1e-9
    free.update(W)
    assert (
        _relative(
            np.array(free.to_dense()),
            np.array(BlockFisherInverse(damping=0.1).fit(factors, penalty=penalty).to_dense()),
        )
        < 1e-10
    )
    # Stores r·d numbers per block, not d².
    small = MatrixFreeInverse(damping=0.1).fit([U[:10] for U in factors])
    assert small.nbytes < curvature_nbytes(small.block_sizes_)


def test_matrix_free_needs_positive_diagonal_and_refuses_indefinite(factors):
    with pytest.raises(ValueError, match="damping"):
        MatrixFreeInverse().fit(factors)
    free = MatrixFreeInverse(damping=1e-12).fit([factors[0][:6]])
    with pytest.raises(CurvatureError):
        free.downdate([factors[0][:3] * 2])
    assert free.n_samples_ == 6


def test_block_too_large_raises_clear_error(monkeypatch):
    need = curvature_nbytes([4097] * 40)
    assert need == 40 * 4097**2 * 8
    with pytest.raises(CurvatureMemoryError, match="MatrixFreeInverse") as info:
        check_curvature_memory([4097] * 40, available=need // 2)
    assert isinstance(info.value, MemoryError)
    assert "float32" in str(info.value)
    check_curvature_memory([4097] * 40, np.float32, workspace_blocks=0, available=need // 2)
    # Through the public entry points, with the OS's figure replaced by a small one.
    monkeypatch.setattr(_build, "available_memory", lambda: 10_000)
    X = np.random.default_rng(0).standard_normal((50, 60))
    with pytest.raises(CurvatureMemoryError, match="matrix-free"):
        weighted_gram(X)
    with pytest.raises(CurvatureMemoryError):
        BlockFisherInverse().fit([X])
    with pytest.raises(CurvatureMemoryError):
        UnlearnableRidge().fit(X, X[:, 0])


def test_fit_gram_out_of_memory_is_explained():
    def grams():
        yield np.eye(3) * 2
        raise MemoryError("simulated")

    with pytest.raises(CurvatureMemoryError, match="after 1 curvature block"):
        BlockFisherInverse().fit_gram(grams(), n_samples=4)
