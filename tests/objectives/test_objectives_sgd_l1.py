"""SGD with an L1 / elastic-net penalty (objectives/sgd.py): its objective is that of
ElasticNet (squared error) or L1 LogisticRegression (log loss), checked against SGD's
objective written out by hand and against the equivalent model's objective."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import ElasticNet, LogisticRegression, SGDClassifier, SGDRegressor

from skinfluence.objectives import make_objective

N = 100


@pytest.fixture(scope="module")
def regression(diabetes_standardised):
    X, y = diabetes_standardised
    return X[:N], y[:N]


@pytest.fixture(scope="module")
def classification():
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    idx = np.random.default_rng(0).permutation(len(y))[:N]
    return X[idx, :8], y[idx]


def _set(model, coef, intercept):
    model.coef_ = np.array(coef, dtype=np.float64)
    model.intercept_ = np.array(intercept, dtype=np.float64)
    return model


def _points(obj, rng):
    """Parameters with the fitted signs (inactive coefficients at zero), where the
    objective is smooth: the fit and two perturbations of its active entries."""
    out = [obj.theta]
    for _ in range(2):
        t = obj.theta + 0.05 * rng.standard_normal(obj.n_params) * (obj.signs != 0)
        t[-1] += 0.1
        out.append(t)
    return out


def _penalty(w, alpha, r):
    return alpha * (r * np.abs(w).sum() + (1 - r) / 2 * w @ w)


@pytest.mark.parametrize("penalty, r", [("l1", 1.0), ("elasticnet", 0.4)])
@pytest.mark.parametrize("s", [1.0, 2.5], ids=["unweighted", "constant-weight"])
def test_regressor_is_elastic_net(regression, penalty, r, s):
    """J = n E: SGD's ``mean(s (y - z)^2 / 2) + alpha (r |w|_1 + (1 - r)/2 |w|^2)``;
    equal (values, gradients, Hessians) to half the objective of ElasticNet(alpha / s, r)
    at the same parameters, to 1e-12 (SGD's loss ``1/2 (y - z)^2``, ElasticNet's
    ``(y - z)^2``)."""
    X, y = regression
    d = X.shape[1]
    coef = np.where(np.arange(d) % 3 == 0, 0.0, np.linspace(-0.4, 0.5, d))
    sw = None if s == 1.0 else np.full(N, s)
    sgd = _set(SGDRegressor(penalty=penalty, l1_ratio=0.15 if penalty == "l1" else r,
                            alpha=0.05), coef, [0.1])
    enet = ElasticNet(alpha=0.05 / s, l1_ratio=r)
    enet.coef_, enet.intercept_ = coef.copy(), 0.1
    obj = make_objective(sgd, X, y, sw)
    ref = make_objective(enet, X, y, sw)
    assert type(obj).__name__ == "SGDElasticNetObjective"
    np.testing.assert_array_equal(obj._inactive, np.flatnonzero(coef == 0))
    rng = np.random.default_rng(0)
    for theta in _points(obj, rng):
        w, b = theta[:d], theta[d]
        E = np.mean(s * 0.5 * (y - X @ w - b) ** 2) + _penalty(w, 0.05, r)
        value = obj.objective_value(theta)
        assert abs(value - N * E) <= 1e-12 * abs(value)
        assert abs(value - ref.objective_value(theta) / 2) <= 1e-12 * abs(value)
        g = obj.objective_gradient(theta)
        resid = y - X @ w - b
        gE = np.r_[-(s * resid) @ X / N + 0.05 * (r * np.sign(w) + (1 - r) * w),
                   -np.mean(s * resid)]
        A = obj.active  # the intercept is active and unpenalised
        np.testing.assert_allclose(g[A], N * gE[A], rtol=0,
                                   atol=1e-12 * np.abs(g).max())
        np.testing.assert_allclose(g, ref.objective_gradient(theta) / 2, rtol=0,
                                   atol=1e-12 * np.abs(g).max())
        np.testing.assert_allclose(obj.hessian(theta), ref.hessian(theta) / 2, rtol=1e-12)
        # per-sample losses: SGD's own squared error
        z = obj.outputs(X, theta)
        np.testing.assert_allclose(obj.loss_from_outputs(z, y), 0.5 * (y - z[:, 0]) ** 2,
                                   rtol=1e-12)


@pytest.mark.parametrize("penalty, r", [("l1", 1.0), ("elasticnet", 0.6)])
def test_classifier_is_l1_logistic(classification, penalty, r):
    """E / alpha: SGD's ``mean(s log(1 + exp(-t z))) + alpha (r |w|_1 + (1 - r)/2 |w|^2)``
    with ``t`` in {-1, 1}; equal to the objective of LogisticRegression(C = 1/(n alpha),
    l1_ratio=r, saga) at the same parameters, to 1e-12; the intercept is unpenalised."""
    X, y = classification
    d = X.shape[1]
    alpha = 0.02
    coef = np.where(np.arange(d) % 2 == 0, 0.0, np.linspace(-0.8, 0.7, d))[None]
    sw = np.random.default_rng(3).uniform(0.5, 2.0, N)
    sgd = _set(SGDClassifier(loss="log_loss", penalty=penalty, l1_ratio=r, alpha=alpha),
               coef, [-0.2])
    sgd.classes_ = np.array([0, 1])
    lr = _set(LogisticRegression(C=1 / (N * alpha), l1_ratio=r, solver="saga"), coef, [-0.2])
    lr.classes_ = np.array([0, 1])
    obj = make_objective(sgd, X, y, sw)
    ref = make_objective(lr, X, y, sw)
    assert type(obj).__name__ == "SGDLogisticObjective"
    t = 2.0 * y - 1
    rng = np.random.default_rng(1)
    for theta in _points(obj, rng):
        w, b = theta[:d], theta[d]
        z = X @ w + b
        E = np.mean(sw * np.logaddexp(0, -t * z)) + _penalty(w, alpha, r)
        value = obj.objective_value(theta)
        assert abs(value - E / alpha) <= 1e-12 * abs(value)
        assert abs(value - ref.objective_value(theta)) <= 1e-12 * abs(value)
        g = obj.objective_gradient(theta)
        q = -t / (1 + np.exp(t * z)) * sw / N
        gE = np.r_[q @ X + alpha * (r * np.sign(w) + (1 - r) * w), q.sum()]
        A = obj.active
        np.testing.assert_allclose(g[A], gE[A] / alpha, rtol=0, atol=1e-12 * np.abs(g).max())
        np.testing.assert_allclose(g, ref.objective_gradient(theta), rtol=0,
                                   atol=1e-12 * np.abs(g).max())


def test_classifier_removal_weights_are_sgd_means(classification):
    """Without j, SGD's mean over n - 1 points scales the other weights by n / (n - 1)
    (the L1 LogisticRegression keeps them: its C is fixed)."""
    X, y = classification
    sgd = _set(SGDClassifier(loss="log_loss", penalty="l1", alpha=0.02),
               np.r_[0.5, np.zeros(X.shape[1] - 1)][None], [0.0])
    sgd.classes_ = np.array([0, 1])
    obj = make_objective(sgd, X, y)
    w = obj.removal_weights(4)
    expected = obj.weights * N / (N - 1)
    expected[4] = 0.0
    np.testing.assert_allclose(w, expected, rtol=1e-15)
    sw = obj._refit_sample_weight(np.array([4, 9]))
    np.testing.assert_allclose(sw[[0, 4, 9]], [N / (N - 2), 0, 0], rtol=1e-15)
