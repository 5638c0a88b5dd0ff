"""InfluenceFunctions on HistGradientBoosting: leaf refits, LeafInfluence and BoostIn.

The fixed-structure refit is checked against scikit-learn's own refits on data whose
tree structure cannot change (two binary features, depth-2 trees: every tree splits the
same four cells); its first-order form against finite differences of the refit, and the
forward and backward passes of that derivative against each other.
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skinfluence import InfluenceFunctions
from skinfluence.trees import _boosting_kernels as kernels
from skinfluence.trees._hgb import BoostedModel

R, C = HistGradientBoostingRegressor, HistGradientBoostingClassifier


def _link_proba(z, K):
    """Probabilities of raw outputs ``z`` (n, K): the sigmoid for one output, else the
    softmax."""
    if K == 1:
        return 1 / (1 + np.exp(-z))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass"])
def test_leaf_refit_equals_scikit_learn_refits_when_the_structure_holds(kind, cells,
                                                                        same_partitions):
    # (the assertion below checks the premise: no refit changes a partition)
    X, y = cells(n=200 if kind == "multiclass" else 120, kind=kind)
    make = (R if kind == "regression" else C)
    params = dict(max_iter=15, max_depth=2, min_samples_leaf=2, learning_rate=0.3)
    Xq, yq = cells(n=40, kind=kind, seed=1)
    inf = InfluenceFunctions(make(**params), approximation="leaf_refit").fit(X, y)
    model = inf.objective_
    T = inf.transform(Xq, yq)
    base = model.loss_from_outputs(model.outputs(Xq), model.encode_target(yq))
    for j in range(0, len(y), 7):
        keep = np.arange(len(y)) != j
        refit = make(**params).fit(X[keep], y[keep])
        m2 = BoostedModel(refit)
        assert same_partitions(model.apply(X[keep]), m2.apply(X[keep]))
        actual = m2.loss_from_outputs(m2.outputs(Xq), model.encode_target(yq)) - base
        # float32 gradients in scikit-learn's refit: agreement to their rounding
        np.testing.assert_allclose(T[:, j], actual, rtol=1e-4, atol=1e-6 * np.abs(T).max())


def _finite_difference(model, rem, j, delta=1e-5):
    """Central difference of the refit leaf values in point j's weight, times -w_j."""
    out = []
    for sign in (1, -1):
        w = rem.w.copy()
        w[j] *= 1 + sign * delta
        F = np.tile(model.intercept(rem.y, w), (rem.y.size, 1))
        vals = np.empty(model.n_leaves)
        kernels.refit_leaf_values(model.loss, rem.y, w, rem.leaves, F, model.leaf_start,
                                  model.fixed_zero, model.n_iter, model.learning_rate,
                                  model.l2_regularization, False, vals)
        out.append(np.concatenate([model.intercept(rem.y, w), vals]))
    return -(out[0] - out[1]) / (2 * delta)


@pytest.mark.parametrize("case", ["squared_error", "poisson", "binary", "multiclass"])
def test_leaf_influence_is_the_derivative_of_the_refit(case, cells):
    Xd, yd = load_diabetes(return_X_y=True)
    if case in ("squared_error", "poisson"):
        est, X, y = R(loss=case, max_iter=15, l2_regularization=0.5), Xd[:150], yd[:150]
    else:
        X, y = cells(n=150, kind=case)
        X = X + np.random.RandomState(0).normal(scale=0.3, size=X.shape)
        est = C(max_iter=12, max_leaf_nodes=5, learning_rate=0.3)
    w = np.random.RandomState(2).uniform(0.5, 2.0, len(y))
    inf = InfluenceFunctions(est, approximation="leaf_influence").fit(X, y, sample_weight=w)
    rem, model = inf._removal, inf.objective_
    js = [0, 17, 63, 101]
    pred = inf.parameter_changes(js)
    for c, j in enumerate(js):
        fd = _finite_difference(model, rem, j)
        np.testing.assert_allclose(pred[:, c], fd, rtol=1e-5, atol=1e-7 * np.abs(fd).max())


