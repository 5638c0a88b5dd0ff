"""Removal evaluation of gradient-boosting influence (Brophy, Hammoudeh & Lowd, JMLR 2023).

For each test point, every method ranks the training rows by how much they help that
point (removing them raises its loss); the top 0.1%, 1% and 5% are deleted, the model
is refit, and the rise of that test point's loss is recorded (larger is better).  The
same fitted HistGradientBoostingClassifier is explained by skinfluence
(``InfluenceFunctions`` with ``leaf_influence``, ``leaf_refit``, ``boostin``,
``boostin_final``, ``boostin_contribution``, ``boostin_contribution_greedy``, the last
ranked by its removal order) and by
``tree_influence`` 0.1.7 (BoostIn, LeafInfluence, LeafRefit), next to three baselines:
random rows, the rows of lowest training loss, and the nearest rows of the same label
(Euclidean on standardised features, tree_influence's InputSim).  Seconds are the time
to explain all test points of a dataset with one thread, the compiled kernels warm.

tree_influence needs its own environment (numpy < 2 for its compiled parsers; it imports
torch only for TREX, which is not run: a stub module stands in).  See README.md.

    python benchmarks/removal_trees.py [--quick] [--n-test 30] [--no-tree-influence]
        [--ti BoostIn]   # only tree_influence's explainers whose name has this
        [--methods boostin,boostin_final,"TI BoostIn"]   # only these rankings
        [--seeds 0,1,2] [--test-start 0]   # train/test splits; first test point used
        [--reference "TI BoostIn"] [--save rises.npz]
        [--greedy greedy_refit,greedy_shares,...]   # set-aware candidates, greedy_boosting.py

The reported table is ``--seeds 0 --test-start 0`` (the first 30 test points of split 0).
With several seeds, each seed is its own stratified 80/20 split and model; the table
pools the test points of all seeds.  Each method's "paired difference" is the mean over
test points of (its rise - the reference method's rise) with a 95% percentile bootstrap
interval (2,000 resamples of the test points), and "wins" the share of test points where
its rise is larger, ties counted half.  Refits are deterministic, so a removal set two
methods share is refit once.
"""

import argparse
import copy
import os
import sys
import time
import types
import warnings

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits, make_classification  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skinfluence import InfluenceFunctions  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from greedy_boosting import GREEDY, greedy_scores  # noqa: E402

FRACTIONS = (0.001, 0.01, 0.05)
OURS = ("leaf_influence", "leaf_refit", "boostin", "boostin_final", "boostin_contribution",
        "boostin_contribution_greedy")


def _tree_influence(only=""):
    """tree_influence's explainers (those whose name has ``only``), with a stub for the
    torch it imports at module level."""
    if "torch" not in sys.modules:
        torch = types.ModuleType("torch")
        torch.Tensor = type("Tensor", (), {})
        for sub in ("nn", "optim", "autograd"):
            mod = types.ModuleType(f"torch.{sub}")
            setattr(torch, sub, mod)
            sys.modules[f"torch.{sub}"] = mod
        torch.nn.Module, torch.autograd.Variable = object, None
        sys.modules["torch"] = torch
    from tree_influence.explainers import BoostIn, LeafInfluence, LeafRefit

    every = {"TI BoostIn": BoostIn, "TI LeafInfluence": LeafInfluence,
             "TI LeafRefit": LeafRefit}
    return {name: cls for name, cls in every.items() if only in name}


def as_tree_influence_reads_it(model):
    """A copy of the fitted model with the two attributes tree_influence 0.1.7 reads as
    scikit-learn < 1.6 had them: ``_estimator_type`` and a scalar ``_baseline_prediction``.
    The trees are the same; tree_influence checks its parse against ``predict_proba``."""
    twin = copy.deepcopy(model)
    twin._estimator_type = "classifier"
    twin._baseline_prediction = np.float64(model._baseline_prediction.ravel()[0])
    return twin


def datasets(quick):
    Xc, yc = load_breast_cancer(return_X_y=True)
    Xd, yd = load_digits(return_X_y=True)
    out = {"breast_cancer": (Xc, yc), "digits (0-4 vs 5-9)": (Xd, (yd >= 5).astype(int))}
    if not quick:
        Xs, ys = make_classification(2000, 20, n_informative=8, flip_y=0.05, random_state=0)
        out["synthetic 2000"] = (Xs, ys)
    return out


