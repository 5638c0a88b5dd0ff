"""InfluenceFunctions on MLPs against actual refits from the fitted weights."""

import copy
import warnings

import numpy as np
import pytest
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.neural_network._multilayer_perceptron import _pack

from skinfluence import InfluenceFunctions
from skinfluence.objectives import make_objective


def _tight_refit(est, X, y):
    """Minimise scikit-learn's own MLP loss (``_loss_grad_lbfgs``) from ``est``'s weights
    with L-BFGS run to convergence (sklearn's lbfgs stops on a relative decrease of 2e-9)."""
    e = copy.deepcopy(est)
    if hasattr(e, "classes_"):
        Y = e._label_binarizer.transform(y).astype(float)
    else:
        Y = np.asarray(y, dtype=float).reshape(len(y), -1)
    sizes = [X.shape[1]] + [c.shape[1] for c in e.coefs_]
    L = len(sizes) - 1
    e._coef_indptr, e._intercept_indptr, start = [], [], 0
    for i in range(L):
        e._coef_indptr.append((start, start + sizes[i] * sizes[i + 1], (sizes[i], sizes[i + 1])))
        start += sizes[i] * sizes[i + 1]
    for i in range(L):
        e._intercept_indptr.append((start, start + sizes[i + 1]))
        start += sizes[i + 1]

    def fun(theta):
        return e._loss_grad_lbfgs(theta, X, Y, None, [X] + [None] * L, [None] * L, [None] * L,
                                  [None] * L)

    res = scipy.optimize.minimize(fun, _pack(e.coefs_, e.intercepts_), method="L-BFGS-B",
                                  jac=True, options={"maxiter": 20000, "ftol": 1e-16,
                                                     "gtol": 1e-11})
    e._unpack(res.x)
    return e


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_mlp_influence_matches_refits(kind):
    rng = np.random.RandomState(0)
    n = 80
    X = rng.randn(n, 3)
    if kind == "multiclass":
        y = np.digitize(X[:, 0] + 0.5 * X[:, 1] ** 2 + 0.3 * rng.randn(n), [-0.3, 0.8])
        est = MLPClassifier(hidden_layer_sizes=(5,), activation="tanh", alpha=1.0,
                            solver="lbfgs", max_iter=3000, random_state=0)
    else:
        y = X[:, 0] - X[:, 1] ** 2 + 0.1 * rng.randn(n)
        est = MLPRegressor(hidden_layer_sizes=(5,), activation="tanh", alpha=1.0,
                           solver="lbfgs", max_iter=3000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    est = _tight_refit(est, X, y)
    from sklearn.frozen import FrozenEstimator

    Xq, yq = X[:2] + 0.1, y[:2]
    obj = make_objective(est, X, y)
    base = obj.sample_losses(obj.features(Xq), obj.encode_target(yq))
    infs = {
        a: InfluenceFunctions(FrozenEstimator(est), approximation=a).fit(X, y)
        for a in ("newton", "first_order")
    }
    T = {a: inf.transform(Xq, yq) for a, inf in infs.items()}
    # the points that matter most, plus a few others
    cand = np.unique(np.r_[np.argsort(-np.abs(T["newton"]), axis=1)[:, :3].ravel(), [10, 20]])
    actual = np.empty((2, cand.size))
    for c, j in enumerate(cand):
        keep = np.arange(n) != j
        refit = _tight_refit(est, X[keep], y[keep])
        o = make_objective(refit, X[keep], y[keep])
        actual[:, c] = o.sample_losses(o.features(Xq), o.encode_target(yq)) - base
    pred = T["newton"][:, cand].ravel()
    act = actual.ravel()
    # right sign and scale: least-squares slope of actual on predicted near 1
    slope = (pred @ act) / (pred @ pred)
    assert 0.75 < slope < 1.33
    assert np.corrcoef(pred, act)[0, 1] > 0.9
    assert np.corrcoef(T["first_order"][:, cand].ravel(), act)[0, 1] > 0.9
    if kind == "regression":
        # smooth and well conditioned: one Newton step is accurate point by point
        assert np.abs(pred - act).max() <= 0.15 * np.abs(act).max()
    # API parity with the linear models
    inf = infs["newton"]
    assert inf.self_influence_.shape == (n,)
    ex = inf.explain(Xq, yq, k=3)
    np.testing.assert_allclose(ex.helpful_values, -np.sort(-T["newton"], axis=1)[:, :3])
    assert inf.transform(Xq).shape == (2, n)
    np.testing.assert_allclose(inf.predict(Xq), est.predict(Xq))


def test_relu_damping_is_reported():
    """A ReLU net stopped early has an indefinite Hessian: the damping is stated, not hidden."""
    rng = np.random.RandomState(1)
    X = rng.randn(60, 3)
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    est = MLPClassifier(hidden_layer_sizes=(6,), activation="relu", alpha=1e-4, max_iter=30,
                        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    from sklearn.frozen import FrozenEstimator

    obj = make_objective(est, X, y)
    lam_min = obj.min_eigenvalue()
    assert lam_min < 0
    with pytest.warns(RuntimeWarning, match="not positive definite"):
        inf = InfluenceFunctions(FrozenEstimator(est), solver="exact").fit(X, y)
    assert inf.solver_info_["damping"] >= -lam_min
    assert np.all(np.isfinite(inf.transform(X[:3], y[:3])))
