"""Run pyDVL's ``run_removal_experiment`` on given values and data (a separate interpreter).

Usage: ``python pydvl_removal.py data.npz out.json``.  ``data.npz`` holds X, y, X_test,
y_test, values and percentages; the model is ``LogisticRegression(max_iter=5000)`` scored
by accuracy, as in the test that calls this script.
"""

import json
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from pydvl.reporting.point_removal import run_removal_experiment
from pydvl.valuation import Dataset, ModelUtility, SupervisedScorer
from pydvl.valuation.base import Valuation
from pydvl.valuation.result import ValuationResult

data = np.load(sys.argv[1])


class FixedValues(Valuation):
    """A valuation whose values are given."""

    def fit(self, train, continue_from=None):
        self._result = ValuationResult(values=data["values"], indices=train.indices)
        return self


def data_factory(random_state):
    return Dataset(data["X"], data["y"]), Dataset(data["X_test"], data["y_test"])


def valuation_factory(*, train, random_state):
    return FixedValues()


def utility_factory(*, test, random_state):
    model = LogisticRegression(max_iter=5000)
    return ModelUtility(model, SupervisedScorer("accuracy", test, default=0.0))


low, high = run_removal_experiment(data_factory, [valuation_factory], utility_factory,
                                   data["percentages"], n_runs=1, n_jobs=1, random_state=0)
pcts = [float(p) for p in data["percentages"]]
out = {name: [float(df.iloc[0][p]) for p in data["percentages"]]
       for name, df in (("low", low), ("high", high))}
out["percentages"] = pcts
json.dump(out, open(sys.argv[2], "w"))
