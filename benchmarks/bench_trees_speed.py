"""Speed of tree influence: the fixed-structure matrix, and one query's exact influence.

``fixed``: a 200-tree ``RandomForestRegressor`` / ``RandomForestClassifier`` (defaults, one
thread) on 10000 synthetic training rows x 20 features; the influence matrix of 1000 test
rows (``InfluenceFunctions(FrozenEstimator(forest), approximation="fixed_structure")``:
reading the fitted trees, then ``transform``), timed in the same run as the forest's fit.

``exact``: ``explain`` of one query with ``approximation="exact"`` (every tree regrown
without each training row) for the forests of ``skinfluence explain --model forest``
(``RandomForestClassifier(random_state=0)``; ``RandomForestRegressor(min_samples_leaf=5,
random_state=0)``, bootstrap, float targets) on synthetic rows x 10 continuous features,
in the same run: ``unpruned`` (every feature re-scanned, bit-exact), ``bit-exact`` (with
the bounds that skip features which cannot win, ``ForestRemoval.prune``; the same numbers,
checked equal) and ``default`` (also taking order-robust subtrees as fitted,
``ForestRemoval.robust``; checked equal to 1e-13 of the largest value).  The time is
linear in the number of trees (``--trees``, default 25; the command line's forests have
100).

``fair``: statsmodels' ``fair.csv`` (6366 rows, 8 integer-coded features, ``affairs`` as
a float target, the command line's regression forest) on a sample of training rows
(``--fair-rows``), extrapolated to all rows: the bit-exact replay (``ForestRemoval.robust =
False``, the path before order-robust subtrees) and the default (order-robust subtrees
taken as fitted), both pruned, best of three runs alternated in the same run (the load of
a shared machine drifts); their largest difference is printed.

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_trees_speed.py [fixed] [exact] [fair]
        [--sizes 500,1000,2000] [--trees 25] [--tasks classification,regression]
        [--fair-csv PATH] [--fair-rows 64] [--repeats 1]
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


def _timed_explain(inf, xq, yq, repeats=1):
    """Seconds of one query's influence (default, bit-exact pruned, unpruned; best of
    ``repeats``, alternated); checks the results equal (the default to 1e-13 of the
    largest)."""
    rem = inf._removal
    times, results = [np.inf] * 3, [None] * 3
    for _ in range(repeats):
        for a, (prune, robust) in enumerate(((True, None), (True, False), (False, False))):
            rem.prune, rem.robust = prune, robust
            t0 = time.perf_counter()
            results[a] = inf.transform(xq, yq)
            times[a] = min(times[a], time.perf_counter() - t0)
    rem.prune, rem.robust = True, None
    if not np.array_equal(results[1], results[2]):
        raise AssertionError("pruned and unpruned exact influence differ")
    # leaf values to a few ulps: losses (up to 1e4 here) move by as many of their ulps
    if not np.allclose(results[0], results[1], rtol=0,
                       atol=1e-13 * np.abs(results[1]).max()):
        raise AssertionError("robust and bit-exact influence differ")
    return times


def _compile():
    X, y = make_regression(60, 10, random_state=0)
    for model, target in ((RandomForestRegressor(2, min_samples_leaf=5, random_state=0), y),
                          (RandomForestClassifier(2, random_state=0), y > 0)):
        inf = InfluenceFunctions(model).fit(X[:50], target[:50])
        _timed_explain(inf, X[50:51], target[50:51])


def exact(sizes, n_trees, tasks=("classification", "regression"), repeats=1):
    _compile()
    print(f"one query's exact influence, {n_trees} trees, 10 features, seconds (same run; "
          "unpruned = every feature re-scanned, bit-exact = pruned, default = pruned + "
          "robust subtrees)")
    print(f"{'task':<15}{'rows':>6}{'fit':>8}{'unpruned':>10}{'bit-exact':>10}"
          f"{'default':>9}{'speedup':>9}")
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
            default, pruned, unpruned = _timed_explain(inf, X[n:], y[n:], repeats)
            print(f"{kind:<15}{n:>6}{t_fit:>8.1f}{unpruned:>10.1f}{pruned:>10.1f}"
                  f"{default:>9.1f}{unpruned / default:>8.2f}x", flush=True)


def fair(path, n_rows, n_trees=100, repeats=3):
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
    rem.deltas(Xf, sel, js[:2])  # compile
    times, results, nodes = [np.inf, np.inf], [None, None], [None, None]
    for _ in range(repeats):  # alternated, best of: the machine's load drifts
        for a, robust in enumerate((False, True)):
            rem.robust = robust
            t0 = time.perf_counter()
            results[a] = rem.deltas(Xf, sel, js)
            times[a] = min(times[a], time.perf_counter() - t0)
            nodes[a] = (rem.evaluated.mean(), rem.robust_nodes.mean())
    rem.robust = None
    scale = len(y) / n_rows
    total = sum(r.n_nodes for r in rem.ensemble.records)
    print(f"fair.csv ({len(y)} rows, {X.shape[1]} features, {n_trees} trees, {total} nodes): "
          f"fit {t_fit:.1f} s; exact influence of {n_rows} training rows on row 749 (best "
          f"of {repeats}, alternated)")
    print(f"{'path':<12}{'seconds':>9}{'all rows':>12}{'evaluated/row':>15}{'robust/row':>12}")
    for name, t, (ev, rb) in zip(("bit-exact", "robust"), times, nodes):
        print(f"{name:<12}{t:>9.1f}{t * scale / 60:>9.1f} min{ev:>15.0f}{rb:>12.0f}")
    print(f"speedup {times[0] / times[1]:.1f}x; largest |robust - bit-exact| "
          f"{np.abs(results[1] - results[0]).max():.2e} (target range "
          f"{y.min():.3g}..{y.max():.3g})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["fixed", "exact"])
    parser.add_argument("--sizes", default="500,1000,2000")
    parser.add_argument("--trees", type=int, default=25)
    parser.add_argument("--tasks", default="classification,regression")
    parser.add_argument("--fair-csv", default=None)
    parser.add_argument("--fair-rows", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1,
                        help="exact: best of this many runs of each path, alternated")
    args = parser.parse_args()
    if "fixed" in args.parts:
        fixed_structure()
    if "exact" in args.parts:
        exact([int(s) for s in args.sizes.split(",")], args.trees, args.tasks.split(","),
              args.repeats)
    if "fair" in args.parts:
        if args.fair_csv is None:
            parser.error("fair needs --fair-csv (statsmodels/datasets/fair/fair.csv)")
        fair(args.fair_csv, args.fair_rows)


if __name__ == "__main__":
    main()
