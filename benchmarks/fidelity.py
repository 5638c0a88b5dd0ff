"""Fidelity of influence functions: predicted vs actual leave-one-out retraining.

For each supported linear-model family, on a dataset bundled with scikit-learn
(no download), ``InfluenceFunctions(est).fit(X, y).transform(X_test, y_test)``
predicts ``loss_i(refit without j) - loss_i(fit)`` for every test point ``i`` and
training point ``j``; the actual values come from refitting without each ``j``.

* The loss is the family's training loss through the reconstructed objective:
  ``obj.sample_losses(obj.features(X_test), obj.encode_target(y_test), theta)``,
  with ``theta`` the refit's flat parameters ``[coef_.ravel(), intercept_.ravel()]``.
* Actual refits use the estimator itself with a tight tolerance (1e-12) and its
  most exact solver, from scratch, for the full fit and every leave-one-out fit.
* Cross-validated estimators (RidgeCV, LogisticRegressionCV) hold their selected
  ``alpha_`` / ``C_`` fixed: the actual refits are ``Ridge(alpha=alpha_)`` /
  ``LogisticRegression(C=C_)`` without ``j``, not a new cross-validation.
* Kernel models (KernelRidge, GaussianProcessRegressor with ``optimizer=None``) are
  refit by scikit-learn; their loss is ``(y - prediction)^2`` and their influence is
  exact in closed form (every column counts as an exact refit; the first-order
  column repeats it).
* Lasso / ElasticNet (and LassoCV / ElasticNetCV at their selected ``alpha_`` /
  ``l1_ratio_``, held fixed) are refit by scikit-learn's coordinate descent at
  ``tol=1e-14``.  Their removals are exact on the fitted active set, and refit where
  they change it: "active-set changes" is the fraction of training points whose
  removal changes it, "exact frac" counts every removal.  The multi-task models and
  L1 / elastic-net LogisticRegression (saga / liblinear at ``tol=1e-12``) take Newton
  steps on the active set (not exact): "exact frac" counts their refits.
* SGD refits are stochastic, and scikit-learn's HuberRegressor stops on the
  objective's relative decrease (gradients of ~1e-3), so for SGDClassifier /
  SGDRegressor / HuberRegressor the "actual"
  leave-one-out is the exact minimiser of the reconstructed objective
  (``objective_.objective_value``, with the weights of the refit without ``j``),
  found by ``scipy.optimize.minimize`` (trust-exact, gtol 1e-11); influence is
  computed at the exact minimiser of the full objective (the fitted SGD model's
  ``coef_`` / ``intercept_`` replaced by it, then frozen).  This measures the
  approximation, not SGD's noise.

A second table measures ``hyperparameters="reselect"``: the refit without ``j`` chooses
the cross-validated regularisation again (RidgeCV / RidgeClassifierCV in closed form;
LogisticRegressionCV and K-fold RidgeCV by refits), or re-optimises a Gaussian
process's kernel hyperparameters.  The actual values are scikit-learn's own refits of
the estimator on the data without row ``j`` (for the Gaussian process: from its initial
kernel, as ``fit`` does); columns: Pearson / Spearman of the reselect prediction and
Pearson of the default (``"fixed"``) against them, the fraction of removals whose
selection changed (for the GP: a log-hyperparameter moved by more than 1e-4), seconds.

Columns: Pearson / Spearman of all ``n_test x n_train`` entries for
``approximation="newton"`` (the default, which refits the most influential
points exactly, ``refine="auto"``), the fraction of training points whose removal
was computed exactly (refits, or the closed form of kernel models), Pearson for
newton with ``refine=0`` and for ``"first_order"``; seconds for the influence
(fit + transform, default settings) vs seconds for the actual refits.

Run::

    python benchmarks/fidelity.py           # ~2-5 min on 2 cores
    python benchmarks/fidelity.py --quick   # fewer training points
    python benchmarks/fidelity.py --threads 0   # all BLAS threads (default: 1)
    python benchmarks/fidelity.py --only reselect   # the hyperparameters="reselect" table
"""

import argparse
import importlib
import time
import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.stats import pearsonr, spearmanr
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.frozen import FrozenEstimator
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import (
    ElasticNet,
    ElasticNetCV,
    GammaRegressor,
    RidgeClassifierCV,
    HuberRegressor,
    Lasso,
    LassoCV,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    MultiTaskElasticNet,
    MultiTaskLasso,
    PoissonRegressor,
    Ridge,
    RidgeClassifier,
    RidgeCV,
    SGDClassifier,
    SGDRegressor,
    TweedieRegressor,
)
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from skinfluence import InfluenceFunctions
from skinfluence.objectives import make_objective

