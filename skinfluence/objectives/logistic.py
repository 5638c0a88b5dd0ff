"""LogisticRegression: binary and multinomial log-loss with an L2 or no penalty.

scikit-learn minimises ``C * sum_i s_i * loss_i + 1/2 ||coef||^2`` (the lbfgs /
newton solvers rescale it by ``1 / (C * sum(s))``, which does not move the
minimiser), where ``s_i`` is ``sample_weight`` times ``class_weight``.  The
intercept is unpenalised except with ``solver="liblinear"``, which appends a
constant feature ``intercept_scaling`` and penalises its weight, i.e. adds
``1/2 (intercept / intercept_scaling)^2``.
"""

import numpy as np


from .._numba import njit
from ..utils._rows import row_max, row_sum
from . import register_objective
from ._kernels import binary_logloss_change, multinomial_logloss_change
from ._linear import LinearObjective, check_features


@njit(cache=True, nogil=True)
def _binary_derivatives(z, y, loss, r, s):
    for i in range(z.shape[0]):
        zi = z[i]
        if zi > 0.0:
            e = np.exp(-zi)
            p = 1.0 / (1.0 + e)
            loss[i] = zi + np.log1p(e) - y[i] * zi
        else:
            e = np.exp(zi)
            p = e / (1.0 + e)
            loss[i] = np.log1p(e) - y[i] * zi
        r[i] = p - y[i]
        s[i] = p * (1.0 - p)


@njit(cache=True, nogil=True)
def _multinomial_derivatives(Z, y, loss, R, S):
    n, K = Z.shape
    p = np.empty(K)
    for i in range(n):
        zmax = Z[i, 0]
        for k in range(1, K):
            zmax = max(zmax, Z[i, k])
        tot = 0.0
        for k in range(K):
            p[k] = np.exp(Z[i, k] - zmax)
            tot += p[k]
        for k in range(K):
            p[k] /= tot
        loss[i] = zmax + np.log(tot) - Z[i, y[i]]
        for k in range(K):
            R[i, k] = p[k]
            for l in range(K):
                S[i, k, l] = -p[k] * p[l]
            S[i, k, k] += p[k]
        R[i, y[i]] -= 1.0


def effective_penalty(estimator):
    """The penalty scikit-learn actually applied: ``"l2"``, ``None``, or something unsupported."""
    penalty = getattr(estimator, "penalty", "l2")
    l1_ratio = getattr(estimator, "l1_ratio", None)
    C = estimator.C
    if penalty == "deprecated":  # scikit-learn >= 1.8 spells the penalty with l1_ratio / C
        if l1_ratio is None or l1_ratio == 0:
            penalty = "l2"
        elif l1_ratio == 1:
            penalty = "l1"
        else:
            penalty = "elasticnet"
        if C == np.inf:
            penalty = None
    if penalty == "elasticnet" and l1_ratio == 0:
        penalty = "l2"
    if penalty == "l2" and C == np.inf:
        penalty = None
    return penalty


def class_weight_factors(estimator, y_encoded, sample_weight):
    """Per-sample ``class_weight`` factors exactly as the estimator computed them."""
    from sklearn.utils.class_weight import compute_class_weight

    cw = getattr(estimator, "class_weight", None)
    if cw is None:
        return np.ones(y_encoded.shape[0])
    classes = np.asarray(estimator.classes_)
    y_labels = classes[y_encoded]
    try:
        weights = compute_class_weight(cw, classes=classes, y=y_labels, sample_weight=sample_weight)
    except TypeError:  # scikit-learn < 1.7 has no sample_weight argument here
        weights = compute_class_weight(cw, classes=classes, y=y_labels)
    return np.asarray(weights, dtype=np.float64)[y_encoded]


