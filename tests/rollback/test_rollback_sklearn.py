"""scikit-learn API conformance of the rollback estimators.

The knowledge-graph models take ``(n, 3)`` integer id triples, the ratings model
``(n, 2)`` integer ``(user, item)`` pairs, GradientRollback those of the model it wraps.
Most generic checks feed float features of their own widths, which are rejected with
a clear error: those checks are expected failures, each with the data it feeds, and
every property they test is tested below on valid id data (the test named in the
reason).  Every other check passes.
"""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfluence import ComplEx, DistMult, GradientRollback, MatrixFactorization

# check -> (the data it feeds, the test of its property on id data below)
_FLOAT_PREMISES = {
    "check_fit_score_takes_y": ("uniform floats, 30 x 3", "test_fit_and_score_take_y"),
    "check_estimators_overwrite_params": (
        "make_blobs floats, 21 x 2",
        "test_params_not_overwritten_and_no_public_attributes_but_fitted"),
    "check_dont_overwrite_parameters": (
        "uniform floats, 20 x 3",
        "test_params_not_overwritten_and_no_public_attributes_but_fitted"),
    "check_estimators_fit_returns_self": ("make_blobs floats, 21 x 2",
                                          "test_fit_returns_self_and_is_idempotent"),
    "check_readonly_memmap_input": ("make_blobs floats, 21 x 2",
                                    "test_pickle_and_readonly_memmap"),
    "check_n_features_in_after_fitting": ("normal floats, 15 x 4",
                                          "test_n_features_in_and_feature_names"),
    "check_estimators_dtypes": ("uniform features, 20 x 5, as float32/64 and int32/64",
                                "test_id_dtypes_object_and_fortran_input"),
    "check_sample_weights_list": ("uniform floats, 30 x 3",
                                  "test_sample_weight_list_series_not_overwritten_and_errors"),
    "check_all_zero_sample_weights_error": (
        "make_classification floats, 100 x 20",
        "test_sample_weight_list_series_not_overwritten_and_errors"),
    "check_sample_weight_equivalence_on_dense_data": (
        "uniform floats, 15 x 30; nor are weights repetitions by design: a zero-weight "
        "example keeps its batch slot, so the others' batches and negatives do not change",
        "test_sample_weight_list_series_not_overwritten_and_errors"),
    "check_dtype_object": ("uniform floats as an object array, 10 columns",
                           "test_id_dtypes_object_and_fortran_input"),
    "check_pipeline_consistency": ("make_blobs floats, 30 x 3", "test_pipeline_consistency"),
    "check_estimators_nan_inf": ("uniform floats, 10 x 3", "test_nan_and_inf_rejected"),
    "check_estimators_pickle": ("make_blobs floats, 30 x 3", "test_pickle_and_readonly_memmap"),
    "check_estimators_pickle(readonly_memmap=True)": ("make_blobs floats, 30 x 3",
                                                      "test_pickle_and_readonly_memmap"),
    "check_f_contiguous_array_estimator": ("uniform floats, 20 x 3",
                                           "test_id_dtypes_object_and_fortran_input"),
    "check_methods_sample_order_invariance": ("uniform floats, 20 x 3",
                                              "test_sample_order_and_subset_invariance"),
    "check_methods_subset_invariance": ("uniform floats, 20 x 3",
                                        "test_sample_order_and_subset_invariance"),
    "check_dict_unchanged": ("uniform floats, 20 x 3",
                             "test_predict_and_transform_leave_the_estimator_unchanged"),
    "check_fit_idempotent": ("normal floats around 100, 100 x 2",
                             "test_fit_returns_self_and_is_idempotent"),
    "check_fit_check_is_fitted": ("normal floats around 100, 100 x 2",
                                  "test_methods_need_fit"),
    "check_n_features_in": ("normal floats around 100, 100 x 2",
                            "test_n_features_in_and_feature_names"),
    "check_fit2d_predict1d": ("uniform floats, 20 x 3", "test_n_features_in_and_feature_names"),
}
_REGRESSOR_PREMISES = {  # MatrixFactorization
    **{name: ("scikit-learn's regression data set, floats, 200 x 10",
              "test_matrix_factorization_targets_and_n_iter") for name in (
        "check_regressors_train", "check_regressors_train(readonly_memmap=True)",
        "check_regressors_train(readonly_memmap=True,X_dtype=float32)",
        "check_regressor_data_not_an_array")},
    "check_regressors_no_decision_function": ("normal floats, 10 x 4",
                                              "test_matrix_factorization_targets_and_n_iter"),
    "check_supervised_y_2d": ("uniform floats, 30 x 3",
                              "test_matrix_factorization_targets_and_n_iter"),
    "check_regressors_int": ("regression floats, 50 x 10",
                             "test_matrix_factorization_targets_and_n_iter"),
    "check_non_transformer_estimators_n_iter": ("iris, floats, 150 x 4",
                                                "test_matrix_factorization_targets_and_n_iter"),
}
_TRANSFORMER_PREMISES = {  # GradientRollback
    name: ("standardised make_blobs floats, 30 x 3",
           "test_gradient_rollback_is_a_transformer_of_query_ids") for name in (
        "check_transformer_data_not_an_array", "check_transformer_general",
        "check_transformer_general(readonly_memmap=True)", "check_transformer_preserve_dtypes")
}
_PAIR_PREMISES = {  # integer data, but pairs: a knowledge-graph model takes triples
    name: ("integer data of 2 columns, 12 or 16 x 2",
           "test_sample_weight_list_series_not_overwritten_and_errors") for name in (
        "check_sample_weights_pandas_series", "check_sample_weights_not_an_array",
        "check_sample_weights_shape", "check_sample_weights_not_overwritten")
}


