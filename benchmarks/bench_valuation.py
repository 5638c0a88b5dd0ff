"""Data valuation: skinfluence side by side with pyDVL 0.10, same data, same budget, same run.

Run in the benchmark environment (pyDVL needs numpy 1.x)::

    PYTHONPATH=. /work/venv-bench/bin/python benchmarks/bench_valuation.py [--quick] [--no-pydvl]

Tasks
-----
* KNN-Shapley: 20000 training x 1000 validation points (make_classification,
  20 features), K=5.  Also reports the largest difference between the two
  libraries' values (same closed form, so it should be ~1e-16).
* Mislabel detection: 200 training points, 10% labels flipped, 200 clean
  validation points, LogisticRegression, accuracy utility.  A method is
  scored by the AUROC of "lowest value first" at finding the flipped points.
  Budgets as in pyDVL's stopping criterion ``MaxUpdates``: permutations for
  TMC / Beta Shapley, sampled subsets for MSR Banzhaf, bags for Data-OOB.
Both libraries get 2 workers (pyDVL through ``joblib.parallel_config(n_jobs=2)``).
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from skinfluence.valuation import (
    BanzhafValuation,
    BetaShapley,
    DataOOB,
    KNNShapley,
    LOOValuation,
    TMCShapley,
)


def knn_data(n_train, n_val):
    X, y = make_classification(n_samples=n_train + n_val, n_features=20, n_informative=10,
                               n_classes=3, random_state=0)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def mislabel_task(n_train=200, n_val=200, frac=0.1, seed=0):
    X, y = make_classification(n_samples=n_train + n_val, n_features=10, n_informative=5,
                               random_state=seed)
    Xtr, ytr, Xv, yv = X[:n_train], y[:n_train].copy(), X[n_train:], y[n_train:]
    rng = np.random.default_rng(seed)
    flip = rng.choice(n_train, int(frac * n_train), replace=False)
    ytr[flip] = 1 - ytr[flip]
    return Xtr, ytr, Xv, yv, np.isin(np.arange(n_train), flip)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


# ------------------------------------------------------------------ pyDVL
def pydvl_values(result, n):
    v = np.full(n, np.nan)
    v[np.asarray(result.indices)] = result.values
    return v


def run_pydvl(method, Xtr, ytr, Xv, yv, budget, n_neighbors=5):
    from joblib import parallel_config
    from pydvl.valuation import (
        BetaShapleyValuation,
        DataOOBValuation,
        Dataset,
        KNNShapleyValuation,
        LOOValuation as PLOO,
        MaxUpdates,
        ModelUtility,
        MSRBanzhafValuation,
        PermutationSampler,
        RelativeTruncation,
        SupervisedScorer,
        TMCShapleyValuation,
    )
    from sklearn.ensemble import BaggingClassifier
    from sklearn.neighbors import KNeighborsClassifier

    train, test = Dataset(Xtr, ytr), Dataset(Xv, yv)
    model = LogisticRegression()
    utility = ModelUtility(model, SupervisedScorer("accuracy", test, default=0.0))
    if method == "knn":
        val = KNNShapleyValuation(KNeighborsClassifier(n_neighbors=n_neighbors), test,
                                  progress=False)
    elif method == "tmc":
        val = TMCShapleyValuation(utility, is_done=MaxUpdates(budget), seed=0)
    elif method == "beta":
        val = BetaShapleyValuation(utility, PermutationSampler(
            truncation=RelativeTruncation(rtol=0.01), seed=0), MaxUpdates(budget),
            alpha=16, beta=1)
    elif method == "banzhaf":
        val = MSRBanzhafValuation(utility, MaxUpdates(budget), seed=0)
    elif method == "oob":
        bag = BaggingClassifier(LogisticRegression(), n_estimators=budget, random_state=0)
        val = DataOOBValuation(bag)
        with parallel_config(n_jobs=2):
            _, t_bag = timed(lambda: bag.fit(Xtr, ytr))  # pyDVL values a fitted bag
        _, t_val = timed(lambda: val.fit(train))
        res = val.result if hasattr(val, "result") else val.values()
        return pydvl_values(res, len(ytr)), t_bag + t_val
    elif method == "loo":
        val = PLOO(utility)
    else:
        raise ValueError(method)
    with parallel_config(n_jobs=2), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, seconds = timed(lambda: val.fit(train))
    return pydvl_values(val.result if hasattr(val, "result") else val.values(), len(ytr)), seconds


# ------------------------------------------------------------- skinfluence
def run_ours(method, Xtr, ytr, Xv, yv, budget, n_neighbors=5):
    lr = LogisticRegression()
    common = dict(tol=None, random_state=0, n_jobs=2)
    if method == "knn":
        est = KNNShapley(n_neighbors=n_neighbors, n_jobs=2)
    elif method == "tmc":
        est = TMCShapley(lr, max_iter=budget, **common)
    elif method == "beta":
        est = BetaShapley(lr, alpha=16, beta=1, max_iter=budget, **common)
    elif method == "banzhaf":
        est = BanzhafValuation(lr, max_iter=budget, **common)
    elif method == "oob":
        est = DataOOB(lr, n_estimators=budget, random_state=0, n_jobs=2)
        _, seconds = timed(lambda: est.fit(Xtr, ytr))
        return est.values_, seconds
    elif method == "loo":
        est = LOOValuation(lr, n_jobs=2)
    _, seconds = timed(lambda: est.fit(Xtr, ytr, X_val=Xv, y_val=yv))
    return est.values_, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and budgets (smoke test)")
    parser.add_argument("--no-pydvl", action="store_true", help="skip pyDVL")
    parser.add_argument("--methods", default="knn,tmc,beta,banzhaf,oob,loo",
                        help="comma-separated subset of knn,tmc,beta,banzhaf,oob,loo")
    parser.add_argument("--permutations", type=int, default=2000,
                        help="budget of TMC/Beta Shapley and MSR (both libraries)")
    args = parser.parse_args()
    methods = set(args.methods.split(","))
    use_pydvl = not args.no_pydvl
    if use_pydvl:
        try:
            import pydvl  # noqa: F401
        except ImportError:
            print("pyDVL not importable: running skinfluence only (install the [bench] extra).")
            use_pydvl = False

    def fmt(x, spec):
        return "-" if x is None else format(x, spec)

    header = f"{'method':<26}{'budget':>8}{'pyDVL s':>10}{'pyDVL AUROC':>13}" \
             f"{'skinfl. s':>11}{'skinfl. AUROC':>15}{'speed-up':>10}  note"
    print(header)
    print("-" * len(header), flush=True)

    def emit(label, budget, t_dvl, auc_dvl, t_ours, auc_ours, note):
        speed = None if t_dvl is None else t_dvl / t_ours
        print(f"{label:<26}{str(budget):>8}{fmt(t_dvl, '.2f'):>10}{fmt(auc_dvl, '.3f'):>13}"
              f"{t_ours:>11.2f}{fmt(auc_ours, '.3f'):>15}{fmt(speed, '.1f'):>10}  {note}",
              flush=True)

    def pydvl_or_error(*a):
        try:
            return run_pydvl(*a), ""
        except Exception as exc:  # report and go on: one failing row must not hide the others
            return (None, None), f"pyDVL failed: {type(exc).__name__}: {exc}"[:120]

    # KNN-Shapley ---------------------------------------------------------
    if "knn" in methods:
        n_train, n_val = (2000, 100) if args.quick else (20000, 1000)
        Xtr, ytr, Xv, yv = knn_data(n_train, n_val)
        run_ours("knn", Xtr[:100], ytr[:100], Xv[:5], yv[:5], None)  # compile the kernel
        ours, t_ours = run_ours("knn", Xtr, ytr, Xv, yv, None)
        t_dvl = diff = None
        note = ""
        if use_pydvl:
            (theirs, t_dvl), note = pydvl_or_error("knn", Xtr, ytr, Xv, yv, None)
            if theirs is not None:
                diff = float(np.max(np.abs(ours - theirs)))
        emit(f"KNN-Shapley {n_train}x{n_val}", "-", t_dvl, None, t_ours, None,
             note or f"max |value difference| {fmt(diff, '.1e')}")

    # Mislabel detection ------------------------------------------------------
    Xtr, ytr, Xv, yv, flipped = mislabel_task()
    # warm up numba kernels and joblib's process pool (shared by both libraries) so that
    # timings are steady state
    from joblib import Parallel, delayed

    Parallel(n_jobs=2)(delayed(np.sqrt)(i) for i in range(8))
    run_ours("tmc", Xtr, ytr, Xv, yv, 4)
    run_ours("banzhaf", Xtr, ytr, Xv, yv, 16)
    q = 10 if args.quick else 1
    P = args.permutations // q
    for method, label, budget in [
        ("tmc", "TMC-Shapley", P),
        ("beta", "Beta(16,1)-Shapley", P),
        ("banzhaf", "MSR-Banzhaf", P),
        ("banzhaf", "MSR-Banzhaf", 25 * P),
        ("oob", "Data-OOB", 200 // (5 if args.quick else 1)),
        ("loo", "LOO (exact refits)", None),
    ]:
        if method not in methods:
            continue
        ours, t_ours = run_ours(method, Xtr, ytr, Xv, yv, budget)
        auc_ours = roc_auc_score(flipped, -ours)
        t_dvl = auc_dvl = None
        note = ""
        if use_pydvl and not (method == "banzhaf" and budget > P):
            (theirs, t_dvl), note = pydvl_or_error(method, Xtr, ytr, Xv, yv, budget)
            if theirs is not None:
                ok = np.isfinite(theirs)
                auc_dvl = roc_auc_score(flipped[ok], -theirs[ok])
        emit(label, budget if budget is not None else 200, t_dvl, auc_dvl, t_ours, auc_ours,
             note)
    print("\nAUROC: flipped labels found by lowest value (200 train, 20 flipped, 200 validation, "
          "LogisticRegression, accuracy utility). 2 workers each.")


if __name__ == "__main__":
    main()
