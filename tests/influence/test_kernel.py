"""Kernel models (KernelRidge, GaussianProcessRegressor): exact leave-one-out in closed form,
checked against scikit-learn refits without each point."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.frozen import FrozenEstimator
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from skinfluence import InfluenceFunctions
from skinfluence.objectives import NotStationaryWarning, make_objective
from skinfluence.valuation import InfluenceValuation, predict_removal_effect


pytestmark = pytest.mark.usefixtures("single_blas_thread")


def _diabetes(n=70, n_test=25, multi=False):
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    if multi:
        y = np.column_stack([y, X[:, 0] + 0.5 * y])
    return X[:n], y[:n], X[300 : 300 + n_test], y[300 : 300 + n_test]


def _sq(model, X, Y):
    return ((Y - model.predict(X)) ** 2).reshape(len(X), -1).sum(axis=1)


def _refits(make, X, y, Xt, yt, sw=None):
    """Actual loss changes (n_test, n) and own-loss changes (n,) of refits without each j."""
    def fit(keep):
        kw = {} if sw is None else {"sample_weight": sw[keep]}
        return make().fit(X[keep], y[keep], **kw)

    n = X.shape[0]
    full = fit(np.ones(n, bool))
    base_t, base_s = _sq(full, Xt, yt), _sq(full, X, y)
    act, own = np.empty((len(Xt), n)), np.empty(n)
    for j in range(n):
        m = fit(np.arange(n) != j)
        act[:, j] = _sq(m, Xt, yt) - base_t
        own[j] = _sq(m, X[j : j + 1], y[j : j + 1])[0] - base_s[j]
    return act, own


def _gp_kernel():
    X, y, _, _ = _diabetes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp = GaussianProcessRegressor(ConstantKernel() * RBF(3.0) + WhiteKernel(0.5),
                                      normalize_y=True, random_state=0).fit(X, y)
    return gp.kernel_


CASES = {
    "krr-rbf-weighted": (lambda: KernelRidge(alpha=0.5, kernel="rbf", gamma=0.1), True, False),
    "krr-poly": (lambda: KernelRidge(alpha=1.0, kernel="poly", degree=2), False, False),
    "krr-multi-target": (lambda: KernelRidge(alpha=0.5, kernel="rbf", gamma=0.1), True, True),
    "gp-alpha": (lambda: GaussianProcessRegressor(RBF(3.0), alpha=0.3, optimizer=None),
                 False, False),
    "gp-white-normalize": (lambda: GaussianProcessRegressor(_gp_kernel(), optimizer=None,
                                                            normalize_y=True), False, False),
    "gp-normalize-multi": (lambda: GaussianProcessRegressor(_gp_kernel(), optimizer=None,
                                                            normalize_y=True), False, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_kernel_influence_is_exact(case):
    make, weighted, multi = CASES[case]
    X, y, Xt, yt = _diabetes(multi=multi)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y)) if weighted else None
    inf = InfluenceFunctions(make()).fit(X, y, sample_weight=sw)
    act, own = _refits(make, X, y, Xt, yt, sw)
    scale = np.abs(act).max()
    np.testing.assert_allclose(inf.transform(Xt, yt), act, rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(inf.self_influence_, own, rtol=0, atol=1e-8 * np.abs(own).max())
    assert inf.approximation_ == "exact"
    # without targets: the exact change of the prediction (mean over targets)
    full = make().fit(X, y, **({} if sw is None else {"sample_weight": sw}))
    j = 7
    keep = np.arange(len(y)) != j
    refit = make().fit(X[keep], y[keep], **({} if sw is None else {"sample_weight": sw[keep]}))
    dpred = (refit.predict(Xt) - full.predict(Xt)).reshape(len(Xt), -1).mean(axis=1)
    np.testing.assert_allclose(inf.transform(Xt)[:, j], dpred, atol=1e-10)


def test_kernel_ridge_zero_weight_precomputed_and_pipeline():
    X, y, Xt, yt = _diabetes()
    sw = np.ones(len(y))
    sw[:3] = 0.0  # no dual coefficient, no influence
    inf = InfluenceFunctions(KernelRidge(alpha=0.5, kernel="rbf", gamma=0.1)).fit(
        X, y, sample_weight=sw)
    act, _ = _refits(lambda: KernelRidge(alpha=0.5, kernel="rbf", gamma=0.1), X, y, Xt, yt, sw)
    P = inf.transform(Xt, yt)
    np.testing.assert_array_equal(P[:, :3], 0.0)
    np.testing.assert_allclose(P, act, atol=1e-8 * np.abs(act).max())
    # a precomputed kernel gives the same influence from kernel rows
    K, Kt = rbf_kernel(X, gamma=0.1), rbf_kernel(Xt, X, gamma=0.1)
    pre = InfluenceFunctions(KernelRidge(alpha=0.5, kernel="precomputed")).fit(
        K, y, sample_weight=sw)
    np.testing.assert_allclose(pre.transform(Kt, yt), P, atol=1e-12)
    # a pipeline's preprocessing is a fixed feature map
    pipe = make_pipeline(StandardScaler(), KernelRidge(alpha=0.5, kernel="rbf", gamma=0.1))
    inf = InfluenceFunctions(pipe).fit(X * 3.0 + 1.0, y)
    assert inf.transform(Xt * 3.0 + 1.0, yt).shape == (len(yt), len(y))
    pickle.loads(pickle.dumps(inf)).transform(Xt[:2], yt[:2])


def test_frozen_kernel_model_fitted_on_other_data_warns():
    X, y, Xt, yt = _diabetes()
    model = KernelRidge(alpha=0.5, kernel="rbf", gamma=0.1).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        InfluenceFunctions(FrozenEstimator(model)).fit(X, y)
    with pytest.warns(NotStationaryWarning, match="dual coefficients"):
        InfluenceFunctions(FrozenEstimator(model)).fit(X, y[::-1])
    with pytest.raises(ValueError, match="fitted on 70"):
        InfluenceFunctions(FrozenEstimator(model)).fit(X[:50], y[:50])


def test_kernel_valuation_and_group_removal_are_exact():
    X, y, Xv, yv = _diabetes()
    make = lambda: GaussianProcessRegressor(_gp_kernel(), optimizer=None,  # noqa: E731
                                            normalize_y=True)
    iv = InfluenceValuation(make()).fit(X, y, X_val=Xv, y_val=yv)
    act, _ = _refits(make, X, y, Xv, yv)
    np.testing.assert_allclose(iv.values_, act.mean(axis=0), atol=1e-8 * np.abs(act).max())
    group = np.arange(0, 70, 4)
    keep = np.setdiff1d(np.arange(70), group)
    full, refit = make().fit(X, y), make().fit(X[keep], y[keep])
    expect = _sq(refit, Xv, yv) - _sq(full, Xv, yv)
    for order in (1, 2):
        pred = predict_removal_effect(iv.influence_, group, Xv, yv, order=order)
        np.testing.assert_allclose(pred, expect, atol=1e-8 * np.abs(expect).max())
    grouped = InfluenceValuation(make()).fit(X, y, X_val=Xv, y_val=yv,
                                            groups=np.arange(70) % 5)
    assert grouped.values_.shape == (5,)


def test_kernel_models_refused_configurations():
    X, y, _, _ = _diabetes()
    with pytest.raises(ValueError, match="one alpha per target"):
        InfluenceFunctions(KernelRidge(alpha=[1.0, 2.0])).fit(X, np.column_stack([y, y]))
    with pytest.raises(ValueError, match="interpolating"):
        InfluenceFunctions(GaussianProcessRegressor(RBF(), alpha=0.0, optimizer=None)).fit(X, y)
    gp = GaussianProcessRegressor(RBF(), optimizer=None).fit(X, y)
    with pytest.raises(ValueError, match="does not take sample_weight"):
        make_objective(gp, X, y, sample_weight=np.ones(len(y)))
    with pytest.raises(TypeError, match="SVR is not supported.*hinge.*KernelRidge"):
        InfluenceFunctions(SVR()).fit(X, y)


def test_indefinite_kernel_matrix_is_refused_with_its_eigenvalues():
    # a precomputed "kernel" that is not positive semi-definite: K + alpha I has no
    # Cholesky factor, so the dual solution the closed forms rest on is not unique
    Z = np.random.default_rng(0).normal(size=(30, 30))
    K = Z + Z.T
    lam = np.linalg.eigvalsh(K + 0.1 * np.eye(30))
    assert lam[0] < 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's own lstsq fallback
        model = KernelRidge(kernel="precomputed", alpha=0.1).fit(K, Z[:, 0])
    with pytest.raises(ValueError, match=(
            r"The kernel matrix plus the noise of KernelRidge is not positive definite .*"
            rf"Increase alpha\. The matrix is not positive definite \(smallest eigenvalue "
            rf"{lam[0]:.3g}, largest {lam[-1]:.3g}\)")):
        InfluenceFunctions(FrozenEstimator(model)).fit(K, Z[:, 0])
