"""KNN-Shapley against brute-force enumeration, LOO against manual refits, Data-OOB, API."""

import itertools
from math import comb

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from skinfluence.valuation import (
    BanzhafValuation,
    BetaShapley,
    DataOOB,
    InfluenceValuation,
    KNNShapley,
    LOOValuation,
    TMCShapley,
)

# the reference refits are many tiny problems: BLAS threads only add contention
pytestmark = pytest.mark.usefixtures("single_blas_thread")


# ------------------------------------------------------------- KNN-Shapley
def _knn_utility(S, X, y, x, yv, K):
    """1/K * number of the min(K, |S|) nearest points of S carrying label yv."""
    if len(S) == 0:
        return 0.0
    S = np.asarray(S)
    d = np.sum((X[S] - x) ** 2, axis=1)
    nearest = S[np.argsort(d, kind="stable")[: min(K, len(S))]]
    return float(np.sum(y[nearest] == yv)) / K


def _brute_shapley(players, utility):
    n = len(players)
    values = {}
    for j in players:
        others = [p for p in players if p != j]
        v = 0.0
        for k in range(n):
            for S in itertools.combinations(others, k):
                v += (utility(list(S) + [j]) - utility(list(S))) / (n * comb(n - 1, k))
        values[j] = v
    return values


@pytest.mark.parametrize("K", [1, 3, 9])
def test_knn_shapley_matches_brute_force(K):
    rng = np.random.default_rng(K)
    X = rng.normal(size=(8, 3))
    y = rng.integers(0, 3, size=8)
    Xv = rng.normal(size=(4, 3))
    yv = np.array([0, 1, 2, 1])
    knn = KNNShapley(n_neighbors=K).fit(X, y, X_val=Xv, y_val=yv)
    rows = knn.transform(Xv, yv)
    assert rows.shape == (4, 8)
    for i in range(4):
        exact = _brute_shapley(list(range(8)), lambda S: _knn_utility(S, X, y, Xv[i], yv[i], K))
        np.testing.assert_allclose(rows[i], [exact[j] for j in range(8)], atol=1e-12)
    np.testing.assert_allclose(knn.values_, rows.mean(0), atol=1e-14)
    # efficiency: the values of one validation point add up to U(N)
    full = [_knn_utility(np.arange(8), X, y, Xv[i], yv[i], K) for i in range(4)]
    np.testing.assert_allclose(rows.sum(1), full, atol=1e-12)


@pytest.mark.parametrize("K", [1, 2, 3])
def test_knn_shapley_transform_without_labels_attributes_the_prediction(K):
    # transform(X) is the game of each sample labelled with the fitted KNN's prediction:
    # the majority label of its K nearest training points (ties: the smallest label)
    rng = np.random.default_rng(10 + K)
    X = rng.normal(size=(7, 2))
    y = rng.integers(0, 3, size=7)
    Xq = rng.normal(size=(5, 2))
    knn = KNNShapley(n_neighbors=K).fit(X, y)
    rows = knn.transform(Xq)
    assert rows.shape == (5, 7)
    for i in range(5):
        nearest = np.argsort(np.sum((X - Xq[i]) ** 2, axis=1), kind="stable")[:K]
        label = np.argmax(np.bincount(y[nearest], minlength=3))
        assert knn.predict(Xq[i:i + 1])[0] == label
        exact = _brute_shapley(list(range(7)), lambda S: _knn_utility(S, X, y, Xq[i], label, K))
        np.testing.assert_allclose(rows[i], [exact[j] for j in range(7)], atol=1e-12)
        # efficiency: the values add up to the share of the K nearest carrying the prediction
        np.testing.assert_allclose(rows[i].sum(), np.mean(y[nearest] == label), atol=1e-12)


def test_knn_shapley_self_valuation_and_ties():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 2))
    X[3] = X[1]  # an exact duplicate: tie broken by index
    y = np.array([0, 1, 0, 1, 1, 0])
    knn = KNNShapley(n_neighbors=2).fit(X, y)
    expected = np.zeros(6)
    for i in range(6):
        others = [j for j in range(6) if j != i]
        exact = _brute_shapley(others, lambda S: _knn_utility(S, X, y, X[i], y[i], 2))
        for j in others:
            expected[j] += exact[j] / 6
    np.testing.assert_allclose(knn.values_, expected, atol=1e-12)


