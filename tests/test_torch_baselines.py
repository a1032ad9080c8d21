"""The deep-unlearning baselines: fine-tuning, NegGrad and Fisher forgetting."""

import copy

import numpy as np
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")

from sklearn_ssse.torch import (  # noqa: E402
    FineTuneEraser,
    FisherForgettingEraser,
    NegGradEraser,
)

torch.set_num_threads(1)


class TinyCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 3, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(3)
        self.fc = torch.nn.Linear(3 * 4 * 4, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def tiny_data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, 4, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (n,), generator=g)
    return X, y


def tiny_net(seed=0):
    torch.manual_seed(seed)
    net = TinyCNN().double()
    net.train()
    with torch.no_grad():
        net(tiny_data(64, seed=5)[0])  # non-trivial batch-norm running statistics
    return net.eval()


LOSS = torch.nn.CrossEntropyLoss()
MAKERS = {
    "finetune": lambda net, **kw: FineTuneEraser(net, LOSS, epochs=2, lr=0.05, batch_size=8, **kw),
    "neggrad": lambda net, **kw: NegGradEraser(net, LOSS, epochs=2, lr=0.05, batch_size=8, **kw),
    "fisher": lambda net, **kw: FisherForgettingEraser(net, LOSS, alpha=1e-3, **kw),
}


def state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def same_state(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_contract_shapes_determinism_and_bookkeeping(kind):
    X, y = tiny_data()
    results = []
    for _ in range(2):
        net = tiny_net()
        shapes = {n: p.shape for n, p in net.named_parameters()}
        eraser = MAKERS[kind](net, random_state=3).fit(X, y)
        before = state(net)
        assert eraser.forget(X[:6], y[:6]) is eraser
        assert {n: p.shape for n, p in net.named_parameters()} == shapes
        assert not same_state(before, state(net))  # the request changed the network
        assert eraser.n_samples_ == 34 and eraser.n_forgotten_ == 6
        assert eraser.forget_seconds_ > 0
        assert net.training is False  # flags restored
        results.append(state(net))
    # Same seed, same data: bit-identical networks.
    assert same_state(results[0], results[1])
    net = tiny_net()
    other = MAKERS[kind](net, random_state=4).fit(X, y).forget(X[:6], y[:6])
    assert not same_state(results[0], state(other.module))


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_refused_requests_leave_the_network_unchanged(kind):
    X, y = tiny_data()
    net = tiny_net()
    with pytest.raises(AttributeError, match="not fitted"):
        MAKERS[kind](net).forget(X[:2], y[:2])
    eraser = MAKERS[kind](net).fit(X, y)
    before = state(net)
    with pytest.raises(ValueError, match="Cannot remove"):
        eraser.forget(X, y)
    with pytest.raises(ValueError, match="samples but y has"):
        eraser.forget(X[:3], y[:2])
    assert same_state(before, state(net))
    assert eraser.n_samples_ == 40
    if kind != "neggrad":
        # The remaining-data baselines must find S in the training set.
        with pytest.raises(ValueError, match="not in the training set"):
            eraser.forget(X[:3] + 1.0, y[:3])
        assert same_state(before, state(net))
        eraser.forget(X[:2], y[:2])
        with pytest.raises(ValueError, match="already removed"):
            eraser.forget(X[:1], y[:1])
    if kind == "fisher":
        return
    # A learning rate that blows the parameters up is refused and rolled back.
    wild = {"finetune": {"lr": 1e200}, "neggrad": {"lr": 1e200}}
    net2 = tiny_net()
    before2 = state(net2)
    bad = MAKERS[kind](net2)
    bad.fit(X, y)
    for name, value in wild[kind].items():
        setattr(bad, name, value)
    with pytest.raises(ValueError, match="non-finite"):
        bad.forget(X[:4], y[:4])
    assert same_state(before2, state(net2))
    assert bad.n_samples_ == 40


@pytest.mark.parametrize(
    "kind, param, value",
    [
        ("finetune", "lr", 0.0),
        ("finetune", "epochs", 0),
        ("neggrad", "batch_size", 0),
        ("fisher", "alpha", -1.0),
        ("fisher", "fisher", "true"),
        ("fisher", "max_seconds", 0.0),
    ],
)
def test_parameter_validation(kind, param, value):
    X, y = tiny_data()
    eraser = MAKERS[kind](tiny_net())
    setattr(eraser, param, value)
    with pytest.raises(ValueError, match=param):
        eraser.fit(X, y)


def mean_loss(net, X, y):
    net.eval()
    with torch.no_grad():
        return float(LOSS(net(X), y))


def test_neggrad_raises_the_loss_on_S_and_keeps_batchnorm_statistics():
    X, y = tiny_data()
    net = tiny_net()
    buffers = {k: v.clone() for k, v in net.named_buffers()}
    before = mean_loss(net, X[:8], y[:8])
    NegGradEraser(net, LOSS, epochs=3, lr=0.05, batch_size=4).fit(X, y).forget(X[:8], y[:8])
    assert mean_loss(net, X[:8], y[:8]) > before + 0.1
    for k, v in net.named_buffers():
        assert torch.equal(v, buffers[k])


def test_finetune_lowers_the_loss_on_the_remaining_samples():
    X, y = tiny_data()
    net = tiny_net()
    before = mean_loss(net, X[8:], y[8:])
    eraser = FineTuneEraser(net, LOSS, epochs=10, lr=0.05, batch_size=8).fit(X, y)
    eraser.forget(X[:8], y[:8])
    assert mean_loss(net, X[8:], y[8:]) < before - 0.1
    assert eraser.epochs_done_ == pytest.approx(10.0)
    assert eraser.n_steps_ == 10 * 4  # 32 remaining samples in batches of 8


def test_finetune_stops_at_its_time_budget():
    X, y = tiny_data()
    eraser = FineTuneEraser(tiny_net(), LOSS, epochs=10**6, lr=1e-3, max_seconds=0.2)
    eraser.fit(X, y).forget(X[:8], y[:8])
    assert 0 < eraser.epochs_done_ < 10**6
    assert eraser.forget_seconds_ < 5.0


def dense_empirical_fisher(net, X, y):
    """``(1/n)·Σ g_i g_iᵀ`` from one autograd backward per sample."""
    net.eval()
    G = []
    for i in range(len(X)):
        net.zero_grad()
        LOSS(net(X[i : i + 1]), y[i : i + 1]).backward()
        G.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]).numpy().copy())
    G = np.array(G)
    return G.T @ G / len(X)


