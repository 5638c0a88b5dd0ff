"""The Hessian solver interface, the exact solver and the ``"auto"`` choice."""

import scipy.sparse as sp

from ._factor import CholeskyFactor

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


class ExactSolver(HessianSolver):
    """Factorisation of the dense Hessian by :class:`CholeskyFactor`.

    Flat directions of the objective (``objective.null_space()``) get the
    pseudo-inverse, badly scaled Hessians are factorised after diagonal scaling,
    and a Hessian that is still numerically singular or indefinite is damped
    with a warning (see :class:`CholeskyFactor`).

    Attributes
    ----------
    damping_ : float
        The damping actually used (user damping plus any automatic damping).
    min_eigenvalue_ : float or None
        Smallest eigenvalue of the (null-space-lifted) Hessian when it had to be
        computed, else None.
    null_space : ndarray or None
        The flat directions, including decoupled parameters found by the
        factorisation.  All three are set by ``prepare``.
    """

    name = "exact"

    def _prepare(self):
        # stacklevel 3: the warning points at the caller of make_solver / prepare
        self.factor_ = CholeskyFactor(self.objective.hessian(), self.null_space,
                                      self.damping, stacklevel=3)
        self.null_space = self.factor_.null_space_
        self.damping_ = self.factor_.damping_
        self.min_eigenvalue_ = self.factor_.min_eigenvalue_

    def solve(self, B):
        return self.factor_.solve(B)

    def inverse(self):
        return self.factor_.inverse()

    def info(self):
        out = super().info()
        out["min_eigenvalue"] = self.min_eigenvalue_
        return out


def make_solver(solver, objective, damping=0.0, tol=1e-10, max_iter=None, random_state=0):
    """Instantiate and prepare a solver by name for ``objective``.

    ``random_state`` seeds LiSSA's power iteration (fixed by default: same results every run).
    """
    from ._cg import CGSolver
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
