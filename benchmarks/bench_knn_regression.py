"""KNN-Shapley for regression: speed against the classifier version, and corrupted targets.

1. Wall time of ``KNNShapley`` on 20000 training x 1000 validation points (10 features,
   K=5, one thread for BLAS and numba), classification and regression utilities, the
   best of ``--repeat`` runs.
2. AUROC of ranking corrupted training targets by lowest value (``task="regression"``,
   K=5, standardised features): ``load_diabetes``, ``make_regression``,
   ``make_friedman1``; 5/10/20% of the targets shifted by +-3 standard deviations, or
   swapped between random pairs of rows; valued leave-self-out on the training set and on
   a clean validation quarter; mean over ``--seeds``.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_knn_regression.py
"""

import argparse
import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from sklearn.datasets import load_diabetes, make_friedman1, make_regression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks._common import best_of, print_table  # noqa: E402
from skinfluence.valuation import KNNShapley  # noqa: E402


def timing(repeat):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(21000, 10))
    y = X @ rng.normal(size=10) + rng.normal(size=21000)
    rows = []
    for task, target in (("classification", (y > 0).astype(int)), ("regression", y)):
        est = KNNShapley(n_neighbors=5, task=task, n_jobs=1)
        seconds, _ = best_of(lambda: est.fit(X[:20000], target[:20000], X_val=X[20000:],
                                             y_val=target[20000:]), repeat=repeat, warmup=1)
        rows.append({"utility": task, "seconds": seconds})
    print_table(rows, ["utility", "seconds"], title="KNN-Shapley 20000 x 1000, 1 thread")


def corrupt(y, fraction, kind, rng):
    n = len(y)
    m = max(2, int(round(fraction * n)) // 2 * 2)
    idx = rng.choice(n, m, replace=False)
    bad = np.zeros(n, dtype=bool)
    noisy = y.copy()
    if kind == "shift":
        noisy[idx] += rng.choice([-3.0, 3.0], m) * y.std()
    else:  # swap the targets of pairs of rows
        a, b = idx[: m // 2], idx[m // 2:]
        noisy[a], noisy[b] = y[b], y[a]
    bad[idx] = noisy[idx] != y[idx]
    return noisy, bad


def auroc_grid(seeds):
    data = {"diabetes": load_diabetes(return_X_y=True),
            "make_regression": make_regression(500, 8, noise=10.0, random_state=0),
            "friedman1": make_friedman1(500, random_state=0)}
    rows = []
    for name, (X, y) in data.items():
        X = StandardScaler().fit_transform(X)
        for kind in ("shift", "swap"):
            for fraction in (0.05, 0.1, 0.2):
                self_out, held_out = [], []
                for seed in range(seeds):
                    rng = np.random.default_rng(seed)
                    noisy, bad = corrupt(y, fraction, kind, rng)
                    values = KNNShapley(n_neighbors=5, task="regression").fit(X, noisy).values_
                    self_out.append(roc_auc_score(bad, -values))
                    perm = rng.permutation(len(y))
                    tr, va = perm[: 3 * len(y) // 4], perm[3 * len(y) // 4:]
                    values = KNNShapley(n_neighbors=5, task="regression").fit(
                        X[tr], noisy[tr], X_val=X[va], y_val=y[va]).values_
                    held_out.append(roc_auc_score(bad[tr], -values))
                rows.append({"data": name, "corruption": f"{kind} {fraction:.0%}",
                             "AUROC self": np.mean(self_out),
                             "AUROC validation": np.mean(held_out)})
    print_table(rows, ["data", "corruption", "AUROC self", "AUROC validation"],
                title="corrupted targets found by lowest KNN-Shapley value (K=5)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    with threadpool_limits(limits=1, user_api="blas"):
        timing(args.repeat)
        auroc_grid(args.seeds)


if __name__ == "__main__":
    main()
