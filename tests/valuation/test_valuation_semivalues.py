"""Monte-Carlo semivalues against exact Shapley / Beta / Banzhaf values by enumeration."""

import itertools
from math import comb

import numpy as np
import pytest
from scipy.special import beta as beta_fn
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.tree import DecisionTreeClassifier

from skinfluence.valuation import BanzhafValuation, BetaShapley, TMCShapley, exact_semivalues
from skinfluence.valuation._base import SubsetUtility
from skinfluence.valuation._fast_logistic import FastLogisticUtility

# Monte-Carlo estimates must land within this many standard errors of the exact value for
# every player (fixed seeds; for 8 Gaussian errors P(any |z| > 4) is about 5e-4).
Z = 4.0


pytestmark = pytest.mark.usefixtures("single_blas_thread")


def _data(n_train=7, seed=0):
    X, y = make_classification(n_samples=n_train + 60, n_features=3, n_informative=2,
                               n_redundant=0, n_clusters_per_class=1, flip_y=0.15,
                               random_state=seed)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def _reference_utility(est, X, y, Xv, yv, members):
    """The documented utility, written out independently of the library."""
    classes = np.unique(y)
    const = {c: float(np.mean(yv == c)) for c in classes}  # accuracy of predicting c everywhere

    def U(S):
        if len(S) == 0:
            return float(np.mean(list(const.values())))
        idx = np.concatenate([members[p] for p in S])
        if np.unique(y[idx]).size == 1:
            return const[y[idx][0]]
        return float(clone(est).fit(X[idx], y[idx]).score(Xv, yv))

    return U


def _exact(U, n, weight):
    """sum over coalitions S not containing j of weight(|S|) * (U(S + j) - U(S))."""
    cache = {}

    def u(S):
        key = tuple(sorted(S))
        if key not in cache:
            cache[key] = U(list(key))
        return cache[key]

    values = np.zeros(n)
    for j in range(n):
        others = [p for p in range(n) if p != j]
        for k in range(n):
            for S in itertools.combinations(others, k):
                values[j] += weight(k) * (u(list(S) + [j]) - u(list(S)))
    return values


def shapley_w(n):
    return lambda k: 1.0 / (n * comb(n - 1, k))


def beta_w(n, a, b):
    # Kwon & Zou: coalition of size k weighs B(k + b, n - 1 - k + a) / B(a, b)
    return lambda k: beta_fn(k + b, n - 1 - k + a) / beta_fn(a, b)


def banzhaf_w(n):
    return lambda k: 1.0 / 2 ** (n - 1)


def _check_within_se(est, exact):
    err = np.abs(est.values_ - exact)
    assert np.all(err <= Z * est.stderr_ + 1e-12), (est.values_, exact, est.stderr_)
    # the test must be able to fail: the error bars are small next to the values themselves
    assert est.stderr_.max() < 0.25 * np.abs(exact).max()


@pytest.mark.parametrize("fast", [True, False], ids=["newton", "sklearn-fit"])
def test_tmc_shapley_matches_enumeration(fast):
    X, y, Xv, yv = _data()
    est = LogisticRegression(tol=1e-10, max_iter=10000)
    members = [np.array([i]) for i in range(7)]
    exact = _exact(_reference_utility(est, X, y, Xv, yv, members), 7, shapley_w(7))
    # one task per 600 permutations: its subset cache makes repeated coalitions free
    tmc = TMCShapley(est, max_iter=3000 if fast else 600, truncation_tol=0, tol=None,
                     batch_size=600, fast_utility=fast, random_state=0)
    tmc.fit(X, y, X_val=Xv, y_val=yv)
    assert tmc.fast_utility_ is fast
    _check_within_se(tmc, exact)
    # efficiency holds permutation by permutation: the values add up to U(N) - U(empty)
    assert tmc.values_.sum() == pytest.approx(tmc.utility_full_ - tmc.utility_empty_, abs=1e-12)


def test_library_enumeration_matches_reference():
    X, y, Xv, yv = _data(6, seed=3)
    est = DecisionTreeClassifier(max_depth=2, random_state=0)
    members = [np.array([i]) for i in range(6)]
    ref = _reference_utility(est, X, y, Xv, yv, members)
    util = SubsetUtility(est, X, y, Xv, yv)
    for kind, w, kw in [("shapley", shapley_w(6), {}), ("banzhaf", banzhaf_w(6), {}),
                        ("beta", beta_w(6, 4.0, 1.0), dict(alpha=4.0, beta=1.0))]:
        np.testing.assert_allclose(exact_semivalues(util, kind, **kw), _exact(ref, 6, w),
                                   atol=1e-12)


