"""Numba kernels of tree removal: the builder loop, and each tree's outputs without a point.

:func:`grow` is scikit-learn's depth-first builder over the replica of :mod:`._builder`.
Growing a tree again without point ``j`` (a replay) evaluates only what can change:

* a node whose samples, random stream, feature permutation and known constant features
  are those the original node was entered with is copied with its whole subtree;
* a node whose samples did not change but whose random stream did (a node earlier in
  depth-first order drew differently) picks its split from the statistics cached for it
  at fit time (:func:`~._builder.simulate_split`: the same draws, no sorting), where the
  criterion's sums are exact (integer weights and targets); it is evaluated in full when
  the pick differs from the original's;
* the nodes on ``j``'s path, and every node below a split that changed, are evaluated;
  at those that are nodes of the original tree (``j``'s path while its splits hold, and
  nodes whose samples came in another order) the features that provably cannot beat the
  original split's feature are not scanned (:func:`_prunable`; mode bit ``PRUNE``).

Both removal kernels add, for training points ``js`` and query rows ``Xq``, the change of
one tree's outputs ``value[leaf(x_q), k, sel[q, k, c]]`` (output ``k``; class columns
``sel[q, k, :]`` for classifiers, ``0`` for regressors) into ``out[a, q, k, c]`` (``a``
indexes ``js``):

* :func:`replay_deltas`: the tree regrown without ``j``;
* :func:`leaf_deltas`: the splits kept, the value of ``j``'s leaf recomputed without it
  (the nearest ancestor that keeps weight when ``j`` was alone in its leaf).

Tree arrays: ``ints`` (n_nodes, 4) = left child, right child, feature, n_node_samples (-1
for leaves' children); ``flts`` (n_nodes, 3) = threshold, impurity,
weighted_n_node_samples; ``value`` (n_nodes, n_outputs, max_n_classes) as ``tree_.value``.
"""

import numpy as np

from .._numba import njit
from ._builder import (
    BEST,
    EPSILON,
    GINI,
    MSE,
    TREE_LEAF,
    _crit_init,
    _node_impurity,
    _node_split,
    _partition_final,
    feature_best,
    feature_stats,
    near_value,
    simulate_split,
)

# iprm entries of grow (JROW: the removed point of a replay, -1 none)
CRIT, SPLITTER, MAX_FEATURES, MSL, MSS, MAX_DEPTH, MODE, JROW = range(8)
# MODE bits
RECORD, REPLAY, EXACT_SUMS, CACHE, PRUNE = 1, 2, 4, 8, 16


@njit(cache=True, nogil=True)
def _leaf_of(ints, flts, x):
    v = 0
    while ints[v, 0] >= 0:
        v = ints[v, 0] if x[ints[v, 2]] <= flts[v, 0] else ints[v, 1]
    return v


@njit(cache=True, nogil=True)
def subtree_ends(ints, n_nodes):
    """One past the last id of each node's subtree (depth-first ids are contiguous)."""
    out = np.empty(n_nodes, dtype=np.intp)
    for v in range(n_nodes - 1, -1, -1):
        out[v] = v + 1 if ints[v, 0] < 0 else out[ints[v, 1]]
    return out


@njit(cache=True, nogil=True)
def apply_rows(ints, flts, X):
    """Leaf id of each row of float32 ``X`` (``x[feature] <= threshold`` goes left)."""
    out = np.empty(X.shape[0], dtype=np.intp)
    for i in range(X.shape[0]):
        out[i] = _leaf_of(ints, flts, X[i])
    return out


@njit(cache=True, nogil=True)
def _copy_subtree(ints, flts, value, node_count, orig, o_ints, o_flts, o_value, stop):
    """Copy the original subtree ``orig`` (ids ``orig..stop-1``) to ids from ``node_count``."""
    off = node_count - orig
    for v in range(orig, stop):
        nv = v + off
        for c in range(2):
            ints[nv, c] = o_ints[v, c] + off if o_ints[v, c] >= 0 else o_ints[v, c]
        ints[nv, 2] = o_ints[v, 2]
        ints[nv, 3] = o_ints[v, 3]
        flts[nv, :] = o_flts[v, :]
        value[nv, :, :] = o_value[v, :, :]
    return stop - orig


