"""Order-robust subtrees of the exact removal against scikit-learn's refits, and their bounds.

With integer-coded (tied) features and a float target, removing a row reorders the tied
samples of nodes whose samples did not change; their float sums then round otherwise.
Where every decision of such a subtree exceeds a proven bound on that rounding, the replay
takes the fitted subtree as it is (``ForestRemoval.robust``, ``_forest_kernels
._robust_walk``): its splits are the refit's, its leaf values the refit's up to rounding.
These tests compare that path with refits without the row (per tree on the same
bootstrap draws, or the whole model), with the bit-exact replay, and the rounding bounds
with exact rational arithmetic over many summation orders.
"""

from fractions import Fraction

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor
from sklearn.tree import DecisionTreeRegressor

from skinfluence import InfluenceFunctions
from skinfluence.trees import _forest_kernels as K
from skinfluence.trees._builder import (
    MSE,
    _children_impurity,
    _crit_init,
    _crit_update,
    _proxy,
    simulate_split,
)

X_REG, Y_REG = load_diabetes(return_X_y=True)


def _tied(n=120, n_test=30, seed=0):
    """Integer-coded features (every sort has ties), a float target with many zeros."""
    rs = np.random.RandomState(seed)
    idx = rs.permutation(len(Y_REG))
    X = np.round(X_REG[idx] * 25)[:, :8]
    y = Y_REG[idx] / 7.3 + rs.normal(0, 0.01, len(idx))
    y[rs.rand(len(y)) < 0.3] = 0.0  # zeros, as fair.csv's affairs
    return X[:n], y[:n], X[n:n + n_test]


def _tree_refits(forest, Xtr, ytr, Xte, j):
    """The forest refit without ``j`` on the same bootstrap draws, tree by tree."""
    preds = []
    for tree, idx in zip(forest.estimators_, forest.estimators_samples_):
        counts = np.bincount(idx, minlength=len(ytr)).astype(float)
        counts[j] = 0.0
        preds.append(clone(tree).fit(Xtr, ytr, sample_weight=counts).predict(Xte))
    return np.mean(preds, 0) - forest.predict(Xte)


def _both_paths(inf, Xte):
    """(robust, bit-exact) output changes; checks the robust path skipped nodes."""
    rem = inf._removal
    assert rem.robust is None and rem.ensemble.is_forest  # on by default for forests
    D = inf.transform(Xte)
    robust_nodes, evaluated = rem.robust_nodes.sum(), rem.evaluated.sum()
    rem.robust = False
    try:
        D0 = inf.transform(Xte)
    finally:
        rem.robust = None
    assert rem.robust_nodes.sum() == 0
    # the robust path took whole subtrees, and evaluated fewer nodes in full
    assert robust_nodes > 0 and evaluated < rem.evaluated.sum()
    return D, D0


# leaf values rounded in another order: a few ulps of the target (|y| < 50 here)
ATOL = 1e-12


@pytest.mark.parametrize("model", [
    RandomForestRegressor(5, min_samples_leaf=3, random_state=0),
    RandomForestRegressor(5, max_features=0.5, random_state=1),
    RandomForestRegressor(5, min_samples_leaf=2, min_impurity_decrease=0.05,
                          random_state=2),
])
def test_bootstrap_forest_is_the_refit_on_the_same_draws(model):
    Xtr, ytr, Xte = _tied()
    inf = InfluenceFunctions(model).fit(Xtr, ytr)
    assert all(r.mode & K.ROBUST for r in inf._removal.ensemble.records)
    D, D0 = _both_paths(inf, Xte)
    np.testing.assert_allclose(D, D0, rtol=0, atol=ATOL)
    for j in range(0, len(ytr), 7):
        np.testing.assert_allclose(D[:, j], _tree_refits(inf.estimator_, Xtr, ytr, Xte, j),
                                   rtol=0, atol=ATOL)


@pytest.mark.parametrize("max_features", [1.0, 0.6])
def test_forest_without_bootstrap_is_the_refit(max_features):
    Xtr, ytr, Xte = _tied(seed=1)
    model = RandomForestRegressor(4, bootstrap=False, max_features=max_features,
                                  min_samples_leaf=2, random_state=0)
    inf = InfluenceFunctions(model).fit(Xtr, ytr)
    D, _ = _both_paths(inf, Xte)
    base = inf.predict(Xte)
    for j in range(0, len(ytr), 9):
        sw = np.ones(len(ytr))
        sw[j] = 0.0
        refit = clone(model).fit(Xtr, ytr, sample_weight=sw)
        np.testing.assert_allclose(D[:, j], refit.predict(Xte) - base, rtol=0, atol=ATOL)
        deleted = clone(model).fit(np.delete(Xtr, j, 0), np.delete(ytr, j))
        np.testing.assert_allclose(D[:, j], deleted.predict(Xte) - base, rtol=0, atol=ATOL)


