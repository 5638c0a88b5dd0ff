"""The LogisticRegression objective is scikit-learn's: optimality, derivatives, layout."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skinfluence.objectives import make_objective


def _data(n_classes, seed=0):
    X, y = make_classification(n_samples=120, n_features=4, n_informative=3, n_redundant=0,
                               n_classes=n_classes, n_clusters_per_class=1, flip_y=0.1,
                               random_state=seed)
    return X, y


def _grad_J(obj, theta=None):
    theta = obj.theta if theta is None else theta
    return obj.weights @ obj.sample_gradients(obj.X, obj.y, theta) + obj.penalty_diagonal() * theta


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg", "newton-cholesky", "sag", "saga",
                                    "liblinear"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_gradient_vanishes_at_sklearn_solution(solver, n_classes):
    if solver == "liblinear" and n_classes > 2:
        pytest.skip("liblinear is binary only in scikit-learn >= 1.8")
    X, y = _data(n_classes)
    sw = np.linspace(0.5, 1.5, len(y))
    cw = "balanced" if n_classes == 2 else {0: 2.0, 1: 1.0, 2: 0.5}
    model = LogisticRegression(C=0.7, solver=solver, class_weight=cw, tol=1e-12,
                               max_iter=100000).fit(X, y, sample_weight=sw)
    obj = make_objective(model, X, y, sw)
    g = _grad_J(obj)
    # relative to the size of the data term's gradient contributions
    scale = np.abs(obj.weights[:, None] * obj.sample_gradients(obj.X, obj.y)).sum(axis=0).max()
    assert np.abs(g).max() <= 1e-6 * scale


def test_finite_differences_and_hvp():
    X, y = _data(3, seed=1)
    obj = make_objective(LogisticRegression().fit(X, y), X, y)
    th = obj.theta
    eps = 1e-6
    E = np.eye(obj.n_params)
    fd_g = np.array([(obj.objective_value(th + eps * e) - obj.objective_value(th - eps * e))
                     / (2 * eps) for e in E])
    np.testing.assert_allclose(_grad_J(obj), fd_g, atol=1e-6)
    fd_H = np.array([(_grad_J(obj, th + eps * e) - _grad_J(obj, th - eps * e)) / (2 * eps)
                     for e in E])
    H = obj.hessian()
    np.testing.assert_allclose(H, fd_H, atol=1e-5 * np.abs(H).max())
    V = np.random.default_rng(0).normal(size=(obj.n_params, 3))
    np.testing.assert_allclose(obj.hvp(V), H @ V, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(obj.hessian_diagonal(), np.diag(H), rtol=1e-12)
    # per-sample gradients by finite differences of per-sample losses
    i = 5
    fd_gi = np.array([(obj.sample_losses(obj.X[i:i + 1], obj.y[i:i + 1], th + eps * e)[0]
                       - obj.sample_losses(obj.X[i:i + 1], obj.y[i:i + 1], th - eps * e)[0])
                      / (2 * eps) for e in E])
    np.testing.assert_allclose(obj.sample_gradients(obj.X, obj.y)[i], fd_gi, atol=1e-7)


def test_sparse_equals_dense_and_null_space():
    X, y = _data(3, seed=2)
    model = LogisticRegression().fit(X, y)
    dense = make_objective(model, X, y)
    sparse = make_objective(model, sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.hessian(), dense.hessian(), rtol=1e-12, atol=1e-12)
    V = np.random.default_rng(0).normal(size=(dense.n_params, 2))
    np.testing.assert_allclose(sparse.hvp(V), dense.hvp(V), rtol=1e-12, atol=1e-12)
    # unpenalised multinomial intercepts: the shift of all intercepts is flat
    N = dense.null_space()
    assert N.shape == (dense.n_params, 1)
    np.testing.assert_allclose(dense.hessian() @ N, 0.0, atol=1e-10)
    assert make_objective(LogisticRegression().fit(X, y == 1), X, y == 1).null_space() is None


def test_with_params_round_trip():
    X, y = _data(3, seed=3)
    model = LogisticRegression().fit(X, y)
    obj = make_objective(model, X, y)
    clone_ = obj.with_params(obj.theta)
    np.testing.assert_allclose(clone_.decision_function(X), model.decision_function(X))
    np.testing.assert_allclose(obj.outputs(obj.X), model.decision_function(X))
    np.testing.assert_allclose(obj.proba_from_outputs(obj.outputs(obj.X)), model.predict_proba(X))


def _logloss_change_per_entry(z, y, D):
    """The binary log-loss change entry by entry: the Taylor series in ``d`` (to fifth
    order) where ``|d| <= 1e-3``, else the difference of softplus values."""
    def softplus(t):
        return np.where(t > 0, t + np.log1p(np.exp(-np.abs(t))), np.log1p(np.exp(np.minimum(t, 0))))

    out = np.empty_like(D)
    for i in range(D.shape[0]):
        base = float(softplus(np.array(z[i])))
        s = np.exp(z[i] - base)
        v = s * (1.0 - s)
        c = [s - y[i], v / 2.0, v * (1.0 - 2.0 * s) / 6.0, v * (1.0 - 6.0 * v) / 24.0,
             v * (1.0 - 2.0 * s) * (1.0 - 12.0 * v) / 120.0]
        for j, d in enumerate(D[i]):
            if abs(d) <= 1e-3:
                out[i, j] = d * (c[0] + d * (c[1] + d * (c[2] + d * (c[3] + d * c[4]))))
            else:
                out[i, j] = float(softplus(np.array(z[i] + d))) - base - y[i] * d
    return out


def _single_pass(Z0, y, D, out):
    from numba import njit

    from skinfluence.objectives._kernels import _softplus

    @njit
    def run(Z0, y, D, out):
        for i in range(D.shape[0]):
            z = Z0[i]
            base = _softplus(z)
            s = np.exp(z - base)
            v = s * (1.0 - s)
            c1, c2 = s - y[i], v / 2.0
            c3, c4 = v * (1.0 - 2.0 * s) / 6.0, v * (1.0 - 6.0 * v) / 24.0
            c5 = v * (1.0 - 2.0 * s) * (1.0 - 12.0 * v) / 120.0
            for j in range(D.shape[1]):
                d = D[i, j]
                if abs(d) <= 1e-3:
                    out[i, j] = d * (c1 + d * (c2 + d * (c3 + d * (c4 + d * c5))))
                else:
                    out[i, j] = _softplus(z + d) - base - y[i] * d
        return out

    return run(Z0, y, D, out)


def test_binary_logloss_change_kernel_equals_the_per_entry_formula():
    # the kernel sweeps the series over a row first and redoes the entries beyond its
    # range: the numbers must be those of choosing per entry in one pass, bit for bit
    # (numpy's own exp/log1p differ from numba's in the last bit)
    from skinfluence.objectives._kernels import binary_logloss_change

    rng = np.random.default_rng(0)
    z = np.r_[rng.normal(scale=3, size=6), 40.0, -40.0]
    y = (rng.random(8) < 0.5).astype(float)
    D = rng.normal(size=(8, 300)) * 10.0 ** rng.integers(-6, 1, size=(8, 300))
    D[:, :4] = [1e-3, -1e-3, np.nextafter(1e-3, 1), 0.0]  # both sides of the switch
    D[2, 10:13] = [np.nan, np.inf, -np.inf]
    D[3] = 1e-5  # a row with no entry beyond the series
    with np.errstate(invalid="ignore"):
        straightforward = _logloss_change_per_entry(z, y, D)
    expected = _single_pass(z, y, D, np.empty_like(D))  # the kernel before the two passes
    np.testing.assert_allclose(expected, straightforward, rtol=1e-12, atol=1e-15)
    z.setflags(write=False)
    y.setflags(write=False)
    D.setflags(write=False)
    got = binary_logloss_change(z, y, D, np.empty_like(D))
    np.testing.assert_array_equal(got, expected)
    inplace = D.copy()  # out may be D itself
    assert binary_logloss_change(z, y, inplace, inplace) is inplace
    np.testing.assert_array_equal(inplace, expected)
    strided = np.empty((8, 600))[:, ::2]
    binary_logloss_change(z, y, D, strided)
    np.testing.assert_array_equal(strided, expected)
