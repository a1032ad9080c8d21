"""Shared machinery of the unlearnable linear estimators: curvature build and the forget plan.

``UnlearnableLinearMixin`` is composed of one mixin per concern, each in a module of its own
(see ``doc/architecture.rst``): the transaction (``_transaction``), persistence
(``_persistence``), the erasure record (``_record``), validation (``_validation``), the ridge
accuracy check (``_accuracy``), certified bookkeeping (``_certified``), the out-of-core fits
(``_out_of_core``) and the membership check (``_membership``).

Conventions (worked out in ``doc/method.rst``). scikit-learn minimizes
``J(θ) = C·Σ_i ℓ_i(θ) + ½‖w‖²``; dividing by ``C`` gives ``Σ_i ℓ_i + ½·wᵀPw`` with
``P = 1/C`` on the coefficients and ``0`` on the intercept. At the optimum
``Σ_{i∈D} ∇ℓ_i(θ*) + Pθ* = 0``, so for ``D∖S`` the gradient at ``θ*`` is
``−Σ_{i∈S} ∇ℓ_i(θ*)`` and one Newton step is

    θ ← θ* + (Σ_{i∉S} ∇²ℓ_i + P)⁻¹ Σ_{i∈S} ∇ℓ_i = θ* + 1/(n−k) · B⁻¹ Σ_{i∈S} ∇ℓ_i

with ``B = (Σ_{i∉S} ∇²ℓ_i + P)/(n−k)``: the mean-normalized Hessian of the leave-``S``-out
objective. For a quadratic loss this step is the exact refit. The estimators generalize it
to ``B = (1/m)·(Σ c_i + P) + damping·I`` with ``c_i`` the Hessian or the empirical Fisher
term and the sum over ``D∖S`` (``leave_out=True``, ``m = n−k``) or ``D`` (the paper,
``m = n``), and scale it by ``ε``.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _bounds
from ._accuracy import _UNIT_ROUNDOFF, RidgeAccuracyMixin
from ._certified import CertifiedMixin
from ._fingerprint import FingerprintMultiset, row_fingerprints
from ._loss import augment, curvature_factors, raw_scores
from ._membership import MembershipMixin
from ._out_of_core import OutOfCoreMixin
from ._persistence import FORMAT_VERSION, SKOPS_TRUSTED_TYPES, PersistenceMixin
from ._pipeline import PIPELINE_MARK
from ._record import ErasureRecordMixin
from ._transaction import ForgetStep, ForgetTransactionMixin, transactional
from ._validation import ValidationMixin
from .curvature import BlockFisherInverse, CurvatureError, SharedRowFactors, weighted_gram

__all__ = ["FORMAT_VERSION", "SKOPS_TRUSTED_TYPES", "ForgetStep", "UnlearnableLinearMixin"]


class _Plan:
    """Everything a removal request changes, computed before anything is changed."""

    def __init__(self, direction, change, fingerprints, n_removed, **extra):
        self.direction = direction  # (L, d̃) unit step
        self.change = change
        self.fingerprints = fingerprints
        self.n_removed = n_removed
        # removed rows (augmented, dense), their encoded targets, Σ∇ℓ (d̃, L), digests
        # of the samples that matched, and the number that did not
        self.Xt, self.Y, self.gradients = extra["Xt"], extra["Y"], extra["gradients"]
        self.erased_digests, self.n_unmatched = extra["erased_digests"], extra["n_unmatched"]
        self.label_counts = extra.get("label_counts")  # per-label positives and total after
        # ridge: the penalized Gram X̃ᵀWX̃ + P and X̃ᵀWY − b over the samples that remain
        self.normal = extra.get("normal")
        # ridge: a fresh factorization replacing the downdate, and the accuracy check's log
        self.refactored, self.accuracy = extra.get("refactored"), extra.get("accuracy")
        self.weights = extra.get("weights")  # each removed sample's weight
        self.residual = extra.get("residual")  # the fit's residual the step corrects, (L, d̃)


class UnlearnableLinearMixin(
    ForgetTransactionMixin,
    PersistenceMixin,
    ErasureRecordMixin,
    ValidationMixin,
    RidgeAccuracyMixin,
    CertifiedMixin,
    OutOfCoreMixin,
    MembershipMixin,
):
    """Mixin giving a linear estimator ``forget``, given a loss and a target encoding.

    Subclasses define ``_loss``, ``_penalty_strength()``, ``_fit_coefficients(X, Y)``,
    ``_encode_fit_targets(y)`` and ``_encode_removed_targets(y)``.
    """

    _common_parameter_constraints = {
        "fit_intercept": ["boolean"],
        "curvature": [StrOptions({"hessian", "empirical_fisher"})],
        "leave_out": ["boolean"],
        "damping": [Interval(Real, 0, None, closed="left")],
        "eps": [Interval(Real, 0, None, closed="left")],
        "check_membership": ["boolean"],
        "curvature_dtype": [StrOptions({"float64", "float32"})],
        "n_jobs": [None, Integral],
        "certified": ["boolean"],
        "certified_epsilon": [Interval(Real, 0, None, closed="neither")],
        "certified_delta": [Interval(Real, 0, 1, closed="neither")],
        "noise_sigma": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "reproducible_noise": ["boolean"],
    }

    # ------------------------------------------------------------------ parameters <-> θ
    def _get_theta(self):
        """Coefficients and intercepts as one (L, d̃) matrix."""
        coef = np.atleast_2d(self.coef_)
        if not self.fit_intercept:
            return coef.copy()
        return np.hstack([coef, np.reshape(self.intercept_, (-1, 1))])

    def _split_theta(self, theta):
        """Inverse of :meth:`_get_theta`, shaped like the public attributes."""
        n_features = self.n_features_in_
        coef = theta[:, :n_features]
        if getattr(self, "_target_1d", False):
            return coef[0].copy(), float(theta[0, n_features]) if self.fit_intercept else 0.0
        if not self.fit_intercept:
            # scikit-learn's conventions: Ridge keeps a scalar 0.0, classifiers a zero vector.
            return coef.copy(), (
                0.0 if self._loss.name == "squared_error" else np.zeros(theta.shape[0])
            )
        return coef.copy(), np.array(theta[:, n_features], dtype=np.float64)

    def _raw(self, X, theta):
        return raw_scores(X, theta)

    # ------------------------------------------------------------------ curvature
    def _penalty_vector(self):
        penalty = np.full(self.n_features_in_ + int(self.fit_intercept), self._penalty_strength())
        if self.fit_intercept and not getattr(self, "certified", False):
            # The intercept is not penalized, as in scikit-learn. Certified removal needs a
            # strongly convex objective (see ``_certified``), so there it is.
            penalty[-1] = 0.0
        return penalty

    @property
    def _shared_block(self):
        """One block for all outputs when their curvature is the same (ridge's Hessian)."""
        return self.curvature == "hessian" and self._loss.name == "squared_error"

    @property
    def _coupled(self):
        """One block over all outputs' parameters (softmax): the estimator provides
        ``_coupled_gram`` and ``_coupled_removal`` (see ``linear_model._multinomial``)."""
        return getattr(self._loss, "coupled", False)

    def _build_curvature(self, X, Y, gram=None, sample_weight=None):
        """Build ``self.curvature_`` at the fitted parameters.

        ``gram`` is the (weighted) ``X̃ᵀWX̃ + P`` if the caller already formed it."""
        theta = self._get_theta()
        penalty = self._penalty_vector()
        dtype = np.dtype(self.curvature_dtype)
        n = X.shape[0]
        if self._coupled:
            grams = [self._coupled_gram(X, Y, theta, sample_weight)]
        elif self._shared_block:
            if gram is None:
                gram = weighted_gram(
                    X, sample_weight, fit_intercept=self.fit_intercept, dtype=dtype
                )
                gram.flat[:: gram.shape[0] + 1] += penalty.astype(dtype)
            grams = [gram]
        else:
            factors = curvature_factors(
                self._loss, self._raw(X, theta), Y, self.curvature, sample_weight
            )

            def block(column):
                G = weighted_gram(
                    X, factors[:, column] ** 2, fit_intercept=self.fit_intercept, dtype=dtype
                )
                G.flat[:: G.shape[0] + 1] += penalty.astype(dtype)
                return G

            columns = range(Y.shape[1])
            # Lazily: each gram is factored in place before the next is built, so peak memory
            # is the stored curvature plus about one block.
            if self.n_jobs in (None, 1) or Y.shape[1] == 1:
                grams = (block(c) for c in columns)
            else:
                grams = Parallel(n_jobs=self.n_jobs, prefer="threads", return_as="generator")(
                    delayed(block)(c) for c in columns
                )
        self._install_curvature(grams, n, theta)

    def _factor_curvature(self, grams, n):
        """Factor the penalized block Grams (consumed in place) and refuse ill-conditioned
        blocks; return the new curvature."""
        norms = []  # 1-norms of the grams, taken before fit_gram factors them in place
        curvature = BlockFisherInverse(
            damping=self.damping, dtype=self.curvature_dtype, n_jobs=self.n_jobs
        ).fit_gram(_recording_norms(grams, norms), n_samples=n)
        _check_conditioning(curvature, norms, np.dtype(self.curvature_dtype))
        return curvature

    def _install_curvature(self, grams, n, theta):
        """Factor the penalized block Grams (``Σ c_i + P`` at ``theta``, summed over ``n``
        samples; consumed in place), refuse ill-conditioned blocks, and store the curvature.
        Shared by ``fit`` and the out-of-core fits."""
        self.curvature_ = self._factor_curvature(grams, n)
        self._theta_at_fit = theta
        self.n_samples_ = int(n)

    def _reset_erasure_state(self, digests, label_counts, sample_weight=None):
        """A new fit is a new model: its samples' fingerprints (with their weights), nothing
        erased yet, the settings its state was built with, and no certificate
        (``_finish_fit`` builds one in certified mode)."""
        self._settings_at_fit = self._fit_settings()
        self._label_counts = label_counts
        if digests is not None:
            self.fingerprints_ = FingerprintMultiset(digests, sample_weight)
        self.n_forgotten_ = 0
        self.erasure_log_ = []
        stale = ["_certificate", "gradient_residual_bound_", "removal_budget_remaining_"]
        stale.append(PIPELINE_MARK)  # set again by sklearn_ssse.pipeline.Pipeline.fit
        stale.extend(_bounds._STATE + _bounds._OPTIONAL)  # the fit measures its own (``_bounds``)
        if not getattr(self, "certified", False):
            stale.append("_objective_noise")  # a certified fit has just drawn its own
        for attribute in stale:
            self.__dict__.pop(attribute, None)

    def _finish_fit(self, X, Y, gram=None, sample_weight=None):
        """Curvature, fingerprints and erasure state of a fit. ``sample_weight`` is the
        final per-sample weight (class weights applied), ``None`` for unit weights."""
        self._build_curvature(X, Y, gram=gram, sample_weight=sample_weight)
        self._reset_erasure_state(
            row_fingerprints(X, Y), self._count_labels(Y), sample_weight=sample_weight
        )
        _bounds.fit_state_from_data(self, X, Y, sample_weight)
        self._fit_certificate(X, Y)
        return self

    # ------------------------------------------------------------------ the forget plan
    def _count_labels(self, Y):
        """Positive and total sample counts per label (classifiers), to warn when a request
        leaves a label with a single class."""
        if self._loss.name == "squared_error":
            return None
        Y = np.asarray(Y.toarray() if hasattr(Y, "toarray") else Y)
        return np.asarray(Y.sum(axis=0), dtype=np.int64).ravel(), int(Y.shape[0])

    def _warn_single_class_labels(self, Y):
        counts = getattr(self, "_label_counts", None)
        if counts is None:
            return None
        positives, total = counts
        positives = positives - np.asarray(Y.sum(axis=0), dtype=np.int64).ravel()
        total = total - Y.shape[0]
        before = (counts[0] > 0) & (counts[0] < counts[1])
        single = np.flatnonzero(before & ((positives == 0) | (positives == total)))
        if single.size:
            names = getattr(self, "classes_", None)
            if getattr(self, "_target_type", None) == "multilabel" or names is None:
                which = single.tolist()  # multi-label: the label (column) indices
            elif len(names) == len(positives):
                which = [names[j].item() if hasattr(names[j], "item") else names[j] for j in single]
            else:
                which = single.tolist()
            warnings.warn(
                f"After this request label(s) {which} have samples of one class only: the "
                "refit's objective has no minimizer there (its unpenalized intercept goes to "
                "±infinity, and scikit-learn would drop a vanished class). The erasure step "
                "is the finite Newton step towards it; consider refitting.",
                UserWarning,
                stacklevel=3,
            )
        return positives, total

    def _plan_forget(self, X, y, sample_weight=None):
        self._check_fit_settings()
        X, Y = self._validate_removed(X, y)
        k = X.shape[0]
        if k >= self.n_samples_:
            raise ValueError(
                f"Cannot remove {k} samples from a model that holds {self.n_samples_}: at "
                "least one must remain. Fit a new model instead."
            )
        digests = row_fingerprints(X, Y)
        weights, missing, matched, fingerprints = self._match_removed(digests, k, sample_weight)
        unit = bool(np.all(weights == 1.0))

        theta = self._get_theta()
        Xt = augment(X, self.fit_intercept)
        Xt_dense = Xt.toarray() if sp.issparse(Xt) else Xt
        gradient_weights = self._loss.gradient(Xt_dense @ theta.T, Y)  # at the current θ
        # Σ_{i∈S} w_i ∇ℓ_i per output, (d̃, L)
        gradients = Xt_dense.T @ (gradient_weights if unit else gradient_weights * weights[:, None])
        # The Newton step of the D∖S objective from where the fit stopped: its gradient at
        # θ is r − Σ_S w_i ∇ℓ_i, with r the (carried) residual of the objective over D.
        residual = _bounds.residual_for_step(self)
        corrected = gradients if residual is None else gradients - residual.T
        n_rows = None
        if self._coupled:
            rhs, factors = self._coupled_removal(Xt_dense, Y, corrected, weights)
            n_rows = k
        else:
            # Stored curvature terms were evaluated at the fitted θ; remove exactly those.
            factor_weights = curvature_factors(
                self._loss,
                Xt_dense @ self._theta_at_fit.T,
                Y,
                self.curvature,
                None if unit else weights,
            )
            # Every block's factor rows are the same x̃_i, scaled per label: the pending
            # term keeps them once (not L scaled copies).
            if self._shared_block:
                rhs, factors = [corrected], SharedRowFactors(Xt_dense, factor_weights[:, :1])
            else:
                rhs = [corrected[:, column] for column in range(corrected.shape[1])]
                factors = SharedRowFactors(Xt_dense, factor_weights)

        normal = None
        if "_normal_gram" in self.__dict__:
            # Exact downdate of the stored normal equations (new arrays: copy on write).
            # (XᵀX of the removed rows is exactly symmetric, so the difference stays so.)
            weighted = Xt_dense if unit else Xt_dense * weights[:, None]
            gram = self._normal_gram - weighted.T @ Xt_dense
            normal = (gram, self._normal_rhs - weighted.T @ Y)
        # Ridge's exact step is checked (and repaired) against those normal equations.
        checked = normal is not None and self._step_is_exact()
        refactored = accuracy = None
        if self.leave_out:
            # One pass over each stored block for both the change and the step.
            try:
                change = self.curvature_.prepare_change(factors, sign=-1, rhs=rhs, n_samples=n_rows)
            except CurvatureError:
                if not checked:
                    raise
                change = None  # the downdate cannot represent it: refactor below
            solved = None if change is None else change.solutions
            # The Woodbury step's own residual check (``_refine_woodbury``): a solution whose
            # residual stays far above round-off after refinement is not committed.
            limit = self._woodbury_tolerance * np.sqrt(theta.shape[1]) * _UNIT_ROUNDOFF
            # (Curvatures solved by a fresh factorization, e.g. the GLMs', have no
            # low-rank residuals to check.)
            worst = 0.0 if change is None else max(getattr(change, "residuals", ()), default=0.0)
            if not checked and not worst <= limit:
                raise CurvatureError(
                    f"The erasure step lost accuracy in the low-rank update of the curvature "
                    f"(relative residual {worst:.3g} after refinement, tolerance {limit:.3g}): "
                    "the remaining samples barely determine some direction. Nothing was "
                    "changed; refit on the remaining data, or use damping > 0."
                )
        else:
            change = self.curvature_.prepare_change(factors, sign=-1, n_samples=n_rows)
            solved = self.curvature_.solve(rhs)
        if solved is None:
            direction = np.full_like(theta, np.nan)
        elif self._coupled:
            direction = self._coupled_direction(solved[0]) / (self.n_samples_ - k)
        else:
            direction = (solved[0].T if self._shared_block else np.vstack(solved)) / (
                self.n_samples_ - k
            )
        if checked:
            with np.errstate(invalid="ignore", over="ignore"):
                target = theta + direction
            target, refactored, accuracy = self._verified_solution(
                normal, target, change, self.n_samples_ - k
            )
            direction = target - theta
        if not np.all(np.isfinite(direction)):
            raise CurvatureError(
                "The erasure step is not finite; the curvature is ill-conditioned. Use "
                "damping > 0 or a stronger penalty, or refit."
            )
        label_counts = self._warn_single_class_labels(Y)
        return _Plan(
            direction,
            change,
            fingerprints,
            k,
            Xt=Xt_dense,
            Y=Y,
            gradients=gradients,
            erased_digests=matched,
            n_unmatched=len(missing),
            label_counts=label_counts,
            normal=normal,
            refactored=refactored,
            accuracy=accuracy,
            weights=weights,
            residual=residual,
        )

    # ------------------------------------------------------------------ exact refit
    @transactional
    def refine(self, X_remaining, y_remaining=None, *, tol=1e-10, max_iter=100):
        """Continue from the erased parameters to the exact refit, given the remaining data.

        Newton iterations on the objective of the samples still in the model, preconditioned
        by the stored (downdated) curvature and accelerated by Anderson mixing, one pass over
        the data each, until the predicted distance left is below ``tol·‖θ‖``; each label
        starts from the better of the erased and the fitted parameters, takes a step only if
        it lowers its objective (halving it otherwise), and the Hessian is rebuilt at the
        current point when that is cheaper than the iterations it saves. Then one pass
        rebuilds the curvature and the fit residual at the new point. The data must match the
        model's fingerprints exactly (the same multiset of samples). Records ``n_passes``,
        ``n_iter``, ``n_curvature_rebuilds``, ``n_rejected_steps``, the gradient norms and
        the time in :attr:`erasure_log_` (an entry with ``action="refine"``); see
        :doc:`/bounds` for the method.

        Parameters
        ----------
        X_remaining : {array-like, sparse matrix, chunk source}
            The samples not erased, shape (`n_samples_`, n_features), or a chunk source as
            taken by
            :func:`~sklearn_ssse.curvature.fit_streaming` (``y_remaining=None``).
        y_remaining : array-like, default=None
            Their targets (``None`` with a chunk source).
        tol : float, default=1e-10
            Relative distance left to the refit at which to stop (predicted from the last
            step and the observed contraction).
        max_iter : int, default=100

        Returns
        -------
        self
        """
        from ._refine import refine

        check_is_fitted(self, "curvature_")
        return refine(self, X_remaining, y_remaining, tol=tol, max_iter=max_iter)


def _scaled_one_norm(G):
    """1-norm of the equilibrated ``D^{-1/2} G D^{-1/2}`` (``D = diag G``) and ``sqrt(D)``."""
    root = np.sqrt(np.abs(np.diag(G)).astype(np.float64))
    inverse_root = 1.0 / np.where(root > 0, root, 1.0)
    # Column sums of |S| without forming S: Σ_i |G_ij|/(r_i r_j) = ((|G|ᵀ r⁻¹) ⊙ r⁻¹)_j.
    column_sums = (np.abs(G).T @ inverse_root.astype(G.dtype)) * inverse_root
    return float(column_sums.max()), root


def _recording_norms(grams, norms):
    """Pass ``grams`` on unchanged (a list stays a list), recording each one's equilibrated
    1-norm and diagonal scale (before ``fit_gram`` factors it in place)."""
    if isinstance(grams, (list, tuple)):
        norms.extend(_scaled_one_norm(G) for G in grams)
        return grams

    def generate():
        for G in grams:
            norms.append(_scaled_one_norm(G))
            yield G

    return generate()


def _check_conditioning(curvature, norms, dtype):
    """Refuse numerically singular undamped blocks.

    A Cholesky factor exists for some matrices that are singular to working precision;
    their inverse would turn round-off into arbitrarily large erasure steps. The test is
    on the equilibrated matrix ``S = D^{-1/2} M D^{-1/2}`` (``D = diag M``): a badly scaled
    but well-posed problem (a feature in other units) is solved as accurately as its
    scaled twin by Cholesky, so only ``cond₁(S) = ‖S‖₁‖S⁻¹‖₁`` (exact: the engine reads
    ``M⁻¹`` once when it factors the block)
    with ``cond₁(S)·u >= 1/2`` (``u`` the unit round-off of the curvature's dtype) is
    refused.
    """
    m = curvature.n_samples_
    for b, (blk, (norm, _)) in enumerate(zip(curvature.blocks_, norms)):
        if blk.factor is None:
            # Damped: B = QΛQᵀ/m + λI from an eigendecomposition (computed in float64 for
            # either storage), whose small eigenvalues carry an absolute error of about
            # u₆₄·λ_max (it is not invariant to a rescaling of the features, unlike
            # Cholesky). The shift λ bounds cond(B); refuse when it does not bound it
            # enough. Storing Q in float32 adds a relative u₃₂ to B⁻¹ whatever cond(B).
            eigvals = np.asarray(blk.eigvals, dtype=np.float64)
            shift = curvature.damping
            condition = (eigvals[-1] / m + shift) / (max(eigvals[0], 0.0) / m + shift)
            if not condition < 0.5 / np.finfo(np.float64).eps:
                raise CurvatureError(
                    f"Curvature block {b} is too ill-conditioned for {np.dtype(dtype).name} "
                    f"with damping={shift:g} (condition number {condition:.3g}); use "
                    "float64 curvature, a larger damping, or standardize the features."
                )
            continue
        # ‖S⁻¹‖₁ with S⁻¹ = D^{1/2} M⁻¹ D^{1/2}, read by the engine from M⁻¹ when it
        # factored the block (with the same D = diag M).
        condition = norm * blk.scaled_inverse_norm
        # Refuse when cond·u >= 1/2: the solve could not promise even a leading digit. (The
        # classical 1/(d·u) is a worst-case bound far above the realized error of a Cholesky
        # solve; it would refuse float32 blocks of a few thousand features that solve to
        # about 1e-5, as the benchmarks measure against float64.)
        if not condition < 0.5 / np.finfo(dtype).eps:
            raise CurvatureError(
                f"Curvature block {b} is numerically singular (condition number "
                f"{condition:.3g} after scaling); use damping > 0, a stronger penalty, "
                "float64 curvature, or remove collinear features."
            )
