"""The first-order influence function of Koh & Liang (2017)."""

import numpy as np
import scipy.sparse as sp

from . import _base
from ._base import Removal


def augmented(objective, Xf):
    """``[X, 1]`` when the GLM fits an intercept, else ``X``."""
    if objective.fit_intercept:
        return np.hstack([Xf, np.ones((Xf.shape[0], 1))])
    return Xf


def single_output_products(objective, solver):
    """``[X, 1] @ H^{-1}`` (n, p) for one-output dense GLMs with an explicit inverse, else None.

    One GEMM then serves both the leverages (rowwise ``x~_j . A_j``) and the
    parameter changes (``A_j^T`` scaled by the point's coefficient).
    """
    Hinv = solver.inverse()
    if (
        Hinv is None
        or not objective.linear_in_params
        or objective.n_outputs != 1
        or sp.issparse(objective.X)
        or objective.n_params * objective.n_train > _base.cache_budget(objective, solver)
    ):
        return None
    return augmented(objective, objective.X) @ Hinv


class FirstOrder(Removal):
    """``dtheta_j = H^{-1} w_j g_j``: the parameter change to first order in ``w_j``.

    The influence of ``j`` on a query's loss is its linearisation
    ``g_i^T dtheta_j``.  Subclasses replace the per-point coefficients
    (:meth:`_step_coefficients`) and keep the rest.
    """

    approximation = "first_order"

    def _prepare(self, r, S):
        XH = single_output_products(self.objective, self.solver)
        self._set_coefficients(self._step_coefficients(r, S, XH))
        if self.cacheable and XH is not None:
            XH *= self.coef  # rows become dtheta_j^T (before reweighting)
            n = self.objective.n_train
            self._directions = self._finish(np.ascontiguousarray(XH.T), slice(0, n))
        # otherwise computed on first use (ensure_cached): leave-one-out outputs and
        # self-influence under "newton" only need the leverages

    def _step_coefficients(self, r, S, XH):
        """Per-point coefficients ``c_j`` with ``dtheta_j = H^{-1} J_j^T w_j c_j``."""
        return r
