"""Influence values in blocks: ``transform``, column sums and the blocks of ``explain``.

A block is the influence of a chunk of training points (columns) on a set of
query rows.  The parameter changes come from a prepared
:class:`~skinfluence.influence._base.Removal`; the loss (or output) change at each
query is exact at the new outputs under ``"newton"`` and linearised under
``"first_order"``.  The chunks run on the explainer's block runner
(:meth:`~skinfluence.base.BaseExplainer._run_blocks`).
"""

import threading

import numpy as np
import scipy.sparse as sp

from ..objectives._linear import LinearObjective
from ..utils._parallel import chunk_slices, effective_n_jobs
from . import _base
from ._first_order import augmented


class _Scratch(threading.local):
    """Buffers of one thread, reused by the blocks of one call instead of a fresh array each.

    A block of ``explain`` is a few MB: allocated anew per block, glibc may serve each from
    fresh ``mmap`` pages that are faulted in (zeroed) on first touch and unmapped on free --
    always so where ``MALLOC_TRIM_THRESHOLD_`` is set, as dask's nanny sets it for its worker
    processes, which made a block there several times slower than the arithmetic.
    """

    def get(self, name, shape):
        """A C-contiguous float64 array of ``shape`` on this thread's buffer ``name``."""
        size = int(np.prod(shape))
        buf = getattr(self, name, None)
        if buf is None or buf.size < size:
            buf = np.empty(size)
            setattr(self, name, buf)
        return buf[:size].reshape(shape)


