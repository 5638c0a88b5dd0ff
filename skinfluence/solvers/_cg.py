"""Batched, preconditioned conjugate gradients on Hessian-vector products."""

import warnings

import numpy as np

from ._base import HessianSolver


class CGSolver(HessianSolver):
    """Matrix-free conjugate gradients for many right-hand sides at once.

    All columns of ``B`` advance together, so each iteration is one batched
    Hessian-vector product (a pair of GEMMs for linear models).  A Jacobi
    (diagonal) preconditioner is used.  Columns stop updating once their
    relative residual is below ``tol``.  Non-positive curvature along a search
    direction (a non-convex or singular problem) is flagged and that column is
    stopped; a warning says so.

    Parameters
    ----------
    damping : float
    tol : float
        Relative residual ``||B - H X|| / ||B||`` per column.
    max_iter : int or None
        Default ``max(50, min(10 * p, 2000))``.

    Attributes
    ----------
    n_iter_ : int
        Iterations used by the last :meth:`solve` call.
    max_residual_ : float
        Largest relative residual of the last call.
    converged_ : bool
    negative_curvature_ : bool
        True if a direction of non-positive curvature was met.
    """

    name = "cg"

    def __init__(self, damping=0.0, tol=1e-10, max_iter=None):
        super().__init__(damping)
        self.tol = float(tol)
        self.max_iter = max_iter

    def _prepare(self):
        diag = self.objective.hessian_diagonal() + self.damping
        N = self.null_space
        if N is not None:
            diag = diag + (N * N).sum(axis=1) * max(float(np.mean(np.abs(diag))), 1.0)
        self._precond = 1.0 / np.where(diag > 1e-12 * max(diag.max(), 1e-300), diag, 1.0)
        self.n_iter_ = 0
        self.max_residual_ = 0.0
        self.converged_ = True
        self.negative_curvature_ = False
        self.history_ = []

    def _matvec(self, V):
        out = self.objective.hvp(V) + self.damping * V
        return self._project(out)

    def solve(self, B):
        B = self._project(np.asarray(B, dtype=np.float64))
        squeeze = B.ndim == 1
        if squeeze:
            B = B[:, None]
        p, m = B.shape
        max_iter = self.max_iter if self.max_iter is not None else max(50, min(10 * p, 2000))
        X = np.zeros_like(B)
        R = B.copy()
        bnorm = np.linalg.norm(B, axis=0)
        bnorm[bnorm == 0] = 1.0
        Zp = self._precond[:, None] * R
        P = Zp.copy()
        rz = np.einsum("ij,ij->j", R, Zp)
        active = np.linalg.norm(R, axis=0) / bnorm > self.tol
        negative = False
        it = 0
        while it < max_iter and active.any():
            idx = np.flatnonzero(active)
            HP = self._matvec(P[:, idx])
            pHp = np.einsum("ij,ij->j", P[:, idx], HP)
            bad = pHp <= 0
            if bad.any():
                negative = True
                active[idx[bad]] = False
                keep = ~bad
                idx, HP, pHp = idx[keep], HP[:, keep], pHp[keep]
                if idx.size == 0:
                    break
            alpha = rz[idx] / pHp
            X[:, idx] += alpha * P[:, idx]
            R[:, idx] -= alpha * HP
            Zn = self._precond[:, None] * R[:, idx]
            rz_new = np.einsum("ij,ij->j", R[:, idx], Zn)
            beta = rz_new / np.where(rz[idx] == 0, 1.0, rz[idx])
            P[:, idx] = Zn + beta * P[:, idx]
            rz[idx] = rz_new
            res = np.linalg.norm(R[:, idx], axis=0) / bnorm[idx]
            active[idx[res <= self.tol]] = False
            it += 1
        final_res = np.linalg.norm(B - self._matvec(X), axis=0) / bnorm
        self.n_iter_ = it
        self.max_residual_ = float(final_res.max()) if final_res.size else 0.0
        self.converged_ = bool(self.max_residual_ <= max(self.tol, 1e-12) * 10)
        self.negative_curvature_ = self.negative_curvature_ or negative
        self.history_.append((it, self.max_residual_))
        if negative:
            warnings.warn(
                "Conjugate gradients met a direction of non-positive curvature: the Hessian is "
                "not positive definite. Those columns were stopped early; increase `damping` "
                f"(currently {self.damping:.3g}) for a well-posed solve.",
                RuntimeWarning,
                stacklevel=3,
            )
        elif not self.converged_:
            warnings.warn(
                f"Conjugate gradients did not converge in {it} iterations: largest relative "
                f"residual {self.max_residual_:.3g} > tol={self.tol:.3g}. Increase max_iter or "
                "damping, or use solver='exact'.",
                RuntimeWarning,
                stacklevel=3,
            )
        X = self._project(X)
        return X[:, 0] if squeeze else X

    def info(self):
        out = super().info()
        out.update(
            n_iter=self.n_iter_,
            max_residual=self.max_residual_,
            converged=self.converged_,
            negative_curvature=self.negative_curvature_,
        )
        return out
