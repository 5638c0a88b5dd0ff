"""The interface every removal approximation implements, and what they share.

A removal approximation predicts ``dtheta_j``, the change of the fitted parameters
when training point ``j`` is removed and the model refit.  Every approximation in
this package writes it as

    dtheta_j = H^{-1} J_j^T coef_j  -  R coef'_j   (+ exact refits swapped in)

with ``coef`` (n, K) per-point coefficients in output space and an optional
:class:`Reweighting` term ``R coef'_j`` for weights that depend on the training
set.  The estimator and the block runner only use :class:`Removal`'s methods.
"""

from typing import NamedTuple

import numpy as np

from ..utils._parallel import chunk_slices

# Influence blocks are materialised this many float64 entries at a time (16 MiB): large
# enough for full-speed products, small next to the data (a block has a few temporaries).
BLOCK_ENTRIES = 1 << 21
# The blocks of explain are folded into the top-k right after their product: about this many
# entries (4 MiB) keep them in the cache between the two.
EXPLAIN_BLOCK_ENTRIES = 1 << 19
# Row blocks written straight into the output can be larger: fewer passes over dtheta.
ROW_BLOCK_ENTRIES = 1 << 25
# Parameter changes of all training points are cached when they fit in this many entries.
CACHE_ENTRIES = 1 << 26
# ... but for models linear in their parameters with a dense inverse Hessian only up to this
# many (32 MiB): a block of them is then one (p, p) product away, while all of them are as
# large as the data (K times) and would set the peak memory of large data sets.
LINEAR_CACHE_ENTRIES = 1 << 22


def cache_budget(objective, solver):
    """Largest ``n_params * n_train`` whose parameter changes are all kept in memory."""
    if objective.linear_in_params and solver.inverse() is not None:
        return min(CACHE_ENTRIES, LINEAR_CACHE_ENTRIES)
    return CACHE_ENTRIES


