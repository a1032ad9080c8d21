"""Linear support vector classification (squared hinge, L2) that can forget samples.

scikit-learn's ``LinearSVC(loss="squared_hinge", penalty="l2", dual=False)`` is liblinear's
primal L2-loss SVM: per one-vs-rest label,

    ½·w̃ᵀw̃ + C·Σ_i s_i·max(0, 1 − t_i·w̃ᵀx̃_i)²,      x̃ = [x, a], ``a`` = intercept_scaling,

with ``intercept_ = a·w̃_last``: the intercept is penalized. In the package's parameters
``θ = [w, b]`` (``b = a·w̃_last``, so ``x̃ = [x, 1]``) this is, divided by ``C``,

    Σ_i s_i·ℓ_i(θ) + ½·θᵀPθ,      P = diag(1/C, …, 1/C, 1/(C·a²)),

with :class:`~sklearn_ssse._loss.SquaredHingeLoss` ``ℓ``: the convention of every other
estimator (``_base``), with a penalized intercept. The loss is piecewise quadratic; its
generalized Hessian is ``2·Σ_{i active} s_i x̃x̃ᵀ + P`` (active: ``1 − t_i z_i > 0`` at the
fitted ``θ*``), one block per label, and removing samples subtracts the rank-one terms of
the active removed samples: a low-rank Woodbury downdate of the stored inverse. The Newton
step is the exact refit on ``D∖S`` when no remaining sample crosses the margin (the active
set is unchanged); otherwise it is the first generalized-Newton step towards it.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .._base import UnlearnableLinearMixin, transactional
from .._loss import SquaredHingeLoss
from .._weights import fit_sample_weight
from ._logistic import UnlearnableLogisticRegression

__all__ = ["UnlearnableLinearSVC"]


class UnlearnableLinearSVC(UnlearnableLinearMixin, ClassifierMixin, BaseEstimator):
    """Linear SVM (squared hinge, L2 penalty) that can erase training samples with ``forget``.

    Fitted by scikit-learn's :class:`~sklearn.svm.LinearSVC` with ``loss="squared_hinge"``,
    ``penalty="l2"``, ``dual=False`` (liblinear's primal trust-region Newton); one-vs-rest
    for a multiclass target, as ``LinearSVC``. The erasure step is the generalized Newton step
    of the refit on the remaining samples (see ``sklearn_ssse.linear_model._svm``).

    Parameters
    ----------
    C : float, default=1.0
        Inverse penalty strength, as in ``LinearSVC``.
    fit_intercept : bool, default=True
        Fit a (penalized) intercept, as liblinear.
    intercept_scaling : float, default=1.0
        The constant feature ``a`` liblinear appends; the intercept ``a·w̃_last`` is
        penalized by ``½w̃_last²``, i.e. ``b²/(2a²)``.
    class_weight : dict or "balanced", default=None
        As in ``LinearSVC``; fixed at fit time and stored with each sample's weight.
    tol : float, default=1e-8
        Tolerance of liblinear's solver. The step assumes an optimal fit, hence tighter than
        scikit-learn's 1e-4.
    max_iter : int, default=100000
        Maximum number of liblinear's iterations.
    curvature : {"hessian", "empirical_fisher"}, default="hessian"
        The generalized Hessian (``2·s_i`` per active sample) or ``Σ s_iℓ'_i² x̃x̃ᵀ``.
    leave_out : bool, default=True
        Curvature over ``D∖S`` (a Woodbury downdate) or over ``D`` (the paper).
    damping : float, default=0.0
        ``λ`` added to the mean-normalized curvature.
    eps : float, default=1.0
        Default scale of the step.
    check_membership : bool, default=True
        Refuse to forget samples that do not match a training sample still in the model.
    curvature_dtype : {"float64", "float32"}, default="float64"
        Precision of the stored curvature.
    n_jobs : int, default=None
        Parallel building of the per-label blocks.
    certified : bool, default=False
        Refused (``True`` raises ``ValueError``): the squared hinge has no bounded third
        derivative.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,), or 0.0 without intercept
    n_iter_ : int
    curvature_ : BlockFisherInverse
    n_samples_ : int
    n_forgotten_ : int
    fingerprints_ : FingerprintMultiset
    erasure_log_ : list of dict
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_ssse import UnlearnableLinearSVC
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> model = UnlearnableLinearSVC(C=0.1).fit(X, y).forget(X[:5], y[:5])
    >>> model.n_samples_
    564
    """

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
        "C": [Interval(Real, 0, None, closed="neither")],
        "intercept_scaling": [Interval(Real, 0, None, closed="neither")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    _loss = SquaredHingeLoss
    _settings_fixed_at_fit = (*UnlearnableLinearMixin._settings_fixed_at_fit, "intercept_scaling")

    def __init__(
        self,
        C=1.0,
        *,
        fit_intercept=True,
        intercept_scaling=1.0,
        class_weight=None,
        tol=1e-8,
        max_iter=100000,
        curvature="hessian",
        leave_out=True,
        damping=0.0,
        eps=1.0,
        check_membership=True,
        curvature_dtype="float64",
        n_jobs=None,
        certified=False,
    ):
        self.C = C
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.class_weight = class_weight
        self.tol = tol
        self.max_iter = max_iter
        self.curvature = curvature
        self.leave_out = leave_out
        self.damping = damping
        self.eps = eps
        self.check_membership = check_membership
        self.curvature_dtype = curvature_dtype
        self.n_jobs = n_jobs
        self.certified = certified

    def _penalty_strength(self):
        return 1.0 / self.C

    def _penalty_vector(self):
        """``1/C`` on the coefficients and ``1/(C·a²)`` on ``b = a·w̃_last`` (liblinear)."""
        penalty = np.full(self.n_features_in_ + int(self.fit_intercept), 1.0 / self.C)
        if self.fit_intercept:
            penalty[-1] = 1.0 / (self.C * self.intercept_scaling**2)
        return penalty

    def _split_theta(self, theta):
        coef, intercept = super()._split_theta(theta)
        return coef, (intercept if self.fit_intercept else 0.0)

    def _count_labels(self, Y):
        # The intercept is penalized: a label left with one class still has a finite optimum.
        return None

    def _encode_fit_targets(self, y):
        check_classification_targets(y)
        if type_of_target(y, input_name="y") not in ("binary", "multiclass"):
            raise ValueError(
                f"{type(self).__name__} supports binary and multiclass targets, got "
                f"{type_of_target(y, input_name='y')!r}."
            )
        y = column_or_1d(y, warn=True)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                "The number of classes has to be greater than one; got 1 class: "
                f"{self.classes_[0]!r}."
            )
        self._target_type = "binary" if len(self.classes_) == 2 else "multiclass"
        if self._target_type == "binary":
            return (y == self.classes_[1]).astype(np.float64)[:, None]
        return (y[:, None] == self.classes_[None, :]).astype(np.float64)

    # Removal targets are class labels, encoded as for one-vs-rest logistic regression.
    _encode_removed_targets = UnlearnableLogisticRegression._encode_removed_targets

    @_fit_context(prefer_skip_nested_validation=True)
    @transactional
    def fit(self, X, y, sample_weight=None):
        """Fit with scikit-learn's ``LinearSVC`` (primal) and build the curvature.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Stored (times the class weight) with each sample's fingerprint.

        Returns
        -------
        self
        """
        if self.certified:
            raise ValueError(
                f"{type(self).__name__} does not support certified=True (certified removal "
                "needs a loss with a bounded third derivative; the squared hinge has none)."
            )
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64)
        Y = self._encode_fit_targets(y)
        weights = fit_sample_weight(
            self, X, y, sample_weight, class_weight=self.class_weight, classes=self.classes_
        )
        model = LinearSVC(
            C=self.C,
            loss="squared_hinge",
            penalty="l2",
            dual=False,
            fit_intercept=self.fit_intercept,
            intercept_scaling=self.intercept_scaling,
            tol=self.tol,
            max_iter=self.max_iter,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            # The final weights (class weights applied) as sample weights: the same objective.
            model.fit(X, y, sample_weight=weights)
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            warnings.warn(
                f"liblinear did not converge (max_iter={self.max_iter}, tol={self.tol}); the "
                "erasure step assumes an optimal fit. Increase max_iter.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.n_features_in_ = X.shape[1]
        self.coef_ = np.array(model.coef_, dtype=np.float64)
        self.intercept_ = (
            np.array(model.intercept_, dtype=np.float64) if self.fit_intercept else 0.0
        )
        self.n_iter_ = int(model.n_iter_)
        return self._finish_fit(X, Y, sample_weight=weights)

    def decision_function(self, X):
        """Signed distances ``Xw + b``: shape (n,) for binary, (n, n_classes) otherwise.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", reset=False, dtype=np.float64)
        state = self._committed()  # coef_ and intercept_ of one committed state
        scores = np.asarray(X @ state["coef_"].T) + state["intercept_"]
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
