"""The objectives of the least-squares, SGD, LinearSVC and GLM families are scikit-learn's.

(1) The gradient of J vanishes at scikit-learn's fitted parameters (fitted with a
tight tol): this pins the C / alpha scaling, the intercept handling and the way
sample_weight and class_weight enter.  SGD is stochastic, so there we compare
its solution with the exact minimiser of J and check that a mis-scaled J would
be visibly further away.  (2) Per-sample gradients, the gradient of J and its
Hessian match central finite differences.  (3) hvp == hessian @ V.  (4)
Unsupported configurations raise errors naming what is supported.
"""

import copy
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.linear_model import (
    GammaRegressor,
    LinearRegression,
    OrthogonalMatchingPursuit,
    PoissonRegressor,
    QuantileRegressor,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
    SGDRegressor,
    TweedieRegressor,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR, LinearSVC
from sklearn.utils.class_weight import compute_class_weight

from skinfluence.objectives import make_objective
from skinfluence.objectives._base import Objective

N = 80


def _data(kind, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, 4)) * np.array([1.0, 2.0, 0.5, 1.0]) + np.array([0.5, 0, -1, 0])
    beta = np.array([0.6, -0.3, 0.8, 0.2])
    z = X @ beta + 0.5 * rng.normal(size=N)
    if kind == "reg":
        y = z + 1.0
    elif kind == "multi":
        y = np.column_stack([z, X @ rng.normal(size=4), rng.normal(size=N)])
    elif kind == "bin":
        y = np.where(z > 0, "yes", "no")  # string labels exercise the encoding
    elif kind == "mc":
        y = np.digitize(z, np.quantile(z, [0.35, 0.7]))
    elif kind == "count":
        y = rng.poisson(np.exp(0.3 * z + 0.3)).astype(float)
    elif kind == "pos":
        y = rng.gamma(2.0, np.exp(0.3 * z + 0.3) / 2.0)
    elif kind == "pos-linear":  # positive with a linear mean (identity link)
        y = rng.gamma(5.0, np.clip(4.0 + 0.4 * z, 0.5, None) / 5.0)
    elif kind == "tweedie":  # compound Poisson-gamma: exact zeros and positive values
        y = rng.poisson(np.exp(0.3 * z)) * rng.gamma(2.0, 0.5, N)
    sw = rng.uniform(0.5, 2.0, N)
    return X, y, sw


def _grad_J(obj, theta=None):
    theta = obj.theta if theta is None else theta
    return obj.weights @ obj.sample_gradients(obj.X, obj.y, theta) + obj.penalty_diagonal() * theta


def _fit(make, kind, sparse, weighted, pipe, seed=0, prescale=False):
    X, y, sw = _data(kind, seed)
    if prescale:  # unit-scale features without a pipeline (SGD needs them to converge)
        X = (X - X.mean(axis=0)) / X.std(axis=0)
    if sparse:
        X[np.abs(X) < 0.7] = 0.0
        X = sp.csr_matrix(X)
    est = make()
    if pipe:
        est = make_pipeline(StandardScaler(with_mean=not sparse), est)
    fit_params = {}
    if weighted:
        key = "sample_weight" if not pipe else f"{est.steps[-1][0]}__sample_weight"
        fit_params[key] = sw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of deliberately tight fits
        est.fit(X, y, **fit_params)
    obj = make_objective(est, X, y, sw if weighted else None)
    return est, obj, X, y


