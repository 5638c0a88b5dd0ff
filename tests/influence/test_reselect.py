"""hyperparameters="reselect": removals that choose a CV estimator's regularisation (and a
Gaussian process's kernel hyperparameters) again, against actual refits without each row."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LogisticRegressionCV, Ridge, RidgeClassifierCV, RidgeCV

from skinfluence import InfluenceFunctions
from skinfluence.influence import _reselect
from skinfluence.valuation import predict_removal_effect

# a fine grid: neighbouring alphas are close, so removing one row often changes the choice
ALPHAS = np.logspace(-2, 3, 40)


pytestmark = pytest.mark.usefixtures("single_blas_thread")


def _standardised(X, y, n, n_test, seed=0):
    idx = np.random.default_rng(seed).permutation(len(y))[: n + n_test]
    X, y = X[idx], y[idx]
    X = (X - X[:n].mean(0)) / X[:n].std(0)
    return X[:n], y[:n], X[n:], y[n:]


def _deleted(a, j):
    return None if a is None else a[np.arange(a.shape[0]) != j]


def _refits(make, X, y, sw=None):
    """The estimator refit on the data with each row deleted (the ground truth)."""
    out = []
    for j in range(len(y)):
        kw = {} if sw is None else {"sample_weight": _deleted(sw, j)}
        out.append(make().fit(_deleted(X, j), _deleted(y, j), **kw))
    return out


def _theta(model):
    """Parameters in the objective's layout: coef (per target), then intercepts if fitted."""
    return np.r_[np.ravel(model.coef_),
                 np.ravel(model.intercept_) if model.fit_intercept else []]


def _check_exact(inf, refits, data, Xt, yt):
    """transform, parameter_changes, self-influence and the selected alphas equal refits."""
    obj = inf.objective_
    Xft, ytt = obj.features(Xt), obj.encode_target(yt)
    base = obj.sample_losses(Xft, ytt)
    act = np.column_stack([obj.sample_losses(Xft, ytt, _theta(m)) - base for m in refits])
    scale = np.abs(act).max()
    np.testing.assert_allclose(inf.transform(Xt, yt), act, rtol=0, atol=1e-8 * scale)
    dtheta = np.column_stack([_theta(m) for m in refits]) - obj.theta[:, None]
    np.testing.assert_allclose(inf.parameter_changes(), dtheta, rtol=0,
                               atol=1e-8 * np.abs(dtheta).max())
    own = np.array([obj.sample_losses(obj.X[j:j + 1], obj.y[j:j + 1], _theta(m))[0]
                    for j, m in enumerate(refits)]) - obj.sample_losses(obj.X, obj.y)
    np.testing.assert_allclose(inf.self_influence_, own, rtol=0, atol=1e-8 * np.abs(own).max())
    chosen = np.array([np.ravel(m.alpha_) for m in refits])
    np.testing.assert_array_equal(inf.selected_hyperparameters_, chosen)
    changed = np.any(chosen != np.ravel(inf.estimator_.alpha_), axis=1)
    np.testing.assert_array_equal(inf.hyperparameters_changed_, changed)
    assert changed.any() and not changed.all()  # the case this option exists for
    # where the choice moved, holding it fixed gives other numbers (the test can fail)
    X, y, sw = data
    fixed = InfluenceFunctions(clone(inf.estimator)).fit(X, y, sample_weight=sw)
    fixed = fixed.transform(Xt, yt)
    assert np.abs(fixed[:, changed] - act[:, changed]).max() > 1e-4 * scale
    return act


@pytest.mark.parametrize("case", ["weighted", "alpha-per-target", "wide-no-intercept",
                                  "sparse"])
def test_ridge_cv_reselect_is_exact_in_closed_form(case):
    X, y = load_diabetes(return_X_y=True)
    y = (y - y.mean()) / y.std()
    n = 25 if case == "wide-no-intercept" else 40
    X, y, Xt, yt = _standardised(X, y, n, 20, seed=1)
    sw = None
    kw = dict(alphas=ALPHAS)
    if case == "weighted":
        sw = np.random.default_rng(0).uniform(0.5, 2.0, n)
    if case == "alpha-per-target":
        y, yt = np.column_stack([y, X[:, 0] - y]), np.column_stack([yt, Xt[:, 0] - yt])
        kw["alpha_per_target"] = True
    if case == "wide-no-intercept":  # p > n: the eigen (Gram) path of scikit-learn
        rng = np.random.default_rng(2)
        X = np.hstack([X, rng.normal(size=(n, 30))])
        Xt = np.hstack([Xt, rng.normal(size=(len(yt), 30))])
        kw["fit_intercept"] = False
    if case == "sparse":  # scikit-learn centres implicitly; the closed form densifies
        X = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0.0, X))
    inf = InfluenceFunctions(RidgeCV(**kw), hyperparameters="reselect")
    inf.fit(X, y, sample_weight=sw)
    assert inf.solver_info_["method"] == "closed_form"
    _check_exact(inf, _refits(lambda: RidgeCV(**kw), X, y, sw), (X, y, sw), Xt, yt)


