"""Removal approximations of gradient-boosted trees (HistGradientBoosting, GradientBoosting).

The tree structures (splits, thresholds, categorical bitsets) stay those of the fitted
model; what a removal changes is the baseline and every leaf value, because each
iteration's gradients move with the outputs of the earlier ones.

* ``"leaf_refit"``: the leaf values recomputed exactly, iteration by iteration, with
  the point's weight set to 0 (the fixed-structure refit; ``O(n T)`` per point).
* ``"leaf_influence"``: the first-order form of that refit (its derivative in the
  point's weight, carried through every later tree).  Computed forward (one pass per
  training point) or backward (one pass per query output), whichever is fewer.
* ``"boostin"``: the trajectory estimate of Brophy et al. (2023): each tree's leaf
  changes only through the point's own gradient (no propagation), and the query's
  loss is linearised with its gradient at that iteration.
* ``"boostin_final"``: the same leaf changes, summed into the query's final outputs:
  with nothing propagating to later trees (BoostIn's premise), the refit's output is
  the model's plus that sum, and its loss is evaluated there, like the other methods'.
* ``"boostin_contribution"``: the point's share of each leaf value it sits in,
  ``-w_j lr g_j / (H + l2)`` (the leaf's Hessian sum held fixed, as TracIn holds the
  step size), summed into the query's final outputs as in ``"boostin_final"``.  The
  shares of all points add up to the model's outputs minus the baseline, so the
  predicted effect of removing a set is the sum of its members'.
* ``"boostin_contribution_greedy"``: a removal ORDER per query (set-aware).  Starting
  from nothing removed, rows are removed in steps of 1, 1, 2, 4, ... (as many as are
  already out); before each step the model is refit with the removed rows' weights 0
  (structures fixed, baseline and every leaf re-derived, as ``"leaf_refit"``), the
  remaining rows' ``"boostin_contribution"`` shares are taken in that refit, and the
  step removes the rows whose shares raise the query's loss most, while it rises; the
  rest keep their marginal at the last state, in decreasing order.  ``transform[e, j]``
  is row ``j``'s marginal predicted rise of query ``e``'s loss at the state where it
  was ranked (the first state's are ``"boostin_contribution"``'s); ``explain`` lists
  the helpful rows in removal order (the values need not decrease along it) and the
  harmful ones by those marginals.  Self-influence is the single removal's, i.e.
  ``"boostin_contribution"``'s.  Cost: one refit pass per step per query,
  ``O(n T log n)``.

``loss_i(model without j) - loss_i(model)`` is evaluated exactly at the predicted
outputs for all but ``"boostin"``.  Training rows held out by early stopping did not grow
the trees and have zero influence (their effect on when training stopped is not
modelled).
"""

import numpy as np

from ..base import run_blocks, top_k_over_blocks
from ..objectives import split_pipeline
from ..trees import _boosting_kernels as kernels
from ..trees._gb import GradientBoostingModel, is_gradient_boosting
from ..trees._hgb import BoostedModel, is_hist_gradient_boosting
from ..utils._parallel import chunk_slices
from ._base import SelfSide

APPROXIMATIONS = ("leaf_refit", "leaf_influence", "boostin", "boostin_final",
                  "boostin_contribution", "boostin_contribution_greedy")
_BOOSTIN = ("boostin", "boostin_final", "boostin_contribution", "boostin_contribution_greedy")
_SHARES = ("boostin_contribution", "boostin_contribution_greedy")
_GREEDY = "boostin_contribution_greedy"
# query-side and training-side blocks hold about this many float64 entries
_BLOCK_ENTRIES = 1 << 22
# boostin: a leaf holding more than this share of the (query, training row) pairs of a
# block is added by a matrix product rather than scattered (see _dense_leaves)
_DENSE_SHARE = 0.05


def is_boosted(fitted):
    """Whether the fitted model (or a Pipeline's last step) is a boosting model."""
    final = split_pipeline(fitted)[1]
    return is_hist_gradient_boosting(final) or is_gradient_boosting(final)


