"""InfluenceFunctions on trees and forests against scikit-learn's own refits without a point."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from skinfluence import InfluenceFunctions

EPS = np.finfo(np.float64).eps
X_REG, Y_REG = load_diabetes(return_X_y=True)
X_CLF, Y_CLF = load_breast_cancer(return_X_y=True)
X_IRIS, Y_IRIS = load_iris(return_X_y=True)


def _split(X, y, n=120, n_test=40, seed=0):
    idx = np.random.RandomState(seed).permutation(len(y))
    return X[idx[:n]], y[idx[:n]], X[idx[n:n + n_test]], y[idx[n:n + n_test]]


def _loss(model, X, y):
    if hasattr(model, "predict_proba"):
        P = model.predict_proba(X)
        codes = np.searchsorted(model.classes_, y)
        return -np.log(np.clip(P[np.arange(len(y)), codes], EPS, 1 - EPS))
    return 0.5 * (model.predict(X) - y) ** 2


def _refit_without(model, X, y, j, sample_weight=None):
    sw = np.ones(len(y)) if sample_weight is None else sample_weight.copy()
    sw[j] = 0.0
    return clone(model).fit(X, y, sample_weight=sw)


DETERMINISTIC = [
    ("reg", DecisionTreeRegressor(random_state=0)),
    ("reg", DecisionTreeRegressor(min_samples_leaf=4, max_depth=6, random_state=3)),
    ("clf", DecisionTreeClassifier(random_state=0)),
    ("clf", DecisionTreeClassifier(criterion="entropy", min_samples_leaf=3, random_state=1)),
    ("iris", DecisionTreeClassifier(random_state=2)),
    ("reg", RandomForestRegressor(6, bootstrap=False, max_features=1.0, min_samples_leaf=3,
                                  random_state=0)),
    ("clf", RandomForestClassifier(6, bootstrap=False, max_features=None, random_state=0)),
]
# bootstrap=False but random feature subsets / thresholds: with the forest's random_state
# fixed, scikit-learn's refit draws the same streams, so the replay is its refit too
SAME_SEED = [
    ("clf", RandomForestClassifier(6, bootstrap=False, random_state=0)),
    ("reg", ExtraTreesRegressor(6, min_samples_leaf=2, random_state=0)),
    ("clf", ExtraTreesClassifier(6, random_state=1)),
]


def _data(task):
    if task == "reg":
        return _split(X_REG, Y_REG)
    if task == "iris":
        return _split(X_IRIS, Y_IRIS, n=100)
    return _split(X_CLF, Y_CLF)


@pytest.mark.parametrize("task, model", DETERMINISTIC + SAME_SEED)
def test_exact_removal_is_sklearn_refit(task, model):
    Xtr, ytr, Xte, yte = _data(task)
    inf = InfluenceFunctions(model).fit(Xtr, ytr)
    assert inf.approximation_ == "exact"
    T = inf.transform(Xte, yte)
    loss0 = _loss(inf.estimator_, Xte, yte)
    n_changed = 0
    for j in range(0, len(ytr), 3):
        refit = _refit_without(model, Xtr, ytr, j)
        expected = _loss(refit, Xte, yte) - loss0
        np.testing.assert_allclose(T[:, j], expected, rtol=1e-10, atol=1e-12)
        n_changed += not np.array_equal(refit.predict(Xte), inf.predict(Xte))
    assert n_changed > 0  # the removals do move predictions


@pytest.mark.parametrize("task, model", DETERMINISTIC[:3] + SAME_SEED[:1])
def test_prediction_change_and_self_influence_are_refits(task, model):
    Xtr, ytr, Xte, _ = _data(task)
    inf = InfluenceFunctions(model).fit(Xtr, ytr)
    D = inf.transform(Xte)  # output change: prediction, or P(positive class)
    si = inf.self_influence_
    for j in range(0, len(ytr), 7):
        refit = _refit_without(model, Xtr, ytr, j)
        if task == "reg":
            expected = refit.predict(Xte) - inf.predict(Xte)
        else:
            expected = refit.predict_proba(Xte)[:, 1] - inf.predict_proba(Xte)[:, 1]
        np.testing.assert_allclose(D[:, j], expected, rtol=1e-10, atol=1e-12)
        own = _loss(refit, Xtr[j:j + 1], ytr[j:j + 1]) - _loss(inf.estimator_, Xtr[j:j + 1],
                                                               ytr[j:j + 1])
        np.testing.assert_allclose(si[j], own[0], rtol=1e-10, atol=1e-12)
    if task == "clf":
        P = inf.loo_predict_proba()
        refit = _refit_without(model, Xtr, ytr, 5)
        np.testing.assert_allclose(P[5], refit.predict_proba(Xtr[5:6])[0], atol=1e-12)


def test_bootstrap_forest_is_the_refit_on_the_same_draws():
    Xtr, ytr, Xte, yte = _split(X_REG, Y_REG, n=100, n_test=20)
    forest = RandomForestRegressor(5, min_samples_leaf=2, random_state=0).fit(Xtr, ytr)
    inf = InfluenceFunctions(FrozenEstimator(forest)).fit(Xtr, ytr)
    D = inf.transform(Xte)
    for j in (0, 17, 55):
        preds = []
        for tree, idx in zip(forest.estimators_, forest.estimators_samples_):
            counts = np.bincount(idx, minlength=len(ytr)).astype(float)
            counts[j] = 0.0
            preds.append(clone(tree).fit(Xtr, ytr, sample_weight=counts).predict(Xte))
        np.testing.assert_allclose(D[:, j], np.mean(preds, 0) - forest.predict(Xte),
                                   rtol=1e-10, atol=1e-10)


def test_weights_class_weights_and_pipeline():
    Xtr, ytr, Xte, yte = _split(X_CLF, Y_CLF, n=100, n_test=20)
    w = np.random.RandomState(0).randint(1, 4, len(ytr)).astype(float)
    model = make_pipeline(StandardScaler(), DecisionTreeClassifier(
        class_weight={0: 1.5, 1: 1.0}, min_samples_leaf=2, random_state=0))
    inf = InfluenceFunctions(FrozenEstimator(clone(model).fit(
        Xtr, ytr, decisiontreeclassifier__sample_weight=w))).fit(Xtr, ytr, sample_weight=w)
    T = inf.transform(Xte, yte)
    loss0 = _loss(inf.estimator_, Xte, yte)
    for j in (1, 30, 64):
        sw = w.copy()
        sw[j] = 0.0
        refit = clone(model).fit(Xtr, ytr, decisiontreeclassifier__sample_weight=sw)
        np.testing.assert_allclose(T[:, j], _loss(refit, Xte, yte) - loss0, atol=1e-12)


def test_explain_matches_transform():
    Xtr, ytr, Xte, yte = _split(X_REG, Y_REG)
    inf = InfluenceFunctions(DecisionTreeRegressor(min_samples_leaf=3, random_state=0),
                             n_jobs=2).fit(Xtr, ytr)
    T = inf.transform(Xte[:5], yte[:5])
    top = inf.explain(Xte[:5], yte[:5], k=4)
    assert set(top) == {"helpful_indices", "helpful_values", "harmful_indices",
                        "harmful_values"}
    np.testing.assert_allclose(top.helpful_values, -np.sort(-T, axis=1)[:, :4])
    np.testing.assert_allclose(top.harmful_values, np.sort(T, axis=1)[:, :4])
    np.testing.assert_allclose(np.take_along_axis(T, top.helpful_indices, 1),
                               top.helpful_values)


def test_explain_the_same_on_any_number_of_threads():
    """Forests give many equal influences (rows that share no leaf with the query); their
    order in explain must not follow the thread count."""
    X, y = load_iris(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=10, random_state=0)
    tops = [InfluenceFunctions(forest, n_jobs=n_jobs).fit(X, y).explain(X[60:80], k=12)
            for n_jobs in (1, 2)]
    for key in tops[0]:
        np.testing.assert_array_equal(tops[0][key], tops[1][key])
    values = tops[0].harmful_values
    assert any(len(set(row)) < len(row) for row in values)  # ties are exercised


def _leaf_refit(tree, X, y, w, j, Xq):
    """Fixed structure by brute force: the same splits, leaf values recomputed without j."""
    sw = w.copy()
    sw[j] = 0.0
    leaves_tr, leaves_q = tree.apply(X.astype(np.float32)), tree.apply(Xq.astype(np.float32))
    out = tree.predict(Xq).astype(float)
    mask = leaves_q == leaves_tr[j]
    keep = (leaves_tr == leaves_tr[j]) & (sw > 0)
    if keep.any():
        out[mask] = np.average(y[keep], weights=sw[keep])
    return out


def test_fixed_structure_is_leaf_recomputation():
    Xtr, ytr, Xte, yte = _split(X_REG, Y_REG)
    tree = DecisionTreeRegressor(min_samples_leaf=3, random_state=0).fit(Xtr, ytr)
    inf = InfluenceFunctions(tree, approximation="fixed_structure").fit(Xtr, ytr)
    D = inf.transform(Xte)
    for j in range(0, len(ytr), 5):
        expected = _leaf_refit(inf.estimator_, Xtr, ytr, np.ones(len(ytr)), j, Xte)
        np.testing.assert_allclose(D[:, j], expected - inf.predict(Xte), atol=1e-9)


def test_approximation_errors_are_clear():
    Xtr, ytr, _, _ = _split(X_CLF, Y_CLF, n=60)
    with pytest.raises(ValueError, match="for trees and forests use"):
        InfluenceFunctions(DecisionTreeClassifier(random_state=0),
                           approximation="newton").fit(Xtr, ytr)
    with pytest.raises(ValueError, match="applies to trees and forests only"):
        InfluenceFunctions(LogisticRegression(), approximation="exact").fit(Xtr, ytr)
    inf = InfluenceFunctions(DecisionTreeClassifier(random_state=0)).fit(Xtr, ytr)
    with pytest.raises(TypeError, match="no parameter vector"):
        inf.parameter_changes()
    with pytest.raises(NotImplementedError, match="monotonic_cst"):
        InfluenceFunctions(DecisionTreeClassifier(monotonic_cst=[1] + [0] * 29)).fit(Xtr, ytr)


def test_unseeded_tree_whose_ties_did_not_matter_is_its_refit():
    # random_state=None is accepted when the tree regrown with a known stream is the
    # fitted one node for node.  (Fitted with a seed, then unseeded, so that the test is
    # deterministic: the reader sees random_state=None.)
    Xtr, ytr, Xte, yte = _split(X_REG, Y_REG)
    model = DecisionTreeRegressor(max_depth=3, min_samples_leaf=5, random_state=5)
    fitted = model.fit(Xtr, ytr).set_params(random_state=None)
    inf = InfluenceFunctions(FrozenEstimator(fitted)).fit(Xtr, ytr)
    T = inf.transform(Xte, yte)
    loss0 = _loss(fitted, Xte, yte)
    checked = 0
    for j in range(0, len(ytr), 6):
        # scikit-learn's refit without j, with two streams: where they agree, no tie
        # decided it, and the refit of the unseeded tree is defined
        a, b = (_refit_without(clone(model).set_params(random_state=s), Xtr, ytr, j)
                for s in (1, 2))
        if not np.array_equal(a.predict(Xte), b.predict(Xte)):
            continue
        np.testing.assert_allclose(T[:, j], _loss(a, Xte, yte) - loss0, rtol=1e-10,
                                   atol=1e-12)
        checked += 1
    assert checked >= 15


def test_unseeded_tree_whose_ties_mattered_says_what_to_do():
    Xtr, ytr, Xte, yte = _split(X_CLF, Y_CLF, n=200)
    model = DecisionTreeClassifier(max_features=0.5, random_state=None)
    with pytest.raises(ValueError, match=r"random_state=None: scikit-learn took the choice "
                       r"between equally good splits, the feature subsets \(max_features=15\)"
                       r".*integer random_state.*DecisionTreeClassifier\(\.\.\., "
                       r"random_state=0\).*'fixed_structure'"):
        InfluenceFunctions(model).fit(Xtr, ytr)
    # the fitted tree as it is: its splits kept, only leaf values recomputed
    inf = InfluenceFunctions(model, approximation="fixed_structure").fit(Xtr, ytr)
    assert inf.transform(Xte, yte).shape == (len(yte), 200)
