"""Per-sample losses of generalized linear models: the loss protocol.

For a linear model with raw prediction ``z = x̃ᵀθ`` (``x̃ = [x, 1]`` with an intercept), the
per-sample data loss ``ℓ(z, y)`` has gradient ``∇_θ ℓ = ℓ'(z, y)·x̃`` and Hessian
``∇²_θ ℓ = ℓ''(z, y)·x̃x̃ᵀ``. So every curvature block of an *uncoupled* loss (one raw output
per block) is a weighted Gram of the design matrix: weights ``ℓ''`` for the Hessian, ``ℓ'²``
for the empirical Fisher. The data loss carries no ``C`` factor: scikit-learn's objective is
``C·Σ w_i ℓ_i + ½‖w‖²``, equivalently ``Σ w_i ℓ_i + (1/(2C))‖w‖²``, whose penalty Hessian is
``1/C`` on the coefficients. A sample weight ``w_i`` multiplies the sample's loss, gradient
and curvature term.

The protocol (:class:`Loss`) an estimator names:

``name``
    The loss's name (scikit-learn's spelling).
``coupled``
    ``False``: the ``L`` raw outputs are independent problems, one curvature block each.
    ``True`` (softmax): the outputs of a sample share one block; the per-sample Hessian in
    the raw outputs is the matrix :meth:`~MultinomialLoss.hessian_matrix`, of which
    :meth:`~MultinomialLoss.hessian_factor` is a square root.
``loss(raw, y)``, ``gradient(raw, y)``, ``hessian(raw, y)``
    Per-sample loss, ``∂ℓ/∂z`` and ``∂²ℓ/∂z²`` (uncoupled losses), elementwise.
``third_derivative_bound``
    ``sup |∂³ℓ/∂z³|`` (the Lipschitz constant of ``ℓ''``), or ``None`` when the loss has no
    finite one (its curvature is unbounded in ``z``, or not differentiable).
"""

from __future__ import annotations

from ._design import augment, curvature_factors, design_gradient, raw_scores
from ._logistic import LogisticLoss
from ._multinomial import MultinomialLoss
from ._protocol import Loss
from ._squared import SquaredLoss
from ._squared_hinge import SquaredHingeLoss
from ._tweedie import TweedieLoss

__all__ = [
    "LOSSES",
    "Loss",
    "LogisticLoss",
    "MultinomialLoss",
    "SquaredHingeLoss",
    "SquaredLoss",
    "TweedieLoss",
    "augment",
    "curvature_factors",
    "design_gradient",
    "raw_scores",
]


LOSSES = {
    "log_loss": LogisticLoss,
    "squared_error": SquaredLoss,
    "multinomial_log_loss": MultinomialLoss,
    "squared_hinge": SquaredHingeLoss,
}