@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass"])
def test_forward_and_backward_leaf_influence_agree(kind, cells):
    X, y = cells(n=150, kind=kind)
    X = X + np.random.RandomState(0).normal(scale=0.3, size=X.shape)
    est = (R if kind == "regression" else C)(max_iter=10, max_leaf_nodes=6)
    inf = InfluenceFunctions(est, approximation="leaf_influence").fit(X, y)
    rem = inf._removal
    Xf, Z0, y_enc = inf._queries(X[:20], y[:20])
    q = inf.objective_.apply(Xf)
    for yy in (y_enc, None):
        forward = rem._column_block(q, Z0, yy, slice(0, len(y)))
        backward = rem._row_block(q, Z0, yy)
        np.testing.assert_allclose(backward, forward, rtol=1e-9,
                                   atol=1e-12 * np.abs(forward).max())


def test_boostin_is_the_trajectory_sum(cells):
    # Brophy et al. (2023): sum over trees sharing the query's leaf of the query's
    # gradient at that iteration times the leaf's change through j's own gradient
    X, y = cells(n=80, kind="binary")
    X = X + np.random.RandomState(0).normal(scale=0.3, size=X.shape)
    inf = InfluenceFunctions(C(max_iter=6, max_leaf_nodes=4, l2_regularization=0.3,
                               learning_rate=0.5), approximation="boostin").fit(X, y)
    model, rem = inf.objective_, inf._removal
    T = inf.transform(X[:10], y[:10])
    lq, lt = model.apply(X[:10]), model.apply(X)
    p = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    zq, zt = np.full(10, model.baseline[0]), np.full(80, model.baseline[0])
    W = y.size
    ybar = y.mean()
    # the baseline (log-odds of the mean) moves by -(y_j - ybar) / (n ybar (1 - ybar))
    expected = np.outer(p(zq) - y[:10], -(y - ybar) / (W * ybar * (1 - ybar)))
    for s in range(model.n_trees):
        g, h = p(zt) - y, p(zt) * (1 - p(zt))
        for leaf in np.unique(lt[s]):
            members = lt[s] == leaf
            v = model.values[leaf]
            dv = (model.learning_rate * g + v * h) / (h[members].sum() + 0.3)
            for e in np.flatnonzero(lq[s] == leaf):
                expected[e, members] += (p(zq[e]) - y[e]) * dv[members]
        zq, zt = zq + model.values[lq[s]], zt + model.values[lt[s]]
    np.testing.assert_allclose(T, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("approximation", ["leaf_refit", "leaf_influence", "boostin"])
def test_explain_self_influence_and_loo_agree_with_transform(approximation):
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:120], y[:120]
    inf = InfluenceFunctions(C(max_iter=8, max_leaf_nodes=5),
                             approximation=approximation).fit(X, y)
    T = inf.transform(X, y)
    np.testing.assert_allclose(np.diag(T), inf.self_influence_, rtol=1e-6, atol=1e-10)
    top = inf.explain(X[:5], y[:5], k=4)
    np.testing.assert_array_equal(top.helpful_indices, np.argsort(-T[:5], axis=1)[:, :4])
    np.testing.assert_allclose(top.harmful_values, np.sort(T[:5], axis=1)[:, :4])
    loo = inf.loo_predict_proba()
    assert loo.shape == (120, 2) and np.allclose(loo.sum(axis=1), 1)


def test_early_stopping_validation_rows_have_no_influence():
    X, y = load_breast_cancer(return_X_y=True)
    est = C(max_iter=100, early_stopping=True, validation_fraction=0.25, n_iter_no_change=2,
            random_state=0)
    inf = InfluenceFunctions(est).fit(X, y)
    held_out = inf.objective_.row_position < 0
    assert held_out.sum() == np.ceil(0.25 * len(y))
    T = inf.transform(X[:30], y[:30])
    assert T.shape == (30, len(y))
    assert np.all(T[:, held_out] == 0) and np.any(T[:, ~held_out] != 0)
    assert np.all(inf.self_influence_[held_out] == 0)


