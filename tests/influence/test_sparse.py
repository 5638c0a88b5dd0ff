"""Lasso / ElasticNet (and their CV forms) against actual refits without each point.

The ground truth is scikit-learn's own refit on the data with row ``j`` deleted, at
``tol=1e-14`` (coordinate descent then converges to rounding on these data).  On a
fixed active set the removal is exact (Sherman-Morrison on the active Gram matrix),
and the removals that change the active set are refit, so every parameter change is
exact to rounding: the tests ask for 1e-8 relative to the largest change.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import (
    ElasticNet,
    ElasticNetCV,
    Lasso,
    LassoCV,
    LogisticRegression,
    MultiTaskElasticNet,
    MultiTaskLasso,
    lars_path,
)

from skinfluence import InfluenceFunctions
from skinfluence.objectives import NotStationaryWarning

N = 150
TIGHT = dict(tol=1e-14, max_iter=100_000)


pytestmark = pytest.mark.usefixtures("single_blas_thread")


@pytest.fixture(scope="module")
def data(diabetes_shuffled):
    X, y = diabetes_shuffled
    sw = np.random.default_rng(1).uniform(0.5, 2.0, N)
    return X[:N], y[:N], X[N : N + 30], y[N : N + 30], sw


def _theta(model):
    return np.r_[np.ravel(model.coef_), np.ravel(model.intercept_)]


def _refits(model, X, y, sw):
    """Parameters of ``model`` refit with each row deleted: (p, n)."""
    n = X.shape[0]
    out = []
    for j in range(n):
        keep = np.arange(n) != j
        m = clone(model).fit(X[keep], y[keep], sample_weight=None if sw is None else sw[keep])
        out.append(_theta(m))
    return np.array(out).T


def _fixed(model):
    """The fixed-penalty model a CV model's refits use."""
    if isinstance(model, (LassoCV, ElasticNetCV)):
        return ElasticNet(alpha=model.alpha_, l1_ratio=getattr(model, "l1_ratio_", 1.0),
                          **TIGHT)
    return model


CASES = [
    ("lasso", lambda: Lasso(alpha=0.02, **TIGHT), False),
    ("lasso-weighted", lambda: Lasso(alpha=0.02, **TIGHT), True),
    ("enet", lambda: ElasticNet(alpha=0.05, l1_ratio=0.5, **TIGHT), False),
    ("enet-weighted", lambda: ElasticNet(alpha=0.05, l1_ratio=0.5, **TIGHT), True),
    ("lasso-cv", lambda: LassoCV(cv=3, alphas=20, **TIGHT), False),
    ("enet-cv", lambda: ElasticNetCV(cv=3, alphas=10, l1_ratio=[0.3, 0.8], **TIGHT), False),
]


@pytest.mark.parametrize("name, make, weighted", CASES, ids=[c[0] for c in CASES])
def test_exact_against_refits(data, name, make, weighted):
    X, y, Xt, yt, sw = data
    sw = sw if weighted else None
    infl = InfluenceFunctions(make()).fit(X, y, sample_weight=sw)
    fitted = infl.estimator_
    assert np.any(np.ravel(fitted.coef_) == 0), "the case should have an inactive coefficient"
    theta = _theta(fitted)
    truth = _refits(_fixed(fitted), X, y, sw) - theta[:, None]
    D = infl.parameter_changes()
    scale = np.abs(truth).max()
    np.testing.assert_allclose(D, truth, rtol=0, atol=1e-8 * scale)
    # query losses and leave-one-out outputs follow exactly
    loss = lambda th: (yt - Xt @ th[:-1] - th[-1]) ** 2  # noqa: E731
    T = np.column_stack([loss(theta + truth[:, j]) - loss(theta) for j in range(N)])
    np.testing.assert_allclose(infl.transform(Xt, yt), T, rtol=0, atol=1e-8 * np.abs(T).max())
    loo = np.array([X[j] @ (theta + truth[:, j])[:-1] + (theta + truth[:, j])[-1]
                    for j in range(N)])
    np.testing.assert_allclose(infl.loo_decision_function()[:, 0], loo, rtol=0, atol=1e-8)


