"""The explainer base: delegation, tags, fitting, the block runner, explain results, and
the old spellings kept for one release."""

import threading
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import is_classifier, is_regressor
from sklearn.datasets import make_classification, make_regression
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.utils import get_tags

from skinfluence import (
    BetaShapley,
    CleanClassifier,
    DataOOB,
    DistMult,
    GradientRollback,
    InfluenceCleaner,
    InfluenceFunctions,
    KNNShapley,
    LOOValuation,
    MatrixFactorization,
    TracIn,
)
from skinfluence.base import BaseExplainer, explain_result, top_k_of_rows
from skinfluence.utils import _progress


@pytest.fixture(scope="module")
def clf_data():
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    return X[:40], y[:40], X[40:], y[40:]


# ------------------------------------------------------------------ delegation and tags
def test_every_explainer_derives_from_the_base():
    for cls in (LOOValuation, DataOOB, KNNShapley, BetaShapley, InfluenceCleaner,
                CleanClassifier, TracIn, InfluenceFunctions, GradientRollback):
        assert issubclass(cls, BaseExplainer), cls.__name__


def test_methods_delegate_to_the_fitted_model(clf_data):
    X, y, Xt, yt = clf_data
    oob = DataOOB(LogisticRegression(), n_estimators=5, random_state=0).fit(X, y)
    np.testing.assert_array_equal(oob.predict_proba(Xt), oob.estimator_.predict_proba(Xt))
    np.testing.assert_array_equal(oob.predict_log_proba(Xt),
                                  oob.estimator_.predict_log_proba(Xt))
    np.testing.assert_array_equal(oob.classes_, oob.estimator_.classes_)
    w = np.linspace(0.5, 1.5, len(yt))
    assert oob.score(Xt, yt, sample_weight=w) == oob.estimator_.score(Xt, yt, sample_weight=w)
    # the cleaner delegates to the model fitted on the noisy data, like every explainer
    cleaner = InfluenceCleaner(LogisticRegression()).fit(X, y)
    np.testing.assert_array_equal(cleaner.predict(Xt), cleaner.estimator_.predict(Xt))
    assert cleaner.score(Xt, yt) == cleaner.estimator_.score(Xt, yt)


def test_methods_exist_only_where_the_wrapped_model_has_them(clf_data):
    X, y, _, _ = clf_data
    assert hasattr(LOOValuation(LogisticRegression()), "predict_proba")
    assert not hasattr(LOOValuation(Ridge()), "predict_proba")
    assert not hasattr(LOOValuation(Ridge()), "classes_")
    Xr, yr = make_regression(n_samples=30, n_features=3, random_state=0)
    oob = DataOOB(Ridge(), n_estimators=4, random_state=0).fit(Xr, yr)
    assert not hasattr(oob, "predict_proba") and not hasattr(oob, "classes_")
    assert hasattr(oob, "predict")


def test_tags_follow_the_wrapped_model():
    assert is_classifier(DataOOB(LogisticRegression()))
    assert is_regressor(LOOValuation(Ridge()))
    assert is_classifier(InfluenceCleaner()) and is_classifier(KNNShapley())
    assert get_tags(LOOValuation(LogisticRegression())).input_tags.sparse
    assert not get_tags(KNNShapley()).input_tags.sparse  # the kernel is dense
    # the valuations validate y as one column, whatever the model takes
    tags = get_tags(DataOOB(Ridge()))
    assert tags.target_tags.required and not tags.target_tags.multi_output


def test_gradient_rollback_keeps_its_own_tags_and_delegates_what_the_model_has():
    # a transformer of query ids whatever it wraps: the wrapped rating model's regressor
    # tags would submit it to scikit-learn's regressor checks
    assert not is_regressor(GradientRollback(MatrixFactorization()))
    assert get_tags(GradientRollback(MatrixFactorization())).transformer_tags is not None
    assert not hasattr(GradientRollback(MatrixFactorization()), "predict_proba")
    assert not hasattr(GradientRollback(MatrixFactorization()), "decision_function")
    assert hasattr(GradientRollback(DistMult()), "predict_proba")
    rng = np.random.default_rng(0)
    X = rng.integers(0, 6, size=(40, 2))
    y = rng.normal(size=40)
    gr = GradientRollback(MatrixFactorization(n_components=2, max_iter=2)).fit(X, y)
    np.testing.assert_array_equal(gr.predict(X), gr.estimator_.predict(X))
    assert gr.score(X, y) == gr.estimator_.score(X, y)


def test_influence_functions_tags_follow_the_model_and_require_y():
    assert is_classifier(InfluenceFunctions(LogisticRegression()))
    assert is_regressor(InfluenceFunctions(Ridge()))
    assert get_tags(InfluenceFunctions(Ridge())).target_tags.required


def test_grid_search_scores_with_the_wrapped_model(clf_data):
    X, y, _, _ = clf_data
    search = GridSearchCV(DataOOB(LogisticRegression(), n_estimators=3, random_state=0),
                          {"estimator__C": [0.1, 1.0]}, cv=3).fit(X, y)
    assert search.best_params_["estimator__C"] in (0.1, 1.0)


def test_fit_estimator_clones_and_leaves_frozen_models_as_they_are(clf_data):
    X, y, _, _ = clf_data
    est = LogisticRegression()
    base = BaseExplainer()
    base.estimator = est
    fitted = base._fit_estimator(X, y, np.ones(len(y)))
    assert fitted is not est and hasattr(fitted, "coef_") and not hasattr(est, "coef_")
    frozen = FrozenEstimator(LogisticRegression().fit(X, y))
    assert base._fit_estimator(X, y, estimator=frozen) is frozen


# ------------------------------------------------------------------ the block runner
class _Runner(BaseExplainer):
    def __init__(self, n_jobs=None, verbose=0):
        self.n_jobs = n_jobs
        self.verbose = verbose