try:  # run as a script from the repository root or from benchmarks/
    from benchmarks._common import print_table
except ImportError:  # pragma: no cover
    from _common import print_table


# ------------------------------------------------------------------ data
def _split(X, y, n_train, n_test, seed):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(X.shape[0])[: n_train + n_test]
    X, y = X[idx], y[idx]
    scaler = StandardScaler().fit(X[:n_train])
    X = scaler.transform(X)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def data_breast(n_train, n_test, n_features=None):
    X, y = load_breast_cancer(return_X_y=True)
    if n_features is not None:
        X = X[:, :n_features]
    return _split(X, y, n_train, n_test, 0)


def data_wine(n_train, n_test):
    X, y = load_wine(return_X_y=True)
    return _split(X, y, min(n_train, 178 - n_test), n_test, 0)


def data_iris(n_train, n_test):
    X, y = load_iris(return_X_y=True)
    return _split(X, y, min(n_train, 150 - n_test), n_test, 0)


def data_digits(n_train, n_test, classes=(0, 1, 2, 3, 4)):
    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, classes)
    X, y = X[keep], y[keep]
    X = X[:, X.std(axis=0) > 0]  # constant pixels carry no information
    return _split(X, y, n_train, n_test, 0)


def data_diabetes(n_train, n_test, positive=False):
    X, y = load_diabetes(return_X_y=True)
    if positive:
        y = y / 100.0  # a positive target on a unit scale for the log-link GLMs
    else:
        y = (y - y.mean()) / y.std()
    return _split(X, y, n_train, n_test, 0)


def data_diabetes_multi(n_train, n_test):
    """Diabetes with three standardised targets: the disease score and two made from the
    features (for the multi-task models)."""
    X, y = load_diabetes(return_X_y=True)
    rng = np.random.default_rng(2)
    Xs = (X - X.mean(0)) / X.std(0)
    Y = np.column_stack([y, 3 * Xs[:, 0] + rng.normal(size=len(y)), Xs[:, 2] - Xs[:, 3]])
    Y = (Y - Y.mean(0)) / Y.std(0)
    return _split(X, Y, n_train, n_test, 0)