def test_pipeline_frozen_and_categorical_missing():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    X[:, 1] = rng.randint(0, 4, 200)
    X[rng.rand(200) < 0.1, 0] = np.nan
    y = np.nan_to_num(X[:, 0]) + X[:, 1] + rng.normal(size=200)
    hgb = R(max_iter=10, categorical_features=[1])
    pipe = make_pipeline(FunctionTransformer(), hgb).fit(X, y)
    a = InfluenceFunctions(pipe).fit(X, y).transform(X[:7], y[:7])
    b = InfluenceFunctions(FrozenEstimator(pipe)).fit(X, y).transform(X[:7], y[:7])
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all()
    # the output change without y: the prediction's
    inf = InfluenceFunctions(hgb, approximation="leaf_refit").fit(X, y)
    dz = inf.transform(X[:7])
    assert dz.shape == (7, 200) and np.isfinite(dz).all()


def test_errors_name_the_approximations():
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(ValueError, match="leaf_influence"):
        InfluenceFunctions(C(max_iter=3), approximation="newton").fit(X, y)
    with pytest.raises(ValueError, match="gradient-boosted"):
        InfluenceFunctions(LogisticRegression(), approximation="boostin").fit(X, y)
    with pytest.raises(ValueError, match="monotonic_cst"):
        InfluenceFunctions(C(max_iter=3, monotonic_cst=[1] + [0] * 29)).fit(X, y)
    inf = InfluenceFunctions(C(max_iter=3), approximation="boostin").fit(X, y)
    with pytest.raises(ValueError, match="parameter changes"):
        inf.parameter_changes([0])


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_boostin_final_is_the_loss_at_the_summed_leaf_changes(kind, cells):
    # each tree's direct leaf change (j's own gradient and Hessian, as in boostin) and the
    # baseline's, summed over the trees the query shares with j, then the exact loss
    X, y = cells(n=90, kind=kind)
    X = X + np.random.RandomState(0).normal(scale=0.3, size=X.shape)
    inf = InfluenceFunctions(C(max_iter=6, max_leaf_nodes=4, l2_regularization=0.3,
                               learning_rate=0.5), approximation="boostin_final").fit(X, y)
    model = inf.objective_
    T = inf.transform(X[:10], y[:10])
    K, lam, lr = model.n_outputs, 0.3, model.learning_rate
    lq, lt = model.apply(X[:10]), model.apply(X)
    Y = np.eye(max(K, 2))[y][:, -K:] if K > 1 else y[:, None].astype(float)
    zt = np.tile(model.baseline, (len(y), 1))
    D = np.zeros((10, K, len(y)))
    ybar = Y.mean(axis=0)
    if K == 1:  # the baseline: log-odds of the mean
        D += (-(Y - ybar) / (len(y) * ybar * (1 - ybar))).T[None]
    else:  # symmetric log of the class shares
        d = -(Y - ybar) / (len(y) * ybar)
        D += (d - d.mean(axis=1, keepdims=True)).T[None]
    for t in range(model.n_iter):
        p = _link_proba(zt, K)
        g, h = p - Y, p * (1 - p)
        for k in range(K):
            s = t * K + k
            for leaf in np.unique(lt[s]):
                members = lt[s] == leaf
                v = model.values[leaf]
                dv = (lr * g[:, k] + v * h[:, k]) / (h[members, k].sum() + lam)
                for e in np.flatnonzero(lq[s] == leaf):
                    D[e, k, members] += dv[members]
        for k in range(K):
            zt[:, k] += model.values[lt[t * K + k]]
    Z0 = model.outputs(model.features(X[:10]))
    expected = model.loss_change(Z0, model.encode_target(y[:10]), D)
    np.testing.assert_allclose(T, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())
    np.testing.assert_allclose(np.diag(inf.transform(X, y)), inf.self_influence_, rtol=1e-6,
                               atol=1e-10)
    top = inf.explain(X[:5], y[:5], k=4)
    np.testing.assert_array_equal(top.helpful_indices, np.argsort(-T[:5], axis=1)[:, :4])