@pytest.mark.parametrize("n_jobs", [None, 1, 3])
def test_run_blocks_yields_in_order(n_jobs):
    threads = set()

    def square(i):
        threads.add(threading.get_ident())
        return i * i

    assert list(_Runner(n_jobs=n_jobs)._run_blocks(square, range(20), "squares")) == [
        i * i for i in range(20)]
    assert len(threads) >= 1
    assert list(_Runner(n_jobs=n_jobs)._run_blocks(square, [], "none")) == []


def test_run_blocks_one_numba_thread_per_worker():
    import numba

    seen = []

    def threads(_):
        seen.append(numba.get_num_threads())
        return None

    list(_Runner(n_jobs=2)._run_blocks(threads, range(6), "numba"))
    assert seen == [1] * 6


def test_progress_without_tqdm_prints_lines(monkeypatch, capsys):
    monkeypatch.setattr(_progress, "_tqdm", lambda: None)
    assert list(_Runner(verbose=1)._run_blocks(lambda i: i, range(4), "blocks")) == [0, 1, 2, 3]
    err = capsys.readouterr().err
    assert "blocks: 4/4" in err
    bar = _progress.progress_bar(2, desc="epochs", verbose=1)
    bar.set_postfix(loss="0.5")
    bar.update()
    bar.update()
    bar.close()
    assert "epochs: 2/2 loss=0.5" in capsys.readouterr().err
    assert _progress.progress_bar(2, verbose=0) is None


# ------------------------------------------------------------------ explain results
def test_explain_result_shapes_must_agree():
    ok = explain_result(np.zeros((2, 3), int), np.zeros((2, 3)), np.zeros((2, 3), int),
                        np.zeros((2, 3)))
    assert set(ok) == {"helpful_indices", "helpful_values", "harmful_indices",
                       "harmful_values"}
    with pytest.raises(ValueError, match="one \\(n_queries, k\\) shape"):
        explain_result(np.zeros((2, 3), int), np.zeros((2, 2)), np.zeros((2, 3), int),
                       np.zeros((2, 3)))


def test_top_k_of_rows_matches_brute_force_and_pads():
    rng = np.random.default_rng(0)
    dense = np.round(rng.normal(size=(5, 12)), 1)  # rounding makes ties
    dense[rng.random(dense.shape) < 0.5] = 0.0
    dense[3] = 0.0  # a row without candidates
    M = sp.csr_matrix(dense)
    out = top_k_of_rows(M.indptr, M.indices, M.data, 4)
    for a in range(5):
        cols, vals = M[a].indices, M[a].data
        for side, sign in (("helpful", -1), ("harmful", 1)):
            order = np.lexsort((cols, sign * vals))[:4]
            m = order.size
            np.testing.assert_array_equal(out[f"{side}_indices"][a, :m], cols[order])
            np.testing.assert_array_equal(out[f"{side}_values"][a, :m], vals[order])
            assert np.all(out[f"{side}_indices"][a, m:] == -1)
            assert np.all(np.isnan(out[f"{side}_values"][a, m:]))
    # k is capped at the largest number of candidates
    assert top_k_of_rows(M.indptr, M.indices, M.data, 100).helpful_indices.shape == (
        5, int(np.diff(M.indptr).max()))


# ------------------------------------------------------------------ old spellings
@pytest.mark.parametrize("make_old, make_new", [
    (lambda: LOOValuation(Ridge(), "r2"), lambda: LOOValuation(Ridge(), scoring="r2")),
    (lambda: BetaShapley(Ridge(), 4.0, 2.0), lambda: BetaShapley(Ridge(), alpha=4.0, beta=2.0)),
    (lambda: BetaShapley(Ridge(), 4.0), lambda: BetaShapley(Ridge(), alpha=4.0)),
    (lambda: DataOOB(Ridge(), 7), lambda: DataOOB(Ridge(), n_estimators=7)),
    (lambda: CleanClassifier(None, InfluenceCleaner(), 0.1, None),
     lambda: CleanClassifier(None, cleaner=InfluenceCleaner(), fraction=0.1, memory=None)),
])
def test_positional_parameters_are_deprecated(make_old, make_new):
    with pytest.warns(FutureWarning, match="as keyword argument.*0.3"):
        old = make_old()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = make_new()
    assert repr(old) == repr(new)


def test_positional_deprecation_keeps_errors():
    with pytest.raises(TypeError):
        DataOOB(Ridge(), 7, 1.0)  # more than were ever positional
    with pytest.raises(TypeError, match="multiple values"), pytest.warns(FutureWarning):
        DataOOB(Ridge(), 7, n_estimators=8)


def test_positional_sample_weight_is_deprecated(clf_data):
    X, y, _, _ = clf_data
    w = np.linspace(0.5, 2.0, len(y))
    for make in (lambda: InfluenceCleaner(LogisticRegression()),
                 lambda: CleanClassifier(LogisticRegression(), fraction=0.1),
                 lambda: TracIn(SGDClassifier(loss="log_loss", random_state=0), n_epochs=2,
                                random_state=0)):
        with pytest.warns(FutureWarning, match="sample_weight=.*keyword"):
            old = make().fit(X, y, w)
        new = make().fit(X, y, sample_weight=w)
        np.testing.assert_array_equal(old.predict(X), new.predict(X))
    with pytest.warns(FutureWarning, match="sample_weight"):
        Xr, yr = InfluenceCleaner(LogisticRegression()).fit_resample(X, y, w)
    Xn, yn = InfluenceCleaner(LogisticRegression()).fit_resample(X, y, sample_weight=w)
    np.testing.assert_array_equal(Xr, Xn)
    np.testing.assert_array_equal(yr, yn)
