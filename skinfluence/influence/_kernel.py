"""Exact leave-one-out of kernel models in closed form (hat-matrix identities).

For the dual objective of :mod:`skinfluence.objectives.kernel` the fit is
``a = G u`` with ``G = (K + Lambda)^{-1}``, ``Lambda = diag(1 / w)`` and ``u = y - m``.
Removing point ``j`` deletes row and column ``j`` of ``K + Lambda``; by the
Schur complement its inverse is ``G_{-j} = G - G e_j e_j^T G / G_jj`` (restricted to
the other points), so for any targets ``u`` the refit's dual coefficients are

    a_{-j} = G u - G[:, j] (G u)_j / G_jj          (zero at j),

and its output at ``x_j`` is ``y_j - (G u)_j / G_jj`` (Rasmussen & Williams, 2006,
section 5.4.2).  With ``normalize_y`` the refit's mean ``m'_j`` is the mean of the
targets without ``j``, i.e. ``u = y - m'_j`` and ``G u = G y - m'_j G 1``.  One
factorisation (O(n^3)) serves every point; the parameter changes of all points
are an ``n x n`` matrix, each column O(n).  Group removal uses the block form
``G[:, S] G_SS^{-1} (G u)_S``.
"""

import warnings

import numpy as np
import scipy.linalg as la

from ..linalg import CholeskyFactor
from ..objectives import NotStationaryWarning
from ._base import Removal

# relative mismatch between the fitted dual coefficients and G u above which the model was
# not fitted on the data given (a refit reproduces them to rounding)
_FIT_TOL = 1e-6


class ClosedFormSolver:
    """The factorised ``K + Lambda`` of a kernel model (stands in for a Hessian solver).

    Attributes
    ----------
    inverse_ : ndarray of shape (n, n)
        ``G = (K + Lambda)^{-1}`` over the points of positive weight (zero elsewhere).
    """

    name = "closed_form"
    damping_ = 0.0
    null_space = None

    def __init__(self, objective):
        w = objective.weights
        self.active = np.flatnonzero(w > 0)
        act = self.active
        A = objective.X[np.ix_(act, act)] + np.diag(1.0 / w[act])
        factor = CholeskyFactor(
            A, overwrite=True, on_singular="raise",
            message=f"The kernel matrix plus the noise of {type(objective.estimator).__name__} "
            "is not positive definite to working precision: the model's dual solution is not "
            "unique or not accurately computable. Increase alpha.")
        G = np.zeros((objective.n_train, objective.n_train))
        G[np.ix_(act, act)] = factor.solve(np.eye(act.size))
        self.inverse_ = G

    def inverse(self):
        """None: influence never solves with the Hessian of a kernel model."""
        return None

    def info(self):
        return {"solver": self.name, "damping": 0.0}


class KernelRemoval(Removal):
    """Exact parameter changes of kernel models refit without each point (module docstring)."""

    approximation = "newton"  # the loss is re-evaluated at the (exact) new outputs

    def _prepare(self, r, S):
        obj, G = self.objective, self.solver.inverse_
        n = obj.n_train
        Y = obj.targets()
        self.diag = np.diag(G).copy()
        inactive = self.diag <= 0  # zero weight: no dual coefficient, no influence
        self.diag[inactive] = 1.0
        self.a0 = G @ Y  # (n, T)
        if obj.fit_mean:
            self.mean = obj.theta[-obj.n_outputs:]
            self.c = G.sum(axis=1)  # G 1
            self.loo_mean = (n * self.mean[None, :] - Y) / (n - 1.0)  # (n, T)
            fitted = self.a0 - self.c[:, None] * self.mean
            # (G u)_j of the refit without j, u = y - m'_j
            self.q = (self.a0 - self.c[:, None] * self.loo_mean) / self.diag[:, None]
        else:
            fitted = self.a0
            self.q = self.a0 / self.diag[:, None]
        self.q[inactive] = 0.0
        dual = obj.split(obj.theta)[0][:, :, 0].T  # (n, T)
        scale = max(np.abs(fitted).max(), np.finfo(float).tiny)
        if np.abs(dual - fitted).max() > _FIT_TOL * scale:
            warnings.warn(
                f"The dual coefficients of the {type(obj.estimator).__name__} differ from its "
                "solution on the data passed to fit: was it fitted on exactly these X and y "
                "(and sample_weight)? Leave-one-out values are computed for that solution.",
                NotStationaryWarning, stacklevel=5,
            )
        self.leverages = None

    def _solve(self, cols):
        obj, G = self.objective, self.solver.inverse_
        n, T = obj.n_train, obj.n_outputs
        idx = np.arange(n)[cols]
        V = np.empty((obj.n_params, idx.size))
        Gc = G[:, idx]
        for t in range(T):
            block = -Gc * self.q[idx, t]
            if obj.fit_mean:
                dm = self.loo_mean[idx, t] - self.mean[t]
                block -= np.outer(self.c, dm)
                V[T * n + t] = dm
            V[t * n : (t + 1) * n] = block
        return V

    def self_outputs(self):
        """``y_j - (G u)_j / G_jj`` minus the fitted output at each training point."""
        dz = self.objective.targets() - self.q - self.train_outputs
        dz[self.diag_inactive()] = 0.0
        return dz

    def diag_inactive(self):
        return np.isin(np.arange(self.objective.n_train), self.solver.active, invert=True)

    def group_change(self, idx):
        """Exact parameter change when the training points ``idx`` are removed together."""
        obj, G = self.objective, self.solver.inverse_
        n, T = obj.n_train, obj.n_outputs
        keep = np.setdiff1d(self.solver.active, idx)
        idx = np.intersect1d(idx, self.solver.active)
        Y = obj.targets()
        out = np.zeros(obj.n_params)
        for t in range(T):
            m_new = Y[keep, t].mean() if obj.fit_mean else 0.0
            Gu = self.a0[:, t] - (self.c * m_new if obj.fit_mean else 0.0)
            a_new = Gu - G[:, idx] @ la.solve(G[np.ix_(idx, idx)], Gu[idx], assume_a="pos")
            a_new[idx] = 0.0
            out[t * n : (t + 1) * n] = a_new - obj.split(obj.theta)[0][t, :, 0]
            if obj.fit_mean:
                out[T * n + t] = m_new - self.mean[t]
        return out


def closed_form_removal(objective, verbose=0):
    """``(solver, removal)`` of a kernel model, prepared; the removal is exact."""
    solver = ClosedFormSolver(objective)
    removal = KernelRemoval(verbose=verbose).prepare(objective, solver)
    removal.self_side()
    return solver, removal
