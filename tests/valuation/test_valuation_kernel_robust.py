"""InfluenceValuation on kernel and robust models (KernelRidge, GaussianProcessRegressor,
HuberRegressor): rows with corrupted targets get the lowest values, with no change to it."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import HuberRegressor
from sklearn.metrics import roc_auc_score

from skinfluence.valuation import InfluenceValuation

# model, signs of the target shifts, smallest AUC and corrupted rows among the 15 lowest
MODELS = {
    "kernel-ridge": (KernelRidge(alpha=0.3, kernel="rbf", gamma=0.05), "random", 0.85, 8),
    "gaussian-process": (GaussianProcessRegressor(ConstantKernel() * RBF(3.0)
                                                  + WhiteKernel(0.5), normalize_y=True),
                         "random", 0.85, 8),
    # a Huber fit bounds each corrupted row's pull, so shifts of random signs barely hurt
    # it (refits agree: the values follow them, see test_huber.py); shifts of one sign
    # still bias its intercept, and those rows are the harmful ones
    "huber": (HuberRegressor(epsilon=1.35, alpha=1e-3, max_iter=1000), "same", 0.75, 5),
}


pytestmark = pytest.mark.usefixtures("single_blas_thread")


@pytest.mark.parametrize("name", list(MODELS))
def test_corrupted_rows_get_the_lowest_values(name):
    X, y = load_diabetes(return_X_y=True)
    X = (X - X[:150].mean(0)) / X[:150].std(0)
    y = (y - y.mean()) / y.std()
    X, y, Xv, yv = X[:150], y[:150], X[300:400], y[300:400]
    rng = np.random.default_rng(0)
    rows = rng.choice(150, 15, replace=False)
    y_noisy = y.copy()
    model, signs, auc, n_bottom = MODELS[name]
    y_noisy[rows] += 3.0 * (rng.choice([-1.0, 1.0], rows.size) if signs == "random" else 1.0)
    truth = np.isin(np.arange(150), rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the GP's optimiser at its bounds
        iv = InfluenceValuation(clone(model)).fit(X, y_noisy, X_val=Xv, y_val=yv)
    values = iv.values_
    assert values.shape == (150,)
    # harmful rows have negative values: the lowest ones are the corrupted rows
    assert roc_auc_score(truth, -values) > auc
    bottom = np.argsort(values)[:15]
    assert truth[bottom].sum() >= n_bottom  # against 1.5 expected by chance
    # the values are the mean over the validation rows of the influence on their loss
    np.testing.assert_allclose(values, iv.influence_.transform(Xv, yv).mean(axis=0),
                               rtol=1e-10, atol=1e-14)
