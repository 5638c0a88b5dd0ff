"""TracIn against brute force, closed forms and the optimisers' own update rules."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
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


# ------------------------------------------------------------ sparse input and SGD's intercept
def _sparse_problem(kind, n=40, d=12, seed=0):
    """Data with ~70% zeros and an offset, so the intercept carries a real share of each
    gradient; ``kind`` is "binary", "multiclass" or "regression"."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * (rng.rand(n, d) < 0.3)
    z = X @ rng.randn(d) + 0.5 + 0.5 * rng.randn(n)
    if kind == "binary":
        return X, (z > 0).astype(int)
    if kind == "multiclass":
        return X, np.digitize(z, np.quantile(z, [1 / 3, 2 / 3]))
    return X, z


def _sgd(kind, **params):
    if kind == "regression":
        return SGDRegressor(loss="squared_error", penalty=None, random_state=0, **params)
    return SGDClassifier(loss="log_loss", penalty=None, random_state=0, **params)


def _sgd_targets(est, y):
    """``t`` of each output: +-1 per one-vs-rest problem (classifiers), y (regressor)."""
    if not hasattr(est, "classes_"):
        return np.asarray(y, dtype=np.float64)[:, None]
    cls = est.classes_[1:] if len(est.classes_) == 2 else est.classes_
    return np.where(np.asarray(y)[:, None] == cls[None, :], 1.0, -1.0)


def _sgd_test_loss(est, X, y):
    """Per-sample loss by hand from ``decision_function`` / ``predict``: summed one-vs-rest
    log losses, or ``1/2 (y - z)^2``."""
    t = _sgd_targets(est, y)
    if not hasattr(est, "classes_"):
        return 0.5 * (est.predict(X) - t[:, 0]) ** 2
    Z = est.decision_function(X).reshape(len(t), -1)
    return np.logaddexp(0.0, -t * Z).sum(1)


