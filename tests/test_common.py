"""scikit-learn's estimator checks over every public estimator, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_ssse import (
    UnlearnableGammaRegressor,
    UnlearnableLinearSVC,
    UnlearnableLogisticRegression,
    UnlearnablePoissonRegressor,
    UnlearnableRidge,
    UnlearnableRidgeClassifier,
    UnlearnableTweedieRegressor,
)


def _public_estimators():
    return [
        UnlearnableLogisticRegression(),  # multinomial on multiclass targets
        UnlearnableLogisticRegression(multi_class="ovr"),
        UnlearnableLogisticRegression(curvature="empirical_fisher", leave_out=False, damping=1e-4),
        UnlearnableRidge(),
        UnlearnableRidge(curvature="empirical_fisher", damping=1e-3),
        UnlearnableRidgeClassifier(),
        UnlearnableLinearSVC(),
        # (class_weight="balanced" is not weight-equivalent on scikit-learn 1.6, which
        # balances by counts, and liblinear's primal solver stops a few 1e-9 apart on
        # weighted and repeated data when intercept_scaling != 1: both are tested against
        # LinearSVC in test_svm.py)
        UnlearnableLinearSVC(curvature="empirical_fisher", damping=1e-3),
        UnlearnablePoissonRegressor(),
        UnlearnableGammaRegressor(),
        UnlearnableTweedieRegressor(),
        UnlearnableTweedieRegressor(power=1.5, curvature="empirical_fisher", damping=1e-3),
    ]


@parametrize_with_checks(_public_estimators())
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