@pytest.mark.parametrize("fast", [True, False], ids=["newton", "sklearn-fit"])
def test_beta_shapley_matches_enumeration(fast):
    X, y, Xv, yv = _data(seed=1)
    est = LogisticRegression(C=2.0, tol=1e-10, max_iter=10000)
    members = [np.array([i]) for i in range(7)]
    exact = _exact(_reference_utility(est, X, y, Xv, yv, members), 7, beta_w(7, 4.0, 1.0))
    beta = BetaShapley(est, alpha=4.0, beta=1.0, max_iter=3000 if fast else 600,
                       truncation_tol=0, tol=None, batch_size=600, fast_utility=fast,
                       random_state=1)
    beta.fit(X, y, X_val=Xv, y_val=yv)
    _check_within_se(beta, exact)


@pytest.mark.parametrize("fast", [True, False], ids=["newton", "sklearn-fit"])
def test_banzhaf_msr_matches_enumeration(fast):
    X, y, Xv, yv = _data(seed=2)
    est = LogisticRegression(tol=1e-10, max_iter=10000)
    members = [np.array([i]) for i in range(7)]
    exact = _exact(_reference_utility(est, X, y, Xv, yv, members), 7, banzhaf_w(7))
    bz = BanzhafValuation(est, max_iter=20000 if fast else 3000, tol=None, fast_utility=fast,
                          batch_size=1000, random_state=2).fit(X, y, X_val=Xv, y_val=yv)
    _check_within_se(bz, exact)


@pytest.mark.parametrize("est", [DecisionTreeClassifier(max_depth=3, random_state=0),
                                 LogisticRegression(tol=1e-10, max_iter=10000)],
                         ids=["tree", "logistic-newton"])
def test_groups_match_enumeration_over_groups(est):
    X, y, Xv, yv = _data(n_train=12, seed=4)
    groups = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]) * 10
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    exact = _exact(_reference_utility(est, X, y, Xv, yv, members), 6, shapley_w(6))
    tmc = TMCShapley(est, max_iter=600, truncation_tol=0, tol=None, batch_size=300,
                     random_state=4).fit(X, y, X_val=Xv, y_val=yv, groups=groups)
    assert tmc.fast_utility_ is isinstance(est, LogisticRegression)
    np.testing.assert_array_equal(tmc.group_labels_, [0, 10, 20, 30, 40, 50])
    assert tmc.values_.shape == (6,)
    _check_within_se(tmc, exact)


@pytest.mark.parametrize("scoring", [None, "neg_brier_score", "neg_log_loss"])
def test_newton_utility_equals_sklearn_fits(scoring):
    X, y, Xv, yv = _data(n_train=40, seed=5)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, 40)
    est = LogisticRegression(C=0.7, tol=1e-12, max_iter=100000)
    util = SubsetUtility(est, X, y, Xv, yv, scoring=scoring, sample_weight=sw)
    from skinfluence.valuation._fast_logistic import _SCORERS

    fast = FastLogisticUtility(util, _SCORERS[scoring])
    masks = np.random.default_rng(1).random((25, 40)) < 0.3
    scores, n_fits = fast.subset_scores(masks)
    for m, s in zip(masks, scores):
        idx = np.flatnonzero(m)
        if np.unique(y[idx]).size < 2:
            continue
        model = clone(est).fit(X[idx], y[idx], sample_weight=sw[idx])
        if scoring is None:
            ref = model.score(Xv, yv)
        elif scoring == "neg_brier_score":
            ref = -brier_score_loss(yv, model.predict_proba(Xv)[:, 1])
        else:
            ref = -log_loss(yv, model.predict_proba(Xv))
        assert s == pytest.approx(ref, abs=1e-7)
    assert n_fits > 15


def test_single_class_and_empty_subsets():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    Xv = np.array([[0.2], [2.8], [3.1]])
    yv = np.array([0, 1, 1])
    util = SubsetUtility(LogisticRegression(), X, y, Xv, yv)
    assert util([0, 1]) == pytest.approx(1 / 3)  # constant predictor of class 0
    assert util([2]) == pytest.approx(2 / 3)
    assert util([]) == pytest.approx(0.5)  # mean of the constant predictors
    assert util.n_fits == 0
    assert SubsetUtility(LogisticRegression(), X, y, Xv, yv, empty_score=0.1)([]) == 0.1


