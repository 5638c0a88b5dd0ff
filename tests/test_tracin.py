"""TracIn against brute force, closed forms and the optimisers' own update rules."""

import copy

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfluence.tracin import TracIn, sgd_learning_rate


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    rng = np.random.RandomState(0)
    idx = rng.permutation(len(y))
    return X[idx[:60]], y[idx[:60]], X[idx[60:66]], y[idx[60:66]]


def _fd_sample_gradients(est, X, y, h=1e-6):
    """Per-sample log-loss gradients of an MLPClassifier by central differences of
    scikit-learn's own ``predict_proba`` -- independent of skinfluence's objective."""
    coefs = [c.copy() for c in est.coefs_]
    ints = [b.copy() for b in est.intercepts_]
    params = coefs + ints
    cols = {c: i for i, c in enumerate(est.classes_)}
    rows = np.arange(len(y))
    yi = np.array([cols[v] for v in y])
    grads = []
    for arr in params:
        for pos in np.ndindex(arr.shape):
            vals = []
            for sign in (1, -1):
                arr[pos] += sign * h
                e = copy.copy(est)
                e.coefs_, e.intercepts_ = coefs, ints
                vals.append(-np.log(e.predict_proba(X)[rows, yi]))
                arr[pos] -= sign * h
            grads.append((vals[0] - vals[1]) / (2 * h))
    return np.column_stack(grads)


def test_mlp_tracin_matches_brute_force(iris):
    X, y, Xt, yt = iris
    mlp = MLPClassifier(hidden_layer_sizes=(4,), activation="tanh", solver="sgd",
                        learning_rate_init=0.1, batch_size=20, random_state=0)
    tr = TracIn(mlp, n_epochs=4, checkpoints=[1, 3, 4], random_state=0).fit(X, y)
    np.testing.assert_array_equal(tr.checkpoint_epochs_, [1, 3, 4])
    np.testing.assert_allclose(tr.learning_rates_, 0.1)
    ref = np.zeros((len(yt), len(y)))
    ref_self = np.zeros(len(y))
    for est, eta in zip(tr.checkpoints_, tr.learning_rates_):
        Gq = _fd_sample_gradients(est, Xt, yt)
        Gt = _fd_sample_gradients(est, X, y)
        ref += eta * Gq @ Gt.T
        ref_self += eta * (Gt * Gt).sum(1)
    scores = tr.transform(Xt, yt)
    np.testing.assert_allclose(scores, ref, rtol=1e-5, atol=1e-7 * np.abs(ref).max())
    np.testing.assert_allclose(tr.self_influence_, ref_self, rtol=1e-5)
    # the checkpoints really are different parameters (training moved)
    assert not np.allclose(tr.checkpoints_[0].coefs_[0], tr.checkpoints_[-1].coefs_[0])
    # chunked threads give the same numbers
    tr.set_params(n_jobs=2)
    np.testing.assert_allclose(tr.transform(Xt, yt), scores, rtol=1e-12)


def test_sgd_regressor_closed_form(iris):
    """Squared loss on a linear model: grad = (z - y) [x, 1], so TracIn is a closed form."""
    X, _, Xt, _ = iris
    y = X[:, 0] - 2 * X[:, 1] + 0.1
    yt = Xt[:, 0] - 2 * Xt[:, 1] + 0.1
    X, Xt = X[:, 1:], Xt[:, 1:]
    sgd = SGDRegressor(learning_rate="constant", eta0=0.01, alpha=0.0, penalty=None,
                       random_state=0)
    tr = TracIn(sgd, n_epochs=3, random_state=0).fit(X, y)
    np.testing.assert_allclose(tr.learning_rates_, 0.01)
    ref = np.zeros((len(yt), len(y)))
    ref_out = np.zeros((len(yt), len(y)))
    for est, eta in zip(tr.checkpoints_, tr.learning_rates_):
        rq = est.predict(Xt) - yt
        rt = est.predict(X) - y
        kern = Xt @ X.T + 1.0
        ref += eta * rq[:, None] * rt[None, :] * kern
        ref_out += eta * rt[None, :] * kern  # gradient of the prediction is [x, 1]
    np.testing.assert_allclose(tr.transform(Xt, yt), ref, rtol=1e-10)
    np.testing.assert_allclose(tr.transform(Xt), ref_out, rtol=1e-10)
    np.testing.assert_allclose(tr.predict(Xt), tr.estimator_.predict(Xt))


@pytest.mark.parametrize("schedule", ["optimal", "invscaling", "constant"])
def test_sgd_learning_rate_is_the_one_used(schedule, iris):
    """One more partial_fit step on one sample moves the weights by exactly
    eta * (weight decay + loss gradient), with eta from ``sgd_learning_rate``."""
    X, y, _, _ = iris
    yb = (y == 1).astype(int)
    est = SGDClassifier(loss="log_loss", learning_rate=schedule, eta0=0.05, alpha=1e-3,
                        random_state=0, shuffle=False)
    est.partial_fit(X, yb, classes=[0, 1])
    w0, b0 = est.coef_.ravel().copy(), est.intercept_.copy()
    eta = sgd_learning_rate(est, est.t_)
    x = X[:1]
    p = float(x[0] @ w0 + b0[0])
    dloss = 1.0 / (1.0 + np.exp(-p)) - yb[0]
    est.partial_fit(x, yb[:1])
    w_ref = w0 * (1 - eta * est.alpha) - eta * dloss * x.ravel()
    np.testing.assert_allclose(est.coef_.ravel(), w_ref, rtol=1e-10)
    np.testing.assert_allclose(est.intercept_, b0 - eta * dloss, rtol=1e-10)
    # and TracIn records the rate of the last update of each epoch
    tr = TracIn(clone(est), n_epochs=2, random_state=0).fit(X, yb)
    n = X.shape[0]
    expected = [sgd_learning_rate(tr.checkpoints_[0], n), sgd_learning_rate(tr.checkpoints_[0],
                                                                            2 * n)]
    np.testing.assert_allclose(tr.learning_rates_, expected)
    assert tr.checkpoints_[1].t_ == 2 * n + 1


