"""SGDRegressor / SGDClassifier with an L1 / elastic-net penalty against actual refits.

SGD minimises the objective of ElasticNet (squared error) or of L1 LogisticRegression
(log loss) (objectives/sgd.py), and the numbers estimate the removal effect at that
objective's optimum.  Losses are SGD's own: ``1/2 (y - z)^2`` for the regressor, as with
an L2 penalty, half of ElasticNet's ``(y - z)^2``.  The ground truth is the equivalent
deterministic model refit with row ``j`` deleted; the SGD models are polished to the
optimum (their coefficients set to the equivalent model's fit at a tight tolerance), so
the removals are those of the equivalent model exactly.  An SGD fit that stops short of
the optimum is flagged.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import (
    ElasticNet,
    LogisticRegression,
    SGDClassifier,
    SGDRegressor,
    lars_path,
)

from skinfluence import InfluenceFunctions
from skinfluence.objectives import NotStationaryWarning

N = 120
TIGHT = dict(tol=1e-14, max_iter=100_000)


pytestmark = pytest.mark.usefixtures("single_blas_thread")


@pytest.fixture(scope="module")
def diabetes(diabetes_shuffled):
    X, y = diabetes_shuffled
    return X[:N], y[:N], X[N : N + 20], y[N : N + 20]


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    idx = np.random.default_rng(0).permutation(len(y))
    return X[idx][:80, :8], y[idx][:80]


def _theta(model):
    return np.r_[np.ravel(model.coef_), np.ravel(model.intercept_)]


def _polished(sgd, coef, intercept):
    """``sgd`` with the optimum's parameters (as if SGD had converged to it), frozen."""
    sgd.coef_ = np.array(coef, dtype=np.float64)
    sgd.intercept_ = np.atleast_1d(np.array(intercept, dtype=np.float64))
    return FrozenEstimator(sgd)


def _near_knot(X, y, k=4, above=1.002):
    """An alpha just above the Lasso path's knot where the k-th coefficient enters."""
    Xc, yc = X - X.mean(0), y - y.mean()
    alphas, _, _ = lars_path(Xc, yc, method="lasso")
    return alphas[k] * above


@pytest.mark.parametrize("penalty, l1_ratio", [("l1", 1.0), ("elasticnet", 0.5)])
def test_regressor_against_elastic_net_and_refits(diabetes, penalty, l1_ratio):
    """Polished SGDRegressor: InfluenceFunctions equals that of the ElasticNet (to 1e-10;
    influence in SGD's loss units, half ElasticNet's) and the refits of ElasticNet without
    each row (to 1e-8), with removals that change the active set (near a knot of the path)
    detected and refit."""
    X, y, Xt, yt = diabetes
    alpha = _near_knot(X, y) / l1_ratio
    enet = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, **TIGHT).fit(X, y)
    sgd = SGDRegressor(penalty=penalty, l1_ratio=l1_ratio, alpha=alpha, max_iter=5,
                       tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 5 epochs: not converged, replaced below
        sgd.fit(X, y)
    frozen = _polished(sgd, enet.coef_, enet.intercept_)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotStationaryWarning)  # at the optimum: silent
        infl = InfluenceFunctions(frozen).fit(X, y)
    ref = InfluenceFunctions(FrozenEstimator(enet)).fit(X, y)
    D = infl.parameter_changes()
    np.testing.assert_allclose(D, ref.parameter_changes(), rtol=0,
                               atol=1e-10 * np.abs(D).max())
    # the same parameter changes; losses in SGD's 1/2 (y - z)^2, ElasticNet's (y - z)^2
    half = 0.5 * ref.transform(Xt, yt)
    np.testing.assert_allclose(infl.transform(Xt, yt), half, rtol=0,
                               atol=1e-10 * np.abs(half).max())
    theta = _theta(enet)
    truth = np.array([_theta(clone(enet).fit(np.delete(X, j, 0), np.delete(y, j)))
                      for j in range(N)]).T - theta[:, None]
    np.testing.assert_allclose(D, truth, rtol=0, atol=1e-8 * np.abs(truth).max())
    # the query losses of the refits, in SGD's units
    loss = lambda th: 0.5 * (yt - Xt @ th[:-1] - th[-1]) ** 2  # noqa: E731
    T = np.column_stack([loss(theta + truth[:, j]) - loss(theta) for j in range(N)])
    np.testing.assert_allclose(infl.transform(Xt, yt), T, rtol=0, atol=1e-8 * np.abs(T).max())
    changed = np.flatnonzero(((truth[:-1] + theta[:-1, None] != 0)
                              != (theta[:-1, None] != 0)).any(axis=0))
    assert changed.size > 0
    np.testing.assert_array_equal(infl.active_set_changes_, changed)


