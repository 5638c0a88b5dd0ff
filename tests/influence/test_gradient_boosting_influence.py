"""InfluenceFunctions on GradientBoosting (scikit-learn's non-histogram boosting).

GradientBoosting computes in float64, so the fixed-structure refit is checked against
scikit-learn's own refits to 1e-9 on data whose tree structure cannot change (two binary
features, depth-2 trees: every tree splits the same four cells); its first-order form
against central differences of the refit; forward and backward passes against each other.
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceFunctions
from skinfluence.trees import _boosting_kernels as kernels
from skinfluence.trees._gb import GradientBoostingModel

R, C = GradientBoostingRegressor, GradientBoostingClassifier


@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass"])
def test_leaf_refit_equals_scikit_learn_refits_when_the_structure_holds(kind, cells,
                                                                        same_partitions):
    # (the assertion below checks the premise: no refit changes a partition)
    X, y = cells(n=150, kind=kind)
    make = R if kind == "regression" else C
    params = dict(n_estimators=15, max_depth=2, learning_rate=0.3)
    Xq, yq = cells(n=40, kind=kind, seed=1)
    inf = InfluenceFunctions(make(**params), approximation="leaf_refit").fit(X, y)
    model = inf.objective_
    T = inf.transform(Xq, yq)
    base = model.loss_from_outputs(model.outputs(model.features(Xq)), model.encode_target(yq))
    for j in range(0, len(y), 7):
        keep = np.arange(len(y)) != j
        m2 = GradientBoostingModel(make(**params).fit(X[keep], y[keep]))
        assert same_partitions(model.apply(model.features(X[keep])),
                               m2.apply(m2.features(X[keep])))
        actual = m2.loss_from_outputs(m2.outputs(m2.features(Xq)),
                                      model.encode_target(yq)) - base
        np.testing.assert_allclose(T[:, j], actual, rtol=1e-9, atol=1e-12 * np.abs(T).max())


def _finite_difference(model, rem, j, delta=1e-5):
    """Central difference of the refit baseline and leaf values in point j's weight,
    times -w_j."""
    out = []
    for sign in (1, -1):
        w = rem.w.copy()
        w[j] *= 1 + sign * delta
        F = np.tile(model.intercept(rem.y, w), (rem.y.size, 1))
        vals = np.empty(model.n_leaves)
        kernels.refit_leaf_values(model.loss, rem.y, w, rem.leaves, F, model.leaf_start,
                                  model.fixed_zero, model.n_iter, model.learning_rate, 0.0,
                                  False, vals, model.leaf_eps)
        out.append(np.concatenate([model.intercept(rem.y, w), vals]))
    return -(out[0] - out[1]) / (2 * delta)


@pytest.mark.parametrize("case", ["squared_error", "binary", "multiclass"])
def test_leaf_influence_is_the_derivative_of_the_refit(case, cells):
    if case == "squared_error":
        X, y = load_diabetes(return_X_y=True)
        est, X, y = R(n_estimators=15, max_depth=3), X[:150], y[:150]
    else:
        X, y = cells(n=150, kind=case)
        X = X + np.random.RandomState(0).normal(scale=0.3, size=X.shape)
        est = C(n_estimators=12, max_leaf_nodes=5, learning_rate=0.3)
    w = np.random.RandomState(2).uniform(0.5, 2.0, len(y))
    inf = InfluenceFunctions(est, approximation="leaf_influence").fit(X, y, sample_weight=w)
    rem, model = inf._removal, inf.objective_
    js = [0, 17, 63, 101]
    pred = inf.parameter_changes(js)
    for c, j in enumerate(js):
        fd = _finite_difference(model, rem, j)
        np.testing.assert_allclose(pred[:, c], fd, rtol=1e-5, atol=1e-7 * np.abs(fd).max())


@pytest.mark.parametrize("kind", ["regression", "multiclass"])
def test_forward_and_backward_leaf_influence_agree(kind, cells):
    X, y = cells(n=150, kind=kind)
    X = X + np.random.RandomState(0).normal(scale=0.3, size=X.shape)
    est = (R if kind == "regression" else C)(n_estimators=10, max_leaf_nodes=6)
    inf = InfluenceFunctions(est, approximation="leaf_influence").fit(X, y)
    rem = inf._removal
    Xf, Z0, y_enc = inf._queries(X[:20], y[:20])
    q = inf.objective_.apply(Xf)
    for yy in (y_enc, None):
        forward = rem._column_block(q, Z0, yy, slice(0, len(y)))
        backward = rem._row_block(q, Z0, yy)
        np.testing.assert_allclose(backward, forward, rtol=1e-9,
                                   atol=1e-12 * np.abs(forward).max())


@pytest.mark.parametrize("approximation",
                         ["leaf_refit", "leaf_influence", "boostin", "boostin_final",
                          "boostin_contribution"])
def test_explain_self_influence_and_pipeline(approximation):
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:120], y[:120]
    pipe = make_pipeline(StandardScaler(), C(n_estimators=8, max_depth=2, random_state=0)).fit(X, y)
    inf = InfluenceFunctions(pipe, approximation=approximation).fit(X, y)
    T = inf.transform(X, y)
    np.testing.assert_allclose(np.diag(T), inf.self_influence_, rtol=1e-6, atol=1e-10)
    top = inf.explain(X[:5], y[:5], k=4)
    np.testing.assert_array_equal(top.helpful_indices, np.argsort(-T[:5], axis=1)[:, :4])
    frozen = InfluenceFunctions(FrozenEstimator(pipe), approximation=approximation).fit(X, y)
    # 7 queries go backward, 120 forward: the two passes agree to rounding
    np.testing.assert_allclose(frozen.transform(X[:7], y[:7]), T[:7], rtol=1e-9,
                               atol=1e-12 * np.abs(T).max())


def test_early_stopping_rows_and_wrong_data():
    X, y = load_breast_cancer(return_X_y=True)
    est = C(n_estimators=300, n_iter_no_change=2, validation_fraction=0.25, random_state=0)
    inf = InfluenceFunctions(est).fit(X, y)
    held_out = inf.objective_.row_position < 0
    assert held_out.sum() == np.ceil(0.25 * len(y))
    T = inf.transform(X[:30], y[:30])
    assert np.all(T[:, held_out] == 0) and np.any(T[:, ~held_out] != 0)
    fitted = C(n_estimators=5).fit(X, y)
    with pytest.raises(ValueError, match="cannot be recomputed"):
        InfluenceFunctions(FrozenEstimator(fitted)).fit(X, 1 - y)
