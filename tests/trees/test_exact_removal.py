"""The exact removal of a point from trees with pruning against scikit-learn's own refits.

At each node that lost the point (or kept its samples in another order) the replay skips the
features whose cached best proxy, plus a bound on how much a proxy can rise without the
point, stays below the original split feature's new best (``_forest_kernels._prunable``).
These tests compare the pruned replay with refits without the point, with the unpruned
replay (the same numbers, bit for bit), and the bounds with brute force.
"""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from skinfluence import InfluenceFunctions
from skinfluence.trees import _forest_kernels as K
from skinfluence.trees._builder import ENTROPY, GINI, MSE

X_REG, Y_REG = load_diabetes(return_X_y=True)
X_CLF, Y_CLF = load_breast_cancer(return_X_y=True)


def _reg(n=90, n_test=25):
    idx = np.random.RandomState(0).permutation(len(Y_REG))
    X = X_REG[idx].copy()
    X[:, :4] = np.round(X[:, :4], 2)  # ties within some features (column 1 has two values)
    y = Y_REG[idx] / 7.3 + np.random.RandomState(1).normal(0, 0.01, len(idx))  # floats
    y[::5] = y[0]  # and ties in the target
    return X[:n], y[:n], X[n:n + n_test]


def _clf(n=90, n_test=25):
    idx = np.random.RandomState(2).permutation(len(Y_CLF))
    X = np.round(X_CLF[idx][:, :8], 1)
    return X[:n], Y_CLF[idx][:n], X[n:n + n_test]


def _output(model, X):
    return model.predict_proba(X)[:, 1] if hasattr(model, "predict_proba") else model.predict(X)


def _pruned_and_unpruned(inf, Xte):
    """Output changes (n_test, n_train) with and without pruning; checks they are equal."""
    rem = inf._removal
    D = inf.transform(Xte)
    pruned = rem.pruned.copy()
    rem.prune = False
    try:
        D0 = inf.transform(Xte)
    finally:
        rem.prune = True
    assert np.array_equal(D, D0)  # bit for bit
    assert pruned.sum() > 0 and rem.pruned.sum() == 0  # the bounds did skip features
    return D


FLOAT_REG = [
    DecisionTreeRegressor(min_samples_leaf=2, random_state=0),
    DecisionTreeRegressor(max_depth=4, random_state=1),
    RandomForestRegressor(4, bootstrap=False, max_features=1.0, random_state=0),
    # a feature subset at each node: scikit-learn's refit draws the same stream
    RandomForestRegressor(4, bootstrap=False, max_features=0.5, min_samples_leaf=3,
                          random_state=0),
]


@pytest.mark.parametrize("model", FLOAT_REG)
def test_float_target_regression_is_the_refit(model):
    Xtr, ytr, Xte = _reg()
    inf = InfluenceFunctions(model).fit(Xtr, ytr)
    # float targets: sums round by order, so the replay keeps scikit-learn's sample order
    assert all(r.mode & K.EXACT_SUMS == 0 and r.mode & K.PRUNE for r in
               inf._removal.ensemble.records)
    D = _pruned_and_unpruned(inf, Xte)
    base = inf.predict(Xte)
    single = isinstance(model, DecisionTreeRegressor)
    for j in range(0, len(ytr), 2 if single else 6):
        sw = np.ones(len(ytr))
        sw[j] = 0.0
        expected = clone(model).fit(Xtr, ytr, sample_weight=sw).predict(Xte) - base
        if single:  # a leaf's value, as scikit-learn stores it: equal to the bit
            assert np.array_equal(D[:, j], expected)
        else:  # the mean over trees is summed in another order
            np.testing.assert_allclose(D[:, j], expected, rtol=1e-12, atol=1e-12)


def test_row_deleted_is_the_refit():
    Xtr, ytr, Xte = _reg()
    model = DecisionTreeRegressor(min_samples_leaf=3, random_state=0)
    inf = InfluenceFunctions(model).fit(Xtr, ytr)
    D = _pruned_and_unpruned(inf, Xte)
    for j in (0, 7, 31, 64, 89):
        refit = clone(model).fit(np.delete(Xtr, j, 0), np.delete(ytr, j))
        assert np.array_equal(D[:, j], refit.predict(Xte) - inf.predict(Xte))


def test_multi_output_regression():
    Xtr, ytr, Xte = _reg()
    Y = np.column_stack([ytr, np.sin(ytr)])
    model = DecisionTreeRegressor(min_samples_leaf=2, random_state=0)
    inf = InfluenceFunctions(model).fit(Xtr, Y)
    rem = inf._removal
    sel = np.zeros((len(Xte), 2, 1), dtype=np.intp)
    Xf = inf.objective_.features(Xte)
    js = np.arange(len(ytr))
    D = rem.deltas(Xf, sel, js)[:, :, :, 0]
    assert rem.pruned.sum() > 0
    rem.prune = False
    assert np.array_equal(D, rem.deltas(Xf, sel, js)[:, :, :, 0])
    for j in range(0, len(ytr), 4):
        sw = np.ones(len(ytr))
        sw[j] = 0.0
        expected = clone(model).fit(Xtr, Y, sample_weight=sw).predict(Xte) - inf.predict(Xte)
        assert np.array_equal(D[j], expected)


