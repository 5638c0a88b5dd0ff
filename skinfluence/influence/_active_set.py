"""Exact removals of L1 / elastic-net least squares on the fitted active set.

For the objective of :mod:`skinfluence.objectives.sparse`, with ``X~`` the
active columns of ``[X, 1]``, ``G = X~^T diag(s) X~``, ``D`` the identity on the
active coefficients (zero on the intercept) and ``q = l1 sign + l2 D theta`` the
penalty gradient per unit of weight, the fit solves (half the gradient of ``J``)

    (G + S l2 D) theta = X~^T s y - S l1 sign.

Without point ``j``, on the same active set and signs, ``G`` loses
``s_j x_j x_j^T`` and ``S`` becomes ``c = S - s_j``.  With ``H_c = G + c l2 D``
and ``u_c = theta + s_j H_c^{-1} q`` (the fit with the penalty scale ``c``),
Sherman-Morrison gives the refit exactly:

    dtheta_j = s_j H_c^{-1} q + s_j H_c^{-1} x_j (x_j^T u_c - y_j) / (1 - s_j x_j^T H_c^{-1} x_j).

``H_c`` depends on ``j`` only through ``s_j``: one factorisation per distinct
sample weight (one for unit weights, one in all for the Lasso, whose ``l2`` is
zero).  The step holds while the refit keeps the active set; the objective's
``active_set_changes`` checks the KKT conditions and ``_refit.py`` refits the
removals that fail them.
"""

import warnings

import numpy as np
import scipy.linalg as la

from ..linalg import CholeskyFactor
from ._base import Removal

# the warnings point at the caller of fit: fit -> prepare -> _prepare -> _solve -> here
_STACKLEVEL = 6


class ActiveSetRemoval(Removal):
    """Exact parameter changes on the fitted active set (module docstring)."""

    approximation = "newton"  # losses re-evaluated exactly at the new outputs
    exact_steps = True  # only removals that change the active set need a refit

    def _prepare(self, r, S):
        obj = self.objective
        self.coef = np.zeros((obj.n_train, obj.n_outputs))  # unused: directions are direct
        self._Xa = obj.augmented_active()
        w = obj.weights
        self._G = self._Xa.T @ (w[:, None] * self._Xa)
        k = self._Xa.shape[1] - int(obj.fit_intercept)
        self._D = np.zeros(self._Xa.shape[1])
        self._D[:k] = 1.0
        thetaA = obj.theta[obj.active]
        self._q = obj.l1 * obj.signs[obj.active] + obj.l2 * self._D * thetaA
        self._e = self.train_outputs[:, 0] - obj.y  # z - y
        self._factors = {}
        self.n_singular = 0
        if self.cacheable:
            self._directions = self._solve(slice(0, obj.n_train))

    def _factor(self, c):
        """``(CholeskyFactor(H_c), H_c^{-1} q)`` for the penalty scale ``c`` (cached)."""
        key = float(c) if self.objective.l2 else 0.0
        if key not in self._factors:
            H = self._G + key * self.objective.l2 * np.diag(self._D)
            f = CholeskyFactor(
                H, overwrite=True, on_singular="raise",
                message=f"The active set of the {type(self.objective.estimator).__name__} "
                "has collinear features (its Gram matrix is singular to working precision): "
                "the fit is not unique and neither are its refits. Increase alpha, or add an "
                "L2 part (ElasticNet with l1_ratio < 1).")
            self._factors[key] = (f, f.solve(self._q))
        return self._factors[key]

    def _solve(self, cols):
        obj = self.objective
        idx = np.arange(obj.n_train)[cols]
        w = obj.weights[idx]
        V = np.zeros((obj.n_params, idx.size))
        dA = np.zeros((obj.active.size, idx.size))
        c_all = obj.total_weight - w
        keys = np.unique(c_all) if obj.l2 else np.array([0.0])
        singular = np.zeros(idx.size, dtype=bool)
        for c in keys:
            sel = np.flatnonzero(c_all == c) if obj.l2 else np.arange(idx.size)
            f, Hq = self._factor(c)
            Xs = self._Xa[idx[sel]]  # (m, |A|)
            HX = f.solve(Xs.T)  # (|A|, m)
            h = np.einsum("ma,am->m", Xs, HX)
            ws = w[sel]
            t = self._e[idx[sel]] + ws * (Xs @ Hq)  # x_j^T u_c - y_j
            denom = 1.0 - ws * h
            bad = denom <= 1e-12
            singular[sel] = bad & (ws > 0)
            denom[bad] = 1.0
            dA[:, sel] = ws * Hq[:, None] + HX * (ws * t / denom)[None, :]
        if singular.any():
            self.n_singular += int(singular.sum())
            warnings.warn(
                f"{int(singular.sum())} training point(s) have leverage 1 on the active set: "
                "the model refit without them is not determined by the rest of the data. "
                "Their step ignores the loss of their own curvature.",
                RuntimeWarning, stacklevel=_STACKLEVEL,
            )
        V[obj.active] = dA
        return self._finish(V, cols)

    def group_change(self, idx):
        """Exact parameter change when the training points ``idx`` are removed together.

        The stationarity equations on the fitted active set with the group's weights at
        zero (one linear solve); when the result breaks the KKT conditions, the
        objective's warm-started refit without the group.
        """
        obj = self.objective
        w = obj.weights.copy()
        w[idx] = 0.0
        c = w.sum()
        Xa = self._Xa
        # half gradients at the fit: without the group, and the fit's own residual (the
        # tilt every step here removes, as the per-point steps do)
        e = self._e
        residual = Xa.T @ (obj.weights * e) + obj.total_weight * self._q
        grad = Xa.T @ (w * e) + c * self._q
        H = Xa.T @ (w[:, None] * Xa) + c * obj.l2 * np.diag(self._D)
        V = np.zeros(obj.n_params)
        try:
            V[obj.active] = -la.solve(H, grad - residual, assume_a="pos")
        except (la.LinAlgError, ValueError):
            V[:] = np.nan
        if not np.all(np.isfinite(V)) or obj.active_set_changes_without(V, w):
            theta = obj.refit_without(idx)
            if theta is None:
                raise RuntimeError(
                    "The refit without the group did not converge; its removal is not "
                    "available.")
            V = theta - obj.theta
        return V