def test_classifier_against_logistic_refits(cancer):
    """Polished binary SGDClassifier(log_loss, l1): against LogisticRegression(saga) refit
    without each row with C = 1/((n - 1) alpha) (SGD's mean over the n - 1 others):
    Pearson >= 0.999, the refit removals (including every active-set change) exact."""
    X, y = cancer
    n = y.shape[0]
    alpha = 0.02
    lr = LogisticRegression(C=1 / (n * alpha), l1_ratio=1, solver="saga", tol=1e-12,
                            max_iter=200_000).fit(X, y)
    assert np.any(lr.coef_ == 0)
    sgd = SGDClassifier(loss="log_loss", penalty="l1", alpha=alpha, max_iter=5, tol=None,
                        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sgd.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotStationaryWarning)
        infl = InfluenceFunctions(_polished(sgd, lr.coef_, lr.intercept_)).fit(X, y)
    theta = _theta(lr)
    without = clone(lr).set_params(C=1 / ((n - 1) * alpha))
    truth, changed = [], []
    for j in range(n):
        t = _theta(clone(without).fit(np.delete(X, j, 0), np.delete(y, j)))
        truth.append(t - theta)
        if np.any((t[:-1] != 0) != (theta[:-1] != 0)):
            changed.append(j)
    truth = np.array(truth).T
    D = infl.parameter_changes()
    assert np.corrcoef(D.ravel(), truth.ravel())[0, 1] > 0.999
    refined = infl.refined_indices_
    np.testing.assert_allclose(D[:, refined], truth[:, refined], rtol=0,
                               atol=1e-6 * np.abs(truth).max())
    assert len(changed) > 0
    np.testing.assert_array_equal(infl.active_set_changes_, changed)


def test_unconverged_sgd_warns_once_saying_what_is_estimated(diabetes):
    """SGD's own fit stops short of the L1 optimum: one warning (for a frozen model too,
    not also the generic one) that names the optimum the numbers estimate."""
    X, y, _, _ = diabetes
    sgd = SGDRegressor(penalty="l1", alpha=0.05, max_iter=1000, tol=1e-3, random_state=0)
    with pytest.warns(NotStationaryWarning, match="not at the optimum.*ElasticNet"):
        InfluenceFunctions(sgd).fit(X, y)
    fitted = clone(sgd).fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        InfluenceFunctions(FrozenEstimator(fitted)).fit(X, y)
    msgs = [str(w.message) for w in caught if issubclass(w.category, NotStationaryWarning)]
    assert len(msgs) == 1 and "removal effect at that optimum" in msgs[0]


def test_refits_are_differences_of_deterministic_fits(diabetes):
    """On an unconverged SGD fit a refit's change is ElasticNet's theta*_{-j} - theta*,
    not the distance from SGD's parameters to theta*_{-j}."""
    X, y, _, _ = diabetes
    from skinfluence.objectives import make_objective

    sgd = SGDRegressor(penalty="l1", alpha=0.05, max_iter=1000, tol=1e-3, random_state=0)
    sgd.fit(X, y)
    obj = make_objective(sgd, X, y)
    enet = ElasticNet(alpha=0.05, l1_ratio=1.0, **TIGHT)
    full = _theta(clone(enet).fit(X, y))
    without = _theta(clone(enet).fit(np.delete(X, 3, 0), np.delete(y, 3)))
    np.testing.assert_allclose(obj.refit_without(3) - obj.theta, without - full, rtol=0,
                               atol=1e-9 * np.abs(without - full).max())
    assert np.abs(obj.theta - full).max() > 100 * np.abs(without - full).max() / N


def test_remaining_refusals_name_the_closest_models(diabetes, cancer):
    X, y, _, _ = diabetes
    Xc, yc = cancer
    with pytest.raises(ValueError, match="loss='huber'.*only squared_error.*ElasticNet"):
        InfluenceFunctions(SGDRegressor(loss="huber", penalty="l1")).fit(X, y)
    with pytest.raises(ValueError, match="varying sample_weight.*ElasticNet"):
        InfluenceFunctions(SGDRegressor(penalty="l1")).fit(
            X, y, sample_weight=np.linspace(0.5, 2, N))
    with pytest.raises(ValueError, match="loss='modified_huber'.*only log_loss"):
        InfluenceFunctions(SGDClassifier(loss="modified_huber", penalty="l1")).fit(Xc, yc)
    with pytest.raises(ValueError, match="loss='hinge'.*squared_hinge"):
        InfluenceFunctions(SGDClassifier(loss="hinge", penalty="l1")).fit(Xc, yc)
    with pytest.raises(ValueError, match="class_weight='balanced'"):
        InfluenceFunctions(SGDClassifier(loss="log_loss", penalty="l1",
                                         class_weight="balanced")).fit(Xc, yc)
    Xi, yi = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="3 classes.*one-vs-rest.*LogisticRegression"):
        InfluenceFunctions(SGDClassifier(loss="log_loss", penalty="elasticnet",
                                         l1_ratio=0.5)).fit(Xi, yi)


