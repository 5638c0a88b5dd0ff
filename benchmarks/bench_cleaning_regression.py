"""Regression label issues: skinfluence vs cleanlab 2.9, measured in the same run.

For every data set x corruption x rate, the targets of a share of the rows are corrupted

* ``shift``: ``y += s * std(y)`` with ``s`` uniform in [2, 4] and a random sign;
* ``swap``: random pairs of rows exchange their targets (a row counts as corrupted
  when its target changed);

then

* cleanlab: ``cleanlab.regression.rank.get_label_quality_scores`` (OUTRE, its default) on
  5-fold cross-validated predictions of the same model -- scores for AUROC / P@k; its
  flagged set (F1) is ``cleanlab.regression.learn.CleanLearning.find_label_issues``, which
  searches its own threshold with further refits (timed separately: ``cl_flag_s``);
* skinfluence: ``InfluenceCleaner(model)`` (exact leave-one-out residuals of one fit,
  standardised by their MAD, flagged at ``|z| > 2.576``), and the same with the model
  already fitted (``FrozenEstimator``: no fit at all).

Metrics: AUROC of the scores against the corrupted mask, precision at the number of
corrupted rows (P@k), F1 of the flagged set, seconds (the fastest of ``--repeat`` runs,
one BLAS thread; cleanlab: CV predictions + scores; ``5 fits``: the cross-validated
predictions alone, i.e. cleanlab's cost without its scoring).  Model:
``StandardScaler() + Ridge(alpha=1)``.

Data: ``load_diabetes``, ``make_regression`` (2000 x 20, noise 10), ``make_friedman1``
(2000 x 10, noise 1: Ridge is misspecified there), and CSVs shipped with statsmodels:
``fair`` (6366 rows, target ``affairs``), ``star98`` (303 rows, target the share of
pupils above the math median ``PR50M / MATHTOT``), ``grunfeld`` (220 rows, ``invest`` on
``value``, ``capital``, year and firm dummies) and ``randhie`` (4000 of its 20190 rows,
target ``mdvis``: cleanlab's OUTRE keeps ``n/2`` neighbours of every row, quadratic
memory).

Run (a separate environment with cleanlab 2.9 and statsmodels)::

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. /work/benchvenv/bin/python \\
        benchmarks/bench_cleaning_regression.py            # full grid
    ... benchmarks/bench_cleaning_regression.py --quick    # diabetes, fair; 10% only
"""

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.datasets import load_diabetes, make_friedman1, make_regression
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import Ridge
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceCleaner

RATES = (0.05, 0.1, 0.2)
CORRUPTIONS = ("shift", "swap")


def make_model():
    return make_pipeline(StandardScaler(), Ridge(alpha=1.0))


def _statsmodels_csv(name):
    import statsmodels

    path = os.path.join(os.path.dirname(statsmodels.__file__), "datasets", name, f"{name}.csv")
    return pd.read_csv(path)


def load(name):
    """``(X, y)`` as float arrays."""
    if name == "diabetes":
        return load_diabetes(return_X_y=True)
    if name == "make_regression":
        return make_regression(2000, 20, n_informative=10, noise=10.0, random_state=0)
    if name == "friedman1":
        return make_friedman1(2000, 10, noise=1.0, random_state=0)
    df = _statsmodels_csv(name)
    if name == "fair":
        y = df.pop("affairs")
    elif name == "star98":
        y = df["PR50M"] / df["MATHTOT"]
        df = df.drop(columns=["PR50M", "MATHTOT"])
    elif name == "grunfeld":
        y = df.pop("invest")
        df = pd.get_dummies(df, columns=["firm"], dtype=float)
    elif name == "randhie":
        df = df.sample(4000, random_state=0)
        y = df.pop("mdvis")
    else:
        raise ValueError(name)
    return df.to_numpy(dtype=np.float64), y.to_numpy(dtype=np.float64)


def corrupt(y, kind, rate, seed):
    """``(y_noisy, corrupted mask)``."""
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    y_noisy = y.copy()
    if kind == "shift":
        rows = rng.choice(n, int(round(rate * n)), replace=False)
        y_noisy[rows] += rng.choice([-1.0, 1.0], rows.size) * rng.uniform(2, 4, rows.size) * y.std()
    else:
        rows = rng.choice(n, 2 * int(round(rate * n / 2)), replace=False)
        a, b = rows[::2], rows[1::2]
        y_noisy[a], y_noisy[b] = y[b], y[a]
    return y_noisy, y_noisy != y


def precision_at_k(truth, scores):
    k = int(truth.sum())
    return float(truth[np.argsort(-scores, kind="stable")[:k]].mean())


def best_time(func, repeat):
    """Fastest of ``repeat`` runs (one run when it takes over a second)."""
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - t0)
        if best > 1.0:
            break
    return best, out


