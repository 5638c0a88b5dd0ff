"""
Which training digits explain a prediction?
===========================================

Fit a logistic regression on scikit-learn's handwritten digits, pick a test
digit the model gets wrong, and show the training digits whose removal would
change the model's loss on it the most.  Influence functions give this for
every training row from one fit (no retraining).

Positive influence: removing the training digit would *raise* the loss of the
explained label, so the digit supports it.  Negative: the digit works against it.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skinfluence import InfluenceFunctions
from skinfluence.plot import plot_explanation

digits = load_digits()
X = digits.data / 16.0
X_train, X_test, y_train, y_test = train_test_split(
    X, digits.target, test_size=300, random_state=0, stratify=digits.target
)
inf = InfluenceFunctions(LogisticRegression(tol=1e-8, max_iter=10_000)).fit(X_train, y_train)
print(f"test accuracy: {inf.score(X_test, y_test):.3f}")

# %%
# Explain the first misclassified test digit: which training digits pushed
# the model towards its (wrong) prediction?
pred = inf.predict(X_test)
i = int(np.flatnonzero(pred != y_test)[0])
print(f"test digit {i}: true label {y_test[i]}, predicted {pred[i]}")
explanation = inf.explain(X_test[i : i + 1], pred[i : i + 1], k=6)

fig = plot_explanation(explanation, X_train, y_train, image_shape=(8, 8), query=X_test[i],
                       query_label=f"test #{i}\ntrue {y_test[i]}, pred {pred[i]}")
fig.set_size_inches(10, 3.8)
plt.show()

# %%
# The same explanation as numbers.  The values are predicted changes of the
# cross-entropy on the test digit when one training digit is removed.
ax = plot_explanation(explanation, y_train=y_train)
plt.tight_layout()
plt.show()
