"""Cross-validated estimators: influence with the selected regularisation held fixed,
against refits of the equivalent fixed-regularisation model without each point."""

import warnings

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import (
    LogisticRegression,
    LogisticRegressionCV,
    Ridge,
    RidgeClassifier,
    RidgeClassifierCV,
    RidgeCV,
)

from skinfluence import InfluenceCleaner, InfluenceFunctions
from skinfluence.valuation import InfluenceValuation

ALPHAS = np.logspace(-2, 3, 12)


pytestmark = pytest.mark.usefixtures("single_blas_thread")


def _standardised(X, y, n, n_test, seed=0):
    idx = np.random.default_rng(seed).permutation(len(y))[: n + n_test]
    X, y = X[idx], y[idx]
    X = (X - X[:n].mean(0)) / X[:n].std(0)
    return X[:n], y[:n], X[n:], y[n:]


def _diabetes(n=70, n_test=25):
    X, y = load_diabetes(return_X_y=True)
    return _standardised(X, (y - y.mean()) / y.std(), n, n_test)


def _loss_refits(obj, make_fixed, X, y, Xt, yt, sw=None):
    """Actual loss changes (n_test, n) of the fixed-regularisation model refit without j."""
    Xft, ytt = obj.features(Xt), obj.encode_target(yt)
    base = obj.sample_losses(Xft, ytt)
    n = len(y)
    act = np.empty((len(yt), n))
    for j in range(n):
        keep = np.arange(n) != j
        m = make_fixed().fit(X[keep], y[keep],
                             **({} if sw is None else {"sample_weight": sw[keep]}))
        theta = np.r_[np.ravel(m.coef_), np.ravel(m.intercept_)]
        act[:, j] = obj.sample_losses(Xft, ytt, theta) - base
    return act


@pytest.mark.parametrize("cv, multi", [(None, False), (4, False), (None, True)],
                         ids=["gcv", "4-fold", "gcv-alpha-per-target"])
def test_ridge_cv_is_exact_with_alpha_held_fixed(cv, multi):
    X, y, Xt, yt = _diabetes()
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    if multi:
        y, yt = np.column_stack([y, X[:, 0] - y]), np.column_stack([yt, Xt[:, 0] - yt])
    est = RidgeCV(alphas=ALPHAS, cv=cv, alpha_per_target=multi)
    inf = InfluenceFunctions(est).fit(X, y, sample_weight=sw)
    alpha = inf.estimator_.alpha_
    assert np.all(np.ravel(alpha) > ALPHAS[0])  # an interior choice, not the grid's edge
    act = _loss_refits(inf.objective_, lambda: Ridge(alpha=alpha), X, y, Xt, yt, sw)
    np.testing.assert_allclose(inf.transform(Xt, yt), act, rtol=0,
                               atol=1e-8 * np.abs(act).max())


def test_ridge_classifier_cv_is_exact():
    X, y = load_wine(return_X_y=True)
    X, y, Xt, yt = _standardised(X, y, 90, 30)
    inf = InfluenceFunctions(RidgeClassifierCV(alphas=ALPHAS)).fit(X, y)
    alpha = inf.estimator_.alpha_
    act = _loss_refits(inf.objective_, lambda: RidgeClassifier(alpha=alpha), X, y, Xt, yt)
    np.testing.assert_allclose(inf.transform(Xt, yt), act, rtol=0,
                               atol=1e-8 * np.abs(act).max())


@pytest.mark.parametrize("data", ["breast_cancer", "wine"])
def test_logistic_regression_cv_matches_refits_at_c(data):
    loader = load_breast_cancer if data == "breast_cancer" else load_wine
    X, y = loader(return_X_y=True)
    X, y, Xt, yt = _standardised(X, y, 100, 40)
    kw = dict(tol=1e-12, max_iter=1000, solver="newton-cholesky")
    est = LogisticRegressionCV(Cs=np.logspace(-2, 2, 9), l1_ratios=(0.0,), scoring="neg_log_loss",
                               use_legacy_attributes=False, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn's l1_ratios chatter
        inf = InfluenceFunctions(est).fit(X, y)
    C = inf.estimator_.C_
    act = _loss_refits(inf.objective_, lambda: LogisticRegression(C=C, **kw), X, y, Xt, yt)
    pred = inf.transform(Xt, yt)
    assert pearsonr(pred.ravel(), act.ravel())[0] >= 0.999
    np.testing.assert_allclose(pred, act, rtol=0, atol=1e-2 * np.abs(act).max())


def test_logistic_regression_cv_refused_configurations():
    X, y = load_breast_cancer(return_X_y=True)
    X = X[:120, :5]
    y = y[:120]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="refit=False"):
            InfluenceFunctions(LogisticRegressionCV(Cs=3, refit=False)).fit(X, y)
        # an L1 penalty is supported since the L1 work (tests/influence/test_sparse.py),
        # except with balanced class weights
        with pytest.raises(ValueError, match="an L1 penalty and class_weight='balanced'"):
            InfluenceFunctions(LogisticRegressionCV(Cs=3, l1_ratios=(1.0,), solver="saga",
                                                    class_weight="balanced",
                                                    max_iter=50)).fit(X, y)


def test_cv_estimators_run_in_valuation_and_cleaning():
    X, y, Xv, yv = _diabetes()
    iv = InfluenceValuation(RidgeCV(alphas=ALPHAS)).fit(X, y, X_val=Xv, y_val=yv)
    alpha = iv.estimator_.alpha_
    act = _loss_refits(iv.influence_.objective_, lambda: Ridge(alpha=alpha), X, y, Xv, yv)
    np.testing.assert_allclose(iv.values_, act.mean(axis=0), atol=1e-8 * np.abs(act).max())

    X, y = load_breast_cancer(return_X_y=True)
    X, y, _, _ = _standardised(X, y, 150, 0)
    y_noisy = y.copy()
    flipped = np.arange(0, 150, 15)
    y_noisy[flipped] = 1 - y_noisy[flipped]
    est = LogisticRegressionCV(Cs=np.logspace(-2, 2, 5), l1_ratios=(0.0,),
                               scoring="neg_log_loss", use_legacy_attributes=False,
                               max_iter=1000)
    for method in ("loo", "self_influence"):
        cleaner = InfluenceCleaner(est, method=method).fit(X, y_noisy)
        assert cleaner.scores_.shape == (150,)
        # the flipped labels rank far above chance
        assert np.isin(np.argsort(-cleaner.scores_)[:20], flipped).sum() >= 5