def balanced_reweighting(objective, raw_sample_weight, gradients=True):
    """:meth:`Objective.removal_reweighting` for ``class_weight="balanced"``.

    Balanced weights are ``f_c = S / (n_classes * S_c)`` with ``S`` the total and
    ``S_c`` the class total of the sample weights.  Removing point ``j`` of class
    ``c_j`` changes every ``f_c`` by the factor ``1 + delta_c(j)``; at the fitted
    parameters the gradient of the objective without ``j`` is then
    ``sum_c delta_c(j) G_c - (1 + delta_{c_j}(j)) w_j g_j`` where
    ``G_c = sum_{i in c} w_i g_i``.
    """
    y = objective.y
    n_classes = len(objective.classes)
    s = raw_sample_weight
    S = s.sum()
    S_c = np.bincount(y, weights=s, minlength=n_classes)
    f = S / (n_classes * S_c)
    S_new = S - s  # (n,)
    Sc_new = np.broadcast_to(S_c, (y.shape[0], n_classes)).copy()
    Sc_new[np.arange(y.shape[0]), y] -= s
    with np.errstate(divide="ignore", invalid="ignore"):
        f_new = S_new[:, None] / (n_classes * Sc_new)
    delta = f_new / f[None, :] - 1.0
    delta[~np.isfinite(delta)] = 0.0  # removing the last point of a class: undefined refit
    factor = 1.0 + delta[np.arange(y.shape[0]), y]
    if not gradients:
        return factor, None, delta
    G = objective.sample_gradients(objective.X, y) * objective.weights[:, None]
    B = np.column_stack([G[y == c].sum(axis=0) for c in range(n_classes)])
    return factor, B, delta


def encode_classes(classes, y):
    """Map labels to indices into ``classes``; a clear error for labels the model never saw."""
    y = np.asarray(y)
    if y.ndim != 1:
        y = y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1:
        raise ValueError(f"y must be 1-dimensional, got shape {y.shape}.")
    classes = np.asarray(classes)
    idx = np.searchsorted(classes, y)
    idx = np.clip(idx, 0, len(classes) - 1)
    bad = classes[idx] != y
    if np.any(bad):
        unseen = np.unique(y[bad])[:5]
        raise ValueError(
            f"y contains labels not seen during fit: {unseen.tolist()}; "
            f"the estimator knows {classes.tolist()}."
        )
    return idx.astype(np.intp)


