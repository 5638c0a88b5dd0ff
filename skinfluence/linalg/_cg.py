"""Batched, preconditioned conjugate gradients on Hessian-vector products."""

import warnings

import numpy as np

from ._solvers import HessianSolver


def _coldot(A, B):
    """Column-wise dot products of two (p, m) arrays."""
    return np.einsum("ij,ij->j", A, B, optimize=False)


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
        # Columns advance together; converged or stopped columns are frozen by zeroing their
        # step (masking) instead of gathering the active ones, which would copy the whole
        # block with strided reads every iteration.
        X = np.zeros_like(B)
        R = B.copy()
        bnorm = np.linalg.norm(B, axis=0)
        bnorm[bnorm == 0] = 1.0
        Zp = self._precond[:, None] * R
        P = Zp.copy()
        rz = _coldot(R, Zp)
        active = np.linalg.norm(R, axis=0) / bnorm > self.tol
        negative = False
        it = 0
        while it < max_iter and active.any():
            HP = self._matvec(P)
            pHp = _coldot(P, HP)
            bad = active & (pHp <= 0)
            if bad.any():
                negative = True
                active &= ~bad
            alpha = np.where(active, rz / np.where(pHp > 0, pHp, 1.0), 0.0)
            X += alpha * P
            R -= alpha * HP
            Zn = self._precond[:, None] * R
            rz_new = _coldot(R, Zn)
            beta = np.where(active, rz_new / np.where(rz == 0, 1.0, rz), 0.0)
            P *= beta
            P += Zn
            rz = rz_new
            res = np.linalg.norm(R, axis=0) / bnorm
            active &= res > self.tol
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
