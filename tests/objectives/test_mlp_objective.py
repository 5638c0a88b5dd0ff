"""The MLP objective against scikit-learn's own backprop, finite differences and refits."""

import copy
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.neural_network._multilayer_perceptron import _pack
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence.objectives import _mlp_hvp_kernels as KH_
from skinfluence.objectives import make_objective
from skinfluence.objectives.mlp import _as_c64

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
KINDS = ["multiclass", "binary", "multilabel", "regression", "multioutput", "poisson"]


def _data(kind, rng, n=36, d=4):
    X = rng.randn(n, d)
    if kind == "multiclass":
        y = rng.randint(0, 3, n)
    elif kind == "binary":
        y = np.where(rng.rand(n) > 0.5, "yes", "no")
    elif kind == "multilabel":
        y = rng.randint(0, 2, (n, 3))
    elif kind == "regression":
        y = X[:, 0] - X[:, 1] ** 2 + 0.1 * rng.randn(n)
    elif kind == "multioutput":
        y = np.column_stack([X[:, 0], X[:, 1] * X[:, 2]]) + 0.1 * rng.randn(n, 2)
    else:
        y = rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)
    return X, y


def _fit(kind, activation, X, y, hidden=(5, 3), **kw):
    params = dict(
        hidden_layer_sizes=hidden, activation=activation, alpha=0.3, max_iter=40,
        random_state=0,
    )
    params.update(kw)
    if kind in ("multiclass", "binary", "multilabel"):
        est = MLPClassifier(**params)
    else:
        est = MLPRegressor(loss="poisson" if kind == "poisson" else "squared_error", **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _sklearn_loss_grad(est, X, y, sw):
    """scikit-learn's own objective value and gradient (``_backprop``)."""
    if hasattr(est, "classes_"):
        Y = est._label_binarizer.transform(y).astype(float)
    else:
        Y = np.asarray(y, dtype=float).reshape(X.shape[0], -1)
    L = est.n_layers_ - 1
    acts = [X] + [None] * L
    loss, cg, ig = est._backprop(X, Y, sw, acts, [None] * L, [None] * L, [None] * L)
    return loss, _pack(cg, ig)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_matches_sklearn_backprop(kind, activation):
    rng = np.random.RandomState(0)
    X, y = _data(kind, rng)
    est = _fit(kind, activation, X, y)
    sw = rng.uniform(0.5, 2.0, X.shape[0])
    obj = make_objective(est, X, y, sample_weight=sw)
    loss, grad = _sklearn_loss_grad(est, X, y, sw)
    # J is scikit-learn's objective times sum(sample_weight)
    np.testing.assert_allclose(obj.gradient() / sw.sum(), grad, rtol=1e-10, atol=1e-13)
    if kind != "multioutput":  # sklearn reports the output-mean there (see module docs)
        np.testing.assert_allclose(obj.objective_value() / sw.sum(), loss, rtol=1e-10)
    # per-sample gradients add up to the data-term gradient
    G = obj.sample_gradients(obj.X, obj.y)
    total = obj.weights @ G + obj.penalty_diagonal() * obj.theta
    np.testing.assert_allclose(total, obj.gradient(), rtol=1e-10, atol=1e-12)


def _fd_gradient_jacobian(obj, V, h=1e-5, weights=None):
    cols = [
        (obj.gradient(obj.theta + h * v, weights=weights)
         - obj.gradient(obj.theta - h * v, weights=weights)) / (2 * h)
        for v in V.T
    ]
    return np.column_stack(cols)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression"])
def test_hvp_and_hessian_against_finite_differences(kind, activation):
    rng = np.random.RandomState(1)
    X, y = _data(kind, rng)
    est = _fit(kind, activation, X, y)
    obj = make_objective(est, X, y)
    V = rng.randn(obj.n_params, 3)
    HV = obj.hvp(V)
    fd = _fd_gradient_jacobian(obj, V)
    scale = np.abs(HV).max()
    assert np.abs(HV - fd).max() <= 1e-6 * scale
    np.testing.assert_allclose(obj.hvp(V[:, 0]), HV[:, 0], rtol=1e-12, atol=1e-12)
    H = obj.hessian()
    # dense Hessian is the finite-difference Jacobian of the gradient, column by column
    fdH = _fd_gradient_jacobian(obj, np.eye(obj.n_params))
    assert np.abs(H - fdH).max() <= 1e-6 * np.abs(H).max()
    np.testing.assert_allclose(H @ V, HV, rtol=1e-9, atol=1e-9 * scale)
    # the unbatched and batched R-operator kernels agree
    Z, A, D1, D2 = obj._state(obj.X, None)
    r, S = obj.loss_derivatives(Z, obj.y)
    cols = KH_.hvp_columns(
        obj.X, obj.theta, obj.sizes, A, D1, D2, _as_c64(r), _as_c64(S), _as_c64(V), False
    )
    np.testing.assert_allclose(cols + obj.penalty_diagonal()[:, None] * V, HV, atol=1e-10 * scale)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_jacobian_products_against_finite_differences(activation):
    rng = np.random.RandomState(2)
    X, y = _data("multiclass", rng)
    est = _fit("multiclass", activation, X, y, hidden=(4, 3, 3))  # depth 3
    obj = make_objective(est, X, y)
    Xt = obj.features(rng.randn(5, 4))
    V = rng.randn(obj.n_params, 2)
    h = 1e-6
    JV = obj.jvp(Xt, V)
    for j in range(2):
        fd = (obj.outputs(Xt, obj.theta + h * V[:, j]) - obj.outputs(Xt, obj.theta - h * V[:, j]))
        np.testing.assert_allclose(JV[:, :, j], fd / (2 * h), rtol=1e-6, atol=1e-8)
    # vjp rows are J_i^T c_i: <J_i^T c_i, v> = <c_i, J_i v>
    C = rng.randn(5, obj.n_outputs)
    G = obj.vjp(Xt, C)
    np.testing.assert_allclose(G @ V, np.einsum("ik,ikm->im", C, JV), rtol=1e-10, atol=1e-12)
    # per-sample loss gradients against finite differences of the per-sample losses
    yt = obj.encode_target(obj.estimator.classes_[[0, 1, 2, 0, 1]])
    grads = obj.sample_gradients(Xt, yt)
    for j in range(2):
        lp = obj.sample_losses(Xt, yt, obj.theta + h * V[:, j])
        lm = obj.sample_losses(Xt, yt, obj.theta - h * V[:, j])
        np.testing.assert_allclose(grads @ V[:, j], (lp - lm) / (2 * h), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gauss_newton(activation):
    rng = np.random.RandomState(3)
    X, y = _data("multiclass", rng)
    est = _fit("multiclass", activation, X, y)
    obj = make_objective(est, X, y)
    GN = obj.gauss_newton()
    # definition: sum_i w_i J_i^T S_i J_i + alpha on coefs, with J_i from jvp
    J = obj.jvp(obj.X, np.eye(obj.n_params))  # (n, K, p)
    _, S = obj.loss_derivatives(obj.outputs(obj.X), obj.y)
    ref = np.einsum("ikp,ikl,ilq->pq", J, S, J) + np.diag(obj.penalty_diagonal())
    np.testing.assert_allclose(GN, ref, rtol=1e-9, atol=1e-11)
    V = rng.randn(obj.n_params, 3)
    np.testing.assert_allclose(obj.gauss_newton_hvp(V), GN @ V, rtol=1e-9, atol=1e-10)
    assert np.linalg.eigvalsh(GN)[0] > -1e-10
    assert obj.min_eigenvalue(gauss_newton=True) > -1e-10
    # Hessian = GN + residual term: they differ away from a zero-residual fit
    assert np.abs(obj.hessian() - GN).max() > 1e-6


def test_penalty_scaling_matches_refit_without_a_point():
    """Newton's method on J without point j lands where scikit-learn's warm-started refit
    (mean loss, alpha / (2 (n - 1))) does: the penalty is scaled exactly as sklearn does."""
    rng = np.random.RandomState(4)
    X, y = _data("multiclass", rng, n=60)
    est = MLPClassifier(
        hidden_layer_sizes=(4,), activation="tanh", alpha=1.0, solver="lbfgs", max_iter=5000,
        tol=1e-12, random_state=0,
    ).fit(X, y)
    obj = make_objective(est, X, y)
    j = 7
    keep = np.arange(X.shape[0]) != j
    refit = copy.deepcopy(est).set_params(warm_start=True)  # Koh & Liang: refit from theta
    refit.fit(X[keep], y[keep])
    sk = make_objective(refit, X[keep], y[keep]).theta
    obj_j = make_objective(est, X[keep], y[keep])
    theta = obj_j.theta.copy()
    N = obj_j.null_space()
    P = np.eye(obj_j.n_params) - N @ N.T
    for _ in range(20):
        g = obj_j.gradient(theta)
        H = obj_j.hessian(theta)
        theta = theta - P @ np.linalg.lstsq(P @ H @ P, P @ g, rcond=None)[0]
    assert np.linalg.norm(obj_j.gradient(theta)) < 1e-10
    # compare modulo the exactly flat softmax shift; lbfgs stops at scipy's default ftol,
    # which leaves ~0.1% of the displacement (alpha / (2n) kept fixed would be off by >20%)
    moved = np.linalg.norm(P @ (sk - obj.theta))
    assert moved > 0.1
    assert np.linalg.norm(P @ (theta - sk)) < 0.01 * moved


def test_null_space_and_curvature_reports():
    rng = np.random.RandomState(5)
    X, y = _data("multiclass", rng)
    est = _fit("multiclass", "relu", X, y)
    est.intercepts_[0][0] = -1e3  # unit 0 of layer 1 dead on every training point
    obj = make_objective(est, X, y)
    N = obj.null_space()
    assert N.shape[1] == 2
    np.testing.assert_allclose(obj.hvp(N), 0.0, atol=1e-10)
    np.testing.assert_allclose(obj.sample_gradients(obj.X, obj.y) @ N, 0.0, atol=1e-12)
    ev = np.linalg.eigvalsh(obj.hessian())
    assert obj.min_eigenvalue() == pytest.approx(ev[0], rel=1e-10, abs=1e-12)
    rep = obj.curvature_report()
    assert rep["max_eigenvalue"] == pytest.approx(ev[-1], rel=1e-10)
    if ev[0] < -1e-8:
        with pytest.warns(RuntimeWarning, match="damping with"):
            lam = obj.suggest_damping()
        H = obj.hessian() + lam * np.eye(obj.n_params)
        Q = np.linalg.qr(np.column_stack([N, np.eye(obj.n_params)]))[0][:, 2:]
        assert np.linalg.eigvalsh(Q.T @ H @ Q)[0] > 0
    # alpha = 0 makes the dead unit's weights flat too: 4 in + 1 bias + 3 out
    est.alpha = 0.0
    obj0 = make_objective(est, X, y)
    N0 = obj0.null_space()
    assert N0.shape[1] == 1 + 4 + 1 + 3
    np.testing.assert_allclose(obj0.hvp(N0), 0.0, atol=1e-10)


def test_outputs_roundtrip_pipeline_and_sparse():
    rng = np.random.RandomState(6)
    X, y = _data("multiclass", rng)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(5,), max_iter=30,
                                                         random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X, y)
    obj = make_objective(pipe, X, y)
    Xf = obj.features(X)
    np.testing.assert_allclose(obj.proba_from_outputs(obj.outputs(Xf)), pipe.predict_proba(X),
                               rtol=1e-12)
    theta = obj.theta + 0.01 * rng.randn(obj.n_params)
    est2 = obj.with_params(theta)
    np.testing.assert_allclose(est2.predict_proba(Xf), obj.proba_from_outputs(obj.outputs(Xf,
                               theta)), rtol=1e-12)
    # sparse training input gives the same objective as dense
    mlp = pipe[-1]
    obj_sp = make_objective(mlp, sp.csr_matrix(Xf), y)
    np.testing.assert_allclose(obj_sp.gradient(), make_objective(mlp, Xf, y).gradient())


def test_bad_input_errors():
    rng = np.random.RandomState(7)
    X, y = _data("multiclass", rng)
    est = _fit("multiclass", "relu", X, y)
    obj = make_objective(est, X, y)
    with pytest.raises(ValueError, match="features"):
        obj.features(X[:, :3])
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        obj.features(Xn)
    with pytest.raises(ValueError, match="not seen during fit"):
        obj.encode_target(np.array([0, 1, 7]))
    with pytest.raises(ValueError, match="samples"):
        make_objective(est, X, y[:-1])
    with pytest.raises(ValueError, match="n_params"):
        obj.hvp(np.ones(obj.n_params + 1))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression"])
def test_per_sample_hessians(kind, activation):
    """``sample_hessian`` is what removing the point takes out of the Hessian (finite
    differences of the objective gradient with the point's weight set to zero), and
    ``sample_hvps`` multiplies each point's weighted Hessian by its own column."""
    rng = np.random.RandomState(3)
    X, y = _data(kind, rng)
    est = _fit(kind, activation, X, y)
    obj = make_objective(est, X, y, sample_weight=rng.uniform(0.5, 2.0, X.shape[0]))
    H = obj.hessian()
    j = 7
    w = obj.weights
    fd_without = _fd_gradient_jacobian(obj, np.eye(obj.n_params), weights=obj.removal_weights(j))
    Hj = obj.sample_hessian(j)
    np.testing.assert_allclose(Hj, Hj.T, atol=1e-12)
    assert np.abs(H - w[j] * Hj - fd_without).max() <= 1e-6 * np.abs(H).max()
    V = rng.randn(obj.n_params, 4)
    rows = np.array([0, j, 11, 20])
    ref = np.column_stack([w[i] * obj.sample_hessian(i) @ V[:, c] for c, i in enumerate(rows)])
    np.testing.assert_allclose(obj.sample_hvps(V, rows=rows), ref, atol=1e-12 * np.abs(ref).max())
    # over all points, the per-point products add up to the data term of the Hessian
    ones = np.tile(V[:, :1], (1, obj.n_train))
    data_term = obj.hvp(V[:, 0]) - obj.penalty_diagonal() * V[:, 0]
    np.testing.assert_allclose(obj.sample_hvps(ones).sum(axis=1), data_term,
                               atol=1e-10 * np.abs(data_term).max())


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_weights_argument_is_the_objective_without_the_point(kind):
    """``weights=`` evaluates the objective without a point (value, gradient, Hessian, HVPs)
    from the objective's own arrays, and leaves the objective and its caches as they were."""
    rng = np.random.RandomState(4)
    X, y = _data(kind, rng)
    est = _fit(kind, "tanh", X, y)
    obj = make_objective(est, X, y, sample_weight=rng.uniform(0.5, 2.0, X.shape[0]))
    H, g, f = obj.hessian(), obj.objective_gradient(), obj.objective_value()
    weights = obj.weights.copy()
    j = 5
    w = obj.removal_weights(j)
    theta = obj.theta + 0.01 * rng.randn(obj.n_params)
    G = obj.sample_gradients(obj.X, obj.y, theta)
    losses = obj.sample_losses(obj.X, obj.y, theta)
    np.testing.assert_allclose(obj.objective_value(theta, weights=w),
                               w @ losses + obj.penalty_value(theta), rtol=1e-12)
    np.testing.assert_allclose(obj.objective_gradient(theta, weights=w),
                               w @ G + obj.penalty_gradient(theta), rtol=1e-10,
                               atol=1e-12 * np.abs(G).max())
    Hw = obj.hessian(weights=w)
    np.testing.assert_allclose(Hw, H - weights[j] * obj.sample_hessian(j),
                               atol=1e-10 * np.abs(H).max())
    V = rng.randn(obj.n_params, 3)
    np.testing.assert_allclose(obj.hvp(V, weights=w), Hw @ V, atol=1e-10 * np.abs(H).max())
    # the objective's own numbers did not move (no cached Hessian of other weights)
    np.testing.assert_array_equal(obj.weights, weights)
    np.testing.assert_array_equal(obj.hessian(), H)
    np.testing.assert_array_equal(obj.objective_gradient(), g)
    assert obj.objective_value() == f
