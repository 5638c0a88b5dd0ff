"""
Data values: which rows are worth keeping?
==========================================

:class:`~skinfluence.KNNShapley` gives the exact Shapley value of every
training row for a K-nearest-neighbour classifier scored on a validation set,
in ``O(n log n)`` per validation point.  Rows with flipped labels should get
low, often negative, values.  We check that, then drop the least valuable rows
(or, for comparison, random rows) and watch the test accuracy of the
nearest-neighbour classifier the values are computed for.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from skinfluence import KNNShapley
from skinfluence.datasets import make_noisy_labels
from skinfluence.plot import plot_value_distribution

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=600, random_state=0)
X_val, X_test, y_val, y_test = X_rest[:300], X_rest[300:], y_rest[:300], y_rest[300:]
y_noisy, flipped = make_noisy_labels(y_train, 0.15, random_state=0)

values = KNNShapley(n_neighbors=5).fit(X_train, y_noisy, X_val=X_val, y_val=y_val).values_
ax = plot_value_distribution(values, np.where(flipped, "flipped label", "clean label"))
ax.set_title("KNN-Shapley values of the training rows")
plt.show()

# %%
# Remove the lowest-valued rows (or random rows, for comparison), count the
# flipped labels left, and refit the nearest-neighbour classifier.  With 5
# neighbours voting, the classifier tolerates this much symmetric noise well,
# so accuracy moves little -- the value ranking's benefit is that almost all
# flipped rows are gone after removing 15-20% of the data.
order = np.argsort(values)
random_order = np.random.default_rng(0).permutation(len(order))
fractions = np.linspace(0, 0.3, 7)
left = {"lowest value first": [], "random rows": []}
for frac in fractions:
    for name, o in (("lowest value first", order), ("random rows", random_order)):
        keep = np.sort(o[int(round(frac * len(o))) :])
        left[name].append(flipped[keep].sum())
        model = KNeighborsClassifier(n_neighbors=5).fit(X_train[keep], y_noisy[keep])
        print(f"removed {frac:4.0%} ({name:>18}): {left[name][-1]:3d} flipped rows left, "
              f"test accuracy {model.score(X_test, y_test):.3f}")

fig, ax = plt.subplots()
for name, counts in left.items():
    ax.plot(fractions, counts, marker="o", label=name)
ax.set_xlabel("fraction of training rows removed")
ax.set_ylabel("flipped labels left in the training set")
ax.legend()
plt.show()
