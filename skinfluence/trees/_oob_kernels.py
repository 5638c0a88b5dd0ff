"""numba kernel of ``_oob.py``: a bagged tree's leave-one-out class weights at the rows it
saw, read from the fitted tree (no regrowth), and its leaf class weights at the rows it
left out."""

import numpy as np

from .._numba import njit

__all__ = ["tree_loo_counts"]


@njit(cache=True, nogil=True)
def _goes_left(x, node, feature, threshold, missing_left):
    v = x[feature[node]]
    if np.isnan(v):
        return missing_left[node] != 0
    return v <= threshold[node]


@njit(cache=True, nogil=True)
def _leaf(x, node, left, right, feature, threshold, missing_left):
    while left[node] >= 0:
        node = left[node] if _goes_left(x, node, feature, threshold, missing_left) else right[node]
    return node


@njit(cache=True, nogil=True)
def tree_loo_counts(left, right, feature, threshold, missing_left, counts, X, w, codes, out,
                    case, leaf):
    """Fill ``out[i]`` (``(n, K)``) with class weights of the tree at row ``i``: its leaf's
    for a row it left out (``w[i] == 0``, ``case`` -1), and, for a row it saw, those of
    the tree as if each split's threshold had been placed without the row.

    ``counts``: the class weights of every node; ``w``: the rows' weights in the tree;
    ``codes``: their class codes.  Down a seen row's path, where it is the only row
    nearest to a threshold on its side (among the rows the tree saw, ties excluded), the
    threshold without it lies at the midpoint of the next nearest and the other side's
    nearest (scikit-learn's placement); if the row is then on the other side it takes
    the leaf it reaches through the other child (``case`` 1), and if it was alone on its
    side the split would not exist, so it goes to the other child too (``case`` 2).
    Otherwise its own leaf without its weight (``case`` 0).  The partitions of the other
    rows and the chosen features are those of the fitted tree.  ``leaf[i]``: the row's
    leaf in the fitted tree.
    """
    n_nodes = left.shape[0]
    n = X.shape[0]
    # per node and side (0: left, 1: right): the seen rows' value nearest to the threshold
    # as a "larger is nearer" key (left: value, right: -value), the next one, and the row
    # holding the nearest (-1 if several rows share it)
    near = np.full((n_nodes, 2), -np.inf)
    nxt = np.full((n_nodes, 2), -np.inf)
    row = np.full((n_nodes, 2), -1, dtype=np.intp)
    for i in range(n):
        if w[i] <= 0.0:
            continue
        node = 0
        while left[node] >= 0:
            v = X[i, feature[node]]
            side = 0 if _goes_left(X[i], node, feature, threshold, missing_left) else 1
            if not np.isnan(v):
                key = v if side == 0 else -v
                if key > near[node, side]:
                    nxt[node, side] = near[node, side]
                    near[node, side] = key
                    row[node, side] = i
                elif key == near[node, side]:
                    row[node, side] = -1  # a tie: the threshold stays without one of them
                elif key > nxt[node, side]:
                    nxt[node, side] = key
            node = left[node] if side == 0 else right[node]
        leaf[i] = node
    for i in range(n):
        x = X[i]
        if w[i] <= 0.0:
            leaf[i] = _leaf(x, 0, left, right, feature, threshold, missing_left)
            out[i] = counts[leaf[i]]
            case[i] = -1
            continue
        node = 0
        case[i] = 0
        while left[node] >= 0:
            side = 0 if _goes_left(x, node, feature, threshold, missing_left) else 1
            child = left[node] if side == 0 else right[node]
            other = right[node] if side == 0 else left[node]
            if row[node, side] == i:
                if nxt[node, side] == -np.inf:  # alone on its side: no split without it
                    case[i] = 2
                    node = _leaf(x, other, left, right, feature, threshold, missing_left)
                    break
                lo = nxt[node, 0] if side == 0 else near[node, 0]  # largest left value
                hi = -near[node, 1] if side == 0 else -nxt[node, 1]  # smallest right value
                moved = lo / 2.0 + hi / 2.0
                if moved == hi:  # rounding: scikit-learn then takes the lower value
                    moved = lo
                v = x[feature[node]]
                if (v > moved) if side == 0 else (v <= moved):
                    case[i] = 1
                    node = _leaf(x, other, left, right, feature, threshold, missing_left)
                    break
            node = child
        out[i] = counts[node]
        if case[i] == 0:
            out[i, codes[i]] = max(out[i, codes[i]] - w[i], 0.0)


@njit(cache=True, nogil=True)
def add_tree(out, w, codes, leaf, counts, left, P_all, P_oob):
    """Add one tree's class fractions ``out / out.sum`` to ``P_all`` (every row) and to
    ``P_oob`` (the rows it left out), and return the largest gap between the class weights
    of its leaves and those of the rows ``leaf`` puts there (zero when the tree was fitted
    on these rows, labels ``codes`` and weights ``w``)."""
    n, K = out.shape
    held = np.zeros(counts.shape)
    for i in range(n):
        held[leaf[i], codes[i]] += w[i]
        total = 0.0
        for k in range(K):
            total += out[i, k]
        for k in range(K):
            p = out[i, k] / total
            P_all[i, k] += p
            if w[i] <= 0.0:
                P_oob[i, k] += p
    gap = 0.0
    for node in range(counts.shape[0]):
        if left[node] < 0:
            for k in range(K):
                gap = max(gap, abs(held[node, k] - counts[node, k]))
    return gap
