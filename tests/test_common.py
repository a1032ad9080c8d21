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
        UnlearnableLinearSVC(intercept_scaling=3.0, class_weight="balanced"),
        UnlearnablePoissonRegressor(),
        UnlearnableGammaRegressor(),
        UnlearnableTweedieRegressor(),
        UnlearnableTweedieRegressor(power=1.5, curvature="empirical_fisher", damping=1e-3),
    ]


@parametrize_with_checks(_public_estimators())
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