def make_model():
    return HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=0)


def log_loss(model, X, y):
    p = np.clip(model.predict_proba(X)[np.arange(len(y)), y], 1e-15, 1)
    return -np.log(p)


def rankings(X, y, Xt, yt, model, ti, n_jobs=1, greedy=()):
    """Influence (n_test, n_train) per method, positive = helpful, and seconds per method.
    ``greedy``: names of the set-aware candidates of ``greedy_boosting.py`` to add (each
    orders the top 5% of rows; seconds include preparing the fit)."""
    scores, seconds = {}, {}
    for name in greedy:
        t = time.perf_counter()
        inf = InfluenceFunctions(FrozenEstimator(model),
                                 approximation="boostin_contribution").fit(X, y)
        removal = inf._removal
        q_leaves = removal.model.apply(removal.model.features(Xt))
        k_max = max(1, int(round(max(FRACTIONS) * len(y))))
        scores[name] = greedy_scores(name, removal, q_leaves,
                                     removal.model.encode_target(yt), k_max)
        seconds[name] = time.perf_counter() - t
    for approx in OURS:
        t = time.perf_counter()
        inf = InfluenceFunctions(FrozenEstimator(model), approximation=approx,
                                 n_jobs=n_jobs).fit(X, y)
        if approx == "boostin_contribution_greedy":  # a removal order: explain gives it
            order = inf.explain(Xt, yt, k=len(y)).helpful_indices
            scores[approx] = np.empty((len(yt), len(y)))
            np.put_along_axis(scores[approx], order, np.arange(len(y), 0, -1.0), axis=1)
        else:
            scores[approx] = inf.transform(Xt, yt)
        seconds[approx] = time.perf_counter() - t
    for name, cls in ti.items():
        t = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exp = cls().fit(as_tree_influence_reads_it(model), X, y)
                scores[name] = np.asarray(exp.get_local_influence(Xt, yt)).T
        except Exception as err:  # report, keep evaluating the others
            print(f"  {name} failed: {type(err).__name__}: {str(err)[:120]}")
            continue
        seconds[name] = time.perf_counter() - t
    rng = np.random.RandomState(0)
    train_loss = log_loss(model, X, y)
    scaler = StandardScaler().fit(X)
    Zs, Zt = scaler.transform(X), scaler.transform(Xt)
    dist = np.sqrt(((Zt[:, None, :] - Zs[None, :, :]) ** 2).sum(axis=2))
    same = np.where(yt[:, None] == y[None, :], 1.0, -1.0)
    scores["random"] = rng.rand(len(yt), len(y))
    scores["training loss"] = np.tile(-train_loss, (len(yt), 1))
    scores["nearest same label"] = same / np.maximum(dist, 1e-12)
    return scores, seconds


def evaluate(X, y, Xt, yt, scores, fractions):
    """Loss rise (n_methods x n_fractions x n_test) of each test point after removals."""
    base = make_model().fit(X, y)
    before = log_loss(base, Xt, yt)
    rise = {name: np.empty((len(fractions), len(yt))) for name in scores}
    done = {}  # (test point, removed rows) -> rise: the refits are deterministic
    for f, frac in enumerate(fractions):
        k = max(1, int(round(frac * len(y))))
        for name, S in scores.items():
            for e in range(len(yt)):
                top = np.sort(np.argsort(-S[e], kind="stable")[:k])
                key = (e, top.tobytes())
                if key not in done:
                    keep = np.setdiff1d(np.arange(len(y)), top)
                    refit = make_model().fit(X[keep], y[keep])
                    done[key] = log_loss(refit, Xt[e:e + 1], yt[e:e + 1])[0] - before[e]
                rise[name][f, e] = done[key]
    return rise


def paired(a, b, n_boot=2000, seed=0):
    """Mean of ``a - b`` over test points, its 95% percentile bootstrap interval, and
    the share of points with ``a > b`` (ties counted half)."""
    d = a - b
    rng = np.random.RandomState(seed)
    boots = d[rng.randint(0, d.size, (n_boot, d.size))].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    wins = (np.sum(d > 0) + 0.5 * np.sum(d == 0)) / d.size
    return d.mean(), lo, hi, wins


