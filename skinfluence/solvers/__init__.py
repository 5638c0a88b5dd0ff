"""Inverse-Hessian products ``H^{-1} B`` for an :class:`~skinfluence.objectives.Objective`.

* :class:`ExactSolver` -- Cholesky factorisation of the dense Hessian (with a
  pseudo-inverse on the objective's documented flat directions and damping,
  with a warning, when the Hessian is not positive definite or too ill-conditioned);
* :class:`CGSolver` -- matrix-free, batched, Jacobi-preconditioned conjugate
  gradients on Hessian-vector products;
* :class:`LissaSolver` -- the LiSSA / Neumann-series recursion.

:func:`make_solver` picks one by name (``"auto"`` chooses by parameter count
and sparsity).
"""

from ._base import HessianSolver, make_solver
from ._cg import CGSolver
from ._exact import ExactSolver
from ._lissa import LissaSolver

__all__ = ["HessianSolver", "ExactSolver", "CGSolver", "LissaSolver", "make_solver"]