def test_zero_weight_points_are_absent():
    # a subset whose points all have weight 0 is the empty set (sklearn refuses to fit
    # it); a zero-weight point is then a null player: value 0, the others' values those
    # of the game without it
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    X, Xv = rng.normal(size=(6, 2)), rng.normal(size=(30, 2))
    w = np.array([1.0, -2.0])
    y, yv = X @ w + 0.3 * rng.normal(size=6), Xv @ w + 0.3 * rng.normal(size=30)
    sw = np.array([1.0, 0.5, 0.0, 2.0, 1.0, 1.5])
    util = SubsetUtility(Ridge(), X, y, Xv, yv, sample_weight=sw)
    assert util([2]) == util([])
    values = exact_semivalues(util, "shapley")
    keep = sw > 0
    without = exact_semivalues(SubsetUtility(Ridge(), X[keep], y[keep], Xv, yv,
                                             sample_weight=sw[keep], empty_score=util([])),
                               "shapley")
    assert values[2] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(values[keep], without, atol=1e-12)
    tmc = TMCShapley(Ridge(), max_iter=30, tol=None, random_state=0)
    assert tmc.fit(X, y, X_val=Xv, y_val=yv, sample_weight=sw).values_[2] == pytest.approx(
        0.0, abs=1e-12)


def test_same_values_for_any_n_jobs_and_truncation_saves_fits():
    X, y, Xv, yv = _data(n_train=30, seed=6)
    kw = dict(max_iter=256, tol=None, random_state=0)
    one = TMCShapley(LogisticRegression(), n_jobs=1, **kw).fit(X, y, X_val=Xv, y_val=yv)
    two = TMCShapley(LogisticRegression(), n_jobs=2, **kw).fit(X, y, X_val=Xv, y_val=yv)
    np.testing.assert_array_equal(one.values_, two.values_)
    full = TMCShapley(LogisticRegression(), truncation_tol=0, **kw).fit(X, y, X_val=Xv, y_val=yv)
    assert one.n_fits_ < full.n_fits_
    assert one.n_iter_ == 256


def test_convergence_criterion_stops_early():
    X, y, Xv, yv = _data(n_train=10, seed=7)
    tmc = TMCShapley(LogisticRegression(), max_iter=200000, tol=0.5, rank_tol=0.05,
                     truncation_tol=0, random_state=0).fit(X, y, X_val=Xv, y_val=yv)
    assert tmc.converged_
    assert tmc.n_iter_ < 200000
    scale = abs(tmc.utility_full_ - tmc.utility_empty_) / 10
    assert tmc.stderr_.max() <= 0.5 * scale
    with pytest.warns(UserWarning, match="did not reach tol"):
        TMCShapley(LogisticRegression(), max_iter=8, tol=1e-6, random_state=0).fit(
            X, y, X_val=Xv, y_val=yv)


def test_non_convergence_warning_compares_like_with_like():
    # tol is relative to the value scale |U(N) - U(empty)| / n: the message gives that ratio
    X, y, Xv, yv = _data(n_train=10, seed=7)
    with pytest.warns(UserWarning, match="did not reach tol") as record:
        tmc = TMCShapley(LogisticRegression(), max_iter=8, tol=1e-6, random_state=0).fit(
            X, y, X_val=Xv, y_val=yv)
    msg = str(record[0].message)
    scale = abs(tmc.utility_full_ - tmc.utility_empty_) / 10
    se = tmc.stderr_.max()
    assert (f"largest standard error / value scale |U(N) - U(empty)| / n = {se:.3g} / "
            f"{scale:.3g} = {se / scale:.3g} > tol=1e-06") in msg
    # the rank criterion, when it is the one that failed, next to 1 - rank_tol
    with pytest.warns(UserWarning, match="did not reach tol") as record:
        tmc = TMCShapley(LogisticRegression(), max_iter=64, batch_size=4, tol=10.0,
                         rank_tol=0.0, random_state=0).fit(X, y, X_val=Xv, y_val=yv)
    msg = str(record[0].message)
    assert "<= tol=10.0" in msg
    assert "Spearman correlation with the values of the previous check = " in msg
    assert "< 1 - rank_tol = 1" in msg


def test_errors_and_error_score():
    X, y, Xv, yv = _data(n_train=10, seed=8)
    with pytest.raises(ValueError, match="needs a validation set"):
        TMCShapley(LogisticRegression()).fit(X, y)
    with pytest.raises(ValueError, match="groups must have shape"):
        TMCShapley(LogisticRegression()).fit(X, y, X_val=Xv, y_val=yv, groups=[0, 1])
    from sklearn.neighbors import KNeighborsClassifier

    # 3 neighbours cannot be fitted on two points: a clear error, or a fixed score on request
    with pytest.raises(RuntimeError, match="error_score"):
        TMCShapley(KNeighborsClassifier(3), max_iter=4, tol=None, truncation_tol=0,
                   random_state=0).fit(X, y, X_val=Xv, y_val=yv)
    with pytest.warns(RuntimeWarning, match="failed"):
        est = BanzhafValuation(KNeighborsClassifier(3), max_iter=64, tol=None, error_score=0.0,
                               random_state=0).fit(X, y, X_val=Xv, y_val=yv)
    assert est.n_failed_fits_ > 0