def test_valuation_and_cleaning_match_the_elastic_net(diabetes):
    """InfluenceValuation and InfluenceCleaner run unchanged: on the polished SGD model
    they give the ElasticNet's values (in SGD's loss units: half) and scores."""
    from skinfluence import InfluenceCleaner, InfluenceValuation

    X, y, Xt, yt = diabetes
    enet = ElasticNet(alpha=0.05, l1_ratio=0.5, **TIGHT).fit(X, y)
    sgd = SGDRegressor(penalty="elasticnet", l1_ratio=0.5, alpha=0.05, max_iter=5,
                       tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sgd.fit(X, y)
    frozen = _polished(sgd, enet.coef_, enet.intercept_)
    a = InfluenceValuation(frozen).fit(X, y, X_val=Xt, y_val=yt).values_
    # mean validation loss increases: SGD's 1/2 (y - z)^2 is half ElasticNet's loss
    b = 0.5 * InfluenceValuation(FrozenEstimator(enet)).fit(X, y, X_val=Xt, y_val=yt).values_
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(b).max())
    a = InfluenceCleaner(frozen).fit(X, y).scores_
    b = InfluenceCleaner(FrozenEstimator(enet)).fit(X, y).scores_
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(b).max())


def test_l1_path_reports_the_l2_paths_units(diabetes, monkeypatch):
    """The L1 / elastic-net objective with no L1 part is the L2 objective in the same loss
    units, 1/2 (y - z)^2.  The public API sends ``l1_ratio=0`` to the L2 path, so the L1
    path's builder is called directly on that model (polished to the ridge optimum of SGD's
    objective): first-order influence (no refits on either side) equal to 1e-10; the exact
    active-set removals equal the ridge refits' query losses (to 1e-8), as do the L2 path's
    refined Newton steps."""
    from sklearn.linear_model import Ridge

    import skinfluence.objectives as objectives
    from skinfluence.objectives import sgd as sgd_objectives
    from skinfluence.objectives.linear import _check_xy, check_regression_target

    X, y, Xt, yt = diabetes
    alpha = 0.01
    # SGD's mean(1/2 r^2) + alpha/2 |w|^2 is Ridge's |r|^2 + n alpha |w|^2 over n
    ridge = Ridge(alpha=N * alpha, solver="cholesky").fit(X, y)
    sgd = SGDRegressor(penalty="elasticnet", l1_ratio=0.0, alpha=alpha, max_iter=5,
                       tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sgd.fit(X, y)
    frozen = _polished(sgd, ridge.coef_, ridge.intercept_)

    def l1_path(estimator, Xf, y, sample_weight, feature_map):
        y = check_regression_target(y, 1)
        return sgd_objectives._sgd_elastic_net(estimator, _check_xy(estimator, Xf, y), y,
                                              sample_weight, feature_map)

    l2 = {a: InfluenceFunctions(frozen, approximation=a, refine=N).fit(X, y)
          for a in ("first_order", "newton")}
    objectives.make_objective(sgd, X, y)  # registers the SGD builders
    monkeypatch.setitem(objectives._REGISTRY, "SGDRegressor", l1_path)
    l1 = {a: InfluenceFunctions(frozen, approximation=a).fit(X, y)
          for a in ("first_order", "newton")}
    assert type(l1["newton"].objective_).__name__ == "SGDElasticNetObjective"
    assert type(l2["newton"].objective_).__name__ == "SGDObjective"
    a, b = l1["first_order"].transform(Xt, yt), l2["first_order"].transform(Xt, yt)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(b).max())
    # against refits: without j, SGD's mean over n - 1 points (Ridge's alpha (n - 1) alpha)
    theta = _theta(ridge)
    refit = clone(ridge).set_params(alpha=(N - 1) * alpha)
    loss = lambda th: 0.5 * (yt - Xt @ th[:-1] - th[-1]) ** 2  # noqa: E731
    T = np.column_stack([loss(_theta(clone(refit).fit(np.delete(X, j, 0), np.delete(y, j))))
                         - loss(theta) for j in range(N)])
    for infl in (l1["newton"], l2["newton"]):
        np.testing.assert_allclose(infl.transform(Xt, yt), T, rtol=0,
                                   atol=1e-8 * np.abs(T).max())