def test_knn_shapley_unseen_label_and_chunking(monkeypatch):
    import skinfluence.valuation._knn as knn_mod

    X, y = make_classification(n_samples=300, n_features=5, random_state=0)
    ref = KNNShapley(n_neighbors=4).fit(X[:200], y[:200], X_val=X[200:], y_val=y[200:]).values_
    monkeypatch.setattr(knn_mod, "_CHUNK_ELEMENTS", 7 * 200)  # many small chunks, last one ragged
    got = KNNShapley(n_neighbors=4, n_jobs=2).fit(X[:200], y[:200], X_val=X[200:], y_val=y[200:])
    np.testing.assert_allclose(got.values_, ref, atol=1e-15)
    rows = got.transform(X[200:203], np.array([5, 5, 5]))  # label never seen in training
    assert np.all(rows == 0)
    assert got.score(X[200:], y[200:]) == got.estimator_.score(X[200:], y[200:])


def test_knn_shapley_errors():
    X, y = make_classification(n_samples=40, n_features=4, random_state=0)
    with pytest.raises(TypeError, match="sample_weight"):  # the unweighted KNN utility
        KNNShapley().fit(X, y, sample_weight=np.ones(40))
    with pytest.raises(ValueError, match="both X_val and y_val"):
        KNNShapley().fit(X, y, X_val=X)
    with pytest.raises(ValueError, match="features"):
        KNNShapley().fit(X, y, X_val=X[:, :2], y_val=y)
    with pytest.raises(ValueError, match="NaN"):
        Xn = X.copy()
        Xn[0, 0] = np.nan
        KNNShapley().fit(Xn, y)


# ---------------------------------------------------------- KNN-Shapley, regression
def _knn_regression_utility(S, X, y, x, yv, K, c):
    """Minus the squared error of the K-NN average, empty places predicting c.

    Computed from scratch: the min(K, |S|) points of S nearest to x (ties by index).
    """
    S = np.sort(np.asarray(S, dtype=int))
    d = np.sum((X[S] - x) ** 2, axis=1)
    nearest = S[np.argsort(d, kind="stable")[: min(K, len(S))]]
    prediction = c + np.sum(y[nearest] - c) / K
    return -float((prediction - yv) ** 2)


@pytest.mark.parametrize("K", [1, 2, 3, 5, 9])
def test_knn_shapley_regression_matches_brute_force(K):
    rng = np.random.default_rng(10 + K)
    X = rng.normal(size=(8, 3))
    y = rng.normal(3.0, 2.0, size=8)  # off-centre: the mean target c matters
    Xv = rng.normal(size=(4, 3))
    yv = rng.normal(3.0, 2.0, size=4)
    knn = KNNShapley(n_neighbors=K).fit(X, y, X_val=Xv, y_val=yv)
    assert knn.task_ == "regression"
    rows = knn.transform(Xv, yv)
    c = y.mean()
    for i in range(4):
        def u(S):
            return _knn_regression_utility(S, X, y, Xv[i], yv[i], K, c)

        exact = _brute_shapley(list(range(8)), u)
        np.testing.assert_allclose(rows[i], [exact[j] for j in range(8)], rtol=0, atol=1e-10)
        # efficiency: the values add up to U(N) - U(empty)
        assert rows[i].sum() == pytest.approx(u(range(8)) - u([]), abs=1e-10)
    np.testing.assert_allclose(knn.values_, rows.mean(0), atol=1e-14)


@pytest.mark.parametrize("K", [1, 2, 4])
def test_knn_shapley_regression_self_valuation_and_ties(K):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(7, 2))
    X[3] = X[1]  # exact duplicates with different targets: the tie is broken by index
    X[5] = X[1]
    y = rng.normal(size=7) * 5.0 + 1.0
    knn = KNNShapley(n_neighbors=K, task="regression").fit(X, y)
    c = y.mean()
    expected = np.zeros(7)
    for i in range(7):
        others = [j for j in range(7) if j != i]
        exact = _brute_shapley(
            others, lambda S: _knn_regression_utility(S, X, y, X[i], y[i], K, c))
        for j in others:
            expected[j] += exact[j] / 7
    np.testing.assert_allclose(knn.values_, expected, rtol=0, atol=1e-10)


