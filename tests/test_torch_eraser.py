"""SSSE for PyTorch networks: gradients, block inverses, and the linear-model check."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")

from sklearn_ssse import UnlearnableLogisticRegression  # noqa: E402
from sklearn_ssse.torch import MatrixFreeFisherInverse, NetworkEraser  # noqa: E402

torch.set_num_threads(1)


class TinyCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 3, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(3)
        self.fc = torch.nn.Linear(3 * 4 * 4, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def tiny_data(n=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, 4, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (n,), generator=g)
    return X, y


def tiny_net(seed=0):
    torch.manual_seed(seed)
    net = TinyCNN().double()
    # Non-trivial running statistics, so eval-mode batch-norm matters.
    net.train()
    with torch.no_grad():
        net(tiny_data(64, seed=5)[0])
    return net


def test_per_sample_gradients_match_autograd_one_at_a_time():
    net, (X, y) = tiny_net(), tiny_data(7)
    loss_fn = torch.nn.CrossEntropyLoss()
    eraser = NetworkEraser(net, loss_fn, grad_batch_size=3)
    G = eraser.per_sample_gradients(X, y)
    assert G.shape == (7, sum(p.numel() for p in net.parameters()))
    net.eval()
    for i in range(7):
        net.zero_grad()
        loss_fn(net(X[i : i + 1]), y[i : i + 1]).backward()
        expected = torch.cat([p.grad.reshape(-1) for p in net.parameters()]).numpy()
        assert_allclose(G[i], expected, rtol=1e-10, atol=1e-12)
    assert net.training is False  # flags restored to what they were


def dense_fisher(G_avg, damping, penalty_diag):
    N = G_avg.shape[0]
    return G_avg.T @ G_avg / N + np.diag(penalty_diag) + damping * np.eye(G_avg.shape[1])


@pytest.mark.parametrize("max_dense_block", [10_000, 1])
def test_block_inverse_dense_and_matrix_free_equal_dense_inverse(max_dense_block):
    net, (X, y) = tiny_net(), tiny_data(30)
    eraser = NetworkEraser(
        net,
        torch.nn.CrossEntropyLoss(),
        block_size=40,
        batch_size=3,
        damping=1e-2,
        penalty=0.5,
        shuffle=False,
        max_dense_block=max_dense_block,
        keep_gradients=True,
    ).fit(X, y)
    G = eraser.per_sample_gradients(X, y)
    G_avg = G.reshape(10, 3, -1).mean(axis=1)
    assert_allclose(eraser.gradients_, G_avg, rtol=1e-12, atol=1e-14)
    assert eraser.n_terms_ == 10
    kinds = {type(b) for b in eraser.blocks_}
    assert kinds == ({np.ndarray} if max_dense_block > 40 else {MatrixFreeFisherInverse})
    rng = np.random.default_rng(0)
    for idx, block in zip(eraser.block_indices_, eraser.blocks_):
        F = dense_fisher(G_avg[:, idx], 1e-2, np.full(len(idx), 0.5 / 30))
        r = rng.normal(size=len(idx))
        solved = block @ r if isinstance(block, np.ndarray) else block.solve(r)
        assert_allclose(solved, np.linalg.solve(F, r), rtol=1e-8, atol=1e-10)


def test_matrix_free_inverse_against_dense():
    rng = np.random.default_rng(1)
    G, D = rng.normal(size=(6, 15)), rng.uniform(0.1, 1.0, size=15)
    inv = MatrixFreeFisherInverse(G, D)
    R = rng.normal(size=(15, 3))
    assert_allclose(inv.solve(R), np.linalg.solve(inv.to_dense(), R), rtol=1e-10)
    assert_allclose(inv.to_dense(), np.diag(D) + G.T @ G / 6)
    with pytest.raises(ValueError, match="positive diagonal"):
        MatrixFreeFisherInverse(G, 0.0)


def test_forget_applies_eq4_and_leaves_buffers():
    net, (X, y) = tiny_net(), tiny_data(30)
    eraser = NetworkEraser(
        net,
        torch.nn.CrossEntropyLoss(),
        block_size=50,
        batch_size=1,
        max_dense_block=30,
        damping=1e-3,
    ).fit(X, y)
    theta = eraser.parameters_to_vector()
    buffers = {k: v.clone() for k, v in net.named_buffers()}
    G = eraser.per_sample_gradients(X, y)
    step = eraser.forget_step(X[:4], y[:4])
    expected = np.zeros_like(theta)
    for idx in eraser.block_indices_:
        F = dense_fisher(G[:, idx], 1e-3, np.zeros(len(idx)))
        expected[idx] = np.linalg.solve(F, G[:4, idx].sum(axis=0)) / 26
    assert_allclose(step.direction, expected, rtol=1e-7, atol=1e-12)
    eraser.forget(X[:4], y[:4], eps=2.0)
    assert_allclose(eraser.parameters_to_vector(), theta + 2.0 * expected, rtol=1e-7, atol=1e-12)
    for k, v in net.named_buffers():
        assert torch.equal(v, buffers[k])
    assert eraser.n_samples_ == 26 and eraser.n_forgotten_ == 4
    with pytest.raises(ValueError, match="Cannot remove"):
        eraser.forget_step(X, y)


def test_subset_restricts_curvature_and_step():
    net, (X, y) = tiny_net(), tiny_data(30)
    eraser = NetworkEraser(
        net,
        torch.nn.CrossEntropyLoss(),
        batch_size=1,
        damping=1e-3,
        keep_gradients=True,
        shuffle=False,
    ).fit(X, y)
    subset = np.array([0, 5, 7, 60, 61, 100])
    step = eraser.forget_step(X[:3], y[:3], subset=subset)
    G = eraser.gradients_
    F = dense_fisher(G[:, subset], 1e-3, np.zeros(len(subset)))
    expected = np.linalg.solve(F, G[:3, subset].sum(axis=0)) / 27
    assert_allclose(step.direction[subset], expected, rtol=1e-8)
    assert np.count_nonzero(np.delete(step.direction, subset)) == 0
    assert step.n_params_touched == 6
    units = eraser.unit_parameter_indices([("conv", 1), ("fc", 0)])
    assert len(units) == (2 * 9 + 1) + (48 + 1)
    fresh = NetworkEraser(net, torch.nn.CrossEntropyLoss()).fit(X, y)
    with pytest.raises(ValueError, match="keep_gradients"):
        fresh.forget_step(X[:3], y[:3], subset=subset)


class TorchLogistic(torch.nn.Module):
    def __init__(self, p, L):
        super().__init__()
        self.linear = torch.nn.Linear(p, L).double()

    def forward(self, x):
        return self.linear(x)


@pytest.mark.parametrize("n_labels", [1, 3])
def test_linear_model_in_torch_matches_logistic_regression_paper_mode(n_labels):
    rng = np.random.default_rng(0)
    n, p, C, damping = 120, 5, 0.5, 1e-3
    X = rng.normal(size=(n, p))
    W = rng.normal(size=(p, n_labels))
    Y = (X @ W + rng.normal(size=(n, n_labels)) > 0).astype(np.float64)
    y = Y[:, 0] if n_labels == 1 else Y
    ref = UnlearnableLogisticRegression(
        C=C, curvature="empirical_fisher", leave_out=False, damping=damping, tol=1e-10
    ).fit(X, y.astype(int))

    net = TorchLogistic(p, n_labels)
    with torch.no_grad():
        net.linear.weight.copy_(torch.from_numpy(np.atleast_2d(ref.coef_)))
        net.linear.bias.copy_(torch.from_numpy(np.atleast_1d(ref.intercept_)))
    # One block per label over [weight row, bias], the layout of the sklearn blocks.
    blocks = [np.r_[np.arange(l * p, (l + 1) * p), n_labels * p + l] for l in range(n_labels)]
    eraser = NetworkEraser(
        net,
        torch.nn.BCEWithLogitsLoss(reduction="sum"),
        blocks=blocks,
        batch_size=1,
        damping=damping,
        penalty={"linear.weight": 1.0 / C},
        shuffle=False,
    ).fit(X, Y)
    remove = np.arange(0, n, 7)
    eraser.forget(X[remove], Y[remove], eps=3.0)
    ref.forget(X[remove], y[remove].astype(int), eps=3.0)
    theta = eraser.parameters_to_vector()
    assert_allclose(
        theta[: n_labels * p].reshape(n_labels, p), np.atleast_2d(ref.coef_), rtol=1e-8, atol=1e-10
    )
    assert_allclose(theta[n_labels * p :], np.atleast_1d(ref.intercept_), rtol=1e-8, atol=1e-10)


def test_parameter_validation():
    net, (X, y) = tiny_net(), tiny_data(10)
    with pytest.raises(ValueError, match="damping"):
        NetworkEraser(net, torch.nn.CrossEntropyLoss(), damping=0.0).fit(X, y)
    with pytest.raises(ValueError, match="Unknown parameter"):
        NetworkEraser(net, torch.nn.CrossEntropyLoss(), params=["nope"]).fit(X, y)
    with pytest.raises(ValueError, match="disjoint"):
        NetworkEraser(net, torch.nn.CrossEntropyLoss(), blocks=[[0, 1], [1, 2]]).fit(X, y)
    with pytest.raises(AttributeError, match="not fitted"):
        NetworkEraser(net, torch.nn.CrossEntropyLoss()).forget(X[:1], y[:1])
    eraser = NetworkEraser(net, torch.nn.CrossEntropyLoss(), params=["fc.weight"]).fit(X, y)
    assert eraser.n_params_ == 4 * 48
    with pytest.raises(ValueError, match="eps"):
        eraser.forget(X[:1], y[:1], eps=-1.0)


@pytest.mark.parametrize("n, batch_size, grad_batch_size", [(31, 4, 8), (30, 5, 5), (7, 10, 100)])
def test_minibatch_gradients_without_per_sample_gradients(n, batch_size, grad_batch_size):
    """Fisher terms from the groups' mean losses equal averaged per-sample gradients,
    with several groups per call, one per call, and a last smaller group."""
    net, (X, y) = tiny_net(), tiny_data(n)
    eraser = NetworkEraser(
        net,
        torch.nn.CrossEntropyLoss(),
        batch_size=batch_size,
        grad_batch_size=grad_batch_size,
        keep_gradients=True,
        random_state=2,
    ).fit(X, y)
    G = eraser.per_sample_gradients(X, y)
    order = np.random.default_rng(2).permutation(n)
    expected = np.array(
        [G[order[s : s + batch_size]].mean(axis=0) for s in range(0, n, batch_size)]
    )
    assert eraser.n_terms_ == len(expected)
    assert_allclose(eraser.gradients_, expected, rtol=1e-10, atol=1e-13)
    # The removal gradient is the sum of the per-sample gradients, in any chunking.
    step = eraser.forget_step(X[: n // 2], y[: n // 2])
    assert_allclose(step.gradient, G[: n // 2].sum(axis=0), rtol=1e-10, atol=1e-12)


def test_minibatch_gradients_use_single_sample_losses():
    """A loss that is not a mean over the batch (summed BCE) still gives averaged ∇ℓ_i."""
    rng = np.random.default_rng(3)
    X = torch.from_numpy(rng.normal(size=(12, 4)))
    Y = torch.from_numpy((rng.normal(size=(12, 3)) > 0).astype(np.float64))
    net = TorchLogistic(4, 3)
    loss = torch.nn.BCEWithLogitsLoss(reduction="sum")
    eraser = NetworkEraser(net, loss, batch_size=4, shuffle=False, keep_gradients=True)
    eraser.fit(X, Y)
    G = eraser.per_sample_gradients(X, Y)
    assert_allclose(eraser.gradients_, G.reshape(3, 4, -1).mean(axis=1), rtol=1e-10)