# ------------------------------------------------------------ families
def _families(n_train, n_test):
    """(name, module, make estimator, data, exact_via_scipy)."""
    tight = dict(tol=1e-12)
    cd_tight = dict(tol=1e-14, max_iter=100_000)  # coordinate descent: dual gap to rounding
    return [
        ("LogisticRegression binary (C=1)", "logistic",
         lambda: LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=500, **tight),
         lambda: data_breast(n_train, n_test), False),
        ("LogisticRegression multinomial (wine)", "logistic",
         lambda: LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=500, **tight),
         lambda: data_wine(n_train, n_test), False),
        ("LogisticRegression multinomial (digits 0-4)", "logistic",
         lambda: LogisticRegression(C=0.1, solver="newton-cholesky", max_iter=500, **tight),
         lambda: data_digits(n_train, n_test), False),
        ("LogisticRegression unpenalised (5 feats)", "logistic",
         lambda: LogisticRegression(C=np.inf, solver="newton-cholesky", max_iter=500, **tight),
         lambda: data_breast(n_train, n_test, n_features=5), False),
        ("Ridge (alpha=1)", "linear",
         lambda: Ridge(alpha=1.0, solver="cholesky"),
         lambda: data_diabetes(n_train, n_test), False),
        ("LinearRegression", "linear",
         lambda: LinearRegression(),
         lambda: data_diabetes(n_train, n_test), False),
        ("RidgeClassifier (iris, 3 classes)", "linear",
         lambda: RidgeClassifier(alpha=1.0, solver="cholesky"),
         lambda: data_iris(n_train, n_test), False),
        ("SGDClassifier log_loss", "sgd",
         lambda: SGDClassifier(loss="log_loss", alpha=1e-2, max_iter=200, tol=None,
                               random_state=0),
         lambda: data_breast(n_train, n_test), True),
        ("SGDRegressor squared_error", "sgd",
         lambda: SGDRegressor(alpha=1e-2, max_iter=200, tol=None, random_state=0),
         lambda: data_diabetes(n_train, n_test), True),
        ("LinearSVC squared_hinge", "svm",
         lambda: LinearSVC(C=0.1, loss="squared_hinge", dual=False, max_iter=100000, **tight),
         lambda: data_breast(n_train, n_test), False),
        ("PoissonRegressor", "glm",
         lambda: PoissonRegressor(alpha=1e-2, solver="newton-cholesky", max_iter=1000, **tight),
         lambda: data_diabetes(n_train, n_test, positive=True), False),
        ("GammaRegressor", "glm",
         lambda: GammaRegressor(alpha=1e-2, solver="newton-cholesky", max_iter=1000, **tight),
         lambda: data_diabetes(n_train, n_test, positive=True), False),
        ("TweedieRegressor power=1.5", "glm",
         lambda: TweedieRegressor(power=1.5, alpha=1e-2, solver="newton-cholesky",
                                  max_iter=1000, **tight),
         lambda: data_diabetes(n_train, n_test, positive=True), False),
        # cross-validated: influence at the selected alpha_ / C_, refits of that fixed model
        ("RidgeCV (GCV, alpha_ fixed)", "cv",
         lambda: RidgeCV(alphas=np.logspace(-2, 3, 20)),
         lambda: data_diabetes(n_train, n_test), False),
        ("LogisticRegressionCV (C_ fixed)", "cv",
         lambda: LogisticRegressionCV(Cs=np.logspace(-2, 2, 9), l1_ratios=(0.0,),
                                      scoring="neg_log_loss", use_legacy_attributes=False,
                                      solver="newton-cholesky", max_iter=500, **tight),
         lambda: data_breast(n_train, n_test), False),
        # kernel models: closed-form leave-one-out (exact)
        ("KernelRidge rbf", "kernel",
         lambda: KernelRidge(alpha=1.0, kernel="rbf", gamma=0.1),
         lambda: data_diabetes(n_train, n_test), False),
        ("GaussianProcessRegressor (kernel_ fixed)", "kernel",
         lambda: GaussianProcessRegressor(ConstantKernel(1.0) * RBF(3.0) + WhiteKernel(0.5),
                                          optimizer=None, normalize_y=True),
         lambda: data_diabetes(n_train, n_test), False),
        # scikit-learn's Huber fit stops on the objective's decrease (~1e-3 gradients)
        ("HuberRegressor (with scale)", "huber",
         lambda: HuberRegressor(epsilon=1.35, alpha=1e-3, max_iter=10000, **tight),
         lambda: data_diabetes(n_train, n_test), True),
        # L1 / elastic net: exact on the active set, refits where a removal changes it
        ("Lasso (alpha=0.02)", "sparse",
         lambda: Lasso(alpha=0.02, **cd_tight),
         lambda: data_diabetes(n_train, n_test), False),
        ("ElasticNet (alpha=0.05, l1_ratio=0.5)", "sparse",
         lambda: ElasticNet(alpha=0.05, l1_ratio=0.5, **cd_tight),
         lambda: data_diabetes(n_train, n_test), False),
        ("LassoCV (alpha_ fixed)", "sparse",
         lambda: LassoCV(cv=5, **cd_tight),
         lambda: data_diabetes(n_train, n_test), False),
        ("ElasticNetCV (alpha_, l1_ratio_ fixed)", "sparse",
         lambda: ElasticNetCV(cv=5, l1_ratio=[0.2, 0.5, 0.8], **cd_tight),
         lambda: data_diabetes(n_train, n_test), False),
        ("MultiTaskLasso (3 targets)", "sparse",
         lambda: MultiTaskLasso(alpha=0.05, **cd_tight),
         lambda: data_diabetes_multi(n_train, n_test), False),
        ("MultiTaskElasticNet (3 targets)", "sparse",
         lambda: MultiTaskElasticNet(alpha=0.08, l1_ratio=0.6, **cd_tight),
         lambda: data_diabetes_multi(n_train, n_test), False),
        ("LogisticRegression L1 (saga, C=0.3)", "sparse",
         lambda: LogisticRegression(l1_ratio=1.0, C=0.3, solver="saga", max_iter=200_000,
                                    **tight),
         lambda: data_breast(n_train, n_test, n_features=10), False),
        ("LogisticRegression L1 (liblinear, C=0.3)", "sparse",
         lambda: LogisticRegression(l1_ratio=1.0, C=0.3, solver="liblinear",
                                    max_iter=200_000, **tight),
         lambda: data_breast(n_train, n_test, n_features=10), False),
        # SGD with an L1 / elastic-net penalty: its own (stochastic) fit; the ground truth
        # is the removal effect at the optimum of its objective (ElasticNet's refits)
        ("SGDRegressor elastic net (vs ElasticNet refits)", "sgd",
         lambda: SGDRegressor(penalty="elasticnet", l1_ratio=0.5, alpha=0.05, max_iter=200,
                              tol=None, random_state=0),
         lambda: data_diabetes(n_train, n_test), False),
        ("LogisticRegression elastic net multinomial (wine)", "sparse",
         lambda: LogisticRegression(l1_ratio=0.7, C=0.1, solver="saga", max_iter=200_000,
                                    **tight),
         lambda: data_wine(n_train, n_test), False),
    ]


