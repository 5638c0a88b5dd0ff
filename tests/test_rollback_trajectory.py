"""GradientRollback(rollback="trajectory"): the derivative of the trained model's
prediction in each training triple's weight, through the whole training run,
checked against central differences of actual retraining."""

import numpy as np
import pytest

from skinfluence import ComplEx, DistMult, GradientRollback, MatrixFactorization


def _kg(seed=0, n=240, ne=12, nr=5):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.integers(0, ne, n), rng.integers(0, nr, n),
                         rng.integers(0, ne, n)])
    X[: n // 2, 2] = (X[: n // 2, 0] + X[: n // 2, 1]) % ne
    return X


def _proba(est, X, sw, query):
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
    X = _kg()
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
        fd = (_proba(est, X, plus, query) - _proba(est, X, minus, query)) / (2 * eps)
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
    idx, delta = gr.explain(queries, k=4)
    for a in range(3):
        row = D.getrow(a).toarray().ravel()
        np.testing.assert_allclose(delta[a], row[idx[a]])
        assert np.all(np.diff(delta[a]) <= 0)


def test_trajectory_errors():
    X = _kg()
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