@njit(cache=True, nogil=True)
def _same_state(rng, features, nconst, samples, start, end, orig, rec, exact_sums):
    """Is node ``orig`` of the original build entered with these very inputs?"""
    rec_rng, rec_perm, rec_nconst, rec_order, rec_optr = rec
    if rng != rec_rng[orig] or nconst != rec_nconst[orig]:
        return False
    for a in range(features.shape[0]):
        if features[a] != rec_perm[orig, a]:
            return False
    if not exact_sums:  # the order of the samples decides the rounding of sums
        base = rec_optr[orig]
        for p in range(start, end):
            if samples[p] != rec_order[base + p - start]:
                return False
    return True


@njit(cache=True, nogil=True)
def _record_state(rec, cache, node, rng, features, nconst, samples, start, end, optr):
    rec_rng, rec_perm, rec_nconst, rec_order, rec_optr = rec
    rec_rng[node] = rng
    rec_perm[node, :] = features
    rec_nconst[node] = nconst
    if rec_order.shape[0] > 0:
        rec_optr[node] = optr
        rec_order[optr:optr + end - start] = samples[start:end]
        optr += end - start
    if cache[2].shape[0] > 0:
        cache[2][node] = -2  # node_split not called (changed below when it is)
    return optr


@njit(cache=True, nogil=True)
def _write_node(ints, flts, value, node, parent, is_left, n_node, imp, wn, is_leaf, feat, thr):
    if parent >= 0:
        ints[parent, 0 if is_left else 1] = node
    ints[node, 3] = n_node
    flts[node, 1] = imp
    flts[node, 2] = wn
    if is_leaf:
        ints[node, 0] = TREE_LEAF
        ints[node, 1] = TREE_LEAF
        ints[node, 2] = -2
        flts[node, 0] = -2.0
    else:
        ints[node, 2] = feat
        flts[node, 0] = thr


@njit(cache=True, nogil=True)
def _push_children(st, st_imp, top, start, pos, end, depth, node, nconst, il, ir, o_left,
                   o_right):
    for child in range(2):  # right first: the left child is popped (and numbered) first
        st[top, 0] = pos if child == 0 else start
        st[top, 1] = end if child == 0 else pos
        st[top, 2] = depth + 1
        st[top, 3] = node
        st[top, 4] = child
        st[top, 5] = nconst
        st[top, 6] = o_right if child == 0 else o_left
        st_imp[top] = ir if child == 0 else il
        top += 1
    return top


@njit(cache=True, nogil=True)
def _removal_margin(y, samples, start, end, crit, wn, sq_total, w_removed, j, bound):
    """How much more than with point ``j`` any split's proxy can score at a node without it.

    ``j`` (weight ``w_j``) leaves one side of a split, the other is unchanged.  Gini: the
    side's ``Sum_c n_c^2 / n`` moves by at most ``w_j``, its ``-n`` by ``w_j``: ``2 w_j``.
    Entropy: ``n H`` of the side falls by at most ``w_j (log2(n / w_j) + 1 / ln 2)``
    (convexity of ``x log2 x``; ``n`` at most the node's weight with ``j``).  Squared error:
    ``S^2 / n`` of the side changes by ``w_j (n' / n) (y_j - m')^2 - w_j y_j^2`` (``m'``
    the side's mean without ``j``, inside the node's target range), so by at most
    ``w_j (max((y_j - y_min)^2, (y_j - y_max)^2) - y_j^2)`` summed over outputs.  Plus a
    relative ``1e-9 + 16 n eps`` of the proxies' scale (``n`` the node's samples) for
    rounding: the cached sums and scikit-learn's may add in another order.  ``j < 0``: no
    point left the node (its samples came in another order), rounding only.
    """
    wj = w_removed
    rel = 1e-9 + 16.0 * (end - start + 1) * EPSILON
    if crit != MSE:
        scale = abs(bound) + wn + wj + 1.0
        if j < 0:
            return rel * scale
        if crit == GINI:
            return 2.0 * wj + rel * scale
        return wj * (np.log((wn + wj) / wj) / np.log(2.0) + 1.0 / np.log(2.0)) + rel * scale
    m = 0.0
    scale = sq_total + abs(bound) + 1.0
    if j < 0:
        return rel * scale
    for k in range(y.shape[1]):
        lo = y[samples[start], k]
        hi = lo
        for p in range(start + 1, end):
            v = y[samples[p], k]
            lo = min(lo, v)
            hi = max(hi, v)
        yj = y[j, k]
        m += wj * (max((yj - lo) ** 2, (yj - hi) ** 2) - yj * yj)
        scale += wj * yj * yj
    return m + rel * scale


