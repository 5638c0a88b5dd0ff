"""Exact and iterative linear algebra on Hessians: the one home of ``H^{-1}``.

* :class:`CholeskyFactor` -- factorisation of a symmetric positive
  semi-definite matrix with known flat directions (pseudo-inverse on them),
  diagonal rescaling of badly scaled matrices and damping, with a warning, of
  singular or indefinite ones; solves and the explicit inverse.  Every exact
  inverse-Hessian product of the package goes through it; with
  ``on_singular="raise"`` it refuses a singular matrix with the caller's
  :class:`SingularMatrixError` message instead of damping it.
* :class:`HessianSolver` -- ``H^{-1} B`` for an
  :class:`~skinfluence.objectives.Objective`, with the implementations
  :class:`ExactSolver` (a :class:`CholeskyFactor` of the dense Hessian),
  :class:`CGSolver` (matrix-free, batched, Jacobi-preconditioned conjugate
  gradients on Hessian-vector products) and :class:`LissaSolver` (the LiSSA /
  Neumann-series recursion).
* :func:`make_solver` picks one by name (``"auto"`` chooses by parameter count
  and sparsity: dense up to :data:`EXACT_MAX_PARAMS` parameters).
* :func:`ridge_loo_path` -- exact leave-one-out errors of ridge regression for a
  grid of penalties from one SVD (chooses ``alpha`` without refits).
* :class:`FactoredSolver` -- the exact solver of a Hessian given as a matrix, e.g.
  summed over the row blocks of a dask array by :func:`tree_sum`.
"""

from ._blockwise import FactoredSolver, tree_sum
from ._cg import CGSolver
from ._factor import CholeskyFactor, SingularMatrixError
from ._lissa import LissaSolver
from ._ridge import ridge_loo_path
from ._solvers import EXACT_MAX_PARAMS, ExactSolver, HessianSolver, make_solver

__all__ = [
    "CholeskyFactor",
    "SingularMatrixError",
    "HessianSolver",
    "ExactSolver",
    "FactoredSolver",
    "CGSolver",
    "LissaSolver",
    "make_solver",
    "EXACT_MAX_PARAMS",
    "ridge_loo_path",
    "tree_sum",
]
