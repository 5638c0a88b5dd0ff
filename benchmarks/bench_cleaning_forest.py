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
* ``sk:trees=all`` / ``sk:trees=all+fitted``: ``InfluenceCleaner(...,
  forest_trees="all")``: the same counts, the rows ranked by every tree (see ``--inbag``);
* ``sk:oobN`` (with ``--oob-trees N``): ``sk:oob`` on a forest of ``N`` trees.  Each row's
  out-of-bag probability averages the ~37% of the trees that left it out; ``N = 270``
  gives each row about as many trees as cross-validation's 100.

``--inbag`` tests using the ~63% of the trees that DID see a row too, through each such
tree's leave-one-out prediction at the row read from the fitted tree (no regrowth), in
two readings.  ``leaves``: the row's leaf class weights without the row's own bootstrap
copies, or its parent's where that empties the leaf; rows ``sk:all`` (every tree
averaged, confident learning on the result) and ``sk:all/rank`` (the out-of-bag noise
count, the rows ranked lowest by the all-tree probability of their label), in numpy
(untimed: ``nan``).  ``moved``: the row routed as if each split's threshold had been
placed without it (``skinfluence.trees._oob_kernels.tree_loo_counts``), which
``sk:trees=all`` ranks by as ``/rank`` does.
The table checks each reading against the tree scikit-learn regrows on the same
bootstrap weights with the row's set to zero (same ``random_state``; 8 in-bag rows of
each of 5 trees per seed), by case.

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
    if method.startswith("trees=all"):
        kw["forest_trees"] = "all"
    fitted = method.endswith("+fitted")
    model = FrozenEstimator(forest().fit(X, y)) if fitted else forest()
    if method[3:].isdigit():  # oobN: a forest of N trees
        model.set_params(n_estimators=int(method[3:]))
    cleaner, secs = bc.timed(lambda: InfluenceCleaner(model, **kw).fit(X, y))
    return (cleaner.scores_, cleaner.issues_), secs


def _parents(tree):
    parent = np.full(tree.node_count, -1)
    for child in (tree.children_left, tree.children_right):
        parent[child[child >= 0]] = np.flatnonzero(child >= 0)
    return parent


def inbag_loo(fitted, X, codes, tree_ids=None, moved=False):
    """Per tree: ``(P, inbag, case)``: its out-of-bag probabilities (rows it left out) or
    leave-one-out ones read from its leaves (rows it saw).  ``moved=False``: the leaf
    without the row, or its parent's if that empties it (``case`` 0: leaf not emptied,
    1: emptied, parent pure without the row, 2: emptied, parent mixed); ``moved=True``:
    skinfluence's ``tree_loo_counts`` (``case`` 0: own leaf, 1: moved across a threshold,
    2: split vanished)."""
    from skinfluence.trees._oob_kernels import tree_loo_counts

    Xf = X.astype(np.float32)
    n = len(codes)
    rows = np.arange(n)
    samples = fitted.estimators_samples_
    for t in range(len(fitted.estimators_)) if tree_ids is None else tree_ids:
        tree = fitted.estimators_[t].tree_
        w = np.bincount(samples[t], minlength=n).astype(np.float64)  # bootstrap counts
        node_counts = tree.value[:, 0, :] * tree.weighted_n_node_samples[:, None]
        leaf = tree.apply(Xf)
        inbag = w > 0
        case = np.zeros(n, dtype=np.intp)
        if moved:
            out = np.empty((n, node_counts.shape[1]))
            tree_loo_counts(tree.children_left, tree.children_right, tree.feature,
                            tree.threshold, tree.missing_go_to_left, node_counts, Xf, w,
                            codes.astype(np.intp), out, case, np.empty(n, np.intp))
            yield out / out.sum(1, keepdims=True), inbag, case
            continue
        counts = node_counts[leaf]
        counts[rows[inbag], codes[inbag]] -= w[inbag]
        counts = np.maximum(counts, 0.0)  # rounding of value * weight
        empty = inbag & (counts.sum(1) <= 1e-9 * tree.weighted_n_node_samples[leaf])
        if empty.any():
            up = _parents(tree)[leaf[empty]]
            c = node_counts[up]
            c[np.arange(len(up)), codes[empty]] -= w[empty]
            counts[empty] = np.maximum(c, 0.0)
            case[empty] = np.where((counts[empty] > 1e-9).sum(1) == 1, 1, 2)
        yield counts / counts.sum(1, keepdims=True), inbag, case


def run_inbag(X, y, rank_only, moved=False):
    from skinfluence.cleaning import find_label_issues
    from skinfluence.cleaning._confident import _lowest_k, estimate_noise_count

    fitted = forest().fit(X, y)
    codes = np.searchsorted(fitted.classes_, y)
    P_oob, P_all = np.zeros((len(y), len(fitted.classes_))), 0.0
    n_oob = np.zeros(len(y))
    for P, inbag, _ in inbag_loo(fitted, X, codes, moved=moved):
        P_oob[~inbag] += P[~inbag]
        n_oob += ~inbag
        P_all = P_all + P
    P_oob /= np.maximum(n_oob, 1)[:, None]
    P_all /= len(fitted.estimators_)
    scores = 1.0 - P_all[np.arange(len(y)), codes]
    if rank_only:  # the out-of-bag noise count, the all-tree ranking
        return scores, _lowest_k(-scores, estimate_noise_count(codes, P_oob))
    return scores, find_label_issues(codes, P_all, filter_by="prune_globally")


