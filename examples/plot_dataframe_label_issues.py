"""
Label issues in a pandas DataFrame
==================================

The ``skinfluence label-issues`` command line does this for a CSV file; here
is the same in Python for a DataFrame with numeric and text columns.  The
model is an ordinary scikit-learn pipeline -- scaling and one-hot encoding in
a :class:`~sklearn.compose.ColumnTransformer`, then a logistic regression --
and :class:`~skinfluence.InfluenceCleaner` treats the preprocessing as a fixed
feature map.

The data are synthetic subscription renewals with 8% of the labels flipped,
so we can see how many of the flagged rows really are wrong.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skinfluence import InfluenceCleaner
from skinfluence.datasets import make_noisy_labels
from skinfluence.plot import plot_cleaning_curve

rng = np.random.default_rng(0)
n = 600
df = pd.DataFrame({
    "customer": [f"C{i:04d}" for i in range(n)],
    "income": rng.lognormal(10, 0.5, n).round(-2),
    "age": rng.integers(18, 80, n),
    "city": rng.choice(["Paris", "Lyon", "Nice", "Lille"], n),
    "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
})
score = 3 * (np.log(df.income) - 10) + 1.5 * (df.plan == "pro") - (df.age - 50) / 20
df["status"] = np.where(score + 0.3 * rng.logistic(size=n) > 0, "renewed", "churned")
df["status"], flipped = make_noisy_labels(df["status"], 0.08, random_state=0)
df.head()

# %%
# The identifier column is simply not given to the model.
features = ["income", "age", "city", "plan"]
preprocess = make_column_transformer(
    (StandardScaler(), ["income", "age"]),
    (OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
)
model = make_pipeline(preprocess, LogisticRegression(tol=1e-8, max_iter=10_000))
cleaner = InfluenceCleaner(model).fit(df[features], df["status"])

report = df.assign(score=cleaner.scores_, suggested=cleaner.suggested_labels_,
                   issue=cleaner.issues_, really_flipped=flipped)
print(f"{cleaner.issues_.sum()} rows flagged, {(cleaner.issues_ & flipped).sum()} of them "
      f"really flipped ({flipped.sum()} flips in total)")
report.sort_values("score", ascending=False).head(10)

# %%
# How much checking would it take to find the flips?
ax = plot_cleaning_curve(flipped, {"InfluenceCleaner (loo)": cleaner.scores_})
ax.set_xlim(0, 0.4)
plt.show()
