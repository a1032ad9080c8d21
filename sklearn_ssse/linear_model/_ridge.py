"""Ridge regression that can forget training samples exactly."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from .._base import UnlearnableLinearMixin, transactional
from .._loss import SquaredLoss, augment
from .._weights import fit_sample_weight
from ..curvature import CurvatureError, weighted_gram
from ..curvature._normal import solve_normal_equations

__all__ = ["UnlearnableRidge"]


class UnlearnableRidge(UnlearnableLinearMixin, RegressorMixin, BaseEstimator):
    """Ridge regression that can erase training samples with :meth:`forget`.

    Minimizes scikit-learn's :class:`~sklearn.linear_model.Ridge` objective
    ``Σ_i s_i (y_i − x_iᵀw − b)² + α‖w‖²`` (intercept not penalized, ``s_i`` the sample
    weights) by a Cholesky solve of the normal equations, whose matrix ``X̃ᵀSX̃ + αI`` is also
    the stored curvature. Because the loss is
    quadratic, ``forget`` with the default ``curvature="hessian"`` and ``leave_out=True``
    equals refitting on the remaining samples, to round-off.

    Parameters
    ----------
    alpha : float, default=1.0
        L2 regularization strength, as in scikit-learn (``C = 1/alpha``).
    fit_intercept : bool, default=True
    curvature : {"hessian", "empirical_fisher"}, default="hessian"
        ``"hessian"`` shares one block ``X̃ᵀX̃ + αI`` between all outputs and makes the step
        exact; ``"empirical_fisher"`` keeps one block ``Σ r_i² x̃x̃ᵀ + αI`` per output.
    leave_out : bool, default=True
        Curvature over ``D∖S`` (exact) or over ``D`` (the paper's approximation).
    damping : float, default=0.0
        ``λ`` added to the mean-normalized curvature.
    eps : float, default=1.0
        Default scale ``ε`` of the step.
    check_membership : bool, default=True
        Refuse to forget samples that do not match a training sample still in the model.
    curvature_dtype : {"float64", "float32"}, default="float64"
    n_jobs : int, default=None
        Parallel block building (joblib).
    certified : bool, default=False
        Certified removal (Guo et al., 2020): fit the objective perturbed by a secret
        random linear term ``bᵀθ``, ``b ~ N(0, noise_sigma²·I)``, penalize the intercept
        too, and account a gradient-residual bound over forgets; a removal that would
        exceed the ``(certified_epsilon, certified_delta)`` budget raises
        :class:`~sklearn_ssse.RemovalBudgetError` and changes nothing. See
        ``sklearn_ssse._certified`` for the derivation.
    certified_epsilon : float, default=1.0
        ``ε`` of the ``(ε, δ)`` certificate.
    certified_delta : float, default=1e-4
        ``δ`` of the certificate, in ``(0, 1)``.
    noise_sigma : float, default=1.0
        Standard deviation ``σ`` of the objective's noise. The residual budget is the
        largest shift the Gaussian mechanism with this ``σ`` hides at ``(ε, δ)``, from its
        exact privacy profile (:func:`sklearn_ssse._certified.certified_budget`; about
        ``σ·ε/sqrt(2·log(1.5/δ))`` for small ``ε``): more noise buys more removals at some
        accuracy.
    random_state : int, RandomState instance or None, default=None
        Seeds the certified noise only with ``reproducible_noise=True``; unused otherwise.
    reproducible_noise : bool, default=False
        Certified mode: draw the noise from ``random_state`` instead of fresh
        operating-system entropy. It warns: a reproducible noise can be replayed by anyone
        who knows the seed and the remaining data, which defeats the certificate. For tests
        and demonstrations only.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
    curvature_ : BlockFisherInverse
    n_samples_ : int
    n_forgotten_ : int
    fingerprints_ : FingerprintMultiset
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
    erasure_log_ : list of dict
        One entry per :meth:`forget`: time (UTC), number of samples, ``eps``, curvature
        settings, step norm, fingerprints (hex) of the erased samples, running counts and,
        in certified mode, the residual bound and the budget left. See
        :meth:`erasure_log_to_json` and :meth:`was_erased`.
    gradient_residual_bound_ : float
        Certified mode only: the bound on ``‖∇L_b(θ)‖`` over the remaining samples.
    removal_budget_remaining_ : float
        Certified mode only: the budget minus ``gradient_residual_bound_``.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.linear_model import Ridge
    >>> import numpy as np
    >>> from sklearn_ssse import UnlearnableRidge
    >>> X, y = load_diabetes(return_X_y=True)
    >>> erased = UnlearnableRidge(alpha=0.1).fit(X, y).forget(X[:10], y[:10])
    >>> refit = Ridge(alpha=0.1).fit(X[10:], y[10:])
    >>> bool(np.allclose(erased.coef_, refit.coef_, rtol=1e-8))
    True
    """

    _parameter_constraints: dict = {
        **UnlearnableLinearMixin._common_parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="left")],
    }

    _loss = SquaredLoss

    def __init__(
        self,
        alpha=1.0,
        *,
        fit_intercept=True,
        curvature="hessian",
        leave_out=True,
        damping=0.0,
        eps=1.0,
        check_membership=True,
        curvature_dtype="float64",
        n_jobs=None,
        certified=False,
        certified_epsilon=1.0,
        certified_delta=1e-4,
        noise_sigma=1.0,
        random_state=None,
        reproducible_noise=False,
    ):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.curvature = curvature
        self.leave_out = leave_out
        self.damping = damping
        self.eps = eps
        self.check_membership = check_membership
        self.curvature_dtype = curvature_dtype
        self.n_jobs = n_jobs
        self.certified = certified
        self.certified_epsilon = certified_epsilon
        self.certified_delta = certified_delta
        self.noise_sigma = noise_sigma
        self.random_state = random_state
        self.reproducible_noise = reproducible_noise

    def _penalty_strength(self):
        return float(self.alpha)

    def _encode_fit_targets(self, y):
        y = np.asarray(y, dtype=np.float64)
        self._target_1d = y.ndim == 1
        return y.reshape(y.shape[0], -1)

    def _encode_removed_targets(self, y):
        if hasattr(y, "toarray"):
            raise ValueError("y_removed is a sparse matrix; pass the targets as a dense array.")
        y = np.asarray(y)
        if y.dtype.kind == "O":
            # An object array of numbers is accepted and converted, as by fit.
            y = np.asarray(y.tolist())
        if y.dtype.kind not in "biuf":
            raise ValueError(f"y_removed must be numeric, got dtype {y.dtype}.")
        y = y.astype(np.float64)
        n_targets = 1 if self._target_1d else self.coef_.shape[0]
        if self._target_1d and y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        expected_ndim = 1 if self._target_1d else 2
        if y.ndim != expected_ndim or (y.ndim == 2 and y.shape[1] != n_targets):
            shape = "(k,)" if self._target_1d else f"(k, {n_targets})"
            raise ValueError(f"y_removed must have shape {shape}, got {y.shape}.")
        return y.reshape(y.shape[0], -1)

    @_fit_context(prefer_skip_nested_validation=True)
    @transactional
    def fit(self, X, y, sample_weight=None):
        """Fit by a Cholesky solve of the normal equations and keep their factorization.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample's squared error, stored with its
            fingerprint; ``forget`` removes each sample with it.

        Returns
        -------
        self
        """
        self._refuse_malformed_fit_input(X, y)
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=np.float64, multi_output=True, y_numeric=True
        )
        Y = self._encode_fit_targets(y)
        return self._fit_encoded(X, Y, fit_sample_weight(self, X, y, sample_weight))

    def _fit_encoded(self, X, Y, weights):
        """Solve the (weighted) normal equations for encoded targets ``Y`` and finish."""
        if self.certified and weights is not None:
            raise ValueError("certified=True does not support sample_weight.")
        gram = weighted_gram(X, weights, fit_intercept=self.fit_intercept)
        gram.flat[:: gram.shape[0] + 1] += self._penalty_vector()
        rhs = np.asarray(
            augment(X, self.fit_intercept).T @ (Y if weights is None else Y * weights[:, None])
        )
        if self.certified:
            # The perturbed objective ½‖r‖² + ½θᵀPθ + bᵀθ has the normal equations
            # (X̃ᵀX̃ + P)θ = X̃ᵀy − b.
            self.n_features_in_ = X.shape[1]
            rhs = rhs - self._draw_objective_noise(Y.shape[1]).T
        try:
            theta = solve_normal_equations(gram, rhs)
        except CurvatureError as error:
            raise CurvatureError(
                f"{error} (n_samples={X.shape[0]}, {gram.shape[0]} parameters, "
                f"alpha={self.alpha!r})"
            ) from error
        self.n_features_in_ = X.shape[1]
        self.coef_, self.intercept_ = self._split_theta(theta)
        shared = gram.astype(self.curvature_dtype) if self._shared_block else None  # a copy
        # Kept (and downdated with each request) to check each erasure's accuracy.
        self._normal_gram, self._normal_rhs = gram, rhs
        return self._finish_fit(X, Y, gram=shared, sample_weight=weights)

    def predict(self, X):
        """Predicted targets, shape (n,) or (n, n_targets).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray
        """
        check_is_fitted(self)
        state = self._committed()  # coef_ and intercept_ of one committed state
        X = validate_data(self, X, accept_sparse="csr", reset=False, dtype=np.float64)
        return np.asarray(X @ np.asarray(state["coef_"]).T) + state["intercept_"]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = True
        return tags
