"""Matrices summed over row blocks of data, and the exact solver of such a matrix.

On data split in row blocks (a dask array on a cluster), the Hessian of a GLM is a sum
of ``p x p`` pieces, one per block.  :func:`tree_sum` adds the pieces as a tree of
tasks, so that no worker and not the client holds more than a few of them;
:class:`FactoredSolver` then factorises the sum once, on the client, with the same
:class:`~skinfluence.linalg.CholeskyFactor` as the in-memory exact solver.
"""

import numpy as np

from ._factor import CholeskyFactor
from ._solvers import ExactSolver


def add_pieces(*pieces):
    """Sum of ``pieces``, each an array or a tuple of arrays (summed element by element)."""
    first = pieces[0]
    if isinstance(first, tuple):
        return tuple(add_pieces(*parts) for parts in zip(*pieces))
    total = np.array(first, dtype=np.float64, copy=True)
    for piece in pieces[1:]:
        total += piece
    return total


def tree_sum(pieces, split_every=8):
    """The sum of ``pieces`` (``dask.delayed`` values) as a tree of delayed additions.

    Each task adds at most ``split_every`` pieces; the result is one delayed value, an
    array or a tuple of arrays as the pieces are.
    """
    from dask import delayed

    pieces = list(pieces)
    if not pieces:
        raise ValueError("tree_sum needs at least one piece.")
    add = delayed(add_pieces, pure=True)
    while len(pieces) > 1:
        groups = [pieces[i : i + split_every] for i in range(0, len(pieces), split_every)]
        pieces = [add(*group) if len(group) > 1 else group[0] for group in groups]
    return pieces[0]


class FactoredSolver(ExactSolver):
    """The exact solver of a Hessian given as a matrix rather than by an objective.

    For a Hessian assembled elsewhere, e.g. summed over the row blocks of data on a
    cluster (:func:`tree_sum`): it is factorised by
    :class:`~skinfluence.linalg.CholeskyFactor` as :class:`ExactSolver` factorises an
    objective's Hessian (pseudo-inverse on ``null_space``, diagonal scaling, damping
    with a warning), and the inverse is formed at once, so that the solver can be
    shipped to the tasks that use it.

    Parameters
    ----------
    hessian : ndarray of shape (p, p)
        The Hessian, penalty included.
    null_space : ndarray of shape (p, r) or None, default=None
        Known flat directions (``objective.null_space()``).
    damping : float, default=0.0
        Added to the diagonal.
    stacklevel : int, default=2
        Stack level of the damping warning, counted from the caller.

    Attributes
    ----------
    factor_ : CholeskyFactor
    damping_, min_eigenvalue_, null_space :
        As for :class:`ExactSolver`.
    """

    def __init__(self, hessian, null_space=None, damping=0.0, stacklevel=2):
        super().__init__(damping=damping)
        self.factor_ = CholeskyFactor(hessian, null_space, self.damping,
                                      stacklevel=stacklevel + 1)
        self.null_space = self.factor_.null_space_
        self.damping_ = self.factor_.damping_
        self.min_eigenvalue_ = self.factor_.min_eigenvalue_
        self.factor_.inverse()

    def prepare(self, objective):
        """Attach ``objective`` (nothing to factorise: the Hessian was given)."""
        self.objective = objective
        return self
