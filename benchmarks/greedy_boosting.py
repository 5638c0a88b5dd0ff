"""Set-aware (greedy) rankings of boosting training rows, candidates for ``removal_trees.py``.

Every ranking here is an ORDER of removal built for one query at a time: starting from
``S = {}``, the row whose removal (with ``S`` already removed) is predicted to raise the
query's loss most is added to ``S``; the order of addition is the ranking, so the top
0.1% is a prefix of the top 5%.  No constant is fitted to data.

* ``greedy_refit``: the prediction is the first-order effect of the fixed-structure
  refit at the current state: the weights of ``S`` zeroed, the baseline and every leaf
  value re-derived iteration by iteration (``record_fit``), then the reverse-mode
  derivative of the query's outputs in every training weight at that state
  (``leaf_influence_rows``), the loss evaluated exactly at the predicted outputs.
* ``greedy_refit_doubling``: the same, re-linearised only when ``S`` has doubled (steps
  of 1, 1, 2, 4, 8, ... rows: the top rows of the first-order effect at each state).
* ``greedy_shares``: no propagation (BoostIn's premise): each tree's leaf value is
  recomputed with its gradient and Hessian sums short of the removed rows,
  ``v_S = -lr (G - G_S) / (H - H_S + l2)``, the baseline refit exactly, and the loss
  evaluated at the query's outputs moved by the sum; the greedy step is exact under that
  model (every candidate's set value is computed, not its derivative).
* ``greedy_shares_doubling``: ``greedy_shares`` re-ranked by the exact marginal only when
  ``S`` has doubled.
* ``greedy_contribution``: ``boostin_contribution`` recomputed at each state: the model
  refit with ``S`` removed (fixed structures, every later leaf re-derived, as in
  ``greedy_refit``), each remaining row's share ``-lr g_j / (H + l2)`` of the refit leaf
  values (and its baseline derivative) summed over the query's leaves, the loss evaluated
  at the query's refit outputs moved by that sum.  Its first pick is
  ``boostin_contribution``'s; later ones peel the largest share of the current model.
* ``greedy_contribution_doubling``: the same, re-computed only when ``S`` has doubled.

Rows beyond ``k_max`` are not ordered (score ``-inf``); the evaluation uses the top
``k <= k_max`` only.
"""

import numpy as np
from numba import njit

from skinfluence.trees import _boosting_kernels as kernels

GREEDY = ("greedy_refit", "greedy_refit_doubling", "greedy_shares", "greedy_shares_doubling",
          "greedy_contribution", "greedy_contribution_doubling")


def _steps(k_max, doubling):
    """Rows added per re-ranking: all ones, or 1, 1, 2, 4, ... (as many as S holds)."""
    out, done = [], 0
    while done < k_max:
        step = max(1, done) if doubling else 1
        step = min(step, k_max - done)
        out.append(step)
        done += step
    return out


def _order_to_scores(order, n):
    s = np.full(n, -np.inf)
    s[np.asarray(order, dtype=np.int64)] = np.arange(len(order), 0, -1, dtype=np.float64)
    return s


# ---------------------------------------------------------------- fixed-structure refit
def _refit_state(removal, w):
    """Baseline, leaf values and the arrays ``leaf_influence_rows`` needs, refit with
    weights ``w`` (the trees' structures fixed)."""
    m = removal.model
    n, K, T = removal.y.size, m.n_outputs, m.n_iter
    base = m.intercept(removal.y, w)
    F = np.tile(base, (n, 1))
    values, H = np.empty(m.n_leaves), np.empty(m.n_leaves)
    g, h, r = (np.empty((T, n, K)) for _ in range(3))
    kernels.record_fit(m.loss, removal.y, w, removal.leaves, F, m.leaf_start, m.fixed_zero,
                       T, m.learning_rate, m.l2_regularization, values, H, g, h, r,
                       m.leaf_eps)
    return base, values, H, g, h, r


def greedy_refit_order(removal, q_leaves_e, y_e, k_max, doubling=False):
    """Greedy removal order (k_max rows) of one query under the first-order fixed-structure
    refit at each state.  ``q_leaves_e`` (n_trees,) are the query's leaves, ``y_e`` its
    encoded target."""
    m = removal.model
    K, n = m.n_outputs, removal.y.size
    w = removal.w.copy()
    ql = np.ascontiguousarray(np.repeat(q_leaves_e[:, None], K, axis=1))
    outs = np.arange(K, dtype=np.int64)
    order = []
    for step in _steps(k_max, doubling):
        base, values, H, g, h, r = _refit_state(removal, w)
        Z = base + np.array([values[q_leaves_e[m.tree_output == k]].sum() for k in range(K)])
        grads = np.empty((K, n))
        kernels.leaf_influence_rows(
            m.loss == kernels.MULTINOMIAL, w, removal.leaves, ql, outs,
            m.intercept_derivatives(removal.y, w), m.leaf_start, m.fixed_zero,
            m.learning_rate, m.l2_regularization, values, H, g, h, r, grads, m.leaf_eps)
        rise = m.loss_change(Z[None, :], np.array([y_e]), grads[None])[0]
        rise[w == 0] = -np.inf
        pick = np.argsort(-rise, kind="stable")[:step]
        order.extend(pick.tolist())
        w[pick] = 0.0
    return order


