"""
How close are influence functions to retraining?
================================================

The test of an influence method is retraining: remove a training row, refit
the model, and measure how the loss on a test point changes.  Here we do that
for 40 training rows of a logistic regression and compare with the change
:class:`~skinfluence.InfluenceFunctions` predicted from a single fit.

For logistic regression the Newton approximation is one exact Newton step of
the refit, so the points sit close to the diagonal; the first-order
approximation (no Hessian) only ranks rows roughly.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceFunctions
from skinfluence.plot import plot_retraining

X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
rng = np.random.default_rng(0)
idx = rng.permutation(len(y))
train, test = idx[:300], idx[300:301]
X_train, y_train, X_test, y_test = X[train], y[train], X[test], y[test]

# tight tolerance: the refits must be converged for the comparison to mean anything
model = LogisticRegression(C=0.1, tol=1e-10, max_iter=10_000)
newton = InfluenceFunctions(model, approximation="newton").fit(X_train, y_train)
first = InfluenceFunctions(model, approximation="first_order").fit(X_train, y_train)


def test_loss(est):
    p = est.predict_proba(X_test)[0, y_test[0]]
    return -np.log(p)


base = test_loss(newton.estimator_)
removed = rng.choice(len(y_train), size=40, replace=False)
actual = np.empty(len(removed))
for k, j in enumerate(removed):
    keep = np.arange(len(y_train)) != j
    refit = clone(model).fit(X_train[keep], y_train[keep])
    actual[k] = test_loss(refit) - base  # loss rise when j is removed = influence

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
plot_retraining(newton.transform(X_test, y_test)[0, removed], actual, ax=axes[0])
axes[0].set_title("Newton\n" + axes[0].get_title(), fontsize=9)
plot_retraining(first.transform(X_test, y_test)[0, removed], actual, ax=axes[1])
axes[1].set_title("first order\n" + axes[1].get_title(), fontsize=9)
plt.tight_layout()
plt.show()