def test_mlp_learning_rates_sgd_invscaling_and_adam(iris):
    X, y, Xt, yt = iris
    n = X.shape[0]
    mlp = MLPClassifier(hidden_layer_sizes=(3,), solver="sgd", learning_rate="invscaling",
                        learning_rate_init=0.2, power_t=0.5, random_state=0)
    tr = TracIn(mlp, n_epochs=3, random_state=0).fit(X, y)
    # rate of epoch e is set after epoch e - 1 from the samples seen: init / (t + 1)^power_t
    expected = [0.2, 0.2 / (n + 1) ** 0.5, 0.2 / (2 * n + 1) ** 0.5]
    np.testing.assert_allclose(tr.learning_rates_, expected)
    adam = MLPRegressor(hidden_layer_sizes=(3,), solver="adam", learning_rate_init=0.01,
                        batch_size=25, random_state=0)
    tr = TracIn(adam, n_epochs=2, random_state=0).fit(X, X[:, 0] * X[:, 1])
    steps = np.array([3, 6])  # ceil(60 / 25) updates per epoch
    ref = 0.01 * np.sqrt(1 - 0.999**steps) / (1 - 0.9**steps)
    np.testing.assert_allclose(tr.learning_rates_, ref)
    assert tr.transform(Xt, Xt[:, 0] * Xt[:, 1]).shape == (len(Xt), n)


@pytest.mark.parametrize("k", [2.5, 0, True])
def test_explain_rejects_k_that_is_not_a_positive_integer(iris, k):
    X, y, Xt, yt = iris
    tr = TracIn(SGDClassifier(loss="log_loss", random_state=0), n_epochs=2,
                random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"k must be an integer >= 1 .*got"):
        tr.explain(Xt, yt, k=k)
    assert tr.explain(Xt, yt, k=100).helpful_indices.shape == (len(yt), len(y))


def test_explain_self_influence_and_weights(iris):
    X, y, Xt, yt = iris
    sgd = SGDClassifier(loss="log_loss", random_state=0)
    tr = TracIn(sgd, n_epochs=3, checkpoints=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(tr.checkpoint_epochs_, [2, 3])
    S = tr.transform(Xt, yt)
    ex = tr.explain(Xt, yt, k=4)
    np.testing.assert_allclose(ex.helpful_values, -np.sort(-S, axis=1)[:, :4])
    np.testing.assert_allclose(ex.harmful_values, np.sort(S, axis=1)[:, :4])
    np.testing.assert_allclose(np.take_along_axis(S, ex.helpful_indices, 1), ex.helpful_values)
    # self influence is the diagonal of the train x train scores
    np.testing.assert_allclose(tr.self_influence_, np.diag(tr.transform(X, y)), rtol=1e-10)
    # integer sample weights scale each training point's column by its relative weight
    sw = np.where(np.arange(len(y)) % 2 == 0, 2.0, 1.0)
    mlp = MLPClassifier(hidden_layer_sizes=(3,), solver="sgd", random_state=0)
    trw = TracIn(mlp, n_epochs=2, random_state=0).fit(X, y, sample_weight=sw)
    tr1 = copy.copy(trw)
    tr1._train_scale = np.ones(len(y))
    np.testing.assert_allclose(trw.transform(Xt, yt), tr1.transform(Xt, yt) * sw / sw.mean())


def test_errors(iris):
    X, y, _, _ = iris
    with pytest.raises(ValueError, match="lbfgs"):
        TracIn(MLPClassifier(solver="lbfgs")).fit(X, y)
    with pytest.raises(TypeError, match="TracIn supports"):
        from sklearn.linear_model import Perceptron

        TracIn(Perceptron()).fit(X, y)
    with pytest.raises(ValueError, match="checkpoints"):
        TracIn(SGDClassifier(), n_epochs=2, checkpoints=[3]).fit(X, y)
    tr = TracIn(SGDClassifier(loss="log_loss", random_state=0), n_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="not seen during fit"):
        tr.transform(X[:2], [0, 9])
    with pytest.raises(ValueError, match="features"):
        tr.transform(X[:2, :3], y[:2])
    clone(tr)  # clonable


_SW = "stochastic training: weighting a point is not the same as repeating it"


@parametrize_with_checks(
    [
        TracIn(SGDClassifier(loss="log_loss", random_state=0), n_epochs=2, random_state=0),
    ],
    expected_failed_checks=lambda est: {
        "check_sample_weight_equivalence_on_dense_data": _SW,
        "check_sample_weight_equivalence_on_sparse_data": _SW,
    },
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