def _reason(data, test):
    return (f"the check feeds {data}; the estimator takes integer id tuples of fixed "
            f"width ((h, r, t) triples or (user, item) pairs); tested with ids in {test}")


def _expected(est):
    model = est.estimator if isinstance(est, GradientRollback) else est
    premises = dict(_FLOAT_PREMISES)
    if isinstance(model, (DistMult, ComplEx)):
        premises.update(_PAIR_PREMISES)
    if isinstance(est, MatrixFactorization):
        premises.update(_REGRESSOR_PREMISES)
    if isinstance(est, GradientRollback):
        premises.update(_TRANSFORMER_PREMISES)
    return {name: _reason(*p) for name, p in premises.items()}


@parametrize_with_checks(
    [
        DistMult(n_components=2, max_iter=2),
        ComplEx(n_components=2, max_iter=2),
        MatrixFactorization(n_components=2, max_iter=2),
        GradientRollback(MatrixFactorization(n_components=2, max_iter=2)),
        GradientRollback(DistMult(n_components=2, max_iter=2)),
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


# ----------------------------------------------------------------------------
# What the generic checks test, on integer id data
# ----------------------------------------------------------------------------
# The generic checks feed float features of their own widths (see _PREMISES); each
# property they test is tested here with valid (h, r, t) triples / (user, item) pairs.


def _triples(n=60, ne=8, nr=3, seed=0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.integers(0, ne, n), rng.integers(0, nr, n),
                         rng.integers(0, ne, n)])
    X[:ne] = np.column_stack([np.arange(ne), np.arange(ne) % nr, (np.arange(ne) + 1) % ne])
    X[ne:ne + nr, 1] = np.arange(nr)  # every id occurs in training
    return X


def _ratings(n=80, nu=10, ni=8, seed=0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.integers(0, nu, n), rng.integers(0, ni, n)])
    X[:nu, 0], X[:ni, 1] = np.arange(nu), np.arange(ni)
    y = (X[:, 0] % 3) - (X[:, 1] % 2) + 0.3 * rng.normal(size=n)
    return X, y


_KW = dict(n_components=2, max_iter=3, batch_size=8, random_state=0)


class _Case:
    """An estimator with valid training data and the query data of each of its methods."""

    def __init__(self, name, make, X, y, queries, scored):
        self.name, self._make, self.X, self.y = name, make, X, y
        self.queries = queries  # method -> query ids; rows are independent samples
        self.scored = scored  # the arguments of score

    def make(self, **params):
        return self._make().set_params(**params)

    def fit(self, est, X=None, **kw):
        X = self.X if X is None else X
        return est.fit(X, **kw) if self.y is None else est.fit(X, self.y, **kw)

    def outputs(self, est, convert=np.asarray):
        out = {}
        for method, Q in self.queries.items():
            res = getattr(est, method)(convert(Q))
            out[method] = res.toarray() if sp.issparse(res) else np.asarray(res)
        if self.scored is not None:
            out["score"] = est.score(convert(self.scored[0]), *self.scored[1:])
        return out


