"""Newton steps of neural networks with each point's exact Hessian.

A network's per-point Hessian ``H_j`` carries, besides the Gauss-Newton term, the
curvature of the network itself.  The steps ``(H - w_j H_j)^{-1} w_j g_j`` of all
points are found together by conjugate gradients preconditioned with ``H^{-1}``,
which turns each system into the identity plus a low-rank term; an iteration
costs two matrix products and one per-point Hessian-vector product per point.
"""

import warnings

import numpy as np

from ..utils._progress import progress
from . import _base
from ._base import Removal
from ._newton import leverages, smallest_eigenvalues, woodbury_systems
from ._newton import _STACKLEVEL

# relative residual at which a point's conjugate gradients stop
_CG_TOL = 1e-10
# the largest steps are where the quadratic model can fail; this many are checked
_CHECKED_STEPS = 256


def point_hessians_apply(objective, solver):
    """Newton steps with each point's exact Hessian: a non-linear model with point
    Hessians, a dense inverse and parameter changes of all points that fit in memory."""
    return (
        not objective.linear_in_params
        and objective.has_point_hessians
        and solver.inverse() is not None
        and objective.n_params * objective.n_train <= _base.CACHE_ENTRIES
    )


def _preconditioned_cg(H, Hinv, B, X, sample_hvps, max_iter):
    """Solve ``(H - w_j H_j) x_j = b_j`` for all columns at once, from ``X`` (p, n).

    ``sample_hvps(P, rows)`` gives ``w_j H_j p_j`` for the columns ``rows``.
    Returns the solutions and which points failed: negative curvature along a
    search direction (no minimum near the fit for a Newton step to aim at), or
    no convergence within ``max_iter``.
    """
    n = B.shape[1]
    R = B - (H @ X - sample_hvps(X, None))
    Zp = Hinv @ R
    P = Zp.copy()
    rz = np.einsum("pi,pi->i", R, Zp)
    bnorm = np.sqrt(np.einsum("pi,pi->i", B, Hinv @ B))
    active = np.flatnonzero(np.sqrt(np.abs(rz)) > _CG_TOL * bnorm)
    failed = np.zeros(n, dtype=bool)
    for _ in range(max_iter):
        if active.size == 0:
            break
        Pa = P[:, active]
        AP = H @ Pa - sample_hvps(Pa, active)
        pAp = np.einsum("pi,pi->i", Pa, AP)
        bad = ~(pAp > 0)
        if bad.any():
            failed[active[bad]] = True
            keep = ~bad
            active, Pa, AP, pAp = active[keep], Pa[:, keep], AP[:, keep], pAp[keep]
        a = rz[active] / pAp
        X[:, active] += a * Pa
        R[:, active] -= a * AP
        Za = Hinv @ R[:, active]
        rz_new = np.einsum("pi,pi->i", R[:, active], Za)
        P[:, active] = Za + (rz_new / rz[active]) * Pa
        rz[active] = rz_new
        active = active[np.sqrt(np.abs(rz_new)) > _CG_TOL * bnorm[active]]
    failed[active] = True  # not converged within max_iter
    return X, failed