def parameter_chunks(objective):
    """Slices of training points whose ``(n_params, m)`` blocks hold about BLOCK_ENTRIES."""
    return chunk_slices(objective.n_train, max(1, BLOCK_ENTRIES // max(objective.n_params, 1)))


class Reweighting(NamedTuple):
    """Removing point ``j`` also moves ``dtheta_j`` by ``-directions @ coef[j]``.

    For weights that depend on the training set (balanced class weights, means over
    it); see :meth:`skinfluence.objectives.Objective.removal_reweighting`.
    """

    directions: np.ndarray  # (p, q): H^{-1} B
    coef: np.ndarray  # (n, q)


class SelfSide(NamedTuple):
    """Each training point's leave-one-out outputs (n, K) and self-influence (n,)."""

    loo_outputs: np.ndarray
    self_influence: np.ndarray


class Removal:
    """Predicted parameter changes ``dtheta_j`` of the refits without each training point.

    One subclass per approximation.  :meth:`prepare` does the training-side work
    once; :meth:`set_refined` swaps in exact refits; everything else only reads.

    Parameters
    ----------
    verbose : int, default=0
        Progress bars on long loops when positive.

    Attributes
    ----------
    approximation : {"newton", "first_order"}
        How a parameter change becomes a loss change: the loss re-evaluated at the
        new outputs (``"newton"``) or its linearisation (``"first_order"``).
    objective : Objective
    solver : HessianSolver
    train_outputs : ndarray of shape (n_train, K)
        Outputs of the training points at the fitted parameters.
    coef : ndarray of shape (n_train, K)
        ``dtheta_j = H^{-1} J_j^T coef_j`` before the reweighting term.
    reweighting : Reweighting or None
    leverages : ndarray of shape (n_train, K, K) or None
        ``M_j = J_j H^{-1} J_j^T`` when the approximation computed them.
    cacheable : bool
        All parameter changes fit in memory (they are then computed once).
    refined : dict
        Training point -> exact ``dtheta_j`` of its refit (see ``_refit.py``).
    """

    approximation = "first_order"

    def __init__(self, verbose=0):
        self.verbose = verbose

    # ------------------------------------------------------------ set-up
    def prepare(self, objective, solver):
        """Training-side work: coefficients, leverages, directions where cheap."""
        self.objective, self.solver = objective, solver
        self.train_outputs = objective.outputs(objective.X)
        self.coef = self.reweighting = self.leverages = None
        self.cacheable = objective.n_params * objective.n_train <= cache_budget(objective,
                                                                               solver)
        self.refined = {}
        self._directions = None
        self._self_side = None
        r, S = objective.loss_derivatives(self.train_outputs, objective.y)
        self._prepare(r, S)
        return self

    def _prepare(self, r, S):
        """Set ``coef`` (and anything else) from the loss derivatives at the fit."""
        raise NotImplementedError

    def _set_coefficients(self, c):
        """``coef = w c`` and the reweighting term of weights that move on removal."""
        obj = self.objective
        self.coef = obj.weights[:, None] * c
        rw = obj.removal_reweighting()
        if rw is not None:
            factor, B, coeff = rw
            self.coef *= factor[:, None]
            self.reweighting = Reweighting(self.solver.solve(B), coeff)

    def blocks(self, explainer):
        """The influence blocks of ``transform`` / ``explain`` over this removal, run by
        ``explainer``'s block runner (each family of removals has its own)."""
        from ._blocks import InfluenceBlocks  # _blocks builds on this module

        return InfluenceBlocks(self, explainer)

    def set_refined(self, refined):
        """Use the exact parameter changes ``refined`` (point -> dtheta) from now on."""
        self.refined = refined
        if self._directions is not None:
            for j, v in refined.items():
                self._directions[:, j] = v
        self._self_side = None

    # ------------------------------------------------------- directions
    @property
    def cached(self):
        """Whether the parameter changes of all points are held in memory."""
        return self._directions is not None

    def ensure_cached(self):
        """Compute and cache all parameter changes if they fit in memory; True if cached."""
        if self._directions is None and self.cacheable:
            self._directions = self._solve(slice(0, self.objective.n_train))
        return self._directions is not None

    def directions(self, cols):
        """Parameter changes ``dtheta_j`` (p, m) of training points ``cols`` (slice or indices)."""
        if self.ensure_cached():
            return self._directions[:, cols]
        return self._solve(cols)

    def _solve(self, cols):
        obj = self.objective
        RHS = obj.vjp_T(obj.X[cols], self.coef[cols])
        Hinv = self.solver.inverse()
        V = Hinv @ RHS if Hinv is not None else self.solver.solve(RHS)
        return self._finish(V, cols)

    def _finish(self, V, cols):
        """Add the reweighting term and swap in exactly refit columns."""
        if self.reweighting is not None:
            V -= self.reweighting.directions @ self.reweighting.coef[cols].T
        if self.refined:
            idx = np.arange(self.objective.n_train)[cols]
            for pos in np.flatnonzero(np.isin(idx, list(self.refined))):
                V[:, pos] = self.refined[idx[pos]]
        return V

    # -------------------------------------------------------- self side
    def self_outputs(self):
        """Each training point's change of its own output, ``J_j dtheta_j``: (n, K).

        Exact at the refit parameters for refined points (re-evaluated for models
        that are not linear in their parameters).
        """
        obj = self.objective
        n, K = obj.n_train, obj.n_outputs
        if self.leverages is not None:
            dz = np.einsum("ikl,il->ik", self.leverages, self.coef)
            if self.reweighting is not None:
                rw = self.reweighting
                dz -= np.einsum("ikq,iq->ik", obj.jvp(obj.X, rw.directions), rw.coef)
        else:
            dz = np.empty((n, K))
            for sl in parameter_chunks(obj):
                dz[sl] = obj.jvp_diagonal(obj.X[sl], self.directions(sl))
        for j, v in self.refined.items():
            Xj = obj.X[j : j + 1]
            if obj.linear_in_params:
                dz[j] = obj.jvp(Xj, v[:, None])[0, :, 0]
            else:
                dz[j] = obj.outputs(Xj, obj.theta + v)[0] - self.train_outputs[j]
        return dz

    def self_side(self):
        """Leave-one-out outputs and self-influence of the training points (cached)."""
        if self._self_side is not None:
            return self._self_side
        obj = self.objective
        Z = self.train_outputs
        dz = self.self_outputs()
        if self.approximation == "newton":
            self_influence = obj.loss_change(Z, obj.y, dz[:, :, None])[:, 0]
        else:
            r, _ = obj.loss_derivatives(Z, obj.y)
            self_influence = np.einsum("ik,ik->i", r, dz)
            if self.refined:  # refit points: the exact change of their loss
                js = np.fromiter(self.refined, dtype=np.intp)
                self_influence[js] = obj.loss_change(
                    Z[js], obj.y[js], dz[js][:, :, None]
                )[:, 0]
        self._self_side = SelfSide(Z + dz, self_influence)
        return self._self_side
