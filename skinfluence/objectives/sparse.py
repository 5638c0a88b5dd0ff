"""L1 and elastic-net models: Lasso, ElasticNet, LassoCV, ElasticNetCV, the multi-task
Lasso / ElasticNet and L1 / elastic-net LogisticRegression (classes at the end).

scikit-learn's coordinate descent minimises (``sklearn.linear_model.ElasticNet``)

    F = 1/(2 S) sum_i s_i (y_i - coef @ x_i - b)^2
        + alpha l1_ratio ||coef||_1 + alpha (1 - l1_ratio)/2 ||coef||^2,

with ``S = sum_i s_i`` (it rescales ``sample_weight`` to sum to ``n_samples``
and divides by ``n_samples``).  Deleting row ``j`` and refitting with
``sample_weight[j] = 0`` are the same refit: both divide by ``S - s_j``.  Here

    J = 2 S F = sum_i s_i (y_i - z_i)^2 + S (2 l1 ||coef||_1 + l2 ||coef||^2)

(``l1 = alpha l1_ratio``, ``l2 = alpha (1 - l1_ratio)``), in the loss units of
``Ridge`` and ``LinearRegression``, ``(y - z)^2``; ``SGDRegressor`` with an L1
penalty uses ``J / 2``, whose loss is its own ``1/2 (y - z)^2``
(:attr:`ElasticNetObjective.loss_unit`).  The penalty is held at the full data's
``S``: a refit without ``j`` is ``J`` with the other weights scaled by
``S / (S - s_j)`` (:meth:`removal_weights`, :meth:`removal_reweighting`).

``F`` is not differentiable where a coefficient is zero.  At the fit the
*active set* ``A`` (the non-zero coefficients, and the intercept) has fixed
signs ``s``; on it the L1 term is the linear term ``2 S l1 s @ coef`` and ``J``
is a quadratic.  The objective therefore describes the smooth part restricted
to ``A``: :meth:`hessian` and :meth:`hvp` are zero on the inactive
coefficients, which are :meth:`null_space` directions (the solvers'
pseudo-inverse keeps them at zero).  While a removal keeps ``A`` and the signs
(the KKT conditions of the refit hold), its refit is affine in the data and the
step of :class:`~skinfluence.influence._active_set.ActiveSetRemoval` is exact.
:meth:`active_set_changes` checks those conditions after the step;
:meth:`refit_without` computes the removals that fail them by a warm-started
scikit-learn refit.

``LassoCV`` / ``ElasticNetCV`` are the fixed models with the selected
``alpha_`` and ``l1_ratio_``, held fixed (as ``objectives/cv.py`` does for
``RidgeCV``): a refit without ``j`` does not re-run the cross-validation.
"""

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from . import register_objective
from .linear import (
    ElementwiseObjective,
    RemovalReweighting,
    _check_xy,
    check_regression_target,
    linear_parameters,
    unsupported,
)
from .logistic import LogisticObjective, effective_penalty

# the estimators of this module (see is_sparse_model)
SPARSE_MODELS = ("Lasso", "ElasticNet", "LassoCV", "ElasticNetCV", "MultiTaskLasso",
                 "MultiTaskElasticNet")

# A removal violates the KKT conditions of its refit when an inactive coefficient's
# correlation exceeds its bound S l1 by more than this share of it (beyond what the fit
# itself exceeded it by; see active_set_changes), or an active coefficient changes sign.
KKT_RTOL = 1e-9
# coordinate descent tolerance and iteration cap of the exact refits (refit_without)
REFIT_TOL = 1e-12
REFIT_MAX_ITER = 100_000


class _ActiveSetSmoothPart:
    """The smooth part of an L1 / elastic-net objective restricted to the fitted active
    set: zero rows and columns of the Hessian (and entries of HVPs) on the inactive
    coefficients ``self._inactive``, which a removal that keeps the set leaves at zero.
    Mixed in before the family's own objective."""

    def _restrict(self, V):
        if self._inactive.size:
            V = np.array(V, dtype=np.float64)
            V[self._inactive] = 0.0
        return V

    def hessian(self, theta=None, *, weights=None):
        """Hessian of the smooth part restricted to the active set (zero rows and columns
        on the inactive coefficients)."""
        H = super().hessian(theta, weights=weights)
        H[self._inactive, :] = 0.0
        H[:, self._inactive] = 0.0
        return H

    def hvp(self, V, theta=None, *, weights=None):
        return self._restrict(super().hvp(self._restrict(V), theta, weights=weights))

    def hessian_diagonal(self, theta=None):
        return self._restrict(super().hessian_diagonal(theta))


