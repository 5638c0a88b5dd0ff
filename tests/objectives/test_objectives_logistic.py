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
