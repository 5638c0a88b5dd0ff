"""ValueSampler: dropping the lowest-valued rows inside an imbalanced-learn grid search."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceCleaner, InfluenceFunctions
from skinfluence.datasets import make_noisy_labels
from skinfluence.sampling import ValueSampler, row_values
from skinfluence.valuation import DataOOB, KNNShapley

imblearn_pipeline = pytest.importorskip("imblearn.pipeline")


class CountedValuer(BaseEstimator):
    """A valuer counting its valuations (module level: picklable, cacheable)."""

    n_valuations = 0

    def __init__(self, valuer=None):
        self.valuer = valuer

    def fit(self, X, y):
        type(self).n_valuations += 1
        self.values_ = row_values(clone(self.valuer).fit(X, y))
        return self


def test_drops_the_lowest_valued_fraction():
    X = pd.DataFrame({"a": np.arange(10.0)}, index=np.arange(10) * 3)
    y = pd.Series(np.arange(10) % 2, index=X.index)

    class Fixed(BaseEstimator):
        def fit(self, X, y):
            self.values_ = np.array([5, 1, 9, 0, 7, 3, 3, 8, 2, 6], dtype=float)
            return self

    sampler = ValueSampler(Fixed(), fraction=0.3)
    Xk, yk = sampler.fit_resample(X, y)
    # values 0, 1, 2 at rows 3, 1, 8 go
    np.testing.assert_array_equal(Xk.index, X.index[[0, 2, 4, 5, 6, 7, 9]])
    np.testing.assert_array_equal(yk.index, Xk.index)
    np.testing.assert_array_equal(sampler.get_mask(), ~np.isin(np.arange(10), [1, 3, 8]))
    with pytest.raises(ValueError, match="drop all"):
        ValueSampler(Fixed(), fraction=0.99).fit_resample(X, y)
    with pytest.raises(TypeError, match="no value per training row"):
        row_values(LogisticRegression())


def test_reads_every_kind_of_valuer():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:120]
    y = y[:120]
    lr = LogisticRegression(max_iter=5000)
    inf = InfluenceFunctions(lr).fit(X, y)
    np.testing.assert_array_equal(row_values(inf), -inf.self_influence_)
    cleaner = InfluenceCleaner(lr).fit(X, y)
    np.testing.assert_array_equal(row_values(cleaner), -cleaner.scores_)


def test_grid_over_method_and_fraction_beats_uncleaned_at_one_valuation_per_fold(tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    y_noisy, _ = make_noisy_labels(y_tr, 0.2, random_state=0)
    lr = LogisticRegression(max_iter=5000)
    methods = [CountedValuer(DataOOB(lr, n_estimators=50, random_state=0)),
               CountedValuer(InfluenceCleaner(lr))]
    pipe = imblearn_pipeline.Pipeline([
        ("scale", StandardScaler()),
        ("drop", ValueSampler(methods[0], memory=str(tmp_path))),
        ("model", lr),
    ])
    grid = {"drop__valuer": methods, "drop__fraction": [0.0, 0.1, 0.2, 0.3]}
    CountedValuer.n_valuations = 0
    search = GridSearchCV(pipe, grid, cv=3).fit(X_tr, y_noisy)
    # one valuation per method and fold, whatever the number of fractions, plus the refit
    assert CountedValuer.n_valuations == len(methods) * 3 + 1
    assert search.best_params_["drop__fraction"] > 0
    uncleaned = imblearn_pipeline.Pipeline([("scale", StandardScaler()), ("model", lr)])
    assert search.score(X_te, y_te) > uncleaned.fit(X_tr, y_noisy).score(X_te, y_te)


def test_cross_fitting_values_each_row_against_held_out_rows_of_the_fold():
    # a valuer that needs a validation set: each split's training rows are valued on its
    # held-out rows, and a row's value is the mean over the splits it trains in
    X, y = load_breast_cancer(return_X_y=True)
    X, y = StandardScaler().fit_transform(X)[:120], y[:120]
    valuer = KNNShapley(n_neighbors=5)
    sampler = ValueSampler(valuer, fraction=0.25, cv=3)
    X_kept, y_kept = sampler.fit_resample(X, y)
    total, count = np.zeros(120), np.zeros(120)
    for train, val in StratifiedKFold(3).split(X, y):
        total[train] += clone(valuer).fit(X[train], y[train], X_val=X[val],
                                          y_val=y[val]).values_
        count[train] += 1
    assert np.all(count == 2)
    np.testing.assert_allclose(sampler.values_, total / count, rtol=1e-12, atol=1e-15)
    assert X_kept.shape[0] == 90
    kept = set(np.argsort(total / count, kind="stable")[30:].tolist())
    assert set(sampler.sample_indices_.tolist()) == kept
    # a valuer without a validation set cannot be cross-fitted
    with pytest.raises(ValueError, match="takes none: use cv=None"):
        ValueSampler(CountedValuer(DataOOB(LogisticRegression())), cv=3).fit_resample(X, y)


def test_cross_fitting_finds_flipped_labels():
    # KNN-Shapley on held-out rows of the fold: flipped labels disagree with their
    # neighbours, so they are over-represented among the dropped rows
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:300]
    y_noisy, flipped = make_noisy_labels(y[:300], 0.2, random_state=0)
    sampler = ValueSampler(KNNShapley(n_neighbors=10), fraction=0.2, cv=4)
    sampler.fit_resample(X, y_noisy)
    dropped = ~sampler.get_mask()
    assert np.mean(flipped[dropped]) > 2 * np.mean(flipped)
