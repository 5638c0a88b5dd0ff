"""Label cleaning with a random forest: out-of-bag probabilities vs cleanlab, same run.

For every dataset x noise rate x seed of ``bench_cleaning.py``'s grid (its splits and
metrics), the training labels are flipped and

* cleanlab 2.9: ``find_label_issues`` (``prune_by_noise_rate``) and
  ``get_label_quality_scores`` on 5-fold cross-validated probabilities of the same
  forest (five fits on 80% of the rows);
* ``sk:oob``: ``InfluenceCleaner(RandomForestClassifier(...))``: one fit, the forest's
  out-of-bag probabilities, confident learning (``prune_globally``; ``/nr``:
  ``prune_by_noise_rate`` as cleanlab);
* ``sk:oob+fitted``: the same on a forest the user already fitted, passed in
  :class:`~sklearn.frozen.FrozenEstimator` (no fit at all);
* ``sk:oobN`` (with ``--oob-trees N``): ``sk:oob`` on a forest of ``N`` trees.  Each row's
  out-of-bag probability averages the ~37% of the trees that left it out; ``N = 270``
  gives each row about as many trees as cross-validation's 100.

``--decompose`` adds a table that separates the rule from the probabilities, on the same
draws (untimed): F1 of skinfluence's rule on cleanlab's cross-validated probabilities
(``sk rule, cv P``) and of cleanlab's rule on the out-of-bag ones (``cl rule, oob P``);
how far the two probability matrices are apart (largest gap of the per-class thresholds,
mean absolute difference, correlation of the given label's probability); the noise
count confident learning estimates from each against the true one; and, on the same
cross-validated probabilities, how many rows cleanlab's ``find_label_issues`` and
skinfluence's ``prune_by_noise_rate`` disagree on, before and after dropping the flagged
rows whose given label is the predicted one (cleanlab's last step).

Forest: ``RandomForestClassifier(n_estimators, random_state=0, n_jobs=1)``.  Seconds are
the fastest of ``--repeat`` runs of the cleaning step.  Each seed draws its own split and
flips; ``f1 sd`` is the spread of F1 over the seeds and ``dF1 (se)`` the mean over seeds of
the row's F1 minus cleanlab's on the same flips, with its standard error.

Run (the cleanlab environment)::

    PYTHONPATH=. /work/benchvenv15/bin/python benchmarks/bench_cleaning_forest.py
"""

import argparse
import os
import sys

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold, cross_val_predict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cleaning as bc  # noqa: E402

from skinfluence.cleaning import InfluenceCleaner  # noqa: E402
from skinfluence.datasets import make_noisy_labels  # noqa: E402

N_ESTIMATORS = 100


def forest():
    return RandomForestClassifier(N_ESTIMATORS, random_state=0, n_jobs=1)


def run_cleanlab(X, y, seed):
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    def run():
        cv = StratifiedKFold(5, shuffle=True, random_state=seed)
        P = cross_val_predict(forest(), X, y, cv=cv, method="predict_proba")
        return 1.0 - get_label_quality_scores(y, P), find_label_issues(y, P)

    return bc.timed(run)


def run_oob(X, y, spec):
    method, _, filt = spec.partition("/")
    kw = {"filter_by": "prune_by_noise_rate"} if filt == "nr" else {}
    model = FrozenEstimator(forest().fit(X, y)) if method == "oob+fitted" else forest()
    if method[3:].isdigit():  # oobN: a forest of N trees
        model.set_params(n_estimators=int(method[3:]))
    cleaner, secs = bc.timed(lambda: InfluenceCleaner(model, **kw).fit(X, y))
    return (cleaner.scores_, cleaner.issues_), secs


def decompose(X, y, flipped, seed):
    """One row of the ``--decompose`` table (see the module docstring)."""
    from cleanlab.filter import find_label_issues as cl_find

    from skinfluence.cleaning import find_label_issues
    from skinfluence.cleaning._confident import estimate_noise_count, per_class_thresholds
    from skinfluence.trees._oob import oob_proba

    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    P_cv = cross_val_predict(forest(), X, y, cv=cv, method="predict_proba")
    P_oob = oob_proba(forest().fit(X, y), X)
    conf = np.arange(len(y)), y
    f1 = {}
    for name, P, issues in (("sk rule, cv P", P_cv, find_label_issues(
            y, P_cv, filter_by="prune_globally")), ("cl rule, oob P", P_oob, cl_find(y, P_oob))):
        f1[name] = bc.quality(flipped, 1 - P[conf], issues)["f1"]
    cl_nr, sk_nr = cl_find(y, P_cv), find_label_issues(y, P_cv)
    return dict(**f1, dt=np.abs(per_class_thresholds(y, P_oob)
                                - per_class_thresholds(y, P_cv)).max(),
                dP=np.abs(P_oob - P_cv).mean(), corr=np.corrcoef(P_oob[conf], P_cv[conf])[0, 1],
                true=flipped.sum(), n_cv=estimate_noise_count(y, P_cv),
                n_oob=estimate_noise_count(y, P_oob), xor=(cl_nr ^ sk_nr).sum(),
                xor_pred=(cl_nr ^ (sk_nr & (P_cv.argmax(1) != y))).sum())