def _cases():
    T = _triples()
    pairs = T[:20, :2]
    kg_methods = {"decision_function": pairs, "predict_proba": pairs, "predict": pairs}
    Xr, yr = _ratings()
    Tq = _triples(seed=1)[:20]
    return [
        _Case("DistMult", lambda: DistMult(**_KW), T, None, kg_methods, (Tq,)),
        _Case("ComplEx", lambda: ComplEx(**_KW), T, None, kg_methods, (Tq,)),
        _Case("MatrixFactorization", lambda: MatrixFactorization(**_KW), Xr, yr,
              {"predict": Xr[:25]}, (Xr[:25], yr[:25])),
        _Case("GradientRollback(MatrixFactorization)",
              lambda: GradientRollback(MatrixFactorization(**_KW)), Xr, yr,
              {"transform": Xr[:25], "predict": Xr[:25]}, (Xr[:25], yr[:25])),
        _Case("GradientRollback(DistMult)", lambda: GradientRollback(DistMult(**_KW)), T,
              None, {"transform": Tq, "predict": pairs, "predict_proba": pairs}, (Tq,)),
    ]


CASES = _cases()


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request):
    return request.param


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_fit_returns_self_and_is_idempotent(case):
    est = case.make()
    assert case.fit(est) is est
    first = case.outputs(est)
    _assert_same(case.outputs(case.fit(est)), first)  # refit: the same model
    _assert_same(case.outputs(case.fit(clone(est))), first)


def test_pickle_and_readonly_memmap(case):
    from sklearn.utils._testing import create_memmap_backed_data

    est = case.fit(case.make())
    ref = case.outputs(est)
    restored = pickle.loads(pickle.dumps(est))
    _assert_same(case.outputs(restored), ref)
    # read-only memory-mapped training ids, targets and sample weights
    sw = np.linspace(0.5, 1.5, len(case.X))
    X_mm, sw_mm = create_memmap_backed_data([case.X, sw])
    y_mm = None if case.y is None else create_memmap_backed_data(case.y)
    est_mm = case.make()
    est_mm.fit(X_mm, sample_weight=sw_mm) if y_mm is None else est_mm.fit(X_mm, y_mm,
                                                                          sample_weight=sw_mm)
    weighted = case.fit(case.make(), sample_weight=sw)
    _assert_same(case.outputs(est_mm), case.outputs(weighted))
    # queries memory-mapped too; and the fitted model pickles after such a fit
    _assert_same(case.outputs(est_mm, convert=create_memmap_backed_data),
                 case.outputs(weighted))
    _assert_same(case.outputs(pickle.loads(pickle.dumps(est_mm))), case.outputs(weighted))


def test_params_not_overwritten_and_no_public_attributes_but_fitted(case):
    from joblib import hash as joblib_hash

    est = case.make()
    params = {k: joblib_hash(v) for k, v in est.get_params().items()}
    before = set(vars(est))
    case.fit(est)
    assert {k: joblib_hash(v) for k, v in est.get_params().items()} == params
    added = set(vars(est)) - before
    assert added and all(a.endswith("_") or a.startswith("_") for a in added), added


def test_predict_and_transform_leave_the_estimator_unchanged(case):
    from joblib import hash as joblib_hash

    est = case.fit(case.make())
    state = joblib_hash(vars(est))
    case.outputs(est)
    assert joblib_hash(vars(est)) == state


def test_sample_order_and_subset_invariance(case):
    est = case.fit(case.make())
    perm = np.random.default_rng(0).permutation(20)
    for method, Q in case.queries.items():
        full = case.outputs(est)[method]
        Q = Q[:20]
        got = getattr(est, method)(Q[perm])
        got = got.toarray() if sp.issparse(got) else got
        np.testing.assert_array_equal(got, full[:20][perm], err_msg=method)
        for rows in (slice(0, 7), slice(7, 8), slice(8, 20)):
            part = getattr(est, method)(Q[rows])
            part = part.toarray() if sp.issparse(part) else part
            np.testing.assert_array_equal(part, full[rows], err_msg=method)


