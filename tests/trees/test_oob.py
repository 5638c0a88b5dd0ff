"""Out-of-bag predictions of fitted forests in InfluenceCleaner and DataOOB."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceCleaner
from skinfluence.datasets import make_noisy_labels
from skinfluence.valuation import DataOOB

X_CLF, Y_CLF = load_breast_cancer(return_X_y=True)
X_REG, Y_REG = load_diabetes(return_X_y=True)


def test_cleaner_uses_the_forests_out_of_bag_probabilities():
    y_noisy, flipped = make_noisy_labels(Y_CLF, 0.1, random_state=0)
    forest = RandomForestClassifier(100, oob_score=True, random_state=0)
    reference = forest.fit(X_CLF, y_noisy).oob_decision_function_
    cleaner = InfluenceCleaner(RandomForestClassifier(100, random_state=0)).fit(X_CLF, y_noisy)
    np.testing.assert_allclose(cleaner.proba_, reference, atol=1e-12)
    assert cleaner.influence_ is None  # no influence engine, no refit
    precision = (cleaner.issues_ & flipped).sum() / cleaner.n_issues_
    recall = (cleaner.issues_ & flipped).sum() / flipped.sum()
    assert precision > 0.7 and recall > 0.7
    # an already fitted forest: not refit, the same flags
    frozen = InfluenceCleaner(FrozenEstimator(forest)).fit(X_CLF, y_noisy)
    np.testing.assert_array_equal(frozen.issues_, cleaner.issues_)
    assert frozen.estimator_.estimator is forest


def test_cleaner_pipeline_forest_and_too_few_trees():
    model = make_pipeline(StandardScaler(), RandomForestClassifier(3, random_state=0))
    with pytest.warns(UserWarning, match="in the bootstrap sample of every tree"):
        cleaner = InfluenceCleaner(model).fit(X_CLF[:200], Y_CLF[:200])
    assert cleaner.proba_.shape == (200, 2)
    assert np.allclose(cleaner.proba_.sum(axis=1), 1.0)


def test_cleaner_non_bagged_forest_uses_exact_leave_one_out():
    X, y = X_CLF[:80], Y_CLF[:80]
    model = RandomForestClassifier(3, bootstrap=False, max_features=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not a linear model" warning
        cleaner = InfluenceCleaner(model).fit(X, y)
    sw = np.ones(len(y))
    sw[4] = 0.0
    refit = RandomForestClassifier(3, bootstrap=False, max_features=None,
                                   random_state=0).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(cleaner.proba_[4], refit.predict_proba(X[4:5])[0], atol=1e-12)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_data_oob_of_a_fitted_forest_uses_its_own_trees(task):
    if task == "classification":
        X, y, forest = X_CLF, Y_CLF, RandomForestClassifier(30, random_state=0)
    else:
        X, y, forest = X_REG, Y_REG, RandomForestRegressor(30, random_state=0)
    forest.fit(X, y)
    values = DataOOB(FrozenEstimator(forest)).fit(X, y)
    total, count = np.zeros(len(y)), np.zeros(len(y))
    for tree, idx in zip(forest.estimators_, forest.estimators_samples_):
        oob = np.ones(len(y), bool)
        oob[idx] = False
        pred = tree.predict(X[oob].astype(np.float32))
        if task == "classification":
            score = (forest.classes_[pred.astype(int)] == y[oob]).astype(float)
        else:
            score = -((pred - y[oob]) ** 2)
        total[oob] += score
        count[oob] += 1
    np.testing.assert_allclose(values.values_, total / count, rtol=1e-12)
    np.testing.assert_array_equal(values.n_oob_, count)
    assert values.estimator_ is values.estimator  # the frozen forest, not refit


def test_regression_cleaner_uses_out_of_bag_predictions():
    rng = np.random.default_rng(0)
    X, y = X_REG[:200], Y_REG[:200].copy()
    shifted = rng.choice(200, 10, replace=False)
    y[shifted] += 3 * y.std()
    forest = RandomForestRegressor(60, min_samples_leaf=5, random_state=0)
    reference = forest.set_params(oob_score=True).fit(X, y).oob_prediction_
    cleaner = InfluenceCleaner(RandomForestRegressor(60, min_samples_leaf=5, random_state=0))
    cleaner.fit(X, y)
    assert cleaner.task_ == "regression" and cleaner.influence_ is None
    np.testing.assert_allclose(cleaner.predictions_, reference, rtol=1e-12)
    assert np.isin(np.flatnonzero(cleaner.issues_), shifted).mean() >= 0.8


def test_regression_cleaner_non_bagged_tree_is_exact_leave_one_out():
    from sklearn.base import clone
    from sklearn.tree import DecisionTreeRegressor

    X, y = X_REG[:80], Y_REG[:80]
    tree = DecisionTreeRegressor(min_samples_leaf=5, random_state=0)
    cleaner = InfluenceCleaner(tree).fit(X, y)
    for j in (0, 13, 41):
        w = np.ones(80)
        w[j] = 0.0
        refit = clone(tree).fit(X, y, sample_weight=w)
        assert cleaner.predictions_[j] == pytest.approx(refit.predict(X[j:j + 1])[0], rel=1e-12)