def read_boosted(final, preprocessing=None):
    """The fitted HistGradientBoosting or GradientBoosting model as flat arrays."""
    if is_gradient_boosting(final):
        return GradientBoostingModel(final, preprocessing=preprocessing)
    return BoostedModel(final, preprocessing=preprocessing)


def prepare_boosting(fitted, X, y, sample_weight, approximation, n_jobs=None, verbose=0):
    """The model read with its training data, its prepared removal and the resolved
    approximation (``"auto"`` is ``"leaf_influence"``)."""
    if approximation not in APPROXIMATIONS + ("auto",):
        raise ValueError(
            f"approximation={approximation!r} applies to models with parameters; for "
            f"gradient-boosted trees use one of {', '.join(map(repr, APPROXIMATIONS))} "
            "or 'auto'.")
    approximation = "leaf_influence" if approximation == "auto" else approximation
    pre, final = split_pipeline(fitted)
    model = read_boosted(final, pre).attach(X, y, sample_weight)
    removal = BoostingRemoval(approximation, n_jobs=n_jobs, verbose=verbose).prepare(model)
    return model, removal, approximation


class BoostingRemoval:
    """Predicted effect of removing each training point from a boosted model.

    Parameters
    ----------
    approximation : str
        One of :data:`APPROXIMATIONS`.
    n_jobs : int or None
        Threads over blocks.
    verbose : int
        Progress bars when positive.
    """

    def __init__(self, approximation, n_jobs=None, verbose=0):
        self.approximation = approximation
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------ set-up
    def prepare(self, model):
        """Record the fit of ``model`` (a :class:`~skinfluence.trees._hgb.BoostedModel`
        with its training data attached) in float64."""
        m = model
        self.model = m
        rows = m.rows
        self.y, self.w = m.y_train[rows], m.weights[rows]
        self.leaves = np.ascontiguousarray(m.apply_binned(m.binned(m.X_train[rows])))
        n, K, T = rows.size, m.n_outputs, m.n_iter
        self.base64 = m.intercept(self.y, self.w)
        F = np.tile(self.base64, (n, 1))
        self.values64 = np.empty(m.n_leaves)
        self.H = np.empty(m.n_leaves)
        self.g, self.h, self.r = (np.empty((T, n, K)) for _ in range(3))
        kernels.record_fit(m.loss, self.y, self.w, self.leaves, F, m.leaf_start, m.fixed_zero,
                           T, m.learning_rate, m.l2_regularization, self.values64, self.H,
                           self.g, self.h, self.r, m.leaf_eps)
        m.check_values(self.values64)
        self.F64 = F
        self.base_deriv = m.intercept_derivatives(self.y, self.w)
        self._train_outputs = None
        self.refined = {}
        self._self_side = None
        if self.approximation in _BOOSTIN:
            self._prepare_boostin()
        return self

    def _prepare_boostin(self):
        m = self.model
        direct = kernels.direct_leaf_changes(
            self.w, self.leaves, m.fixed_zero, m.learning_rate, m.l2_regularization,
            self.values64, self.H, self.g, self.h, m.leaf_eps,
            own_share=self.approximation in _SHARES)
        self.ptr, self.idx = kernels.leaf_members(self.leaves, m.n_leaves)
        leaf_of = np.repeat(np.arange(m.n_leaves), np.diff(self.ptr))
        self.coef = direct[m.leaf_tree[leaf_of], self.idx]
        self.direct = direct

    @property
    def train_outputs(self):
        """The model's outputs (n_train, K) at its training rows, routed on first use
        (self-influence and leave-one-out predictions need them, the matrix does not)."""
        if self._train_outputs is None:
            self._train_outputs = self.model.outputs(self.model.X_train)
        return self._train_outputs

    # ------------------------------------------------------- directions
    @property
    def n_train(self):
        return self.model.n_train

    def _columns(self, cols):
        """Training rows (positions within ``model.rows``) of full-data columns ``cols``."""
        idx = np.arange(self.n_train)[cols]
        pos = self.model.row_position[idx]
        return idx, pos

    def _forward(self, pos):
        """Leaf-value changes (L, m), baseline changes (K, m) and own-output changes (m, K)
        of removing the training rows ``pos`` (forward methods)."""
        m = self.model
        V = np.empty((m.n_leaves, pos.size))
        own = np.empty((pos.size, m.n_outputs))
        if self.approximation == "leaf_refit":
            bases = m.intercepts_without(self.y, self.w, pos)
            kernels.leaf_refit_columns(
                m.loss, self.y, self.w, self.leaves, pos, bases, m.leaf_start, m.fixed_zero,
                m.n_iter, m.learning_rate, m.l2_regularization, self.values64, V, own,
                m.leaf_eps)
            own -= self.F64[pos]
            return V, (bases - self.base64).T, own
        base_change = -self.w[pos, None] * self.base_deriv[pos]
        kernels.leaf_influence_columns(
            m.loss == kernels.MULTINOMIAL, self.w, self.leaves, pos,
            self.base_deriv[pos], m.leaf_start, m.fixed_zero, m.learning_rate,
            m.l2_regularization, self.values64, self.H, self.g, self.h, self.r, V, own,
            m.leaf_eps)
        return V, base_change.T, own

    def directions(self, cols):
        """Predicted changes (K + L, m) of the baseline and every leaf value when each
        training point of ``cols`` is removed (zero for rows that did not grow trees)."""
        if self.approximation in _BOOSTIN:
            raise ValueError(f"approximation={self.approximation!r} predicts loss changes "
                             "from each tree's leaf alone, not parameter changes through "
                             "all later trees; use "
                             "'leaf_influence' or 'leaf_refit'.")
        m = self.model
        idx, pos = self._columns(cols)
        out = np.zeros((m.n_outputs + m.n_leaves, idx.size))
        used = pos >= 0
        if used.any():
            V, db, _ = self._forward(pos[used])
            out[:m.n_outputs, used] = db
            out[m.n_outputs:, used] = V
        return out

    def ensure_cached(self):
        return False

    cached = False

    # ------------------------------------------------------------ blocks
    def _effect(self, Z0, y_enc, D):
        """Loss (or prediction) changes (n, m) of output changes ``D`` (n, K, m)."""
        m = self.model
        if y_enc is None:
            return m.prediction_change(Z0, D)
        return m.loss_change(Z0, y_enc, D)

    def _column_block(self, q_leaves, Z0, y_enc, cols):
        """Influence (n_q, m) of the training columns ``cols`` by a forward method."""
        m = self.model
        idx, pos = self._columns(cols)
        out = np.zeros((q_leaves.shape[1], idx.size))
        used = np.flatnonzero(pos >= 0)
        if used.size:
            V, db, _ = self._forward(pos[used])
            D = np.empty((q_leaves.shape[1], m.n_outputs, used.size))
            kernels.gather_output_changes(q_leaves, m.tree_output, V, db, D)
            out[:, used] = self._effect(Z0, y_enc, D)
        return out

    def _row_block(self, q_leaves, Z0, y_enc, out=None):
        """Influence (n_rows, n_train) of every training point on a block of queries, by a
        backward method (``leaf_influence``) or the trajectory sums (``boostin``);
        written into ``out`` when given."""
        rows = self.model.rows
        every_row = rows.size == self.n_train
        if out is None:
            out = np.zeros((Z0.shape[0], self.n_train))
        elif not every_row:
            out[...] = 0.0
        if self.approximation in _BOOSTIN:
            vals = out if every_row else np.empty((Z0.shape[0], rows.size))
            if self.approximation == "boostin":
                self._boostin_rows(q_leaves, Z0, y_enc, vals)
            elif self.approximation == _GREEDY:
                vals[...] = self._greedy_rows(q_leaves, Z0, y_enc)[0]
            else:
                self._boostin_final_rows(q_leaves, Z0, y_enc, vals)
        else:
            vals = self._reverse_rows(q_leaves, Z0, y_enc)
            if every_row:
                out[...] = vals
        if not every_row:
            out[:, rows] = vals
        return out

    def _tracked_outputs(self, Z0, y_enc):
        """Outputs a query needs: all K for losses, the predicted class's without y."""
        K = self.model.n_outputs
        if y_enc is None or K == 1:
            k = np.argmax(Z0, axis=1) if K > 1 else np.zeros(Z0.shape[0], dtype=np.int64)
            return k[:, None]
        return np.tile(np.arange(K), (Z0.shape[0], 1))

    def _reverse_rows(self, q_leaves, Z0, y_enc):
        m = self.model
        outs = self._tracked_outputs(Z0, y_enc)
        nq, nk = outs.shape
        rep = np.repeat(np.arange(nq), nk)
        grads = np.empty((nq * nk, self.y.size))
        kernels.leaf_influence_rows(
            m.loss == kernels.MULTINOMIAL, self.w, self.leaves,
            np.ascontiguousarray(q_leaves[:, rep]), outs.ravel().astype(np.int64),
            self.base_deriv, m.leaf_start, m.fixed_zero, m.learning_rate, m.l2_regularization,
            self.values64, self.H, self.g, self.h, self.r, grads, m.leaf_eps)
        D = np.zeros((nq, m.n_outputs, self.y.size))
        D[rep, outs.ravel()] = grads
        return self._effect(Z0, y_enc, D)

    def _boostin_rows(self, q_leaves, Z0, y_enc, out):
        m = self.model
        nq, K = Z0.shape[0], m.n_outputs
        if y_enc is None:
            tracked = self._tracked_outputs(Z0, None)[:, 0]
            weights = (m.tree_output[:, None] == tracked[None, :]).astype(np.float64)
            g0 = np.zeros((nq, K))
            g0[np.arange(nq), tracked] = 1.0
        else:
            weights, g0 = self._query_gradients(q_leaves, y_enc)
        self._shared_sums(q_leaves, weights, g0, out)
        if y_enc is None and m.loss in (kernels.POISSON, kernels.GAMMA):
            out *= np.exp(Z0)  # d predict = exp(z) dz for the log link
        return out

    def _shared_sums(self, q_leaves, weights, g0, out):
        """``out[e, j] = g0[e] . db_j + sum_s weights[s, e] * dv_s(j)`` over the trees in
        which ``j`` shares query ``e``'s leaf (``db_j`` the baseline's change, ``dv_s(j)``
        the leaf's direct change when ``j`` is removed)."""
        # The baseline's change is shared by every query (rank K), and so is, in each
        # tree, the change of a leaf holding a large share of both the queries and the
        # training rows: one matrix product adds those; the rest is scattered per leaf.
        m = self.model
        dense = self._dense_leaves(q_leaves)
        cols = np.flatnonzero(dense)
        tree = m.leaf_tree[cols]
        U = np.where(q_leaves[tree].T == cols, weights[tree].T, 0.0)
        V = np.where(self.leaves[tree].T == cols, self.direct[tree].T, 0.0)
        np.matmul(np.hstack([g0, U]), np.hstack([-self.w[:, None] * self.base_deriv, V]).T,
                  out=out)
        kernels.shared_leaf_rows(q_leaves, weights, self.ptr, self.idx, self.coef, dense, out)

    def _boostin_final_rows(self, q_leaves, Z0, y_enc, out):
        """Loss (or prediction) changes at the queries' final outputs moved by the sum of
        the direct leaf changes they share with each training point, into ``out``
        (n_q, n_rows)."""
        m = self.model
        nq, K = Z0.shape[0], m.n_outputs
        if K == 1 and y_enc is not None:  # one output: its change, then the loss in place
            self._shared_sums(q_leaves, np.ones((m.n_trees, nq)), np.ones((nq, 1)), out)
            kernels.scalar_loss_change(m.loss, Z0[:, 0], y_enc, out)
            return out
        out[...] = self._effect(Z0, y_enc, self._output_moves(q_leaves))
        return out

    def _output_moves(self, q_leaves):
        """``(n_q, K, n)``: each query output's move when each row's shares leave the leaves
        it shares with the query (the trees of that output only)."""
        m = self.model
        nq, K, n = q_leaves.shape[1], m.n_outputs, self.y.size
        D = np.empty((nq, K, n))
        part = np.empty((nq, n))
        for k in range(K):
            weights = np.repeat((m.tree_output == k).astype(np.float64)[:, None], nq, axis=1)
            g0 = np.zeros((nq, K))
            g0[:, k] = 1.0
            self._shared_sums(q_leaves, weights, g0, part)
            D[:, k] = part
        return D

    def _greedy_rows(self, q_leaves, Z0, y_enc):
        """Marginal predicted rises (n_q, n_rows) and removal orders (n_q, n_rows) of
        ``boostin_contribution_greedy`` (rows as positions in ``model.rows``)."""
        if y_enc is None:
            raise ValueError(
                "approximation='boostin_contribution_greedy' orders the rows by how much "
                "their removal raises each query's loss, so it needs y; without y use "
                "'boostin_contribution'.")
        m = self.model
        nq, n = Z0.shape[0], self.y.size
        # the first state (nothing removed) is boostin_contribution's, shared by all
        D0 = self._output_moves(q_leaves)
        z_ref = m.outputs_from_leaves(q_leaves, values=self.values64, baseline=self.base64)
        vals = np.empty((nq, n))
        order = np.empty((nq, n), dtype=np.int64)
        for e in range(nq):
            vals[e], order[e] = self._greedy_query(
                np.ascontiguousarray(q_leaves[:, e]), Z0[e], y_enc[e], D0[e].T, z_ref[e])
        return vals, order

    def _greedy_query(self, q_leaf, z0, y_e, D0, z_ref):
        """One query's removal order and each row's marginal predicted rise.

        Steps of 1, 1, 2, 4, ... rows (as many as already removed): at each state the
        model is refit with the removed rows' weights 0 (structures fixed, every leaf
        re-derived), the remaining rows' shares of the query's leaves in that refit (plus
        the baseline's derivative) move the query's outputs, and the rows whose move
        raises its loss most are removed next, largest first, as long as it rises.  The
        rows never removed keep their marginal at the last state, in decreasing order.
        ``D0`` (n, K) are the output moves in the model itself, ``z_ref`` (K,) its
        recomputed outputs; ``z0`` (K,) the model's outputs, where the loss is taken."""
        m = self.model
        n, K = self.y.size, m.n_outputs
        w = self.w.copy()
        vals = np.zeros(n)
        order = np.empty(n, dtype=np.int64)
        left = np.ones(n, dtype=bool)
        shares, zq = np.empty((n, K)), np.empty(K)
        y1 = np.array([y_e])
        done = 0
        while done < n:
            cand = np.flatnonzero(left)
            if not (w > 0).any():  # only rows of weight 0 left: removing them is a no-op
                vals[cand] = 0.0
                order[done:] = cand
                break
            if done == 0:
                Z, D = z0, D0
            else:
                kernels.shares_at_weights(m.loss, self.y, w, self.leaves, q_leaf,
                                          m.intercept(self.y, w), m.leaf_start, m.fixed_zero,
                                          m.n_iter, m.learning_rate, m.l2_regularization,
                                          self.ptr, self.idx, shares, zq, m.leaf_eps)
                # the state's outputs: the model's plus the refit's change
                Z = z0 + (zq - z_ref)
                D = shares - w[:, None] * m.intercept_derivatives(self.y, w)
            rise = m.loss_change(Z[None, :], y1, D[cand].T[None])[0]
            ranked = np.argsort(-rise, kind="stable")
            step = min(max(done, 1), int(np.sum(rise > 0)))
            vals[cand] = rise
            if step < max(done, 1) or step == cand.size:  # the last state
                order[done:] = cand[ranked]
                break
            pick = cand[ranked[:step]]
            order[done:done + step] = pick
            left[pick] = False
            w[pick] = 0.0
            done += step
        return vals, order

    def _dense_leaves(self, q_leaves):
        """Leaves whose pairs (query, training row) are added by a matrix product.

        Scattering a leaf's changes costs (its queries x its training rows) updates at a
        few ns each; a column of the product costs (all queries x all rows) multiply-adds
        at a few hundredths of a ns with BLAS.  The product wins when the leaf holds more
        than about 1/20 of all the pairs."""
        nq, n = q_leaves.shape[1], self.y.size
        share = (np.bincount(q_leaves.ravel(), minlength=self.model.n_leaves) / nq
                 * np.diff(self.ptr) / n)
        return share > _DENSE_SHARE

    def _query_gradients(self, q_leaves, y_enc):
        """Unweighted loss gradients of the queries at every iteration: per tree
        ``(n_trees, n_q)`` and at the baseline ``(n_q, K)``."""
        m = self.model
        nq, K = y_enc.shape[0], m.n_outputs
        F = np.tile(m.baseline, (nq, 1))
        g, h, ones = np.empty((nq, K)), np.empty((nq, K)), np.ones(nq)
        weights = np.empty((m.n_trees, nq))
        g0 = None
        for t in range(m.n_iter):
            kernels.gradients(m.loss, y_enc, F, ones, g, h, False)
            if g0 is None:
                g0 = g.copy()
            for k in range(K):
                s = t * K + k
                weights[s] = g[:, k]
            for k in range(K):
                F[:, k] += m.values[q_leaves[t * K + k]]
        if g0 is None:
            kernels.gradients(m.loss, y_enc, F, ones, g, h, False)
            g0 = g.copy()
        return weights, g0

    # ------------------------------------------------------------ runners
    def _by_rows(self, n_queries):
        """Whether query blocks (one backward pass per query output) cost less than
        training blocks (one forward pass per training point)."""
        if self.approximation in _BOOSTIN:
            return True
        if self.approximation == "leaf_refit":
            return False
        return n_queries * self.model.n_outputs < self.model.rows.size

    def _row_chunks(self, n_queries):
        K = self.model.n_outputs if self.approximation != "boostin" else 1
        return chunk_slices(n_queries, max(1, _BLOCK_ENTRIES // max(K * self.n_train, 1)))

    def _col_chunks(self, n_queries):
        K = self.model.n_outputs
        size = max(16, _BLOCK_ENTRIES // max(n_queries * K + self.model.n_leaves, 1))
        return chunk_slices(self.n_train, size)

    def blocks(self, explainer):
        """Itself: boosted trees pick rows or columns per query batch and run their blocks
        with :func:`~skinfluence.base.run_blocks` under their own ``n_jobs``."""
        return self

    def transform(self, Xf, Z0, y_enc, out=None):
        """The influence matrix (n_queries, n_train), written into ``out`` when given."""
        q_leaves = self.model.apply(Xf)
        n = Xf.shape[0]
        out = np.empty((n, self.n_train)) if out is None else out
        if self._by_rows(n):
            def rows(sl):
                y = None if y_enc is None else y_enc[sl]
                self._row_block(np.ascontiguousarray(q_leaves[:, sl]), Z0[sl], y, out[sl])

            for _ in run_blocks(rows, self._row_chunks(n), "influence", self.n_jobs,
                                self.verbose):
                pass
            return out

        def cols(sl):
            return sl, self._column_block(q_leaves, Z0, y_enc, sl)

        for sl, block in run_blocks(cols, self._col_chunks(n), "influence", self.n_jobs,
                                    self.verbose):
            out[:, sl] = block
        return out

    def explain(self, Xf, Z0, y_enc, k):
        """Top-k helpful and harmful training points of each query."""
        q_leaves = self.model.apply(Xf)
        n = Xf.shape[0]
        if not self._by_rows(n):
            return top_k_over_blocks(
                lambda sl: self._column_block(q_leaves, Z0, y_enc, sl), self._col_chunks(n),
                lambda f, c: run_blocks(f, c, "explain", self.n_jobs, self.verbose), n,
                self.n_train, k)
        parts = []

        def rows(sl):
            y = None if y_enc is None else y_enc[sl]
            ql = np.ascontiguousarray(q_leaves[:, sl])
            if self.approximation == _GREEDY:
                return self._greedy_explain(ql, Z0[sl], y, k)
            block = self._row_block(ql, Z0[sl], y)
            full = slice(0, self.n_train)
            return top_k_over_blocks(lambda _: block, [full], lambda f, c: map(f, c),
                                     block.shape[0], self.n_train, k)

        for res in run_blocks(rows, self._row_chunks(n), "explain", self.n_jobs,
                              self.verbose):
            parts.append(res)
        first = parts[0]
        return type(first)(**{key: np.concatenate([p[key] for p in parts]) for key in first})

    def _greedy_explain(self, q_leaves, Z0, y_enc, k):
        """``boostin_contribution_greedy``'s explanation: the first ``k`` rows of each
        query's removal order with their marginal predicted rises (in that order, which
        need not be decreasing), and the ``k`` most negative marginals."""
        vals, order = self._greedy_rows(q_leaves, Z0, y_enc)
        rows = self.model.rows
        block = np.zeros((Z0.shape[0], self.n_train))
        block[:, rows] = vals
        full = slice(0, self.n_train)
        res = top_k_over_blocks(lambda _: block, [full], lambda f, c: map(f, c),
                                block.shape[0], self.n_train, k)
        k = res["harmful_indices"].shape[1]
        idle = np.setdiff1d(np.arange(self.n_train), rows)  # grew no tree: influence 0
        # the order's values are positive while rows are removed, then decreasing: the
        # idle rows go in before the first negative one
        ranked = np.empty((order.shape[0], self.n_train), dtype=np.int64)
        for e in range(order.shape[0]):
            neg = vals[e, order[e]] < 0
            cut = int(np.argmax(neg)) if neg.any() else neg.size
            ranked[e] = np.concatenate([rows[order[e, :cut]], idle, rows[order[e, cut:]]])
        ranked = ranked[:, :k]
        res["helpful_indices"] = ranked
        res["helpful_values"] = np.take_along_axis(block, ranked, axis=1)
        return res

    # -------------------------------------------------------- self side
    def self_side(self):
        """Leave-one-out outputs and self-influence of the training points (cached)."""
        if self._self_side is not None:
            return self._self_side
        m = self.model
        n = self.n_train
        dz = np.zeros((n, m.n_outputs))
        rows = m.rows
        if self.approximation in _BOOSTIN:
            # a point always shares its own leaves: its gradients weight every tree
            K = m.n_outputs
            grads = self.g.transpose(0, 2, 1).reshape(m.n_trees, -1)  # (n_trees, n_rows)
            base_change = -self.w[:, None] * self.base_deriv
            infl = np.zeros(n)
            infl[rows] = (self.direct * grads).sum(axis=0) + np.einsum(
                "ik,ik->i", self.g[0], base_change)
            for k in range(K):
                dz[rows, k] = self.direct[m.tree_output == k].sum(axis=0) + base_change[:, k]
            if self.approximation != "boostin":
                infl = m.loss_change(self.train_outputs, m.y_train, dz[:, :, None])[:, 0]
                infl[m.row_position < 0] = 0.0
            self._self_side = SelfSide(self.train_outputs + dz, infl)
            return self._self_side

        def own(sl):
            pos = np.arange(rows.size)[sl]
            return sl, self._forward(pos)[2]

        for sl, d in run_blocks(own, chunk_slices(rows.size, 256), "self-influence",
                                self.n_jobs, self.verbose):
            dz[rows[sl]] = d
        Z = self.train_outputs
        infl = m.loss_change(Z, m.y_train, dz[:, :, None])[:, 0]
        self._self_side = SelfSide(Z + dz, infl)
        return self._self_side