def test_methods_need_fit(case):
    from sklearn.exceptions import NotFittedError

    est = case.make()
    for method, Q in case.queries.items():
        with pytest.raises(NotFittedError):
            getattr(est, method)(Q)
    if case.scored is not None:
        with pytest.raises(NotFittedError):
            est.score(*case.scored)


def test_n_features_in_and_feature_names(case):
    pd = pytest.importorskip("pandas")
    width = case.X.shape[1]
    est = case.fit(case.make())
    assert est.n_features_in_ == width
    assert not hasattr(est, "feature_names_in_")
    names = ["head", "relation", "tail"] if width == 3 else ["user", "item"]
    df = pd.DataFrame(case.X, columns=names)
    est_df = case.fit(case.make(), X=df)
    assert est_df.n_features_in_ == width
    np.testing.assert_array_equal(est_df.feature_names_in_, names)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        _assert_same(case.outputs(est_df), case.outputs(est))
    with pytest.warns(UserWarning, match="fitted without feature names"):
        est.predict(pd.DataFrame(case.queries["predict"], columns=names[:2]))
    # queries as DataFrames with the training columns they hold: the same outputs
    frames = case.outputs(est_df, convert=lambda Q: pd.DataFrame(Q, columns=names[:Q.shape[1]]))
    _assert_same(frames, case.outputs(est))
    for method, Q in case.queries.items():
        with pytest.raises(ValueError, match="feature names|integer ids|shape"):
            getattr(est_df, method)(pd.DataFrame(Q, columns=[f"c{i}" for i in range(Q.shape[1])]))
        with pytest.raises(ValueError, match="2\\)|3\\)|features"):  # a column too few
            getattr(est, method)(Q[:, :1])
        with pytest.raises(ValueError, match="1-D|2D|2-D|reshape"):  # a single sample, 1-D
            getattr(est, method)(Q[0])
    with pytest.raises(ValueError, match="shape|features"):
        case.fit(case.make(), X=case.X[:, :1])


def test_sample_weight_list_series_not_overwritten_and_errors(case):
    pd = pytest.importorskip("pandas")
    n = len(case.X)
    sw = 0.5 + 0.25 * (np.arange(n) % 7)  # exact in float32
    sw[3] = 0.0
    ref = case.outputs(case.fit(case.make(), sample_weight=sw))
    unweighted = case.outputs(case.fit(case.make()))
    assert not np.allclose(ref[next(iter(case.queries))], unweighted[next(iter(case.queries))])
    for weights in (list(sw), pd.Series(sw), sw.astype(np.float32)):
        _assert_same(case.outputs(case.fit(case.make(), sample_weight=weights)), ref)
    sw_copy = sw.copy()
    case.fit(case.make(), sample_weight=sw)
    np.testing.assert_array_equal(sw, sw_copy)
    with pytest.raises(ValueError, match="[Ss]ample.weight"):
        case.fit(case.make(), sample_weight=np.ones(n - 1))
    with pytest.raises(ValueError, match="[Ss]ample.weight"):
        case.fit(case.make(), sample_weight=np.ones((n, 2)))
    with pytest.raises(ValueError, match="weight.*zero|zero.*weight"):
        case.fit(case.make(), sample_weight=np.zeros(n))
    with pytest.raises(ValueError, match="non-negative"):
        case.fit(case.make(), sample_weight=-sw)


