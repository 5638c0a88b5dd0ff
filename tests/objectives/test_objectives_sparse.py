"""The L1 / elastic-net objective (objectives/sparse.py): finite differences, the active
set, the removal weights and the KKT check, against scikit-learn's fits."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import ElasticNet, Lasso, MultiTaskElasticNet, MultiTaskLasso
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence.objectives import make_objective, stationarity

TIGHT = dict(tol=1e-14, max_iter=100_000)
N = 120


@pytest.fixture(scope="module")
def data(diabetes_standardised):
    X, y = diabetes_standardised
    sw = np.random.default_rng(0).uniform(0.5, 2.0, N)
    return X[:N], y[:N], sw


MODELS = [Lasso(alpha=0.03, **TIGHT), ElasticNet(alpha=0.08, l1_ratio=0.4, **TIGHT)]


@pytest.mark.parametrize("model", MODELS, ids=["lasso", "enet"])
def test_gradient_and_hessian_finite_differences(data, model):
    X, y, sw = data
    obj = make_objective(clone(model).fit(X, y, sample_weight=sw), X, y, sw)
    assert obj.n_params == X.shape[1] + 1
    assert obj._inactive.size > 0
    rng = np.random.default_rng(1)
    # a point near the fit with the fitted signs, inactive coefficients at zero
    theta = obj.theta + 1e-3 * rng.standard_normal(obj.n_params) * (obj.signs != 0)
    theta[obj.n_features] = obj.theta[-1] + 1e-3
    g = obj.objective_gradient(theta)
    h = 1e-6
    for k in obj.active:
        e = np.zeros(obj.n_params)
        e[k] = h
        fd = (obj.objective_value(theta + e) - obj.objective_value(theta - e)) / (2 * h)
        assert abs(fd - g[k]) <= 1e-6 * max(1.0, abs(g[k]))
    H = obj.hessian(theta)
    for k in obj.active:
        e = np.zeros(obj.n_params)
        e[k] = h
        fd = (obj.objective_gradient(theta + e) - obj.objective_gradient(theta - e)) / (2 * h)
        np.testing.assert_allclose(H[obj.active, k], fd[obj.active], rtol=1e-6, atol=1e-6)
    # restricted to the active set: inactive rows and columns vanish, and they are the
    # null space the solvers keep fixed
    assert not H[obj._inactive].any() and not H[:, obj._inactive].any()
    N_ = obj.null_space()
    np.testing.assert_array_equal(np.flatnonzero(N_.any(axis=1)), obj._inactive)
    V = rng.standard_normal((obj.n_params, 3))
    np.testing.assert_allclose(obj.hvp(V, theta), H @ V, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(obj.hessian_diagonal(), np.diag(obj.hessian()), rtol=1e-12)


@pytest.mark.parametrize("model", MODELS, ids=["lasso", "enet"])
def test_stationary_at_fit_and_removal_weights(data, model):
    """The fit is stationary (subgradient included); the objective with
    ``removal_weights(j)`` is stationary at scikit-learn's refit without ``j``."""
    X, y, sw = data
    fitted = clone(model).fit(X, y, sample_weight=sw)
    obj = make_objective(fitted, X, y, sw)
    assert stationarity(obj) < 1e-10
    for j in range(N):  # a removal that keeps the active set (most do)
        keep = np.arange(N) != j
        refit = clone(model).fit(X[keep], y[keep], sample_weight=sw[keep])
        if np.array_equal(np.sign(refit.coef_), np.sign(fitted.coef_)):
            break
    else:
        pytest.fail("every removal changes the active set")
    theta = np.r_[refit.coef_, refit.intercept_]
    g = obj.objective_gradient(theta, weights=obj.removal_weights(j))
    scale = np.abs(obj.weights @ obj.sample_gradients(X, y)).max() + 1.0
    assert np.abs(g[obj.active]).max() < 1e-9 * scale
    assert obj.removal_weights(j)[j] == 0
    np.testing.assert_allclose(obj.removal_weights(j).sum(), sw.sum())


def test_active_set_check_against_refits(data):
    """``active_set_changes`` on the exact steps flags exactly the removals whose refit
    has another support, at an alpha where one coefficient is near its bound."""
    from skinfluence import InfluenceFunctions

    X, y, _ = data
    alphas = np.geomspace(0.3, 0.005, 40)
    found = False
    for alpha in alphas:  # the first alpha with some changes, by the refits
        model = Lasso(alpha=alpha, **TIGHT)
        fitted = clone(model).fit(X, y)
        changed = []
        for j in range(N):
            keep = np.arange(N) != j
            refit = clone(model).fit(X[keep], y[keep])
            if np.any((refit.coef_ != 0) != (fitted.coef_ != 0)):
                changed.append(j)
        if changed:
            found = True
            break
    assert found
    infl = InfluenceFunctions(model, refine=0).fit(X, y)
    D = infl.parameter_changes()
    mask = infl.objective_.active_set_changes(D, slice(0, N))
    np.testing.assert_array_equal(np.flatnonzero(mask), changed)


