"""HuberRegressor (with its jointly fitted scale) against exact refits without each point.

scikit-learn's L-BFGS-B fit stops on a relative decrease of the objective, not on
the gradient, so its refits are only accurate to about 1e-3; the reference refits
minimise scikit-learn's own ``_huber_loss_and_gradient`` to a gradient of ~1e-7
instead, and influence is computed at the equally precise full fit (frozen).
"""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import pearsonr
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import HuberRegressor
from sklearn.linear_model._huber import _huber_loss_and_gradient

from skinfluence import InfluenceFunctions
from skinfluence.influence._refit import kink_crossings
from skinfluence.objectives import make_objective
from skinfluence.valuation import InfluenceValuation

EPS, ALPHA = 1.35, 1e-3


pytestmark = pytest.mark.usefixtures("single_blas_thread")


def _minimise(X, y, sw, start):
    """Precise minimiser of scikit-learn's Huber objective: [coef, intercept, scale]."""
    bounds = [(None, None)] * (len(start) - 1) + [(1e-12, None)]
    res = minimize(_huber_loss_and_gradient, start, args=(X, y, EPS, ALPHA, sw), jac=True,
                   method="L-BFGS-B", bounds=bounds,
                   options=dict(ftol=0.0, gtol=1e-14, maxiter=100000, maxfun=100000,
                                maxcor=50))
    return res.x


@pytest.fixture(scope="module")
def huber(diabetes_shuffled):
    X, y = diabetes_shuffled
    n = 100
    y = y.copy()
    y[:n:10] += 3.0  # gross outliers beyond the threshold
    X, y, Xt, yt = X[:n], y[:n], X[n : n + 40], y[n : n + 40]
    sw = np.random.default_rng(1).uniform(0.5, 2.0, n)
    model = HuberRegressor(epsilon=EPS, alpha=ALPHA).fit(X, y, sample_weight=sw)
    theta = _minimise(X, y, sw, np.r_[model.coef_, model.intercept_, model.scale_])
    model.coef_, model.intercept_, model.scale_ = theta[:-2], theta[-2], theta[-1]
    refits = np.array([_minimise(X[np.arange(n) != j], y[np.arange(n) != j],
                                 sw[np.arange(n) != j], theta) for j in range(n)])
    return X, y, Xt, yt, sw, model, refits


def test_huber_objective_is_scikit_learns(diabetes_standardised):
    X, y = diabetes_standardised
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    model = HuberRegressor(epsilon=EPS, alpha=ALPHA).fit(X, y, sample_weight=sw)
    obj = make_objective(model, X, y, sw)
    value, grad = _huber_loss_and_gradient(obj.theta, X, y, EPS, ALPHA, sw)
    assert obj.objective_value() == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(obj.objective_gradient(), grad, rtol=0,
                               atol=1e-12 * np.abs(grad).max() + 1e-12)
    # the Hessian is the derivative of the gradient wherever the loss is twice differentiable
    h = 1e-6
    fd = np.column_stack([
        (obj.objective_gradient(obj.theta + h * e) - obj.objective_gradient(obj.theta - h * e))
        / (2 * h) for e in np.eye(obj.n_params)
    ])
    np.testing.assert_allclose(obj.hessian(), fd, rtol=0, atol=1e-6 * np.abs(fd).max())


def test_huber_influence_matches_exact_refits(huber):
    X, y, Xt, yt, sw, model, refits = huber
    inf = InfluenceFunctions(FrozenEstimator(model)).fit(X, y, sample_weight=sw)
    obj = inf.objective_
    Xft = obj.features(Xt)
    base = obj.sample_losses(Xft, yt)
    act = np.column_stack([obj.sample_losses(Xft, yt, t) - base for t in refits])
    pred = inf.transform(Xt, yt)
    assert pearsonr(pred.ravel(), act.ravel())[0] >= 0.9999
    # every removal that moves another point across the threshold is refit exactly
    Z = obj.outputs(obj.X)
    crossing = np.flatnonzero([
        np.delete(obj.crosses_kink(Z, obj.y, (obj.outputs(obj.X, t) - Z)[:, :, None])[:, 0],
                  j).any()
        for j, t in enumerate(refits)
    ])
    assert crossing.size > 10
    # detected from the Newton step's predicted residuals: a point that ends up just at
    # the threshold can be missed
    flagged = kink_crossings(inf._removal)
    assert np.isin(flagged, crossing).all()
    assert np.isin(crossing, flagged).mean() >= 0.95
    assert np.isin(flagged, inf.refined_indices_).all()
    r = inf.refined_indices_
    np.testing.assert_allclose(pred[:, r], act[:, r], rtol=0, atol=1e-6 * np.abs(act).max())
    # without those refits (refine=0) the crossing removals carry the largest errors
    plain = InfluenceFunctions(FrozenEstimator(model), refine=0).fit(X, y, sample_weight=sw)
    assert pearsonr(plain.transform(Xt, yt).ravel(), act.ravel())[0] >= 0.99
    # self-influence: the exact change of each refit point's own loss
    own = np.array([obj.sample_losses(X[j : j + 1], y[j : j + 1], refits[j])[0]
                    - obj.sample_losses(X[j : j + 1], y[j : j + 1])[0] for j in r])
    np.testing.assert_allclose(inf.self_influence_[r], own, atol=1e-6 * np.abs(own).max())


def test_huber_valuation_runs_unchanged(huber):
    X, y, Xt, yt, sw, model, refits = huber
    iv = InfluenceValuation(FrozenEstimator(model)).fit(X, y, X_val=Xt, y_val=yt,
                                                        sample_weight=sw)
    obj = iv.influence_.objective_
    Xft = obj.features(Xt)
    base = obj.sample_losses(Xft, yt)
    actual = np.array([(obj.sample_losses(Xft, yt, t) - base).mean() for t in refits])
    assert pearsonr(iv.values_, actual)[0] >= 0.999
    # the planted outliers are the most harmful points
    assert np.isin(np.argsort(iv.values_)[:5], np.arange(0, 100, 10)).sum() >= 3
