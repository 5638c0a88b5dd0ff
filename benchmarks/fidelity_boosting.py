"""Predicted vs actual removal for HistGradientBoosting (leaf_refit, leaf_influence, boostin,
boostin_final, boostin_contribution).

For 30 training rows ``j`` per model, the model is refit by scikit-learn with
``sample_weight[j] = 0`` (early stopping off) and the change of every test loss is
compared with the prediction of each approximation (Pearson and Spearman over all
(test point, removed row) pairs).  The predictions keep every tree's structure; a
refit whose trees split the remaining training rows differently has "changed
structure", and the last column gives Pearson over the refits that did not.

    python benchmarks/fidelity_boosting.py [--quick]
    python benchmarks/fidelity_boosting.py --speed   # the full-matrix timing only

``--speed`` times the full influence matrix of 1000 test x 10000 training rows of a
100-iteration HistGradientBoostingClassifier (one thread) against fitting that model
once, in the same run.
"""

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from scipy.stats import pearsonr, spearmanr  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)

from skinfluence import InfluenceFunctions  # noqa: E402
from skinfluence.trees._hgb import BoostedModel  # noqa: E402

METHODS = ("leaf_refit", "leaf_influence", "boostin", "boostin_final", "boostin_contribution")


def cells(n=300, seed=0):
    """Two binary features: depth-2 trees always split the same four cells."""
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 2, size=(n, 2)).astype(float)
    y = 3 * (1.5 * X[:, 0] - X[:, 1] + 0.8 * X[:, 0] * X[:, 1]) + rng.normal(scale=2, size=n)
    return X, y


def cases(quick):
    Xd, yd = load_diabetes(return_X_y=True)
    Xc, yc = load_breast_cancer(return_X_y=True)
    Xw, yw = load_wine(return_X_y=True)
    Xs, ys = cells()
    R, C = HistGradientBoostingRegressor, HistGradientBoostingClassifier
    out = [
        ("cells (fixed structure), depth 2", lambda: R(max_iter=30, max_depth=2),
         (Xs[:200], ys[:200], Xs[200:], ys[200:])),
        ("diabetes, 50 iter.", lambda: R(max_iter=50), (Xd[:300], yd[:300], Xd[300:], yd[300:])),
        ("diabetes, 20 iter. depth 2", lambda: R(max_iter=20, max_depth=2),
         (Xd[:300], yd[:300], Xd[300:], yd[300:])),
        ("breast_cancer, 50 iter.", lambda: C(max_iter=50),
         (Xc[:400], yc[:400], Xc[400:], yc[400:])),
    ]
    if not quick:
        rng = np.random.RandomState(0)
        perm = rng.permutation(len(yw))
        Xw, yw = Xw[perm], yw[perm]
        out += [
            ("breast_cancer, 20 iter. depth 2", lambda: C(max_iter=20, max_depth=2),
             (Xc[:400], yc[:400], Xc[400:], yc[400:])),
            ("wine (3 classes), 30 iter.", lambda: C(max_iter=30),
             (Xw[:130], yw[:130], Xw[130:], yw[130:])),
        ]
    return out


def same_partitions(leaves_a, leaves_b, keep):
    """Whether every tree splits the rows ``keep`` into the same groups."""
    for a, b in zip(leaves_a[:, keep], leaves_b[:, keep]):
        pairs = np.unique(np.stack([a, b]), axis=1)
        if pairs.shape[1] != np.unique(a).size or pairs.shape[1] != np.unique(b).size:
            return False
    return True


def run(name, make, data, n_removed):
    X, y, Xt, yt = data
    n = len(y)
    base = make().fit(X, y, sample_weight=np.ones(n))
    model = BoostedModel(base)
    leaves = model.apply(model.features(X))
    yt_enc = model.encode_target(yt)
    before = model.loss_from_outputs(model.outputs(model.features(Xt)), yt_enc)
    js = np.random.RandomState(0).choice(n, n_removed, replace=False)
    actual, same = np.empty((len(yt), n_removed)), np.zeros(n_removed, dtype=bool)
    for c, j in enumerate(js):
        w = np.ones(n)
        w[j] = 0.0
        refit = BoostedModel(make().fit(X, y, sample_weight=w))
        actual[:, c] = refit.loss_from_outputs(refit.outputs(refit.features(Xt)), yt_enc) - before
        keep = np.arange(n) != j
        same[c] = refit.n_trees == model.n_trees and same_partitions(
            leaves, refit.apply(refit.features(X)), keep)
    print(f"\n{name}: {n} train, {len(yt)} test, {n_removed} refits, "
          f"structure changed in {1 - same.mean():.0%}")
    print("| method | Pearson | Spearman | Pearson, unchanged structure | seconds |")
    print("|---|---|---|---|---|")
    for method in METHODS:
        t = time.perf_counter()
        inf = InfluenceFunctions(make(), approximation=method).fit(X, y,
                                                                    sample_weight=np.ones(n))
        pred = inf.transform(Xt, yt)[:, js]
        sec = time.perf_counter() - t
        p, s = pearsonr(pred.ravel(), actual.ravel())[0], spearmanr(pred.ravel(),
                                                                    actual.ravel())[0]
        unchanged = (f"{pearsonr(pred[:, same].ravel(), actual[:, same].ravel())[0]:.4f}"
                     if same.sum() >= 2 else "-")
        print(f"| {method} | {p:.3f} | {s:.3f} | {unchanged} | {sec:.2f} |")


def speed(n_train=10000, n_test=1000, repeat=3):
    from sklearn.datasets import make_classification
    from sklearn.frozen import FrozenEstimator

    X, y = make_classification(n_train + n_test, 20, n_informative=10, random_state=0)
    X, Xt, y, yt = X[:n_train], X[n_train:], y[:n_train], y[n_train:]
    make = lambda: HistGradientBoostingClassifier(max_iter=100, early_stopping=False,  # noqa
                                                  random_state=0)
    fit = min(_seconds(lambda: make().fit(X, y)) for _ in range(repeat))
    model = make().fit(X, y)
    print(f"\nfull matrix {n_test} x {n_train}, 100 iterations; one fit: {fit:.2f} s")
    print("| method | seconds (fit + transform) | / one model fit |")
    print("|---|---|---|")
    for method in METHODS[1:]:
        def run():
            inf = InfluenceFunctions(FrozenEstimator(model), approximation=method)
            return inf.fit(X, y).transform(Xt, yt)
        run()
        sec = min(_seconds(run) for _ in range(repeat))
        print(f"| {method} | {sec:.2f} | {sec / fit:.2f} |")


def _seconds(func):
    t = time.perf_counter()
    func()
    return time.perf_counter() - t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--speed", action="store_true")
    args = parser.parse_args(argv)
    if args.speed:
        return speed()
    n_removed = 10 if args.quick else 30
    # compile the kernels once, outside the timings
    Xs, ys = cells(60)
    for method in METHODS:
        InfluenceFunctions(HistGradientBoostingRegressor(max_iter=2),
                           approximation=method).fit(Xs, ys).transform(Xs[:2], ys[:2])
    for name, make, data in cases(args.quick):
        run(name, make, data, n_removed)


if __name__ == "__main__":
    main()
