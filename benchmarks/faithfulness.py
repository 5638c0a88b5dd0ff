"""Faithfulness of every method against the same retrained models: one table.

For each task (a model on a dataset bundled with scikit-learn), the training subsets
(``--subsets`` random halves) and the leave-one-out refits (``--loo`` training points)
are drawn once with a fixed seed and retrained once through
:class:`skinfluence.metrics.Retrainer` with a shared on-disk cache; every row of the
task is scored against those same retrains:

* ``IF newton`` (InfluenceFunctions default), ``IF first order``;
* ``IF group``: the LDS of the Newton step for each removed half as a whole
  (``datamodel="group"``; exact curvature for GLMs, Gauss-Newton for the MLP); its LOO
  columns are the single-removal Newton step again;
* ``TracIn``: TracIn of the SGD-trained counterpart of the model (SGDClassifier /
  SGDRegressor with the same penalty, or the same MLP trained with SGD checkpoints);
  scored against the retrains of the task's model, like every other row;
* ``training loss``: every test point ranks training points by minus their training
  loss (the same vector for each test point);
* ``random``: standard normal attributions;
* trees (no TracIn, no group step, no dattri: no gradients): ``IF exact regrowth``
  (a ``bootstrap=False`` forest, each tree regrown without the point) and the boosting
  approximations ``IF boostin`` and ``IF leaf_refit`` of HistGradientBoosting; their
  retrains are fresh fits with the same ``random_state`` (an ensemble's warm start
  would keep its old trees);
* MLP only, ``IF newton / IF group, damping by LDS``: the damping chosen from
  ``DAMPINGS`` by the LDS on *other* data than the table's: 30 other half-subsets
  (``random_state=1``) and 60 validation points outside the training and test sets;
* MLP only, ``retrain cold, seed 0/1`` (the ceiling): the losses of the MLP retrained
  from scratch on each subset (``random_state`` 0, or 1) as the prediction of the
  table's (warm-started) retrains; how far one retraining predicts another;
* ``dattri ...`` (logistic and MLP tasks, when dattri 0.3.0 and torch are installed,
  ``pip install .[bench]``; otherwise printed as skipped): dattri's explicit and CG
  influence functions, LiSSA, TRAK (one model; the MLP also an ensemble of 5 seeds)
  and TracIn (on the library's TracIn checkpoints and learning rates), on torch copies
  of the same fitted models (``benchmarks/_dattri_peers.py``).

Columns: LDS (mean over test points of the Spearman correlation over subsets of
predicted and retrained loss), LOO Pearson / Spearman over all (test, left-out) pairs,
seconds of the method (fit + attributions), and the retrains the task cost.

Run::

    python benchmarks/faithfulness.py            # 100 half-subsets, 100 LOO refits per task
    python benchmarks/faithfulness.py --quick    # 20 and 30
    python benchmarks/faithfulness.py --only mlp
    python benchmarks/faithfulness.py --only forest    # or boosting
"""

import argparse
import tempfile
import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier, SGDRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceFunctions, TracIn
from skinfluence.metrics import Retrainer
from skinfluence.metrics._attribution import attributions, sample_loss
from skinfluence.metrics._faithfulness import _Loss, lds_from, loo_from


WARM_START = "auto"


