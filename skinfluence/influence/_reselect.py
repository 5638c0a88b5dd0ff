"""Removals that choose the hyperparameters again (``hyperparameters="reselect"``).

A cross-validated estimator (``RidgeCV``, ``LogisticRegressionCV``, ``LassoCV``, any
``*CV``) chooses its regularisation from the data, and a ``GaussianProcessRegressor``
fits its kernel hyperparameters by maximising the marginal likelihood.  Refit without
point ``j``, both may choose differently.  By default influence holds the choice fixed
(the removal of ``j`` from the model as fitted); here the refit without ``j`` chooses
again, exactly:

* ``RidgeCV`` / ``RidgeClassifierCV`` with the efficient leave-one-out selection
  (``cv=None``, ``scoring=None``): in closed form, by
  :func:`skinfluence.linalg._ridge.ridge_cv_deletions` (one SVD, ``O(n_alphas n^2 r)``
  with ``r = min(n, p)``, where ``n`` refits cost ``O(n^2 p r + n_alphas n^2 r)``);
* every other ``*CV`` estimator: a clone of the final step refit on the features of
  the other ``n - 1`` rows (scikit-learn's own ``fit``: its folds, its grid), one per
  training point, on the explainer's block runner;
* ``GaussianProcessRegressor``: a clone refit without ``j`` whose optimiser starts from
  the fitted ``kernel_`` without restarts, i.e. the local optimum of the marginal
  likelihood that the fitted one moves to when ``j`` leaves.  The likelihood can be
  multimodal; restarts from random points could land in another mode, which is a
  different model rather than the effect of ``j``.

Linear models get exact parameter changes (:class:`ExactRemoval`), so everything built
on them (``parameter_changes``, self-influence, ``transform``) is exact.  A Gaussian
process whose kernel moves has no parameter vector shared by the refits:
:class:`KernelRefitRemoval` evaluates each refit's predictions instead.
"""

import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.utils import _safe_indexing

from ..objectives import make_objective
from ..objectives import split_pipeline
from ._base import Removal
from ._blocks import InfluenceBlocks

# refits above this many training points are refused (each is a full fit of the model)
MAX_REFITS = 10_000
# a warning gives the estimated time of the refits when it exceeds this many seconds
WARN_SECONDS = 60.0
# a Gaussian process's refit "changed" its hyperparameters when a log-hyperparameter
# moved by more than this (the optimiser's own tolerance is about 1e-5)
GP_CHANGE_TOL = 1e-4


def reselect_kind(final):
    """How ``final`` (the fitted final step) is re-selected: "ridge_gcv", "refit" or "gp";
    a ValueError naming the supported models otherwise."""
    name = type(final).__name__
    if name == "GaussianProcessRegressor":
        if final.optimizer is None or final.kernel_.n_dims == 0:
            raise ValueError(
                "hyperparameters='reselect': this GaussianProcessRegressor has no kernel "
                "hyperparameters to re-optimise (optimizer=None or all bounds 'fixed'); "
                "use hyperparameters='fixed' (exact in closed form).")
        return "gp"
    if not name.endswith("CV"):
        raise ValueError(
            f"hyperparameters='reselect' applies to estimators that choose hyperparameters "
            f"from the data (cross-validated *CV estimators such as RidgeCV or "
            f"LogisticRegressionCV, and GaussianProcessRegressor); {name}'s are given. Use "
            "hyperparameters='fixed'.")
    if (name in ("RidgeCV", "RidgeClassifierCV") and final.cv is None
            and final.scoring is None
            and not isinstance(getattr(final, "class_weight", None), str)):
        return "ridge_gcv"
    return "refit"


def selected_values(est):
    """The hyperparameters a fitted estimator chose from the data, flat (NaN for None)."""
    if type(est).__name__ == "GaussianProcessRegressor":
        return np.asarray(est.kernel_.theta, dtype=np.float64)
    parts = []
    for name in ("alpha_", "C_", "l1_ratio_"):
        value = getattr(est, name, None)
        if value is not None:
            flat = np.ravel(np.asarray(value, dtype=object))
            parts.append(np.array([np.nan if v is None else float(v) for v in flat]))
    return np.concatenate(parts) if parts else np.zeros(0)


class ExactRemoval(Removal):
    """Exact parameter changes of all training points, given (columns of ``directions``)."""

    approximation = "newton"  # the loss is re-evaluated at the (exact) new outputs

    def __init__(self, directions, verbose=0):
        super().__init__(verbose=verbose)
        self.given = directions

    def prepare(self, objective, solver=None):
        self.objective, self.solver = objective, solver
        self.train_outputs = objective.outputs(objective.X)
        self.coef = np.zeros((objective.n_train, objective.n_outputs))
        self.reweighting = self.leverages = None
        self.cacheable = True
        self.refined = {}
        self._directions = self.given
        self._self_side = None
        return self