def test_knn_shapley_task_choice_and_delegation(monkeypatch):
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    import skinfluence.valuation._knn as knn_mod

    X, y = make_regression(n_samples=120, n_features=4, noise=5.0, random_state=0)
    auto = KNNShapley(n_neighbors=4).fit(X[:80], y[:80], X_val=X[80:], y_val=y[80:])
    forced = KNNShapley(n_neighbors=4, task="regression").fit(X[:80], y[:80], X_val=X[80:],
                                                             y_val=y[80:])
    assert auto.task_ == forced.task_ == "regression"
    np.testing.assert_array_equal(auto.values_, forced.values_)
    assert isinstance(auto.estimator_, KNeighborsRegressor)
    ref = KNeighborsRegressor(n_neighbors=4).fit(X[:80], y[:80])
    np.testing.assert_allclose(auto.predict(X[80:]), ref.predict(X[80:]))
    assert auto.score(X[80:], y[80:]) == pytest.approx(ref.score(X[80:], y[80:]))
    # chunks and threads change nothing but the order of the sum over validation points
    monkeypatch.setattr(knn_mod, "_CHUNK_ELEMENTS", 7 * 80)
    chunked = KNNShapley(n_neighbors=4, n_jobs=2).fit(X[:80], y[:80], X_val=X[80:],
                                                     y_val=y[80:])
    scale = np.abs(auto.transform(X[80:], y[80:])).max()
    np.testing.assert_allclose(chunked.values_, auto.values_, rtol=0, atol=1e-14 * scale)
    # integer targets are class labels unless task="regression"
    yi = np.round(y / 50).astype(int)
    assert KNNShapley().fit(X, yi).task_ == "classification"
    assert isinstance(KNNShapley().fit(X, yi).estimator_, KNeighborsClassifier)
    reg = KNNShapley(task="regression").fit(X, yi)
    assert reg.task_ == "regression" and isinstance(reg.estimator_, KNeighborsRegressor)
    with pytest.raises(ValueError, match="Unknown label type"):
        KNNShapley(task="classification").fit(X, y)
    with pytest.raises(ValueError, match="task"):
        KNNShapley(task="ranking").fit(X, y)