def test_ridge_cv_deletion_is_zero_weight():
    """RidgeCV without a row and with its weight set to 0 choose the same alpha and fit."""
    X, y = load_diabetes(return_X_y=True)
    X, y, _, _ = _standardised(X, (y - y.mean()) / y.std(), 40, 0, seed=1)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, 40)
    for j in range(0, 40, 7):
        deleted = RidgeCV(alphas=ALPHAS).fit(np.delete(X, j, 0), np.delete(y, j),
                                             sample_weight=np.delete(sw, j))
        w0 = sw.copy()
        w0[j] = 0.0
        zero = RidgeCV(alphas=ALPHAS).fit(X, y, sample_weight=w0)
        assert zero.alpha_ == deleted.alpha_
        np.testing.assert_allclose(_theta(zero), _theta(deleted), rtol=1e-8, atol=1e-12)


def test_ridge_classifier_cv_reselect_is_exact():
    X, y = load_wine(return_X_y=True)
    X, y, Xt, yt = _standardised(X, y, 60, 30, seed=0)
    cw = {0: 1.0, 1: 2.0, 2: 0.5}  # fixed class weights stay in the closed form
    inf = InfluenceFunctions(RidgeClassifierCV(alphas=ALPHAS, class_weight=cw),
                             hyperparameters="reselect").fit(X, y)
    assert inf.solver_info_["method"] == "closed_form"
    refits = _refits(lambda: RidgeClassifierCV(alphas=ALPHAS, class_weight=cw), X, y)
    _check_exact(inf, refits, (X, y, None), Xt, yt)


def test_k_fold_ridge_cv_reselect_refits():
    """cv=3 has no closed form: scikit-learn's own refits, one per row."""
    X, y = load_diabetes(return_X_y=True)
    X, y, Xt, yt = _standardised(X, (y - y.mean()) / y.std(), 25, 15, seed=2)
    alphas = np.logspace(-1, 2.5, 6)
    inf = InfluenceFunctions(RidgeCV(alphas=alphas, cv=3), hyperparameters="reselect")
    inf.fit(X, y)
    assert inf.solver_info_["method"] == "refit"
    refits = _refits(lambda: RidgeCV(alphas=alphas, cv=3), X, y)
    _check_exact(inf, refits, (X, y, None), Xt, yt)


def test_logistic_regression_cv_reselect_equals_refits():
    X, y = load_breast_cancer(return_X_y=True)
    X, y, Xt, yt = _standardised(X[:, :6], y, 30, 30, seed=4)

    def make():
        return LogisticRegressionCV(Cs=np.logspace(-2, 2, 5), cv=3, l1_ratios=(0.0,),
                                    scoring="neg_log_loss", use_legacy_attributes=False,
                                    tol=1e-10, max_iter=1000, solver="newton-cholesky")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn's l1_ratios chatter
        inf = InfluenceFunctions(make(), hyperparameters="reselect", n_jobs=2).fit(X, y)
        refits = _refits(make, X, y)
    # the loss is the log-loss of each refit's predict_proba (not the objective's code)
    full = inf.estimator_
    nll = lambda m: -np.log(m.predict_proba(Xt)[np.arange(len(yt)), yt])  # noqa: E731
    act = np.column_stack([nll(m) - nll(full) for m in refits])
    np.testing.assert_allclose(inf.transform(Xt, yt), act, rtol=0,
                               atol=1e-8 * np.abs(act).max())
    chosen = np.array([m.C_ for m in refits]).reshape(len(y), -1)[:, 0]
    np.testing.assert_allclose(inf.selected_hyperparameters_[:, 0], chosen)
    changed = chosen != full.C_
    np.testing.assert_array_equal(inf.hyperparameters_changed_, changed)
    assert changed.any()
    loo = np.array([m.decision_function(X[j:j + 1])[0] for j, m in enumerate(refits)])
    np.testing.assert_allclose(inf.loo_decision_function()[:, 0], loo, rtol=1e-8, atol=1e-8)