class KernelRefitRemoval(Removal):
    """Exact effects of Gaussian processes refit without each point, kernel re-optimised.

    Refit ``j`` predicts ``k_j(x, X) a_j + m_j`` (its kernel ``k_j``, dual coefficients
    ``a_j`` in the units of ``y`` with ``a_j[j] = 0``, mean ``m_j``).  Queries are the
    features the model sees (:meth:`query_features`), not the fitted kernel's rows.
    """

    approximation = "newton"

    def __init__(self, kernels, duals, means, X_train, verbose=0):
        super().__init__(verbose=verbose)
        self.kernels, self.duals, self.means, self.X_train = kernels, duals, means, X_train

    def prepare(self, objective, solver=None):
        self.objective, self.solver = objective, solver
        self.train_outputs = objective.outputs(objective.X)
        self.coef = self.reweighting = self.leverages = None
        self.cacheable = False
        self.refined = {}
        self._directions = None
        self._self_side = None
        return self

    def ensure_cached(self):
        return False

    def query_features(self, X):
        """The queries as the Gaussian process sees them (a pipeline's steps applied)."""
        return self.objective._feature_map(X)

    def directions(self, cols):
        raise TypeError(
            "With hyperparameters='reselect' the refits of a Gaussian process have kernels "
            "of their own: there is no common parameter vector to change. Use transform, "
            "explain or loo_decision_function, or hyperparameters='fixed'.")

    def blocks(self, explainer):
        return KernelRefitBlocks(self, explainer)

    def predict(self, j, Xq):
        """Outputs ``(m, T)`` of the refit without ``j`` at the features ``Xq``."""
        return self.kernels[j](Xq, self.X_train) @ self.duals[j] + self.means[j]

    def output_changes(self, Xq, Z0, cols):
        """``(m, T, len(cols))``: refit outputs minus the fitted ones at ``Xq``."""
        idx = np.arange(self.objective.n_train)[cols]
        D = np.empty(Z0.shape + (idx.size,))
        for a, j in enumerate(idx):
            D[:, :, a] = self.predict(j, Xq) - Z0
        return D

    def self_outputs(self):
        n = self.objective.n_train
        dz = np.empty_like(self.train_outputs)
        for j in range(n):
            dz[j] = self.predict(j, self.X_train[j:j + 1])[0] - self.train_outputs[j]
        return dz


class KernelRefitBlocks(InfluenceBlocks):
    """Influence blocks of a :class:`KernelRefitRemoval`: each refit's outputs evaluated."""

    def block(self, Xf, Z0, y_enc, cols, out=None):
        obj = self.objective
        D = self.removal.output_changes(Xf, Z0, cols)
        if y_enc is None:
            vals = obj.prediction_change(Z0, D)
            if out is not None:
                out[...] = vals
                vals = out
            return vals
        return obj.loss_change(Z0, y_enc, D, out=out)


# ----------------------------------------------------------------- the refits
def _check_size(n, what):
    if n > MAX_REFITS:
        raise ValueError(
            f"hyperparameters='reselect' refits {what} once per training point: {n} refits "
            f"are refused above {MAX_REFITS}. Use hyperparameters='fixed' (the chosen "
            "hyperparameters held fixed), or explain a subsample.")


def _refits(explainer, final, kind, Xfeat, y, sw):
    """Clones of ``final`` fitted without each training point, in order (a list)."""
    n = Xfeat.shape[0]
    _check_size(n, type(final).__name__)
    template = clone(final)
    if kind == "gp":  # the local optimum the fitted one moves to (module docstring)
        template.set_params(kernel=final.kernel_, n_restarts_optimizer=0)

    def one(j):
        keep = np.flatnonzero(np.arange(n) != j)
        est = clone(template)
        kwargs = {} if sw is None else {"sample_weight": sw[keep]}
        return est.fit(_safe_indexing(Xfeat, keep), _safe_indexing(y, keep), **kwargs)

    start = time.perf_counter()
    first = one(0)
    seconds = time.perf_counter() - start
    from ..utils._parallel import effective_n_jobs

    estimate = seconds * (n - 1) / max(effective_n_jobs(explainer.n_jobs), 1)
    if estimate > WARN_SECONDS:
        warnings.warn(
            f"hyperparameters='reselect' refits {type(final).__name__} {n} times; the first "
            f"refit took {seconds:.2g} s, so about {estimate:.0f} s in all with "
            f"n_jobs={explainer.n_jobs}. hyperparameters='fixed' needs no refit.",
            UserWarning, stacklevel=4)
    out = [first]
    chunks = [np.arange(a, min(a + 8, n)) for a in range(1, n, 8)]
    for fits in explainer._run_blocks(lambda js: [one(int(j)) for j in js], chunks,
                                      "refits"):
        out.extend(fits)
    return out


