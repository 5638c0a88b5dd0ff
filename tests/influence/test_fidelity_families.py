"""InfluenceFunctions on the least-squares, LinearSVC, SGD and GLM families against
actual leave-one-out retraining.

``transform(X_test, y_test)[i, j]`` predicts ``loss_i(refit without j) - loss_i(model)``
with the family's training loss; the reference refits scikit-learn without each
point with tight tolerances and evaluates the same loss
(``objective_.sample_losses``).  Ridge is also checked against its closed-form
leave-one-out solution.

SGD is stochastic: refitting it without a point would measure its noise, not
the point's influence.  Its reference is therefore the *exact* minimiser of the
objective scikit-learn's SGD approximately minimises, rebuilt from scratch on
the data with and without the point (so the ``1/n`` mean becomes ``1/(n-1)``)
and minimised by scipy.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import pearsonr
from sklearn.base import clone
from sklearn.linear_model import (
    GammaRegressor,
    LinearRegression,
    PoissonRegressor,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
    SGDRegressor,
    TweedieRegressor,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from skinfluence import InfluenceFunctions
from skinfluence.objectives import make_objective


def _data(kind, n=70, n_test=25, seed=0):
    rng = np.random.default_rng(seed)
    m = n + n_test
    X = rng.normal(size=(m, 4)) * np.array([1.0, 2.0, 0.5, 1.0])
    z = X @ np.array([0.6, -0.3, 0.8, 0.2]) + 0.6 * rng.normal(size=m)
    if kind == "reg":
        y = z + 1.0 + rng.standard_t(3, size=m) * 0.3
    elif kind == "multi":
        y = np.column_stack([z, X @ rng.normal(size=4) + rng.normal(size=m)])
    elif kind == "bin":
        y = (z + 0.5 * rng.normal(size=m) > 0).astype(int)
    elif kind == "mc":
        y = np.digitize(z + 0.5 * rng.normal(size=m), [-0.6, 0.6])
    elif kind == "count":
        y = rng.poisson(np.exp(0.4 * z + 0.3)).astype(float)
    elif kind == "pos":
        y = rng.gamma(2.0, np.exp(0.4 * z + 0.3) / 2.0)
    elif kind == "tweedie":
        y = rng.poisson(np.exp(0.4 * z)) * rng.gamma(2.0, 0.5, m)
    sw = rng.uniform(0.5, 2.0, n)
    return X[:n], y[:n], X[n:], y[n:], sw


def _theta(est, obj):
    final = est.steps[-1][1] if hasattr(est, "steps") else est
    parts = [np.ravel(final.coef_)]
    if obj.fit_intercept:
        parts.append(np.ravel(final.intercept_))
    return np.concatenate(parts)


def _fit_quiet(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y, **kw)


def _refit_reference(inf, est, X, y, Xt, yt, sw):
    """Actual loss changes (n_test, n) by refitting scikit-learn without each point.

    A pipeline's earlier steps are the fixed feature map the influence is defined
    for, so only its final estimator is refit (on the fitted pipeline's features).
    """
    obj = inf.objective_
    Xft, ytt = obj.features(Xt), obj.encode_target(yt)
    base = obj.sample_losses(Xft, ytt)
    final = est.steps[-1][1] if hasattr(est, "steps") else est
    Xf = obj.features(X)
    n = X.shape[0]
    act = np.empty((Xt.shape[0], n))
    with threadpool_limits(1):  # tiny fits: threads only add overhead
        for j in range(n):
            keep = np.arange(n) != j
            kw = {} if sw is None else {"sample_weight": sw[keep]}
            m = _fit_quiet(clone(final), Xf[keep], y[keep], **kw)
            act[:, j] = obj.sample_losses(Xft, ytt, _theta(m, obj)) - base
    return act


def _check(pred, act, min_pearson=0.99):
    r = pearsonr(pred.ravel(), act.ravel())[0]
    assert r >= min_pearson, r
    return r


REFIT_CASES = {
    # least squares: the loss is quadratic, so the Newton step is the exact refit
    "linreg": (LinearRegression(), "reg", True, 1e-8),
    "ridge-multi-alpha-array": (Ridge(alpha=[1.0, 10.0]), "multi", True, 1e-8),
    "ridgeclf-mc-pipe": (make_pipeline(StandardScaler(), RidgeClassifier(alpha=3.0)), "mc",
                         True, 1e-8),
    # balanced class weights move with the class counts: first order in 1/n
    "ridgeclf-balanced": (RidgeClassifier(alpha=3.0, class_weight="balanced"), "mc", False,
                          None),
    # squared hinge: piecewise quadratic, points crossing the margin break exactness
    "svc-bin": (LinearSVC(C=0.5, dual=False, tol=1e-12, max_iter=10000), "bin", True, None),
    "svc-mc-cw": (LinearSVC(C=0.5, dual=False, tol=1e-12, max_iter=10000,
                            class_weight={0: 2.0, 1: 1.0, 2: 0.5}), "mc", True, None),
    # GLMs: non-quadratic losses, sum(s)-normalised weights
    "poisson": (PoissonRegressor(alpha=0.1, solver="newton-cholesky", tol=1e-12), "count",
                True, None),
    "gamma": (GammaRegressor(alpha=0.1, solver="newton-cholesky", tol=1e-12), "pos", False,
              None),
    "tweedie-1.5": (TweedieRegressor(power=1.5, alpha=0.1, solver="newton-cholesky",
                                     tol=1e-12), "tweedie", True, None),
    # scipy.sparse CSR features
    "poisson-sparse": (PoissonRegressor(alpha=0.1, solver="newton-cholesky", tol=1e-12),
                       "count", False, None),
    "svc-mc-sparse-noint": (LinearSVC(C=0.5, dual=False, fit_intercept=False, tol=1e-12,
                                      max_iter=10000), "mc", True, None),
}


@pytest.mark.parametrize("case", list(REFIT_CASES))
def test_influence_matches_actual_retraining(case):
    est, kind, weighted, rtol = REFIT_CASES[case]
    X, y, Xt, yt, sw = _data(kind)
    sw = sw if weighted else None
    if "sparse" in case:
        X[np.abs(X) < 0.5], Xt[np.abs(Xt) < 0.5] = 0.0, 0.0
        X, Xt = sp.csr_matrix(X), sp.csr_matrix(Xt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inf = InfluenceFunctions(est).fit(X, y, sample_weight=sw)
    pred = inf.transform(Xt, yt)
    act = _refit_reference(inf, est, X, y, Xt, yt, sw)
    _check(pred, act)
    if rtol is not None:  # exact up to the refits' own accuracy
        np.testing.assert_allclose(pred, act, rtol=rtol, atol=rtol * np.abs(act).max())


def _ridge_closed_form_loo(X, y, alpha, sw):
    """Exact LOO parameters of Ridge with an unpenalised intercept: solve the normal
    equations without each point (``(X~^T S X~ + A) theta = X~^T S y``)."""
    n = X.shape[0]
    Xa = np.column_stack([X, np.ones(n)])
    A = np.diag(np.r_[np.full(X.shape[1], alpha), 0.0])
    thetas = np.empty((n, Xa.shape[1]))
    for j in range(n):
        keep = np.arange(n) != j
        Xk, sk = Xa[keep], sw[keep]
        thetas[j] = np.linalg.solve(Xk.T @ (sk[:, None] * Xk) + A, Xk.T @ (sk * y[keep]))
    return thetas


@pytest.mark.parametrize("sparse", [False, True])
def test_ridge_matches_closed_form_loo(sparse):
    X, y, Xt, yt, sw = _data("reg")
    alpha = 4.0
    Xin = sp.csr_matrix(X) if sparse else X
    est = Ridge(alpha=alpha, solver="sparse_cg" if sparse else "auto", tol=1e-12,
                max_iter=100000)
    inf = InfluenceFunctions(est).fit(Xin, y, sample_weight=sw)
    pred = inf.transform(sp.csr_matrix(Xt) if sparse else Xt, yt)
    thetas = _ridge_closed_form_loo(X, y, alpha, sw)
    z0 = Xt @ inf.estimator_.coef_ + inf.estimator_.intercept_
    z_loo = Xt @ thetas[:, :-1].T + thetas[:, -1]  # (n_test, n)
    exact = (yt[:, None] - z_loo) ** 2 - ((yt - z0) ** 2)[:, None]
    _check(pred, exact)
    np.testing.assert_allclose(pred, exact, rtol=1e-7, atol=1e-7 * np.abs(exact).max())
    # and the self-influence is the classic LOO residual identity's loss change
    e = y - inf.estimator_.predict(X)
    Xa = np.column_stack([X, np.ones(len(y))])
    H = Xa.T @ (sw[:, None] * Xa) + np.diag(np.r_[np.full(4, alpha), 0.0])
    h = sw * np.einsum("ij,ij->i", Xa @ np.linalg.inv(H), Xa)
    np.testing.assert_allclose(inf.self_influence_, (e / (1 - h)) ** 2 - e**2, rtol=1e-7)


# ------------------------------------------------------------------------ SGD
def _grad_J(obj, theta):
    return obj.weights @ obj.sample_gradients(obj.X, obj.y, theta) + obj.penalty_diagonal() * theta


def _exact_minimiser(obj, start):
    """Newton's method with backtracking (the objective is convex), to a relative
    gradient of 1e-12."""
    theta = start.copy()
    scale = np.abs(obj.weights[:, None] * obj.sample_gradients(obj.X, obj.y, theta)).sum(0).max()
    f = obj.objective_value(theta)
    for _ in range(100):
        g = _grad_J(obj, theta)
        if np.abs(g).max() <= 1e-12 * scale:
            return theta
        step = np.linalg.solve(obj.hessian(theta), g)
        t, slack = 1.0, 1e-13 * abs(f)  # slack: J's rounding near the optimum
        while obj.objective_value(theta - t * step) > f - 1e-4 * t * (g @ step) + slack:
            t *= 0.5
            if t < 1e-10:
                raise AssertionError("line search failed")
        theta = theta - t * step
        f = obj.objective_value(theta)
    raise AssertionError("reference minimiser did not converge")


SGD_CASES = {
    "log-bin": (SGDClassifier(loss="log_loss", alpha=0.05, max_iter=1000, tol=None,
                              average=True, random_state=0), "bin"),
    "log-mc-balanced": (SGDClassifier(loss="log_loss", alpha=0.05, class_weight="balanced",
                                      max_iter=1000, tol=None, average=True, random_state=0),
                        "mc"),
    "huber-reg": (SGDRegressor(loss="huber", epsilon=0.5, alpha=0.02, max_iter=1000, tol=None,
                               average=True, learning_rate="invscaling", eta0=0.1,
                               random_state=0), "reg"),
}


@pytest.mark.parametrize("case", list(SGD_CASES))
def test_sgd_influence_matches_exact_minimisers(case):
    est, kind = SGD_CASES[case]
    X, y, Xt, yt, sw = _data(kind)
    X, Xt = X / X.std(axis=0), Xt / X.std(axis=0)  # unit-scale features for SGD
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inf = InfluenceFunctions(est).fit(X, y, sample_weight=sw)
    pred = inf.transform(Xt, yt)
    obj = inf.objective_
    Xft, ytt = obj.features(Xt), obj.encode_target(yt)
    theta_star = _exact_minimiser(obj, obj.theta)
    base = obj.sample_losses(Xft, ytt, theta_star)
    n = X.shape[0]
    act = np.empty_like(pred)
    for j in range(n):
        keep = np.arange(n) != j
        # the objective of the refit, rebuilt on the data without j (1/(n-1) mean,
        # class weights recounted), minimised exactly
        obj_j = make_objective(inf.estimator_, X[keep], y[keep], sw[keep])
        act[:, j] = obj.sample_losses(Xft, ytt, _exact_minimiser(obj_j, theta_star)) - base
    _check(pred, act)