def test_gaussian_process_reselect_matches_refits_from_the_initial_kernel():
    """The kernel hyperparameters re-optimised without each point: the refit started at the
    fitted kernel_ finds the optimum that scikit-learn's own refit (from the initial kernel)
    finds, to the optimiser's tolerance, on a likelihood with one optimum."""
    rng = np.random.default_rng(0)
    X = np.sort(rng.uniform(0, 6, 30))[:, None]
    y = np.sin(X[:, 0]) + 0.3 * rng.normal(size=30)
    y[7] += 2.0  # an outlier: its removal moves the noise level most
    Xt = np.linspace(0, 6, 15)[:, None]
    yt = np.sin(Xt[:, 0])
    gp = GaussianProcessRegressor(ConstantKernel(1.0) * RBF(1.0) + WhiteKernel(0.1),
                                  normalize_y=True)
    inf = InfluenceFunctions(gp, hyperparameters="reselect").fit(X, y)
    refits = _refits(lambda: clone(gp), X, y)  # scikit-learn's refit: from the initial kernel
    full = inf.estimator_
    sq = lambda m, A, b: (m.predict(A) - b) ** 2  # noqa: E731
    act = np.column_stack([sq(m, Xt, yt) - sq(full, Xt, yt) for m in refits])
    pred = inf.transform(Xt, yt)
    scale = np.abs(act).max()
    np.testing.assert_allclose(pred, act, rtol=0, atol=1e-4 * scale)
    thetas = np.array([m.kernel_.theta for m in refits])
    np.testing.assert_allclose(inf.selected_hyperparameters_, thetas, atol=1e-3)
    assert inf.hyperparameters_changed_.all()
    loo = np.array([m.predict(X[j:j + 1])[0] for j, m in enumerate(refits)])
    np.testing.assert_allclose(inf.loo_decision_function()[:, 0], loo, rtol=0, atol=1e-4)
    # holding the kernel fixed misses the moving noise level: errors far above the tolerance
    fixed = InfluenceFunctions(gp).fit(X, y).transform(Xt, yt)
    assert np.abs(fixed - act).max() > 1e-2 * scale
    ex = inf.explain(Xt, yt, k=3)
    np.testing.assert_allclose(ex.helpful_values, -np.sort(-act, axis=1)[:, :3], atol=1e-4 * scale)
    with pytest.raises(TypeError, match="no common parameter vector"):
        inf.parameter_changes()


def test_reselect_refusals_and_warnings(monkeypatch):
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:30], y[:30]
    with pytest.raises(ValueError, match="Ridge's are given"):
        InfluenceFunctions(Ridge(), hyperparameters="reselect").fit(X, y)
    with pytest.raises(ValueError, match="KernelRidge's are given"):
        InfluenceFunctions(KernelRidge(alpha=1.0), hyperparameters="reselect").fit(X, y)
    with pytest.raises(ValueError, match="no kernel hyperparameters"):
        InfluenceFunctions(GaussianProcessRegressor(RBF(), alpha=0.5, optimizer=None),
                           hyperparameters="reselect").fit(X, y)
    with pytest.raises(ValueError, match="leave approximation and refine"):
        InfluenceFunctions(RidgeCV(), approximation="first_order",
                           hyperparameters="reselect").fit(X, y)
    inf = InfluenceFunctions(RidgeCV(), hyperparameters="reselect").fit(X, y)
    with pytest.raises(ValueError, match="Group removal holds"):
        predict_removal_effect(inf, [0, 1], X[:3], y[:3])
    monkeypatch.setattr(_reselect, "MAX_REFITS", 20)
    with pytest.raises(ValueError, match="30 refits are refused above 20"):
        InfluenceFunctions(RidgeCV(cv=3), hyperparameters="reselect").fit(X, y)
    monkeypatch.setattr(_reselect, "MAX_REFITS", 100)
    monkeypatch.setattr(_reselect, "WARN_SECONDS", 0.0)
    with pytest.warns(UserWarning, match="refits RidgeCV 30 times; the first refit took"):
        InfluenceFunctions(RidgeCV(cv=3), hyperparameters="reselect").fit(X, y)