def _near_knot(X, y, sw, k=4, above=1.002):
    """An alpha just above the knot of the Lasso path where the ``k``-th coefficient enters:
    that coefficient is zero but close to its bound, so removals can let it in."""
    w = np.ones(len(y)) if sw is None else sw
    S = w.sum()
    Xc = (X - w @ X / S) * np.sqrt(w)[:, None]
    yc = (y - w @ y / S) * np.sqrt(w)
    alphas, _, _ = lars_path(Xc, yc, method="lasso")
    return alphas[k] * len(y) / S * above


@pytest.mark.parametrize("weighted", [False, True])
def test_active_set_changes_detected_and_refit(data, weighted):
    """An alpha where one coefficient sits near its bound: many removals change the active
    set; exactly those (by the refits' supports) are flagged and refit."""
    X, y, _, _, sw = data
    sw = sw if weighted else None
    model = Lasso(alpha=_near_knot(X, y, sw), **TIGHT)
    infl = InfluenceFunctions(model).fit(X, y, sample_weight=sw)
    refit = InfluenceFunctions(model, refine=0).fit(X, y, sample_weight=sw)
    theta = _theta(infl.estimator_)
    truth = _refits(model, X, y, sw)
    support0 = theta[:-1] != 0
    changed = np.flatnonzero(((truth[:-1] != 0) != support0[:, None]).any(axis=0))
    assert changed.size > 0
    np.testing.assert_array_equal(infl.active_set_changes_, changed)
    assert infl.n_active_set_changes_ == changed.size
    np.testing.assert_array_equal(infl.refined_indices_, changed)
    # refine=0: the same detection, no refits; the fixed-active-set step is then wrong
    # exactly there and exact everywhere else
    np.testing.assert_array_equal(refit.active_set_changes_, changed)
    assert refit.refined_indices_.size == 0
    D0 = refit.parameter_changes()
    dtruth = truth - theta[:, None]
    scale = np.abs(dtruth).max()
    others = np.setdiff1d(np.arange(N), changed)
    np.testing.assert_allclose(D0[:, others], dtruth[:, others], rtol=0, atol=1e-8 * scale)
    assert np.abs(D0[:, changed] - dtruth[:, changed]).max() > 1e-6 * scale


def test_zero_weight_is_deletion(data):
    """scikit-learn's refit with sample_weight[j] = 0 is the refit without row j (both
    divide the loss by the remaining total weight): the ground truth is unambiguous."""
    X, y, _, _, sw = data
    model = ElasticNet(alpha=0.05, l1_ratio=0.5, **TIGHT)
    for weights in (np.ones(N), sw):
        w0 = weights.copy()
        w0[7] = 0.0
        a = clone(model).fit(X, y, sample_weight=w0)
        keep = np.arange(N) != 7
        b = clone(model).fit(X[keep], y[keep], sample_weight=weights[keep])
        np.testing.assert_allclose(_theta(a), _theta(b), rtol=0, atol=1e-10)


def test_no_l1_penalty_left_inactive(data):
    """With every coefficient active there is nothing to change: plain exact removal."""
    X, y, _, _, _ = data
    model = ElasticNet(alpha=1e-4, l1_ratio=0.5, **TIGHT)
    infl = InfluenceFunctions(model).fit(X, y)
    assert np.all(infl.estimator_.coef_ != 0)
    truth = _refits(model, X, y, None) - _theta(infl.estimator_)[:, None]
    np.testing.assert_allclose(infl.parameter_changes(), truth, rtol=0,
                               atol=1e-8 * np.abs(truth).max())


def test_frozen_stationarity(data):
    """A frozen fit on these data is stationary (the inactive coefficients' subgradient
    balances them); one fitted on other data is flagged."""
    import warnings

    X, y, _, _, _ = data
    model = Lasso(alpha=0.02, **TIGHT).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotStationaryWarning)
        InfluenceFunctions(FrozenEstimator(model)).fit(X, y)
    other = Lasso(alpha=0.02, **TIGHT).fit(X, y[::-1])
    with pytest.warns(NotStationaryWarning):
        InfluenceFunctions(FrozenEstimator(other)).fit(X, y)