T = 1e-12
CASES = {
    # family: least squares -------------------------------------------------
    "linreg": (lambda: LinearRegression(), "reg", False, True, False),
    "linreg-multi-sparse-noint": (lambda: LinearRegression(fit_intercept=False), "multi",
                                  True, False, False),
    "ridge": (lambda: Ridge(alpha=3.0), "reg", False, True, False),
    "ridge-noint-pipe": (lambda: Ridge(alpha=0.5, fit_intercept=False), "reg", False, True,
                         True),
    "ridge-multi-alpha-array": (lambda: Ridge(alpha=[0.5, 2.0, 10.0]), "multi", False, True,
                                False),
    "ridge-sparse": (lambda: Ridge(alpha=2.0, solver="sparse_cg", tol=T, max_iter=10000),
                     "multi", True, True, False),
    "ridgeclf-bin-balanced": (lambda: RidgeClassifier(alpha=2.0, class_weight="balanced"),
                              "bin", False, True, False),
    "ridgeclf-mc-sparse": (lambda: RidgeClassifier(
        alpha=1.0, class_weight={0: 3.0, 1: 1.0, 2: 0.3}, solver="sparse_cg", tol=T,
        max_iter=10000), "mc", True, True, False),
    "ridgeclf-mc-pipe": (lambda: RidgeClassifier(alpha=1.0), "mc", False, False, True),
    # family: LinearSVC (squared hinge, liblinear) --------------------------
    "svc-bin-dual-balanced": (lambda: LinearSVC(C=0.7, class_weight="balanced", tol=T,
                                                max_iter=100000), "bin", False, True, False),
    "svc-bin-scaling": (lambda: LinearSVC(C=2.0, intercept_scaling=3.0, dual=False, tol=T,
                                          max_iter=10000), "bin", False, True, False),
    "svc-mc-cw-sparse": (lambda: LinearSVC(C=0.5, class_weight={0: 3.0, 1: 1.0, 2: 0.3},
                                           dual=False, tol=T, max_iter=10000),
                         "mc", True, True, False),
    "svc-mc-noint-pipe": (lambda: LinearSVC(C=1.0, fit_intercept=False, dual=False, tol=T,
                                            max_iter=10000), "mc", False, False, True),
    # family: GLMs ----------------------------------------------------------
    "poisson": (lambda: PoissonRegressor(alpha=0.1, solver="newton-cholesky", tol=T),
                "count", False, True, False),
    "poisson-sparse-noint": (lambda: PoissonRegressor(alpha=0.05, fit_intercept=False,
                                                      tol=T, max_iter=10000),
                             "count", True, True, False),
    "gamma-pipe": (lambda: GammaRegressor(alpha=0.1, solver="newton-cholesky", tol=T),
                   "pos", False, True, True),
    "tweedie-1.5": (lambda: TweedieRegressor(power=1.5, alpha=0.1, solver="newton-cholesky",
                                             tol=T), "tweedie", False, True, False),
    "tweedie-0-identity": (lambda: TweedieRegressor(power=0.0, alpha=0.2,
                                                    solver="newton-cholesky", tol=T),
                           "reg", False, True, False),
    "tweedie-3-log": (lambda: TweedieRegressor(power=3.0, alpha=0.1, tol=T, max_iter=10000),
                      "pos", False, True, False),
    "tweedie-1-identity": (lambda: TweedieRegressor(power=1.0, link="identity", alpha=0.01,
                                                    tol=T, max_iter=10000),
                           "pos-linear", False, False, False),
}

SGD_CASES = {
    # (loss, alpha, kind, sparse, weighted, pipe, class_weight, eta0); eta0 None: the
    # "optimal" schedule, else "invscaling" (the "optimal" one diverges for squared losses)
    "log-bin-balanced": ("log_loss", 0.1, "bin", False, True, False, "balanced", None),
    "log-mc-cw": ("log_loss", 0.1, "mc", False, True, False, {0: 3.0, 1: 1.0, 2: 0.3}, None),
    "modhuber-mc-sparse-noint": ("modified_huber", 0.5, "mc", True, True, False, None, None),
    "modhuber-bin-pipe": ("modified_huber", 0.5, "bin", False, False, True, None, None),
    "sqhinge-mc-cw": ("squared_hinge", 0.5, "mc", False, True, False,
                      {0: 3.0, 1: 1.0, 2: 0.3}, 0.1),
    "sqerr-bin": ("squared_error", 0.1, "bin", False, True, False, None, 0.1),
    "huber-mc-pipe": ("huber", 0.1, "mc", False, True, True, None, 0.1),
    "reg-sqerr-pipe": ("squared_error", 0.1, "reg", False, True, True, None, 0.1),
    "reg-huber-sparse-noint": ("huber", 0.1, "reg", True, True, False, None, None),
    "reg-sqeps-pipe": ("squared_epsilon_insensitive", 0.1, "reg", False, True, True, None, 0.05),
}


