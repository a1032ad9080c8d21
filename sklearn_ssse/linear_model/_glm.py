"""Poisson, Gamma and Tweedie regression that can forget training samples.

**The objective and its refit.** scikit-learn's GLM regressors minimize

    (1/(2·W))·Σ_i w_i·dev_i(θ) + (α/2)·‖coef‖²,      W = Σ_i w_i,

(the sample weights normalized to sum to one). Multiplied by ``W`` this is the sum form

    F_D(θ) = Σ_i w_i·ℓ_i(θ) + ½·α·W·θᵀP̃θ = Σ_i w_i·(ℓ_i(θ) + ½·α·θᵀP̃θ),

``ℓ_i = dev_i/2`` (:class:`~sklearn_ssse._loss.TweedieLoss`), ``P̃`` = 1 on the coefficients
and 0 on the intercept: each sample carries its share ``½αθᵀP̃θ`` of the penalty. The refit on
``D∖S`` with the same ``α`` minimizes ``F_{D∖S}`` (same minimizer as its ``1/W'`` scaling),
which at the fitted ``θ*`` (``∇F_D(θ*) = 0``) has the gradient

    ∇F_{D∖S}(θ*) = −Σ_{i∈S} w_i·(ℓ'_i·x̃_i + α·P̃θ*)

and the Hessian

    H_{D∖S} = Σ_{i∉S} w_i·ℓ''_i·x̃_i x̃_iᵀ + α·W'·P̃,      W' = W − Σ_{i∈S} w_i,

with ``ℓ''`` the true second derivative in the linear predictor (through the link: see
:class:`~sklearn_ssse._loss.TweedieLoss`). The Newton step towards scikit-learn's refit is
``θ ← θ* + H_{D∖S}⁻¹·Σ_{i∈S} w_i·(ℓ'_i·x̃_i + α·P̃θ*)``. Removing samples changes the penalty
term by ``α·(Σ_S w_i)·P̃``, a change of full rank ``d``: it is not a low-rank downdate of a
stored inverse. (A mean-normalized copy ``(1/n)Σℓ_i + (α/2)‖coef‖²`` of the objective would
keep ``α`` fixed per sample and target another model.)

**Representation (exact).** The curvature stores the data Gram ``A = Σ_i w_i·ℓ''_i·x̃_i x̃_iᵀ``
at the fitted ``θ*`` and ``W``. A request subtracts the removed samples' terms (evaluated at
``θ*``, as stored) and their weights and solves with a fresh Cholesky factorization of
``A − ΔA + α·W'·P̃``: ``O(d̃³/3)`` per request and ``d̃²`` floats of memory (fine for ``d̃`` up
to a few thousand features; a request costs about as much as one Newton iteration of the
fit on ``d̃`` features, without touching the training data). A curvature that is not
positive definite (possible for ``p > 2`` under the log link, or ``p > 0`` under the
identity link, where ``ℓ''`` can be negative) raises
:class:`~sklearn_ssse.curvature.CurvatureError`. Later requests use the current ``θ`` for the
gradient, as every estimator of the package does.

``leave_out=False`` is the paper's approximation: the curvature over ``D`` instead of
``D∖S``. ``damping=λ`` adds ``λ`` to the mean-normalized curvature (``m·λ·I`` to ``H``, ``m``
the number of samples it sums over). ``curvature="empirical_fisher"`` replaces ``w_iℓ''_i``
by ``w_iℓ'_i²``.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import GammaRegressor, PoissonRegressor, TweedieRegressor
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._base import UnlearnableLinearMixin, transactional
from .._loss import TweedieLoss
from .._weights import fit_sample_weight
from ..curvature import CurvatureError, weighted_gram

__all__ = [
    "UnlearnableGammaRegressor",
    "UnlearnablePoissonRegressor",
    "UnlearnableTweedieRegressor",
]


class GLMCurvature:
    """The exact curvature of a GLM regressor: data Gram, weight sum, penalty pattern.

    ``gram`` is ``A = Σ_i c_i·x̃_i x̃_iᵀ`` (``c_i = w_iℓ''_i`` or ``w_iℓ'_i²``), ``weight_sum``
    ``W``, ``penalty`` the vector ``α·P̃``. :meth:`solve` and the changes of
    :meth:`prepare_change` return ``m·H⁻¹·g`` with ``H = A + W·diag(penalty) + m·λ·I`` over
    the ``m`` samples the matrix sums over (the package's mean-normalized convention
    ``B⁻¹g`` with ``B = H/m``). Instances are never modified: :meth:`apply` returns a new one.
    """

    blocks_ = ()

    def __init__(self, gram, weight_sum, penalty, n_samples, damping=0.0):
        self.gram = gram
        self.weight_sum = float(weight_sum)
        self.penalty = penalty
        self.n_samples_ = int(n_samples)
        self.damping = float(damping)

    def _factor(self, gram, weight_sum, m):
        H = np.array(gram, dtype=np.float64)
        H.flat[:: H.shape[0] + 1] += weight_sum * self.penalty + m * self.damping
        try:
            factor = linalg.cho_factor(H, lower=False, check_finite=False)
        except linalg.LinAlgError as error:
            raise CurvatureError(
                "The GLM curvature Σ w_i·ℓ''_i·x̃x̃ᵀ + α·W·P̃ is not positive definite (the "
                "true Hessian of the deviance can be indefinite for Tweedie power > 2 under "
                "the log link, or power > 0 under the identity link, when targets are far "
                "from the predictions; or alpha=0 with collinear features). Use damping > 0, "
                "a larger alpha, or curvature='empirical_fisher'."
            ) from error
        if not np.all(np.isfinite(factor[0])):
            raise CurvatureError("The GLM curvature is not finite.")
        diagonal = np.abs(np.diag(factor[0]))
        # cond(H) >= (max/min of the Cholesky diagonal)²: refuse a numerically singular H.
        if (
            diagonal.min() <= 0
            or (diagonal.max() / diagonal.min()) ** 2 > 0.5 / np.finfo(float).eps
        ):
            raise CurvatureError(
                "The GLM curvature is numerically singular; use damping > 0 or a larger alpha."
            )
        return factor

    def solve(self, rhs):
        m = self.n_samples_
        factor = self._factor(self.gram, self.weight_sum, m)
        return [m * linalg.cho_solve(factor, np.asarray(r, dtype=np.float64)) for r in rhs]

    def prepare_change(self, factors, sign=-1, rhs=None, n_samples=None):
        """The curvature without the removed samples (``factors = [(X̃_S, c_S, w_S)]``) and,
        given ``rhs``, the solutions ``m'·H'⁻¹g`` against it."""
        ((Xt, c, w),) = factors
        gram = self.gram + sign * ((Xt * c[:, None]).T @ Xt)
        weight_sum = self.weight_sum + sign * float(np.sum(w))
        m = self.n_samples_ + sign * int(n_samples)
        new = GLMCurvature(gram, weight_sum, self.penalty, m, self.damping)
        change = _Change(new)
        if rhs is not None:
            change.solutions = new.solve(rhs)
        return change

    def apply(self, change):
        return change.curvature


def _signed_gram(X, c, fit_intercept):
    """``X̃ᵀ diag(c) X̃`` for weights of any sign (the true Hessian's ``ℓ''`` can be < 0)."""
    positive = weighted_gram(X, np.maximum(c, 0.0), fit_intercept=fit_intercept, dtype=np.float64)
    if np.any(c < 0):
        positive -= weighted_gram(
            X, np.maximum(-c, 0.0), fit_intercept=fit_intercept, dtype=np.float64
        )
    return positive


class _Change:
    def __init__(self, curvature):
        self.curvature = curvature
        self.solutions = None


_SOLVERS = {"lbfgs", "newton-cholesky"}


class _UnlearnableGLM(UnlearnableLinearMixin, RegressorMixin, BaseEstimator):
    """GLM regressor fitted by scikit-learn's own estimator, with an exact erasure step."""

    _parameter_constraints: dict = {
        **{
            name: UnlearnableLinearMixin._common_parameter_constraints[name]
            for name in (
                "fit_intercept",
                "curvature",
                "leave_out",
                "damping",
                "eps",
                "check_membership",
                "curvature_dtype",
                "n_jobs",
                "certified",
            )
        },
        "alpha": [Interval(Real, 0, None, closed="left")],
        "solver": [StrOptions(_SOLVERS)],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
    }

    _target_1d = True

    # -------------------------------------------------------------- hooks of the mixin
    @property
    def _coupled(self):
        # The estimator provides the removal terms and the direction itself (the penalty's
        # share of the removed samples is not a curvature factor).
        return True

    def _null_direction(self):
        return None

    def _project(self, x):
        return x

    def _penalty_strength(self):
        return float(self.alpha)

    def _penalty_vector(self):
        """``α·W·P̃``: the penalty Hessian of the sum-form objective of the current data."""
        mask = self._penalty_mask()
        weight_sum = self.curvature_.weight_sum if hasattr(self, "curvature_") else 1.0
        return float(self.alpha) * weight_sum * mask

    def _penalty_mask(self):
        mask = np.ones(self.n_features_in_ + int(self.fit_intercept))
        if self.fit_intercept:
            mask[-1] = 0.0
        return mask

    def _count_labels(self, Y):
        return None

    def _encode_fit_targets(self, y):
        return np.asarray(y, dtype=np.float64).reshape(-1, 1)

    def _encode_removed_targets(self, y):
        if hasattr(y, "toarray"):
            raise ValueError("y_removed is a sparse matrix; pass the targets as a dense array.")
        y = np.asarray(y)
        if y.dtype.kind == "O":
            y = np.asarray(y.tolist())
        if y.dtype.kind not in "biuf":
            raise ValueError(f"y_removed must be numeric, got dtype {y.dtype}.")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"y_removed must have shape (k,), got {y.shape}.")
        return y.astype(np.float64).reshape(-1, 1)

    def _check_removed_targets(self, Y):
        self._check_targets(Y[:, 0], "y_removed")

    def _check_targets(self, y, what):
        # scikit-learn's own domain check of the deviance (y >= 0 for Poisson, > 0 for
        # Gamma, by power for Tweedie).
        model = self._sklearn_estimator()
        if not model._get_loss().in_y_true_range(y):
            raise ValueError(
                f"Some values of {what} are out of the valid range of the Tweedie deviance "
                f"of power {self._power():g} (scikit-learn's {type(model).__name__})."
            )

    @property
    def _loss(self):
        return TweedieLoss(self._power(), self._link())

    def _link(self):
        return "log"

    # -------------------------------------------------------------- fit
    def _sklearn_estimator(self):
        raise NotImplementedError

    @_fit_context(prefer_skip_nested_validation=True)
    @transactional
    def fit(self, X, y, sample_weight=None):
        """Fit with scikit-learn's estimator and build the exact curvature.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, stored with the fingerprints; ``forget`` removes each
            sample with its weight.

        Returns
        -------
        self
        """
        if self.certified:
            raise ValueError(
                f"{type(self).__name__} does not support certified=True (certified removal "
                "needs a loss with a bounded third derivative; the Tweedie deviance has none)."
            )
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64, y_numeric=True)
        self._check_targets(y, "y")
        weights = fit_sample_weight(self, X, y, sample_weight)
        model = self._sklearn_estimator()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(X, y, sample_weight=weights)
        for warning in caught:
            if issubclass(warning.category, ConvergenceWarning):
                warnings.warn(
                    f"scikit-learn's {type(model).__name__} did not converge (max_iter="
                    f"{self.max_iter}, tol={self.tol}); the erasure step assumes an optimal "
                    "fit. Increase max_iter.",
                    ConvergenceWarning,
                    stacklevel=3,
                )
        self.n_features_in_ = X.shape[1]
        self.coef_ = np.array(model.coef_, dtype=np.float64)
        self.intercept_ = float(model.intercept_) if self.fit_intercept else 0.0
        self.n_iter_ = int(model.n_iter_)
        return self._finish_fit(X, self._encode_fit_targets(y), sample_weight=weights)

    def _build_curvature(self, X, Y, gram=None, sample_weight=None):
        theta = self._get_theta()
        raw = self._raw(X, theta)
        if self.curvature == "hessian":
            c = self._loss.hessian(raw, Y)[:, 0]
        else:
            c = self._loss.gradient(raw, Y)[:, 0] ** 2
        w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight)
        A = _signed_gram(X, c * w, self.fit_intercept)
        curvature = GLMCurvature(
            A, float(np.sum(w)), float(self.alpha) * self._penalty_mask(), X.shape[0], self.damping
        )
        curvature._factor(A, curvature.weight_sum, curvature.n_samples_)  # refuse now
        self.curvature_ = curvature
        self._theta_at_fit = theta
        self.n_samples_ = int(X.shape[0])

    def _coupled_removal(self, Xt, Y, gradients, weights):
        """``Σ_S w_i(ℓ'_i x̃_i + αP̃θ)`` and the removed terms ``(X̃_S, w_iℓ''_i, w_i)`` at θ*."""
        self._check_removed_targets(Y)
        theta = self._get_theta()[0]
        rhs = gradients[:, 0] + float(np.sum(weights)) * float(self.alpha) * (
            self._penalty_mask() * theta
        )
        raw_fit = Xt @ self._theta_at_fit[0]
        if self.curvature == "hessian":
            c = self._loss.hessian(raw_fit, Y[:, 0])
        else:
            c = self._loss.gradient(raw_fit, Y[:, 0]) ** 2
        return [rhs], [(Xt, c * weights, weights)]

    def _coupled_direction(self, solution):
        return np.asarray(solution, dtype=np.float64).reshape(1, -1)

    # -------------------------------------------------------------- predict
    def predict(self, X):
        """Predicted mean ``μ`` (the inverse link of ``Xw + b``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", reset=False, dtype=np.float64)
        state = self._committed()  # coef_ and intercept_ of one committed state
        raw = np.asarray(X @ state["coef_"]).ravel() + state["intercept_"]
        return np.exp(raw) if self._link() == "log" else raw

    def score(self, X, y, sample_weight=None):
        """D² (fraction of deviance explained), as scikit-learn's GLM regressors.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        from sklearn.metrics import d2_tweedie_score

        return d2_tweedie_score(
            y, self.predict(X), sample_weight=sample_weight, power=self._power()
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        try:
            loss = self._sklearn_estimator()._get_loss()
            tags.target_tags.positive_only = not loss.in_y_true_range(np.array([-1.0]))
        except (ValueError, AttributeError, TypeError):
            pass  # invalid power or link: the default tags, as scikit-learn
        return tags


_GLM_DOC_PARAMETERS = """
    alpha : float, default=1.0
        L2 penalty strength of scikit-learn's objective
        ``(1/(2Σw))·Σ w_i·dev_i + (α/2)·‖coef‖²``.
    fit_intercept : bool, default=True
        Fit an (unpenalized) intercept.
    solver : {"lbfgs", "newton-cholesky"}, default="newton-cholesky"
        scikit-learn's solver for the fit.
    max_iter : int, default=1000
        Maximum number of the solver's iterations.
    tol : float, default=1e-8
        The fit's tolerance. The erasure step assumes the fit is optimal, hence a tight
        default (scikit-learn's is 1e-4).
    curvature : {"hessian", "empirical_fisher"}, default="hessian"
        The true Hessian (the step is Newton's) or ``Σ w_iℓ'_i²x̃x̃ᵀ``.
    leave_out : bool, default=True
        Curvature over ``D∖S`` (Newton's step) or ``D`` (the paper's approximation).
    damping : float, default=0.0
        ``λ`` added to the mean-normalized curvature.
    eps : float, default=1.0
        Default scale of the step.
    check_membership : bool, default=True
        Refuse to forget samples that do not match a training sample still in the model.
    curvature_dtype : {"float64", "float32"}, default="float64"
        Accepted for a uniform interface; the GLM curvature is always float64.
    n_jobs : int, default=None
        Unused (one block); accepted for a uniform interface.
    certified : bool, default=False
        Refused (``True`` raises ``ValueError``): certified removal needs a loss with a
        bounded third derivative.
"""


def _glm_init(
    self,
    alpha,
    fit_intercept,
    solver,
    max_iter,
    tol,
    curvature,
    leave_out,
    damping,
    eps,
    check_membership,
    curvature_dtype,
    n_jobs,
    certified,
):
    self.alpha = alpha
    self.fit_intercept = fit_intercept
    self.solver = solver
    self.max_iter = max_iter
    self.tol = tol
    self.curvature = curvature
    self.leave_out = leave_out
    self.damping = damping
    self.eps = eps
    self.check_membership = check_membership
    self.curvature_dtype = curvature_dtype
    self.n_jobs = n_jobs
    self.certified = certified


class UnlearnablePoissonRegressor(_UnlearnableGLM):
    __doc__ = (
        """Poisson regression (log link) that can erase training samples with ``forget``.

    Fitted by scikit-learn's :class:`~sklearn.linear_model.PoissonRegressor`; the erasure
    step is Newton's step towards its refit on the remaining samples with the same
    ``alpha`` (curvature ``Σ w_iμ_ix̃x̃ᵀ + α·W'·P̃``, see ``sklearn_ssse.linear_model._glm``).

    Parameters
    ----------"""
        + _GLM_DOC_PARAMETERS
        + """
    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : int
    curvature_ : GLMCurvature
    n_samples_ : int
    n_forgotten_ : int
    fingerprints_ : FingerprintMultiset
    erasure_log_ : list of dict
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ssse import UnlearnablePoissonRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = rng.poisson(np.exp(X @ [0.3, -0.2, 0.1]))
    >>> model = UnlearnablePoissonRegressor(alpha=0.1).fit(X, y).forget(X[:5], y[:5])
    >>> model.n_samples_
    195
    """
    )

    def __init__(
        self,
        *,
        alpha=1.0,
        fit_intercept=True,
        solver="newton-cholesky",
        max_iter=1000,
        tol=1e-8,
        curvature="hessian",
        leave_out=True,
        damping=0.0,
        eps=1.0,
        check_membership=True,
        curvature_dtype="float64",
        n_jobs=None,
        certified=False,
    ):
        _glm_init(
            self,
            alpha,
            fit_intercept,
            solver,
            max_iter,
            tol,
            curvature,
            leave_out,
            damping,
            eps,
            check_membership,
            curvature_dtype,
            n_jobs,
            certified,
        )

    def _power(self):
        return 1.0

    def _sklearn_estimator(self):
        return PoissonRegressor(
            alpha=self.alpha,
            fit_intercept=self.fit_intercept,
            solver=self.solver,
            max_iter=self.max_iter,
            tol=self.tol,
        )


class UnlearnableGammaRegressor(_UnlearnableGLM):
    __doc__ = (
        """Gamma regression (log link) that can erase training samples with ``forget``.

    Fitted by scikit-learn's :class:`~sklearn.linear_model.GammaRegressor`; the step is
    Newton's towards its refit on the remaining samples with the same ``alpha``, with the
    true Hessian ``ℓ''_i = y_i/μ_i`` of the half deviance in the linear predictor.

    Parameters
    ----------"""
        + _GLM_DOC_PARAMETERS
        + """
    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : int
    curvature_ : GLMCurvature
    n_samples_ : int
    n_forgotten_ : int
    fingerprints_ : FingerprintMultiset
    erasure_log_ : list of dict
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
    """
    )

    def __init__(
        self,
        *,
        alpha=1.0,
        fit_intercept=True,
        solver="newton-cholesky",
        max_iter=1000,
        tol=1e-8,
        curvature="hessian",
        leave_out=True,
        damping=0.0,
        eps=1.0,
        check_membership=True,
        curvature_dtype="float64",
        n_jobs=None,
        certified=False,
    ):
        _glm_init(
            self,
            alpha,
            fit_intercept,
            solver,
            max_iter,
            tol,
            curvature,
            leave_out,
            damping,
            eps,
            check_membership,
            curvature_dtype,
            n_jobs,
            certified,
        )

    def _power(self):
        return 2.0

    def _sklearn_estimator(self):
        return GammaRegressor(
            alpha=self.alpha,
            fit_intercept=self.fit_intercept,
            solver=self.solver,
            max_iter=self.max_iter,
            tol=self.tol,
        )


class UnlearnableTweedieRegressor(_UnlearnableGLM):
    __doc__ = (
        """Tweedie regression that can erase training samples with ``forget``.

    Fitted by scikit-learn's :class:`~sklearn.linear_model.TweedieRegressor`; the step is
    Newton's towards its refit on the remaining samples with the same ``alpha``, with the
    true Hessian of the half deviance through the link (see
    :class:`sklearn_ssse._loss.TweedieLoss`).

    Parameters
    ----------
    power : float, default=0.0
        Tweedie power (0 normal, 1 Poisson, (1, 2) compound Poisson-Gamma, 2 Gamma, 3
        inverse Gaussian); ``(0, 1)`` is not a distribution (scikit-learn refuses it).
    link : {"auto", "identity", "log"}, default="auto"
        ``"auto"``: identity for ``power <= 0``, log otherwise (scikit-learn's rule)."""
        + _GLM_DOC_PARAMETERS
        + """
    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : int
    curvature_ : GLMCurvature
    n_samples_ : int
    n_forgotten_ : int
    fingerprints_ : FingerprintMultiset
    erasure_log_ : list of dict
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
    """
    )

    _parameter_constraints: dict = {
        **_UnlearnableGLM._parameter_constraints,
        "power": [Interval(Real, None, None, closed="neither")],
        "link": [StrOptions({"auto", "identity", "log"})],
    }

    def __init__(
        self,
        *,
        power=0.0,
        link="auto",
        alpha=1.0,
        fit_intercept=True,
        solver="newton-cholesky",
        max_iter=1000,
        tol=1e-8,
        curvature="hessian",
        leave_out=True,
        damping=0.0,
        eps=1.0,
        check_membership=True,
        curvature_dtype="float64",
        n_jobs=None,
        certified=False,
    ):
        self.power = power
        self.link = link
        _glm_init(
            self,
            alpha,
            fit_intercept,
            solver,
            max_iter,
            tol,
            curvature,
            leave_out,
            damping,
            eps,
            check_membership,
            curvature_dtype,
            n_jobs,
            certified,
        )

    _settings_fixed_at_fit = (*_UnlearnableGLM._settings_fixed_at_fit, "power", "link")

    def _power(self):
        return float(self.power)

    def _link(self):
        if self.link == "auto":
            return "identity" if self.power <= 0 else "log"
        return self.link

    def _sklearn_estimator(self):
        return TweedieRegressor(
            power=self.power,
            link=self.link,
            alpha=self.alpha,
            fit_intercept=self.fit_intercept,
            solver=self.solver,
            max_iter=self.max_iter,
            tol=self.tol,
        )
