"""Label cleaning: skinfluence vs cleanlab 2.9, measured in the same run.

For every dataset x noise rate, labels of the training split are flipped
(:func:`skinfluence.datasets.make_noisy_labels`), then

* cleanlab: ``find_label_issues`` (default ``prune_by_noise_rate``) and
  ``get_label_quality_scores`` (self-confidence) on 5-fold cross-validated
  probabilities of the same model -- cleanlab's recommended workflow;
* skinfluence: :class:`~skinfluence.InfluenceCleaner` with each method
  (approximate leave-one-out from one fit, self-influence, influence on a
  small trusted clean set, training loss).

Metrics: AUROC of the scores against the true flip mask, precision at the
true noise count (P@k), precision / recall / F1 of the flagged set, test
accuracy of the model refitted on the training set without the flagged
points ("acc" ; "noisy" is without cleaning, "oracle" without the true
flips), and wall-clock seconds of the cleaning step (fit + scoring +
flagging, or scoring + flagging of an already fitted model for ``method+fitted``; the
refit for accuracy is not timed), the fastest of ``--repeat``
runs.  ``fit%`` is the share of that time one plain ``fit`` of the model
takes, ``bound`` the speedup over cleanlab of a method costing exactly one
fit.  The closing summary gives each method's summed seconds over all cells against
cleanlab's (the speedup the issue's goals are stated in) and, for ``+fitted`` rows, against
the arithmetic they need.  Also Koh & Liang's
"fraction of flips found vs fraction of training data checked" curve.

Model: ``StandardScaler() + LogisticRegression(C=1)`` (L2).

Run::

    python benchmarks/bench_cleaning.py            # full grid (~5-10 min on 2 cores)
    python benchmarks/bench_cleaning.py --quick    # small grid, no 50k case
    python benchmarks/bench_cleaning.py --curve-out curve.npz   # save the curves
    python benchmarks/bench_cleaning.py --methods loo --threads 1 --repeat 3  # speed, busy machine
    python benchmarks/bench_cleaning.py --methods loo,loo+fitted   # also: model already fitted
                                     # (+fitted rows also time the arithmetic they need)

Needs the ``[bench]`` extra (cleanlab 2.9).
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence.cleaning import InfluenceCleaner, cleaning_curve
from skinfluence.datasets import make_noisy_labels

CHECKED = (0.05, 0.1, 0.2, 0.3, 0.4)
# numpy < 2 (the cleanlab environment) spells it trapz
_trapezoid = getattr(np, "trapezoid", None) or np.trapz


MODEL = "scaled"


def make_model():
    if MODEL == "raw":  # unscaled features: lbfgs needs many more iterations per fit
        return LogisticRegression(C=1.0, max_iter=10_000)
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))


def load(name, quick):
    if name == "digits":
        return load_digits(return_X_y=True)
    if name == "wine":
        return load_wine(return_X_y=True)
    if name == "breast_cancer":
        return load_breast_cancer(return_X_y=True)
    if name == "synthetic50k":
        n_train = 10_000 if quick else 50_000
        # 65% of the rows are the training split below
        return make_classification(
            n_samples=int(round(n_train / 0.65)),
            n_features=20,
            n_informative=10,
            n_redundant=4,
            n_classes=4,
            n_clusters_per_class=1,
            class_sep=1.5,
            random_state=0,
        )
    raise ValueError(name)


def split(X, y, seed):
    """65% train (noisy), 10% trusted clean set (validation method only), 25% test.

    The trusted set is capped at 500 rows: trusted labels are expensive, and the
    ``validation`` method's cost grows with its size.
    """
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    X_tr, X_val, y_tr, y_val = train_test_split(
        X_tr, y_tr, test_size=0.10 / 0.75, stratify=y_tr, random_state=seed
    )
    return X_tr, y_tr, X_val[:500], y_val[:500], X_te, y_te


def quality(flipped, scores, issues):
    k = int(flipped.sum())
    top = np.argsort(-scores, kind="stable")[:k]
    tp = int((issues & flipped).sum())
    prec = tp / max(int(issues.sum()), 1)
    rec = tp / max(k, 1)
    f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    return {
        "auroc": roc_auc_score(flipped, scores),
        "p@k": float(flipped[top].mean()),
        "prec": prec,
        "rec": rec,
        "f1": f1,
        "n_flag": int(issues.sum()),
    }


def accuracy_after(X_tr, y_noisy, keep, X_te, y_te):
    return make_model().fit(X_tr[keep], y_noisy[keep]).score(X_te, y_te)


REPEAT = 1


def timed(func):
    """``func()`` and its wall-clock seconds: the fastest of ``REPEAT`` runs.

    On a shared machine the minimum is the least disturbed measurement; both
    libraries are timed the same way, interleaved cell by cell.
    """
    best = np.inf
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - t0)
    return out, best


def run_cleanlab(X, y, seed):
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    def run():
        cv = StratifiedKFold(5, shuffle=True, random_state=seed)
        P = cross_val_predict(make_model(), X, y, cv=cv, method="predict_proba")
        issues = find_label_issues(y, P)
        scores = 1.0 - get_label_quality_scores(y, P)
        return scores, issues

    (scores, issues), secs = timed(run)
    return scores, issues, secs


def run_skinfluence(X, y, spec, X_val, y_val):
    """``spec`` is ``method[+fitted][/filter_by]`` (e.g. ``loo/prune_by_noise_rate``).

    ``+fitted``: the user already has the model fitted on the noisy data (the one
    to be cleaned); it is fitted outside the timer and passed frozen, so only the
    cleaning itself is timed.  cleanlab cannot reuse such a model: its
    probabilities must be out-of-sample, hence its cross-validation fits.
    """
    from sklearn.frozen import FrozenEstimator

    method, _, filter_by = spec.partition("/")
    method, _, given = method.partition("+")
    val = {"X_val": X_val, "y_val": y_val} if method == "validation" else {}
    kw = {"filter_by": filter_by} if filter_by else {}
    model = FrozenEstimator(make_model().fit(X, y)) if given == "fitted" else make_model()
    cleaner, secs = timed(lambda: InfluenceCleaner(model, method=method, **kw).fit(X, y, **val))
    return cleaner.scores_, cleaner.issues_, secs


def arithmetic_seconds(X, y):
    """Seconds of the dense linear algebra the leave-one-out path of a fitted model needs,
    timed on random operands of the same shapes (fastest of ``REPEAT``): the Hessian and
    the leverages (for K > 2 classes one GEMM each over the unique feature pair products,
    else ``X~^T X~`` and ``X~ H^-1``), one Cholesky factorisation and LAPACK's inverse
    from it.  The rest of the cleaner's time is validation, bookkeeping and small kernels.
    """
    import scipy.linalg as la

    n = X.shape[0]
    K = len(np.unique(y))
    K = 1 if K == 2 else K
    Xs = StandardScaler().fit_transform(X)
    da = int(np.count_nonzero(np.any(Xs != 0, axis=0))) + 1  # active features + intercept
    p, n_pairs, nq = K * da, K * (K + 1) // 2, da * (da + 1) // 2
    rng = np.random.default_rng(0)
    B = rng.standard_normal((p + 10, p))
    H = B.T @ B + np.eye(p)
    c, _ = la.cho_factor(H, lower=True)
    if K > 1:
        QT, W, Hq = rng.random((nq, n)), rng.random((n, n_pairs)), rng.random((n_pairs, nq))
        ops = [lambda: QT @ W, lambda: QT.T @ Hq.T]
    else:
        Xa, A = rng.random((n, da)), rng.random((da, da))
        ops = [lambda: Xa.T @ Xa, lambda: Xa @ A]
    ops += [lambda: la.cho_factor(H, lower=True), lambda: la.lapack.dpotri(c, lower=True)]
    return sum(timed(op)[1] for op in ops)


def fmt_row(cols, widths):
    return "  ".join(
        str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cols, widths))
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small grid, 10k synthetic")
    parser.add_argument("--seeds", type=int, default=1, help="repetitions per cell")
    parser.add_argument(
        "--methods",
        default="loo,loo/prune_by_noise_rate,self_influence,validation,loss",
        help="comma-separated InfluenceCleaner methods, optionally method/filter_by; "
        "method+fitted times the cleaning of an already fitted model (FrozenEstimator)",
    )
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: all)")
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="time each cleaning run this many times and keep the fastest (both libraries)",
    )
    parser.add_argument(
        "--model",
        choices=["scaled", "raw"],
        default="scaled",
        help="scaled: StandardScaler + LogisticRegression (default); raw: LogisticRegression "
        "on unscaled features (slow lbfgs convergence, fits dominate the cost)",
    )
    parser.add_argument(
        "--datasets",
        default="digits,wine,breast_cancer,synthetic50k",
        help="comma-separated subset of digits,wine,breast_cancer,synthetic50k",
    )
    parser.add_argument("--curve-out", default=None, help="save curves to this .npz file")
    args = parser.parse_args()

    import cleanlab

    from threadpoolctl import threadpool_limits

    global MODEL, REPEAT
    MODEL = args.model
    REPEAT = max(1, args.repeat)
    datasets = [d for d in args.datasets.split(",") if d]
    rates = [0.1, 0.2, 0.3]
    if args.quick:
        rates = [0.1, 0.3]
    methods = [m for m in args.methods.split(",") if m]
    libs = ["cleanlab"] + [f"sk:{m}" for m in methods]

    warnings.filterwarnings("ignore", category=UserWarning)
    rows = []  # dicts
    curves = {lib: [] for lib in libs}
    desc = "StandardScaler + " if MODEL == "scaled" else "unscaled "
    print(f"cleanlab {cleanlab.__version__}; model {desc}LogisticRegression(C=1); "
          f"BLAS threads: {args.threads or 'all'}; seconds: fastest of {REPEAT} run(s)")
    from threadpoolctl import threadpool_info

    for lib in threadpool_info():
        arch = lib.get("architecture")
        print(f"  {lib.get('internal_api')} {lib.get('version')} kernel {arch}: "
              f"{lib.get('filepath', '').rsplit('/', 1)[-1]}")
        if arch in ("Prescott", "Core2", "Nehalem", "Generic"):
            # OpenBLAS older than the CPU falls back to an old kernel: GEMMs run 5-6x
            # slower, which distorts the comparison (the one-fit method is BLAS-bound)
            print(f"  WARNING: {lib.get('internal_api')} did not recognise this CPU and "
                  f"uses the {arch} kernel; set OPENBLAS_CORETYPE (e.g. SkylakeX or Haswell)")
    with threadpool_limits(args.threads):
        # warm-up: numba kernels compile on first use (cached on disk afterwards); keep
        # the one-off compilation out of the first cell's timing, for both libraries
        Xw, yw = make_classification(60, 5, n_informative=3, n_classes=3, random_state=0)
        run_cleanlab(Xw, yw, 0)
        for lib in libs[1:]:
            run_skinfluence(Xw, yw, lib[3:], Xw[:20], yw[:20])
        for name in datasets:
            X, y = load(name, args.quick)
            for rate in rates:
                for seed in range(args.seeds):
                    X_tr, y_tr, X_val, y_val, X_te, y_te = split(X, y, seed)
                    y_noisy, flipped = make_noisy_labels(y_tr, rate, random_state=seed)
                    base = {"data": name, "n": X_tr.shape[0], "rate": rate, "seed": seed}
                    # one plain fit of the model: the floor of any one-fit method
                    _, fit_secs = timed(lambda: make_model().fit(X_tr, y_noisy))
                    acc_noisy = accuracy_after(X_tr, y_noisy, np.ones_like(flipped), X_te, y_te)
                    acc_oracle = accuracy_after(X_tr, y_noisy, ~flipped, X_te, y_te)
                    for lib in libs:
                        if lib == "cleanlab":
                            scores, issues, secs = run_cleanlab(X_tr, y_noisy, seed)
                        else:
                            scores, issues, secs = run_skinfluence(
                                X_tr, y_noisy, lib[3:], X_val, y_val
                            )
                        q = quality(flipped, scores, issues)
                        acc = accuracy_after(X_tr, y_noisy, ~issues, X_te, y_te)
                        checked, found, _ = cleaning_curve(flipped, scores)
                        curves[lib].append(
                            np.interp(np.linspace(0, 1, 101), checked, found)
                        )
                        rows.append(
                            {**base, "lib": lib, **q, "acc": acc, "noisy": acc_noisy,
                             "oracle": acc_oracle, "secs": secs, "fit": fit_secs}
                        )
                        if lib.endswith("+fitted"):  # its arithmetic, right after it
                            rows[-1]["arith"] = arithmetic_seconds(X_tr, y_noisy)
                        r = rows[-1]
                        print(
                            f"  {name:13s} {rate:.1f} s{seed} {lib:25s} auroc={r['auroc']:.3f} "
                            f"p@k={r['p@k']:.3f} f1={r['f1']:.3f} acc={acc:.3f} {secs:.3f}s",
                            flush=True,
                        )

    # ---------------------------------------------------------- table
    cols = ["data", "rate", "lib", "AUROC", "P@k", "prec", "rec", "F1", "flagged",
            "acc", "noisy", "oracle", "secs", "speedup", "fit%", "bound"]
    widths = [13, 4, 25, 6, 6, 6, 6, 6, 7, 6, 6, 6, 8, 7, 5, 6]
    print()
    print(fmt_row(cols, widths))
    print(fmt_row(["-" * w for w in widths], widths))

    def agg(sel):
        return {k: float(np.mean([r[k] for r in sel])) for k in
                ("auroc", "p@k", "prec", "rec", "f1", "n_flag", "acc", "noisy", "oracle", "secs",
                 "fit")}

    cells = sorted(
        {(r["data"], r["rate"]) for r in rows}, key=lambda c: (datasets.index(c[0]), c[1])
    )
    for data, rate in cells:
        ref = agg([r for r in rows if (r["data"], r["rate"], r["lib"]) == (data, rate, "cleanlab")])
        for lib in libs:
            a = agg([r for r in rows if (r["data"], r["rate"], r["lib"]) == (data, rate, lib)])
            print(fmt_row([data, rate, lib, f"{a['auroc']:.3f}", f"{a['p@k']:.3f}",
                           f"{a['prec']:.3f}", f"{a['rec']:.3f}", f"{a['f1']:.3f}",
                           f"{a['n_flag']:.0f}", f"{a['acc']:.3f}", f"{a['noisy']:.3f}",
                           f"{a['oracle']:.3f}", f"{a['secs']:.3f}",
                           f"{ref['secs'] / a['secs']:.1f}x",
                           f"{min(a['fit'] / a['secs'], 9.99):.0%}" if lib != "cleanlab" else "",
                           f"{ref['secs'] / a['fit']:.1f}x"], widths))
    print(fmt_row(["-" * w for w in widths], widths))
    ref_all = [r for r in rows if r["lib"] == "cleanlab"]
    for lib in libs:
        sel = [r for r in rows if r["lib"] == lib]
        a = agg(sel)
        # speedup averaged as ratio of total time and as geometric mean of per-cell ratios
        ratios = [c["secs"] / s["secs"] for c, s in zip(ref_all, sel)]
        gm = float(np.exp(np.mean(np.log(ratios))))
        fit_share = float(np.mean([s["fit"] / s["secs"] for s in sel]))
        bound = float(np.exp(np.mean(np.log([c["secs"] / s["fit"] for c, s in zip(ref_all, sel)]))))
        print(fmt_row(["AVERAGE", "all", lib, f"{a['auroc']:.3f}", f"{a['p@k']:.3f}",
                       f"{a['prec']:.3f}", f"{a['rec']:.3f}", f"{a['f1']:.3f}",
                       f"{a['n_flag']:.0f}", f"{a['acc']:.3f}", f"{a['noisy']:.3f}",
                       f"{a['oracle']:.3f}", f"{a['secs']:.3f}", f"{gm:.1f}x",
                       f"{fit_share:.0%}" if lib != "cleanlab" else "", f"{bound:.1f}x"], widths))
        if lib != "cleanlab":
            total = sum(c["secs"] for c in ref_all) / sum(s["secs"] for s in sel)
            print(fmt_row(["  total time", "", "", "", "", "", "", "", "", "", "", "", "",
                           f"{total:.1f}x", "", ""], widths))
    arith = [r for r in rows if "arith" in r]
    if arith:
        print("\nModel already fitted: seconds against the dense linear algebra they need "
              "(same shapes, timed in the same cell)")
        for data in datasets:
            for lib in sorted({r["lib"] for r in arith}):
                sel = [r for r in arith if (r["data"], r["lib"]) == (data, lib)]
                if sel:
                    secs = float(np.mean([r["secs"] for r in sel]))
                    ar = float(np.mean([r["arith"] for r in sel]))
                    print(f"  {data:13s} {lib:25s} {1e3 * secs:7.1f} ms  arithmetic "
                          f"{1e3 * ar:6.1f} ms  ratio {secs / ar:.2f}")
    # the summary the issue's goals are stated in: summed seconds over every cell
    print("\nSummary: summed seconds over all cells (speedup = cleanlab's total / this total)")
    ref_total = sum(r["secs"] for r in rows if r["lib"] == "cleanlab")
    print(f"  {'cleanlab':25s} total {ref_total:8.3f} s")
    for lib in libs[1:]:
        sel = [r for r in rows if r["lib"] == lib]
        total = sum(r["secs"] for r in sel)
        per = []
        for data in datasets:
            ours = sum(r["secs"] for r in sel if r["data"] == data)
            theirs = sum(r["secs"] for r in rows if (r["lib"], r["data"]) == ("cleanlab", data))
            if ours > 0:
                per.append(f"{data} {theirs / ours:.1f}x")
        print(f"  {lib:25s} total {total:8.3f} s  speedup {ref_total / total:5.1f}x  "
              f"({', '.join(per)})")
        if all("arith" in r for r in sel):
            # datasets whose arithmetic is measurable (>= 1 ms; wine, breast cancer: ~0)
            parts = [f"all {total / sum(r['arith'] for r in sel):.2f}x"]
            for data in datasets:
                ds = [r for r in sel if r["data"] == data]
                ar = sum(r["arith"] for r in ds) / max(len(ds), 1)
                if ar >= 1e-3:
                    parts.append(f"{data} {sum(r['secs'] for r in ds) / len(ds) / ar:.2f}x")
            print(f"  {'':25s} seconds / arithmetic: {', '.join(parts)}")
    print("speedup: cleanlab seconds / this row's seconds (AVERAGE: geometric mean over cells; "
          "total time: ratio of summed seconds)")
    print("fit%: share of this row's seconds that one plain fit of the model takes; bound: "
          "cleanlab seconds / one fit, the speedup of a method costing exactly one fit")

    # ---------------------------------------------------------- curve
    grid = np.linspace(0, 1, 101)
    print("\nFraction of flipped labels found vs fraction of training data checked "
          "(Koh & Liang), mean over all cells")
    head = ["lib"] + [f"{c:.0%}" for c in CHECKED] + ["AUC"]
    w2 = [25] + [6] * len(CHECKED) + [6]
    print(fmt_row(head, w2))
    for lib in libs:
        mean = np.mean(curves[lib], axis=0)
        vals = [f"{np.interp(c, grid, mean):.3f}" for c in CHECKED]
        print(fmt_row([lib] + vals + [f"{_trapezoid(mean, grid):.3f}"], w2))
    if args.curve_out:
        means = {
            lib.replace("sk:", "skinfluence_").replace("/", "_"): np.mean(curves[lib], axis=0)
            for lib in libs
        }
        np.savez(args.curve_out, fraction_checked=grid, **means)
        print(f"curves saved to {args.curve_out}")


if __name__ == "__main__":
    main()
