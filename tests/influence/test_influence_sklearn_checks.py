"""scikit-learn's estimator checks on InfluenceFunctions."""

from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfluence import InfluenceFunctions

_COLUMNS_ARE_TRAINING_POINTS = (
    "transform's columns are the training points, so repeating a point (the check's "
    "stand-in for an integer sample weight) adds columns: the outputs cannot match"
)
_MAX_ITER_IS_THE_SOLVERS = (
    "max_iter caps the iterative Hessian solvers (cg, lissa); with the default exact "
    "solver no iteration runs, so there is no n_iter_ to report"
)
EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": _COLUMNS_ARE_TRAINING_POINTS,
    "check_sample_weight_equivalence_on_sparse_data": _COLUMNS_ARE_TRAINING_POINTS,
    "check_non_transformer_estimators_n_iter": _MAX_ITER_IS_THE_SOLVERS,
    "check_transformer_n_iter": _MAX_ITER_IS_THE_SOLVERS,
}


@parametrize_with_checks(
    [
        InfluenceFunctions(LogisticRegression()),
        InfluenceFunctions(Ridge()),
        # gradient-boosted trees (their own removals); 20 iterations pass the regressor
        # quality check the bare model also needs them for
        InfluenceFunctions(HistGradientBoostingClassifier(max_iter=5)),
        InfluenceFunctions(HistGradientBoostingRegressor(max_iter=20)),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILURES,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