def _sgd_fit(case, max_iter=1000):
    loss, alpha, kind, sparse, weighted, pipe, cw, eta0 = SGD_CASES[case]
    # sparse data: scikit-learn damps intercept updates 100-fold, so fit no intercept there
    kw = dict(loss=loss, alpha=alpha, max_iter=max_iter, tol=None, average=True, random_state=0,
              epsilon=0.5 if kind == "reg" else 1.0, fit_intercept=not sparse,
              learning_rate="optimal" if eta0 is None else "invscaling", eta0=eta0 or 0.01)
    if kind == "reg":
        make = lambda: SGDRegressor(**kw)  # noqa: E731
    else:
        make = lambda: SGDClassifier(class_weight=cw, **kw)  # noqa: E731
    return _fit(make, kind, sparse, weighted, pipe, prescale=not pipe)


def _all_objectives():
    for case in CASES:
        yield pytest.param(case, lambda c=case: _fit(*CASES[c]), id=case)
    for case in SGD_CASES:
        yield pytest.param("sgd-" + case, lambda c=case: _sgd_fit(c, max_iter=5), id="sgd-" + case)


@pytest.mark.parametrize("case", list(CASES))
def test_gradient_vanishes_at_sklearn_solution(case):
    est, obj, X, y = _fit(*CASES[case])
    g = _grad_J(obj)
    scale = np.abs(obj.weights[:, None] * obj.sample_gradients(obj.X, obj.y)).sum(axis=0).max()
    assert np.abs(g).max() <= 1e-6 * scale, np.abs(g).max() / scale


def _minimise(obj):
    res = minimize(obj.objective_value, obj.theta, jac=lambda t: _grad_J(obj, t),
                   method="L-BFGS-B", options=dict(gtol=1e-11, ftol=1e-15, maxiter=10000))
    assert np.abs(_grad_J(obj, res.x)).max() < 1e-7
    return res.x


def _variant(obj, **attrs):
    other = copy.copy(obj)
    other._curvature = None
    for name, value in attrs.items():
        setattr(other, name, value)
    return other


@pytest.mark.parametrize("case", list(SGD_CASES))
def test_sgd_solution_is_the_minimiser_of_the_objective(case):
    est, obj, X, y = _sgd_fit(case)
    theta_star = _minimise(obj)
    dist = np.linalg.norm(obj.theta - theta_star) / np.linalg.norm(theta_star)
    assert dist < 1e-2, dist
    # The check has teeth: minimisers of slightly wrong objectives are much further away.
    wrong = [_variant(obj, coef_penalty=1.5 * obj.coef_penalty)]  # alpha off by 50 %
    cw = SGD_CASES[case][6]
    if cw is not None:
        cw_vec = compute_class_weight(cw, classes=obj.classes, y=obj.classes[obj.y])
        if obj.n_outputs == 1:  # class weights ignored
            wrong.append(_variant(obj, weights=obj.weights / cw_vec[obj.y]))
        else:  # class weight on every binary problem instead of on its positives only
            wrong.append(_variant(obj, weights=obj.weights * cw_vec[obj.y],
                                  output_class_weight=None))
    for other in wrong:
        d_wrong = np.linalg.norm(obj.theta - _minimise(other)) / np.linalg.norm(theta_star)
        assert d_wrong > 5 * dist, (dist, d_wrong)


def _fd_check(obj, eps=1e-6):
    th = obj.theta
    E = np.eye(obj.n_params)
    # per-sample gradients against central differences of the per-sample losses
    losses = lambda t: obj.sample_losses(obj.X, obj.y, t)  # noqa: E731
    fd_G = np.column_stack([(losses(th + eps * e) - losses(th - eps * e)) / (2 * eps) for e in E])
    G = obj.sample_gradients(obj.X, obj.y)
    err_g = np.abs(G - fd_G).max() / np.abs(G).max()
    # gradient of J against differences of J, Hessian against differences of the gradient
    fd_g = np.array([(obj.objective_value(th + eps * e) - obj.objective_value(th - eps * e))
                     / (2 * eps) for e in E])
    g = _grad_J(obj)
    gscale = np.abs(obj.weights[:, None] * G).sum(axis=0).max()
    err_J = np.abs(g - fd_g).max() / gscale
    fd_H = np.array([(_grad_J(obj, th + eps * e) - _grad_J(obj, th - eps * e)) / (2 * eps)
                     for e in E])
    H = obj.hessian()
    err_H = np.abs(H - fd_H).max() / np.abs(H).max()
    return err_g, err_J, err_H, H


