"""scikit-learn API conformance of the rollback estimators.

The knowledge-graph models take ``(n, 3)`` integer id triples, the ratings
model and GradientRollback ``(n, 2)`` integer ``(user, item)`` pairs; most
generic checks feed random float matrices with arbitrary column counts, which
are rejected with a clear error.  Those checks are declared as expected
failures with that reason; everything else must pass.
"""

import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfluence import ComplEx, DistMult, GradientRollback, MatrixFactorization

_IDS = ("the estimator takes integer id tuples of fixed width ((h, r, t) triples or "
        "(user, item) pairs); the check feeds float features of another width")

_COMMON = [
    "check_fit_score_takes_y",
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_readonly_memmap_input",
    "check_n_features_in_after_fitting",
    "check_estimators_dtypes",
    "check_sample_weights_list",
    "check_all_zero_sample_weights_error",
    "check_sample_weight_equivalence_on_dense_data",
    "check_dtype_object",
    "check_pipeline_consistency",
    "check_estimators_nan_inf",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_dict_unchanged",
    "check_fit_idempotent",
    "check_fit_check_is_fitted",
    "check_n_features_in",
    "check_fit2d_predict1d",
]
_KG_ONLY = [
    "check_sample_weights_pandas_series",
    "check_sample_weights_not_an_array",
    "check_sample_weights_shape",
    "check_sample_weights_not_overwritten",
]
_MF_ONLY = [
    "check_regressors_train",
    "check_regressor_data_not_an_array",
    "check_regressors_no_decision_function",
    "check_supervised_y_2d",
    "check_regressors_int",
    "check_non_transformer_estimators_n_iter",
]
_GR_ONLY = [
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
    "check_positive_only_tag_during_fit",
]


def _expected(est):
    names = list(_COMMON)
    if isinstance(est, (DistMult, ComplEx)):
        names += _KG_ONLY
    elif isinstance(est, MatrixFactorization):
        names += _MF_ONLY
    else:
        names += _GR_ONLY
    return {n: _IDS for n in names}


@parametrize_with_checks(
    [
        DistMult(n_components=2, max_iter=2),
        ComplEx(n_components=2, max_iter=2),
        MatrixFactorization(n_components=2, max_iter=2),
        GradientRollback(MatrixFactorization(n_components=2, max_iter=2)),
    ],
    expected_failed_checks=_expected,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("est", [DistMult(n_components=3, alpha=0.1), ComplEx(),
                                 MatrixFactorization(batch_size=5),
                                 GradientRollback(DistMult(), scope="all")])
def test_clone_roundtrip(est):
    c = clone(est)
    assert c.get_params(deep=False).keys() == est.get_params(deep=False).keys()
    assert repr(c) == repr(est)