@njit(cache=True, nogil=True)
def _prunable(X, y, w, samples, scratch, fv, start, end, orig, c_pos, c_val, b, crit,
              n_classes, sum_total, sum_left, sum_right, wn, sq_total, msl, mwl, w_removed, j,
              skip):
    """Mark in ``skip`` the features that cannot win against ``b`` at a node that lost ``j``.

    Removing ``j`` only removes or merges a feature's candidate thresholds (counts and
    weights only fall, so ``min_samples_leaf`` and a fixed ``min_weight_leaf`` admit no new
    one), unless values within scikit-learn's 1e-7 tie tolerance of ``x_j`` fuse
    differently, and each kept candidate's proxy rises by at most :func:`_removal_margin`.
    So a feature whose best proxy with ``j`` (cached) plus that margin stays below the new
    best proxy of ``b`` (the original split's feature, scored again) loses to ``b``
    whatever the order of the features, as long as ``b`` is scored (which
    :func:`~._builder._node_split` checks).

    Returns ``(code, proxy, threshold, ties, marked)``: ``b``'s best split now (see
    :func:`~._builder.feature_best`), whether two samples share its value of ``b`` (then
    its sort depends on the order of the samples) and whether a feature was marked.
    """
    scratch[start:end] = samples[start:end]
    code, bound, thr = feature_best(X, y, w, scratch, fv, start, end, b, crit, n_classes,
                                    sum_total, sum_left, sum_right, wn, msl, mwl)
    if code < 0:
        return code, bound, thr, True, False
    ties = False
    for p in range(start + 1, end):
        if fv[p] == fv[p - 1]:
            ties = True
            break
    margin = _removal_margin(y, samples, start, end, crit, wn, sq_total, w_removed, j, bound)
    marked = False
    for f in range(X.shape[1]):
        cp = c_pos[orig, f]
        if f == b:
            continue
        if cp == -2:  # constant with j, so without it
            skip[f] = True
            marked = True
        elif (cp == -1 or c_val[orig, f, 0] + margin < bound) and (
                j < 0 or not near_value(X, samples, start, end, f, X[j, f])):
            skip[f] = True
            marked = True
    return code, bound, thr, ties, marked