# ------------------------------------------------------------- helpers
def flat_params(est, obj):
    """``[coef_.ravel(), intercept_.ravel()]`` (and Huber's ``scale_``) in the objective's
    layout."""
    parts = [np.asarray(est.coef_, dtype=np.float64).ravel()]
    if obj.fit_intercept:
        parts.append(np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64)).ravel())
    if hasattr(est, "scale_"):
        parts.append([est.scale_])
    return np.concatenate(parts)


def refit_losses(obj, est, Xt, Xtf, ytf):
    """Test losses of a refit model, through the reconstructed objective's loss."""
    if obj.closed_form_removal:  # kernel models: a refit has other dual coefficients
        Z = np.asarray(est.predict(Xt), dtype=np.float64).reshape(len(ytf), -1)
        return obj.loss_from_outputs(Z, ytf)
    return obj.sample_losses(Xtf, ytf, flat_params(est, obj))


def fixed_model(est, make_est):
    """What a refit without a point is: for a cross-validated estimator, the equivalent
    model at its selected regularisation (held fixed); else the estimator itself."""
    if isinstance(est, RidgeCV):
        return lambda: Ridge(alpha=est.alpha_)
    if isinstance(est, (LassoCV, ElasticNetCV)):
        l1_ratio = getattr(est, "l1_ratio_", 1.0)
        return lambda: ElasticNet(alpha=est.alpha_, l1_ratio=l1_ratio, tol=1e-14,
                                  max_iter=100_000)
    if isinstance(est, SGDRegressor) and est.penalty in ("l1", "elasticnet"):
        l1_ratio = 1.0 if est.penalty == "l1" else est.l1_ratio
        return lambda: ElasticNet(alpha=est.alpha, l1_ratio=l1_ratio, tol=1e-14,
                                  max_iter=100_000)
    if isinstance(est, LogisticRegressionCV):
        from skinfluence.objectives.cv import equivalent_logistic_regression

        eq = equivalent_logistic_regression(est)
        return lambda: clone(eq)
    return make_est


def refit_weights(obj, j):
    """Weights of the reconstructed objective refit without training point ``j``."""
    for name in ("removal_weights", "weights_without"):
        method = getattr(obj, name, None)
        if method is not None:
            w = method(j)
            if w is not None:
                return w
    raise RuntimeError(f"{type(obj).__name__} cannot state the weights of a refit without j")


def exact_minimiser(obj, weights, theta0):
    """Minimise the reconstructed objective with ``weights`` (trust-region Newton)."""
    saved = obj.weights
    obj.weights = weights
    try:
        res = minimize(
            obj.objective_value,
            theta0,
            jac=obj.objective_gradient,
            hess=lambda t: obj.hessian(t),
            method="trust-exact",
            options={"gtol": 1e-11, "maxiter": 500},
        )
        return res.x
    finally:
        obj.weights = saved


def correlations(pred, actual):
    pred, actual = pred.ravel(), actual.ravel()
    return float(pearsonr(pred, actual)[0]), float(spearmanr(pred, actual)[0])


