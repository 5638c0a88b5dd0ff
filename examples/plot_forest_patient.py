"""
Which training rows make this forest call this patient high-risk?
=================================================================

A random forest on scikit-learn's breast cancer data calls a test patient's tumour
malignant.  Which patients in the training data make it say so?  For a forest,
:class:`~skinfluence.InfluenceFunctions` regrows every tree without each training row
(``approximation="exact"``, the default for trees), so each number is the change of the
patient's log-loss when that row is removed and the forest refit -- on the **same
bootstrap draws**.  This example checks one number by refitting the trees by hand, then
looks at what the bootstrap randomness does to it.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from skinfluence import InfluenceFunctions
from skinfluence.plot import plot_explanation

data = load_breast_cancer()
X_train, X_test, y_train, y_test = train_test_split(
    data.data, data.target, train_size=250, random_state=0, stratify=data.target)
MALIGNANT = 0  # scikit-learn's coding: 0 malignant, 1 benign

forest = RandomForestClassifier(n_estimators=50, min_samples_leaf=3, random_state=0)
inf = InfluenceFunctions(forest).fit(X_train, y_train)
print(f"test accuracy: {inf.score(X_test, y_test):.3f}")

# %%
# The patient: among the test tumours the forest calls malignant, the one it is least
# sure about (a call that a few training rows can move; here removing the top supporting
# row alone flips it).
p_malignant = inf.predict_proba(X_test)[:, MALIGNANT]
called = np.flatnonzero(p_malignant > 0.5)
i = int(called[np.argmin(p_malignant[called])])
x = X_test[i:i + 1]
print(f"patient {i}: P(malignant) = {p_malignant[i]:.2f}, "
      f"actually {data.target_names[y_test[i]]}")

# %%
# Explain the call "malignant".  Positive influence: removing the row would raise the
# log-loss of "malignant", i.e. lower P(malignant) -- the row supports the call.
# Negative: the row argues for "benign".
explanation = inf.explain(x, [MALIGNANT], k=5)
for kind in ("helpful", "harmful"):
    rows = explanation[f"{kind}_indices"][0]
    values = explanation[f"{kind}_values"][0]
    word = "supporting" if kind == "helpful" else "opposing"
    print(f"{word}: " + ", ".join(
        f"row {j} ({data.target_names[y_train[j]]}) {v:+.3f}" for j, v in zip(rows, values)))

ax = plot_explanation(explanation, y_train=y_train)
ax.set_xlabel("change of the patient's log-loss of 'malignant' if the row is removed")
ax.set_title(f"test patient {i}: supporting (blue) and opposing (red) training rows")
plt.tight_layout()
plt.show()

# %%
# Check the top supporting row by an actual refit.  Fitting a forest fits each tree on
# the training rows weighted by how often its bootstrap sample drew them
# (``estimators_samples_``); the same trees without row ``j`` are the same fits with
# ``j``'s count set to zero.
fitted = inf.estimator_


def same_draws_without(forest, j):
    """P(malignant) at the patient of the forest regrown without row j on its draws."""
    p = []
    for tree, drawn in zip(forest.estimators_, forest.estimators_samples_):
        counts = np.bincount(drawn, minlength=len(y_train)).astype(float)
        counts[j] = 0.0
        p.append(clone(tree).fit(X_train, y_train, sample_weight=counts).predict_proba(x))
    return np.mean(p, axis=0)[0, MALIGNANT]


top = int(explanation.helpful_indices[0, 0])
p_without = same_draws_without(fitted, top)
p_with = fitted.predict_proba(x)[0, MALIGNANT]
print(f"row {top}: predicted loss change {explanation.helpful_values[0, 0]:.6f}, "
      f"refit {np.log(p_with) - np.log(p_without):.6f} "
      f"(P(malignant) {p_with:.3f} -> {p_without:.3f})")

# %%
# What the bootstrap randomness means.  The number above belongs to *this* forest: its
# trees regrown on the draws they had.  Another ``random_state`` draws other bootstrap
# samples and feature subsets, and row ``top`` then matters more or less.  Over seeds,
# the same-draws effects scatter around the expected effect of removing the row from
# the random procedure; their mean estimates it.  Refitting "without the row" with a
# fresh seed would instead compare two different random forests, whose difference is
# mostly the seed's.
seeds = range(1, 9)
same_draws, other_seed = [], []
for s in seeds:
    forest_s = clone(forest).set_params(random_state=s).fit(X_train, y_train)
    p_s = forest_s.predict_proba(x)[0, MALIGNANT]
    same_draws.append(np.log(p_s) - np.log(same_draws_without(forest_s, top)))
    other_seed.append(np.log(p_with) - np.log(p_s))  # forest 0 vs forest s, all rows
print(f"same-draws effect of row {top} over {len(same_draws)} seeds: "
      f"mean {np.mean(same_draws):.4f}, sd {np.std(same_draws):.4f}; "
      f"seed-to-seed change with every row kept: sd {np.std(other_seed):.4f}")

fig, ax = plt.subplots(figsize=(7, 2.6))
ax.scatter(same_draws, np.zeros(len(same_draws)), label="removing the row, same draws")
ax.scatter(other_seed, np.ones(len(other_seed)), label="another seed, no row removed")
ax.axvline(np.log(p_with) - np.log(p_without), color="k", ls=":", label="this forest")
ax.axvline(0, color="grey", lw=0.5)
ax.set_yticks([0, 1], ["row removed", "seed changed"])
ax.set_ylim(-0.7, 1.7)
ax.set_xlabel("change of the patient's log-loss of 'malignant'")
ax.legend(fontsize=7, loc="lower right")
plt.tight_layout()
plt.show()

# %%
# Read the dotted line against the blue points: where this forest's effect lies far
# from their mean, the row's weight on the call comes from this forest's particular
# draws, and a conclusion about the row (rather than about this fitted forest) should
# rest on the mean over seeds or on a forest with more trees.  The exact same-draws
# number is still what removing the row does to the model that made the call.