def test_knn_shapley_regression_finds_shifted_targets():
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    rng = np.random.default_rng(0)
    n = len(y)
    bad = np.zeros(n, dtype=bool)
    bad[rng.choice(n, n // 10, replace=False)] = True
    noisy = y.copy()
    noisy[bad] += rng.choice([-3.0, 3.0], bad.sum()) * y.std()
    values = KNNShapley(n_neighbors=5).fit(X, noisy).values_
    # lowest values = suspects (0.993 for this draw; 0.968 to 0.996 over ten draws)
    assert roc_auc_score(bad, -values) >= 0.95


# --------------------------------------------------------------------- LOO
def _manual_score(est, X, y, Xv, yv, keep):
    return clone(est).fit(X[keep], y[keep]).score(Xv, yv)


def test_loo_matches_manual_refits():
    from sklearn.metrics import log_loss

    X, y = make_classification(n_samples=60, n_features=4, flip_y=0.1, random_state=1)
    X, Xv, y, yv = X[:25], X[25:], y[:25], y[25:]
    est = LogisticRegression(C=0.5)
    loo = LOOValuation(est, scoring="neg_log_loss", warm_start=False).fit(
        X, y, X_val=Xv, y_val=yv)

    def score(keep):
        return -log_loss(yv, clone(est).fit(X[keep], y[keep]).predict_proba(Xv))

    full = score(np.ones(25, bool))
    manual = np.array([full - score(np.arange(25) != j) for j in range(25)])
    np.testing.assert_allclose(loo.values_, manual, rtol=1e-12, atol=1e-15)
    assert np.all(manual != 0)
    # warm starts from the full solution reach the same optimum within solver tolerance
    tight = LogisticRegression(C=0.5, tol=1e-10, max_iter=10000)
    warm = LOOValuation(tight, scoring="neg_log_loss").fit(X, y, X_val=Xv, y_val=yv)
    cold = LOOValuation(tight, scoring="neg_log_loss", warm_start=False).fit(
        X, y, X_val=Xv, y_val=yv)
    np.testing.assert_allclose(warm.values_, cold.values_, rtol=1e-6, atol=1e-9)


def test_loo_transform_decomposes_accuracy():
    X, y = make_classification(n_samples=60, n_features=4, flip_y=0.2, random_state=2)
    X, Xv, y, yv = X[:8], X[8:], y[:8], y[8:]
    loo = LOOValuation(LogisticRegression(), warm_start=False).fit(X, y, X_val=Xv, y_val=yv)
    T = loo.transform(Xv, yv)
    assert T.shape == (52, 8)
    np.testing.assert_allclose(T.mean(0), loo.values_, atol=1e-12)
    assert np.any(loo.values_ != 0)
    full_pred = LogisticRegression().fit(X, y).predict(Xv)
    j = int(np.argmax(np.abs(loo.values_)))
    keep = np.arange(8) != j
    pred = LogisticRegression().fit(X[keep], y[keep]).predict(Xv)
    np.testing.assert_array_equal(T[:, j], (full_pred == yv).astype(float) - (pred == yv))


def test_loo_transform_without_targets_attributes_the_prediction():
    # without y each sample's target is the full model's prediction: entry [i, j] is
    # whether removing j flips the predicted class (regressors: the squared shift)
    X, y = make_classification(n_samples=40, n_features=4, flip_y=0.2, random_state=2)
    X, Xq, y = X[:10], X[10:], y[:10]
    loo = LOOValuation(LogisticRegression(), warm_start=False).fit(X, y, X_val=Xq,
                                                                    y_val=np.zeros(30, int))
    T = loo.transform(Xq)
    full = LogisticRegression().fit(X, y).predict(Xq)
    manual = np.column_stack([
        LogisticRegression().fit(X[np.arange(10) != j], y[np.arange(10) != j]).predict(Xq)
        != full for j in range(10)]).astype(float)
    np.testing.assert_array_equal(T, manual)
    assert T.any()
    Xr, yr = make_regression(n_samples=20, n_features=3, noise=5.0, random_state=0)
    loo = LOOValuation(Ridge()).fit(Xr[:8], yr[:8], X_val=Xr[8:], y_val=yr[8:])
    full = Ridge().fit(Xr[:8], yr[:8]).predict(Xr[8:])
    manual = np.column_stack([
        (Ridge().fit(np.delete(Xr[:8], j, 0), np.delete(yr[:8], j)).predict(Xr[8:]) - full) ** 2
        for j in range(8)])
    np.testing.assert_allclose(loo.transform(Xr[8:]), manual, rtol=1e-10)


@pytest.mark.parametrize("make", [
    lambda: LOOValuation(LogisticRegression(), warm_start=False),
    lambda: TMCShapley(LogisticRegression(), max_iter=4, tol=None, fast_utility=False,
                       random_state=0),
], ids=["loo", "tmc"])
def test_classifier_targets_float_labels_and_continuous(make):
    X, y = make_classification(n_samples=40, n_features=4, flip_y=0.2, random_state=3)
    X, Xv, y, yv = X[:12], X[12:], y[:12], y[12:]
    ref = make().fit(X, y, X_val=Xv, y_val=yv).values_
    # class labels stored as floats are the same classes (the constant predictors of
    # single-class subsets included)
    got = make().fit(X, y.astype(float), X_val=Xv, y_val=yv.astype(float)).values_
    np.testing.assert_array_equal(got, ref)
    with pytest.raises(ValueError, match="Unknown label type"):
        make().fit(X, y + 0.5 * np.arange(12), X_val=Xv, y_val=yv)
    with pytest.raises(ValueError, match="Unknown label type"):
        make().fit(X, y.astype(object), X_val=Xv, y_val=yv)


def test_semivalue_single_training_point_message():
    X, y = make_regression(n_samples=5, n_features=2, random_state=0)
    with pytest.raises(ValueError, match="at least two training points; got n_samples = 1"):
        TMCShapley(Ridge(), max_iter=2).fit(X[:1], y[:1], X_val=X, y_val=y)


def test_loo_groups_and_regression():
    X, y = make_regression(n_samples=40, n_features=3, noise=5.0, random_state=0)
    X, Xv, y, yv = X[:20], X[20:], y[:20], y[20:]
    groups = np.repeat(["a", "b", "c", "d", "e"], 4)
    loo = LOOValuation(Ridge(alpha=1.0), scoring="neg_mean_squared_error").fit(
        X, y, X_val=Xv, y_val=yv, groups=groups)
    assert list(loo.group_labels_) == ["a", "b", "c", "d", "e"]
    from sklearn.metrics import mean_squared_error

    full = -mean_squared_error(yv, Ridge(alpha=1.0).fit(X, y).predict(Xv))
    for g, label in enumerate(loo.group_labels_):
        keep = groups != label
        drop = -mean_squared_error(yv, Ridge(alpha=1.0).fit(X[keep], y[keep]).predict(Xv))
        assert loo.values_[g] == pytest.approx(full - drop, rel=1e-10)


def test_loo_single_class_left_is_constant_predictor():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 0, 1])
    Xv = np.array([[0.5], [2.5], [3.5]])
    yv = np.array([0, 1, 1])
    loo = LOOValuation(LogisticRegression()).fit(X, y, X_val=Xv, y_val=yv)
    full = LogisticRegression().fit(X, y).score(Xv, yv)
    # without the only positive point the model predicts class 0 everywhere: accuracy 1/3
    assert loo.values_[3] == pytest.approx(full - 1 / 3)


