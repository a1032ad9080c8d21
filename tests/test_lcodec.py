"""CODEC / FOCI against Azadkia & Chatterjee's definitions, and L-CODEC unit selection."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")

from sklearn_ssse.torch import NetworkEraser, codec, foci, lcodec_select  # noqa: E402

torch.set_num_threads(1)


def brute_force_codec(y, Z, X=None):
    """T_n(Y, Z | X) written out as in Azadkia & Chatterjee (2021), eq. (2.1)-(2.2).

    With continuous data (no ties) nearest neighbours are unique, so this is exact.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    Z = np.asarray(Z, dtype=float).reshape(n, -1)
    R = np.array([np.sum(y <= y[i]) for i in range(n)])  # R_i = #{j: Y_j <= Y_i}
    L = np.array([np.sum(y >= y[i]) for i in range(n)])  # L_i = #{j: Y_j >= Y_i}

    def nearest(points):
        d = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        return d.argmin(axis=1)

    if X is None:
        M = nearest(Z)
        num = sum(n * min(R[i], R[M[i]]) - L[i] ** 2 for i in range(n))
        den = sum(L[i] * (n - L[i]) for i in range(n))
        return num / den
    X = np.asarray(X, dtype=float).reshape(n, -1)
    N, M = nearest(X), nearest(np.hstack([X, Z]))
    num = sum(min(R[i], R[M[i]]) - min(R[i], R[N[i]]) for i in range(n))
    den = sum(R[i] - min(R[i], R[N[i]]) for i in range(n))
    return num / den


def test_codec_equals_the_definition_on_continuous_data():
    rng = np.random.default_rng(0)
    X, Z = rng.normal(size=(60, 2)), rng.normal(size=(60, 2))
    y = X[:, 0] + np.sin(Z[:, 1]) + 0.3 * rng.normal(size=60)
    assert_allclose(codec(y, Z), brute_force_codec(y, Z), rtol=1e-12)
    assert_allclose(codec(y, Z[:, 1]), brute_force_codec(y, Z[:, 1]), rtol=1e-12)
    assert_allclose(codec(y, Z, X), brute_force_codec(y, Z, X), rtol=1e-12)


def test_codec_limits_independence_and_functional_dependence():
    rng = np.random.default_rng(1)
    n = 2000
    x, z, w = rng.uniform(size=(3, n))
    # Y a measurable function of Z: T -> 1 (non-monotone, so not a correlation).
    assert codec(np.sin(6 * z), z) > 0.95
    # Y independent of Z: T -> 0.
    assert abs(codec(x, z)) < 0.05
    # Y depends on X and noise only: Z adds nothing given X. (If Y were a function of X
    # alone, T(Y, Z | X) would be undefined: its denominator tends to 0.)
    assert abs(codec(np.cos(4 * x) + w, z, x)) < 0.1
    # Y = (X + Z) mod 1: Z alone says nothing, given X it says everything.
    y = np.mod(x + z, 1.0)
    assert abs(codec(y, z)) < 0.05
    assert codec(y, z, x) > 0.9
    # Conditioning on an irrelevant variable does not hide the dependence.
    assert codec(np.sin(6 * z), z, x) > 0.85


def test_codec_counts_ties_in_y_as_in_the_definition():
    rng = np.random.default_rng(2)
    z = rng.normal(size=50)
    y = (z > 0).astype(float)  # many ties in Y
    assert_allclose(codec(y, z), brute_force_codec(y, z), rtol=1e-12)
    assert codec(np.zeros(10), z[:10]) == 0.0  # constant Y: defined as 0


def test_foci_finds_the_markov_blanket_and_stops():
    rng = np.random.default_rng(3)
    n = 1000
    Z = rng.uniform(size=(n, 6))
    y = Z[:, 2] * Z[:, 4] + np.mod(Z[:, 2] + Z[:, 4], 1.0)
    Z = np.hstack([Z, Z[:, [0]] + 0.01 * rng.normal(size=(n, 1))])  # a near-copy of noise
    selected, scores = foci(y, Z)
    assert sorted(selected) == [2, 4]
    assert all(s > 0 for s in scores)
    assert foci(y, Z, max_features=1)[0] == selected[:1]


class TwoLayer(torch.nn.Module):
    """A hidden layer of 6 units of which only unit 2 reaches the output."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.hidden = torch.nn.Linear(4, 6)
        self.out = torch.nn.Linear(6, 3)
        with torch.no_grad():
            self.out.weight.zero_()
            self.out.weight[:, 2] = torch.tensor([1.5, -1.0, 0.5])

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))


def test_lcodec_selects_the_unit_that_carries_the_loss():
    net = TwoLayer().double()
    X = torch.randn(1, 4, dtype=torch.float64)
    y = torch.tensor([1])
    eraser = NetworkEraser(net, torch.nn.CrossEntropyLoss(), keep_gradients=True)
    selection = lcodec_select(
        eraser, X, y, n_perturbations=200, noise=0.5, layers=["hidden"], random_state=0
    )
    assert selection.n_units == 6
    assert selection.units[0] == ("hidden", 2)
    assert selection.scores[0] > 0.9
    # The unit's parameters: row 2 of hidden.weight (4 values) and hidden.bias[2].
    expected = np.r_[np.arange(8, 12), 24 + 2]
    first = eraser.unit_parameter_indices(selection.units[:1])
    assert_allclose(first, expected)
    assert set(expected) <= set(selection.parameter_indices)


def test_lcodec_restricted_step_on_a_small_cnn():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(3 * 5 * 5, 4),
    ).double()
    g = torch.Generator().manual_seed(1)
    X = torch.randn(40, 1, 5, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (40,), generator=g)
    eraser = NetworkEraser(net, torch.nn.CrossEntropyLoss(), damping=1e-2, keep_gradients=True)
    eraser.fit(X, y)
    selection = lcodec_select(eraser, X[:5], y[:5], n_perturbations=60, max_units=3)
    assert 1 <= len(selection.units) <= 3
    assert selection.n_units == 3 + 4
    assert len(selection.scores) == len(selection.units)
    step = eraser.forget_step(X[:5], y[:5], subset=selection.parameter_indices)
    assert step.n_params_touched == len(selection.parameter_indices)
    outside = np.setdiff1d(np.arange(eraser.n_params_), selection.parameter_indices)
    assert np.all(step.direction[outside] == 0)
    # Same request, same seed: same selection.
    again = lcodec_select(eraser, X[:5], y[:5], n_perturbations=60, max_units=3)
    assert again.units == selection.units
    with pytest.raises(ValueError, match="no layer"):
        lcodec_select(eraser, X[:5], y[:5], layers=["missing"])