@pytest.mark.parametrize("approximation", ["boostin", "boostin_final", "boostin_contribution"])
def test_boostin_dense_and_scattered_leaves_agree(approximation, monkeypatch, cells):
    # large leaves go through one matrix product, the others are scattered: all of one
    # kind or all of the other must give the same matrix, with and without y
    from skinfluence.influence import _boosting

    X, y = cells(n=200, kind="multiclass")
    X = X + np.random.RandomState(0).normal(scale=0.3, size=X.shape)
    out = []
    for share in (np.inf, -1.0):
        monkeypatch.setattr(_boosting, "_DENSE_SHARE", share)
        inf = InfluenceFunctions(C(max_iter=5, max_leaf_nodes=5),
                                 approximation=approximation).fit(X, y)
        out.append((inf.transform(X[:25], y[:25]), inf.transform(X[:25])))
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14 * np.abs(a).max())


@pytest.mark.parametrize("loss", ["squared_error", "poisson", "gamma", "binary"])
def test_boostin_final_scalar_losses_are_the_exact_loss_changes(loss):
    # one output: the loss change computed in place equals the model's own loss at the
    # summed output changes (those are the prediction path's, before its link)
    if loss == "binary":
        X, y = load_breast_cancer(return_X_y=True)
        est = C(max_iter=8, max_leaf_nodes=5)
    else:
        X, y = load_diabetes(return_X_y=True)
        est = R(loss=loss, max_iter=8, max_leaf_nodes=5)
    X, y = X[:150], y[:150]
    inf = InfluenceFunctions(est, approximation="boostin_final").fit(X, y)
    rem, model = inf._removal, inf.objective_
    Xf, Z0, y_enc = inf._queries(X[:12], y[:12])
    q = np.ascontiguousarray(model.apply(Xf))
    D = np.empty((12, 150))
    rem._shared_sums(q, np.ones((model.n_trees, 12)), np.ones((12, 1)), D)
    expected = model.loss_change(Z0, y_enc, D[:, None, :])
    np.testing.assert_allclose(inf.transform(X[:12], y[:12]), expected, rtol=1e-9,
                               atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_boostin_contribution_is_the_loss_without_the_rows_shares(kind, cells):
    # each leaf value -lr G / (H + l2) split among its rows: removing j's gradient from G
    # with H held fixed and nothing propagating; the baseline moves as in boostin_final.
    # Recomputed by hand for single rows, then for a set (its shares add up)
    X, y = cells(n=90, kind=kind)
    X = X + np.random.RandomState(0).normal(scale=0.3, size=X.shape)
    lam = 0.3
    inf = InfluenceFunctions(C(max_iter=6, max_leaf_nodes=4, l2_regularization=lam,
                               learning_rate=0.5), approximation="boostin_contribution")
    inf.fit(X, y)
    model, rem = inf.objective_, inf._removal
    K, lr, n = model.n_outputs, model.learning_rate, len(y)
    lq, lt = model.apply(X[:10]), model.apply(X)
    Y = np.eye(max(K, 2))[y][:, -K:] if K > 1 else y[:, None].astype(float)
    ybar = Y.mean(axis=0)
    if K == 1:
        base = -(Y - ybar) / (n * ybar * (1 - ybar))
    else:
        d = -(Y - ybar) / (n * ybar)
        base = d - d.mean(axis=1, keepdims=True)
    # the fit's gradients, iteration by iteration, at the recomputed outputs
    zt = np.tile(model.baseline, (n, 1))
    grads = []
    for t in range(model.n_iter):
        p = _link_proba(zt, K)
        grads.append((p - Y, p * (1 - p)))
        for k in range(K):
            zt[:, k] += rem.values64[lt[t * K + k]]

    def outputs_without(S):
        """Query outputs (10, K) with the gradients of the rows S out of every leaf sum
        (the Hessian sums kept) and the baseline moved by their derivatives."""
        Z = np.tile(model.baseline + base[S].sum(axis=0), (10, 1))
        keep = np.ones(n, bool)
        keep[S] = False
        for t, (g, h) in enumerate(grads):
            for k in range(K):
                s = t * K + k
                for leaf in np.unique(lt[s]):
                    inside = lt[s] == leaf
                    value = 0.0 if model.fixed_zero[leaf] else (
                        -lr * g[inside & keep, k].sum() / (h[inside, k].sum() + lam))
                    Z[lq[s] == leaf, k] += value
        return Z

    Z0 = model.outputs(model.features(X[:10]))
    y_enc = model.encode_target(y[:10])
    np.testing.assert_allclose(outputs_without([]), Z0, rtol=1e-5, atol=1e-6)
    Z0 = outputs_without([])  # the float64 recomputation the influence starts from
    T = inf.transform(X[:10], y[:10])
    loss0 = model.loss_from_outputs(Z0, y_enc)
    for j in (0, 7, 33, 89):
        expected = model.loss_from_outputs(outputs_without([j]), y_enc) - loss0
        np.testing.assert_allclose(T[:, j], expected, rtol=1e-6, atol=1e-9)
    # a set: the output change is the sum of its members' (what the ranking assumes)
    S = [1, 4, 9, 20, 50]
    D = np.empty((10, K, n))
    for k in range(K):
        g0 = np.zeros((10, K))
        g0[:, k] = 1.0
        part = np.empty((10, n))
        rem._shared_sums(np.ascontiguousarray(lq), (model.tree_output == k).astype(float)
                         [:, None].repeat(10, axis=1), g0, part)
        D[:, k] = part
    np.testing.assert_allclose(D[:, :, S].sum(axis=2), outputs_without(S) - Z0, rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(np.diag(inf.transform(X, y)), inf.self_influence_, rtol=1e-6,
                               atol=1e-10)
    top = inf.explain(X[:5], y[:5], k=4)
    np.testing.assert_array_equal(top.helpful_indices, np.argsort(-T[:5], axis=1)[:, :4])


def test_boostin_contribution_shares_add_up_to_the_outputs():
    # every row's share removed: the outputs fall back to the baseline exactly
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:150], y[:150]
    inf = InfluenceFunctions(R(max_iter=10, max_leaf_nodes=6, l2_regularization=1.0),
                             approximation="boostin_contribution").fit(X, y)
    rem, model = inf._removal, inf.objective_
    Xf = model.features(X[:12])
    q = np.ascontiguousarray(model.apply(Xf))
    D = np.empty((12, 150))
    rem._shared_sums(q, np.ones((model.n_trees, 12)), np.zeros((12, 1)), D)
    expected = model.outputs_from_leaves(q, values=rem.values64)[:, 0] - model.baseline[0]
    np.testing.assert_allclose(-D.sum(axis=1), expected, rtol=1e-10,
                               atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("approximation", ["leaf_refit", "leaf_influence", "boostin"])
def test_one_class_baseline_at_its_bound_does_not_move(approximation):
    # a single class clips the baseline at its bound: removing a row changes nothing, as
    # a refit without it shows, and no 0 / 0 turns into NaN on the way
    import warnings

    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(40, 3)), np.zeros(40, dtype=int)
    model = HistGradientBoostingClassifier(max_iter=5).fit(X, y)
    refit = HistGradientBoostingClassifier(max_iter=5).fit(X[1:], y[1:])
    np.testing.assert_array_equal(refit.predict_proba(X[:5]), model.predict_proba(X[:5]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        T = InfluenceFunctions(model, approximation=approximation).fit(X, y).transform(
            X[:5], y[:5])
    np.testing.assert_array_equal(T, np.zeros((5, 40)))


def _hand_state(model, lt, lq, Y, w, lr, lam):
    """By hand: the fixed-structure refit with weights ``w`` (baseline, then every leaf
    value from the gradients at the outputs so far) and, for every row, the move of the
    queries' outputs (n_q, K, n) when its gradient leaves the sums of the leaves it shares
    with them (Hessian sums held) and its weight leaves the baseline's mean."""
    n, K = Y.shape
    W = w.sum()
    ybar = w @ Y / W
    if K == 1:
        base = np.log(ybar / (1 - ybar))
        dbase = -w[:, None] * (Y - ybar) / (W * ybar * (1 - ybar))
    else:
        base = np.log(ybar) - np.log(ybar).mean()
        d = -w[:, None] * (Y - ybar) / (W * ybar)
        dbase = d - d.mean(axis=1, keepdims=True)
    zt = np.tile(base, (n, 1))
    zq = np.tile(base, (lq.shape[1], 1))
    move = np.tile(dbase.T[None], (lq.shape[1], 1, 1))
    for t in range(model.n_iter):
        p = _link_proba(zt, K)
        g, h = w[:, None] * (p - Y), w[:, None] * p * (1 - p)
        for k in range(K):
            s = t * K + k
            for leaf in np.unique(lt[s]):
                inside = lt[s] == leaf
                if model.fixed_zero[leaf]:
                    continue
                Hs = h[inside, k].sum() + lam
                zt[inside, k] += -lr * g[inside, k].sum() / Hs
                at = lq[s] == leaf
                zq[at, k] += -lr * g[inside, k].sum() / Hs
                move[np.ix_(at, [k], inside)] += lr * g[inside, k] / Hs
    return zq, move


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_boostin_contribution_greedy_steps_are_the_best_shares_of_the_refit(kind, cells):
    # every step recomputed by hand: the refit without the rows removed so far, each
    # remaining row's shares there; the step's rows are the exhaustive argmax of the
    # loss at the queries' outputs moved by them, and transform holds those marginals
    X, y = cells(n=60, kind=kind)
    X = X + np.random.RandomState(0).normal(scale=0.3, size=X.shape)
    lam, lr = 0.3, 0.5
    inf = InfluenceFunctions(C(max_iter=5, max_leaf_nodes=4, l2_regularization=lam,
                               learning_rate=lr), approximation="boostin_contribution_greedy")
    inf.fit(X, y)
    model, n = inf.objective_, len(y)
    K = model.n_outputs
    lt, lq = model.apply(X), model.apply(X[:6])
    Y = np.eye(max(K, 2))[y][:, -K:] if K > 1 else y[:, None].astype(float)
    y_enc = model.encode_target(y[:6])
    T = inf.transform(X[:6], y[:6])
    order = inf.explain(X[:6], y[:6], k=n).helpful_indices
    z_model = model.outputs(model.features(X[:6]))
    w = np.ones(n)
    z_ref, _ = _hand_state(model, lt, lq, Y, w, lr, lam)
    stops = 0
    for e in range(6):
        removed = []
        while len(removed) < 16:
            w = np.ones(n)
            w[removed] = 0.0
            zq, move = _hand_state(model, lt, lq[:, e:e + 1], Y, w, lr, lam)
            z = z_model[e] + zq[0] - z_ref[e]
            rise = (model.loss_from_outputs(z + move[0].T, np.full(n, y_enc[e]))
                    - model.loss_from_outputs(z[None], y_enc[e:e + 1])[0])
            rise[removed] = -np.inf
            step = max(len(removed), 1)
            best = np.argsort(-rise, kind="stable")[:n - len(removed)]
            done = len(removed)
            if np.sum(rise > 0) < step:  # no more rows raise the loss: the rest by rise
                np.testing.assert_array_equal(order[e, done:], best)
                np.testing.assert_allclose(T[e, best], rise[best], rtol=1e-6, atol=1e-9)
                stops += 1
                break
            best = best[:step]
            np.testing.assert_array_equal(order[e, done:done + step], best)
            np.testing.assert_allclose(T[e, best], rise[best], rtol=1e-6, atol=1e-9)
            removed.extend(best)
    if kind == "multiclass":
        assert stops > 0  # (the stopping rule is exercised)


@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass"])
def test_boostin_contribution_greedy_state_is_scikit_learns_refit(kind, cells,
                                                                   same_partitions):
    # where no refit changes a partition, the state the shares are taken in is
    # scikit-learn's own refit without the removed rows; the shares add up to its
    # outputs minus its baseline
    X, y = cells(n=200 if kind == "multiclass" else 120, kind=kind)
    params = dict(max_iter=15, max_depth=2, min_samples_leaf=2, learning_rate=0.3)
    make = R if kind == "regression" else C
    inf = InfluenceFunctions(make(**params), approximation="boostin_contribution_greedy")
    inf.fit(X, y)
    model, rem = inf.objective_, inf._removal
    K = model.n_outputs
    S = np.array([3, 10, 11, 40, 57, 90])
    keep = np.setdiff1d(np.arange(len(y)), S)
    refit = make(**params).fit(X[keep], y[keep])
    assert same_partitions(model.apply(X[keep]), BoostedModel(refit).apply(X[keep]))
    expected = BoostedModel(refit).outputs(X[:4])
    w = rem.w.copy()
    w[S] = 0.0
    base = model.intercept(rem.y, w)
    shares, zq = np.empty((len(y), K)), np.empty(K)
    for e, q in enumerate(model.apply(X[:4]).T):
        kernels.shares_at_weights(model.loss, rem.y, w, rem.leaves, np.ascontiguousarray(q),
                                  base, model.leaf_start, model.fixed_zero, model.n_iter,
                                  model.learning_rate, model.l2_regularization, rem.ptr,
                                  rem.idx, shares, zq)
        # float32 gradients in scikit-learn's refit: agreement to their rounding
        np.testing.assert_allclose(zq, expected[e], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(-shares.sum(axis=0), zq - base, rtol=1e-10, atol=1e-12)
        assert np.all(shares[S] == 0.0)


def test_boostin_contribution_greedy_explain_self_influence_and_y():
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:150], y[:150]
    est = C(max_iter=8, max_leaf_nodes=5)
    inf = InfluenceFunctions(est, approximation="boostin_contribution_greedy").fit(X, y)
    ref = InfluenceFunctions(est, approximation="boostin_contribution").fit(X, y)
    T, Tc = inf.transform(X[:7], y[:7]), ref.transform(X[:7], y[:7])
    top = inf.explain(X[:7], y[:7], k=9)
    # the first row removed is boostin_contribution's best, with its value
    np.testing.assert_array_equal(top.helpful_indices[:, 0], np.argmax(Tc, axis=1))
    np.testing.assert_allclose(top.helpful_values[:, 0], Tc.max(axis=1), rtol=1e-9)
    np.testing.assert_array_equal(top.helpful_values,
                                  np.take_along_axis(T, top.helpful_indices, axis=1))
    np.testing.assert_array_equal(top.harmful_indices, np.argsort(T, axis=1)[:, :9])
    # a single removal is boostin_contribution's: so is the self-influence
    np.testing.assert_allclose(inf.self_influence_, ref.self_influence_, rtol=1e-12)
    with pytest.raises(ValueError, match="needs y; without y use 'boostin_contribution'"):
        inf.transform(X[:2])
    # rows held out by early stopping grew no tree: 0, ranked before the harmful rows
    est = C(max_iter=8, early_stopping=True, validation_fraction=0.2, n_iter_no_change=2,
            random_state=0)
    inf = InfluenceFunctions(est, approximation="boostin_contribution_greedy").fit(X, y)
    idle = np.setdiff1d(np.arange(150), inf._removal.model.rows)
    assert idle.size == 30
    T = inf.transform(X[:3], y[:3])
    assert np.all(T[:, idle] == 0.0)
    top = inf.explain(X[:3], y[:3], k=150)
    for e in range(3):
        vals = top.helpful_values[e]
        cut = np.argmax(vals <= 0)
        assert np.all(vals[:cut] > 0) and np.all(np.diff(vals[cut:]) <= 0)
        np.testing.assert_array_equal(np.sort(top.helpful_indices[e]), np.arange(150))
