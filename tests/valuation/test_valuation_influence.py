"""Influence-based valuation and group removal effects against actual refits."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, Ridge
from threadpoolctl import threadpool_limits

from skinfluence import InfluenceFunctions
from skinfluence.valuation import (
    InfluenceValuation,
    predict_removal_effect,
    removal_parameter_change,
)


@pytest.fixture(autouse=True)
def _single_blas_thread():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def task():
    X, y = make_classification(n_samples=160, n_features=4, n_redundant=0, flip_y=0.1,
                               random_state=0)
    return X[:100], y[:100], X[100:], y[100:], LogisticRegression(tol=1e-12, max_iter=10000)


def _logloss(model, X, y):
    return -np.log(model.predict_proba(X)[np.arange(len(y)), y])


def _theta(model):
    return np.r_[model.coef_.ravel(), model.intercept_]


def test_influence_values_match_loo_refits(task):
    X, y, Xv, yv, est = task
    iv = InfluenceValuation(est).fit(X, y, X_val=Xv, y_val=yv)
    base = _logloss(clone(est).fit(X, y), Xv, yv).mean()
    actual = np.array([
        _logloss(clone(est).fit(np.delete(X, j, 0), np.delete(y, j)), Xv, yv).mean() - base
        for j in range(100)
    ])
    # Newton-step leave-one-out: within 1% of the largest effect for every point
    np.testing.assert_allclose(iv.values_, actual, atol=0.01 * np.abs(actual).max())
    T = iv.transform(Xv, yv)
    np.testing.assert_allclose(T.mean(0), iv.values_, atol=1e-14)
    assert iv.score(Xv, yv) == iv.estimator_.score(Xv, yv)


@pytest.mark.parametrize("group", [np.arange(10), np.arange(0, 100, 3)], ids=["10pts", "34pts"])
def test_group_removal_against_refits(task, group):
    X, y, Xv, yv, est = task
    inf = InfluenceFunctions(est).fit(X, y)
    full = clone(est).fit(X, y)
    keep = np.setdiff1d(np.arange(100), group)
    refit = clone(est).fit(X[keep], y[keep])
    d_actual = _theta(refit) - _theta(full)
    loss_actual = _logloss(refit, Xv, yv) - _logloss(full, Xv, yv)
    err = {}
    for order in (1, 2):
        d = removal_parameter_change(inf, group, order=order)
        err[order] = np.linalg.norm(d - d_actual) / np.linalg.norm(d_actual)
        pred = predict_removal_effect(inf, group, Xv, yv, order=order)
        assert np.corrcoef(pred, loss_actual)[0, 1] > 0.97
    # the second-order (exact Hessian without the group) step is clearly closer to the refit
    assert err[2] < 0.6 * err[1]
    assert err[2] < (0.1 if group.size == 10 else 0.25)


def test_second_order_single_point_equals_newton_loo():
    X, y = make_classification(n_samples=80, n_features=3, n_redundant=0, random_state=1)
    inf = InfluenceFunctions(LogisticRegression(C=0.3), refine=0).fit(X, y)
    for j in (0, 17, 55):
        np.testing.assert_allclose(removal_parameter_change(inf, [j], order=2),
                                   inf.parameter_changes([j])[:, 0], rtol=1e-8, atol=1e-12)


def test_group_removal_is_exact_for_ridge():
    # quadratic loss: one Newton step with the exact Hessian without the group is the refit
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(size=50)
    inf = InfluenceFunctions(Ridge(alpha=2.0)).fit(X, y)
    group = [1, 4, 9, 30, 31]
    keep = np.setdiff1d(np.arange(50), group)
    full = Ridge(alpha=2.0).fit(X, y)
    refit = Ridge(alpha=2.0).fit(X[keep], y[keep])
    d = removal_parameter_change(inf, group, order=2)
    expected = np.r_[refit.coef_ - full.coef_, refit.intercept_ - full.intercept_]
    np.testing.assert_allclose(d, expected, rtol=1e-7, atol=1e-10)
    pred = predict_removal_effect(inf, group, X[:5], y[:5])
    actual = (refit.predict(X[:5]) - y[:5]) ** 2 - (full.predict(X[:5]) - y[:5]) ** 2
    assert np.all(np.isfinite(pred))
    np.testing.assert_allclose(pred / pred[0], actual / actual[0], rtol=1e-6)


def test_influence_valuation_groups(task):
    X, y, Xv, yv, est = task
    groups = np.arange(100) // 10
    iv = InfluenceValuation(est).fit(X, y, X_val=Xv, y_val=yv, groups=groups)
    assert iv.values_.shape == (10,)
    base = _logloss(clone(est).fit(X, y), Xv, yv).mean()
    actual = np.array([
        _logloss(clone(est).fit(X[groups != g], y[groups != g]), Xv, yv).mean() - base
        for g in range(10)
    ])
    # one Newton step when a tenth of the data goes: within a fifth of the largest effect
    np.testing.assert_allclose(iv.values_, actual, atol=0.2 * np.abs(actual).max())
    from scipy.stats import spearmanr

    assert spearmanr(iv.values_, actual).statistic > 0.9


def test_errors(task):
    X, y, Xv, yv, est = task
    with pytest.raises(ValueError, match="needs a validation set"):
        InfluenceValuation(est).fit(X, y)
    inf = InfluenceFunctions(est).fit(X, y)
    with pytest.raises(ValueError, match="order"):
        removal_parameter_change(inf, [0], order=3)
    with pytest.raises(ValueError, match="indices"):
        removal_parameter_change(inf, [100])


def test_unpenalised_model_on_separable_data_is_refused():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    y = (X @ np.array([1.0, -2.0]) + 0.3 > 0).astype(int)
    est = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12, max_iter=500)
    with pytest.raises(ValueError, match="linearly separable"):
        InfluenceValuation(est).fit(X[:60], y[:60], X_val=X[60:], y_val=y[60:])


@pytest.mark.parametrize("pipeline", [False, True])
def test_dataframe_fit_gives_no_feature_name_warning(task, pipeline):
    import warnings

    import pandas as pd
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, Xv, yv, est = task
    cols = ["a", "b", "c", "d"]
    df, dfv = pd.DataFrame(X, columns=cols), pd.DataFrame(Xv, columns=cols)
    model = make_pipeline(StandardScaler(), est) if pipeline else est
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        iv = InfluenceValuation(model).fit(df, y, X_val=dfv, y_val=yv)
        grouped = InfluenceValuation(model).fit(df, y, X_val=dfv, y_val=yv,
                                                groups=np.arange(100) // 10)
        iv.transform(dfv, yv)
    plain = InfluenceValuation(model).fit(X, y, X_val=Xv, y_val=yv)
    # the same values up to the rounding of lbfgs on a differently laid out X
    np.testing.assert_allclose(iv.values_, plain.values_, rtol=1e-9,
                               atol=1e-9 * np.abs(plain.values_).max())
    assert grouped.values_.shape == (10,)
