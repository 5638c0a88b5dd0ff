"""Speed of tree influence: the fixed-structure matrix, and one query's exact influence.

``fixed``: a 200-tree ``RandomForestRegressor`` / ``RandomForestClassifier`` (defaults, one
thread) on 10000 synthetic training rows x 20 features; the influence matrix of 1000 test
rows (``InfluenceFunctions(FrozenEstimator(forest), approximation="fixed_structure")``:
reading the fitted trees, then ``transform``), timed in the same run as the forest's fit.

``exact``: ``explain`` of one query with ``approximation="exact"`` (every tree regrown
without each training row) for the forests of ``skinfluence explain --model forest``
(``RandomForestClassifier(random_state=0)``; ``RandomForestRegressor(min_samples_leaf=5,
random_state=0)``, bootstrap, float targets) on synthetic rows x 10 continuous features,
with the bounds that skip features which cannot win (``ForestRemoval.prune``) and without
them, in the same run (the same numbers, checked equal).  The time is linear in the number
of trees (``--trees``, default 25; the command line's forests have 100).

``fair``: the same for statsmodels' ``fair.csv`` (6366 rows, ``affairs`` as a float
target, the command line's regression forest) on a sample of training rows
(``--fair-rows``), extrapolated to all rows.

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_trees_speed.py [fixed] [exact] [fair]
        [--sizes 500,1000,2000] [--trees 25] [--tasks classification,regression]
        [--fair-csv PATH] [--fair-rows 64]
"""

import argparse
import time

import numpy as np
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.frozen import FrozenEstimator

from skinfluence import InfluenceFunctions


def fixed_structure():
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


def _timed_explain(inf, xq, yq):
    """(seconds pruned, seconds unpruned) of one query's explain; checks equal results."""
    rem = inf._removal
    times, results = [], []
    for prune in (True, False):
        rem.prune = prune
        t0 = time.perf_counter()
        results.append(inf.transform(xq, yq))
        times.append(time.perf_counter() - t0)
    rem.prune = True
    if not np.array_equal(results[0], results[1]):
        raise AssertionError("pruned and unpruned exact influence differ")
    return times


def _compile():
    X, y = make_regression(60, 10, random_state=0)
    for model, target in ((RandomForestRegressor(2, min_samples_leaf=5, random_state=0), y),
                          (RandomForestClassifier(2, random_state=0), y > 0)):
        inf = InfluenceFunctions(model).fit(X[:50], target[:50])
        _timed_explain(inf, X[50:51], target[50:51])


def exact(sizes, n_trees, tasks=("classification", "regression")):
    _compile()
    print(f"one query's exact influence, {n_trees} trees, 10 features, seconds "
          "(same run; pruned = bounds on, unpruned = every feature re-scanned)")
    print(f"{'task':<15}{'rows':>6}{'fit':>8}{'unpruned':>10}{'pruned':>9}{'speedup':>9}")
    for kind in tasks:
        for n in sizes:
            if kind == "classification":
                X, y = make_classification(n + 1, 10, n_informative=5, flip_y=0.1,
                                           random_state=0)
                model = RandomForestClassifier(n_trees, random_state=0)
            else:
                X, y = make_regression(n + 1, 10, n_informative=5, noise=20, random_state=0)
                model = RandomForestRegressor(n_trees, min_samples_leaf=5, random_state=0)
            t0 = time.perf_counter()
            inf = InfluenceFunctions(model).fit(X[:n], y[:n])
            t_fit = time.perf_counter() - t0
            pruned, unpruned = _timed_explain(inf, X[n:], y[n:])
            print(f"{kind:<15}{n:>6}{t_fit:>8.1f}{unpruned:>10.1f}{pruned:>9.1f}"
                  f"{unpruned / pruned:>8.2f}x", flush=True)


def fair(path, n_rows, n_trees=100):
    import pandas as pd

    df = pd.read_csv(path)
    y = df.pop("affairs").to_numpy(dtype=float)
    X = df.to_numpy(dtype=float)
    model = RandomForestRegressor(n_trees, min_samples_leaf=5, random_state=0)
    t0 = time.perf_counter()
    inf = InfluenceFunctions(model).fit(X, y)
    t_fit = time.perf_counter() - t0
    rem = inf._removal
    Xf = inf.objective_.features(X[749:750])
    sel = np.zeros((1, 1, 1), dtype=np.intp)
    js = np.linspace(0, len(y) - 1, n_rows).astype(np.intp)
    times, results = [], []
    for prune in (True, False):
        rem.prune = prune
        t0 = time.perf_counter()
        results.append(rem.deltas(Xf, sel, js))
        times.append(time.perf_counter() - t0)
    rem.prune = True
    assert np.array_equal(results[0], results[1])
    scale = len(y) / n_rows
    print(f"fair.csv ({len(y)} rows, {X.shape[1]} features, {n_trees} trees): fit "
          f"{t_fit:.1f} s; exact influence of {n_rows} training rows on row 749: unpruned "
          f"{times[1]:.1f} s, pruned {times[0]:.1f} s; all rows (x{scale:.0f}): unpruned "
          f"~{times[1] * scale / 60:.0f} min, pruned ~{times[0] * scale / 60:.0f} min; nodes "
          f"evaluated per row {rem.evaluated.mean():.0f} of "
          f"{sum(r.n_nodes for r in rem.ensemble.records)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["fixed", "exact"])
    parser.add_argument("--sizes", default="500,1000,2000")
    parser.add_argument("--trees", type=int, default=25)
    parser.add_argument("--tasks", default="classification,regression")
    parser.add_argument("--fair-csv", default=None)
    parser.add_argument("--fair-rows", type=int, default=64)
    args = parser.parse_args()
    if "fixed" in args.parts:
        fixed_structure()
    if "exact" in args.parts:
        exact([int(s) for s in args.sizes.split(",")], args.trees, args.tasks.split(","))
    if "fair" in args.parts:
        if args.fair_csv is None:
            parser.error("fair needs --fair-csv (statsmodels/datasets/fair/fair.csv)")
        fair(args.fair_csv, args.fair_rows)


if __name__ == "__main__":
    main()