DAMPINGS = (0.0, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
DATTRI_METHODS = ("explicit", "cg", "lissa", "trak", "tracin")


def _split(X, y, n_train, n_test, seed=0):
    X = StandardScaler().fit_transform(X)
    idx = np.random.default_rng(seed).permutation(len(y))
    tr, te = idx[:n_train], idx[n_train:n_train + n_test]
    return X[tr], y[tr], X[te], y[te]


def _validation(X, y, n_train, n_test, seed=0):
    """The next ``n_test`` points after the training and test points of :func:`_split`."""
    X = StandardScaler().fit_transform(X)
    va = np.random.default_rng(seed).permutation(len(y))[n_train + n_test:
                                                       n_train + 2 * n_test]
    return X[va], y[va]


def tasks():
    """name -> (model, TracIn counterpart, X, y, X_test, y_test)."""
    Xb, yb = load_breast_cancer(return_X_y=True)
    Xd, yd = load_digits(return_X_y=True)
    Xr, yr = load_diabetes(return_X_y=True)
    n = 400
    lr = LogisticRegression(C=1.0, tol=1e-8, max_iter=10_000)
    sgd_lr = SGDClassifier(loss="log_loss", alpha=1.0 / n, learning_rate="invscaling",
                           eta0=0.05, random_state=0)
    mlp = MLPClassifier((16,), activation="tanh", alpha=1e-2, solver="lbfgs", tol=1e-10,
                        max_iter=5000, random_state=0)
    return {
        "logistic binary (breast_cancer)": (lr, sgd_lr, *_split(Xb, yb, n, 60)),
        "logistic multinomial (digits)": (lr, sgd_lr, *_split(Xd, yd, 500, 60)),
        "ridge (diabetes)": (Ridge(alpha=1.0), SGDRegressor(alpha=1.0 / 300, random_state=0),
                             *_split(Xr, yr, 300, 60)),
        "mlp (breast_cancer)": (mlp, MLPClassifier((16,), activation="tanh", alpha=1e-2,
                                                   solver="sgd", learning_rate_init=1e-2,
                                                   random_state=0),
                                *_split(Xb, yb, n, 60)),
        # trees: no SGD counterpart for TracIn, no dattri (no gradients)
        "random forest (breast_cancer)": (
            RandomForestClassifier(n_estimators=20, bootstrap=False, min_samples_leaf=2,
                                   random_state=0), None, *_split(Xb, yb, n, 60)),
        "boosting (breast_cancer)": (
            HistGradientBoostingClassifier(max_iter=30, early_stopping=False,
                                           random_state=0), None, *_split(Xb, yb, n, 60)),
    }


# the MLP's damping is chosen on these validation points (disjoint from train and test)
VALIDATION = {"mlp (breast_cancer)": (*load_breast_cancer(return_X_y=True), 400, 60)}


def _methods(model, tracin_model, X, y):
    train_loss = -sample_loss(model.fit(X, y), X, y)
    rng = np.random.default_rng(0)
    baselines = {
        "training loss": lambda Xq, yq: np.tile(train_loss, (len(yq), 1)),
        "random": lambda Xq, yq: rng.standard_normal((len(yq), len(y))),
    }
    if isinstance(model, RandomForestClassifier):  # each tree regrown without the point
        return {"IF exact regrowth": InfluenceFunctions(model), **baselines}
    if isinstance(model, HistGradientBoostingClassifier):
        return {f"IF {a}": InfluenceFunctions(model, approximation=a)
                for a in ("boostin", "leaf_refit")} | baselines
    return {
        "IF newton": InfluenceFunctions(model),
        "IF first order": InfluenceFunctions(model, approximation="first_order"),
        "IF group": InfluenceFunctions(model),
        "TracIn": TracIn(tracin_model, n_epochs=20, random_state=0),
        "training loss": lambda Xq, yq: np.tile(train_loss, (len(yq), 1)),
        "random": lambda Xq, yq: rng.standard_normal((len(yq), len(y))),
    }


class _Retrained:
    """A "method" whose prediction is the loss of the model actually retrained (from
    scratch, with ``random_state=seed``) on each subset: the ceiling of the LDS."""

    def __init__(self, model, X, y, memory, seed):
        self.retrainer = Retrainer(clone(model).set_params(random_state=seed), X, y,
                                   memory=memory, warm_start=False)

    def predict_removal_effect(self, removed, X_test, y_test):
        loss = _Loss(X_test, y_test)
        return self.retrainer.map([removed], loss)[0] - loss(self.retrainer.full_model())

    def loo_matrix(self, idx, n_train, X_test, y_test):
        loss = _Loss(X_test, y_test)
        A = np.zeros((len(y_test), n_train))
        A[:, idx] = (np.asarray(self.retrainer.map([[j] for j in idx], loss))
                     - loss(self.retrainer.full_model())).T
        return A


def _damping_by_lds(model, X, y, Xv, yv, memory, datamodel):
    """The damping of ``DAMPINGS`` with the best LDS on validation points and 30 other
    half-subsets (``random_state=1``) than the table's."""
    retrainer = Retrainer(model, X, y, memory=memory, warm_start=WARM_START)
    scores = []
    for damping in DAMPINGS:
        inf = InfluenceFunctions(model, damping=damping)
        A, fitted = attributions(inf, X, y, Xv, yv, len(y))
        scores.append(lds_from(retrainer, A, fitted, Xv, Xv, yv, fraction=0.5, n_subsets=30,
                               datamodel=datamodel, random_state=1).score)
    return DAMPINGS[int(np.nanargmax(scores))]


def _dattri_rows(name, model, X, y, Xt, yt, tracin):
    """label -> (attributions, seconds) of dattri's methods; None when dattri is missing."""
    try:
        import _dattri_peers as peers
    except ImportError:
        return None
    fitted = clone(model).fit(X, y)
    out = {}
    for method in DATTRI_METHODS:
        t0 = time.perf_counter()
        # a softmax with unpenalised intercepts has a flat direction: a dattri user adds
        # a small regularization to invert the Hessian (TRAK's kernel is full rank)
        reg = 1e-6 if ("multinomial" in name and method in ("explicit", "cg")) else 0.0
        A = peers.attributions(method, fitted, X, y, Xt, yt, tracin=tracin,
                               regularization=reg)
        out[f"dattri {method}"] = (A, time.perf_counter() - t0)
    if "mlp" in name:
        t0 = time.perf_counter()
        ensemble = [clone(model).set_params(random_state=s).fit(X, y) for s in range(5)]
        A = peers.attributions("trak", fitted, X, y, Xt, yt, trak_models=ensemble)
        out["dattri trak x5"] = (A, time.perf_counter() - t0)
    return out


def run_task(name, spec, n_subsets, n_loo, memory, validation=None):
    model, tracin_model, X, y, Xt, yt = spec
    retrainer = Retrainer(model, X, y, memory=memory, warm_start=WARM_START)
    rows = []

    def score(label, A, fitted, seconds, datamodel="additive"):
        lds = lds_from(retrainer, A, fitted, Xt, Xt, yt, fraction=0.5, n_subsets=n_subsets,
                       datamodel=datamodel, random_state=0)
        loo = loo_from(retrainer, A, Xt, yt, method="pearson", n_samples=n_loo,
                       random_state=0)
        rows.append((name, label, lds.score, loo.pearson, loo.spearman, seconds))
        return loo.train_indices

    methods = _methods(model, tracin_model, X, y)
    if validation is not None:  # the MLP: damping chosen by LDS on other data
        t0 = time.perf_counter()
        for label, datamodel in (("IF newton", "additive"), ("IF group", "group")):
            damping = _damping_by_lds(model, X, y, *validation, memory, datamodel)
            methods[f"{label}, damping {damping:g} by LDS"] = InfluenceFunctions(
                model, damping=damping)
        tuning = time.perf_counter() - t0
    tracin = None
    for label, method in methods.items():
        t0 = time.perf_counter()
        A, fitted = attributions(method, X, y, Xt, yt, len(y))
        seconds = time.perf_counter() - t0 + (tuning / 2 if "by LDS" in label else 0.0)
        if label == "TracIn":
            tracin = fitted
        datamodel = "group" if label.startswith("IF group") else "additive"
        idx = score(label, A, fitted, seconds, datamodel)
    if validation is not None:
        for seed in (0, 1):
            t0 = time.perf_counter()
            ceiling = _Retrained(model, X, y, memory, seed)
            A = ceiling.loo_matrix(idx, len(y), Xt, yt)
            score(f"retrain cold, seed {seed}", A, ceiling, time.perf_counter() - t0,
                  "group")
    if name.startswith(("logistic", "mlp")):
        dattri = _dattri_rows(name, model, X, y, Xt, yt, tracin)
        if dattri is None:
            rows.append((name, "dattri: skipped (pip install .[bench])", *[np.nan] * 4))
        else:
            for label, (A, seconds) in dattri.items():
                score(label, A, None, seconds)
    return rows, retrainer.n_fits_


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="run the tasks whose name has this")
    parser.add_argument("--cold", action="store_true", help="retrain from scratch")
    args = parser.parse_args()
    global WARM_START
    WARM_START = not args.cold and "auto"
    n_subsets, n_loo = (20, 30) if args.quick else (100, 100)
    warnings.simplefilter("ignore", ConvergenceWarning)
    # the MLP's group step falls back to the first-order step, with this warning, for
    # subsets whose removal leaves the Hessian indefinite
    warnings.filterwarnings("ignore", "Removing the group", RuntimeWarning)
    print(f"{n_subsets} random half-subsets and {n_loo} leave-one-out refits per task; "
          "every row of a task is scored against the same retrains.\n")
    header = f"{'task':34s} {'method':32s} {'LDS':>7s} {'LOO r':>7s} {'LOO rho':>8s} {'s':>7s}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as memory:
        for name, spec in tasks().items():
            if args.only not in name:
                continue
            t0 = time.perf_counter()
            validation = _validation(*VALIDATION[name]) if name in VALIDATION else None
            rows, n_fits = run_task(name, spec, n_subsets, n_loo, memory, validation)
            for task, label, lds, r, rho, s in rows:
                print(f"{task:34s} {label:32s} {lds:7.3f} {r:7.3f} {rho:8.3f} {s:7.2f}",
                      flush=True)
            print(f"{'':34s} ({n_fits} retrains, {time.perf_counter() - t0:.0f} s in all)")


if __name__ == "__main__":
    main()