class LogisticObjective(LinearObjective):
    """Objective of a fitted :class:`~sklearn.linear_model.LogisticRegression`."""

    # L1 / elastic net: objectives/sparse.py (SparseLogisticObjective)
    penalties = ("l2", None)

    def __init__(self, estimator, X, y, sample_weight, feature_map):
        classes = np.asarray(estimator.classes_)
        self.classes = classes
        self.binary = len(classes) == 2
        self.shift_invariant = not self.binary
        X = check_features(X, estimator.coef_.shape[1])
        y_enc = encode_classes(classes, y)
        if y_enc.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {y_enc.shape[0]}.")
        raw_sw = np.ones(X.shape[0]) if sample_weight is None else sample_weight
        self._raw_sample_weight = raw_sw
        sw = raw_sw * class_weight_factors(estimator, y_enc, raw_sw)
        penalty = effective_penalty(estimator)
        if penalty not in self.penalties:
            raise ValueError(
                f"LogisticRegression with a {penalty!r} penalty is not supported: its objective "
                "is not twice differentiable. Use an L2 penalty (l1_ratio=0) or none (C=np.inf)."
            )
        if not self.binary and getattr(estimator, "multi_class", "auto") == "ovr":
            raise ValueError(
                "LogisticRegression(multi_class='ovr') is not supported; use the multinomial "
                "(default) formulation."
            )
        C = float(estimator.C)
        if penalty is None:
            weights, coef_penalty = sw, 0.0
        else:
            weights, coef_penalty = C * sw, 1.0
        fit_intercept = bool(estimator.fit_intercept)
        intercept_penalty = 0.0
        if fit_intercept and estimator.solver == "liblinear":
            intercept_penalty = coef_penalty / float(estimator.intercept_scaling) ** 2
        coef = np.asarray(estimator.coef_, dtype=np.float64)
        intercept = np.asarray(estimator.intercept_, dtype=np.float64) if fit_intercept else None
        super().__init__(
            estimator,
            X,
            y_enc,
            weights,
            coef,
            intercept,
            coef_penalty,
            intercept_penalty,
            feature_map,
        )

    def encode_target(self, y):
        return encode_classes(self.classes, y)

    def check_minimum(self):
        """Refuse an unpenalised model whose training data are linearly separable.

        If the fitted parameters classify every (positively weighted) training
        point correctly, scaling them by ``t -> inf`` drives every loss to zero: the
        unpenalised log-loss has no minimiser and the fitted coefficients only
        reflect where the solver stopped.  This certificate is exact (no false
        alarms) and costs one pass over the training outputs.
        """
        if self.coef_penalty != 0.0 or self.n_train == 0:
            return
        Z = self.outputs(self.X)
        rows = np.flatnonzero(self.weights > 0)
        Z, y = Z[rows], self.y[rows]
        if self.binary:
            margins = np.where(y == 1, Z[:, 0], -Z[:, 0])
        else:
            true = Z[np.arange(rows.size), y]
            Z = Z.copy()
            Z[np.arange(rows.size), y] = -np.inf
            margins = true - Z.max(axis=1)
        if rows.size and np.all(margins > 0):
            raise ValueError(
                "LogisticRegression without a penalty (C=np.inf) has no optimum on these "
                f"training data: they are linearly separable (the fitted model classifies all "
                f"{rows.size} of them correctly, so scaling its coefficients up lowers the loss "
                "without bound). Its coefficients are wherever the solver stopped and a refit "
                "without a point is not defined, so neither are influences or leave-one-out "
                "values. Use a finite C (an L2 penalty)."
            )

    def removal_weights(self, j):
        w = super().removal_weights(j)
        if getattr(self.estimator, "class_weight", None) == "balanced":
            factor, _, delta = balanced_reweighting(self, self._raw_sample_weight, gradients=False)
            w *= 1.0 + delta[j][self.y]
        return w

    def removal_reweighting(self):
        if getattr(self.estimator, "class_weight", None) != "balanced":
            return None
        return balanced_reweighting(self, self._raw_sample_weight)

    def loss_derivatives(self, Z, y):
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        n = Z.shape[0]
        loss = np.empty(n)
        if self.binary:
            r = np.empty(n)
            s = np.empty(n)
            _binary_derivatives(Z[:, 0], y.astype(np.float64), loss, r, s)
            return r[:, None], s[:, None, None]
        K = Z.shape[1]
        R = np.empty((n, K))
        S = np.empty((n, K, K))
        _multinomial_derivatives(Z, np.asarray(y, dtype=np.intp), loss, R, S)
        return R, S

    def loss_from_outputs(self, Z, y):
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        n = Z.shape[0]
        loss = np.empty(n)
        if self.binary:
            _binary_derivatives(Z[:, 0], y.astype(np.float64), loss, np.empty(n), np.empty(n))
        else:
            K = Z.shape[1]
            _multinomial_derivatives(
                Z, np.asarray(y, dtype=np.intp), loss, np.empty((n, K)), np.empty((n, K, K))
            )
        return loss

    def loss_change(self, Z0, y, D, out=None):
        Z0 = np.ascontiguousarray(Z0, dtype=np.float64)
        if out is None:
            out = np.empty((Z0.shape[0], D.shape[2]))
        if self.binary:
            return binary_logloss_change(
                Z0[:, 0], y.astype(np.float64), np.ascontiguousarray(D[:, 0, :]), out
            )
        return multinomial_logloss_change(
            Z0, np.asarray(y, dtype=np.intp), np.ascontiguousarray(D), out
        )

    def prediction_from_outputs(self, Z):
        if self.binary:
            return Z[:, 0].copy()
        return Z.max(axis=1)

    def proba_from_outputs(self, Z):
        """Class probabilities as ``predict_proba`` computes them from raw outputs."""
        if self.binary:
            p = 1.0 / (1.0 + np.exp(-Z[:, 0]))
            return np.column_stack([1.0 - p, p])
        Zs = Z - row_max(Z)
        E = np.exp(Zs)
        return E / row_sum(E)


@register_objective("LogisticRegression")
def _build(estimator, Xf, y, sample_weight, feature_map):
    if effective_penalty(estimator) in ("l1", "elasticnet"):
        from .sparse import SparseLogisticObjective

        return SparseLogisticObjective(estimator, Xf, y, sample_weight, feature_map)
    return LogisticObjective(estimator, Xf, y, sample_weight, feature_map)