@pytest.mark.parametrize("case,build", list(_all_objectives()))
def test_derivatives_against_finite_differences(case, build):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est, obj, X, y = build()
    err_g, err_J, err_H, H = _fd_check(obj)
    assert err_g < 1e-6, err_g
    assert err_J < 1e-6, err_J
    assert err_H < 1e-5, err_H
    np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-12 * np.abs(H).max())
    # (3) Hessian-vector products and the diagonal without forming H
    V = np.random.default_rng(0).normal(size=(obj.n_params, 3))
    np.testing.assert_allclose(obj.hvp(V), H @ V, rtol=1e-10, atol=1e-10 * np.abs(H).max())
    np.testing.assert_allclose(obj.hvp(V[:, 0]), H @ V[:, 0], rtol=1e-10,
                               atol=1e-10 * np.abs(H).max())
    np.testing.assert_allclose(obj.hessian_diagonal(), np.diag(H), rtol=1e-12, atol=1e-14)
    # fused loss changes equal the generic definition
    Z = obj.outputs(obj.X)
    D = np.random.default_rng(1).normal(scale=0.3, size=Z.shape + (4,))
    np.testing.assert_allclose(obj.loss_change(Z, obj.y, D),
                               Objective.loss_change(obj, Z, obj.y, D), rtol=1e-10, atol=1e-12)


def _final(est):
    return est.steps[-1][1] if hasattr(est, "steps") else est


