"""Reading fitted HistGradientBoosting models: routing, baseline and every leaf value.

Recomputing every leaf value from the training data, with scikit-learn's float32
gradients, must give the fitted model's values: the proof that the model is read right
(the structure, which rows grew each tree, the weights, the loss, shrinkage and l2).
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from skinfluence.trees import _boosting_kernels as kernels
from skinfluence.trees._hgb import BoostedModel


def _mixed_data(n=400, seed=0):
    """Numerical, categorical and missing values, with a target depending on all."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 4))
    X[:, 1] = rng.randint(0, 6, n)
    X[rng.rand(n) < 0.15, 0] = np.nan
    X[rng.rand(n) < 0.1, 1] = np.nan
    y = np.nan_to_num(X[:, 0]) + (np.nan_to_num(X[:, 1], nan=7) % 3) + rng.normal(size=n)
    return X, y


def _cases():
    Xd, yd = load_diabetes(return_X_y=True)
    Xc, yc = load_breast_cancer(return_X_y=True)
    Xi, yi = load_iris(return_X_y=True)
    Xm, ym = _mixed_data()
    w = np.random.RandomState(1).uniform(0.2, 3.0, len(yd))
    R, C = HistGradientBoostingRegressor, HistGradientBoostingClassifier
    return {
        "squared_error": (R(max_iter=40), Xd, yd, None),
        "weighted_l2": (R(max_iter=40, l2_regularization=0.7, learning_rate=0.3), Xd, yd, w),
        "poisson": (R(loss="poisson", max_iter=30), Xd, yd, None),
        "gamma": (R(loss="gamma", max_iter=30), Xd, yd, None),
        "binary": (C(max_iter=40), Xc, yc, None),
        "multiclass": (C(max_iter=25, learning_rate=0.3), Xi, yi, None),
        "class_weight_dict": (C(max_iter=20, class_weight={0: 2.0, 1: 0.5}), Xc, yc, None),
        "categorical_missing": (
            R(max_iter=30, categorical_features=[1], max_features=0.5, random_state=0), Xm, ym,
            None),
        "interaction_cst": (R(max_iter=30, interaction_cst=[[0, 1], [2, 3]]), Xm, ym, None),
        "early_stopping": (
            C(max_iter=200, early_stopping=True, validation_fraction=0.2, n_iter_no_change=3,
              random_state=0), Xc, yc, None),
    }


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_leaf_value_is_recomputed_exactly(name, recompute_leaf_values):
    est, X, y, w = CASES[name]
    est.fit(X, y, sample_weight=w)
    model = BoostedModel(est).attach(X, y, sample_weight=w)
    rows = model.rows
    if name == "early_stopping":
        assert est.n_iter_ < est.max_iter and 0 < rows.size < len(y)
    Xf = model.features(X)
    leaves = model.apply_binned(model.binned(Xf[rows]))
    # raw routing of the training rows agrees with the binned routing of training
    np.testing.assert_array_equal(model.apply(Xf)[:, rows], leaves)
    np.testing.assert_allclose(model.outputs(Xf), est._raw_predict(X), rtol=0, atol=1e-12)
    values = recompute_leaf_values(model, leaves, model.l2_regularization, True)
    np.testing.assert_allclose(values, model.values, rtol=0, atol=1e-12)


@pytest.mark.parametrize("loss", ["squared_error", "poisson", "gamma", "binary", "multiclass"])
def test_gradients_are_scikit_learns(loss):
    rng = np.random.RandomState(0)
    n = 50
    if loss == "multiclass":
        est = HistGradientBoostingClassifier(max_iter=2).fit(rng.normal(size=(30, 2)),
                                                             np.arange(30) % 3)
        y = (np.arange(n) % 3).astype(float)
        F = rng.normal(scale=3, size=(n, 3))
    else:
        if loss == "binary":
            est = HistGradientBoostingClassifier(max_iter=2).fit(rng.normal(size=(30, 2)),
                                                                 np.arange(30) % 2)
            y = (np.arange(n) % 2).astype(float)
        else:
            est = HistGradientBoostingRegressor(loss=loss, max_iter=2).fit(
                rng.normal(size=(30, 2)), rng.uniform(0.5, 2, 30))
            y = rng.uniform(0.1, 3, n)
        F = rng.normal(scale=3, size=(n, 1))
        F[:3, 0] = [-40.0, 25.0, 0.0]  # both branches of the binomial formulas
    model = BoostedModel(est)
    w = rng.uniform(0.5, 2, n)
    g, h = np.empty_like(F), np.empty_like(F)
    kernels.gradients(model.loss, y, F, w, g, h, False)
    raw = F[:, 0] if F.shape[1] == 1 else F
    g_ref, h_ref = est._loss.gradient_hessian(y_true=y, raw_prediction=raw, sample_weight=w)
    np.testing.assert_allclose(g, g_ref.reshape(F.shape), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(h, h_ref.reshape(F.shape), rtol=1e-14, atol=1e-15)


def test_single_leaf_trees_keep_value_zero():
    # a constant target: every tree is its root, which scikit-learn leaves at 0
    X = np.random.RandomState(0).normal(size=(60, 2))
    est = HistGradientBoostingRegressor(max_iter=3).fit(X, np.full(60, 2.0))
    model = BoostedModel(est)
    assert model.fixed_zero.all() and np.all(model.values == 0)


@pytest.mark.parametrize(
    "est, match",
    [
        (HistGradientBoostingRegressor(loss="absolute_error", max_iter=3), "absolute_error"),
        (HistGradientBoostingRegressor(loss="quantile", quantile=0.3, max_iter=3), "quantile"),
        (HistGradientBoostingRegressor(monotonic_cst=[1, 0], max_iter=3), "monotonic_cst"),
        (HistGradientBoostingClassifier(class_weight="balanced", max_iter=3), "balanced"),
    ],
)
def test_unsupported_models_are_named(est, match):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 2))
    y = (X[:, 0] > 0).astype(int) if hasattr(est, "predict_proba") else X[:, 0] + 3
    est.fit(X, y)
    with pytest.raises(ValueError, match=match):
        BoostedModel(est)