def test_loo_requires_validation_set():
    X, y = make_classification(n_samples=30, n_features=4, random_state=0)
    with pytest.raises(ValueError, match="needs a validation set"):
        LOOValuation(LogisticRegression()).fit(X, y)


# ----------------------------------------------------------------- DataOOB
def test_data_oob_finds_flipped_labels_and_is_reproducible():
    X, y = make_classification(n_samples=150, n_features=5, n_informative=4, n_redundant=0,
                               n_clusters_per_class=1, flip_y=0, random_state=0)
    rng = np.random.default_rng(0)
    flip = rng.choice(150, 15, replace=False)
    y[flip] = 1 - y[flip]
    is_flip = np.isin(np.arange(150), flip)
    from joblib import parallel_config

    with parallel_config(backend="threading"):  # no process start-up in a unit test
        oob = DataOOB(LogisticRegression(), n_estimators=100, random_state=0, n_jobs=2).fit(X, y)
    assert roc_auc_score(is_flip, -oob.values_) > 0.9
    # each point is out of bag in about e^-1 of the bags
    assert abs(oob.n_oob_.mean() / 100 - np.exp(-1)) < 0.03
    assert np.all((oob.values_ >= 0) & (oob.values_ <= 1))
    again = DataOOB(LogisticRegression(), n_estimators=100, random_state=0, n_jobs=1).fit(X, y)
    np.testing.assert_array_equal(oob.values_, again.values_)
    with pytest.raises(ValueError, match="out-of-bag"):
        DataOOB(LogisticRegression()).fit(X, y, X_val=X, y_val=y)


def test_data_oob_matches_its_definition_with_a_deterministic_model():
    # a depth-0 tree predicts the bag's majority class, so each OOB score is explicit
    X, y = make_classification(n_samples=30, n_features=3, n_redundant=0, random_state=0)
    oob = DataOOB(DecisionTreeClassifier(max_depth=1, random_state=0), n_estimators=40,
                  random_state=3).fit(X, y)
    assert np.all(oob.n_oob_ > 0)
    ok = np.isfinite(oob.stderr_) & (oob.n_oob_ > 1)
    assert np.all(oob.stderr_[ok] <= 0.5 / np.sqrt(oob.n_oob_[ok] - 1) + 1e-12)


# ---------------------------------------------------------- API conventions
_ESTIMATORS = [
    KNNShapley(),
    LOOValuation(LogisticRegression()),
    TMCShapley(LogisticRegression()),
    BetaShapley(LogisticRegression()),
    BanzhafValuation(LogisticRegression()),
    DataOOB(LogisticRegression()),
    InfluenceValuation(LogisticRegression()),
]


@pytest.mark.parametrize("est", _ESTIMATORS, ids=lambda e: type(e).__name__)
def test_sklearn_conventions(est):
    name = type(est).__name__
    check_no_attributes_set_in_init(name, est)
    check_get_params_invariance(name, est)
    check_set_params(name, est)
    if name == "KNNShapley":
        check_parameters_default_constructible(name, est)
    clone(est)
    X, y = make_classification(n_samples=40, n_features=4, random_state=0)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        est.predict(X)