def _sgd_hand_gradients(est, X, y):
    """Per-sample gradients ``[dL/dcoef (K*d), dL/dintercept (K)]`` by hand: ``r_k [x, 1]``."""
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    t = _sgd_targets(est, y)
    Z = X @ np.atleast_2d(est.coef_).T + est.intercept_
    r = Z - t if not hasattr(est, "classes_") else -t / (1.0 + np.exp(t * Z))
    coef_part = (r[:, :, None] * X[:, None, :]).reshape(len(X), -1)
    return np.hstack([coef_part, r])


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("container", [np.asarray, sp.csr_matrix, sp.csc_array])
def test_sgd_tracin_matches_replayed_training(kind, container):
    """TracIn on dense and sparse input against an independent replay of the training: the
    same epochs of ``partial_fit``, gradients by hand, the invscaling step of each checkpoint
    and, on sparse data, scikit-learn's intercept step scaled by its intercept decay."""
    X, y = _sparse_problem(kind)
    Xt, yt = X[:6] + 0.3, y[:6]
    n = len(y)
    params = dict(learning_rate="invscaling", eta0=0.05, power_t=0.5)
    tr = TracIn(_sgd(kind, **params), n_epochs=3, checkpoints=[1, 3], random_state=0)
    tr.fit(container(X), y)
    sparse = container is not np.asarray
    assert tr.intercept_decay_ == (0.01 if sparse else 1.0)

    est, rng = _sgd(kind, **params), np.random.RandomState(0)
    extra = {"classes": np.unique(y)} if kind != "regression" else {}
    ref, ref_self = 0.0, 0.0
    for epoch in range(1, 4):
        order = rng.permutation(n)
        est.partial_fit(container(X[order]), y[order], **extra)
        if epoch in (1, 3):
            eta = 0.05 / (epoch * n) ** 0.5  # step of the epoch's last update, t = epoch * n
            Gq, Gt = _sgd_hand_gradients(est, Xt, yt), _sgd_hand_gradients(est, X, y)
            K = Gt.shape[1] // (X.shape[1] + 1)
            step = np.ones(Gt.shape[1])
            step[-K:] = 0.01 if sparse else 1.0
            ref = ref + eta * (Gq * step) @ Gt.T
            ref_self = ref_self + eta * ((Gt * step) * Gt).sum(1)
    np.testing.assert_allclose(tr.learning_rates_, 0.05 / (np.array([1, 3]) * n) ** 0.5)
    np.testing.assert_allclose(tr.transform(container(Xt), yt), ref, rtol=1e-9,
                               atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(tr.self_influence_, ref_self, rtol=1e-9)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("container", [np.asarray, sp.csr_matrix])
def test_sgd_one_step_identity(kind, container):
    """TracIn's defining identity: one more SGD step of size ``h`` on training point ``j``
    from a checkpoint changes the test loss by ``-h * TracIn_k(j, z) / eta_k`` to first
    order.  Measured with scikit-learn's own ``partial_fit`` (``h = 1e-6``, no penalty, so
    the step is ``h * D * grad``); the second-order remainder is O(h), ~1e-6 relative."""
    X, y = _sparse_problem(kind)
    Xt, yt = X[:6] + 0.3, y[:6]
    tr = TracIn(_sgd(kind, learning_rate="constant", eta0=0.05), n_epochs=3, checkpoints=[3],
                random_state=0).fit(container(X), y)
    per_unit_step = tr.transform(container(Xt), yt) / tr.learning_rates_[0]
    h = 1e-6
    ckpt = tr.checkpoints_[0]
    loss0 = _sgd_test_loss(ckpt, container(Xt), yt)
    change = np.empty_like(per_unit_step)
    for j in range(len(y)):
        est = copy.deepcopy(ckpt).set_params(eta0=h)
        est.partial_fit(container(X[j : j + 1]), y[j : j + 1])
        change[:, j] = (_sgd_test_loss(est, container(Xt), yt) - loss0) / h
    np.testing.assert_allclose(-change, per_unit_step, rtol=0,
                               atol=1e-4 * np.abs(per_unit_step).max())


# ----------------------------------------------------------------- gradient boosting
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_boosting_rounds_are_the_checkpoints_boostin(kind):
    """TracIn over a boosted model's iterations is BoostIn (Brophy et al. 2023), whose
    trajectory sum tests/influence/test_boosting_influence.py checks by hand."""
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.frozen import FrozenEstimator

    from skinfluence import InfluenceFunctions

    if kind == "regression":
        X, y = load_diabetes(return_X_y=True)
        model = HistGradientBoostingRegressor(max_iter=15, early_stopping=False)
    else:
        X, y = load_iris(return_X_y=True)
        y = (y == 2).astype(int) if kind == "binary" else y
        model = HistGradientBoostingClassifier(max_iter=15, early_stopping=False)
    X, y, Xq, yq = X[:120], y[:120], X[120:140], y[120:140]
    tr = TracIn(model).fit(X, y)
    ref = InfluenceFunctions(model, approximation="boostin").fit(X, y)
    assert tr.checkpoints_ is None and tr.influence_.approximation_ == "boostin"
    np.testing.assert_array_equal(tr.checkpoint_epochs_, np.arange(1, 16))
    np.testing.assert_array_equal(tr.learning_rates_, np.full(15, 0.1))
    for yy in (yq, None):
        np.testing.assert_array_equal(tr.transform(Xq, yy), ref.transform(Xq, yy))
        got, expected = tr.explain(Xq, yy, k=4), ref.explain(Xq, yy, k=4)
        assert sorted(got) == sorted(expected)
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key])
    np.testing.assert_array_equal(tr.self_influence_, ref.self_influence_)
    np.testing.assert_array_equal(tr.predict(Xq), ref.predict(Xq))
    # a model fitted elsewhere: not refit
    fitted = clone(model).fit(X, y)
    frozen = TracIn(FrozenEstimator(fitted)).fit(X, y)
    assert frozen.estimator_.estimator is fitted
    np.testing.assert_array_equal(frozen.transform(Xq, yq), ref.transform(Xq, yq))


def test_boosted_model_refuses_the_checkpoint_options(iris):
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y, _, _ = iris
    for name, value in (("checkpoints", 3), ("batch_size", 16)):
        with pytest.raises(ValueError, match=f"{name}={value} does not apply to a gradient-"):
            TracIn(HistGradientBoostingClassifier(max_iter=3), **{name: value}).fit(X, y)
