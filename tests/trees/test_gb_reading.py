"""Reading fitted GradientBoosting models: routing, baseline and every leaf value.

scikit-learn sets each leaf to one Newton step of the loss over its rows, in float64
(``_update_terminal_regions``); recomputing every leaf value from the training data must
give the fitted values to rounding: the proof that the model is read right (which rows
grew each tree, weights, loss, shrinkage, Friedman's (K - 1) / K factor, the prior).
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

from skinfluence.trees._gb import GradientBoostingModel

R, C = GradientBoostingRegressor, GradientBoostingClassifier


def _cases():
    Xd, yd = load_diabetes(return_X_y=True)
    Xc, yc = load_breast_cancer(return_X_y=True)
    Xi, yi = load_iris(return_X_y=True)
    w = np.random.RandomState(1).uniform(0.2, 3.0, 600)
    return {
        "squared_error": (R(n_estimators=30, max_depth=3), Xd, yd, None),
        "weighted": (R(n_estimators=30, learning_rate=0.3, max_leaf_nodes=6), Xd, yd,
                     w[:len(yd)]),
        "binary": (C(n_estimators=30), Xc, yc, w[:len(yc)]),
        "multiclass": (C(n_estimators=20, learning_rate=0.3), Xi, yi, None),
        "zero_init": (C(n_estimators=15, init="zero"), Xi, yi, w[:len(yi)]),
        "max_features": (C(n_estimators=20, max_features=0.5, random_state=0), Xc, yc, None),
        "early_stopping": (
            C(n_estimators=300, n_iter_no_change=2, validation_fraction=0.2,
              random_state=0), Xc, yc, None),
    }


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_leaf_value_is_recomputed_exactly(name, recompute_leaf_values):
    est, X, y, w = CASES[name]
    est.fit(X, y, sample_weight=w)
    model = GradientBoostingModel(est).attach(X, y, sample_weight=w)
    rows = model.rows
    if name == "early_stopping":
        assert est.n_estimators_ < est.n_estimators and 0 < rows.size < len(y)
    Xf = model.features(X)
    raw = (est.decision_function(X).reshape(len(y), -1) if hasattr(est, "classes_")
           else est.predict(X)[:, None])
    np.testing.assert_allclose(model.outputs(Xf), raw, rtol=0, atol=1e-12 * np.abs(raw).max())
    values = recompute_leaf_values(model, model.apply(Xf[rows]), 0.0, False, model.leaf_eps)
    np.testing.assert_allclose(values, model.values, rtol=1e-12,
                               atol=1e-14 * np.abs(model.values).max())


def test_refusals_name_the_closest_supported_model():
    Xd, yd = load_diabetes(return_X_y=True)
    Xc, yc = load_breast_cancer(return_X_y=True)
    for loss in ("absolute_error", "huber", "quantile"):
        with pytest.raises(ValueError, match="loss='squared_error'"):
            GradientBoostingModel(R(loss=loss, n_estimators=2).fit(Xd, yd))
    with pytest.raises(ValueError, match="loss='log_loss'"):
        GradientBoostingModel(C(loss="exponential", n_estimators=2).fit(Xc, yc))
    with pytest.raises(ValueError, match="init=None"):
        GradientBoostingModel(R(init=DummyRegressor(), n_estimators=2).fit(Xd, yd))
    with pytest.raises(ValueError, match="subsample=1.0"):
        GradientBoostingModel(R(subsample=0.5, n_estimators=2, random_state=0).fit(Xd, yd))
    with pytest.raises(ValueError, match="integer random_state"):
        GradientBoostingModel(R(n_iter_no_change=2, n_estimators=5).fit(Xd, yd))