class ElasticNetObjective(_ActiveSetSmoothPart, ElementwiseObjective):
    """Objective of a fitted Lasso / ElasticNet (module docstring).

    Parameters
    ----------
    estimator : fitted estimator
    X, y, sample_weight, feature_map
        Training data (``sample_weight`` as passed to ``fit``).
    coef, intercept : ndarray
        The fitted ``(K, d)`` coefficients and ``(K,)`` intercepts (None without one).
    alpha, l1_ratio : float
        The penalty the coefficients were fitted with (``alpha_``, ``l1_ratio_`` of the CV
        models).
    refit_model : estimator
        An unfitted ``ElasticNet`` / ``Lasso`` with this penalty, for :meth:`refit_without`.

    Attributes
    ----------
    active : ndarray of int
        Flat indices (into ``theta``) of the non-zero coefficients and the intercept.
    signs : ndarray of shape (n_params,)
        ``sign(theta)`` on the coefficients, 0 on the intercept.
    l1, l2 : float
        ``alpha * l1_ratio`` and ``alpha * (1 - l1_ratio)``.
    loss_unit : float
        The objective is ``loss_unit * (sum_i s_i (y_i - z_i)^2 / 2 + S (l1 ||coef||_1 +
        l2/2 ||coef||^2))``: 2 for the per-sample loss ``(y - z)^2`` (class default), 1
        for ``1/2 (y - z)^2``.  Parameter changes do not depend on it; losses, and so
        influence values, scale with it.
    """

    # one target: every removal on the active set is exact (influence/_active_set.py)
    exact_active_set_steps = True
    loss_unit = 2.0
    _LOSSES = {2.0: "least_squares", 1.0: "squared_error"}

    def __init__(self, estimator, X, y, sample_weight, coef, intercept, alpha, l1_ratio,
                 feature_map, refit_model):
        n = X.shape[0]
        sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
        self.total_weight = float(sw.sum())
        self.l1 = float(alpha) * float(l1_ratio)
        self.l2 = float(alpha) * (1.0 - float(l1_ratio))
        self.refit_model = refit_model
        with np.errstate(divide="ignore"):
            ratio = self.total_weight / (self.total_weight - sw)
        c = self.loss_unit
        super().__init__(
            estimator, X, y, sw, coef, intercept, c * self.total_weight * self.l2, 0.0,
            feature_map, loss=self._LOSSES[c],
            reweighting=RemovalReweighting(ratio[:, None], sample_parts=np.zeros(n)),
        )
        K, d = self.n_outputs, self.n_features
        self.signs = np.zeros(self.n_params)
        self.signs[: K * d] = np.sign(self.theta[: K * d])
        self.active = np.flatnonzero(self.signs != 0)
        if self.fit_intercept:
            self.active = np.concatenate([self.active, np.arange(K * d, self.n_params)])
        self._inactive = np.setdiff1d(np.arange(K * d), self.active)
        # the element of the L1 subdifferential at the fit on the inactive coefficients:
        # minus their data gradient, clipped to the bound (exactly stationary under KKT)
        data_grad = self.weights @ self.sample_gradients(self.X, self.y)
        bound = c * self.total_weight * self.l1
        self._subgradient = np.clip(-data_grad[self._inactive], -bound, bound)
        # how far the fit itself exceeds the bound (solver tolerance), in units of
        # X^T diag(s) (y - z)
        self._fit_excess = np.maximum(np.abs(data_grad[self._inactive]) - bound, 0.0) / c

    # ------------------------------------------------------------ penalty
    def penalty_diagonal(self):
        """``R''`` on the active set: ``loss_unit S l2`` on active coefficients, else 0."""
        diag = np.zeros(self.n_params)
        coef_active = self.active[self.active < self.n_outputs * self.n_features]
        diag[coef_active] = self.coef_penalty
        return diag

    def penalty_value(self, theta=None):
        """``loss_unit S (l1 ||coef||_1 + l2/2 ||coef||^2)``."""
        theta = self.theta if theta is None else np.asarray(theta, np.float64)
        coef = theta[: self.n_outputs * self.n_features]
        S = self.total_weight
        c = self.loss_unit
        return S * (c * self.l1 * np.abs(coef).sum() + (c / 2) * self.l2 * float(coef @ coef))

    def penalty_gradient(self, theta=None):
        """Gradient of :meth:`penalty_value` with the fitted signs on the active set; on
        the inactive coefficients the subgradient that balances the fit's data gradient
        (clipped to ``loss_unit S l1`` in absolute value), so that the fit is exactly
        stationary."""
        theta = self.theta if theta is None else np.asarray(theta, np.float64)
        S = self.total_weight
        g = self.loss_unit * S * (self.l1 * self.signs + self.l2 * theta)
        g[self.n_outputs * self.n_features :] = 0.0
        g[self._inactive] = self._subgradient
        return g

    def null_space(self):
        """The inactive coefficients: a removal that keeps the active set leaves them at 0."""
        if not self._inactive.size:
            return None
        E = np.zeros((self.n_params, self._inactive.size))
        E[self._inactive, np.arange(self._inactive.size)] = 1.0
        return E

    # ------------------------------------------------------- KKT, refits
    def augmented_active(self, rows=slice(None)):
        """Dense ``[X, 1][rows]`` on the active parameters: (m, |A|)."""
        d = self.n_features
        cols = self.active[self.active < d]
        Xa = self.X[rows][:, cols]
        Xa = Xa.toarray() if sp.issparse(Xa) else np.asarray(Xa)
        if self.fit_intercept:
            Xa = np.hstack([Xa, np.ones((Xa.shape[0], 1))])
        return Xa

    def _inactive_columns(self, rows=slice(None)):
        XI = self.X[rows][:, self._inactive]
        return XI.toarray() if sp.issparse(XI) else np.asarray(XI)

    def active_set_changes(self, D, cols):
        """Whether the refits behind parameter changes ``D`` (p, m) of removing training
        points ``cols`` leave the fitted active set: (m,) bool.

        Violated when an active coefficient changes sign, or when an inactive
        coefficient's correlation with the residuals of the weights without ``j``,
        ``|sum_{i != j} s'_i x_if r'_i|``, exceeds its bound ``S l1`` (the L1
        subgradient condition; ``s'`` are the rescaled weights) by more than
        ``KKT_RTOL * S l1`` beyond the fit's own excess on that coefficient.
        The tolerance sits well above the rounding of these sums (about
        ``n eps`` of their terms) and below any change a refit resolves: a
        coefficient entering by that little moves by about ``1e-9 S l1 / G_ff``.
        """
        cols = np.arange(self.n_train)[cols]
        D = np.asarray(D, dtype=np.float64)
        K, d = self.n_outputs, self.n_features
        coef_active = self.active[self.active < K * d]
        after = self.theta[coef_active, None] + D[coef_active]
        changed = (after * self.signs[coef_active, None] < 0).any(axis=0)
        if not self._inactive.size:
            return changed
        w = self.weights
        r = self.y - self.outputs(self.X)[:, 0]
        XI = self._inactive_columns()
        Xa = self.augmented_active()
        base = XI.T @ (w * r)  # (|I|,)
        GI = XI.T @ (w[:, None] * Xa)  # (|I|, |A|)
        DA = D[self.active]  # (|A|, m)
        rj = r[cols] - np.einsum("ma,am->m", Xa[cols], DA)  # residual of j after the step
        C = base[:, None] - GI @ DA - XI[cols].T * (w[cols] * rj)[None, :]
        ratio = self._reweighting.ratio[cols, 0]
        S = self.total_weight
        excess = ratio[None, :] * np.abs(C) - S * self.l1
        tol = self._fit_excess[:, None] + KKT_RTOL * S * self.l1
        return changed | (excess > tol).any(axis=0)

    def active_set_changes_without(self, dtheta, weights):
        """Whether ``theta + dtheta`` breaks the KKT conditions of the objective with
        ``weights`` (the training set without some points; the penalty scale is their sum)
        on the fitted active set: the check of :meth:`active_set_changes`, for a group."""
        K, d = self.n_outputs, self.n_features
        theta = self.theta + dtheta
        coef_active = self.active[self.active < K * d]
        if np.any(theta[coef_active] * self.signs[coef_active] < 0):
            return True
        if not self._inactive.size:
            return False
        r = self.y - self.outputs(self.X, theta)[:, 0]
        corr = np.abs(self._inactive_columns().T @ (weights * r))
        c = weights.sum()
        return bool(np.any(corr - c * self.l1 > self._fit_excess + KKT_RTOL * c * self.l1))

    def refit_without(self, j):
        """Parameters of the model refit without training point(s) ``j``, exactly.

        scikit-learn's own coordinate descent on the features with ``sample_weight[j] = 0``
        (the same refit as deleting the row), warm-started from the fitted
        coefficients with ``tol=1e-12``; then polished by solving the stationarity
        equations on the active set and signs it found (a linear system), kept when they
        satisfy the KKT conditions.  None when coordinate descent does not converge.
        """
        import warnings

        from sklearn.base import clone
        from sklearn.exceptions import ConvergenceWarning

        sw = self.weights.copy()
        sw[j] = 0.0
        model = clone(self.refit_model).set_params(
            warm_start=True, tol=REFIT_TOL,
            max_iter=max(REFIT_MAX_ITER, int(self.refit_model.max_iter)),
        )
        model.coef_ = np.array(self.estimator.coef_, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            try:
                model.fit(self.X, self.y, sample_weight=sw)
            except ConvergenceWarning:
                return None
        coef, intercept = linear_parameters(model)
        theta = np.concatenate([coef.ravel()] + ([intercept] if self.fit_intercept else []))
        polished = self._solve_on_support(theta, j)
        return theta if polished is None else polished

    def _solve_on_support(self, theta, j):
        """The exact minimiser without ``j`` on the support and signs of ``theta``, or None
        if it does not satisfy the KKT conditions there."""
        d = self.n_features
        w = self.weights.copy()
        w[j] = 0.0
        S = w.sum()
        signs = np.sign(theta[:d])
        support = np.flatnonzero(signs)
        X = self.X.toarray() if sp.issparse(self.X) else self.X
        Xa = X[:, support]
        if self.fit_intercept:
            Xa = np.hstack([Xa, np.ones((X.shape[0], 1))])
        k = support.size
        H = Xa.T @ (w[:, None] * Xa)
        H[np.arange(k), np.arange(k)] += S * self.l2
        rhs = Xa.T @ (w * self.y)
        rhs[:k] -= S * self.l1 * signs[support]
        try:
            sol = la.solve(H, rhs, assume_a="pos")
        except (la.LinAlgError, ValueError):
            return None
        if np.any(sol[:k] * signs[support] <= 0):
            return None
        out = np.zeros_like(theta)
        out[support] = sol[:k]
        if self.fit_intercept:
            out[d] = sol[k]
        r = self.y - X @ out[:d] - (out[d] if self.fit_intercept else 0.0)
        corr = np.abs(X.T @ (w * r))
        off = np.setdiff1d(np.arange(d), support)
        if np.any(corr[off] > S * self.l1 * (1.0 + KKT_RTOL)):
            return None
        return out


class MultiTaskObjective(ElasticNetObjective):
    """Objective of a fitted MultiTaskLasso / MultiTaskElasticNet.

    ``coef`` is ``(K, d)``; the L1 norm becomes the sum of the columns' Euclidean norms,
    ``J = sum_i s_i ||y_i - z_i||^2 + S (2 l1 sum_f ||coef[:, f]|| + l2 ||coef||^2)``.
    The active set is the features with a non-zero column (all ``K`` coefficients of
    each, and the intercepts).  On it the group norm is smooth but not quadratic: its
    Hessian ``2 S l1 (I / ||w|| - w w^T / ||w||^3)`` per feature enters :meth:`hessian`
    and the removals are Newton steps (not exact), refit exactly for the largest
    changes (``refine``) and for the removals that change the active set.
    """

    exact_active_set_steps = False
    # the Newton steps are approximate: removals within this share of what their step
    # moved (the correlations, or a column) from a change are refit too, and kept as
    # changes only when their refit confirms it (support_changed)
    kkt_margin = 0.2

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        K, d = self.n_outputs, self.n_features
        W = self.theta[: K * d].reshape(K, d)
        self.features_active = np.flatnonzero(np.linalg.norm(W, axis=0) > 0)
        self.features_inactive = np.setdiff1d(np.arange(d), self.features_active)
        coef_active = (np.arange(K)[:, None] * d + self.features_active[None, :]).ravel()
        self.active = np.sort(coef_active)
        if self.fit_intercept:
            self.active = np.concatenate([self.active, np.arange(K * d, self.n_params)])
        self._inactive = np.setdiff1d(np.arange(K * d), self.active)
        self.signs = np.zeros(self.n_params)  # no signs: the group norm is smooth on A
        data_grad = (self.weights @ self.sample_gradients(self.X, self.y))[: K * d]
        G = data_grad.reshape(K, d)[:, self.features_inactive]  # (K, |I|)
        bound = 2.0 * self.total_weight * self.l1
        norms = np.linalg.norm(G, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            shrink = np.where(norms > bound, bound / norms, 1.0)
        self._subgradient = (-G * shrink).ravel()  # layout of self._inactive (k-major)
        self._fit_excess = np.maximum(norms - bound, 0.0) / 2.0  # per inactive feature

    def _columns(self, theta):
        K, d = self.n_outputs, self.n_features
        W = np.asarray(theta, dtype=np.float64)[: K * d].reshape(K, d)
        return W[:, self.features_active]  # (K, |A_f|)

    def penalty_value(self, theta=None):
        theta = self.theta if theta is None else np.asarray(theta, np.float64)
        K, d = self.n_outputs, self.n_features
        W = theta[: K * d].reshape(K, d)
        S = self.total_weight
        return S * (2.0 * self.l1 * np.linalg.norm(W, axis=0).sum()
                    + self.l2 * float((W * W).sum()))

    def penalty_gradient(self, theta=None):
        """Gradient of :meth:`penalty_value` on the active features; on the inactive ones
        the subgradient balancing the fit's data gradient (norm at most ``2 S l1``)."""
        theta = self.theta if theta is None else np.asarray(theta, np.float64)
        K, d = self.n_outputs, self.n_features
        S = self.total_weight
        g = np.zeros(self.n_params)
        Wa = self._columns(theta)
        Ga = 2.0 * S * (self.l1 * Wa / np.linalg.norm(Wa, axis=0) + self.l2 * Wa)
        g[: K * d].reshape(K, d)[:, self.features_active] = Ga
        g[self._inactive] = self._subgradient
        return g

    def _group_blocks(self, theta):
        """``2 S l1 (I / ||w|| - w w^T / ||w||^3)`` for each active feature: (|A_f|, K, K)."""
        Wa = self._columns(theta).T  # (|A_f|, K)
        norm = np.linalg.norm(Wa, axis=1)
        K = self.n_outputs
        B = np.eye(K)[None] / norm[:, None, None]
        B -= np.einsum("fk,fl->fkl", Wa, Wa) / norm[:, None, None] ** 3
        return 2.0 * self.total_weight * self.l1 * B

    def _group_indices(self):
        d = self.n_features
        return np.arange(self.n_outputs)[None, :] * d + self.features_active[:, None]

    def hessian(self, theta=None, *, weights=None):
        H = super().hessian(theta, weights=weights)
        idx = self._group_indices()
        for f, B in enumerate(self._group_blocks(self.theta if theta is None else theta)):
            H[np.ix_(idx[f], idx[f])] += B
        return H

    def hvp(self, V, theta=None, *, weights=None):
        V = np.asarray(V, dtype=np.float64)
        out = super().hvp(V, theta, weights=weights)
        squeeze = V.ndim == 1
        V2, out2 = (V[:, None], out[:, None]) if squeeze else (V, out)
        idx = self._group_indices()  # (|A_f|, K)
        B = self._group_blocks(self.theta if theta is None else theta)
        out2[idx] += np.einsum("fkl,flm->fkm", B, V2[idx])
        return out

    def hessian_diagonal(self, theta=None):
        diag = super().hessian_diagonal(theta)
        idx = self._group_indices()
        B = self._group_blocks(self.theta if theta is None else theta)
        diag[idx] += np.einsum("fkk->fk", B)
        return diag

    def active_set_changes(self, D, cols):
        """Whether the refits behind ``D`` (p, m) of removing ``cols`` leave the active set:
        an active feature's column turned back to zero (``w_f . w'_f`` within ``kkt_margin``
        of ``||w_f|| ||dw_f||``), or an inactive feature's correlation vector
        ``sum_{i != j} s'_i x_if r'_i`` longer than ``S l1`` by more than ``KKT_RTOL * S l1``
        beyond the fit's own excess, less ``kkt_margin`` times how far the step moved it."""
        cols = np.arange(self.n_train)[cols]
        D = np.asarray(D, dtype=np.float64)
        m = D.shape[1]
        idx = self._group_indices()  # (|A_f|, K)
        W = self.theta[idx]  # (|A_f|, K)
        turned = np.einsum("fk,fkm->fm", W, W[:, :, None] + D[idx])
        step = np.linalg.norm(W, axis=1)[:, None] * np.linalg.norm(D[idx], axis=1)
        changed = (turned <= self.kkt_margin * step).any(axis=0)
        if not self.features_inactive.size:
            return changed
        w = self.weights
        R = self.y - self.outputs(self.X)  # (n, K)
        XI = self.X[:, self.features_inactive]
        XI = XI.toarray() if sp.issparse(XI) else np.asarray(XI)
        Z = self.jvp(self.X, D)  # (n, K, m): output changes
        base = XI.T @ (w[:, None] * R)  # (|I|, K)
        C = base[:, :, None] - np.einsum("if,ikm->fkm", w[:, None] * XI, Z)
        Rj = R[cols] - Z[cols, :, np.arange(m)]  # (m, K): j's residual after the step
        C -= XI[cols].T[:, None, :] * (w[cols][:, None] * Rj).T[None, :, :]
        ratio = self._reweighting.ratio[cols, 0]
        S = self.total_weight
        excess = ratio[None, :] * np.linalg.norm(C, axis=1) - S * self.l1
        # the margin scales with how far the (approximate) step moved the correlations
        moved = np.linalg.norm(ratio[None, None, :] * C - base[:, :, None], axis=1)
        tol = self._fit_excess[:, None] + KKT_RTOL * S * self.l1 - self.kkt_margin * moved
        return changed | (excess > tol).any(axis=0)

    def support_changed(self, theta):
        """Whether parameters ``theta`` have another set of non-zero columns than the fit."""
        K, d = self.n_outputs, self.n_features
        W = np.asarray(theta)[: K * d].reshape(K, d)
        active = np.zeros(d, dtype=bool)
        active[self.features_active] = True
        return bool(np.any((np.linalg.norm(W, axis=0) > 0) != active))

    def refit_without(self, j):
        """Parameters of scikit-learn's refit with ``sample_weight[j] = 0``, warm-started
        from the fitted coefficients (``tol=1e-12``); None if it does not converge."""
        import warnings

        from sklearn.base import clone
        from sklearn.exceptions import ConvergenceWarning

        sw = self.weights.copy()
        sw[j] = 0.0
        model = clone(self.refit_model).set_params(
            warm_start=True, tol=REFIT_TOL,
            max_iter=max(REFIT_MAX_ITER, int(self.refit_model.max_iter)),
        )
        model.coef_ = np.array(self.estimator.coef_, dtype=np.float64)
        X = self.X.toarray() if sp.issparse(self.X) else self.X
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            try:
                model.fit(X, self.y, sample_weight=sw)
            except ConvergenceWarning:
                return None
        coef, intercept = linear_parameters(model)
        return np.concatenate([coef.ravel()] + ([intercept] if self.fit_intercept else []))


def is_sparse_model(estimator):
    """Whether ``estimator`` (a pipeline, possibly frozen) ends in an L1 / elastic-net model
    of this module, whose removals that change the active set need their exact refits."""
    from . import split_pipeline, unwrap_frozen

    final = unwrap_frozen(split_pipeline(unwrap_frozen(estimator))[1])
    if type(final).__name__ in ("SGDClassifier", "SGDRegressor"):  # objectives/sgd.py
        from .sgd import _l1_ratio

        return _l1_ratio(final) > 0
    return type(final).__name__ in SPARSE_MODELS


def _elastic_net(estimator, Xf, y, sample_weight, feature_map, alpha, l1_ratio, refit_model):
    if getattr(estimator, "positive", False):
        raise unsupported(
            estimator,
            "positive=True (a constrained problem: the optimum is not a stationary point)",
            "positive=False",
        )
    coef, intercept = linear_parameters(estimator)
    if coef.shape[0] != 1:
        raise unsupported(estimator, f"{coef.shape[0]} targets",
                          "one target (fit one model per target)")
    y = check_regression_target(y, 1)
    X = _check_xy(estimator, Xf, y)
    return ElasticNetObjective(estimator, X, y, sample_weight, coef, intercept, alpha,
                               l1_ratio, feature_map, refit_model)


def _refit_model(estimator, alpha, l1_ratio):
    """An unfitted ``ElasticNet`` with the fitted model's penalty and settings."""
    from sklearn.linear_model import ElasticNet

    return ElasticNet(alpha=alpha, l1_ratio=l1_ratio, fit_intercept=estimator.fit_intercept,
                      max_iter=estimator.max_iter, tol=estimator.tol, precompute=False,
                      selection="cyclic")


@register_objective(*SPARSE_MODELS[:2])
def _build_elastic_net(estimator, Xf, y, sample_weight, feature_map):
    alpha, l1_ratio = float(estimator.alpha), float(estimator.l1_ratio)
    return _elastic_net(estimator, Xf, y, sample_weight, feature_map, alpha, l1_ratio,
                        _refit_model(estimator, alpha, l1_ratio))


@register_objective(*SPARSE_MODELS[2:])
def _build_elastic_net_cv(estimator, Xf, y, sample_weight, feature_map):
    alpha = float(estimator.alpha_)
    l1_ratio = float(getattr(estimator, "l1_ratio_", 1.0))
    return _elastic_net(estimator, Xf, y, sample_weight, feature_map, alpha, l1_ratio,
                        _refit_model(estimator, alpha, l1_ratio))


@register_objective(*SPARSE_MODELS[4:])
def _build_multi_task(estimator, Xf, y, sample_weight, feature_map):
    from sklearn.linear_model import MultiTaskElasticNet

    coef, intercept = linear_parameters(estimator)
    y = check_regression_target(y, coef.shape[0])
    X = _check_xy(estimator, Xf, y)
    if sp.issparse(X):
        raise unsupported(estimator, "sparse X (scikit-learn fits it on dense X only)",
                          "dense X")
    alpha, l1_ratio = float(estimator.alpha), float(getattr(estimator, "l1_ratio", 1.0))
    refit = MultiTaskElasticNet(alpha=alpha, l1_ratio=l1_ratio,
                                fit_intercept=estimator.fit_intercept,
                                max_iter=estimator.max_iter, tol=estimator.tol,
                                selection="cyclic")
    return MultiTaskObjective(estimator, X, y, sample_weight, coef, intercept, alpha,
                              l1_ratio, feature_map, refit)


class SparseLogisticObjective(_ActiveSetSmoothPart, LogisticObjective):
    """Objective of an L1 / elastic-net :class:`~sklearn.linear_model.LogisticRegression`.

    scikit-learn minimises ``C sum_i s_i loss_i + (1 - r)/2 ||coef||^2 + r ||coef||_1``
    (``r`` the ``l1_ratio``; ``solver="saga"``, or ``"liblinear"`` for ``r = 1``, whose
    intercept is the weight of a constant feature ``intercept_scaling`` and so carries
    ``r |intercept| / intercept_scaling`` too).  A sum, not a mean: a refit without
    ``j`` is ``sample_weight[j] = 0``, the other weights unchanged.  As for the Lasso,
    the objective is the smooth part on the fitted active set (signs fixed, inactive
    coefficients a null space); the log-loss is not quadratic, so removals are Newton
    steps, refit exactly for the largest changes (``refine``) and for the removals
    whose KKT check fails, with the margin of :class:`MultiTaskObjective` (the changes
    are kept when the refit confirms them).
    """

    penalties = ("l1", "elasticnet")
    exact_active_set_steps = False
    kkt_margin = 0.2

    def __init__(self, estimator, X, y, sample_weight, feature_map):
        if getattr(estimator, "class_weight", None) == "balanced":
            raise unsupported(estimator, "an L1 penalty and class_weight='balanced'",
                              "class_weight=None or a dict")
        if estimator.solver not in ("saga", "liblinear"):
            raise unsupported(estimator, f"solver={estimator.solver!r} and an L1 penalty",
                              "solver='saga' or 'liblinear'")
        super().__init__(estimator, X, y, sample_weight, feature_map)
        self._fixed_model = estimator  # refits: LogisticRegressionCV's equivalent model
        penalty = effective_penalty(estimator)
        ratio = 1.0 if penalty == "l1" else float(estimator.l1_ratio)
        K, d = self.n_outputs, self.n_features
        self.coef_penalty = 1.0 - ratio
        self.intercept_penalty = 0.0
        self.l1_weights = np.zeros(self.n_params)
        self.l1_weights[: K * d] = ratio
        if self.fit_intercept and estimator.solver == "liblinear":
            self.l1_weights[K * d :] = ratio / float(estimator.intercept_scaling)
        self.signs = np.sign(self.theta) * (self.l1_weights > 0)
        self.active = np.flatnonzero((self.theta != 0) | (self.l1_weights == 0))
        self._inactive = np.setdiff1d(np.arange(self.n_params), self.active)
        data_grad = self.weights @ self.sample_gradients(self.X, self.y)
        self._data_grad = data_grad
        bound = self.l1_weights[self._inactive]
        self._subgradient = np.clip(-data_grad[self._inactive], -bound, bound)
        self._fit_excess = np.maximum(np.abs(data_grad[self._inactive]) - bound, 0.0)
        self._curvature = None
        self._sample_weight = np.ones(self.n_train) if sample_weight is None else \
            np.asarray(sample_weight, dtype=np.float64)

    def check_minimum(self):
        """Nothing to check: the L1 penalty bounds the coefficients (a minimiser exists)."""

    # ------------------------------------------------------------ penalty
    def penalty_diagonal(self):
        diag = np.zeros(self.n_params)
        K, d = self.n_outputs, self.n_features
        coef_active = self.active[self.active < K * d]
        diag[coef_active] = self.coef_penalty
        return diag

    def penalty_value(self, theta=None):
        theta = self.theta if theta is None else np.asarray(theta, np.float64)
        coef = theta[: self.n_outputs * self.n_features]
        return (0.5 * self.coef_penalty * float(coef @ coef)
                + float(self.l1_weights @ np.abs(theta)))

    def penalty_gradient(self, theta=None):
        """Gradient with the fitted signs on the active set; on the inactive coefficients
        the subgradient balancing the fit's data gradient (clipped to their L1 weight)."""
        theta = self.theta if theta is None else np.asarray(theta, np.float64)
        K, d = self.n_outputs, self.n_features
        g = self.l1_weights * self.signs
        g[: K * d] += self.coef_penalty * theta[: K * d]
        g[self._inactive] = self._subgradient
        return g

    def null_space(self):
        """The inactive coefficients, and the shift of unpenalised multinomial intercepts."""
        cols = []
        if self._inactive.size:
            E = np.zeros((self.n_params, self._inactive.size))
            E[self._inactive, np.arange(self._inactive.size)] = 1.0
            cols.append(E)
        K, d = self.n_outputs, self.n_features
        if self.shift_invariant and K > 1 and self.fit_intercept and not self.l1_weights[-1]:
            v = np.zeros((self.n_params, 1))
            v[K * d :] = 1.0 / np.sqrt(K)
            cols.append(v)
        return np.hstack(cols) if cols else None

    # ------------------------------------------------------- KKT, refits
    def active_set_changes(self, D, cols):
        """Whether the refits behind ``D`` (p, m) of removing ``cols`` leave the active
        set: an active coefficient within ``kkt_margin`` of its step from changing sign,
        or an inactive one whose data gradient without ``j`` at the new parameters exceeds
        its L1 weight by more than ``KKT_RTOL`` of it beyond the fit's own excess, less
        ``kkt_margin`` times how far the step moved that gradient."""
        cols = np.arange(self.n_train)[cols]
        D = np.asarray(D, dtype=np.float64)
        m = D.shape[1]
        act = self.active[self.l1_weights[self.active] > 0]
        after = (self.theta[act, None] + D[act]) * self.signs[act, None]
        changed = (after <= self.kkt_margin * np.abs(D[act])).any(axis=0)
        if not self._inactive.size:
            return changed
        n, K, d = self.n_train, self.n_outputs, self.n_features
        Z = self.outputs(self.X)[:, :, None] + self.jvp(self.X, D)  # (n, K, m)
        Zf = Z.transpose(2, 0, 1).reshape(m * n, K)
        R, _ = self.loss_derivatives(Zf, np.tile(self.y, m))
        W = np.stack([self.removal_weights(j) for j in cols])  # (m, n): the refits' weights
        WR = (R.reshape(m, n, K) * W[:, :, None]).transpose(1, 2, 0)  # (n, K, m)
        X = self.X.toarray() if sp.issparse(self.X) else self.X
        G = np.empty((self.n_params, m))
        G[: K * d] = np.einsum("nf,nkm->kfm", X, WR).reshape(K * d, m)
        if self.fit_intercept:
            G[K * d :] = WR.sum(axis=0)
        bound = self.l1_weights[self._inactive][:, None]
        Gi = G[self._inactive]
        excess = np.abs(Gi) - bound
        # the margin scales with how far the (approximate) step moved the gradient
        moved = np.abs(Gi - self._data_grad[self._inactive][:, None])
        tol = self._fit_excess[:, None] + KKT_RTOL * bound - self.kkt_margin * moved
        return changed | (excess > tol).any(axis=0)

    def support_changed(self, theta):
        """Whether ``theta`` has another set of non-zero penalised coefficients."""
        pen = self.l1_weights > 0
        return bool(np.any((np.asarray(theta)[pen] != 0) != (self.theta[pen] != 0)))

    def _refit_sample_weight(self, j):
        """The ``sample_weight`` scikit-learn refits the model without ``j`` with."""
        sw = self._sample_weight.copy()
        sw[j] = 0.0
        return sw

    def refit_without(self, j):
        """Parameters of the model refit with ``sample_weight[j] = 0``, exactly.

        scikit-learn's own fit (saga warm-started from the fitted coefficients; liblinear
        from scratch) at ``tol=1e-10``, then Newton's method on the smooth part over the
        support and signs it found, to a gradient of 1e-12 of the data's; kept when the
        KKT conditions hold there, else scikit-learn's parameters.  None if neither fit
        converges.
        """
        import warnings

        from sklearn.base import clone
        from sklearn.exceptions import ConvergenceWarning

        from ..linalg import CholeskyFactor

        sw = self._refit_sample_weight(j)
        est = self._fixed_model
        model = clone(est).set_params(tol=1e-10, max_iter=max(int(est.max_iter), 100_000))
        if est.solver == "saga":
            model.set_params(warm_start=True)
            model.coef_ = np.array(est.coef_, dtype=np.float64)
            model.intercept_ = np.array(est.intercept_, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(self.X, self.classes[self.y], sample_weight=sw)
        try:
            refit = SparseLogisticObjective(model, self.X, self.classes[self.y], sw, None)
        except ValueError:
            return None
        theta = refit.theta.copy()
        scale = np.abs(refit.weights[:, None] * refit.sample_gradients(refit.X, refit.y)
                       ).sum(axis=0).max() or 1.0
        for _ in range(50):
            g = refit.objective_gradient(theta)
            g[refit._inactive] = 0.0
            if np.abs(g).max() <= 1e-12 * scale:
                break
            N = refit.null_space()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                theta = theta - CholeskyFactor(refit.hessian(theta), N).solve(g)
        else:
            return refit.theta
        same_signs = np.all(np.sign(theta) * refit.signs >= 0) and np.all(
            (theta != 0)[refit.l1_weights > 0] == (refit.theta != 0)[refit.l1_weights > 0])
        G = refit.weights @ refit.sample_gradients(refit.X, refit.y, theta)
        kkt = np.all(np.abs(G[refit._inactive])
                     <= refit.l1_weights[refit._inactive] * (1 + KKT_RTOL))
        return theta if same_signs and kkt else refit.theta
