"""InfluenceCleaner on regression targets: leave-one-out residuals against actual refits,
their standardisation, false positives on clean data, detection, scikit-learn integration."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.base import clone
from sklearn.datasets import load_diabetes, make_regression
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    SGDRegressor,
)
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_predict
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfluence import InfluenceCleaner, InfluenceFunctions
from skinfluence.cleaning._regression import MAD_TO_SD, combined_scores


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X[:150], y[:150]


def _refit_predictions(est, X, y, sample_weight=None):
    """Each row's prediction by ``est`` refit without it (brute force)."""
    out = []
    for j in range(X.shape[0]):
        keep = np.arange(X.shape[0]) != j
        fit = {} if sample_weight is None else {"sample_weight": sample_weight[keep]}
        out.append(clone(est).fit(X[keep], y[keep], **fit).predict(X[j : j + 1])[0])
    return np.array(out)


def _shifted(y, fraction, size, seed):
    rng = np.random.default_rng(seed)
    rows = rng.choice(y.shape[0], int(fraction * y.shape[0]), replace=False)
    y_noisy = y.copy()
    y_noisy[rows] += rng.choice([-1.0, 1.0], rows.size) * size * y.std()
    truth = np.zeros(y.shape[0], dtype=bool)
    truth[rows] = True
    return y_noisy, truth


# ------------------------------------------------------------ fidelity
@pytest.mark.parametrize("est", [Ridge(alpha=0.3), LinearRegression(),
                                 Ridge(alpha=2.0, fit_intercept=False)])
@pytest.mark.parametrize("weighted", [False, True])
def test_loo_predictions_equal_refits(diabetes, est, weighted):
    """Least squares: the Newton step is exact, so predictions_ are the refits' (1e-8)."""
    X, y = diabetes
    sw = np.random.default_rng(0).uniform(0.2, 3.0, y.shape[0]) if weighted else None
    cleaner = InfluenceCleaner(est).fit(X, y, sample_weight=sw)
    assert cleaner.task_ == "regression" and cleaner.influence_ is None  # the fast path
    exact = _refit_predictions(est, X, y, sw)
    np.testing.assert_allclose(cleaner.predictions_, exact, rtol=1e-8, atol=1e-8 * y.std())


def test_multi_output_ridge_loo_predictions_equal_refits(diabetes):
    X, y = diabetes
    Y = np.column_stack([y, np.log(y), -2.0 * y + X[:, 0]])
    est = Ridge(alpha=np.array([0.1, 1.0, 3.0]))
    cleaner = InfluenceCleaner(est).fit(X, Y)
    exact = np.array([clone(est).fit(np.delete(X, j, 0), np.delete(Y, j, 0)).predict(X[[j]])[0]
                      for j in range(Y.shape[0])])
    np.testing.assert_allclose(cleaner.predictions_, exact, rtol=1e-8, atol=1e-8 * Y.std())
    assert cleaner.z_scores_.shape == Y.shape and cleaner.scores_.shape == (Y.shape[0],)


