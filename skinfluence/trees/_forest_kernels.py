"""Numba kernels of tree removal: each tree's outputs at query points without a training point.

Both kernels add, for training points ``js`` and query rows ``Xq``, the change of one tree's
outputs ``value[leaf(x_q), k, sel[q, k, c]]`` (output ``k``; class columns ``sel[q, k, :]``
for classifiers, ``0`` for regressors) into ``out[a, q, k, c]`` (``a`` indexes ``js``):

* :func:`replay_deltas`: the tree regrown without ``j`` by the replica of
  :mod:`._builder`, re-evaluating the nodes whose samples or entry state changed and
  copying the subtrees that scikit-learn would rebuild identically;
* :func:`leaf_deltas`: the splits kept, the value of ``j``'s leaf recomputed without it
  (the nearest ancestor that keeps weight when ``j`` was alone in its leaf).
"""

import numpy as np

from .._numba import njit
from ._builder import apply_rows, grow


@njit(cache=True, nogil=True)
def _leaf_of(ints, flts, x):
    v = 0
    while ints[v, 0] >= 0:
        v = ints[v, 0] if x[ints[v, 2]] <= flts[v, 0] else ints[v, 1]
    return v


@njit(cache=True, nogil=True)
def _mark_path(ints, flts, x, on_path):
    on_path[:] = False
    v = 0
    while True:
        on_path[v] = True
        if ints[v, 0] < 0:
            return
        v = ints[v, 0] if x[ints[v, 2]] <= flts[v, 0] else ints[v, 1]


@njit(cache=True, nogil=True)
def _same_structure(ints, flts, n_nodes, o_ints, o_flts):
    if n_nodes != o_ints.shape[0]:
        return False
    for v in range(n_nodes):
        if ints[v, 0] != o_ints[v, 0] or ints[v, 2] != o_ints[v, 2]:
            return False
        if ints[v, 0] >= 0 and flts[v, 0] != o_flts[v, 0]:
            return False
    return True


@njit(cache=True, nogil=True)
def replay_deltas(X, Y, w, n_classes, crit, splitter, max_features, msl, mss, mwl_fraction,
                  max_depth, mid, seed, o_ints, o_flts, o_value, rec_rng, rec_perm,
                  rec_nconst, rec_order, rec_optr, o_end, exact_sums, js, Xq, sel, diag,
                  out, changed, evaluated):
    """Exact removal of each ``js[a]`` from one tree (see the module docstring).

    ``w`` is the tree's weight vector (restored on return).  ``diag``: query ``a`` only
    for ``js[a]`` (its own leave-one-out output).  ``changed[a]``: the regrown tree's
    splits differ from the original's; ``evaluated[a]``: nodes evaluated (not copied).
    """
    n = X.shape[0]
    cap = 2 * n + 1
    n_out = Y.shape[1]
    ints = np.empty((cap, 4), dtype=np.intp)
    flts = np.empty((cap, 3))
    value = np.empty((cap, n_out, o_value.shape[2]))
    on_path = np.zeros(o_ints.shape[0], dtype=np.bool_)
    leaf0 = apply_rows(o_ints, o_flts, Xq)
    w_total = 0.0
    for i in range(n):
        w_total += w[i]
    for a in range(js.shape[0]):
        j = js[a]
        wj = w[j]
        if wj == 0.0:  # not in this tree's sample: the tree does not change
            continue
        w[j] = 0.0
        _mark_path(o_ints, o_flts, X[j], on_path)
        nn, ne = grow(X, Y, w, n_classes, crit, splitter, max_features, msl, mss,
                      mwl_fraction * (w_total - wj), max_depth, mid, seed, ints, flts, value,
                      False, rec_rng, rec_perm, rec_nconst, rec_order, rec_optr,
                      True, o_ints, o_flts, o_value, o_end, on_path, exact_sums)
        w[j] = wj
        changed[a] |= not _same_structure(ints, flts, nn, o_ints, o_flts)
        evaluated[a] += ne
        q_lo = a if diag else 0
        q_hi = a + 1 if diag else Xq.shape[0]
        for q in range(q_lo, q_hi):
            leaf = _leaf_of(ints, flts, Xq[q])
            for k in range(n_out):
                for b in range(sel.shape[2]):
                    c = sel[q, k, b]
                    out[a, q - q_lo, k, b] += value[leaf, k, c] - o_value[leaf0[q], k, c]


@njit(cache=True, nogil=True)
def _parents(ints):
    parent = np.full(ints.shape[0], -1, dtype=np.intp)
    for v in range(ints.shape[0]):
        if ints[v, 0] >= 0:
            parent[ints[v, 0]] = v
            parent[ints[v, 1]] = v
    return parent


@njit(cache=True, nogil=True)
def leaf_deltas(o_ints, o_flts, o_value, X, Y, w, classifier, js, Xq, sel, diag, out):
    """Fixed-structure removal of each ``js[a]`` from one tree (see the module docstring)."""
    n_nodes = o_ints.shape[0]
    n_out = Y.shape[1]
    parent = _parents(o_ints)
    q_leaf = apply_rows(o_ints, o_flts, Xq)
    # queries grouped by leaf (CSR over node ids)
    ptr = np.zeros(n_nodes + 1, dtype=np.intp)
    for q in range(q_leaf.shape[0]):
        ptr[q_leaf[q] + 1] += 1
    for v in range(n_nodes):
        ptr[v + 1] += ptr[v]
    fill = ptr[:-1].copy()
    by_leaf = np.empty(q_leaf.shape[0], dtype=np.intp)
    for q in range(q_leaf.shape[0]):
        by_leaf[fill[q_leaf[q]]] = q
        fill[q_leaf[q]] += 1
    for a in range(js.shape[0]):
        j = js[a]
        wj = w[j]
        if wj == 0.0:
            continue
        leaf = _leaf_of(o_ints, o_flts, X[j])
        node = leaf  # the node whose value the leaf takes without j
        while node >= 0 and o_flts[node, 2] - wj <= 1e-12 * o_flts[node, 2]:
            node = parent[node]
        if node < 0:
            continue
        wn = o_flts[node, 2]
        if diag:
            lo, hi = a, a + 1
        else:
            lo, hi = ptr[leaf], ptr[leaf + 1]
        for b in range(lo, hi):
            q = b if diag else by_leaf[b]
            if diag and q_leaf[q] != leaf:
                continue
            for k in range(n_out):
                for e in range(sel.shape[2]):
                    c = sel[q, k, e]
                    if classifier:
                        own = wj if int(Y[j, k]) == c else 0.0
                    else:
                        own = wj * Y[j, k]
                    new = (o_value[node, k, c] * wn - own) / (wn - wj)
                    out[a, b - lo if diag else q, k, e] += new - o_value[leaf, k, c]