def regrowth_check(X, y, seed):
    """Per in-bag (tree, row) pair checked and reading (leaves, moved thresholds):
    (reading, case, max |LOO - regrown|, LOO and regrown probability of the given label)
    -- see ``--inbag``.  The regrowth with the tree's own weights is checked to give the
    fitted tree back."""
    from sklearn.base import clone

    fitted = forest().fit(X, y)
    codes = np.searchsorted(fitted.classes_, y)
    rng = np.random.default_rng(seed)
    trees = rng.choice(len(fitted.estimators_), 5, replace=False)
    samples = fitted.estimators_samples_
    out = []
    for t, (P, inbag, case), (Pm, _, case_m) in zip(
            trees, inbag_loo(fitted, X, codes, trees), inbag_loo(fitted, X, codes, trees, True)):
        w = np.bincount(samples[t], minlength=len(y)).astype(np.float64)
        same = clone(fitted.estimators_[t]).fit(X, codes, sample_weight=w).tree_
        assert np.array_equal(same.threshold, fitted.estimators_[t].tree_.threshold)
        for j in rng.choice(np.flatnonzero(inbag), 8, replace=False):
            sw = w.copy()
            sw[j] = 0.0
            regrown = clone(fitted.estimators_[t]).fit(X, codes, sample_weight=sw)
            exact = regrown.predict_proba(X[j:j + 1].astype(np.float32))[0]
            for reading, Q, c in (("leaves", P, case), ("moved", Pm, case_m)):
                out.append((reading, c[j], np.abs(Q[j] - exact).max(), Q[j, codes[j]],
                            exact[codes[j]]))
    return out


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
    parser.add_argument("--seeds", type=int, default=2, help="number of seeds per cell")
    parser.add_argument("--seed-start", type=int, default=0,
                        help="first seed (seeds seed-start, ..., seed-start + seeds - 1 draw "
                        "the splits and flips; e.g. 100 for development seeds disjoint from "
                        "the reported 0-29)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--oob-trees", type=int, default=None,
                        help="also sk:oob on a forest of this many trees")
    parser.add_argument("--inbag", action="store_true",
                        help="also the in-bag trees' leave-one-out predictions (see above)")
    parser.add_argument("--decompose", action="store_true",
                        help="also the table separating the rule from the probabilities")
    args = parser.parse_args()
    N_ESTIMATORS = args.trees
    bc.REPEAT = args.repeat
    libs = ["cleanlab", "sk:oob", "sk:oob/nr", "sk:oob+fitted", "sk:trees=all",
            "sk:trees=all+fitted"]
    if args.oob_trees:
        libs.append(f"sk:oob{args.oob_trees}")
    if args.inbag:
        libs += ["sk:all", "sk:all/rank"]
    rows, parts, checks = [], [], []
    for data in args.data.split(","):
        X, y = bc.load(data, quick=True)
        for rate in map(float, args.rates.split(",")):
            for seed in range(args.seed_start, args.seed_start + args.seeds):
                X_tr, y_tr, _, _, _, _ = bc.split(X, y, seed)
                y_noisy, flipped = make_noisy_labels(y_tr, rate, random_state=seed)
                for lib in libs:
                    if lib == "cleanlab":
                        (scores, issues), secs = run_cleanlab(X_tr, y_noisy, seed)
                    elif lib.startswith("sk:all"):  # the leaves' reading in numpy: untimed
                        scores, issues = run_inbag(X_tr, y_noisy, lib.endswith("rank"))
                        secs = np.nan
                    else:
                        (scores, issues), secs = run_oob(X_tr, y_noisy, lib[3:])
                    rows.append(dict(data=data, rate=rate, lib=lib, secs=secs,
                                     **bc.quality(flipped, scores, issues)))
                if args.inbag:
                    checks += [(data, rate, *c) for c in regrowth_check(
                        X_tr, y_noisy, seed)]
                if args.decompose:
                    parts.append(dict(data=data, rate=rate,
                                      **decompose(X_tr, y_noisy, flipped, seed)))
    print(f"RandomForestClassifier({N_ESTIMATORS}); mean over {args.seeds} seeds "
          f"({args.seed_start}-{args.seed_start + args.seeds - 1}); speedup = "
          "cleanlab seconds / row seconds")
    head = ["data", "rate", "lib", "auroc", "p@k", "prec", "rec", "f1", "f1 sd", "dF1 (se)",
            "secs", "speedup"]
    widths = [14, 5, 20, 6, 6, 6, 6, 6, 6, 15, 7, 8]
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
    if checks:
        print("\nin-bag leave-one-out read from the leaves vs the tree regrown without the row "
              "(same weights, row's at 0): pairs, share equal (max |diff| < 1e-12), mean "
              "|diff|, mean probability of the given label: read / regrown")
        widths = [14, 5, 8, 16, 6, 7, 7, 8, 8]
        print(bc.fmt_row(["data", "rate", "reading", "case", "pairs", "equal", "|diff|",
                          "P read", "P regrown"], widths))
        names = {"leaves": ["leaf kept", "emptied, pure", "emptied, mixed", "all"],
                 "moved": ["own leaf", "moved across", "split vanished", "all"]}
        for data in args.data.split(","):
            for rate in map(float, args.rates.split(",")):
                for reading in names:
                    for case, name in enumerate(names[reading]):
                        sel = np.array([c[4:] for c in checks if c[:3] == (
                            data, rate, reading) and (case == 3 or c[3] == case)])
                        if not len(sel):
                            continue
                        print(bc.fmt_row([data, f"{rate:.1f}", reading, name, len(sel),
                                          f"{np.mean(sel[:, 0] < 1e-12):.3f}"] + [
                            f"{sel[:, k].mean():.3f}" for k in range(3)], widths))
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
