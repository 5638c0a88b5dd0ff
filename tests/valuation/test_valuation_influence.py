"""Influence-based valuation and group removal effects against actual refits."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, Ridge

from skinfluence import InfluenceFunctions
from skinfluence.valuation import (
    InfluenceValuation,
    predict_removal_effect,
    removal_parameter_change,
)


pytestmark = pytest.mark.usefixtures("single_blas_thread")


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
    # without targets: the attributions of the model's output, as InfluenceFunctions gives
    np.testing.assert_array_equal(iv.transform(Xv), iv.influence_.transform(Xv))


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


@pytest.fixture(scope="module")
def indefinite_mlp():
    """A small ReLU network whose Hessian without some groups of points is indefinite."""
    from sklearn.datasets import load_wine
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    idx = np.random.RandomState(0).permutation(len(y))
    X = StandardScaler().fit_transform(X[idx, :5])
    y = y[idx]
    est = MLPClassifier(hidden_layer_sizes=(4,), activation="relu", alpha=1.0,
                        solver="lbfgs", tol=1e-9, max_iter=3000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # its own damping / fallbacks
        inf = InfluenceFunctions(est).fit(X[:70], y[:70])
    return inf, X[70:76], y[70:76]


def _hessian_without(inf, group):
    """The damped Hessian without ``group``'s Gauss-Newton curvature, by brute force, on
    the complement of the flat directions: ``(Q^T H_-S Q, Q)``, ``Q`` an orthonormal basis."""
    obj = inf.objective_
    H = obj.hessian() + inf.solver_.damping_ * np.eye(obj.n_params)
    for j in group:
        Xj, yj = obj.X[j:j + 1], obj.y[j:j + 1]
        _, S = obj.loss_derivatives(obj.outputs(Xj), yj)
        J = obj.jvp(Xj, np.eye(obj.n_params))[0]  # (K, p)
        H -= obj.weights[j] * J.T @ S[0] @ J
    N = inf.solver_.null_space
    if N is None:
        return H, np.eye(obj.n_params)
    Q = np.linalg.svd(np.eye(obj.n_params) - N @ N.T)[0][:, :obj.n_params - N.shape[1]]
    return Q.T @ H @ Q, Q


def _exact_step(inf, group):
    """``H_-S^+ sum_S w_j g_j``: the order-2 group step by brute force."""
    obj = inf.objective_
    H, Q = _hessian_without(inf, group)
    rhs = obj.sample_gradients(obj.X[group], obj.y[group]).T @ obj.weights[group]
    return Q @ np.linalg.solve(H, Q.T @ rhs)


def test_group_removal_falls_back_to_first_order_where_hessian_is_indefinite(indefinite_mlp):
    inf, Xq, yq = indefinite_mlp
    group = [1, 4, 9, 16]
    assert np.linalg.eigvalsh(_hessian_without(inf, group)[0])[0] < 0  # meaningless step
    with pytest.warns(RuntimeWarning, match=r"first-order group step \(order=1\)"):
        d2 = removal_parameter_change(inf, group, order=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d1 = removal_parameter_change(inf, group, order=1)
        e1 = predict_removal_effect(inf, group, Xq, yq, order=1)
    np.testing.assert_array_equal(d2, d1)
    with pytest.warns(RuntimeWarning, match="first-order group step"):
        e2 = predict_removal_effect(inf, group, Xq, yq, order=2)
    np.testing.assert_array_equal(e2, e1)  # the linear prediction of order 1, too


def test_group_removal_keeps_order_two_where_hessian_stays_definite(indefinite_mlp):
    inf, Xq, yq = indefinite_mlp
    group = [2, 13]
    assert np.linalg.eigvalsh(_hessian_without(inf, group)[0])[0] > 0
    obj = inf.objective_
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d2 = removal_parameter_change(inf, group, order=2)
        e2 = predict_removal_effect(inf, group, Xq, yq, order=2)
    np.testing.assert_allclose(d2, _exact_step(inf, group), rtol=0,
                               atol=1e-9 * np.abs(d2).max())
    np.testing.assert_allclose(e2, obj.sample_losses(obj.features(Xq), yq, obj.theta + d2)
                               - obj.sample_losses(obj.features(Xq), yq), rtol=1e-12)


def test_group_removal_of_a_convex_model_is_the_exact_hessian_step(task):
    X, y, Xv, yv, est = task
    inf = InfluenceFunctions(est).fit(X, y)
    group = np.arange(0, 100, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d2 = removal_parameter_change(inf, group, order=2)
    np.testing.assert_allclose(d2, _exact_step(inf, group), rtol=0,
                               atol=1e-10 * np.abs(d2).max())


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


def test_influence_valuation_of_a_lasso():
    """InfluenceValuation runs on a Lasso unchanged and its values are the refits' exactly
    (the removal is exact on the active set, refit where the active set changes)."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Lasso

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    X, Xv, y, yv = X[:120], X[120:180], y[:120], y[120:180]
    est = Lasso(alpha=0.03, tol=1e-14, max_iter=100_000)
    iv = InfluenceValuation(est).fit(X, y, X_val=Xv, y_val=yv)
    assert np.any(iv.estimator_.coef_ == 0)

    def mse(model):
        return ((yv - model.predict(Xv)) ** 2).mean()

    base = mse(clone(est).fit(X, y))
    actual = np.array([mse(clone(est).fit(np.delete(X, j, 0), np.delete(y, j))) - base
                       for j in range(120)])
    np.testing.assert_allclose(iv.values_, actual, rtol=0, atol=1e-8 * np.abs(actual).max())
    assert iv.influence_.n_active_set_changes_ >= 0
