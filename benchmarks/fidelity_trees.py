"""Tree and forest influence against actual refits: predicted vs actual removal of a row.

For each model, fitted on 300 rows of a dataset bundled with scikit-learn (diabetes for
regression, breast cancer for classification), ``R`` training rows are removed one at a
time and the change of every test loss is compared with ``InfluenceFunctions(model,
approximation=...).transform(X_test, y_test)`` (half squared error for regressors,
clipped log-loss for classifiers).  The actual change is

* ``refit``: scikit-learn's refit with ``sample_weight[j] = 0`` and the same
  ``random_state``.  For deterministic models (single trees, ``bootstrap=False`` forests
  with every feature a candidate) this is *the* leave-one-out model.  For bootstrap
  forests it redraws every tree's sample (scikit-learn draws bootstrap samples with
  probabilities proportional to ``sample_weight``): a different random forest.
* ``expected`` (random models only): the leave-one-out effect of the random procedure,
  ``mean_s loss(refit_s without j) - mean_s loss(fit_s)`` over ``S`` seeds.  ``ceiling``
  is the Pearson correlation between two halves of those seeds: how well any prediction
  could agree with an estimate from ``S/2`` seeds.

Columns: Pearson and Spearman over all (test row, removed row) pairs; ``changed``: the
fraction of (removed row, tree that saw it) pairs whose regrown tree has other splits than
the fitted tree; seconds of the full ``transform`` (every training row) and of one refit.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Timer  # noqa: E402

from skinfluence import InfluenceFunctions  # noqa: E402

EPS = np.finfo(np.float64).eps


def _data(task, n_train=300, seed=0):
    X, y = load_diabetes(return_X_y=True) if task == "reg" else load_breast_cancer(
        return_X_y=True)
    idx = np.random.RandomState(seed).permutation(len(y))
    tr, te = idx[:n_train], idx[n_train:]
    return X[tr], y[tr], X[te], y[te]


def _losses(model, X, y):
    if hasattr(model, "predict_proba"):
        P = model.predict_proba(X)
        p = P[np.arange(len(y)), np.searchsorted(model.classes_, y)]
        return -np.log(np.clip(p, EPS, 1 - EPS))
    return 0.5 * (model.predict(X) - y) ** 2


def _refit_losses(model, X, y, Xte, yte, j, seed=None):
    sw = np.ones(len(y))
    if j is not None:
        sw[j] = 0.0
    m = clone(model)
    if seed is not None:
        m.set_params(random_state=seed)
    return _losses(m.fit(X, y, sample_weight=sw), Xte, yte)


def _models(n_trees):
    msl = dict(min_samples_leaf=5)
    return [
        ("reg", "DecisionTreeRegressor", True, DecisionTreeRegressor(random_state=0, **msl)),
        ("reg", "RF bootstrap=False max_features=1.0", True,
         RandomForestRegressor(n_trees, bootstrap=False, max_features=1.0, random_state=0,
                               **msl)),
        ("reg", "RF bootstrap=False max_features=0.5", False,
         RandomForestRegressor(n_trees, bootstrap=False, max_features=0.5, random_state=0,
                               **msl)),
        ("reg", "RF bootstrap max_features=1.0", False,
         RandomForestRegressor(n_trees, random_state=0, **msl)),
        ("reg", "ExtraTreesRegressor", False, ExtraTreesRegressor(n_trees, random_state=0,
                                                                  **msl)),
        ("clf", "DecisionTreeClassifier", True, DecisionTreeClassifier(random_state=0, **msl)),
        ("clf", "RF bootstrap=False max_features=None", True,
         RandomForestClassifier(n_trees, bootstrap=False, max_features=None, random_state=0,
                                **msl)),
        ("clf", "RF bootstrap sqrt", False, RandomForestClassifier(n_trees, random_state=0,
                                                                   **msl)),
    ]


def _corr(pred, actual):
    pred, actual = pred.ravel(), actual.ravel()
    if np.std(pred) == 0 or np.std(actual) == 0:
        return np.nan, np.nan
    return pearsonr(pred, actual)[0], spearmanr(pred, actual)[0]


def run_model(task, name, deterministic, model, removed, n_seeds):
    Xtr, ytr, Xte, yte = _data(task)
    fitted = clone(model).fit(Xtr, ytr)
    loss0 = _losses(fitted, Xte, yte)
    with Timer() as t_refit:
        actual = np.column_stack([_refit_losses(model, Xtr, ytr, Xte, yte, j) - loss0
                                  for j in removed])
    rows = []
    truths = {"refit": actual}
    ceiling = np.nan
    if not deterministic:
        seeds = np.arange(1, n_seeds + 1)
        full = np.array([_refit_losses(model, Xtr, ytr, Xte, yte, None, s) for s in seeds])
        loo = np.array([[_refit_losses(model, Xtr, ytr, Xte, yte, j, s) for j in removed]
                        for s in seeds])  # (S, R, n_test)
        effect = loo - full[:, None, :]
        truths["expected"] = effect.mean(axis=0).T
        half = n_seeds // 2
        ceiling = _corr(effect[:half].mean(0), effect[half:].mean(0))[0]
    for approximation in ("exact", "fixed_structure"):
        inf = InfluenceFunctions(model, approximation=approximation).fit(Xtr, ytr)
        with Timer() as t:
            T = inf.transform(Xte, yte)
        pred = T[:, removed]
        changed = np.nan
        if approximation == "exact":
            removal = inf._removal
            ens = removal.ensemble
            flags = np.zeros((len(removed), ens.n_trees), dtype=bool)
            sel = np.zeros((1, ens.n_outputs, 1), dtype=np.intp)
            removal.deltas(ens.X[:1], sel, np.asarray(removed), changed=flags)
            saw = ens.weights[:, removed].T > 0
            changed = flags[saw].mean()
        for truth, values in truths.items():
            pr, sr = _corr(pred, values)
            rows.append(dict(task=task, model=name, deterministic=deterministic,
                             method=approximation, truth=truth, pearson=pr, spearman=sr,
                             changed=changed, seconds=t.seconds,
                             refit_seconds=t_refit.seconds / len(removed),
                             max_abs_error=float(np.abs(pred - values).max()),
                             ceiling=ceiling if truth == "expected" else np.nan))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--removed", type=int, default=30, help="rows removed per model")
    parser.add_argument("--trees", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=8, help="seeds of the expected effect")
    parser.add_argument("--only", default="", help="run models whose name contains this")
    parser.add_argument("--json", default="", help="also write the rows to this file")
    args = parser.parse_args(argv)
    removed = np.random.RandomState(1).choice(300, args.removed, replace=False)
    rows = []
    print(f"{'model':40s} {'method':16s} {'truth':9s} {'pearson':>8s} {'spearman':>8s} "
          f"{'ceiling':>8s} {'changed':>8s} {'max|err|':>9s} {'s/transform':>11s} "
          f"{'s/refit':>8s}")
    for task, name, deterministic, model in _models(args.trees):
        if args.only and args.only not in name:
            continue
        t0 = time.perf_counter()
        for r in run_model(task, name, deterministic, model, removed, args.seeds):
            rows.append(r)
            print(f"{task + ' ' + name:40s} {r['method']:16s} {r['truth']:9s} "
                  f"{r['pearson']:8.4f} {r['spearman']:8.4f} {r['ceiling']:8.3f} "
                  f"{r['changed']:8.3f} {r['max_abs_error']:9.2e} {r['seconds']:11.2f} "
                  f"{r['refit_seconds']:8.3f}", flush=True)
        print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=float)


if __name__ == "__main__":
    main()