def run_cell(X, y_noisy, truth, repeat):
    from cleanlab.regression.learn import CleanLearning
    from cleanlab.regression.rank import get_label_quality_scores

    model = make_model()
    row = {}

    def ours():
        return InfluenceCleaner(model).fit(X, y_noisy)

    t, c = best_time(ours, repeat)
    row.update(sk_auroc=roc_auc_score(truth, c.scores_), sk_pk=precision_at_k(truth, c.scores_),
               sk_f1=f1_score(truth, c.issues_), sk_s=t, sk_flagged=c.n_issues_)
    fitted = clone(model).fit(X, y_noisy)
    t_fit, _ = best_time(lambda: clone(model).fit(X, y_noisy), repeat)
    t, c2 = best_time(lambda: InfluenceCleaner(FrozenEstimator(fitted)).fit(X, y_noisy), repeat)
    assert np.array_equal(c2.issues_, c.issues_)
    row.update(sk_fitted_s=t, fit_s=t_fit)

    def cleanlab_scores():
        cv = KFold(5, shuffle=True, random_state=0)
        pred = cross_val_predict(clone(model), X, y_noisy, cv=cv)
        return 1.0 - get_label_quality_scores(y_noisy, pred)  # higher = more suspect

    t, s = best_time(cleanlab_scores, repeat)
    row.update(cl_auroc=roc_auc_score(truth, s), cl_pk=precision_at_k(truth, s), cl_s=t)
    t, _ = best_time(lambda: cross_val_predict(clone(model), X, y_noisy, cv=5), repeat)
    row.update(cv_s=t)  # the five fits alone: cleanlab's time without its OUTRE scoring

    def cleanlab_flag():
        return CleanLearning(clone(model), seed=0).find_label_issues(X, y_noisy)

    t, issues = best_time(cleanlab_flag, 1)
    flagged = issues["is_label_issue"].to_numpy()
    row.update(cl_f1=f1_score(truth, flagged), cl_flag_s=t, cl_flagged=int(flagged.sum()))
    row.update(speedup=row["cl_s"] / row["sk_s"], speedup_fitted=row["cl_s"] / row["sk_fitted_s"],
               cv_ratio=row["cv_s"] / row["sk_s"])
    return row


def clean_false_positive_rate(X, y):
    """Share of rows flagged on the uncorrupted data."""
    return InfluenceCleaner(make_model()).fit(X, y).issues_.mean()


def summarise(rows, by):
    out = []
    for key in sorted({r[by] for r in rows}, key=lambda k: [r[by] for r in rows].index(k)):
        sel = [r for r in rows if r[by] == key]
        agg = {by: key}
        for col in ("sk_auroc", "cl_auroc", "sk_pk", "cl_pk", "sk_f1", "cl_f1"):
            agg[col] = np.mean([r[col] for r in sel])
        for col in ("sk_s", "sk_fitted_s", "cl_s", "cv_s", "cl_flag_s"):
            agg[col] = np.sum([r[col] for r in sel])
        agg["speedup"] = np.exp(np.mean([np.log(r["cl_s"] / r["sk_s"]) for r in sel]))
        agg["speedup_fitted"] = np.exp(np.mean([np.log(r["cl_s"] / r["sk_fitted_s"])
                                                for r in sel]))
        agg["cv_ratio"] = np.exp(np.mean([np.log(r["cv_s"] / r["sk_s"]) for r in sel]))
        out.append(agg)
    return out


def main():
    from threadpoolctl import threadpool_limits

    from _common import print_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="diabetes and fair, 10% only")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (best kept)")
    parser.add_argument("--seeds", type=int, default=1, help="corruptions per cell")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    args = parser.parse_args()
    names = ("diabetes", "make_regression", "friedman1", "fair", "star98", "grunfeld",
             "randhie")
    rates = RATES
    if args.quick:
        names, rates = ("diabetes", "fair"), (0.1,)
    warnings.simplefilter("ignore")  # cleanlab's and sklearn's chatter
    rows, fpr = [], []
    with threadpool_limits(args.threads):
        for name in names:
            X, y = load(name)
            fpr.append({"data": name, "n": X.shape[0], "d": X.shape[1],
                        "clean_fpr": clean_false_positive_rate(X, y)})
            for kind in CORRUPTIONS:
                for rate in rates:
                    for seed in range(args.seeds):
                        y_noisy, truth = corrupt(y, kind, rate, seed)
                        row = run_cell(X, y_noisy, truth, args.repeat)
                        row.update(data=name, kind=kind, rate=rate, cell=f"{name}/{kind}/{rate}")
                        rows.append(row)
                        print(f"{row['cell']:28s} AUROC {row['sk_auroc']:.3f} vs "
                              f"{row['cl_auroc']:.3f}  {row['sk_s'] * 1e3:7.1f} ms vs "
                              f"{row['cl_s'] * 1e3:7.1f} ms", flush=True)
    cols = [("sk_auroc", "AUROC sk"), ("cl_auroc", "AUROC cl"), ("sk_pk", "P@k sk"),
            ("cl_pk", "P@k cl"), ("sk_f1", "F1 sk"), ("cl_f1", "F1 cl"),
            ("sk_s", "sk s"), ("sk_fitted_s", "sk fitted s"), ("cl_s", "cl s"),
            ("cv_s", "5 fits s"), ("cl_flag_s", "cl flag s"), ("speedup", "speedup"),
            ("speedup_fitted", "speedup fitted"), ("cv_ratio", "5 fits / sk")]
    print_table(rows, [("cell", "cell")] + cols, title="Every cell", spec=".3f")
    for by in ("data", "kind", "rate"):
        print_table(summarise(rows, by), [(by, by)] + cols, title=f"Mean by {by} (seconds "
                    "summed, speedups geometric means of the cells)", spec=".3f")
    everything = [dict(r, all="all") for r in rows]
    print_table(summarise(everything, "all"), [("all", "")] + cols, title="All cells",
                spec=".3f")
    print_table(fpr, ["data", "n", "d", ("clean_fpr", "flagged share, clean targets")],
                title="False positives on the uncorrupted data (|z| > 2.576)", spec=".4f")


if __name__ == "__main__":
    main()