def run_family(name, module, make_est, make_data, via_scipy):
    row = {"family": name}
    try:
        importlib.import_module(f"skinfluence.objectives.{module}")
    except ImportError as exc:
        row["note"] = f"skipped: skinfluence.objectives.{module} not importable ({exc})"
        return row
    X, y, Xt, yt = make_data()
    n = X.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of the tight refits
        est = make_est().fit(X, y)
        obj = make_objective(est, X, y)
        if via_scipy:
            # the exact minimiser of the reconstructed SGD objective, frozen
            theta_full = exact_minimiser(obj, obj.weights, obj.theta.copy())
            est = obj.with_params(theta_full)
            obj = make_objective(est, X, y)
            model = FrozenEstimator(est)
        else:
            theta_full = flat_params(est, obj) if not obj.closed_form_removal else None
            model = make_est()
    make_refit = fixed_model(est, make_est)
    Xtf, ytf = obj.features(Xt), obj.encode_target(yt)
    base = refit_losses(obj, est, Xt, Xtf, ytf)
    sgd_l1 = getattr(obj, "reports_stationarity", False)
    if sgd_l1:  # removal effects at the optimum: from the equivalent model's own fit
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = refit_losses(obj, make_refit().fit(X, y), Xt, Xtf, ytf)
    row.update(n_train=n, n_test=Xt.shape[0], n_params=obj.n_params)

    t0 = time.perf_counter()
    inf = InfluenceFunctions(model).fit(X, y)
    pred_newton = inf.transform(Xt, yt)
    row["t_influence"] = time.perf_counter() - t0
    row["refined"] = inf.refined_indices_.size if hasattr(inf, "refined_indices_") else 0
    exact = getattr(inf, "approximation_", None) == "exact"
    row["exact_fraction"] = 1.0 if exact else row["refined"] / n
    if hasattr(inf, "n_active_set_changes_"):
        # L1 least squares: every step is exact on the fitted active set, the changes are
        # refit; the others take Newton steps
        if getattr(inf.objective_, "exact_active_set_steps", False):
            row["exact_fraction"] = 1.0
        row["as_changes"] = inf.n_active_set_changes_ / n
    kwargs = {"refine": 0} if "refine" in inf.get_params() else {}
    pred_plain = InfluenceFunctions(model, **kwargs).fit(X, y).transform(Xt, yt)
    pred_first = InfluenceFunctions(model, approximation="first_order").fit(X, y).transform(Xt, yt)

    actual = np.empty((Xt.shape[0], n))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in range(n):
            if via_scipy:
                theta_j = exact_minimiser(obj, refit_weights(obj, j), theta_full)
                losses = obj.sample_losses(Xtf, ytf, theta_j)
            else:
                keep = np.arange(n) != j
                losses = refit_losses(obj, make_refit().fit(X[keep], y[keep]), Xt, Xtf, ytf)
            actual[:, j] = losses - base
    row["t_refits"] = time.perf_counter() - t0

    row["pearson_newton"], row["spearman_newton"] = correlations(pred_newton, actual)
    row["pearson_newton_norefine"] = correlations(pred_plain, actual)[0]
    row["pearson_first_order"] = correlations(pred_first, actual)[0]
    row["max_abs_actual"] = float(np.abs(actual).max())
    row["max_err_newton"] = float(np.abs(pred_newton - actual).max())
    row["note"] = "exact minimisers via scipy" if via_scipy else ""
    if sgd_l1:
        from skinfluence.objectives import stationarity

        row["note"] = f"SGD's stationarity {stationarity(obj):.2%}"
    return row


# ------------------------------------------------ hyperparameters="reselect"
def _reselect_families(n_train, n_test):
    """(name, make estimator, data): the estimator is refit as it is (its own selection)."""
    fine = np.logspace(-2, 3, 100)  # a fine grid: a removal often moves the choice
    return [
        ("RidgeCV GCV reselect (closed form)", lambda: RidgeCV(alphas=fine),
         lambda: data_diabetes(n_train, n_test)),
        ("RidgeCV GCV reselect (closed form, synthetic 2000 x 20)",
         lambda: RidgeCV(alphas=fine[::2]), lambda: data_synthetic(2000, n_test)),
        ("RidgeClassifierCV GCV reselect (wine)", lambda: RidgeClassifierCV(alphas=fine),
         lambda: data_wine(n_train, n_test)),
        ("RidgeCV 5-fold reselect (refits)", lambda: RidgeCV(alphas=fine[::5], cv=5),
         lambda: data_diabetes(n_train, n_test)),
        ("LogisticRegressionCV reselect (refits)",
         lambda: LogisticRegressionCV(Cs=np.logspace(-2, 2, 9), l1_ratios=(0.0,),
                                      scoring="neg_log_loss", use_legacy_attributes=False,
                                      solver="newton-cholesky", max_iter=500, tol=1e-12),
         lambda: data_breast(n_train, n_test)),
        ("GaussianProcessRegressor reselect (kernel re-optimised)",
         lambda: GaussianProcessRegressor(ConstantKernel(1.0) * RBF(3.0) + WhiteKernel(0.5),
                                          normalize_y=True),
         lambda: data_diabetes(n_train, n_test)),
    ]


