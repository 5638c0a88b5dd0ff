"""scikit-learn's estimator checks on InfluenceFunctions."""

from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfluence import InfluenceFunctions

_COLUMNS_ARE_TRAINING_POINTS = (
    "transform's columns are the training points, so repeating a point (the check's "
    "stand-in for an integer sample weight) adds columns: the outputs cannot match"
)
EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": _COLUMNS_ARE_TRAINING_POINTS,
    "check_sample_weight_equivalence_on_sparse_data": _COLUMNS_ARE_TRAINING_POINTS,
}


@parametrize_with_checks(
    [InfluenceFunctions(LogisticRegression()), InfluenceFunctions(Ridge())],
    expected_failed_checks=lambda est: EXPECTED_FAILURES,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