def main():
    global N_ESTIMATORS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits,wine,breast_cancer")
    parser.add_argument("--rates", default="0.1,0.2,0.3")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--oob-trees", type=int, default=None,
                        help="also sk:oob on a forest of this many trees")
    parser.add_argument("--decompose", action="store_true",
                        help="also the table separating the rule from the probabilities")
    args = parser.parse_args()
    N_ESTIMATORS = args.trees
    bc.REPEAT = args.repeat
    libs = ["cleanlab", "sk:oob", "sk:oob/nr", "sk:oob+fitted"]
    if args.oob_trees:
        libs.append(f"sk:oob{args.oob_trees}")
    rows, parts = [], []
    for data in args.data.split(","):
        X, y = bc.load(data, quick=True)
        for rate in map(float, args.rates.split(",")):
            for seed in range(args.seeds):
                X_tr, y_tr, _, _, _, _ = bc.split(X, y, seed)
                y_noisy, flipped = make_noisy_labels(y_tr, rate, random_state=seed)
                for lib in libs:
                    if lib == "cleanlab":
                        (scores, issues), secs = run_cleanlab(X_tr, y_noisy, seed)
                    else:
                        (scores, issues), secs = run_oob(X_tr, y_noisy, lib[3:])
                    rows.append(dict(data=data, rate=rate, lib=lib, secs=secs,
                                     **bc.quality(flipped, scores, issues)))
                if args.decompose:
                    parts.append(dict(data=data, rate=rate,
                                      **decompose(X_tr, y_noisy, flipped, seed)))
    print(f"RandomForestClassifier({N_ESTIMATORS}); mean over {args.seeds} seeds; speedup = "
          "cleanlab seconds / row seconds")
    head = ["data", "rate", "lib", "auroc", "p@k", "prec", "rec", "f1", "f1 sd", "dF1 (se)",
            "secs", "speedup"]
    widths = [14, 5, 14, 6, 6, 6, 6, 6, 6, 15, 7, 8]
    print(bc.fmt_row(head, widths))
    for data in args.data.split(","):
        for rate in map(float, args.rates.split(",")):
            ref = [r for r in rows if (r["data"], r["rate"], r["lib"]) == (data, rate,
                                                                           "cleanlab")]
            ref_secs = np.mean([r["secs"] for r in ref])
            for lib in libs:
                sel = [r for r in rows if (r["data"], r["rate"], r["lib"]) == (data, rate, lib)]
                m = {k: np.mean([r[k] for r in sel]) for k in ("auroc", "p@k", "prec", "rec",
                                                               "f1", "secs")}
                f1 = np.array([r["f1"] for r in sel])
                d = f1 - np.array([r["f1"] for r in ref])  # same seeds, same order
                sd = f1.std(ddof=1) if len(sel) > 1 else np.nan
                se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.nan
                print(bc.fmt_row([data, f"{rate:.1f}", lib] + [f"{m[k]:.3f}" for k in (
                    "auroc", "p@k", "prec", "rec", "f1")] + [
                    f"{sd:.3f}", f"{d.mean():+.3f} ({se:.3f})", f"{m['secs']:.2f}",
                    f"{ref_secs / m['secs']:.1f}x"], widths))
    if parts:
        keys = ["sk rule, cv P", "cl rule, oob P", "dt", "dP", "corr", "true", "n_cv", "n_oob",
                "xor", "xor_pred"]
        print("\nrule vs probabilities, same draws (means over seeds): F1 of each rule on the "
              "other's probabilities; dt = max |threshold gap|; dP = mean |P_oob - P_cv|; "
              "corr of the given label's probabilities; noise count: true, from cv, from "
              "oob; cleanlab vs sk PBNR on cv P: rows that differ, then after dropping "
              "predicted == given")
        widths = [14, 5, 13, 14, 6, 6, 6, 6, 6, 6, 6, 8]
        print(bc.fmt_row(["data", "rate"] + keys, widths))
        for data in args.data.split(","):
            for rate in map(float, args.rates.split(",")):
                sel = [r for r in parts if (r["data"], r["rate"]) == (data, rate)]
                print(bc.fmt_row([data, f"{rate:.1f}"] + [
                    f"{np.mean([r[k] for r in sel]):.3f}" if k in keys[:5] else
                    f"{np.mean([r[k] for r in sel]):.1f}" for k in keys], widths))


if __name__ == "__main__":
    main()