@pytest.mark.parametrize("max_inverse", [1e12, 50.0])
def test_fisher_forgetting_noise_is_scaled_by_the_inverse_diagonal_fisher(max_inverse):
    X, y = tiny_data()
    net = tiny_net()
    theta = np.concatenate([p.detach().reshape(-1).numpy() for p in net.parameters()])
    removed = np.arange(5)
    F = dense_empirical_fisher(copy.deepcopy(net), X[5:], y[5:])
    alpha, damping = 1e-4, 1e-6
    eraser = FisherForgettingEraser(
        net, LOSS, alpha=alpha, damping=damping, max_inverse=max_inverse, grad_batch_size=7
    ).fit(X, y)
    eraser.forget(X[removed], y[removed])
    assert eraser.n_fisher_samples_ == 35
    # The diagonal of the dense Fisher of D∖S, whatever order the samples came in.
    assert_allclose(eraser.fisher_diagonal_, np.diag(F), rtol=1e-9, atol=1e-15)
    expected = alpha * np.minimum(1.0 / (np.diag(F) + damping), max_inverse)
    assert_allclose(eraser.variance_, expected, rtol=1e-8)
    if max_inverse < 1e6:
        assert np.any(eraser.variance_ == alpha * max_inverse)  # the clip is active
    new = np.concatenate([p.detach().reshape(-1).numpy() for p in net.parameters()])
    assert_allclose(new - theta, np.sqrt(expected) * eraser.noise_, rtol=1e-7, atol=1e-14)
    # ξ is standard normal: over the 259 parameters, mean ~ 0 and variance ~ 1.
    assert abs(eraser.noise_.mean()) < 0.25 and 0.7 < eraser.noise_.var() < 1.3


def test_fisher_forgetting_sampled_labels_and_sample_cap():
    X, y = tiny_data()
    net = tiny_net()
    F = np.diag(dense_empirical_fisher(copy.deepcopy(net), X[5:], y[5:]))
    sampled = FisherForgettingEraser(net, LOSS, alpha=0.0, fisher="sampled", random_state=1)
    sampled.fit(X, y).forget(X[:5], y[:5])
    # α = 0: the network is untouched, and the Monte Carlo Fisher differs from the empirical.
    assert sampled.n_fisher_samples_ == 35
    assert not np.allclose(sampled.fisher_diagonal_, F)
    assert np.all(sampled.fisher_diagonal_ >= 0)
    capped = FisherForgettingEraser(tiny_net(), LOSS, max_samples=10, grad_batch_size=4)
    capped.fit(X, y).forget(X[:5], y[:5])
    assert capped.n_fisher_samples_ == 10
