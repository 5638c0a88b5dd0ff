"""Speed of the fixed-structure tree influence matrix against one fit of the forest.

A 200-tree ``RandomForestRegressor`` / ``RandomForestClassifier`` (defaults, one thread) on
10000 synthetic training rows x 20 features; the influence matrix of 1000 test rows
(``InfluenceFunctions(FrozenEstimator(forest), approximation="fixed_structure")``: reading
the fitted trees, then ``transform``), timed in the same run as the forest's fit.

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_trees_speed.py
"""

import time

from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.frozen import FrozenEstimator

from skinfluence import InfluenceFunctions


def main():
    for kind in ("regression", "classification"):
        if kind == "regression":
            X, y = make_regression(11000, 20, noise=5, random_state=0)
            model = RandomForestRegressor(200, random_state=0, n_jobs=1)
        else:
            X, y = make_classification(11000, 20, random_state=0)
            model = RandomForestClassifier(200, random_state=0, n_jobs=1)
        Xtr, ytr, Xte, yte = X[:10000], y[:10000], X[10000:], y[10000:]
        t0 = time.perf_counter()
        forest = model.fit(Xtr, ytr)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        inf = InfluenceFunctions(FrozenEstimator(forest), approximation="fixed_structure")
        inf.fit(Xtr, ytr)
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        T = inf.transform(Xte, yte)
        t_matrix = time.perf_counter() - t0
        print(f"{kind}: forest fit {t_fit:.1f} s; influence fit {t_read:.2f} s + transform "
              f"{T.shape[0]}x{T.shape[1]} {t_matrix:.2f} s "
              f"({t_fit / (t_read + t_matrix):.1f}x faster than the fit)")


if __name__ == "__main__":
    main()