def test_id_dtypes_object_and_fortran_input(case):
    ref = case.outputs(case.fit(case.make()))
    for X in (case.X.astype(np.int32), case.X.astype(np.uint16), case.X.astype(np.float64),
              case.X.astype(np.float32), case.X.astype(object), np.asfortranarray(case.X),
              case.X.tolist()):
        _assert_same(case.outputs(case.fit(case.make(), X=X)), ref)
    # queries in the same dtypes
    for convert in (lambda Q: Q.astype(object), lambda Q: Q.astype(np.float32),
                    np.asfortranarray, lambda Q: Q.tolist()):
        _assert_same(case.outputs(case.fit(case.make()), convert=convert), ref)
    bad = case.X.astype(object)
    bad[0, 0] = {"foo": "bar"}
    with pytest.raises((TypeError, ValueError), match="number|integer ids"):
        case.fit(case.make(), X=bad)
    bad[0, 0] = "a"
    with pytest.raises((TypeError, ValueError), match="number|integer ids|convert"):
        case.fit(case.make(), X=bad)
    frac = case.X.astype(np.float64)
    frac[0, 0] += 0.5
    with pytest.raises(ValueError, match="integer ids"):
        case.fit(case.make(), X=frac)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_and_inf_rejected(case, value):
    X = case.X.astype(np.float64)
    X[0, 0] = value
    with pytest.raises(ValueError, match="NaN|infinity"):
        case.fit(case.make(), X=X)
    est = case.fit(case.make())
    for method, Q in case.queries.items():
        Q = Q.astype(np.float64)
        Q[0, 0] = value
        with pytest.raises(ValueError, match="NaN|infinity"):
            getattr(est, method)(Q)


def test_negative_ids_rejected_and_positive_only_tag(case):
    from sklearn.utils import get_tags

    assert get_tags(case.make()).input_tags.positive_only
    assert not get_tags(case.make()).input_tags.allow_nan
    X = case.X.copy()
    X[0, 0] = -1
    with pytest.raises(ValueError, match="Negative values in data"):
        case.fit(case.make(), X=X)


def test_set_params_and_clone(case):
    est = case.make()
    inner = "estimator__" if isinstance(est, GradientRollback) else ""
    est.set_params(**{inner + "max_iter": 4, inner + "learning_rate": 0.02})
    direct = case.make(**{inner + "max_iter": 4, inner + "learning_rate": 0.02})
    assert est.get_params(deep=True).keys() == direct.get_params(deep=True).keys()
    _assert_same(case.outputs(case.fit(est)), case.outputs(case.fit(direct)))
    c = clone(est)
    assert c is not est and repr(c) == repr(est)
    assert not hasattr(c, "n_features_in_")
    _assert_same(case.outputs(case.fit(c)), case.outputs(est))
    with pytest.raises(ValueError):
        case.fit(case.make(**{inner + "max_iter": 0}))


def test_pipeline_consistency(case):
    from sklearn.pipeline import make_pipeline

    est = case.fit(case.make())
    pipe = case.fit(make_pipeline(case.make()))
    _assert_same(case.outputs(pipe), case.outputs(est))


def test_fit_and_score_take_y():
    import inspect

    for case in CASES:
        est = case.make()
        for method in ("fit", "score", "fit_transform"):
            if hasattr(est, method):
                args = list(inspect.signature(getattr(est, method)).parameters)
                assert args[1] == "y", (case.name, method, args)


def test_matrix_factorization_targets_and_n_iter():
    X, y = _ratings()
    ref = MatrixFactorization(**_KW).fit(X, y)
    assert ref.n_iter_ == _KW["max_iter"]
    assert not hasattr(ref, "decision_function")
    # integer ratings are ratings; a column vector is raveled with a warning
    yi = np.round(y).astype(int)
    np.testing.assert_array_equal(MatrixFactorization(**_KW).fit(X, yi).predict(X),
                                  MatrixFactorization(**_KW).fit(X, yi.astype(float)).predict(X))
    from sklearn.exceptions import DataConversionWarning

    with pytest.warns(DataConversionWarning):
        col = MatrixFactorization(**_KW).fit(X, y[:, None])
    np.testing.assert_array_equal(col.predict(X), ref.predict(X))
    # the regressor's score is R^2 on the ratings, and training lowers the error
    long = MatrixFactorization(n_components=2, max_iter=60, random_state=0).fit(X, y)
    assert long.loss_curve_[-1] < long.loss_curve_[0]
    assert long.score(X, y) > 0.5


def test_gradient_rollback_is_a_transformer_of_query_ids():
    X, y = _ratings()
    gr = GradientRollback(MatrixFactorization(**_KW))
    D = gr.fit_transform(X, y)
    assert sp.issparse(D) and D.shape == (len(X), len(X)) and D.dtype == np.float64
    np.testing.assert_array_equal(D.toarray(), gr.transform(X).toarray())
    np.testing.assert_array_equal(clone(gr).fit(X.tolist(), list(y)).transform(X).toarray(),
                                  D.toarray())