CLASSIFIERS = [
    DecisionTreeClassifier(random_state=0),
    DecisionTreeClassifier(criterion="entropy", min_samples_leaf=2, random_state=0),
    # non-integer weights: Gini sums round by order too
    DecisionTreeClassifier(class_weight={0: 1.7, 1: 1.0}, max_depth=6, random_state=0),
    RandomForestClassifier(4, bootstrap=False, max_features="sqrt", random_state=0),
]


@pytest.mark.parametrize("model", CLASSIFIERS)
def test_classifiers_are_the_refit(model):
    Xtr, ytr, Xte = _clf()
    inf = InfluenceFunctions(model).fit(Xtr, ytr)
    D = _pruned_and_unpruned(inf, Xte)
    base = _output(inf, Xte)
    for j in range(0, len(ytr), 3):
        sw = np.ones(len(ytr))
        sw[j] = 0.0
        refit = clone(model).fit(Xtr, ytr, sample_weight=sw)
        np.testing.assert_allclose(D[:, j], _output(refit, Xte) - base, rtol=1e-12,
                                   atol=1e-14)


@pytest.mark.parametrize("model", [
    RandomForestRegressor(5, min_samples_leaf=2, random_state=0),
    RandomForestClassifier(5, criterion="entropy", random_state=0),
])
def test_bootstrap_pruned_equals_unpruned(model):
    # each tree regrown without j on its own draws (see test_forest_influence for the refits)
    Xtr, ytr, Xte = _reg() if isinstance(model, RandomForestRegressor) else _clf()
    _pruned_and_unpruned(InfluenceFunctions(model).fit(Xtr, ytr), Xte)


def _proxies(Y, w, order, crit, n_classes):
    """scikit-learn's proxy of every split of ``order`` into a prefix and the rest."""
    out = []
    for p in range(1, len(order)):
        total = 0.0
        for side in (order[:p], order[p:]):
            ws = w[side]
            W = ws.sum()
            if crit == MSE:
                total += sum((ws @ Y[side, k]) ** 2 for k in range(Y.shape[1])) / W
                continue
            imp = 0.0
            for k in range(Y.shape[1]):
                counts = np.bincount(Y[side, k].astype(int), weights=ws,
                                     minlength=n_classes)
                f = counts[counts > 0] / W
                imp += 1 - (f ** 2).sum() if crit == GINI else -(f * np.log2(f)).sum()
            total -= W * imp / Y.shape[1]
        out.append(total)
    return np.array(out)


@pytest.mark.parametrize("crit", [MSE, GINI, ENTROPY])
def test_removal_margin_bounds_every_split(crit):
    rs = np.random.RandomState(0)
    worst = 0.0
    for _ in range(300):
        m = rs.randint(3, 12)
        n_out = rs.randint(1, 3)
        if crit == MSE:
            Y = rs.normal(rs.choice([0.0, 50.0]), rs.choice([0.1, 10.0]), (m, n_out))
        else:
            Y = rs.randint(0, 3, (m, n_out)).astype(float)
        w = rs.randint(1, 4, m).astype(float) * rs.choice([1.0, 0.37])
        j = rs.randint(m)
        order = rs.permutation(m)
        rest = order[order != j]
        sq = float(np.sum(w[rest, None] * Y[rest] ** 2))
        with_j = _proxies(Y, w, order, crit, 3)
        without = _proxies(Y, w, rest, crit, 3)
        # the prefix split of `rest` at p is the split of `order` with j on its side
        at = int(np.flatnonzero(order == j)[0])
        for p in range(1, len(rest)):
            q = p + 1 if at < p + 1 else p  # same prefix of the other samples
            if q >= m:
                continue
            samples = rest.astype(np.intp)
            margin = K._removal_margin(Y, samples, 0, len(rest), crit, w[rest].sum(), sq,
                                       w[j], j, without[p - 1])
            rise = without[p - 1] - with_j[q - 1]
            assert rise <= margin, (rise, margin)
            worst = max(worst, rise / margin if margin > 0 else 0.0)
    assert worst > 0.05  # the cases do come near the bound


@pytest.mark.parametrize("seed", [0, 3, 5])
def test_copied_subtree_needs_the_same_impurity(seed):
    # Every feature tied and float targets: a node keeps its samples (and their order) but
    # its impurity, formed from its parent's sums without j, rounds otherwise; scikit-learn
    # then stops at a node the original tree split, so the subtree is not copied.
    Xtr, ytr, Xte = _reg()
    Xtr = np.round(Xtr, 2)
    model = DecisionTreeRegressor(random_state=seed)
    inf = InfluenceFunctions(model).fit(Xtr, ytr)
    D = inf.transform(Xtr)
    for j in range(len(ytr)):
        sw = np.ones(len(ytr))
        sw[j] = 0.0
        refit = clone(model).fit(Xtr, ytr, sample_weight=sw)
        assert np.array_equal(D[:, j], refit.predict(Xtr) - inf.predict(Xtr)), j