@njit(cache=True, nogil=True)
def grow(X, y, w, n_classes, iprm, fprm, seed, ints, flts, value, rec, orig_tree, on_path,
         cache):
    """``DepthFirstTreeBuilder.build`` of scikit-learn on dense float32 ``X``.

    Samples of zero weight are left out, as scikit-learn does.  ``iprm`` = (criterion,
    splitter, max_features, min_samples_leaf, min_samples_split, max_depth, mode bits),
    ``fprm`` = (min_weight_leaf, min_impurity_decrease); ``seed`` is the splitter's initial
    ``rand_r_state``.  Writes the tree into ``ints``, ``flts``, ``value`` (capacity
    ``2 n + 1`` nodes) and returns ``(n_nodes, n_evaluated, n_simulated, cache_ok,
    n_pruned)`` (``n_pruned``: features whose thresholds were not scanned again, see
    :func:`_prunable`).

    ``RECORD``: keep each node's entry state in ``rec`` = (rng, permutation, known
    constants, sample orders (may be empty), their offsets) and, with ``CACHE``, its split
    statistics in ``cache`` = (c_pos, c_val, c_best, c_node) (see
    :func:`~._builder.feature_stats`; ``c_best``: the feature picked, -1 none, -2 no
    search; ``c_node``: impurities of the children and gain of that pick); ``cache_ok``
    tells whether :func:`~._builder.simulate_split` reproduced every pick.  ``REPLAY``: the
    original build is ``orig_tree`` = (ints, flts, value, subtree ends) with its ``rec`` and
    ``cache``; ``on_path[v]`` marks the original nodes whose samples changed.
    """
    n, d = X.shape
    n_out = y.shape[1]
    crit, splitter, max_features = iprm[CRIT], iprm[SPLITTER], iprm[MAX_FEATURES]
    msl, mss, max_depth, mode = iprm[MSL], iprm[MSS], iprm[MAX_DEPTH], iprm[MODE]
    mwl, mid, w_removed = fprm[0], fprm[1], fprm[2]
    record, replay = (mode & RECORD) != 0, (mode & REPLAY) != 0
    exact_sums, use_cache = (mode & EXACT_SUMS) != 0, (mode & CACHE) != 0
    o_ints, o_flts, o_value, o_end = orig_tree
    c_pos, c_val, c_best, c_node = cache
    samples = np.empty(n, dtype=np.intp)
    n_pos = 0
    wn_samples = 0.0
    for i in range(n):
        if w[i] != 0.0:
            samples[n_pos] = i
            n_pos += 1
        wn_samples += w[i]
    fv = np.empty(n, dtype=np.float32)
    scratch = np.empty(n, dtype=np.intp)
    features = np.arange(d)
    constant_features = np.zeros(d, dtype=np.intp)
    saved = np.empty((2, d), dtype=np.intp)
    skip = np.zeros(d, dtype=np.bool_)
    # bounds on the proxies of the cached statistics decide which features cannot win
    prune = ((mode & PRUNE) != 0 and replay and c_pos.shape[0] > 0 and splitter == BEST
             and w_removed > 0 and iprm[JROW] >= 0)
    keep_order = not exact_sums
    order = np.empty(n, dtype=np.intp)
    keep = np.empty(n, dtype=np.intp)
    pend = np.empty(d, dtype=np.intp)
    tie_row = np.zeros(d)
    rng = np.empty(1, dtype=np.int64)
    rng[0] = seed
    max_nc = value.shape[2]
    sum_total = np.zeros((n_out, max_nc))
    sum_left = np.zeros((n_out, max_nc))
    sum_right = np.zeros((n_out, max_nc))
    st = np.empty((n_pos + 2, 7), dtype=np.intp)  # start, end, depth, parent, left, nconst, orig
    st_imp = np.empty(n_pos + 2)
    st[0, 0], st[0, 1], st[0, 2], st[0, 3] = 0, n_pos, 0, -1
    st[0, 4], st[0, 5], st[0, 6] = 0, 0, 0 if replay else -1
    st_imp[0] = np.inf
    top = 1
    first = True
    node_count = 0
    n_eval = 0
    n_sim = 0
    n_pruned = 0
    optr = 0
    cache_ok = True
    while top > 0:
        top -= 1
        start, end, depth = st[top, 0], st[top, 1], st[top, 2]
        parent, is_left, nconst, orig = st[top, 3], st[top, 4], st[top, 5], st[top, 6]
        imp = st_imp[top]
        n_node = end - start
        known = replay and orig >= 0 and not on_path[orig]
        # the node's impurity comes from its parent's sums: where those lost j it can round
        # otherwise (and decide a leaf), though the node's samples are the same
        if known and imp == o_flts[orig, 1] and _same_state(
                rng[0], features, nconst, samples, start, end, orig, rec, exact_sums):
            if parent >= 0:
                ints[parent, 0 if is_left else 1] = node_count
            stop = o_end[orig]
            node_count += _copy_subtree(ints, flts, value, node_count, orig, o_ints, o_flts,
                                        o_value, stop)
            rng[0] = rec[0][stop]
            features[:] = rec[1][stop]
            continue
        if known and use_cache and imp == o_flts[orig, 1]:
            # same samples, other random stream: pick the split from the cached statistics
            wn = o_flts[orig, 2]
            is_leaf = (depth >= max_depth or n_node < mss or n_node < 2 * msl
                       or wn < 2 * mwl or imp <= EPSILON)
            pos, feat, thr, il, ir, ok = end, 0, 0.0, np.inf, np.inf, True
            nconst_child = nconst
            if not is_leaf:
                r0 = rng[0]
                saved[0, :] = features
                saved[1, :] = constant_features
                best, nconst_child = simulate_split(features, constant_features, nconst, rng,
                                                    max_features, c_pos[orig], c_val[orig])
                if best != c_best[orig]:  # another pick: evaluate the node below
                    rng[0] = r0
                    features[:] = saved[0]
                    constant_features[:] = saved[1]
                    ok = False
                elif best >= 0:
                    pos, feat, thr = start + c_pos[orig, best], best, c_val[orig, best, 1]
                    il, ir, gain = c_node[orig, 0], c_node[orig, 1], c_node[orig, 2]
                    is_leaf = (wn / wn_samples) * gain + EPSILON < mid
                    _partition_final(X, samples, start, end, feat, thr)
                else:
                    is_leaf = True
            if ok:
                node = node_count
                node_count += 1
                n_sim += 1
                _write_node(ints, flts, value, node, parent, is_left, n_node, imp, wn, is_leaf,
                            feat, thr)
                value[node, :, :] = o_value[orig, :, :]
                if not is_leaf:
                    o_l, o_r = o_ints[orig, 0], o_ints[orig, 1]  # the same split as orig's
                    top = _push_children(st, st_imp, top, start, pos, end, depth, node,
                                         nconst_child, il, ir, o_l, o_r)
                continue
        if record:
            optr = _record_state(rec, cache, node_count, rng[0], features, nconst, samples,
                                 start, end, optr)
        n_eval += 1
        wn, sq = _crit_init(y, w, samples, start, end, crit, sum_total)
        is_leaf = (depth >= max_depth or n_node < mss or n_node < 2 * msl or wn < 2 * mwl)
        if first:
            imp = _node_impurity(crit, n_classes, sum_total, wn, sq)
            first = False
        is_leaf = is_leaf or imp <= EPSILON
        pos, feat, thr, il, ir, nconst_child = end, 0, 0.0, np.inf, np.inf, nconst
        if not is_leaf:
            if record and use_cache:
                scratch[start:end] = samples[start:end]
                feature_stats(X, y, w, scratch, fv, start, end, crit, n_classes, sum_total,
                              sum_left, sum_right, wn, msl, mwl, c_pos[node_count],
                              c_val[node_count])
                r0 = rng[0]
                saved[0, :] = features
                saved[1, :] = constant_features
                sim, _ = simulate_split(features, constant_features, nconst, rng, max_features,
                                        c_pos[node_count], c_val[node_count])
                rng[0] = r0
                features[:] = saved[0]
                constant_features[:] = saved[1]
            must, m_pos, m_proxy, m_thr, n_tie = -1, -1, -np.inf, 0.0, 0
            r0 = rng[0]
            # a node of the original tree: on j's path it lost j, else it has the same
            # samples (in another order, or entered with another random stream)
            lost = orig >= 0 and on_path[orig]
            # with order-dependent sums, only where b's sort can be reused (no ties): the
            # features skipped are then sorted again only when a tie needs their order
            if (prune and orig >= 0 and c_best[orig] >= 0
                    and not (keep_order and c_val[orig, c_best[orig], 2] > 0.0)):
                m_pos, m_proxy, m_thr, ties, marked = _prunable(
                    X, y, w, samples, scratch, fv, start, end, orig, c_pos, c_val,
                    c_best[orig], crit, n_classes, sum_total, sum_left, sum_right, wn, sq,
                    msl, mwl, w_removed if lost else 0.0, iprm[JROW] if lost else -1, skip)
                if m_pos >= 0:
                    must = c_best[orig]
                    tie_row[:] = c_val[orig, :, 2]
                    n_tie = d
                # with ties its sort (and sums) depend on the order: scored in place
                if ties and keep_order:
                    m_pos = -1
                if marked:
                    saved[0, :] = features
                    saved[1, :] = constant_features
                    keep[start:end] = samples[start:end]
            pos, feat, thr, il, ir, gain, nconst_child, valid = _node_split(
                X, y, w, samples, fv, start, end, features, constant_features, nconst, rng,
                splitter, max_features, msl, mwl, crit, n_classes, sum_total, sum_left,
                sum_right, wn, sq, imp, skip, keep_order, order, pend, must, m_pos, m_proxy,
                m_thr, scratch, tie_row[:n_tie])
            if valid and must >= 0:
                n_pruned += np.sum(skip) + (m_pos >= 0)
            skip[:] = False
            if not valid:  # other draws left b unscored: evaluate without skipping
                rng[0] = r0
                features[:] = saved[0]
                constant_features[:] = saved[1]
                samples[start:end] = keep[start:end]
                pos, feat, thr, il, ir, gain, nconst_child, valid = _node_split(
                    X, y, w, samples, fv, start, end, features, constant_features, nconst,
                    rng, splitter, max_features, msl, mwl, crit, n_classes, sum_total,
                    sum_left, sum_right, wn, sq, imp, skip, keep_order, order, pend, -1, -1,
                    -np.inf, 0.0, scratch, tie_row[:0])
            is_leaf = pos >= end or (wn / wn_samples) * gain + EPSILON < mid
            if record and use_cache:
                c_best[node_count] = feat if pos < end else -1
                c_node[node_count, 0] = il
                c_node[node_count, 1] = ir
                c_node[node_count, 2] = gain
                cache_ok &= sim == c_best[node_count]
        node = node_count
        node_count += 1
        _write_node(ints, flts, value, node, parent, is_left, n_node, imp, wn, is_leaf, feat,
                    thr)
        value[node, :, :] = 0.0
        for k in range(n_out):
            if crit == MSE:
                value[node, k, 0] = sum_total[k, 0] / wn
            else:
                for c in range(n_classes[k]):
                    value[node, k, c] = sum_total[k, c] / wn
        if is_leaf:
            continue
        o_l = o_r = -1
        if (replay and orig >= 0 and o_ints[orig, 0] >= 0 and o_ints[orig, 2] == feat
                and o_flts[orig, 0] == thr):
            o_l, o_r = o_ints[orig, 0], o_ints[orig, 1]
        top = _push_children(st, st_imp, top, start, pos, end, depth, node, nconst_child, il,
                             ir, o_l, o_r)
    if record:
        rec[0][node_count] = rng[0]
        rec[1][node_count, :] = features
    return node_count, n_eval, n_sim, cache_ok, n_pruned


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
def replay_deltas(X, Y, w, n_classes, iprm, mwl_fraction, mid, seed, orig_tree, rec, cache, js,
                  Xq, sel, diag, out, changed, evaluated):
    """Exact removal of each ``js[a]`` from one tree (see the module docstring).

    ``w`` is the tree's weight vector (restored on return); ``iprm`` as in :func:`grow`,
    with the mode bits of the replay.  ``diag``: query ``a`` only for ``js[a]`` (its own
    leave-one-out output).  ``changed[a]``: the regrown tree's splits differ from the
    original's; ``evaluated[a, 0]``: nodes evaluated in full (not copied or picked from
    cache), ``evaluated[a, 1]``: features at those nodes whose thresholds were not scanned
    again (pruned by :func:`_prunable`, or its scan reused).
    """
    n = X.shape[0]
    cap = 2 * n + 1
    n_out = Y.shape[1]
    o_ints, o_flts, o_value, _ = orig_tree
    ints = np.empty((cap, 4), dtype=np.intp)
    flts = np.empty((cap, 3))
    value = np.empty((cap, n_out, o_value.shape[2]))
    on_path = np.zeros(o_ints.shape[0], dtype=np.bool_)
    leaf0 = apply_rows(o_ints, o_flts, Xq)
    fprm = np.empty(3)
    fprm[1] = mid
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
        fprm[0] = mwl_fraction * (w_total - wj)
        fprm[2] = wj
        iprm[JROW] = j
        nn, ne, _, _, npr = grow(X, Y, w, n_classes, iprm, fprm, seed, ints, flts, value, rec,
                            orig_tree, on_path, cache)
        w[j] = wj
        changed[a] |= not _same_structure(ints, flts, nn, o_ints, o_flts)
        evaluated[a, 0] += ne
        evaluated[a, 1] += npr
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