@pytest.mark.parametrize("case,build", list(_all_objectives()))
def test_weights_argument_is_the_objective_with_those_weights(case, build):
    """``weights=`` (e.g. the refit without a point) gives the value, gradient, Hessian and
    HVPs of the objective with those weights, and leaves the objective itself unchanged."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est, obj, X, y = build()
    rng = np.random.default_rng(1)
    w = obj.weights * rng.uniform(0.5, 2.0, obj.n_train)
    w[[0, 5]] = 0.0
    ref = _variant(obj, weights=w)
    own = (obj.objective_value(), obj.objective_gradient(), obj.hessian())
    V = rng.normal(size=(obj.n_params, 3))
    for theta in (None, obj.theta + 0.01 * rng.normal(size=obj.n_params)):
        assert obj.objective_value(theta, weights=w) == ref.objective_value(theta)
        np.testing.assert_array_equal(obj.objective_gradient(theta, weights=w),
                                      ref.objective_gradient(theta))
        np.testing.assert_array_equal(obj.hessian(theta, weights=w), ref.hessian(theta))
        np.testing.assert_array_equal(obj.hvp(V, theta, weights=w), ref.hvp(V, theta))
    assert obj.objective_value() == own[0]
    np.testing.assert_array_equal(obj.objective_gradient(), own[1])
    np.testing.assert_array_equal(obj.hessian(), own[2])
    assert ref.objective_value() != own[0]


@pytest.mark.parametrize("case,build", list(_all_objectives()))
def test_outputs_predictions_and_layout(case, build):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est, obj, X, y = build()
    final = _final(est)
    Xf = obj.features(X)
    Z = obj.outputs(Xf)
    if obj.is_classifier:
        dec = np.asarray(est.decision_function(X)).reshape(Z.shape[0], -1)
        np.testing.assert_allclose(Z, dec, rtol=1e-12, atol=1e-12)
        expected = dec[:, 0] if dec.shape[1] == 1 else dec.max(axis=1)
        np.testing.assert_allclose(obj.prediction_from_outputs(Z), expected, rtol=1e-12)
        if hasattr(final, "predict_proba") and getattr(final, "loss", None) in (
                "log_loss", "modified_huber"):
            np.testing.assert_allclose(obj.proba_from_outputs(Z), est.predict_proba(X),
                                       rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(obj.encode_target(y), obj.y)
    else:
        pred = np.asarray(est.predict(X))
        np.testing.assert_allclose(obj.prediction_from_outputs(Z),
                                   pred if pred.ndim == 1 else pred.mean(axis=1), rtol=1e-10)
    # unflatten round trip: the rebuilt estimator predicts like the fitted one
    rebuilt = obj.with_params(obj.theta)
    for name, value in obj.unflatten(obj.theta).items():
        assert np.shape(value) == np.shape(getattr(final, name))
    if obj.is_classifier:
        np.testing.assert_array_equal(rebuilt.predict(Xf), final.predict(Xf))
    else:
        np.testing.assert_allclose(rebuilt.predict(Xf), final.predict(Xf), rtol=1e-12)


# ------------------------------------------------- weights that move on removal
REWEIGHT_CASES = {
    "sgd-mean": (lambda: SGDRegressor(max_iter=5, tol=None, random_state=0), "reg", True),
    "sgd-bin-balanced": (lambda: SGDClassifier(loss="log_loss", class_weight="balanced",
                                               max_iter=5, tol=None, random_state=0), "bin", True),
    "sgd-mc-dict": (lambda: SGDClassifier(loss="modified_huber", max_iter=5, tol=None,
                                          class_weight={0: 2.0, 1: 1.0, 2: 0.5},
                                          random_state=0), "mc", True),
    "sgd-mc-balanced": (lambda: SGDClassifier(loss="log_loss", class_weight="balanced",
                                              max_iter=5, tol=None, random_state=0), "mc", False),
    "svc-bin-balanced": (lambda: LinearSVC(class_weight="balanced"), "bin", True),
    "svc-mc-balanced": (lambda: LinearSVC(class_weight="balanced"), "mc", False),
    "ridgeclf-balanced": (lambda: RidgeClassifier(class_weight="balanced"), "mc", True),
    "poisson": (lambda: PoissonRegressor(alpha=0.1), "count", True),
    "tweedie": (lambda: TweedieRegressor(power=1.5), "tweedie", True),
}


@pytest.mark.parametrize("case", list(REWEIGHT_CASES))
def test_removal_reweighting_is_the_refit_objectives_gradient(case):
    """``grad J_-j(theta) - grad J(theta) == B @ coeff[j] - factor[j] w_j g_j``, where J_-j
    is built from scratch on the data without j (weights renormalised, class weights
    recounted): the objective scikit-learn's refit minimises."""
    make, kind, exact = REWEIGHT_CASES[case]
    X, y, sw = _data(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make().fit(X, y, sample_weight=sw)
    obj = make_objective(est, X, y, sw)
    factor, B, coeff = obj.removal_reweighting()
    G = obj.sample_gradients(obj.X, obj.y)
    g_full = _grad_J(obj)
    for j in (0, 7, 33, N - 1):
        keep = np.arange(N) != j
        refit = make_objective(est, X[keep], y[keep], sw[keep])
        expected = _grad_J(refit, obj.theta) - g_full
        got = B @ coeff[j] - factor[j] * obj.weights[j] * G[j]
        scale = np.abs(expected).max()
        assert scale > 0
        w_refit = obj.removal_weights(j)
        if exact:
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10 * scale)
            # the refit objective's weights, for exact refits inside the engine
            np.testing.assert_allclose(w_refit[keep], refit.weights, rtol=1e-12)
            assert w_refit[j] == 0.0
        else:
            assert w_refit is None  # j's own terms span parts that move differently: second-order mismatch
            own = np.abs(obj.weights[j] * G[j]).max()
            assert np.abs(got - expected).max() <= 2 * np.abs(coeff[j]).max() * own
            assert np.abs(got - expected).max() < 0.1 * np.abs(expected).max()
    fixed = make_objective(Ridge().fit(X[:, :2], sw), X[:, :2], sw, sw)
    assert fixed.removal_reweighting() is None
    np.testing.assert_array_equal(fixed.removal_weights(3), np.r_[sw[:3], 0.0, sw[4:]])


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize("est,kind,match", [
    (LinearRegression(positive=True), "reg", "positive"),
    (Ridge(positive=True, solver="lbfgs"), "reg", "positive"),
    (SGDClassifier(loss="hinge"), "bin", "hinge"),
    (SGDClassifier(loss="perceptron"), "bin", "perceptron"),
    # binary log loss with L1 / elastic net is supported (objectives/sgd.py); these are not
    (SGDClassifier(loss="modified_huber", penalty="l1"), "bin", "l1"),
    (SGDClassifier(loss="log_loss", penalty="elasticnet"), "mc", "elasticnet"),
    (SGDClassifier(loss="log_loss", early_stopping=True), "bin", "early_stopping"),
    (SGDClassifier(loss="hinge", learning_rate="pa1", eta0=0.1), "bin", "pa1"),
    (SGDRegressor(loss="epsilon_insensitive"), "reg", "epsilon_insensitive"),
    (LinearSVC(loss="hinge"), "bin", "hinge"),
    (LinearSVC(penalty="l1", dual=False), "bin", "l1"),
    (LinearSVC(multi_class="crammer_singer"), "mc", "crammer_singer"),
])
def test_unsupported_configurations_raise(est, kind, match):
    X, y, _ = _data(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    with pytest.raises(ValueError, match=match) as info:
        make_objective(est, X, y)
    assert "Supported" in str(info.value)


def test_unsupported_multilabel_and_estimator():
    X, _, _ = _data("reg")
    Y = (np.random.default_rng(0).random((N, 3)) > 0.5).astype(int)
    with pytest.raises(ValueError, match="multilabel"):
        make_objective(RidgeClassifier().fit(X, Y), X, Y)
    with pytest.raises(TypeError, match="Supported estimators"):
        # Lasso is supported since the L1 work (tests/objectives/test_objectives_sparse.py)
        make_objective(OrthogonalMatchingPursuit().fit(X, Y[:, 0]), X, Y[:, 0])


def test_target_errors():
    X, y, _ = _data("bin")
    obj = make_objective(LinearSVC().fit(X, y), X, y)
    with pytest.raises(ValueError, match="not seen during fit"):
        obj.encode_target(np.array(["yes", "maybe"]))
    X, Y, _ = _data("multi")
    obj = make_objective(Ridge().fit(X, Y), X, Y)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 3\)"):
        obj.encode_target(Y[:, 0])
    Xr, yr, _ = _data("reg")
    obj = make_objective(Ridge().fit(Xr, yr), Xr, yr)
    with pytest.raises(ValueError, match="NaN"):
        obj.encode_target(np.r_[yr[:-1], np.nan])
    with pytest.raises(ValueError, match=r"shape \(n_samples,\)"):
        obj.encode_target(np.column_stack([yr, yr]))
    Xc, yc, _ = _data("count")
    obj = make_objective(PoissonRegressor().fit(Xc, yc), Xc, yc)
    with pytest.raises(ValueError, match="non-negative"):
        obj.encode_target(-yc - 1)
    Xp, yp, _ = _data("pos")
    obj = make_objective(GammaRegressor().fit(Xp, yp), Xp, yp)
    with pytest.raises(ValueError, match="strictly positive"):
        obj.encode_target(np.r_[0.0, yp[1:]])
    with pytest.raises(ValueError, match="features"):
        obj.features(Xp[:, :3])


@pytest.mark.parametrize("est,kind,match", [
    (QuantileRegressor(alpha=0.0), "reg", "pinball loss is piecewise linear.*HuberRegressor"),
    (SVC(), "bin", "hinge loss is not differentiable.*KernelRidge"),
    (SVR(), "reg", "hinge loss is not differentiable.*KernelRidge"),
    (SGDClassifier(loss="hinge"), "bin", "closest supported losses are 'squared_hinge'"),
    (LinearSVC(loss="hinge"), "bin", r"closest supported model is LinearSVC\(loss='squared"),
])
def test_refused_models_say_why_and_name_the_closest_supported(est, kind, match):
    X, y, _ = _data(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    with pytest.raises((TypeError, ValueError), match=match):
        make_objective(est, X, y)