def test_press_residuals_and_studentised_scores_from_the_hat_matrix(diabetes):
    """OLS: y - predictions_ is e_i / (1 - h_ii), and z_scores_ is e_i / sqrt(1 - h_ii)
    centred on its median over 1.4826 MAD, with h from the explicit hat matrix."""
    X, y = diabetes
    cleaner = InfluenceCleaner(LinearRegression()).fit(X, y)
    Xa = np.column_stack([X, np.ones(y.shape[0])])
    h = np.einsum("ij,ji->i", Xa, np.linalg.solve(Xa.T @ Xa, Xa.T))
    e = y - Xa @ np.linalg.lstsq(Xa, y, rcond=None)[0]
    np.testing.assert_allclose(y - cleaner.predictions_, e / (1 - h), rtol=1e-8, atol=1e-8)
    v = e / np.sqrt(1 - h)
    z = (v - np.median(v)) / (MAD_TO_SD * np.median(np.abs(v - np.median(v))))
    np.testing.assert_allclose(cleaner.z_scores_, z, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(cleaner.scores_, np.abs(z), rtol=1e-8, atol=1e-10)


def test_poisson_newton_step_is_close_to_refits():
    """GLMs: one Newton step of the objective without the row from the fitted parameters.
    Its error is second order in the removal: measured 1.7% of the leave-one-out change
    and 8e-4 of the prediction at n=200; the bounds leave a factor 3 and 2.5."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = rng.poisson(np.exp(X @ [0.4, -0.3, 0.2] + 1.0)).astype(float)
    est = PoissonRegressor(alpha=1e-3, tol=1e-12, solver="newton-cholesky")
    cleaner = InfluenceCleaner(est).fit(X, y)
    exact = _refit_predictions(est, X, y)
    change = exact - cleaner.estimator_.predict(X)
    assert np.max(np.abs(cleaner.predictions_ - exact) / np.abs(change)) < 0.05
    np.testing.assert_allclose(cleaner.predictions_, exact, rtol=2e-3)


@pytest.mark.parametrize("est", [SGDRegressor(random_state=0, tol=1e-8, max_iter=5000),
                                 MLPRegressor(hidden_layer_sizes=(4,), max_iter=3000,
                                              random_state=0)])
def test_other_models_use_the_influence_engine(diabetes, est):
    X, y = diabetes
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cleaner = InfluenceCleaner(est).fit(X, y)
        engine = InfluenceFunctions(FrozenEstimator(cleaner.estimator_), refine=0).fit(X, y)
    np.testing.assert_allclose(cleaner.predictions_, engine.loo_decision_function()[:, 0],
                               rtol=1e-12, atol=1e-12)
    assert cleaner.influence_ is not None


# ------------------------------------------------------------ standardisation
def test_scores_do_not_depend_on_the_units_of_y(diabetes):
    X, y = diabetes
    a = InfluenceCleaner(Ridge(alpha=0.1)).fit(X, y)
    b = InfluenceCleaner(Ridge(alpha=0.1)).fit(X, 1000.0 * y - 7.0)
    np.testing.assert_allclose(a.z_scores_, b.z_scores_, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(a.issues_, b.issues_)


def test_several_targets_combine_to_the_same_gaussian_tail():
    """One threshold flags the same share of Gaussian rows for one target or K."""
    z = np.random.default_rng(0).normal(size=(400_000, 3))
    t = 2.0
    np.testing.assert_allclose(combined_scores(z[:, :1]), np.abs(z[:, 0]))
    for K in (2, 3):
        # binomial standard deviation of the share: 3.5e-4; the bound is 4 of them
        assert abs((combined_scores(z[:, :K]) > t).mean() - 2 * norm.sf(t)) < 1.5e-3


def test_false_positive_rate_on_clean_gaussian_data():
    """About 1% of clean rows are flagged: 10000 rows, binomial sd 0.1%, bound 4 sd."""
    flagged = []
    for seed in range(5):
        X, y = make_regression(2000, 10, noise=5.0, random_state=seed)
        flagged.append(InfluenceCleaner(Ridge()).fit(X, y).issues_)
    assert abs(np.mean(flagged) - 0.01) < 0.004


def test_false_positive_rate_on_clean_poisson_data():
    """Deviance residuals keep the rate near 1% although the variance grows with the mean."""
    flagged = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(2000, 5))
        y = rng.poisson(np.exp(X @ [0.3, -0.2, 0.1, 0.0, 0.2] + 1.0)).astype(float)
        flagged.append(InfluenceCleaner(PoissonRegressor(alpha=1e-4)).fit(X, y).issues_)
    assert abs(np.mean(flagged) - 0.01) < 0.004


def test_exactly_fitted_targets_warn_and_are_not_flagged():
    """Residuals of rounding size are not scaled up into random flags."""
    X = np.random.default_rng(0).normal(size=(80, 3))
    y = X @ [1.0, 2.0, -1.0] + 4.0
    with pytest.warns(UserWarning, match="reproduces more than half"):
        cleaner = InfluenceCleaner(LinearRegression()).fit(X, y)
    assert cleaner.n_issues_ == 0 and np.abs(cleaner.z_scores_).max() < 1e-3


def test_leverage_one_rows_warn_and_are_not_flagged():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=(40, 2)), np.zeros(40)])
    X[7, 2] = 1.0  # the only row with this feature: the refit without it is undetermined
    y = X[:, 0] + rng.normal(size=40)
    with pytest.warns(RuntimeWarning, match="leverage 1"):
        cleaner = InfluenceCleaner(LinearRegression()).fit(X, y)
    assert cleaner.z_scores_[7] == 0.0 and not cleaner.issues_[7]


# ------------------------------------------------------------ detection
@pytest.mark.parametrize("corruption", ["shift", "swap"])
def test_detects_corrupted_targets(corruption):
    X, y = load_diabetes(return_X_y=True)
    rng = np.random.default_rng(0)
    if corruption == "shift":
        y_noisy, truth = _shifted(y, 0.1, 3.0, seed=0)
    else:  # swap the targets of pairs of rows far apart in y
        order = np.argsort(y)
        lo, hi = rng.permutation(order[:100])[:22], rng.permutation(order[-100:])[:22]
        y_noisy = y.copy()
        y_noisy[lo], y_noisy[hi] = y[hi], y[lo]
        truth = np.zeros(y.shape[0], dtype=bool)
        truth[lo] = truth[hi] = True
    cleaner = InfluenceCleaner(make_pipeline(StandardScaler(), Ridge())).fit(X, y_noisy)
    assert roc_auc_score(truth, cleaner.scores_) > 0.95
    assert (cleaner.issues_ & truth).sum() / cleaner.n_issues_ > 0.85
    flagged = cleaner.issues_
    np.testing.assert_array_equal(cleaner.suggested_labels_[flagged], cleaner.predictions_[flagged])
    np.testing.assert_array_equal(cleaner.suggested_labels_[~flagged], y_noisy[~flagged])


# ------------------------------------------------------------ methods and task
def test_other_methods(diabetes):
    X, y = diabetes
    y_noisy, truth = _shifted(y, 0.1, 4.0, seed=1)
    loo = InfluenceCleaner(Ridge(alpha=0.1)).fit(X, y_noisy)
    for method in ("loss", "cross_val", "self_influence"):
        c = InfluenceCleaner(Ridge(alpha=0.1), method=method).fit(X, y_noisy)
        assert roc_auc_score(truth, c.scores_) > 0.9, method
    si = InfluenceCleaner(Ridge(alpha=0.1), method="self_influence").fit(X, y_noisy)
    assert si.n_issues_ == loo.n_issues_  # as many as the leave-one-out rule flags
    cv = InfluenceCleaner(Ridge(alpha=0.1), method="cross_val").fit(X, y_noisy)
    expect = cross_val_predict(Ridge(alpha=0.1), X, y_noisy,
                               cv=KFold(5, shuffle=True, random_state=0))
    np.testing.assert_allclose(cv.predictions_, expect)
    X_all, y_all = load_diabetes(return_X_y=True)
    val = InfluenceCleaner(Ridge(alpha=0.1), method="validation").fit(
        X, y_noisy, X_val=X_all[150:], y_val=y_all[150:])  # rows the fit did not see
    assert roc_auc_score(truth, val.scores_) > 0.8
    frac = InfluenceCleaner(Ridge(alpha=0.1), threshold=0.2).fit(X, y_noisy)
    assert frac.n_issues_ == 30


def test_task_comes_from_the_model_then_the_target(diabetes):
    X, y = diabetes  # integer-valued floats: "multiclass" to type_of_target
    assert InfluenceCleaner(Ridge()).fit(X, y).task_ == "regression"
    default = InfluenceCleaner().fit(X, y + 0.5)
    assert default.task_ == "regression" and isinstance(default.estimator_, Ridge)
    assert not hasattr(default, "classes_") and not hasattr(default, "proba_")
    with pytest.raises(ValueError, match="pass a regressor"):
        InfluenceCleaner(LogisticRegression()).fit(X, y + 0.5)
    labels = (y > np.median(y)).astype(int)
    c = default.fit(X, labels)  # the same cleaner refit on labels forgets the regression
    assert c.task_ == "classification" and not hasattr(c, "predictions_")
    assert isinstance(c.estimator_, LogisticRegression)


def test_frozen_fitted_model_is_scored_as_is(diabetes):
    X, y = diabetes
    fitted = Ridge(alpha=0.5).fit(X, y)
    frozen = InfluenceCleaner(FrozenEstimator(fitted)).fit(X, y)
    plain = InfluenceCleaner(Ridge(alpha=0.5)).fit(X, y)
    assert frozen.estimator_.estimator is fitted
    np.testing.assert_allclose(frozen.z_scores_, plain.z_scores_, rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------ scikit-learn integration
def test_fit_resample_remove_and_relabel_with_pandas(diabetes):
    X, y = diabetes
    y_noisy, _ = _shifted(y, 0.1, 4.0, seed=2)
    Xd = pd.DataFrame(X, index=np.arange(100, 100 + len(y)))
    ys = pd.Series(y_noisy, index=Xd.index, name="target")
    cleaner = InfluenceCleaner(Ridge(alpha=0.1))
    Xc, yc = cleaner.fit_resample(Xd, ys)
    assert len(Xc) == len(yc) == len(y) - cleaner.n_issues_ and cleaner.n_issues_ > 0
    assert (Xc.index == yc.index).all()
    cleaner.set_params(action="relabel")
    Xr, yr = cleaner.fit_resample(Xd, ys)
    assert Xr is Xd and isinstance(yr, pd.Series) and yr.name == "target"
    np.testing.assert_array_equal(yr.to_numpy(), cleaner.suggested_labels_)
    Yd = pd.DataFrame({"a": y_noisy, "b": -y_noisy}, index=Xd.index)
    _, Yr = cleaner.fit_resample(Xd, Yd)
    assert list(Yr.columns) == ["a", "b"] and Yr.shape == Yd.shape


def test_pipeline_and_grid_search(diabetes):
    X, y = diabetes
    grid = {"estimator__alpha": [0.01, 1.0]}
    search = GridSearchCV(InfluenceCleaner(Ridge()), grid, cv=3).fit(X, y)
    plain = GridSearchCV(Ridge(), {"alpha": [0.01, 1.0]}, cv=3).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               plain.cv_results_["mean_test_score"])  # R^2 of the model
    pipe = make_pipeline(StandardScaler(), InfluenceCleaner(Ridge())).fit(X, y)
    np.testing.assert_allclose(pipe.predict(X), make_pipeline(StandardScaler(), Ridge())
                               .fit(X, y).predict(X))


def test_imblearn_pipeline_removes_the_flagged_rows(diabetes):
    imblearn = pytest.importorskip("imblearn")
    X, y = diabetes
    y_noisy, _ = _shifted(y, 0.1, 4.0, seed=3)
    pipe = imblearn.pipeline.make_pipeline(InfluenceCleaner(Ridge(alpha=0.1)), Ridge(alpha=0.1))
    pipe.fit(X, y_noisy)
    keep = ~pipe[0].issues_
    np.testing.assert_allclose(pipe[-1].coef_, Ridge(alpha=0.1).fit(X[keep], y_noisy[keep]).coef_)


def test_clean_classifier_refuses_regression_targets(diabetes):
    from skinfluence import CleanClassifier

    X, y = diabetes
    for model, target in ((Ridge(), y), (None, y + 0.5)):
        with pytest.raises(ValueError, match="CleanClassifier cleans class labels"):
            CleanClassifier(model).fit(X, target)


def test_bad_regression_inputs(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match="z_threshold"):
        InfluenceCleaner(Ridge(), z_threshold=0.0).fit(X, y)
    y_nan = y.copy()
    y_nan[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        InfluenceCleaner(Ridge()).fit(X, y_nan)
    with pytest.raises(ValueError, match="non-negative|valid range"):
        InfluenceCleaner(PoissonRegressor()).fit(X, y - 200.0)
    with pytest.raises(ValueError, match="at least 5 samples"):
        InfluenceCleaner(Ridge(), method="cross_val").fit(X[:4], y[:4])


@parametrize_with_checks([InfluenceCleaner(Ridge())])
def test_sklearn_compatible_regressor(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


def test_lasso_cleaning_with_corrupted_targets(diabetes):
    """Lasso through the regression path: its leave-one-out predictions are the refits'
    (exact on the active set, refits where it changes), and shifted targets stand out."""
    from sklearn.linear_model import Lasso

    X, y = diabetes
    X = StandardScaler().fit_transform(X)
    y_noisy, truth = _shifted(y, 0.1, 4.0, seed=3)
    est = Lasso(alpha=1.0, tol=1e-14, max_iter=100_000)
    cleaner = InfluenceCleaner(est).fit(X, y_noisy)
    assert cleaner.task_ == "regression" and cleaner.influence_ is not None
    assert np.any(cleaner.estimator_.coef_ == 0)
    exact = _refit_predictions(est, X, y_noisy)
    assert cleaner.influence_.n_active_set_changes_ > 0  # refit, not stepped
    np.testing.assert_allclose(cleaner.predictions_, exact, rtol=0, atol=1e-8 * y.std())
    assert roc_auc_score(truth, cleaner.scores_) > 0.95
    assert truth[cleaner.issues_].mean() > 0.8
