"""Measure how close InfluenceFunctions is to actual retraining, per model class.

For each model: fit on n_train rows, pick 40 training rows at random, and for
each one refit without it and measure the change of the summed loss over 20
test rows.  Compare with ``InfluenceFunctions.transform(X_test, y_test).sum(0)``
for the Newton and first-order approximations: Pearson and Spearman
correlation, and the largest error relative to the largest actual effect.

Convex models are refit from scratch with tight tolerances (``refit(..., warm=True)``
restarts from the fitted parameters, for non-convex models).

Run:  python docs/_scripts/influence_fidelity.py  > docs/user_guide/influence_fidelity.inc
"""

import copy
import sys
import time
import warnings

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, PoissonRegressor, Ridge
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from skinfluence import InfluenceFunctions
from skinfluence.objectives import make_objective

N_REMOVED, N_TEST = 40, 20


def classification():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    return X[idx[:300]], y[idx[:300]], X[idx[300:300 + N_TEST]], y[idx[300:300 + N_TEST]]


def regression():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    return X[:300], y[:300], X[300:300 + N_TEST], y[300:300 + N_TEST]


def counts():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300 + N_TEST, 5))
    y = rng.poisson(np.exp(0.3 * X @ np.array([1.0, -0.5, 0.3, 0.0, 0.8])))
    return X[:300], y[:300].astype(float), X[300:], y[300:].astype(float)


CASES = [
    ("LogisticRegression (breast cancer, 300 x 30)",
     LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000), classification, False),
    ("Ridge (diabetes, 300 x 10)", Ridge(alpha=1.0), regression, False),
    ("PoissonRegressor (synthetic, 300 x 5)",
     PoissonRegressor(alpha=1e-2, tol=1e-10, max_iter=10_000), counts, False),
    ("LinearSVC, squared hinge (breast cancer)",
     LinearSVC(C=0.1, tol=1e-10, max_iter=100_000), classification, False),
]
# Neural networks are measured on their own page (docs/user_guide/neural.rst): a
# non-convex refit needs more care than one row of this table can give.


def test_loss(est, X_train, y_train, X_test, y_test):
    # the loss skinfluence explains, evaluated through its own objective
    obj = make_objective(est, X_train, y_train)
    return float(obj.sample_losses(obj.features(X_test), obj.encode_target(y_test)).sum())


def refit(model, fitted, X, y, warm):
    if not warm:
        return clone(model).fit(X, y)
    est = copy.deepcopy(fitted)
    est.set_params(warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def main():
    rows = []
    for name, model, data, warm in CASES:
        X, y, X_test, y_test = data()
        t0 = time.perf_counter()
        results = {}
        for approx in ("newton", "first_order"):
            inf = InfluenceFunctions(model, approximation=approx).fit(X, y)
            results[approx] = inf.transform(X_test, y_test).sum(axis=0)
        base_est = inf.estimator_
        base = test_loss(base_est, X, y, X_test, y_test)
        removed = np.random.default_rng(2).choice(len(y), N_REMOVED, replace=False)
        actual = np.empty(N_REMOVED)
        for k, j in enumerate(removed):
            keep = np.arange(len(y)) != j
            est = refit(model, base_est, X[keep], y[keep], warm)
            actual[k] = test_loss(est, X, y, X_test, y_test) - base
        cells = [name]
        for approx in ("newton", "first_order"):
            pred = results[approx][removed]
            rel = np.max(np.abs(pred - actual)) / np.max(np.abs(actual))
            cells += [f"{pearsonr(actual, pred)[0]:.4f}", f"{spearmanr(actual, pred)[0]:.3f}",
                      f"{rel:.1e}"]
        rows.append(cells)
        print(f"{name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    header = ["Model (data)", "Newton: Pearson r", "Spearman", "max error / max effect",
              "First order: Pearson r", "Spearman", "max error / max effect"]
    print(".. list-table:: Predicted vs actual change of the summed test loss when one of 40\n"
          "   random training rows is removed (20 test rows; measured by\n"
          "   ``docs/_scripts/influence_fidelity.py``).")
    print("   :header-rows: 1\n")
    for r in [header] + rows:
        print("   * - " + r[0])
        for c in r[1:]:
            print("     - " + c)
    print()


if __name__ == "__main__":
    main()
