"""Gradient Rollback and the neural matrix factorisation estimators: checks
against actual retraining, brute-force rollback and exact decompositions."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils import Bunch

from skinfluence import ComplEx, DistMult, GradientRollback, MatrixFactorization
from skinfluence.rollback import _stream as K
from skinfluence.rollback._kg_train import kg_scores


def _kg(seed=0, n=300, ne=12, nr=5):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.integers(0, ne, n), rng.integers(0, nr, n),
                         rng.integers(0, ne, n)])
    # a structured part so the model has something to learn
    X[: n // 2, 2] = (X[: n // 2, 0] + X[: n // 2, 1]) % ne
    return X


def _ratings(seed=0, n=400, nu=25, ni=15):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.integers(0, nu, n), rng.integers(0, ni, n)])
    y = (X[:, 0] % 4) - (X[:, 1] % 3) + 0.3 * rng.normal(size=n)
    return X, y


def _isolated_ratings():
    """Ratings plus one example whose user and item appear nowhere else."""
    X, y = _ratings()
    X = np.vstack([X, [[25, 15]]])
    y = np.append(y, 4.0)
    return X, y, X.shape[0] - 1


# ----------------------------------------------------------------------------
# exactness of rollback under plain SGD
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size,decay", [(1, 1.0), (4, 1.0), (4, 0.8)])
def test_sgd_rollback_of_isolated_example_equals_retraining(batch_size, decay):
    X, y, j = _isolated_ratings()
    mf = MatrixFactorization(n_components=3, optimizer="sgd", learning_rate=0.05,
                             learning_rate_decay=decay,
                             batch_size=batch_size, max_iter=8, fit_intercept=False,
                             alpha=0.01, random_state=0)
    gr = GradientRollback(mf).fit(X, y)
    sw = np.ones(len(y))
    sw[j] = 0.0
    retrained = clone(mf).fit(X, y, sample_weight=sw)
    queries = np.array([[25, 15], [25, 3], [7, 15], [7, 3]])
    D = gr.transform(queries).toarray()
    full = gr.predict(queries)
    # GR's predicted prediction change equals the actual one (retraining)
    np.testing.assert_allclose(D[:, j], full - retrained.predict(queries),
                               rtol=1e-10, atol=1e-12)
    # and the rolled-back rows are the retrained rows
    P = gr.estimator_._P.copy()
    P[25] -= gr.gamma_["user"][j]
    np.testing.assert_allclose(P, retrained._P, rtol=0, atol=1e-12)
    assert np.abs(D[:, j]).max() > 1e-3  # the example mattered


def test_sgd_rollback_exact_with_physical_removal_at_batch_size_one():
    X, y, j = _isolated_ratings()
    mf = MatrixFactorization(n_components=3, optimizer="sgd", learning_rate=0.05,
                             batch_size=1, max_iter=5, fit_intercept=False,
                             n_users=26, n_items=16, random_state=1)
    gr = GradientRollback(mf).fit(X, y)
    keep = np.arange(len(y)) != j
    removed = clone(mf).fit(X[keep], y[keep])
    q = np.array([[25, 15]])
    np.testing.assert_allclose(gr.transform(q).toarray()[0, j],
                               gr.predict(q)[0] - removed.predict(q)[0], atol=1e-12)


@pytest.mark.parametrize("cls", [DistMult, ComplEx])
@pytest.mark.parametrize("batch_size,decay", [(1, 1.0), (8, 1.0), (8, 0.7)])
def test_sgd_recorded_updates_split_the_trajectory_exactly(cls, batch_size, decay):
    X = _kg()
    est = cls(n_components=3, optimizer="sgd", learning_rate=0.1, batch_size=batch_size,
              learning_rate_decay=decay,
              max_iter=3, alpha=0.01, n_negatives=4, random_state=0)
    gr = GradientRollback(est, record_negatives=True).fit(X)
    # relation rows are only ever touched by their own triples
    moved = gr.estimator_.relation_embeddings_ - gr.init_params_["relation"]
    acc = np.zeros_like(moved)
    np.add.at(acc, X[:, 1], gr.gamma_["relation"])
    np.testing.assert_allclose(acc, moved, atol=1e-12)
    assert gr.residual_["relation"] < 1e-12
    # with negatives recorded the entity rows are split exactly too
    assert gr.residual_["entity"] < 1e-12
    # without them the negatives' share is missing (and reported)
    gr0 = GradientRollback(est).fit(X)
    assert gr0.residual_["entity"] > 1e-3
    np.testing.assert_array_equal(gr0.gamma_["head"], gr.gamma_["head"])


def test_learning_rate_decay_is_per_epoch():
    X, y = _ratings()
    kw = dict(n_components=3, optimizer="sgd", batch_size=400, max_iter=2,
              fit_intercept=False, alpha=0.0, random_state=0)
    # one full batch per epoch: two epochs at (lr, lr * d) by hand
    two = MatrixFactorization(learning_rate=0.05, learning_rate_decay=0.5, **kw).fit(X, y)
    one = MatrixFactorization(learning_rate=0.05, **{**kw, "max_iter": 1}).fit(X, y)
    P, Q, mu = one._P.copy(), one._Q.copy(), 0.0
    err = (P[X[:, 0], :-1] * Q[X[:, 1], :-1]).sum(1) + P[X[:, 0], -1] + Q[X[:, 1], -1] - y
    gP = np.zeros_like(P)
    gQ = np.zeros_like(Q)
    np.add.at(gP, X[:, 0], np.column_stack([err[:, None] * Q[X[:, 1], :-1], err]) / 400)
    np.add.at(gQ, X[:, 1], np.column_stack([err[:, None] * P[X[:, 0], :-1], err]) / 400)
    np.testing.assert_allclose(two._P, P - 0.025 * gP, atol=1e-12)
    np.testing.assert_allclose(two._Q, Q - 0.025 * gQ, atol=1e-12)


def test_adam_residual_reported_nonzero():
    X, y = _ratings()
    gr = GradientRollback(MatrixFactorization(n_components=3, optimizer="adam",
                                              max_iter=5, random_state=0)).fit(X, y)
    assert 1e-4 < gr.residual_["user"] < 1.0
    gr_sgd = GradientRollback(MatrixFactorization(n_components=3, optimizer="sgd",
                                                  learning_rate=0.05, max_iter=5,
                                                  random_state=0)).fit(X, y)
    assert gr_sgd.residual_["user"] < 1e-12


# ----------------------------------------------------------------------------
# transform against brute-force rollback
# ----------------------------------------------------------------------------


def _brute_kg(gr, triples, cand_all):
    est = gr.estimator_
    E0, R0 = est.entity_embeddings_, est.relation_embeddings_
    Xt = gr.X_train_
    out = np.zeros((len(triples), gr.n_train_))
    for a, (h, r, t) in enumerate(triples):
        p0 = est.predict_proba([[h, r]])[0, t]
        for j in range(gr.n_train_):
            E = E0.copy()
            R = R0.copy()
            if "negatives" in gr.gamma_:
                E -= gr.gamma_["negatives"][j]
            E[Xt[j, 0]] -= gr.gamma_["head"][j]
            E[Xt[j, 2]] -= gr.gamma_["tail"][j]
            R[Xt[j, 1]] -= gr.gamma_["relation"][j]
            s = kg_scores(est._spec, E, R, np.array([h]), np.array([r]))[0]
            p = np.exp(s - s.max())
            p /= p.sum()
            out[a, j] = p0 - p[t]
    if not cand_all:
        for a, (h, r, t) in enumerate(triples):
            nb = ((Xt[:, 0] == h) | (Xt[:, 2] == h) | (Xt[:, 0] == t) | (Xt[:, 2] == t)
                  | (Xt[:, 1] == r))
            out[a, ~nb] = 0.0
    return out


@pytest.mark.parametrize("cls", [DistMult, ComplEx])
@pytest.mark.parametrize("scope", ["neighbourhood", "all"])
@pytest.mark.parametrize("record_negatives", [False, True])
def test_kg_transform_matches_brute_force(cls, scope, record_negatives):
    X = _kg(n=120)
    X[:3] = [[1, 0, 1], [2, 2, 2], [3, 4, 3]]  # self-loops
    est = cls(n_components=3, max_iter=3, batch_size=4, n_negatives=5, random_state=0)
    gr = GradientRollback(est, scope=scope, record_negatives=record_negatives,
                          rollback="full").fit(X)
    triples = np.array([[1, 0, 1], [2, 2, 5], [0, 1, 3], [5, 3, 2]])
    D = gr.transform(triples)
    assert sp.issparse(D) and D.shape == (4, 120)
    np.testing.assert_allclose(D.toarray(), _brute_kg(gr, triples, scope == "all"),
                               rtol=1e-9, atol=1e-12)


def test_mf_transform_matches_brute_force():
    X, y = _ratings()
    gr = GradientRollback(MatrixFactorization(n_components=3, max_iter=3,
                                              random_state=0)).fit(X, y)
    q = np.array([[0, 0], [3, 7], [24, 14]])
    D = gr.transform(q).toarray()
    est = gr.estimator_
    for a, (u, i) in enumerate(q):
        base = est.predict([[u, i]])[0]
        for j in range(len(y)):
            P, Q = est._P.copy(), est._Q.copy()
            P[X[j, 0]] -= gr.gamma_["user"][j]
            Q[X[j, 1]] -= gr.gamma_["item"][j]
            new = est.intercept_ + P[u, :-1] @ Q[i, :-1] + P[u, -1] + Q[i, -1]
            np.testing.assert_allclose(D[a, j], base - new, atol=1e-12)


def _proba_at(est, E, R, h, r, t):
    s = kg_scores(est._spec, E, R, np.array([h]), np.array([r]))[0]
    p = np.exp(s - s.max())
    return p[t] / p.sum()


@pytest.mark.parametrize("cls", [DistMult, ComplEx])
@pytest.mark.parametrize("record_negatives", [False, True])
def test_kg_first_order_is_the_derivative_of_the_rollback(cls, record_negatives):
    X = _kg(n=120)
    X[:2] = [[1, 0, 1], [2, 2, 2]]  # self-loops: head and tail updates share a row
    est = cls(n_components=3, max_iter=3, batch_size=4, n_negatives=5, random_state=0)
    gr = GradientRollback(est, scope="all", record_negatives=record_negatives,
                          rollback="first_order").fit(X)
    triples = np.array([[1, 0, 1], [2, 2, 5], [0, 1, 3]])
    D = gr.transform(triples).toarray()
    E0, R0 = gr.estimator_.entity_embeddings_, gr.estimator_.relation_embeddings_
    g = gr.gamma_
    eps = 1e-5
    for a, (h, r, t) in enumerate(triples):
        for j in range(0, 120, 7):
            def p_at(step):  # p(t | h, r) at theta - step * gamma_j
                E, R = E0.copy(), R0.copy()
                if record_negatives:
                    E -= step * g["negatives"][j]
                E[X[j, 0]] -= step * g["head"][j]
                E[X[j, 2]] -= step * g["tail"][j]
                R[X[j, 1]] -= step * g["relation"][j]
                return _proba_at(gr.estimator_, E, R, h, r, t)
            # central difference of the rollback path at 0
            fd = (p_at(-eps) - p_at(eps)) / (2 * eps)
            np.testing.assert_allclose(D[a, j], fd, rtol=1e-6, atol=1e-10)
    # the default for knowledge graphs; the full rollback differs
    np.testing.assert_array_equal(gr.set_params(rollback="auto").transform(triples).toarray(), D)
    full = gr.set_params(rollback="full").transform(triples)
    assert np.abs(full.toarray() - D).max() > 1e-6


def test_mf_first_order_equals_rollback_off_the_query_pair():
    X, y = _ratings()
    X[0] = [3, 7]
    gr = GradientRollback(MatrixFactorization(n_components=3, max_iter=3, random_state=0),
                          rollback="first_order").fit(X, y)
    q = np.array([[3, 7], [0, 0]])
    fo = gr.transform(q).toarray()
    full = gr.set_params(rollback="full").transform(q).toarray()
    # ratings default to the full rollback
    np.testing.assert_array_equal(gr.set_params(rollback="auto").transform(q).toarray(), full)
    same_pair = (X[:, 0] == 3) & (X[:, 1] == 7)
    # the rating is linear in each row: one moved row gives the same change
    np.testing.assert_allclose(fo[0, ~same_pair], full[0, ~same_pair], atol=1e-12)
    np.testing.assert_allclose(fo[1], full[1], atol=1e-12)
    # with both rows moved the product term gamma_P . gamma_Q is what is dropped
    P, Q = gr.estimator_._P, gr.estimator_._Q
    gP, gQ = gr.gamma_["user"][0], gr.gamma_["item"][0]
    np.testing.assert_allclose(full[0, 0] - fo[0, 0], -(gP[:-1] @ gQ[:-1]), atol=1e-12)
    assert np.abs(gP[:-1] @ gQ[:-1]) > 0


# ----------------------------------------------------------------------------
# GR tracks real retraining (faithfulness on a small problem)
# ----------------------------------------------------------------------------


def test_gr_predicts_leave_one_out_on_ratings():
    X, y = _ratings(n=300)
    mf = MatrixFactorization(n_components=2, optimizer="sgd", learning_rate=0.02,
                             batch_size=1, max_iter=10, random_state=0, fit_intercept=False)
    gr = GradientRollback(mf).fit(X, y)
    q = np.array([[2, 5]])
    D = gr.transform(q)
    cand = D.indices[:12]
    full = gr.predict(q)[0]
    actual = []
    for j in cand:
        sw = np.ones(len(y))
        sw[j] = 0
        actual.append(full - clone(mf).fit(X, y, sample_weight=sw).predict(q)[0])
    pred = D.toarray()[0, cand]
    assert np.corrcoef(pred, actual)[0, 1] > 0.9


def test_gr_top_explanation_lowers_probability_when_removed():
    X = _kg(n=200, ne=10, nr=4)
    est = DistMult(n_components=4, max_iter=15, learning_rate=0.01, batch_size=1,
                   n_negatives=5, random_state=0, n_entities=10, n_relations=4)
    gr = GradientRollback(est).fit(X)
    queries = np.array([[0, 0], [1, 1], [2, 2], [3, 3], [4, 0], [5, 1]])
    idx = gr.explain(queries, k=1).helpful_indices
    top1 = gr.predict(queries)
    p0 = gr.predict_proba(queries)[np.arange(6), top1]
    drops = 0
    for a in range(6):
        sw = np.ones(len(X))
        sw[idx[a, 0]] = 0
        p = clone(est).fit(X, sample_weight=sw).predict_proba(queries[a:a + 1])[0, top1[a]]
        drops += p < p0[a]
    assert drops >= 5


# ----------------------------------------------------------------------------
# random stream: determinism and removal invariance
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: DistMult(n_components=3, max_iter=2, batch_size=7, random_state=3),
    lambda: ComplEx(n_components=3, max_iter=2, batch_size=1, random_state=3),
])
def test_kg_fit_is_bit_reproducible(make):
    X = _kg()
    a, b = make().fit(X), make().fit(X)
    np.testing.assert_array_equal(a.entity_embeddings_, b.entity_embeddings_)
    np.testing.assert_array_equal(a.relation_embeddings_, b.relation_embeddings_)
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    # recording does not change training
    gr = GradientRollback(make()).fit(X)
    np.testing.assert_array_equal(gr.estimator_.entity_embeddings_, a.entity_embeddings_)
    c = clone(make()).set_params(random_state=4).fit(X)
    assert not np.array_equal(c.entity_embeddings_, a.entity_embeddings_)


def test_mf_fit_is_bit_reproducible():
    X, y = _ratings()
    a = MatrixFactorization(n_components=3, max_iter=3, random_state=0).fit(X, y)
    b = MatrixFactorization(n_components=3, max_iter=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a._P, b._P)
    np.testing.assert_array_equal(a._Q, b._Q)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_mf_recording_does_not_change_training(optimizer):
    X, y = _ratings()
    mf = MatrixFactorization(n_components=3, max_iter=3, batch_size=6, alpha=0.05,
                             optimizer=optimizer, random_state=0)
    a = clone(mf).fit(X, y)
    gr = GradientRollback(mf).fit(X, y)
    np.testing.assert_array_equal(gr.estimator_._P, a._P)
    np.testing.assert_array_equal(gr.estimator_._Q, a._Q)
    np.testing.assert_array_equal(gr.estimator_.loss_curve_, a.loss_curve_)


def test_mf_adam_gamma_matches_reference_credit_rule():
    """Lazy row-wise Adam re-implemented in numpy from the documented rule:
    each example is credited ``-lr * g / (sqrt(v_hat) + eps)`` with the step
    sizes of the update its gradient enters."""
    from sklearn.utils import check_random_state

    X, y = _ratings(n=70, nu=7, ni=5)
    sw = np.ones(len(y))
    sw[[3, 40]] = 0.0  # removed examples are skipped but keep their positions
    lr0, decay, alpha, bs, n_ep, b1, b2, eps = 0.05, 0.8, 0.1, 8, 3, 0.9, 0.999, 1e-8
    mf = MatrixFactorization(n_components=2, optimizer="adam", learning_rate=lr0,
                             learning_rate_decay=decay, batch_size=bs, max_iter=n_ep,
                             alpha=alpha, random_state=0)
    gr = GradientRollback(mf).fit(X, y, sample_weight=sw)
    # the estimator's initialisation and random stream, as in its _fit
    rs = check_random_state(0)
    nu, ni, d = 7, 5, 3
    P = rs.normal(scale=0.1, size=(nu, d))
    Q = rs.normal(scale=0.1, size=(ni, d))
    P[:, -1] = 0.0
    Q[:, -1] = 0.0
    seed = np.uint64(rs.randint(0, 2**31 - 1)) * np.uint64(2**31) + np.uint64(
        rs.randint(0, 2**31 - 1))
    keys = K.content_keys(np.ascontiguousarray(X, dtype=np.int64), seed)
    mu = np.average(y, weights=sw)
    state = {name: [np.zeros_like(A), np.zeros_like(A), np.zeros(len(A), int)]
             for name, A in (("P", P), ("Q", Q))}
    gam = {"P": np.zeros((len(y), d)), "Q": np.zeros((len(y), d))}
    n = len(y)
    for ep in range(n_ep):
        lr = lr0 * decay ** ep
        order = K._epoch_order(keys, ep)[0]
        for b0 in range(0, n, bs):
            pos = order[b0:b0 + bs]
            G = {"P": np.zeros_like(P), "Q": np.zeros_like(Q)}
            grads = []
            for i in pos:
                if sw[i] == 0:
                    continue
                u, it = X[i]
                err = mu + P[u, :-1] @ Q[it, :-1] + P[u, -1] + Q[it, -1] - y[i]
                s_ = sw[i] / len(pos)
                gp = s_ * err * np.append(Q[it, :-1], 1.0) + s_ * alpha * P[u]
                gq = s_ * err * np.append(P[u, :-1], 1.0) + s_ * alpha * Q[it]
                G["P"][u] += gp
                G["Q"][it] += gq
                grads.append((i, u, it, gp, gq))
            steps = {}
            for name, A in (("P", P), ("Q", Q)):
                M, V, T = state[name]
                rows = np.flatnonzero(np.any(G[name] != 0, axis=1))
                T[rows] += 1
                M[rows] = b1 * M[rows] + (1 - b1) * G[name][rows]
                V[rows] = b2 * V[rows] + (1 - b2) * G[name][rows] ** 2
                step = lr / (np.sqrt(V / (1 - b2 ** np.maximum(T, 1))[:, None]) + eps)
                steps[name] = step
                A[rows] -= step[rows] * M[rows] / (1 - b1 ** T[rows])[:, None]
            for i, u, it, gp, gq in grads:
                gam["P"][i] -= steps["P"][u] * gp
                gam["Q"][i] -= steps["Q"][it] * gq
    np.testing.assert_allclose(gr.estimator_._P, P, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(gr.estimator_._Q, Q, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(gr.gamma_["user"], gam["P"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(gr.gamma_["item"], gam["Q"], rtol=1e-10, atol=1e-13)
    assert np.all(gr.gamma_["user"][[3, 40]] == 0.0)
    assert np.abs(gam["P"]).max() > 1e-3


@pytest.mark.parametrize("cls", [DistMult, ComplEx])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_zero_weight_equals_removal_at_batch_size_one(cls, optimizer):
    X = _kg()
    j = 17
    est = cls(n_components=3, max_iter=3, batch_size=1, n_negatives=4,
              optimizer=optimizer, n_entities=12, n_relations=5, random_state=0)
    sw = np.ones(len(X))
    sw[j] = 0
    a = clone(est).fit(X, sample_weight=sw)
    b = clone(est).fit(np.delete(X, j, axis=0))
    np.testing.assert_array_equal(a.entity_embeddings_, b.entity_embeddings_)
    np.testing.assert_array_equal(a.relation_embeddings_, b.relation_embeddings_)
    full = clone(est).fit(X)
    assert not np.array_equal(full.entity_embeddings_, a.entity_embeddings_)


def test_other_examples_see_the_same_negatives_and_neighbours():
    X = _kg()
    seed = np.uint64(12345)
    keys = K.content_keys(X, seed)
    keep = np.arange(len(X)) != 40
    keys_r = K.content_keys(X[keep], seed)
    for epoch in range(3):
        full = K.epoch_negatives(keys, epoch, X[:, 2], 12, 6)
        red = K.epoch_negatives(keys_r, epoch, X[keep, 2], 12, 6)
        np.testing.assert_array_equal(full[keep], red)
        assert not np.any(full == X[:, 2][:, None])  # never the true tail
        # relative order of the remaining examples is unchanged
        o_full, _ = K._epoch_order(keys, epoch)
        o_red, _ = K._epoch_order(keys_r, epoch)
        mapped = np.flatnonzero(keep)[o_red]
        np.testing.assert_array_equal(o_full[o_full != 40], mapped)


def test_zero_weight_keeps_batches_for_larger_batches():
    # with batch_size > 1 the zero-weight example keeps its batch slot, so the
    # model differs from a physical deletion but the others' batches are intact:
    # a weight-0 example whose rows nobody else touches changes nothing else
    X, y, j = _isolated_ratings()
    mf = MatrixFactorization(n_components=3, optimizer="adam", batch_size=5, max_iter=4,
                             fit_intercept=False, random_state=0, n_users=26, n_items=16)
    sw = np.ones(len(y))
    sw[j] = 0
    a = clone(mf).fit(X, y, sample_weight=sw)
    full = clone(mf).fit(X, y)
    np.testing.assert_array_equal(a._P[:25], full._P[:25])
    np.testing.assert_array_equal(a._Q[:15], full._Q[:15])
    assert not np.array_equal(a._P[25], full._P[25])


# ----------------------------------------------------------------------------
# API behaviour and errors
# ----------------------------------------------------------------------------


def test_explain_orders_and_pads():
    X = _kg(n=60)
    gr = GradientRollback(DistMult(n_components=2, max_iter=2, random_state=0)).fit(X)
    # k is capped at the largest number of candidates of the queries (500 > 60 examples);
    # the query with fewer candidates than that is padded
    queries = [[0, 0, 1], [3, 1, 4], [1, 0, 2]]
    ex = gr.explain(queries, k=500)
    D = gr.transform(queries)
    counts = np.diff(D.indptr)
    assert counts.min() < counts.max() < 60
    for idx, d, order in ((ex.helpful_indices, ex.helpful_values, 1),
                          (ex.harmful_indices, ex.harmful_values, -1)):
        assert idx.shape == d.shape == (3, counts.max())
        for a in range(3):
            m = D.getrow(a).nnz
            assert np.all(idx[a, m:] == -1) and np.all(np.isnan(d[a, m:]))
            assert np.all(order * np.diff(d[a, :m]) <= 0)
            np.testing.assert_allclose(d[a, :m], D.toarray()[a, idx[a, :m]])
            # every candidate listed once, structural zeros never
            np.testing.assert_array_equal(np.sort(idx[a, :m]), D.getrow(a).indices)
    # the harmful list is the helpful one reversed (ties by training index)
    m = D.getrow(0).nnz
    np.testing.assert_array_equal(ex.harmful_values[0, :m], ex.helpful_values[0, :m][::-1])
    # (h, r) queries explain the top-1 tail
    top = gr.predict([[0, 0]])[0]
    np.testing.assert_array_equal(gr.explain([[0, 0]], k=3).helpful_indices,
                                  gr.explain([[0, 0, top]], k=3).helpful_indices)


def test_explain_returns_a_bunch_and_the_old_unpacking_warns():
    X = _kg(n=60)
    gr = GradientRollback(DistMult(n_components=2, max_iter=2, random_state=0)).fit(X)
    ex = gr.explain([[0, 0, 1]], k=3)
    assert isinstance(ex, Bunch)
    assert set(ex.keys()) == {"helpful_indices", "helpful_values", "harmful_indices",
                              "harmful_values"}
    with pytest.warns(FutureWarning, match="helpful_indices"):
        idx, d = gr.explain([[0, 0, 1]], k=3)
    np.testing.assert_array_equal(idx, ex.helpful_indices)
    np.testing.assert_array_equal(d, ex.helpful_values)


@pytest.mark.parametrize("k", [2.5, 3.0, 0, True])
def test_explain_rejects_k_that_is_not_a_positive_integer(k):
    gr = GradientRollback(DistMult(n_components=2, max_iter=1, random_state=0)).fit(_kg(n=60))
    with pytest.raises(ValueError, match=r"k must be an integer >= 1 .*got"):
        gr.explain([[0, 0, 1]], k=k)


def test_explain_k_is_capped_by_the_candidates():
    X = _kg(n=60)
    for scope in ("neighbourhood", "all"):
        gr = GradientRollback(DistMult(n_components=2, max_iter=2, random_state=0),
                              scope=scope).fit(X)
        q = [[0, 0, 1], [3, 1, 4]]
        counts = np.diff(gr.transform(q).indptr)
        idx, d = gr.explain(q, k=10**5)
        assert idx.shape == d.shape == (2, counts.max())
        if scope == "all":
            assert counts.max() == 60
        small_i, small_d = gr.explain(q, k=3)  # below the cap: unchanged
        np.testing.assert_array_equal(small_i, idx[:, :3])
        np.testing.assert_array_equal(small_d, d[:, :3])


def test_zero_weight_examples_get_no_explanation_mass():
    X = _kg(n=80)
    sw = np.ones(80)
    sw[:10] = 0
    gr = GradientRollback(DistMult(n_components=2, max_iter=2, random_state=0)).fit(
        X, sample_weight=sw)
    D = gr.transform(X[:20])
    assert not np.isin(D.indices, np.arange(10)).any()


def test_delegation_and_scores():
    X = _kg()
    est = DistMult(n_components=4, max_iter=5, random_state=0)
    gr = GradientRollback(est).fit(X)
    q = X[:5, :2]
    np.testing.assert_allclose(gr.predict_proba(q).sum(axis=1), 1.0)
    np.testing.assert_array_equal(gr.predict(q), gr.estimator_.predict(q))
    assert gr.score(X[:30]) == gr.estimator_.score(X[:30])
    m = gr.estimator_.evaluate(X[:30], ks=(1, 10))
    assert 0 < m["mrr"] <= 1 and m["hits@1"] <= m["hits@10"] <= 1


def test_filtered_rank_by_hand():
    X = np.array([[0, 0, 1], [0, 0, 2], [1, 0, 2], [2, 0, 0]])
    est = DistMult(n_components=2, max_iter=1, random_state=0).fit(X)
    s = est.decision_function([[0, 0]])[0]
    # rank of tail 2 for (0, 0) with tail 1 filtered out
    others = [e for e in range(3) if e not in (1, 2)]
    rank = 1 + sum(s[e] > s[2] for e in others)
    res = est.evaluate(np.array([[0, 0, 2]]))
    assert res["mean_rank"] == rank


def test_errors():
    X = _kg(n=50)
    with pytest.raises(TypeError, match="supports skinfluence"):
        from sklearn.linear_model import LinearRegression
        GradientRollback(LinearRegression()).fit(X)
    with pytest.raises(ValueError, match="shape"):
        DistMult().fit(X[:, :2])
    with pytest.raises(ValueError, match="integer ids"):
        DistMult().fit(X + 0.5)
    with pytest.raises(ValueError, match="Negative values"):
        DistMult().fit(X - 5)
    with pytest.raises(ValueError, match="NaN|infinity"):
        Xf = X.astype(float)
        Xf[0, 0] = np.nan
        DistMult().fit(Xf)
    est = DistMult(n_components=2, max_iter=1).fit(X)
    with pytest.raises(ValueError, match="entity id"):
        est.predict_proba([[100, 0]])
    with pytest.raises(ValueError, match="n_entities"):
        DistMult(n_entities=3).fit(X)
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        GradientRollback(DistMult()).transform(X)
    with pytest.raises(ValueError, match="ratings y"):
        GradientRollback(MatrixFactorization()).fit(X[:, :2])
    with pytest.raises(ValueError, match="zero"):
        DistMult().fit(X, sample_weight=np.zeros(len(X)))
    gr = GradientRollback(DistMult(n_components=2, max_iter=1)).fit(X)
    with pytest.raises(ValueError, match="k must be"):
        gr.explain(X[:2], k=0)
    with pytest.raises(FloatingPointError, match="diverged"):
        DistMult(optimizer="sgd", learning_rate=1e6, max_iter=3, random_state=0).fit(X)


def test_zero_weight_with_query_without_candidates():
    # the last query has no neighbourhood at all (unused entity and relation)
    X = _kg(n=80, ne=12, nr=5)
    sw = np.ones(80)
    sw[:5] = 0
    est = DistMult(n_components=2, max_iter=1, random_state=0, n_entities=14,
                   n_relations=7)
    gr = GradientRollback(est).fit(X, sample_weight=sw)
    D = gr.transform([[0, 0, 1], [13, 6, 12]])
    assert D.getrow(1).nnz == 0 and D.getrow(0).nnz > 0
    ex = gr.explain([[0, 0, 1], [13, 6, 12]], k=3)
    assert np.all(ex.helpful_indices[1] == -1) and np.all(ex.harmful_indices[1] == -1)
    assert np.all(np.isnan(ex.helpful_values[1])) and np.all(np.isnan(ex.harmful_values[1]))


# ----------------------------------------------------------------------------
# rollback="trajectory": the derivative of the training run in each weight,
# checked against central differences of actual retraining
# ----------------------------------------------------------------------------

def _proba_retrained(est, X, sw, query):
    h, r, t = query
    m = est.__class__(**est.get_params()).fit(X, sample_weight=sw)
    return m.predict_proba(np.array([[h, r]]))[0, t]


@pytest.mark.parametrize(
    "cls, params",
    [
        (DistMult, dict(optimizer="adam", learning_rate=0.02, n_negatives=5)),
        (ComplEx, dict(optimizer="adam", learning_rate=0.02, n_negatives=None,
                       learning_rate_decay=0.9)),
        (DistMult, dict(optimizer="sgd", learning_rate=0.5, n_negatives=None, alpha=0.0)),
        (ComplEx, dict(optimizer="sgd", learning_rate=0.5, n_negatives=4,
                       learning_rate_decay=0.95)),
    ],
)
def test_trajectory_is_the_weight_derivative_of_retraining(cls, params):
    X = _kg(n=240)
    n = X.shape[0]
    # non-uniform weights, one removed triple: the derivative is taken at these weights
    sw = np.ones(n)
    sw[::7] = 0.5
    sw[3] = 0.0
    est = cls(n_components=4, batch_size=16, max_iter=15, alpha=params.pop("alpha", 0.01),
              random_state=0, **params)
    gr = GradientRollback(est, rollback="trajectory", scope="all").fit(X, sample_weight=sw)
    query = (X[0, 0], X[0, 1], int(gr.predict(X[:1, :2])[0]))
    deltas = gr.transform(np.array([query])).toarray()[0]
    assert deltas[3] == 0.0  # never trained on
    # the largest effects and a few ordinary triples, half-weighted ones included
    picks = np.concatenate([np.argsort(-np.abs(deltas))[:3], [1, 7, 50]])
    eps = 1e-6
    for j in picks:
        plus, minus = sw.copy(), sw.copy()
        plus[j] += eps
        minus[j] -= eps
        fd = (_proba_retrained(est, X, plus, query) - _proba_retrained(est, X, minus, query)) / (2 * eps)
        # transform reports w_j * dp/dw_j: the first-order drop when j is removed
        np.testing.assert_allclose(deltas[j], sw[j] * fd, rtol=1e-4,
                                   atol=1e-7 * np.abs(deltas).max())


def test_trajectory_fit_trains_the_same_model_and_explains():
    X = _kg(seed=1)
    est = DistMult(n_components=4, batch_size=16, max_iter=10, random_state=0)
    gr = GradientRollback(est, rollback="trajectory").fit(X)
    plain = est.fit(X)
    np.testing.assert_array_equal(gr.estimator_.entity_embeddings_, plain.entity_embeddings_)
    np.testing.assert_array_equal(gr.estimator_.relation_embeddings_,
                                  plain.relation_embeddings_)
    queries = X[:3, :2]
    D = gr.transform(queries)
    # scope="neighbourhood": the same columns as the other rollbacks
    fo = GradientRollback(est, rollback="first_order").fit(X).transform(queries)
    np.testing.assert_array_equal(D.indptr, fo.indptr)
    np.testing.assert_array_equal(D.indices, fo.indices)
    # the trajectory fit records the updates too: the other rollbacks work on it as they are
    fo_same = gr.set_params(rollback="first_order").transform(queries)
    gr.set_params(rollback="trajectory")
    np.testing.assert_array_equal(fo_same.toarray(), fo.toarray())
    ex = gr.explain(queries, k=4)
    idx, delta = ex.helpful_indices, ex.helpful_values
    for a in range(3):
        row = D.getrow(a).toarray().ravel()
        np.testing.assert_allclose(delta[a], row[idx[a]])
        assert np.all(np.diff(delta[a]) <= 0)
        np.testing.assert_allclose(ex.harmful_values[a], row[ex.harmful_indices[a]])
        assert np.all(np.diff(ex.harmful_values[a]) >= 0)


def test_trajectory_errors():
    X = _kg(n=240)
    with pytest.raises(ValueError, match="max_norm"):
        GradientRollback(DistMult(max_norm=1.0, max_iter=2), rollback="trajectory").fit(X)
    Xr = np.column_stack([np.arange(20) % 5, np.arange(20) % 4])
    with pytest.raises(ValueError, match="knowledge-graph"):
        GradientRollback(MatrixFactorization(max_iter=2), rollback="trajectory").fit(
            Xr, np.ones(20))
    gr = GradientRollback(DistMult(max_iter=2, random_state=0)).fit(X)
    with pytest.raises(ValueError, match="fit with rollback='trajectory'"):
        gr.set_params(rollback="trajectory").transform(X[:2, :2])
    big = DistMult(n_entities=200_000, n_components=200, max_iter=200)
    with pytest.raises(ValueError, match="GiB"):
        GradientRollback(big, rollback="trajectory").fit(X)


# ----------------------------------------------------------------------------
# the model interface GradientRollback uses, and its numba mechanism
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [DistMult, ComplEx])
def test_fit_with_rollback_is_what_gradient_rollback_records(cls):
    X = _kg(n=90)
    est = cls(n_components=3, max_iter=2, batch_size=4, random_state=0)
    rec = clone(est).fit_with_rollback(X, record_negatives=True)
    gr = GradientRollback(est, record_negatives=True).fit(X)
    assert set(rec.gamma) == {"head", "relation", "tail", "negatives"}
    for name, g in rec.gamma.items():
        np.testing.assert_array_equal(g, gr.gamma_[name])
    model = gr.estimator_.rollback_model()
    assert model.kind == "kg"
    assert model.entity_embeddings is gr.estimator_.entity_embeddings_
    assert model.residuals(gr._record) == gr.residual_


def test_mf_fit_with_rollback_and_rollback_model():
    X, y = _ratings()
    mf = MatrixFactorization(n_components=3, max_iter=2, random_state=0)
    rec = clone(mf).fit_with_rollback(X, y)
    gr = GradientRollback(mf).fit(X, y)
    np.testing.assert_array_equal(rec.gamma["user"], gr.gamma_["user"])
    model = gr.estimator_.rollback_model()
    assert model.kind == "mf"
    np.testing.assert_array_equal(model.user_rows[:, :-1], gr.estimator_.user_factors_)
    with pytest.raises(ValueError, match="knowledge-graph"):
        clone(mf).fit_with_rollback(X, y, trajectory=True)


def test_trajectory_n_jobs_gives_the_same_numbers():
    X = _kg(n=120)
    est = DistMult(n_components=3, batch_size=16, max_iter=3, random_state=0)
    queries = X[:20]  # two chunks of queries
    one = GradientRollback(est, rollback="trajectory").fit(X)
    two = GradientRollback(est, rollback="trajectory", n_jobs=2, verbose=1).fit(X)
    D1, D2 = one.transform(queries), two.transform(queries)
    np.testing.assert_array_equal(D1.indptr, D2.indptr)
    np.testing.assert_array_equal(D1.indices, D2.indices)
    np.testing.assert_array_equal(D1.data, D2.data)


_CACHE_PROBE = """
import numpy as np
from skinfluence import ComplEx, DistMult
from skinfluence.rollback._kg_train import kg_fit
X = np.array([[0, 0, 1], [1, 1, 2], [2, 0, 0], [0, 1, 2]] * 3)
a = DistMult(n_components=2, max_iter=2, random_state=0).fit(X)
b = ComplEx(n_components=2, max_iter=2, random_state=0).fit(X)
print(len(kg_fit.stats.cache_hits), len(kg_fit.stats.cache_misses), len(kg_fit.signatures))
print(repr(a.entity_embeddings_.tolist()), repr(b.entity_embeddings_.tolist()))
"""


def test_each_model_gets_its_own_cached_training_kernel(tmp_path):
    # the kernels are specialised per model at compile time (no model code at run
    # time); each specialisation must be written to and read back from the cache
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR",)}
    env["SKINFLUENCE_CACHE_DIR"] = str(tmp_path)

    def run():
        out = subprocess.run([sys.executable, "-c", _CACHE_PROBE], env=env,
                             capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout.split("\n")

    first, second = run(), run()
    assert first[0] == "0 2 2"  # compiled once per model, and saved
    assert second[0] == "2 0 2"  # both loaded from the cache
    assert first[1] == second[1]