class PointHessianNewton(Removal):
    """``dtheta_j = (H - w_j H_j)^{-1} w_j g_j``: the exact Newton step of the objective
    without ``j`` from the fitted parameters, with ``H_j`` point ``j``'s full loss Hessian.

    Points whose ``H - w_j H_j`` is indefinite, or whose step raises the objective
    without them (a trust-region ratio that is not positive), take the Newton step
    that removes only their Gauss-Newton curvature, if that one is well-posed and
    lowers the objective, else the first-order step; a warning counts them.
    """

    approximation = "newton"

    def __init__(self, verbose=0, max_iter=200):
        super().__init__(verbose=verbose)
        self.max_iter = max_iter

    def _prepare(self, r, S):
        self._set_coefficients(r)  # first-order coefficients (ranking, fallbacks)
        self._directions = self._newton_steps()

    def _newton_steps(self):
        obj = self.objective
        Hinv = self.solver.inverse()
        H = obj.hessian()
        H[np.diag_indices_from(H)] += self.solver.damping_
        N = self.solver.null_space
        if N is not None:  # the solver's pseudo-inverse works off the flat directions
            P_N = np.eye(H.shape[0]) - N @ N.T
            H = P_N @ H @ P_N
        B = obj.vjp_T(obj.X, self.coef)  # (p, n): w_j g_j
        first_order = Hinv @ B
        X, failed = _preconditioned_cg(
            H, Hinv, B, first_order.copy(), lambda V, rows: obj.sample_hvps(V, rows=rows),
            self.max_iter,
        )
        # only a rise is rejected: a small positive trust-region ratio still predicts the
        # refit better than the first-order step
        predicted = np.einsum("pi,pi->i", B, X)
        order = np.argsort(-predicted, kind="stable")
        check = order[~failed[order]][:_CHECKED_STEPS]
        failed[check] |= self.raises_objective(X[:, check], check)
        if failed.any():
            self._fall_back(X, failed, first_order)
        return X

    def _fall_back(self, X, failed, first_order):
        """Replace the failed columns of ``X`` by Gauss-Newton or first-order steps."""
        n = self.objective.n_train
        idx = np.flatnonzero(failed)
        # the Gauss-Newton part of the point's curvature is positive semi-definite, so
        # removing it cannot make H indefinite by itself
        gn_steps, gn_ok = self.gauss_newton_steps(idx)
        if gn_ok.any():
            gn_ok[gn_ok] = ~self.raises_objective(gn_steps[:, gn_ok], idx[gn_ok])
        X[:, idx] = np.where(gn_ok, gn_steps, first_order[:, idx])
        n_first = int((~gn_ok).sum())
        warnings.warn(
            f"{idx.size} training point(s): removing the point leaves the Hessian "
            "indefinite, or its Newton step raises the objective without it; their "
            "Newton step removes only the point's Gauss-Newton curvature"
            + (f" ({n_first} of them, where that fails too, use the first-order "
               "formula)." if n_first else ".")
            + (" When most points fail, the fit is usually not at a minimum: refit with "
               "a tighter tol (or polish it with warm_start=True) first."
               if idx.size > n // 2 else ""),
            RuntimeWarning,
            stacklevel=_STACKLEVEL + 1,
        )

    def gauss_newton_steps(self, idx):
        """Newton steps removing the Gauss-Newton part of the curvature of points ``idx``.

        Returns the steps (p, m) and which are well-posed: ``I - w S M`` (``M`` the
        leverage) with no eigenvalue below 0.1.
        """
        obj = self.objective
        Xi = obj.X[idx]
        r, S = obj.loss_derivatives(self.train_outputs[idx], obj.y[idx])
        w = obj.weights[idx]
        A, c, singular = woodbury_systems(leverages(obj, self.solver, Xi), S, w, r)
        ok = ~singular & (smallest_eigenvalues(A) >= 0.1)
        steps = self.solver.solve(obj.vjp_T(Xi, w[:, None] * c))
        return steps, ok

    def raises_objective(self, steps, cols):
        """Which steps (columns of ``steps`` for training points ``cols``) do not lower
        the objective without the point: (m,) bool.

        A trust-region ratio (actual over predicted decrease) that is not positive;
        each check is one forward pass over the training set.  With damping
        ``lambda`` the objective is that of the damped problem, whose Hessian the
        steps use: plus ``lambda / 2 ||theta - theta_0||^2``.  A residual gradient of
        the fitted model (not fully converged) moves every refit alike and is left
        out of influence; its first-order part is removed from the actual decrease.
        """
        lam = self.solver.damping_
        obj = self.objective
        w = obj.weights
        losses0 = obj.sample_losses(obj.X, obj.y)
        f0 = float(w @ losses0) + obj.penalty_value()
        residual = obj.objective_gradient(obj.theta)
        poor = np.zeros(len(cols), dtype=bool)
        for c in progress(range(len(cols)), desc="checking Newton steps", verbose=self.verbose):
            j, step = cols[c], steps[:, c]
            theta = obj.theta + step
            losses = obj.sample_losses(obj.X, obj.y, theta)
            f = float(w @ losses) + obj.penalty_value(theta)
            actual = (f0 - w[j] * losses0[j]) - (f - w[j] * losses[j])
            actual -= 0.5 * lam * float(step @ step)
            actual += float(residual @ step)
            poor[c] = not actual >= 0.0
        return poor