def data_synthetic(n_train, n_test):
    """Gaussian features, a weak linear signal in noise (an interior ridge penalty)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_train + n_test, 20))
    y = X[:, :5] @ np.array([1.0, -0.5, 0.3, 0.2, 0.1]) + 3.0 * rng.normal(size=len(X))
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def run_reselect(name, make_est, make_data):
    row = {"family": name}
    X, y, Xt, yt = make_data()
    n = X.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make_est().fit(X, y)
        obj = make_objective(est, X, y)
        Xtf, ytf = obj.features(Xt), obj.encode_target(yt)
        gp = obj.closed_form_removal

        def losses(model):
            if gp:
                Z = np.asarray(model.predict(Xt), dtype=np.float64).reshape(len(ytf), -1)
                return obj.loss_from_outputs(Z, ytf)
            return obj.sample_losses(Xtf, ytf, flat_params(model, obj))

        base = losses(est)
        # first: also loads the compiled kernels, which the timed run below then finds
        fixed = InfluenceFunctions(make_est()).fit(X, y).transform(Xt, yt)
        t0 = time.perf_counter()
        inf = InfluenceFunctions(make_est(), hyperparameters="reselect").fit(X, y)
        pred = inf.transform(Xt, yt)
        row["t_influence"] = time.perf_counter() - t0
        actual = np.empty((Xt.shape[0], n))
        t0 = time.perf_counter()
        for j in range(n):
            keep = np.arange(n) != j
            actual[:, j] = losses(make_est().fit(X[keep], y[keep])) - base
        row["t_refits"] = time.perf_counter() - t0
    row.update(n_train=n, n_test=Xt.shape[0], method=inf.solver_info_["method"])
    row["pearson"], row["spearman"] = correlations(pred, actual)
    row["pearson_fixed"] = correlations(fixed, actual)[0]
    row["changed"] = float(inf.hyperparameters_changed_.mean())
    row["max_err"] = float(np.abs(pred - actual).max() / np.abs(actual).max())
    return row


def _run_reselect(args, n_train, n_test):
    rows = []
    for fam in _reselect_families(n_train, n_test):
        if args.only and args.only.lower() not in fam[0].lower():
            continue
        print(f"{fam[0]} ...", flush=True)
        try:
            rows.append(run_reselect(*fam))
        except Exception as exc:  # one broken family must not hide the others
            rows.append({"family": fam[0], "note": f"ERROR {type(exc).__name__}: {exc}"[:120]})
    if rows:
        print_table(
            rows,
            ["family", ("n_train", "n_train"), ("method", "method"), ("pearson", "P reselect"),
             ("spearman", "S reselect"), ("pearson_fixed", "P fixed"),
             ("changed", "changed frac"), ("max_err", "max err / max|actual|"),
             ("t_influence", "s influence"), ("t_refits", "s refits"), "note"],
            title='hyperparameters="reselect" vs scikit-learn refits of the estimator itself',
            spec=".4g",
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 training / 30 test points")
    parser.add_argument("--only", default="", help="substring filter on family names")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="BLAS threads (default 1: these problems are tiny, and threaded BLAS on a "
             "loaded machine is slower by an order of magnitude); 0 for all",
    )
    args = parser.parse_args(argv)
    if args.threads:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=args.threads):
            return _run(args)
    return _run(args)


def _run(args):
    n_train, n_test = (100, 30) if args.quick else (150, 40)
    _run_reselect(args, n_train, n_test)
    rows = []
    t_start = time.perf_counter()
    for fam in _families(n_train, n_test):
        if args.only and args.only.lower() not in fam[0].lower():
            continue
        print(f"{fam[0]} ...", flush=True)
        try:
            rows.append(run_family(*fam))
        except Exception as exc:  # one broken family must not hide the others
            rows.append({"family": fam[0], "note": f"ERROR {type(exc).__name__}: {exc}"[:120]})
    if not rows:
        return
    print_table(
        rows,
        [
            "family", ("n_train", "n_train"), ("n_test", "n_test"), ("n_params", "p"),
            ("pearson_newton", "P newton"), ("spearman_newton", "S newton"),
            ("refined", "refined"), ("exact_fraction", "exact frac"),
            ("as_changes", "active-set changes"),
            ("pearson_newton_norefine", "P newton(refine=0)"),
            ("pearson_first_order", "P 1st order"), ("max_abs_actual", "max|actual|"),
            ("max_err_newton", "max err newton"), ("t_influence", "s influence"),
            ("t_refits", "s refits"), "note",
        ],
        title="Predicted vs actual leave-one-out change of the test loss (all test x train "
              "entries)",
        spec=".4g",
    )
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
