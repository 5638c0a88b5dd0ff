"""Curvature diagnostics of an MLP objective: extreme Hessian eigenvalues and damping.

The output of a multi-layer perceptron is not linear in its parameters, so the
Hessian of its objective may be indefinite at the fitted parameters.  These
functions back :meth:`~skinfluence.objectives.mlp.MLPObjective.min_eigenvalue`,
:meth:`~skinfluence.objectives.mlp.MLPObjective.curvature_report` and
:meth:`~skinfluence.objectives.mlp.MLPObjective.suggest_damping`: dense
eigenvalues up to ``EXACT_MAX_PARAMS`` parameters, Lanczos on Hessian-vector
products above.
"""

import warnings

import numpy as np

from ..linalg import EXACT_MAX_PARAMS


def min_eigenvalue(obj, theta=None, gauss_newton=False):
    """Smallest eigenvalue of the Hessian (or Gauss-Newton matrix) of ``obj``."""
    if obj.n_params <= EXACT_MAX_PARAMS:
        H = obj.gauss_newton(theta) if gauss_newton else obj.hessian(theta)
        return float(np.linalg.eigvalsh(H)[0])
    from scipy.sparse.linalg import LinearOperator, eigsh

    prod = obj.gauss_newton_hvp if gauss_newton else obj.hvp
    op = LinearOperator(
        (obj.n_params, obj.n_params), matvec=lambda v: prod(np.ravel(v), theta),
        dtype=np.float64,
    )
    val = eigsh(op, k=1, which="SA", return_eigenvectors=False, tol=1e-6, maxiter=5000)
    return float(val[0])


def curvature_report(obj, theta=None):
    """Dict with the smallest / largest Hessian eigenvalues and whether damping is needed."""
    if obj.n_params <= EXACT_MAX_PARAMS:
        ev = np.linalg.eigvalsh(obj.hessian(theta))
        lo, hi = float(ev[0]), float(ev[-1])
    else:
        from scipy.sparse.linalg import LinearOperator, eigsh

        op = LinearOperator(
            (obj.n_params, obj.n_params), matvec=lambda v: obj.hvp(np.ravel(v), theta),
            dtype=np.float64,
        )
        lo = float(eigsh(op, k=1, which="SA", return_eigenvectors=False, tol=1e-6)[0])
        hi = float(eigsh(op, k=1, which="LA", return_eigenvectors=False, tol=1e-6)[0])
    return {"min_eigenvalue": lo, "max_eigenvalue": hi, "positive_definite": lo > 0}


def suggest_damping(obj, theta=None, relative=1e-8):
    """Smallest damping making ``H + lam I`` positive definite off the null space, with a
    warning (0.0 when ``H`` is positive definite already)."""
    rep = curvature_report(obj, theta)
    lo, hi = rep["min_eigenvalue"], rep["max_eigenvalue"]
    N = obj.null_space()
    if N is not None and obj.n_params <= EXACT_MAX_PARAMS:
        # eigenvalues on the complement of the structural null space
        H = obj.hessian(theta)
        Q, _ = np.linalg.qr(np.column_stack([N, np.eye(obj.n_params)]))
        Q = Q[:, N.shape[1] :]
        lo = float(np.linalg.eigvalsh(Q.T @ H @ Q)[0])
    if lo > 0:
        return 0.0
    lam = -lo + relative * max(1.0, abs(hi))
    warnings.warn(
        f"The MLP's Hessian is not positive definite at the fitted parameters (smallest "
        f"eigenvalue {lo:.3g}, largest {hi:.3g}); damping with {lam:.3g} * I.",
        RuntimeWarning,
        stacklevel=3,  # the caller of MLPObjective.suggest_damping
    )
    return lam
