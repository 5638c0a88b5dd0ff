"""LiSSA: the Neumann-series recursion of Agarwal, Bullins & Hazan (2017)."""

import warnings

import numpy as np

from ._solvers import HessianSolver


class LissaSolver(HessianSolver):
    """``H^{-1} b`` by the recursion ``v <- b + (I - (H + damping) / scale) v``, over ``scale``.

    The recursion converges when ``scale`` exceeds the largest eigenvalue of the
    damped Hessian; ``scale`` is set from a power iteration (times 1.05).  Each
    step is one batched Hessian-vector product on the full training set, so
    unlike the stochastic original this is deterministic; it is offered for
    comparison with the literature -- on convex models ``cg`` converges far faster.

    Parameters
    ----------
    damping : float
    tol : float
        Relative change of the iterate at which the recursion stops.
    max_iter : int or None
        Default 10000.
    random_state : int, default=0
        Seed of the power iteration start vector.  Fixed by default, so that
        ``scale`` and hence the results are the same on every run; ``None``
        draws a fresh start.
    """

    name = "lissa"

    def __init__(self, damping=0.0, tol=1e-10, max_iter=None, random_state=0):
        super().__init__(damping)
        self.tol = float(tol)
        self.max_iter = max_iter
        self.random_state = random_state

    def _matvec(self, V):
        return self._project(self.objective.hvp(V) + self.damping * V)

    def _prepare(self):
        rng = np.random.default_rng(self.random_state)
        v = self._project(rng.standard_normal(self.objective.n_params))
        lam = 1.0
        for _ in range(100):
            w = self._matvec(v)
            lam_new = float(np.linalg.norm(w))
            if lam_new == 0:
                break
            v = w / lam_new
            if abs(lam_new - lam) <= 1e-6 * lam_new:
                lam = lam_new
                break
            lam = lam_new
        self.scale_ = 1.05 * lam
        self.n_iter_ = 0
        self.converged_ = True

    def solve(self, B):
        B = self._project(np.asarray(B, dtype=np.float64))
        max_iter = self.max_iter if self.max_iter is not None else 10000
        V = B.copy()
        it = 0
        change = np.inf
        while it < max_iter:
            V_new = B + V - self._matvec(V) / self.scale_
            change = np.linalg.norm(V_new - V) / max(np.linalg.norm(V_new), 1e-300)
            V = V_new
            it += 1
            if change <= self.tol:
                break
        self.n_iter_ = it
        self.converged_ = bool(change <= self.tol)
        if not self.converged_:
            warnings.warn(
                f"LiSSA did not converge in {it} iterations (relative change {change:.3g}); "
                "the Hessian is probably ill-conditioned. Increase damping or use solver='cg'.",
                RuntimeWarning,
                stacklevel=3,
            )
        return self._project(V / self.scale_)

    def info(self):
        out = super().info()
        out.update(n_iter=self.n_iter_, converged=self.converged_, scale=self.scale_)
        return out