def test_refused_configurations(data):
    X, y, _, _, _ = data
    with pytest.raises(ValueError, match="positive=True.*Supported: positive=False"):
        InfluenceFunctions(Lasso(alpha=0.02, positive=True)).fit(X, y)
    with pytest.raises(ValueError, match="2 targets"):
        InfluenceFunctions(Lasso(alpha=0.02)).fit(X, np.column_stack([y, y]))


def test_collinear_active_set_is_refused():
    # a duplicated column: the Lasso's fit is any split of the coefficient between the two
    # copies, and a warm start from both nonzero keeps both active (its Gram matrix singular)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    X = np.column_stack([X, X[:, 0]])
    y = 2 * X[:, 0] + X[:, 1] + 0.1 * rng.normal(size=40)
    model = Lasso(alpha=0.01, warm_start=True)
    model.coef_, model.intercept_ = np.array([1.0, 1.0, 0.0, 1.0]), 0.0
    model.fit(X, y)
    assert np.all(model.coef_[[0, 3]] > 0.5)
    with pytest.raises(ValueError, match=(
            r"The active set of the Lasso has collinear features .* \(ElasticNet with "
            r"l1_ratio < 1\)\. The matrix is numerically singular \(its smallest eigenvalue")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the full Hessian's damping
            InfluenceFunctions(FrozenEstimator(model)).fit(X, y)


@pytest.mark.parametrize("weighted", [False, True])
def test_group_removal_against_refits(data, weighted):
    """Groups: exact on the active set, refit where the group changes it (both occur)."""
    from skinfluence.valuation import predict_removal_effect, removal_parameter_change

    X, y, Xt, yt, sw = data
    sw = sw if weighted else None
    model = Lasso(alpha=_near_knot(X, y, sw), **TIGHT)
    infl = InfluenceFunctions(model).fit(X, y, sample_weight=sw)
    theta = _theta(infl.estimator_)
    support = theta[:-1] != 0
    kinds = set()
    for group in (np.arange(5), np.arange(0, N, 3), np.arange(40, 100)):
        keep = np.setdiff1d(np.arange(N), group)
        refit = clone(model).fit(X[keep], y[keep],
                                 sample_weight=None if sw is None else sw[keep])
        kinds.add(bool(np.any((refit.coef_ != 0) != support)))
        truth = _theta(refit) - theta
        for order in (1, 2):  # exact whatever the order
            np.testing.assert_allclose(removal_parameter_change(infl, group, order=order),
                                       truth, rtol=0, atol=1e-8 * np.abs(truth).max())
        loss = (yt - refit.predict(Xt)) ** 2 - (yt - infl.estimator_.predict(Xt)) ** 2
        np.testing.assert_allclose(predict_removal_effect(infl, group, Xt, yt, order=1), loss,
                                   rtol=0, atol=1e-8 * np.abs(loss).max())
    assert kinds == {False, True}


@pytest.fixture(scope="module")
def multi_task(data):
    X, y, _, _, sw = data
    rng = np.random.default_rng(2)
    Y = np.column_stack([y, 3 * X[:, 0] + rng.normal(size=N), X[:, 2] - X[:, 3]])
    return X, (Y - Y.mean(0)) / Y.std(0), sw


MULTI_TASK = [
    ("mtlasso", lambda: MultiTaskLasso(alpha=0.05, **TIGHT), False),
    ("mtlasso-weighted", lambda: MultiTaskLasso(alpha=0.05, **TIGHT), True),
    ("mtenet", lambda: MultiTaskElasticNet(alpha=0.08, l1_ratio=0.6, **TIGHT), False),
]


@pytest.mark.parametrize("name, make, weighted", MULTI_TASK, ids=[c[0] for c in MULTI_TASK])
def test_multi_task_against_refits(multi_task, name, make, weighted):
    """MultiTaskLasso / MultiTaskElasticNet: Newton steps on the active features (the group
    norm is not quadratic), exact refits for the largest changes and for every removal
    that changes the active set, which are exactly the refits with another support."""
    X, Y, sw = multi_task
    sw = sw if weighted else None
    model = make()
    infl = InfluenceFunctions(model).fit(X, Y, sample_weight=sw)
    theta = infl.objective_.theta
    support = np.linalg.norm(infl.estimator_.coef_, axis=0) > 0
    assert not support.all()
    truth, changed = [], []
    for j in range(N):
        keep = np.arange(N) != j
        refit = clone(model).fit(X[keep], Y[keep], sample_weight=None if sw is None else
                                 sw[keep])
        truth.append(np.r_[refit.coef_.ravel(), refit.intercept_] - theta)
        if np.any((np.linalg.norm(refit.coef_, axis=0) > 0) != support):
            changed.append(j)
    truth = np.array(truth).T
    np.testing.assert_array_equal(infl.active_set_changes_, changed)
    D = infl.parameter_changes()
    assert np.corrcoef(D.ravel(), truth.ravel())[0, 1] > 0.999
    scale = np.abs(truth).max()
    refined = infl.refined_indices_
    assert np.isin(changed, refined).all()
    # refit points (largest changes by chords on the active set, changes by scikit-learn)
    np.testing.assert_allclose(D[:, refined], truth[:, refined], rtol=0, atol=1e-8 * scale)
    if name == "mtlasso":
        assert len(changed) > 0


def test_multi_task_group_removal_is_the_refit(multi_task):
    from skinfluence.valuation import removal_parameter_change

    X, Y, _ = multi_task
    model = MultiTaskLasso(alpha=0.05, **TIGHT)
    infl = InfluenceFunctions(model).fit(X, Y)
    group = np.arange(0, N, 4)
    keep = np.setdiff1d(np.arange(N), group)
    refit = clone(model).fit(X[keep], Y[keep])
    truth = np.r_[refit.coef_.ravel(), refit.intercept_] - infl.objective_.theta
    np.testing.assert_allclose(removal_parameter_change(infl, group), truth, rtol=0,
                               atol=1e-8 * np.abs(truth).max())


@pytest.fixture(scope="module")
def cancer():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    idx = np.random.default_rng(0).permutation(len(y))
    return X[idx][:120, :10], y[idx][:120]


LOGISTIC = [
    ("saga-l1", lambda: LogisticRegression(l1_ratio=1, C=0.3, solver="saga", tol=1e-12,
                                           max_iter=200_000)),
    ("saga-enet", lambda: LogisticRegression(l1_ratio=0.5, C=0.1, solver="saga", tol=1e-12,
                                             max_iter=200_000)),
    ("liblinear-l1", lambda: LogisticRegression(l1_ratio=1, C=0.3, solver="liblinear",
                                                tol=1e-12, max_iter=200_000)),
]


@pytest.mark.parametrize("name, make", LOGISTIC, ids=[c[0] for c in LOGISTIC])
def test_sparse_logistic_against_refits(cancer, name, make):
    """L1 / elastic-net LogisticRegression: Newton steps on the active set, the largest
    changes and every removal that changes the active set refit exactly."""
    X, y = cancer
    n = y.shape[0]
    model = make()
    infl = InfluenceFunctions(model).fit(X, y)
    theta = infl.objective_.theta
    assert np.any(theta[:-1] == 0)
    truth, changed = [], []
    for j in range(n):
        keep = np.arange(n) != j
        refit = clone(model).fit(X[keep], y[keep])
        t = np.r_[refit.coef_.ravel(), refit.intercept_]
        truth.append(t - theta)
        if np.any((t[:-1] != 0) != (theta[:-1] != 0)):
            changed.append(j)
    truth = np.array(truth).T
    D = infl.parameter_changes()
    assert np.corrcoef(D.ravel(), truth.ravel())[0, 1] > 0.999
    refined = infl.refined_indices_
    scale = np.abs(truth).max()
    np.testing.assert_allclose(D[:, refined], truth[:, refined], rtol=0, atol=1e-7 * scale)
    if name == "saga-l1":
        # the support of liblinear's refits at its tolerance is ambiguous for coefficients
        # of ~1e-10; saga's is not
        assert len(changed) > 0
        np.testing.assert_array_equal(infl.active_set_changes_, changed)
    assert np.isin(infl.active_set_changes_, refined).all()


def test_sparse_logistic_multinomial_and_cv():
    """Multinomial elastic net (saga) and LogisticRegressionCV with an L1 penalty (its
    selected C_ held fixed): Pearson against refits, refit points exact."""
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegressionCV

    from skinfluence.objectives.cv import equivalent_logistic_regression

    X, y = load_wine(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    idx = np.random.default_rng(0).permutation(len(y))[:90]
    X, y = X[idx], y[idx]
    models = [
        LogisticRegression(l1_ratio=0.7, C=0.1, solver="saga", tol=1e-12, max_iter=200_000),
        LogisticRegressionCV(Cs=[0.03, 0.1, 0.3], l1_ratios=(1.0,), solver="saga", cv=3,
                             scoring="neg_log_loss", use_legacy_attributes=False,
                             tol=1e-10, max_iter=200_000),
    ]
    for model in models:
        infl = InfluenceFunctions(model).fit(X, y)
        theta = infl.objective_.theta
        assert np.any(theta == 0)
        fixed = infl.estimator_
        if isinstance(fixed, LogisticRegressionCV):
            fixed = equivalent_logistic_regression(fixed).set_params(tol=1e-12)
        truth = np.array([
            np.r_[m.coef_.ravel(), m.intercept_] - theta
            for m in (clone(fixed).fit(np.delete(X, j, 0), np.delete(y, j)) for j in range(90))
        ]).T
        D = infl.parameter_changes()
        assert np.corrcoef(D.ravel(), truth.ravel())[0, 1] > 0.999
        refined = infl.refined_indices_
        np.testing.assert_allclose(D[:, refined], truth[:, refined], rtol=0,
                                   atol=1e-6 * np.abs(truth).max())


def test_sparse_logistic_refused_configurations(cancer):
    X, y = cancer
    with pytest.raises(ValueError, match="class_weight='balanced'.*Supported: class_weight"):
        InfluenceFunctions(LogisticRegression(l1_ratio=1, solver="saga", max_iter=5000,
                                              class_weight="balanced")).fit(X, y)


def test_sgd_l1_is_the_equivalent_sparse_model(data):
    """SGD with an L1 / elastic-net penalty is explained as the sparse model with its
    objective (tests/influence/test_sparse_sgd.py compares it with refits); the losses
    without an equivalent L1 model stay refused, naming the closest models."""
    from sklearn.linear_model import SGDClassifier, SGDRegressor

    X, y, _, _, _ = data
    with pytest.warns(NotStationaryWarning):
        infl = InfluenceFunctions(SGDRegressor(penalty="l1", random_state=0)).fit(X, y)
    assert type(infl.objective_).__name__ == "SGDElasticNetObjective"
    with pytest.raises(ValueError, match="penalty='l1'.*Lasso / ElasticNet"):
        InfluenceFunctions(SGDRegressor(penalty="l1", loss="huber")).fit(X, y)
    with pytest.raises(ValueError, match="penalty='elasticnet'.*log_loss"):
        InfluenceFunctions(SGDClassifier(loss="squared_hinge", penalty="elasticnet",
                                         l1_ratio=0.5)).fit(X, y > 0)


def test_dask_arrays_are_refused_clearly(data):
    da = pytest.importorskip("dask.array")
    X, y, _, _, _ = data
    model = Lasso(alpha=0.02, **TIGHT).fit(X, y)
    with pytest.raises(TypeError, match="L1 / elastic-net Lasso.*numpy arrays"):
        InfluenceFunctions(FrozenEstimator(model)).fit(da.from_array(X, chunks=50),
                                                       da.from_array(y, chunks=50))