class InfluenceBlocks:
    """Influence blocks of a prepared removal, computed over the chunks of an explainer.

    Parameters
    ----------
    removal : Removal
        The prepared removal approximation.
    explainer : BaseExplainer
        Its :meth:`~skinfluence.base.BaseExplainer._run_blocks` runs the chunks (threads
        under ``n_jobs``, progress under ``verbose``).
    """

    def __init__(self, removal, explainer):
        self.removal = removal
        self.objective = removal.objective
        self.explainer = explainer

    def _run(self, func, chunks, desc):
        """``func`` over ``chunks`` for its side effects, on the explainer's runner."""
        for _ in self.explainer._run_blocks(func, chunks, desc):
            pass

    # ---------------------------------------------------------- one block
    def block(self, Xf, Z0, y_enc, cols, out=None):
        """Influence values (n, m) of training points ``cols`` on the samples of ``Xf``.

        Written into ``out`` when given (a block of the result, possibly strided).
        """
        obj, removal = self.objective, self.removal
        V = removal.directions(cols)
        if y_enc is not None and removal.approximation == "first_order":
            # the classic formula is one GEMM: per-sample query gradients times dtheta
            r, _ = obj.loss_derivatives(Z0, y_enc)
            G = obj.vjp(Xf, r)
            vals = G @ V if out is None else np.matmul(G, V, out=out)
        else:
            D = obj.jvp(Xf, V)  # (n, K, m): output changes
            if y_enc is None:
                vals = obj.prediction_change(Z0, D)
                if out is not None:
                    out[...] = vals
                    vals = out
            else:
                vals = obj.loss_change(Z0, y_enc, D, out=out)
        self._refit_columns(Xf, Z0, y_enc, cols, vals)
        return vals

    def _refit_columns(self, Xf, Z0, y_enc, cols, vals):
        """Overwrite the columns of refit points with their exact effect (non-linear models).

        For models linear in their parameters the output change ``J dtheta`` is already
        exact; otherwise the outputs are recomputed at the refit parameters.
        """
        obj, refined = self.objective, self.removal.refined
        if obj.linear_in_params or not refined:
            return
        idx = np.arange(obj.n_train)[cols]
        for pos in np.flatnonzero(np.isin(idx, list(refined))):
            D = (obj.outputs(Xf, obj.theta + refined[idx[pos]]) - Z0)[:, :, None]
            if y_enc is None:
                vals[:, pos] = obj.prediction_change(Z0, D)[:, 0]
            else:
                vals[:, pos] = obj.loss_change(Z0, y_enc, D)[:, 0]

    # ------------------------------------------------------------- chunks
    def explain(self, Xf, Z0, y_enc, k):
        """Top-``k`` helpful and harmful training points of each query (the explain Bunch)."""
        n = Xf.shape[0]

        def rows_values(rows):  # the few rows whose equal values the reference orders
            y_rows = None if y_enc is None else y_enc[rows]
            return lambda cols: self.block(Xf[rows], Z0[rows], y_rows, cols)

        entries = min(_base.EXPLAIN_BLOCK_ENTRIES, _base.BLOCK_ENTRIES)
        fast = (self._query_block(Xf, Z0, y_enc), self.column_chunks(n, entries, 64),
                rows_values)
        return self.explainer._explain_blocks(lambda cols: self.block(Xf, Z0, y_enc, cols),
                                              self.column_chunks(n), n,
                                              self.objective.n_train, k, fast=fast)

    def _query_block(self, Xf, Z0, y_enc, absorb=False):
        """``(cols, out=None) -> (n, m)`` influence values: the values of :meth:`block`,
        with the query side built once instead of per block where that is possible.

        With the first-order formula (given targets) the block is ``G V`` for the query
        gradients ``G``; for one-output dense linear models under ``"newton"`` the loss is
        re-evaluated at the output changes ``X~ V``.  ``out`` may be a strided view (a
        column block of the result).  ``absorb``: see :meth:`_times_changes` (equal to
        rounding, so not for ``explain``, whose ties must be those of :meth:`block`).
        """
        obj, removal = self.objective, self.removal
        if y_enc is None or sp.issparse(Xf):
            return lambda cols, out=None: self.block(Xf, Z0, y_enc, cols, out=out)
        n, scratch = Xf.shape[0], _Scratch()

        def width(cols):
            return len(range(obj.n_train)[cols])

        if removal.approximation == "first_order":
            r, _ = obj.loss_derivatives(Z0, y_enc)
            times = self._times_changes(obj.vjp(Xf, r), absorb)  # query gradients G

            def first_order(cols, out=None):
                if out is None:
                    out = scratch.get("values", (n, width(cols)))
                vals = times(cols, out)
                self._refit_columns(Xf, Z0, y_enc, cols, vals)
                return vals

            return first_order
        if not (isinstance(obj, LinearObjective) and obj.linear_in_params
                and obj.n_outputs == 1):
            return lambda cols, out=None: self.block(Xf, Z0, y_enc, cols, out=out)
        # D = X~ V: the one-output jvp of a linear model
        times = self._times_changes(augmented(obj, Xf), absorb)

        def newton(cols, out=None):
            D = times(cols, scratch.get("changes", (n, width(cols))))
            if out is None:
                out = scratch.get("values", D.shape)
            return obj.loss_change(Z0, y_enc, D[:, None, :], out=out)

        return newton

    def _times_changes(self, Q, absorb):
        """``(cols, out=None) -> Q dtheta_cols`` for a query-side matrix ``Q`` (n, p).

        With ``absorb``, and parameter changes that are solved per block with an explicit
        ``H^{-1}``, the query side takes it once: ``(Q H^{-1}) (J^T c)_cols`` instead of
        ``Q (H^{-1} (J^T c)_cols)``, one ``p x p`` product per block fewer.
        """
        removal, obj = self.removal, self.objective
        Hinv = removal.solver.inverse()
        if not absorb or removal.cacheable or Hinv is None:
            return lambda cols, out=None: np.matmul(Q, removal.directions(cols), out=out)
        QH = Q @ Hinv
        rw = removal.reweighting
        QB = None if rw is None else Q @ rw.directions

        def times(cols, out=None):  # Removal._solve and _finish, with Q applied first
            vals = np.matmul(QH, obj.vjp_T(obj.X[cols], removal.coef[cols]), out=out)
            if QB is not None:
                vals -= QB @ rw.coef[cols].T
            if removal.refined:
                idx = np.arange(obj.n_train)[cols]
                for pos in np.flatnonzero(np.isin(idx, list(removal.refined))):
                    vals[:, pos] = Q @ removal.refined[idx[pos]]
            return vals

        return times

    def column_chunks(self, n_rows, entries=None, least=256):
        """Chunks of training points whose blocks over ``n_rows`` queries, and whose
        ``(n_params, m)`` parameter changes, hold about ``entries`` values (default
        ``BLOCK_ENTRIES``; at least ``least`` points each)."""
        entries = _base.BLOCK_ENTRIES if entries is None else entries
        K = self.objective.n_outputs
        size = max(least, entries // max(n_rows * K, self.objective.n_params, 1))
        return chunk_slices(self.objective.n_train, size)

    # ------------------------------------------------------------ results
    def query_side(self, n_queries, y):
        """Solve for the queries instead of the training points?

        With an iterative solver and the first-order formula, ``g_i^T H^{-1} g_j w_j``
        can be computed from ``H^{-1} g_i`` for the (usually few) queries: one
        solve per query instead of one per training point.
        """
        removal, obj = self.removal, self.objective
        return (
            y is not None
            and removal.approximation == "first_order"
            and not removal.cached
            and removal.solver.inverse() is None
            and n_queries * obj.n_outputs < obj.n_train
        )

    def transform(self, Xf, Z0, y_enc, out=None):
        """The influence matrix (n_queries, n_train), written into ``out`` when given.

        ``out`` (e.g. a memory-mapped file) is filled block by block: nothing of its
        size is allocated.
        """
        n, n_train, K = Xf.shape[0], self.objective.n_train, self.objective.n_outputs
        if out is None:
            out = np.empty((n, n_train))
        if self.query_side(n, y_enc):
            return self._transform_query_side(Xf, Z0, y_enc, out)
        if self.removal.ensure_cached():
            all_cols = slice(0, n_train)
            if y_enc is not None and self.removal.approximation == "first_order" and (
                    effective_n_jobs(self.explainer.n_jobs) <= 1):
                # the classic formula is a single GEMM into the output
                return self.block(Xf, Z0, y_enc, all_cols, out=out)
            # parameter changes are cached: blocks of query rows, each written in place
            rows_per_block = max(1, _base.ROW_BLOCK_ENTRIES // max(n_train * K, 1))

            def fill_rows(rows):
                y_rows = None if y_enc is None else y_enc[rows]
                self.block(Xf[rows], Z0[rows], y_rows, all_cols, out=out[rows])

            self._run(fill_rows, chunk_slices(n, rows_per_block), "influence")
            return out

        # chunks of training points, each solved once and written into its columns
        block = self._query_block(Xf, Z0, y_enc, absorb=True)

        def fill(cols):
            block(cols, out=out[:, cols])

        entries = min(_base.EXPLAIN_BLOCK_ENTRIES, _base.BLOCK_ENTRIES)
        self._run(fill, self.column_chunks(n, entries, 64), "influence")
        return out

    def _transform_query_side(self, Xf, Z0, y_enc, out):
        obj, removal = self.objective, self.removal
        r, _ = obj.loss_derivatives(Z0, y_enc)
        G = obj.vjp(Xf, r)  # (n, p) query gradients
        Q = removal.solver.solve(G.T)  # (p, n): H^{-1} g_i
        rw = removal.reweighting
        GB = None if rw is None else G @ rw.directions
        for cols in _base.parameter_chunks(obj):
            out[:, cols] = Q.T @ obj.vjp_T(obj.X[cols], removal.coef[cols])
            if rw is not None:  # dtheta_j also moves by -H^{-1} B coeff_j
                out[:, cols] -= GB @ rw.coef[cols].T
        return out

    def column_sums(self, Xf, Z0, y_enc, desc="values"):
        """Sum over the queries of every training point's influence: (n_train,).

        Taken over chunks of training points, each solved once and summed in the
        worker, so only ``n_train`` values are kept.
        """
        total = np.zeros(self.objective.n_train)

        def sums(cols):
            return cols, self.block(Xf, Z0, y_enc, cols).sum(axis=0)

        for cols, s in self.explainer._run_blocks(sums, self.column_chunks(Xf.shape[0]),
                                                  desc):
            total[cols] = s
        return total


def mean_influence(influence, X, y, row_entries):
    """Mean over the samples of ``influence.transform(X, y)``: (n_train,).

    Never materialises the ``n_samples x n_train`` matrix.  When the training
    points' parameter changes are cached (or the queries are solved for), summed
    over blocks of at most about ``row_entries`` values of query rows, each block
    reusing them; otherwise over chunks of training points, each solved once.

    Parameters
    ----------
    influence : InfluenceFunctions
        Fitted.
    X, y : array-like
        The samples (a DataFrame stays one, for a pipeline's column names).
    row_entries : int
        Budget of a block of query rows, in float64 entries.
    """
    blocks = influence._blocks()
    n, n_train = y.shape[0], influence.objective_.n_train
    # boosted trees' blocks choose rows or columns themselves: sum their transform
    by_rows = not hasattr(blocks, "column_sums")
    if by_rows or blocks.removal.ensure_cached() or blocks.query_side(n, y):
        total = np.zeros(n_train)
        rows = max(1, min(n, row_entries // max(n_train, 1)))
        for start in range(0, n, rows):
            block = slice(start, min(start + rows, n))
            Xb = X.iloc[block] if hasattr(X, "iloc") else X[block]
            total += np.asarray(influence.transform(Xb, y[block])).sum(axis=0)
        return total / n
    Xf, Z0, y_enc = influence._queries(X, y)
    return blocks.column_sums(Xf, Z0, y_enc) / n