def report(dname, n_train, rise, seconds, reference, n_seeds):
    n_test = next(iter(rise.values())).shape[1]
    print(f"\n{dname}: {n_train} train, {n_test} test points ({n_seeds} split(s)), "
          "HGB 100 iterations")
    head = " | ".join(f"{100 * fr:g}% median / mean" for fr in FRACTIONS)
    print(f"| method | {head} | seconds |")
    print("|---" * (len(FRACTIONS) + 2) + "|")
    for name, r in rise.items():
        cells = " | ".join(f"{np.median(r[f]):.4f} / {r[f].mean():.4f}"
                           for f in range(len(FRACTIONS)))
        sec = f"{np.mean(seconds[name]):.2f}" if name in seconds else "-"
        print(f"| {name} | {cells} | {sec} |")
    if reference not in rise:
        return
    print(f"\npaired difference of the rise against {reference}: mean [95% CI], wins")
    head = " | ".join(f"{100 * fr:g}%" for fr in FRACTIONS)
    print(f"| method | {head} |")
    print("|---" * (len(FRACTIONS) + 1) + "|")
    for name, r in rise.items():
        if name == reference:
            continue
        cells = []
        for f in range(len(FRACTIONS)):
            m, lo, hi, wins = paired(r[f], rise[reference][f])
            cells.append(f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}], {wins:.2f}")
        print(f"| {name} | {' | '.join(cells)} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n-test", type=int, default=30)
    parser.add_argument("--no-tree-influence", action="store_true")
    parser.add_argument("--only", default="", help="run the datasets whose name has this")
    parser.add_argument("--ti", default="", help="tree_influence explainers with this name")
    parser.add_argument("--methods", default="",
                        help="comma-separated names of the rankings to evaluate (all)")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated train/test split seeds (0: the reported one)")
    parser.add_argument("--test-start", type=int, default=0,
                        help="first test point of each split to use")
    parser.add_argument("--reference", default="TI BoostIn",
                        help="method the others are paired against")
    parser.add_argument("--save", default="", help="save every rise to this .npz")
    parser.add_argument("--greedy", default="",
                        help="comma-separated set-aware candidates of greedy_boosting.py "
                        f"to add ({', '.join(GREEDY)})")
    args = parser.parse_args(argv)
    ti = {} if args.no_tree_influence else _tree_influence(args.ti)
    n_test = 8 if args.quick else args.n_test
    seeds = [int(s) for s in args.seeds.split(",")]
    greedy = [g for g in args.greedy.split(",") if g]
    unknown = set(greedy) - set(GREEDY)
    if unknown:
        parser.error(f"unknown --greedy {sorted(unknown)}; choose from {', '.join(GREEDY)}")
    saved = {}
    for dname, (X0, y0) in datasets(args.quick).items():
        if args.only not in dname:
            continue
        rises, seconds = [], {}
        for seed in seeds:
            X, Xt, y, yt = train_test_split(X0, y0, test_size=0.2, random_state=seed,
                                            stratify=y0)
            Xt = Xt[args.test_start:args.test_start + n_test]
            yt = yt[args.test_start:args.test_start + n_test]
            model = make_model().fit(X, y)
            rankings(X, y, Xt[:2], yt[:2], model, {}, greedy=greedy)  # compile, untimed
            scores, secs = rankings(X, y, Xt, yt, model, ti, greedy=greedy)
            for name, sec in secs.items():
                seconds.setdefault(name, []).append(sec)
            if args.methods:
                keep = args.methods.split(",") + greedy
                scores = {name: S for name, S in scores.items() if name in keep}
            rises.append(evaluate(X, y, Xt, yt, scores, FRACTIONS))
        rise = {name: np.concatenate([r[name] for r in rises], axis=1) for name in rises[0]}
        report(dname, len(y), rise, seconds, args.reference, len(seeds))
        saved.update({f"{dname}|{name}": r for name, r in rise.items()})
        sys.stdout.flush()
    if args.save:
        np.savez(args.save, **saved)


if __name__ == "__main__":
    main()