def test_data_oob_newton_path_equals_sklearn_fits():
    X, y = make_classification(n_samples=80, n_features=4, n_redundant=0, flip_y=0.1,
                               random_state=5)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, 80)
    est = LogisticRegression(C=0.5, tol=1e-12, max_iter=10000)
    fast = DataOOB(est, n_estimators=30, random_state=0).fit(X, y, sample_weight=sw)
    slow = DataOOB(est, n_estimators=30, random_state=0, fast_utility=False).fit(
        X, y, sample_weight=sw)
    assert fast.fast_utility_ and not slow.fast_utility_
    np.testing.assert_array_equal(fast.n_oob_, slow.n_oob_)
    np.testing.assert_allclose(fast.values_, slow.values_, atol=1e-12)
    np.testing.assert_allclose(fast.stderr_, slow.stderr_, atol=1e-12)


# ------------------------------------------- pipelines on raw data, sparse formats
def _mixed_frame(n, seed):
    """A DataFrame with a numeric column holding NaN and a string column."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n),
                       "color": rng.choice(["red", "green", "blue"], size=n)})
    df.loc[[1, 5], "x"] = np.nan
    logit = df["x"].fillna(0.0).to_numpy() + np.where(df["color"] == "red", 1.0, -0.5)
    return df, (logit + rng.normal(scale=0.8, size=n) > 0).astype(int)


def _fixed_encoder():
    # fixed categories and fill value: the same features whatever subset it is fitted on,
    # so the pipeline on raw rows equals the bare model on the encoded rows
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    return ColumnTransformer([
        ("x", SimpleImputer(strategy="constant", fill_value=0.0), ["x"]),
        ("color", OneHotEncoder(categories=[["blue", "green", "red"]], sparse_output=False),
         ["color"]),
    ])


_RAW_VALUATIONS = {
    "loo": lambda est: LOOValuation(est, scoring="neg_log_loss", warm_start=False),
    "tmc": lambda est: TMCShapley(est, scoring="neg_log_loss", max_iter=2, tol=None,
                                  truncation_tol=0, fast_utility=False, random_state=0),
    "beta": lambda est: BetaShapley(est, scoring="neg_log_loss", max_iter=2, tol=None,
                                    fast_utility=False, random_state=0),
    "banzhaf": lambda est: BanzhafValuation(est, scoring="neg_log_loss", max_iter=12, tol=None,
                                            fast_utility=False, random_state=0),
    "oob": lambda est: DataOOB(est, n_estimators=8, fast_utility=False, random_state=0),
    "influence": lambda est: InfluenceValuation(est),
}


@pytest.mark.parametrize("name", list(_RAW_VALUATIONS))
def test_pipeline_takes_strings_and_missing_values(name):
    from sklearn.pipeline import make_pipeline

    df, y = _mixed_frame(60, seed=0)
    X, Xv, y, yv = df.iloc[:35], df.iloc[35:], y[:35], y[35:]
    lr = LogisticRegression(C=0.5, tol=1e-10, max_iter=10000)
    make = _RAW_VALUATIONS[name]
    enc = _fixed_encoder().fit(df)

    def fit(val, X, Xv):
        if name == "oob":
            return val.fit(X, y)
        return val.fit(X, y, X_val=Xv, y_val=yv)

    got = fit(make(make_pipeline(_fixed_encoder(), clone(lr))), X, Xv)
    # the model alone on the encoded rows (in a one-step pipeline: the semivalues warm-start
    # a bare LogisticRegression along permutations, which moves values within its tol)
    ref = fit(make(make_pipeline(clone(lr))), enc.transform(X), enc.transform(Xv))
    np.testing.assert_allclose(got.values_, ref.values_, rtol=1e-12, atol=1e-14)
    assert list(got.feature_names_in_) == ["x", "color"]
    # a plain numeric model keeps the numeric validation and its clear error
    with pytest.raises(ValueError, match="could not convert string to float"):
        fit(make(clone(lr)), X, Xv)
    if name != "influence":
        np.testing.assert_allclose(got.predict_proba(Xv), ref.predict_proba(enc.transform(Xv)),
                                   rtol=1e-12, atol=1e-14)


def test_missing_values_pass_to_a_model_that_handles_them():
    # trees split on NaN themselves (allow_nan tag): LOO against manual refits
    X, y = make_classification(n_samples=60, n_features=3, n_redundant=0, random_state=4)
    X[np.random.default_rng(0).random(X.shape) < 0.15] = np.nan
    X, Xv, y, yv = X[:20], X[20:], y[:20], y[20:]
    tree = DecisionTreeClassifier(max_depth=2, random_state=0)
    loo = LOOValuation(tree).fit(X, y, X_val=Xv, y_val=yv)
    full = _manual_score(tree, X, y, Xv, yv, np.ones(20, bool))
    manual = [full - _manual_score(tree, X, y, Xv, yv, np.arange(20) != j) for j in range(20)]
    np.testing.assert_allclose(loo.values_, manual, rtol=0, atol=1e-15)
    # a model that cannot take NaN fails on the full-data fit with its own message
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with pytest.raises(ValueError, match="NaN"):
        TMCShapley(make_pipeline(StandardScaler(), LogisticRegression()), error_score=0.0,
                   max_iter=2, tol=None).fit(X, y, X_val=Xv, y_val=yv)


_SPARSE_VALUATIONS = {
    "loo": lambda: LOOValuation(LogisticRegression(C=0.5, tol=1e-10, max_iter=10000),
                                scoring="neg_log_loss", warm_start=False),
    "tmc": lambda: TMCShapley(LogisticRegression(C=0.5, tol=1e-10, max_iter=10000),
                              scoring="neg_log_loss", max_iter=2, tol=None, truncation_tol=0,
                              fast_utility=False, random_state=0),
    "beta": lambda: BetaShapley(LogisticRegression(C=0.5, tol=1e-10, max_iter=10000),
                                scoring="neg_log_loss", max_iter=2, tol=None,
                                fast_utility=False, random_state=0),
    # error_score given: a format the library mishandled would not be scored away silently
    "banzhaf": lambda: BanzhafValuation(LogisticRegression(C=0.5, tol=1e-10, max_iter=10000),
                                        scoring="neg_log_loss", max_iter=12, tol=None,
                                        error_score=0.0, fast_utility=False, random_state=0),
}


@pytest.mark.parametrize("name", list(_SPARSE_VALUATIONS))
def test_every_sparse_format_gives_the_csr_and_dense_values(name):
    import scipy.sparse as sp

    X, y = make_classification(n_samples=60, n_features=4, flip_y=0.1, random_state=6)
    X[np.abs(X) < 0.5] = 0.0  # some structural zeros
    X, Xv, y, yv = X[:16], X[16:], y[:16], y[16:]
    make = _SPARSE_VALUATIONS[name]
    dense = make().fit(X, y, X_val=Xv, y_val=yv)
    csr = make().fit(sp.csr_matrix(X), y, X_val=sp.csr_matrix(Xv), y_val=yv)
    # the same optimum from dense and sparse products, within the solver's tol=1e-10
    np.testing.assert_allclose(csr.values_, dense.values_, rtol=1e-6, atol=1e-8)
    for fmt in (sp.coo_matrix, sp.csc_matrix, sp.dok_matrix, sp.lil_matrix, sp.coo_array,
                sp.csr_array):
        got = make().fit(fmt(X), y, X_val=fmt(Xv), y_val=yv)
        np.testing.assert_array_equal(got.values_, csr.values_)
        assert getattr(got, "n_failed_fits_", 0) == 0


def test_taking_rows_is_never_scored_as_a_failed_fit(monkeypatch):
    # error_score stands in for fits that fail on a subset, not for data the library could
    # not index: such an error propagates as it is
    import skinfluence.valuation._base as base

    X, y = make_classification(n_samples=40, n_features=4, random_state=0)

    def broken(X, idx):
        raise TypeError("cannot take these rows")

    monkeypatch.setattr(base, "take_rows", broken)
    for val in (LOOValuation(LogisticRegression(), error_score=0.0),
                BanzhafValuation(LogisticRegression(), max_iter=4, tol=None, error_score=0.0,
                                 fast_utility=False, random_state=0)):
        with pytest.raises(TypeError, match="cannot take these rows"):
            val.fit(X[:10], y[:10], X_val=X[10:], y_val=y[10:])
