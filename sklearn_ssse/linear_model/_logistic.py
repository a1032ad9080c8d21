"""L2-regularized logistic regression (binary, multinomial or one-vs-rest multiclass,
multi-label) that can forget training samples."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from scipy.special import expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .._base import UnlearnableLinearMixin, transactional
from .._certified import fit_logistic_perturbed
from .._loss import LogisticLoss, MultinomialLoss
from .._weights import fit_sample_weight
from ._multinomial import coupled_gram, null_direction, removal_factors

__all__ = ["UnlearnableLogisticRegression"]


def _fit_one_label(X, y, *, C, fit_intercept, solver, tol, max_iter, sample_weight=None):
    model = LogisticRegression(
        C=C, fit_intercept=fit_intercept, solver=solver, tol=tol, max_iter=max_iter
    )
    model.fit(X, y, sample_weight=sample_weight)
    intercept = model.intercept_[0] if fit_intercept else 0.0
    return model.coef_[0], intercept, int(model.n_iter_[0])


def _fit_multinomial(X, y, *, C, fit_intercept, solver, tol, max_iter, sample_weight=None):
    """scikit-learn's multinomial fit (its default for a multiclass target, on 1.6 as on
    newer releases: ``multi_class`` is left at its default)."""
    model = LogisticRegression(
        C=C, fit_intercept=fit_intercept, solver=solver, tol=tol, max_iter=max_iter
    )
    model.fit(X, y, sample_weight=sample_weight)
    intercept = model.intercept_ if fit_intercept else np.zeros(model.coef_.shape[0])
    n_iter = np.full(model.coef_.shape[0], int(np.max(model.n_iter_)), dtype=np.int32)
    return model.coef_.copy(), np.array(intercept, dtype=np.float64), n_iter


class UnlearnableLogisticRegression(UnlearnableLinearMixin, ClassifierMixin, BaseEstimator):
    """L2 logistic regression that can erase training samples with :meth:`forget`.

    Fits exactly scikit-learn's :class:`~sklearn.linear_model.LogisticRegression`
    objective ``C·Σ_i w_i ℓ_i + ½‖w‖²`` (intercept not penalized, ``w_i`` the sample
    weights): a binary target gives one binary problem, a multiclass target one
    multinomial (softmax) problem over all classes, as scikit-learn's default, with one
    coupled curvature block ``Σ_i w_i (diag(p_i) − p_ip_iᵀ) ⊗ x̃_ix̃_iᵀ + P`` over all classes'
    parameters (``multi_class="ovr"``: one binary problem and block per class), a
    multi-label indicator matrix one binary problem and block per column.

    The softmax objective is invariant to a common shift of the intercepts; its curvature
    block is singular along that direction, and the erasure step is taken in the
    orthogonal complement, keeping the mean of the fitted intercepts (see
    ``sklearn_ssse.linear_model._multinomial``).

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularization strength, as in scikit-learn.
    fit_intercept : bool, default=True
        Fit an unpenalized intercept per label.
    curvature : {"hessian", "empirical_fisher"}, default="hessian"
        Curvature of the erasure step: the Hessian ``∇²ℓ_i`` (a Newton step) or the
        empirical Fisher ``∇ℓ_i∇ℓ_iᵀ`` (the SSSE paper).
    leave_out : bool, default=True
        Sum the curvature over the retained samples ``D∖S`` (normalized by ``n−k``), as in
        the Newton step; ``False`` uses all of ``D`` (normalized by ``n``), as in the paper.
    damping : float, default=0.0
        Extra ``λ`` added to the mean-normalized curvature. ``0`` keeps the step exact for
        the Hessian. The paper's dampening ``λ`` equals its ℓ2 parameter, which ``B``
        already carries as ``P/m = 1/(mC)``, so its SSSE is ``damping=0``. With
        ``damping > 0`` the blocks are stored as eigendecompositions so that the leave-out
        matrix stays exact; each forget then costs two passes over the blocks instead of
        one.
    eps : float, default=1.0
        Default scale ``ε`` of the step (the paper's Eq. 4).
    solver : {"lbfgs", "newton-cg", "newton-cholesky", "sag", "saga"}, default="lbfgs"
        scikit-learn solver for each label's fit.
    tol : float, default=1e-6
        Solver tolerance. The erasure step assumes the fitted parameters are optimal, so it
        is tighter than scikit-learn's default; the fit's residual gradient still enters the
        step. Erasing 5 samples from the (standardized) breast-cancer data at ``C=0.5`` lands
        2.2% of the step's length away from the refit at ``1e-6`` and 0.24% at ``1e-8``
        (the exact Newton step's own error): use ``1e-8`` when the fit is cheap.
    max_iter : int, default=1000
        Maximum solver iterations per label.
    multi_class : {"multinomial", "ovr"}, default="multinomial"
        Multiclass targets: one softmax problem (scikit-learn's ``LogisticRegression``
        default) or one binary problem per class (one-vs-rest, as scikit-learn's
        ``OneVsRestClassifier(LogisticRegression())``). Binary and multi-label targets
        are unaffected.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplying the sample weights, as in scikit-learn.
        ``"balanced"`` weights are computed once at fit time, ``n / (n_classes ·
        bincount(y))`` (with sample weights where the installed scikit-learn's
        ``compute_class_weight`` takes them), and stored with each sample's fingerprint:
        ``forget`` removes a sample with the weight it was trained with and does not
        rebalance. With ``multi_class="ovr"`` each sample carries its class's weight in
        every binary problem. Not available for multi-label targets.
    check_membership : bool, default=True
        Refuse to forget samples that do not match a training sample still in the model.
    curvature_dtype : {"float64", "float32"}, default="float64"
        Storage precision of the curvature blocks.
    n_jobs : int, default=None
        Labels fitted and blocks built in parallel (joblib, threads by default).
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
    classes_ : ndarray of shape (n_classes,) or list of ndarray
        Class labels; for multi-label targets, one ``[0, 1]`` array per label.
    coef_ : ndarray of shape (1, n_features) or (n_labels, n_features)
    intercept_ : ndarray of shape (1,) or (n_labels,)
    curvature_ : BlockFisherInverse
        One block per label over ``[coef, intercept]``; multinomial: one block over all
        classes' ``[coef, intercept]``, class-major.
    n_samples_ : int
        Training samples still in the model.
    n_forgotten_ : int
        Samples erased so far.
    n_iter_ : ndarray of shape (n_labels,)
        Solver iterations per label (multinomial: the one fit's count, repeated).
    fingerprints_ : FingerprintMultiset
        Digests of the samples still in the model (not the data).
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

    See Also
    --------
    UnlearnableRidge : The same for ridge regression, where the Newton step is exact.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.preprocessing import scale
    >>> from sklearn_ssse import UnlearnableLogisticRegression
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = scale(X)
    >>> model = UnlearnableLogisticRegression(C=0.1).fit(X, y)
    >>> model.forget(X[:5], y[:5]).n_samples_
    564
    """

    _parameter_constraints: dict = {
        **UnlearnableLinearMixin._common_parameter_constraints,
        "C": [Interval(Real, 0, None, closed="neither")],
        "solver": [StrOptions({"lbfgs", "newton-cg", "newton-cholesky", "sag", "saga"})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "multi_class": [StrOptions({"multinomial", "ovr"})],
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    _settings_fixed_at_fit = (
        *UnlearnableLinearMixin._settings_fixed_at_fit,
        "multi_class",
        "class_weight",
    )

    @property
    def _loss(self):
        # Softmax once a multinomial fit has set coefficients (a refit or a streaming fit
        # first drops coef_, so a stale flag never names the loss).
        softmax = self.__dict__.get("_softmax", False) and "coef_" in self.__dict__
        return MultinomialLoss if softmax else LogisticLoss

    def __init__(
        self,
        C=1.0,
        *,
        fit_intercept=True,
        curvature="hessian",
        leave_out=True,
        damping=0.0,
        eps=1.0,
        solver="lbfgs",
        tol=1e-6,
        max_iter=1000,
        multi_class="multinomial",
        class_weight=None,
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
        self.C = C
        self.fit_intercept = fit_intercept
        self.curvature = curvature
        self.leave_out = leave_out
        self.damping = damping
        self.eps = eps
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.multi_class = multi_class
        self.class_weight = class_weight
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
        return 1.0 / self.C

    def _encode_fit_targets(self, y, *, softmax=False):
        """One column per label (binary: one). ``softmax``: the caller fits the multinomial
        problem of a multiclass target; callers that fit one-vs-rest problems (the
        streaming fits) leave it False and are refused for ``multi_class="multinomial"``."""
        self._softmax = False
        check_classification_targets(y)
        target_type = type_of_target(y, input_name="y")
        if target_type == "multilabel-indicator":
            Y = np.asarray(y.toarray() if hasattr(y, "toarray") else y)
            self._target_type = "multilabel"
            self.classes_ = [np.array([0, 1]) for _ in range(Y.shape[1])]
            constant = np.flatnonzero(Y.min(axis=0) == Y.max(axis=0))
            if len(constant):
                raise ValueError(
                    f"Labels {constant.tolist()} have a single class in the training data; "
                    "a logistic model needs both classes for every label."
                )
            return Y.astype(np.float64)
        y = column_or_1d(y, warn=True)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {self.classes_[0]!r}."
            )
        if len(self.classes_) == 2:
            self._target_type = "binary"
            return (y == self.classes_[1]).astype(np.float64)[:, None]
        self._target_type = "multiclass"
        if self.multi_class == "multinomial":
            if not softmax:
                raise NotImplementedError(
                    "This fit builds one-vs-rest problems; multinomial logistic regression "
                    "is fitted by fit() only. Use multi_class='ovr' to fit a multiclass "
                    "target this way."
                )
            self._softmax = True
        return (y[:, None] == self.classes_[None, :]).astype(np.float64)

    def _encode_removed_targets(self, y):
        if self._target_type == "multilabel":
            Y = np.asarray(y.toarray() if hasattr(y, "toarray") else y)
            if Y.dtype.kind == "c":
                raise ValueError("y_removed has a complex dtype; labels must be 0 and 1.")
            if Y.ndim == 1 and len(self.classes_) == Y.shape[0]:
                Y = Y[None, :]
            if Y.ndim != 2 or Y.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y_removed must be a label indicator matrix with {len(self.classes_)} "
                    f"columns, got shape {Y.shape}."
                )
            if not np.isin(Y, (0, 1)).all():
                raise ValueError("y_removed must contain only 0 and 1 for multi-label targets.")
            return Y.astype(np.float64)
        if hasattr(y, "toarray"):
            raise ValueError(
                "y_removed is a sparse matrix; sparse targets are only accepted for "
                "multi-label models. Pass the class labels as a dense 1-D array."
            )
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"y_removed must be 1-D for this model, got shape {y.shape}.")
        if y.dtype.kind == "c":
            raise ValueError("y_removed has a complex dtype; class labels must be real.")
        if y.dtype.kind == "O" and self.classes_.dtype.kind not in "OUS":
            # An object array of numbers names numeric classes; anything else cannot.
            as_values = np.asarray(y.tolist())
            y = as_values if as_values.dtype.kind in "biuf" else y
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            raise ValueError("y_removed contains NaN or infinity.")
        if y.dtype.kind in "OUS" and self.classes_.dtype.kind not in "OUS":
            raise ValueError(
                f"y_removed contains labels not seen in training: {np.unique(y)[:10].tolist()}; "
                f"the classes are {self.classes_.tolist()}."
            )
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if len(unknown):
            raise ValueError(
                f"y_removed contains labels not seen in training: {unknown.tolist()[:10]}; "
                f"the classes are {self.classes_.tolist()}."
            )
        if self._target_type == "binary":
            return (y == self.classes_[1]).astype(np.float64)[:, None]
        return (y[:, None] == self.classes_[None, :]).astype(np.float64)

    @_fit_context(prefer_skip_nested_validation=True)
    @transactional
    def fit(self, X, y, sample_weight=None):
        """Fit the L2 logistic regression(s) and build the curvature blocks.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a binary indicator matrix for multi-label problems.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample's loss. Stored (times the class weight)
            with each sample's fingerprint; ``forget`` removes each sample with it.

        Returns
        -------
        self
        """
        self._refuse_malformed_fit_input(X, y)
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse="csr",
            dtype=np.float64,
            multi_output=True,
            y_numeric=False,
        )
        Y = self._encode_fit_targets(y, softmax=True)
        weights = fit_sample_weight(
            self,
            X,
            y,
            sample_weight,
            class_weight=self.class_weight,
            classes=None if self._target_type == "multilabel" else self.classes_,
        )
        if self.certified and self._softmax:
            raise ValueError(
                "certified=True keeps one certificate per binary problem; use "
                "multi_class='ovr' for a certified multiclass model."
            )
        if self.certified and weights is not None:
            raise ValueError("certified=True does not support sample_weight or class_weight.")
        if self._softmax:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                self.coef_, self.intercept_, self.n_iter_ = _fit_multinomial(
                    X,
                    y,
                    C=self.C,
                    fit_intercept=self.fit_intercept,
                    solver=self.solver,
                    tol=self.tol,
                    max_iter=self.max_iter,
                    sample_weight=weights,
                )
            _warn_not_converged(caught)
            return self._finish_fit(X, Y, sample_weight=weights)
        if self.certified:
            noise = self._draw_objective_noise(Y.shape[1])
            theta, self.n_iter_ = fit_logistic_perturbed(
                X,
                Y,
                self._penalty_vector(),
                noise,
                fit_intercept=self.fit_intercept,
                max_iter=self.max_iter,
                tol=self.tol,
            )
            self.coef_ = theta[:, : X.shape[1]].copy()
            self.intercept_ = theta[:, -1].copy() if self.fit_intercept else np.zeros(Y.shape[1])
            return self._finish_fit(X, Y)
        fit_label = delayed(_fit_one_label)
        options = dict(
            C=self.C,
            fit_intercept=self.fit_intercept,
            solver=self.solver,
            tol=self.tol,
            max_iter=self.max_iter,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            results = Parallel(n_jobs=self.n_jobs, prefer="threads")(
                fit_label(X, Y[:, column], sample_weight=weights, **options)
                for column in range(Y.shape[1])
            )
        _warn_not_converged(caught)
        self.coef_ = np.vstack([coef for coef, _, _ in results])
        self.intercept_ = np.array([intercept for _, intercept, _ in results], dtype=np.float64)
        self.n_iter_ = np.array([n_iter for _, _, n_iter in results], dtype=np.int32)
        return self._finish_fit(X, Y, sample_weight=weights)

    # ------------------------------------------------------------------ softmax block
    def _null_direction(self):
        """The intercept-shift direction ``v`` if the softmax objective is flat along it."""
        if not (self.fit_intercept and self._penalty_vector()[-1] == 0.0):
            return None
        return null_direction(len(self.classes_), self.n_features_in_ + 1)

    def _coupled_gram(self, X, Y, theta, sample_weight):
        """``Σ_i w_i C_i ⊗ x̃_ix̃_iᵀ + P (+ c·vvᵀ)`` at ``theta``, in the curvature dtype."""
        G = coupled_gram(
            X,
            self._raw(X, theta),
            Y,
            curvature=self.curvature,
            fit_intercept=self.fit_intercept,
            sample_weight=sample_weight,
        )
        G.flat[:: G.shape[0] + 1] += np.tile(self._penalty_vector(), theta.shape[0])
        v = self._null_direction()
        if v is not None:
            # The objective's flat direction is fixed by a constraint (module docstring of
            # _multinomial): c·vvᵀ, c the mean intercept curvature, leaves the step in v^⊥
            # unchanged and is orthogonal to every later downdate.
            c = float(np.mean(np.diag(G)[v != 0]))
            G += (c if c > 0 else 1.0) * np.outer(v, v)
        return G.astype(self.curvature_dtype, copy=False)

    def _project(self, x):
        v = self._null_direction()
        return x if v is None else x - v * (v @ x)

    def _coupled_removal(self, Xt, Y, gradients, weights):
        """Right-hand side ``Σ_{i∈S} w_i ∇ℓ_i`` (class-major, in ``v^⊥``) and the factor
        rows of the removed samples' stored terms (at the fitted ``θ``)."""
        rhs = self._project(np.ascontiguousarray(gradients.T).ravel())
        factors = removal_factors(
            Xt,
            Xt @ self._theta_at_fit.T,
            Y,
            curvature=self.curvature,
            sample_weight=None if np.all(weights == 1.0) else weights,
        )
        return [rhs], [factors]

    def _coupled_direction(self, solution):
        return self._project(np.asarray(solution, dtype=np.float64)).reshape(len(self.classes_), -1)

    def decision_function(self, X):
        """Raw scores ``Xw + b``: shape (n,) for binary, (n, n_labels) otherwise.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray
        """
        return self._scores(X)[0]

    def _scores(self, X):
        """Decision scores and the committed state they were computed from (a refit in
        another thread publishes a new state at once, never piecemeal)."""
        check_is_fitted(self)
        state = self._committed()
        X = validate_data(self, X, accept_sparse="csr", reset=False, dtype=np.float64)
        scores = np.asarray(X @ state["coef_"].T) + state["intercept_"]
        return (scores[:, 0] if state["_target_type"] == "binary" else scores), state

    def predict_proba(self, X):
        """Probabilities: (n, 2) for binary, the softmax (multinomial) or normalized
        one-vs-rest (``multi_class="ovr"``) (n, n_classes) for multiclass, and each label's
        positive-class probability (n, n_labels) for multi-label.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray
        """
        scores, state = self._scores(X)
        if state.get("_softmax", False):
            return softmax(scores, axis=1)
        positive = expit(scores)  # no overflow warning for large negative scores
        if state["_target_type"] == "binary":
            return np.column_stack([1 - positive, positive])
        if state["_target_type"] == "multiclass":
            return positive / positive.sum(axis=1, keepdims=True)
        return positive

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        scores, state = self._scores(X)
        if state.get("_softmax", False):
            return log_softmax(scores, axis=1)
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class labels, or the (n, n_labels) 0/1 matrix for multi-label.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray
        """
        scores, state = self._scores(X)
        if state["_target_type"] == "binary":
            return state["classes_"][(scores > 0).astype(int)]
        if state["_target_type"] == "multiclass":
            return state["classes_"][np.argmax(scores, axis=1)]
        return (scores > 0).astype(int)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # class_weight is defined for single-output targets only (as in scikit-learn).
        tags.classifier_tags.multi_label = self.class_weight is None
        tags.input_tags.sparse = True
        return tags


def _warn_not_converged(caught):
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        warnings.warn(
            "The solver did not converge; the erasure step assumes an optimal model. "
            "Increase max_iter or scale the features.",
            ConvergenceWarning,
            stacklevel=3,
        )
