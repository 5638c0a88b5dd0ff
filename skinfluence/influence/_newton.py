"""One Newton step of the objective without each point: the GLM rank-K Woodbury update.

For a model with ``K`` outputs the point's Gauss-Newton curvature
``w_j J_j^T S_j J_j`` has rank ``K``.  With the leverage ``M_j = J_j H^{-1} J_j^T``
the Newton step of the objective without ``j`` from the fitted parameters is

    dtheta_j = w_j H^{-1} J_j^T (I - w_j S_j M_j)^{-1} r_j,

one ``K x K`` solve per point on top of the first-order formula.  For GLMs this
curvature is the point's whole Hessian; for neural networks it leaves out the
network's own curvature (see ``_point_hessian.py``).
"""

import warnings

import numpy as np

from ..objectives._kernels import solve_small_systems
from ._first_order import FirstOrder, augmented

# the warnings point at the caller of fit: fit -> prepare -> _prepare -> here
_STACKLEVEL = 5


def leverages(objective, solver, Xf):
    """``M_j = J_j H^{-1} J_j^T`` for every row of ``Xf``: (n, K, K)."""
    Hinv = solver.inverse()
    return objective.jacobian_quadratic_forms(Xf, Hinv if Hinv is not None else solver.solve)


def woodbury_systems(M, S, w, r):
    """The ``K x K`` systems ``(I - w_j S_j M_j) c_j = r_j`` of the Newton steps.

    Returns ``(A, c, singular)``: the matrices, the solutions (``r_j`` where
    ``singular``, a pivot below 1e-12 of the largest) and the singular flags.
    """
    K = r.shape[1]
    A = np.eye(K)[None, :, :] - w[:, None, None] * np.einsum("ikl,ilm->ikm", S, M)
    c, singular = solve_small_systems(np.ascontiguousarray(A), np.ascontiguousarray(r))
    return A, c, singular


def smallest_eigenvalues(A):
    """Smallest real part of the eigenvalues of each ``(K, K)`` matrix of ``A``.

    Below 0.1 the Newton step amplifies the gradient tenfold or more: removing
    the point's curvature leaves the Hessian (nearly) indefinite.
    """
    return np.linalg.eigvals(A).real.min(axis=1)


class Newton(FirstOrder):
    """One Newton step of the objective without each point (rank-K Woodbury update).

    The influence on a query is the loss re-evaluated exactly at its new outputs.
    Points whose step is singular (leverage 1), or, for non-linear models, whose
    removal leaves the Hessian nearly indefinite, keep the first-order step, with
    a warning.
    """

    approximation = "newton"

    def _step_coefficients(self, r, S, XH):
        obj = self.objective
        if XH is not None:
            M = np.einsum("ip,ip->i", XH, augmented(obj, obj.X))[:, None, None]
        else:
            M = leverages(obj, self.solver, obj.X)
        A, c, singular = woodbury_systems(M, S, obj.weights, r)
        if not obj.linear_in_params:
            # non-convex models: removing the point's Gauss-Newton curvature can leave the
            # Hessian (nearly) indefinite, where the Newton step is meaningless
            near_indefinite = smallest_eigenvalues(A) < 0.1
            if near_indefinite.any():
                warnings.warn(
                    f"{int(near_indefinite.sum())} training point(s): removing their "
                    "curvature leaves the Hessian (nearly) indefinite; their influence uses "
                    "the first-order formula instead.",
                    RuntimeWarning,
                    stacklevel=_STACKLEVEL,
                )
                singular = singular | near_indefinite
        if singular.any():
            c[singular] = r[singular]
            self._report_first_order(singular)
        self.leverages = M
        return c

    def _report_first_order(self, singular):
        """Warn that the points ``singular`` (a mask) keep the first-order step."""
        warnings.warn(leverage_one_message(int(singular.sum())), RuntimeWarning,
                      stacklevel=_STACKLEVEL + 1)


def leverage_one_message(n_points, rows=None):
    """The warning about points of leverage 1 (``rows``: some of them, to name)."""
    named = "" if rows is None else " (training rows " + ", ".join(
        str(i) for i in rows[:10]) + (", ..." if len(rows) > 10 else "") + ")"
    return (f"{n_points} training point(s){named} have leverage 1: the model refit "
            "without them is not determined by the rest of the data (their Newton "
            "step is singular). Their influence uses the first-order formula instead.")
