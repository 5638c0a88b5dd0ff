"""
How far can I trust these numbers?
==================================

:mod:`skinfluence.metrics` scores a method against the model actually retrained on
*your* data.  Here, on a logistic regression of breast cancer data:

* the linear datamodeling score (LDS): remove a random half of the training set,
  retrain, and compare the test losses the method predicted with the measured ones,
  over 30 such halves.  Summing single-point influences (``"additive"``) misses how
  removed points interact; the Newton step for the removed half as a whole
  (``"group"``) follows retraining closely.
* removal curves: retrain after removing the training points the method values most
  (or least) and watch the held-out accuracy.  On data with 20% flipped labels, removing
  the lowest-valued points first removes mostly flipped ones and accuracy rises.

The retrains are cached (``memory=``), so the second datamodel and the second removal
order reuse the first's.
"""

# %%
from tempfile import mkdtemp

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceFunctions
from skinfluence.datasets import make_noisy_labels
from skinfluence.metrics import linear_datamodeling_score, removal_curve
from skinfluence.plot import plot_faithfulness, plot_removal_curve

X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
idx = np.random.default_rng(0).permutation(len(y))
X_train, y_train = X[idx[:300]], y[idx[:300]]
X_test, y_test = X[idx[300:]], y[idx[300:]]
model = LogisticRegression(max_iter=5000)
cache = mkdtemp()

influence = InfluenceFunctions(model).fit(X_train, y_train)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharex=True, sharey=True)
for ax, datamodel in zip(axes, ["additive", "group"]):
    details = linear_datamodeling_score(
        influence, X_train, y_train, X_test[:30], y_test[:30], n_subsets=30,
        datamodel=datamodel, random_state=0, memory=cache, return_details=True,
    )
    plot_faithfulness(details, test_point=0, ax=ax)
    ax.set_title(f"{datamodel}: {ax.get_title()}", fontsize=9)
fig.tight_layout()

# %%
# Removal curves on noisy labels
# ------------------------------
# Values of the training points: minus their self-influence (high self-influence marks
# points the rest of the data does not explain, such as flipped labels).
y_noisy, flipped = make_noisy_labels(y_train, 0.2, random_state=0)
values = -InfluenceFunctions(model).fit(X_train, y_noisy).self_influence_
fractions = np.linspace(0.0, 0.4, 9)
ax = None
for order in ["low", "high"]:
    f, scores = removal_curve(values, model, X_train, y_noisy, X_test, y_test, order=order,
                              fractions=fractions, memory=cache)
    ax = plot_removal_curve(f, scores, label=f"{order}est values removed first", ax=ax)
random = np.random.default_rng(0).standard_normal(len(y_noisy))
f, scores = removal_curve(random, model, X_train, y_noisy, X_test, y_test,
                          fractions=fractions, memory=cache)
plot_removal_curve(f, scores, label="random order", ax=ax)
plt.show()