def test_pipeline_features(data):
    """A pipeline's preprocessing is a fixed feature map; refits run on its features."""
    from skinfluence import InfluenceFunctions

    X, y, _ = data
    Xr = X * 10 + 3
    pipe = make_pipeline(StandardScaler(), Lasso(alpha=0.03, **TIGHT))
    infl = InfluenceFunctions(pipe).fit(Xr, y)
    Xf = infl.estimator_[0].transform(Xr)
    lasso = infl.estimator_[-1]
    j = 11
    keep = np.arange(N) != j
    refit = clone(lasso).fit(Xf[keep], y[keep])
    d = np.r_[refit.coef_, refit.intercept_] - np.r_[lasso.coef_, lasso.intercept_]
    np.testing.assert_allclose(infl.parameter_changes([j])[:, 0], d, rtol=0,
                               atol=1e-8 * np.abs(d).max())


@pytest.mark.parametrize("model", [MultiTaskLasso(alpha=0.05, **TIGHT),
                                   MultiTaskElasticNet(alpha=0.08, l1_ratio=0.6, **TIGHT)],
                         ids=["mtlasso", "mtenet"])
def test_multi_task_finite_differences(data, model):
    """The group norm's gradient and Hessian (not quadratic) against finite differences;
    the fit is stationary (subgradient of the inactive columns included)."""
    X, y, sw = data
    rng = np.random.default_rng(3)
    Y = np.column_stack([y, 3 * X[:, 0] + rng.normal(size=N), X[:, 2] - X[:, 3]])
    obj = make_objective(clone(model).fit(X, Y, sample_weight=sw), X, Y, sw)
    assert obj.features_inactive.size > 0
    assert stationarity(obj) < 1e-10
    theta = obj.theta.copy()
    theta[obj.active] += 1e-3 * rng.standard_normal(obj.active.size)
    g = obj.objective_gradient(theta)
    H = obj.hessian(theta)
    h = 1e-6
    for k in obj.active:
        e = np.zeros(obj.n_params)
        e[k] = h
        fd = (obj.objective_value(theta + e) - obj.objective_value(theta - e)) / (2 * h)
        assert abs(fd - g[k]) <= 1e-6 * max(1.0, abs(g[k]))
        fdg = (obj.objective_gradient(theta + e) - obj.objective_gradient(theta - e)) / (2 * h)
        np.testing.assert_allclose(H[obj.active, k], fdg[obj.active], rtol=1e-6, atol=1e-6)
    assert not H[obj._inactive].any()
    V = rng.standard_normal((obj.n_params, 2))
    np.testing.assert_allclose(obj.hvp(V, theta), H @ V, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(obj.hessian_diagonal(), np.diag(obj.hessian()), rtol=1e-12)


@pytest.mark.parametrize("solver", ["saga", "liblinear"])
def test_sparse_logistic_finite_differences(solver):
    """L1 LogisticRegression: gradient (signs fixed) and the restricted Hessian against
    finite differences; stationary at the fit; the liblinear intercept carries its L1."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0))[:150, :8]
    y = y[:150]
    sw = np.random.default_rng(0).uniform(0.5, 2.0, 150)
    model = LogisticRegression(l1_ratio=1, C=0.2, solver=solver, tol=1e-12, max_iter=200_000,
                               intercept_scaling=2.0).fit(X, y, sample_weight=sw)
    obj = make_objective(model, X, y, sw)
    assert obj._inactive.size > 0
    assert stationarity(obj) < 1e-6
    if solver == "liblinear":
        assert obj.l1_weights[-1] == pytest.approx(0.5)
    rng = np.random.default_rng(1)
    theta = obj.theta.copy()
    theta[obj.active] += 1e-3 * rng.standard_normal(obj.active.size)
    g = obj.objective_gradient(theta)
    H = obj.hessian(theta)
    h = 1e-6
    for k in obj.active:
        e = np.zeros(obj.n_params)
        e[k] = h
        fd = (obj.objective_value(theta + e) - obj.objective_value(theta - e)) / (2 * h)
        assert abs(fd - g[k]) <= 1e-6 * max(1.0, abs(g[k]))
        fdg = (obj.objective_gradient(theta + e) - obj.objective_gradient(theta - e)) / (2 * h)
        np.testing.assert_allclose(H[obj.active, k], fdg[obj.active], rtol=1e-5, atol=1e-6)
    assert not H[obj._inactive].any()
    # a refit without j is sample_weight[j] = 0 (the loss is a sum): same as deleting it
    a = clone(model).set_params(solver="saga", l1_ratio=1).fit(
        X, y, sample_weight=np.r_[0.0, sw[1:]])
    b = clone(model).set_params(solver="saga", l1_ratio=1).fit(X[1:], y[1:],
                                                               sample_weight=sw[1:])
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-8)