def fit_reselect(explainer, fitted, X, y, sample_weight):
    """Set up ``explainer`` (an :class:`InfluenceFunctions` with ``objective_`` built)
    for removals that re-select the hyperparameters; returns it."""
    obj = explainer.objective_
    final = split_pipeline(fitted)[1]
    kind = reselect_kind(final)
    n = obj.n_train
    fitted_values = selected_values(final)
    if kind == "ridge_gcv":
        removal, values = _ridge_gcv(final, obj)
    else:
        Xfeat = obj._feature_map(X)
        y = np.asarray(y)
        sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        refits = _refits(explainer, final, kind, Xfeat, y, sw)
        values = np.vstack([selected_values(est) for est in refits])
        if kind == "gp":
            removal = _gp_removal(refits, Xfeat, n, explainer.verbose)
        else:
            keep = [np.flatnonzero(np.arange(n) != j) for j in range(n)]
            thetas = np.column_stack([
                make_objective(est, _safe_indexing(Xfeat, k), _safe_indexing(y, k),
                               None if sw is None else sw[k]).theta
                for est, k in zip(refits, keep)])
            if thetas.shape[0] != obj.n_params:
                raise ValueError(
                    "hyperparameters='reselect': a refit without one training point has "
                    f"{thetas.shape[0]} parameters, the fitted model {obj.n_params} (a class "
                    "that only that point has?). Use hyperparameters='fixed'.")
            removal = ExactRemoval(thetas - obj.theta[:, None], verbose=explainer.verbose)
    removal.prepare(obj)
    if kind == "gp":
        changed = np.abs(values - fitted_values).max(axis=1) > GP_CHANGE_TOL
    else:
        changed = np.any(~np.isclose(values, fitted_values, rtol=1e-12, atol=0.0,
                                     equal_nan=True), axis=1)
    explainer.selected_hyperparameters_ = values
    explainer.hyperparameters_changed_ = changed
    explainer._removal = removal
    explainer.solver_ = None
    explainer.solver_info_ = {"solver": None, "hyperparameters": "reselect",
                              "method": "closed_form" if kind == "ridge_gcv" else "refit"}
    explainer.approximation_ = "exact"
    explainer.refined_indices_ = np.array([], dtype=np.intp)
    explainer.n_iter_ = 1
    removal.self_side()
    return explainer


def _ridge_gcv(final, obj):
    """:class:`ExactRemoval` of a ``RidgeCV`` / ``RidgeClassifierCV`` with its
    leave-one-out selection (closed form) and the alphas each removal selects."""
    from ..linalg._ridge import ridge_cv_deletions

    X = obj.X.toarray() if hasattr(obj.X, "toarray") else np.asarray(obj.X)
    if type(final).__name__ == "RidgeClassifierCV":
        Y = final._label_binarizer.transform(np.asarray(final.classes_)[obj.y])
        per_target = False
    else:
        Y = np.asarray(obj.y, dtype=np.float64).reshape(obj.n_train, -1)
        per_target = bool(final.alpha_per_target)
    alphas = np.atleast_1d(np.asarray(final.alphas, dtype=np.float64))
    res = ridge_cv_deletions(X, Y, alphas, sample_weight=obj.weights,
                             fit_intercept=final.fit_intercept, alpha_per_target=per_target)
    if not np.allclose(alphas[res.full], np.ravel(final.alpha_), rtol=1e-12, atol=0):
        warnings.warn(
            f"{type(final).__name__} selected alpha_={final.alpha_}, but its leave-one-out "
            f"criterion on the data passed to fit selects {alphas[res.full]}: was it fitted "
            "on exactly these X, y and sample_weight? The refits are of this data.",
            UserWarning, stacklevel=4)
    parts = [res.coef.reshape(obj.n_train, -1)]
    if final.fit_intercept:
        parts.append(res.intercept)
    thetas = np.hstack(parts).T  # (p, n) in the objective's layout: coef (T, d), intercept
    values = alphas[res.selected if per_target else res.selected[:, :1]]
    return ExactRemoval(thetas - obj.theta[:, None]), values


def _gp_removal(refits, Xfeat, n, verbose):
    kernels, duals, means = [], [], []
    for j, est in enumerate(refits):
        std = np.asarray(est._y_train_std, dtype=np.float64).reshape(-1)
        a = np.asarray(est.alpha_, dtype=np.float64).reshape(n - 1, -1) * std
        dual = np.zeros((n, a.shape[1]))
        dual[np.arange(n) != j] = a
        kernels.append(est.kernel_)
        duals.append(dual)
        means.append(np.asarray(est._y_train_mean, dtype=np.float64).reshape(-1))
    return KernelRefitRemoval(kernels, duals, means, np.asarray(Xfeat), verbose=verbose)
