"""The loss protocol: gradients, curvatures and third-derivative bounds against finite
differences and the closed forms of the softmax's factor."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_ssse._loss import (
    LOSSES,
    LogisticLoss,
    Loss,
    MultinomialLoss,
    SquaredLoss,
    curvature_factors,
)


def test_every_loss_follows_the_protocol():
    for name, loss in LOSSES.items():
        assert isinstance(loss(), Loss) and loss.name == name


@settings(max_examples=30, deadline=None)
@given(st.floats(-8, 8), st.sampled_from([0.0, 1.0]))
def test_uncoupled_derivatives_match_finite_differences(z, y):
    h = 1e-5
    for loss in (LogisticLoss, SquaredLoss):
        grad = (loss.loss(z + h, y) - loss.loss(z - h, y)) / (2 * h)
        assert abs(grad - loss.gradient(z, y)) < 1e-6
        curv = (loss.gradient(z + h, y) - loss.gradient(z - h, y)) / (2 * h)
        assert abs(curv - loss.hessian(z, y)) < 1e-6
        third = (loss.hessian(z + h, y) - loss.hessian(z - h, y)) / (2 * h)
        assert abs(third) <= loss.third_derivative_bound + 1e-6


def test_logistic_third_derivative_bound_is_attained():
    z = np.linspace(-5, 5, 200_001)
    p = 1 / (1 + np.exp(-z))
    third = p * (1 - p) * (1 - 2 * p)
    np.testing.assert_allclose(np.abs(third).max(), LogisticLoss.third_derivative_bound, rtol=1e-8)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000))
def test_softmax_gradient_hessian_and_factor(K, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (4, K))
    y = np.eye(K)[rng.integers(0, K, 4)]
    h = 1e-6
    for j in range(K):
        e = np.eye(K)[j] * h
        fd = (MultinomialLoss.loss(z + e, y) - MultinomialLoss.loss(z - e, y)) / (2 * h)
        np.testing.assert_allclose(fd, MultinomialLoss.gradient(z, y)[:, j], atol=1e-6)
        fd = (MultinomialLoss.gradient(z + e, y) - MultinomialLoss.gradient(z - e, y)) / (2 * h)
        np.testing.assert_allclose(fd, MultinomialLoss.hessian_matrix(z)[:, :, j], atol=1e-6)
    F = MultinomialLoss.hessian_factor(z)
    M = MultinomialLoss.hessian_matrix(z)
    np.testing.assert_allclose(F @ F.transpose(0, 2, 1), M, atol=1e-14)
    np.testing.assert_allclose(F.sum(axis=1), 0.0, atol=1e-14)  # orthogonal to 1
    assert all(np.linalg.matrix_rank(Mi, tol=1e-12) == K - 1 for Mi in M if Mi.min() > -1)


def test_curvature_factors_carry_the_sample_weight():
    z, y, w = np.array([0.3, -2.0]), np.array([1.0, 0.0]), np.array([4.0, 0.25])
    np.testing.assert_allclose(
        curvature_factors(LogisticLoss, z, y, "hessian", w) ** 2, w * LogisticLoss.hessian(z, y)
    )
    np.testing.assert_allclose(
        curvature_factors(LogisticLoss, z, y, "empirical_fisher", w) ** 2,
        w * LogisticLoss.gradient(z, y) ** 2,
    )
