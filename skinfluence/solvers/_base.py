"""Common solver interface and the ``"auto"`` choice."""

import numpy as np
import scipy.sparse as sp

# Above this many parameters a dense factorisation (O(p^3) time, O(p^2) memory)
# stops being the cheap option and matrix-free CG takes over.
EXACT_MAX_PARAMS = 3000


class HessianSolver:
    """Solve ``(H + damping I) X = B`` for the Hessian of an objective.

    Subclasses implement :meth:`_prepare` and :meth:`solve`.  The structural
    null space of the objective (if any) is handled by every solver: right-hand
    sides are projected onto its complement, and so are the solutions, which is
    the pseudo-inverse on those directions.
    """

    name = "base"

    def __init__(self, damping=0.0):
        self.damping = float(damping)
        if self.damping < 0:
            raise ValueError(f"damping must be >= 0, got {damping}.")

    def prepare(self, objective):
        self.objective = objective
        self.null_space = objective.null_space()
        self.damping_ = self.damping
        self._prepare()
        return self

    def _prepare(self):
        raise NotImplementedError

    def solve(self, B):
        raise NotImplementedError

    def inverse(self):
        """Dense ``H^{-1}`` if the solver has it cheaply, else ``None``."""
        return None

    # helpers
    def _project(self, B):
        N = self.null_space
        if N is None:
            return B
        return B - N @ (N.T @ B)

    def info(self):
        """Dict of diagnostics stored on the estimator after fit."""
        return {"solver": self.name, "damping": self.damping_}


def make_solver(solver, objective, damping=0.0, tol=1e-10, max_iter=None, random_state=0):
    """Instantiate and prepare a solver by name for ``objective``.

    ``random_state`` seeds LiSSA's power iteration (fixed by default: same results every run).
    """
    from ._cg import CGSolver
    from ._exact import ExactSolver
    from ._lissa import LissaSolver

    if solver == "auto":
        p = objective.n_params
        X = getattr(objective, "X", None)
        sparse_wide = X is not None and sp.issparse(X) and p > 1000
        solver = "exact" if p <= EXACT_MAX_PARAMS and not sparse_wide else "cg"
    if solver == "exact":
        s = ExactSolver(damping=damping)
    elif solver == "cg":
        s = CGSolver(damping=damping, tol=tol, max_iter=max_iter)
    elif solver == "lissa":
        s = LissaSolver(damping=damping, tol=tol, max_iter=max_iter, random_state=random_state)
    elif isinstance(solver, HessianSolver):
        s = solver
    else:
        raise ValueError(
            f"solver must be 'auto', 'exact', 'cg', 'lissa' or a HessianSolver; got {solver!r}."
        )
    return s.prepare(objective)


def symmetric_scale(objective):
    """A typical diagonal magnitude of the Hessian, for relative thresholds."""
    d = np.abs(objective.hessian_diagonal())
    m = float(np.mean(d)) if d.size else 1.0
    return m if m > 0 else 1.0