def greedy_contribution_order(removal, q_leaves_e, y_e, k_max, doubling=False):
    """Greedy removal order (k_max rows) of one query: at each state the shares of the
    fixed-structure refit without ``S`` (``boostin_contribution`` at that state)."""
    m = removal.model
    K = m.n_outputs
    w = removal.w.copy()
    mask = removal.leaves == q_leaves_e[:, None]  # (n_trees, n): shares the query's leaf
    order = []
    for step in _steps(k_max, doubling):
        base, values, H, g, h, r = _refit_state(removal, w)
        Z = base + np.array([values[q_leaves_e[m.tree_output == k]].sum() for k in range(K)])
        direct = kernels.direct_leaf_changes(
            w, removal.leaves, m.fixed_zero, m.learning_rate, m.l2_regularization, values, H,
            g, h, m.leaf_eps, own_share=True)
        direct *= mask
        D = -w[:, None] * m.intercept_derivatives(removal.y, w)  # (n, K)
        for k in range(K):
            D[:, k] += direct[m.tree_output == k].sum(axis=0)
        rise = m.loss_change(Z[None, :], np.array([y_e]), D.T[None])[0]
        rise[w == 0] = -np.inf
        pick = np.argsort(-rise, kind="stable")[:step]
        order.extend(pick.tolist())
        w[pick] = 0.0
    return order


# ------------------------------------------------------------ no propagation (shares)
@njit(cache=False)
def _share_marginals(q_leaves, tree_output, ptr, idx, wg, wh, G, H, removed, lr, l2, eps,
                     fixed_zero, delta):
    """``delta[j, k]``: change of the query's output ``k`` when row ``j`` joins the removed
    set, each leaf value recomputed from its current sums ``G``, ``H`` (per tree, the
    query's leaf) short of ``j``'s weighted gradient ``wg[s, j]`` and Hessian ``wh[s, j]``."""
    delta[:, :] = 0.0
    for s in range(q_leaves.shape[0]):
        leaf = q_leaves[s]
        if fixed_zero[leaf]:
            continue
        k = tree_output[s]
        cur = -lr * G[s] / (H[s] + l2 + eps)
        for p in range(ptr[leaf], ptr[leaf + 1]):
            j = idx[p]
            if removed[j]:
                continue
            new = -lr * (G[s] - wg[s, j]) / (H[s] - wh[s, j] + l2 + eps)
            delta[j, k] += new - cur


def greedy_shares_order(removal, q_leaves_e, y_e, k_max, doubling=False):
    """Greedy removal order (k_max rows) of one query with each leaf value recomputed
    without the removed rows' gradients and Hessians, nothing propagated to later trees."""
    m = removal.model
    K, n, T = m.n_outputs, removal.y.size, m.n_trees
    t_of = np.arange(T) // K
    k_of = m.tree_output
    # weighted gradients / Hessians per tree (n_trees, n) of the fit
    wg = np.ascontiguousarray(removal.g[t_of, :, k_of] * removal.w[None, :])
    wh = np.ascontiguousarray(removal.h[t_of, :, k_of] * removal.w[None, :])
    ql = np.ascontiguousarray(q_leaves_e.astype(np.int64))
    G = np.array([wg[s, removal.leaves[s] == ql[s]].sum() for s in range(T)])
    H = np.array([wh[s, removal.leaves[s] == ql[s]].sum() for s in range(T)])
    lr, l2, eps = m.learning_rate, m.l2_regularization, m.leaf_eps
    v0 = np.where(m.fixed_zero[ql], 0.0, -lr * G / (H + l2 + eps))
    Z_leaves = np.array([v0[k_of == k].sum() for k in range(K)])
    w = removal.w.copy()
    removed = np.zeros(n, dtype=np.bool_)
    D = np.zeros(K)  # change of the leaf sums so far
    delta = np.empty((n, K))
    order = []
    for step in _steps(k_max, doubling):
        base = m.intercept(removal.y, w)
        cand = np.flatnonzero(~removed & (w > 0))
        bases = m.intercepts_without(removal.y, w, cand)  # (m, K)
        _share_marginals(ql, k_of, removal.ptr, removal.idx, wg, wh, G, H, removed, lr, l2,
                         eps, m.fixed_zero, delta)
        Znew = bases + Z_leaves + D + delta[cand]
        Zcur = (base + Z_leaves + D)[None, :]
        rise = (m.loss_from_outputs(Znew, np.full(cand.size, y_e))
                - m.loss_from_outputs(Zcur, np.array([y_e]))[0])
        pick = cand[np.argsort(-rise, kind="stable")[:step]]
        for j in pick:
            order.append(int(j))
            removed[j] = True
            w[j] = 0.0
            inside = removal.leaves[:, j] == ql
            G[inside] -= wg[inside, j]
            H[inside] -= wh[inside, j]
        v = np.where(m.fixed_zero[ql], 0.0, -lr * G / (H + l2 + eps))
        D = np.array([(v - v0)[k_of == k].sum() for k in range(K)])
    return order


def greedy_scores(method, removal, q_leaves, y_enc, k_max):
    """Scores (n_q, n_train) whose descending order is the greedy order of ``method``
    (top ``k_max`` rows; the rest ``-inf``).  Assumes every training row grew the trees."""
    doubling = method.endswith("_doubling")
    fn = {"greedy_refit": greedy_refit_order, "greedy_shares": greedy_shares_order,
          "greedy_contribution": greedy_contribution_order}[method.replace("_doubling", "")]
    n = removal.y.size
    out = np.empty((q_leaves.shape[1], n))
    for e in range(q_leaves.shape[1]):
        order = fn(removal, np.ascontiguousarray(q_leaves[:, e]), y_enc[e], k_max, doubling)
        out[e] = _order_to_scores(order, n)
    return out
