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
* ``random``: standard normal attributions.

Columns: LDS (mean over test points of the Spearman correlation over subsets of
predicted and retrained loss), LOO Pearson / Spearman over all (test, left-out) pairs,
seconds of the method (fit + attributions), and the retrains the task cost.

Run::

    python benchmarks/faithfulness.py            # 100 half-subsets, 100 LOO refits per task
    python benchmarks/faithfulness.py --quick    # 20 and 30
    python benchmarks/faithfulness.py --only mlp
"""

import argparse
import tempfile
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier, SGDRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceFunctions, TracIn
from skinfluence.metrics import Retrainer
from skinfluence.metrics._attribution import attributions, sample_loss
from skinfluence.metrics._faithfulness import lds_from, loo_from


WARM_START = "auto"


def _split(X, y, n_train, n_test, seed=0):
    X = StandardScaler().fit_transform(X)
    idx = np.random.default_rng(seed).permutation(len(y))
    tr, te = idx[:n_train], idx[n_train:n_train + n_test]
    return X[tr], y[tr], X[te], y[te]


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
    }


def _methods(model, tracin_model, X, y):
    train_loss = -sample_loss(model.fit(X, y), X, y)
    rng = np.random.default_rng(0)
    return {
        "IF newton": InfluenceFunctions(model),
        "IF first order": InfluenceFunctions(model, approximation="first_order"),
        "IF group": InfluenceFunctions(model),
        "TracIn": TracIn(tracin_model, n_epochs=20, random_state=0),
        "training loss": lambda Xq, yq: np.tile(train_loss, (len(yq), 1)),
        "random": lambda Xq, yq: rng.standard_normal((len(yq), len(y))),
    }


def run_task(name, spec, n_subsets, n_loo, memory):
    model, tracin_model, X, y, Xt, yt = spec
    retrainer = Retrainer(model, X, y, memory=memory, warm_start=WARM_START)
    rows = []
    for label, method in _methods(model, tracin_model, X, y).items():
        t0 = time.perf_counter()
        A, fitted = attributions(method, X, y, Xt, yt, len(y))
        seconds = time.perf_counter() - t0
        datamodel = "group" if label == "IF group" else "additive"
        lds = lds_from(retrainer, A, fitted, Xt, Xt, yt, fraction=0.5, n_subsets=n_subsets,
                       datamodel=datamodel, random_state=0)
        loo = loo_from(retrainer, A, Xt, yt, method="pearson", n_samples=n_loo,
                       random_state=0)
        rows.append((name, label, lds.score, loo.pearson, loo.spearman, seconds))
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
    print(f"{n_subsets} random half-subsets and {n_loo} leave-one-out refits per task; "
          "every row of a task is scored against the same retrains.\n")
    header = f"{'task':34s} {'method':15s} {'LDS':>7s} {'LOO r':>7s} {'LOO rho':>8s} {'s':>7s}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as memory:
        for name, spec in tasks().items():
            if args.only not in name:
                continue
            t0 = time.perf_counter()
            rows, n_fits = run_task(name, spec, n_subsets, n_loo, memory)
            for task, label, lds, r, rho, s in rows:
                print(f"{task:34s} {label:15s} {lds:7.3f} {r:7.3f} {rho:8.3f} {s:7.2f}")
            print(f"{'':34s} ({n_fits} retrains, {time.perf_counter() - t0:.0f} s in all)")


if __name__ == "__main__":
    main()