def test_single_tree_robust_on_request():
    # a single tree stays bit-exact by default; asked for, the robust path is its refit
    # to rounding, with the splits of the refit (the same structure flags)
    Xtr, ytr, Xte = _tied(seed=2)
    model = DecisionTreeRegressor(min_samples_leaf=2, random_state=0)
    inf = InfluenceFunctions(model).fit(Xtr, ytr)
    rem = inf._removal
    D0 = inf.transform(Xte)
    assert rem.robust_nodes.sum() == 0
    rem.robust = True
    D = inf.transform(Xte)
    assert rem.robust_nodes.sum() > 0
    for j in range(len(ytr)):
        sw = np.ones(len(ytr))
        sw[j] = 0.0
        refit = clone(model).fit(Xtr, ytr, sample_weight=sw)
        expected = refit.predict(Xte) - inf.predict(Xte)
        assert np.array_equal(D0[:, j], expected)
        np.testing.assert_allclose(D[:, j], expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("max_features", [1.0, 0.7])
def test_features_tied_with_each_other_fall_back(max_features):
    # a duplicated column gives every split on it a twin of margin 0: the subtree is not
    # taken as fitted (all features scored: refused when recorded; a subset: refused by
    # the walk when the draws score both), and the replay is the refit
    Xtr, ytr, Xte = _tied(seed=3)
    Xtr = np.column_stack([Xtr, Xtr[:, 2]])
    Xte = np.column_stack([Xte, Xte[:, 2]])
    model = RandomForestRegressor(4, min_samples_leaf=3, max_features=max_features,
                                  random_state=0)
    inf = InfluenceFunctions(model).fit(Xtr, ytr)
    ens = inf._removal.ensemble
    twins = 0
    for r in ens.records:
        ints = r.ints
        c_pos, c_val, c_best, c_node = r.cache
        for v in range(r.n_nodes):
            if ints[v, 0] < 0 or ints[v, 2] not in (2, 8):
                continue
            if c_pos[v, 2] < 0 or c_pos[v, 8] < 0:
                continue
            if max_features == 1.0:
                assert c_node[v, 4] == 0.0 and c_node[v, 5] == 0.0
                twins += 1
                continue
            # the draws of the node from the state it was entered with (its first nconst
            # features are the known constant ones): the walk's check at the node
            features = r.rec[1][v].copy()
            best, _, runner = simulate_split(features, features.copy(), r.rec[2][v],
                                             np.array([r.rec[0][v]]), ens.max_features,
                                             c_pos[v], c_val[v])
            # refused when both twins were scored: another pick from the cached proxies
            # (rounded otherwise), or the same pick within the bound of the runner-up
            twins += best != c_best[v] or not c_val[v, best, 0] - runner > c_node[v, 3]
    assert twins > 0
    D, _ = _both_paths(inf, Xte)
    for j in (0, 11, 40, 77):
        np.testing.assert_allclose(D[:, j], _tree_refits(inf.estimator_, Xtr, ytr, Xte, j),
                                   rtol=0, atol=ATOL)


# ----------------------------------------------------------------- the rounding bounds
def _exact_side(Y, w, idx):
    """Exact (Fraction) sums: per output sum of w y, sum of w y^2 over outputs, weight."""
    s = [sum(Fraction(w[i]) * Fraction(Y[i, k]) for i in idx) for k in range(Y.shape[1])]
    q = sum(Fraction(w[i]) * Fraction(Y[i, k]) ** 2 for i in idx for k in range(Y.shape[1]))
    return s, q, sum(Fraction(w[i]) for i in idx)


def _exact_proxy_and_impurities(Y, w, left, right):
    out = Fraction(0)
    imps = []
    for idx in (left, right):
        s, q, W = _exact_side(Y, w, idx)
        out += sum(x * x for x in s) / W
        imps.append((q / W - sum((x / W) ** 2 for x in s)) / Y.shape[1])
    return out, imps


def _scan(Y, w, order, n_out, entry):
    """scikit-learn's scan of one feature's thresholds in ``order`` (the replica's own
    criterion code), the node's sums formed in its ``entry`` order: the proxy and children
    impurities at every split position."""
    samples = np.asarray(order, dtype=np.intp)
    n = len(order)
    st, sl, sr = np.zeros((n_out, 1)), np.zeros((n_out, 1)), np.zeros((n_out, 1))
    nc = np.ones(n_out, dtype=np.intp)
    wn, sq = _crit_init(Y, w, np.asarray(entry, dtype=np.intp), 0, n, MSE, st)
    out = {}
    wl, pos = 0.0, 0
    for p in range(1, n):
        wl, wr = _crit_update(Y, w, samples, MSE, pos, p, n, st, sl, sr, wn, wl)
        pos = p
        proxy = _proxy(Y, w, samples, MSE, nc, 0, p, sl, sr, wl, wr)
        il, ir = _children_impurity(Y, w, samples, MSE, nc, 0, p, sl, sr, wl, wr, sq)
        out[p] = (proxy, il, ir)
    return out, sq


@pytest.mark.parametrize("case", range(4))
def test_rounding_bounds_hold_over_reorderings(case):
    rs = np.random.RandomState(case)
    worst_proxy = worst_imp = 0.0
    spread = 0.0
    for _ in range(12):
        m = rs.randint(4, 30)
        n_out = 1 + case % 2
        # large offsets and cancellation make the orders round differently
        Y = rs.normal(rs.choice([0.0, 40.0, -300.0]), rs.choice([0.01, 3.0]), (m, n_out))
        Y[rs.rand(m) < 0.3] = 0.0
        w = rs.randint(1, 4, m).astype(float)
        base = rs.permutation(m)
        e_proxy, q, t, m2 = K.node_bounds(Y, w, base.astype(np.intp), 0, m)
        # one partition per split position, visited in many orders within each side
        # (scikit-learn's sorted order keeps the sides; ties reorder inside them)
        for p in range(1, m):
            left, right = sorted(base[:p]), sorted(base[p:])
            exact, imps = _exact_proxy_and_impurities(Y, w, left, right)
            e_l = K.imp_bound(m, q, t, m2, float(w[left].sum()))
            e_r = K.imp_bound(m, q, t, m2, float(w[right].sum()))
            seen = []
            for _ in range(6):
                order = np.concatenate([rs.permutation(left), rs.permutation(right)])
                scan, _ = _scan(Y, w, order, n_out, rs.permutation(m))
                proxy, il, ir = scan[p]
                seen.append(proxy)
                worst_proxy = max(worst_proxy, abs(Fraction(proxy) - exact) / Fraction(e_proxy))
                for got, ex, e in ((il, imps[0], e_l), (ir, imps[1], e_r)):
                    worst_imp = max(worst_imp, abs(Fraction(got) - ex) / Fraction(e))
            spread = max(spread, max(seen) - min(seen))
    assert worst_proxy <= 1.0 and worst_imp <= 1.0, (worst_proxy, worst_imp)
    assert spread > 0.0  # the orders did round differently
    assert worst_proxy > 1e-3  # and came within a few hundred times the bound


def test_zero_left_child_is_a_leaf_in_any_order():
    # a left child whose targets are all 0 has impurity 0 / wl - (S_l / wl)^2 <= 0 however
    # S_l rounds (taken as robust); the right child's, (sq_total - sq_left) / wr - ...,
    # can round above EPSILON, so it is not
    rs = np.random.RandomState(7)
    above = 0
    for _ in range(300):
        m = rs.randint(4, 25)
        Y = np.round(rs.uniform(0.1, 50.0, (m, 1)), 6)
        zeros = rs.randint(1, m - 1)
        Y[:zeros] = 0.0
        w = rs.randint(1, 4, m).astype(float)
        for left_zero in (True, False):
            idx = np.arange(m) if left_zero else np.r_[zeros:m, :zeros]
            p = zeros if left_zero else m - zeros
            order = np.concatenate([rs.permutation(idx[:p]), rs.permutation(idx[p:])])
            scan, _ = _scan(Y, w, order, 1, rs.permutation(m))
            il, ir = scan[p][1:]
            if left_zero:
                assert il <= 0.0
            else:
                above += ir > np.finfo(float).eps
    assert above > 0  # scikit-learn's own refit may split such a right child
