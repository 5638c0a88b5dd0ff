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
* a node whose samples did not change but come in another order (removing ``j`` re-sorted
  tied values above it: their float sums round otherwise) takes the original subtree as it
  is when every decision in it holds for any order of its sums (mode bit ``ROBUST``,
  squared error with integer weights: :func:`_robust_walk`; the margins and stopping tests
  against the rounding bounds of :func:`node_bounds` and :func:`imp_bound`, recorded at fit
  time).  Its splits are then scikit-learn's; its values the original leaves', which differ
  from the refit's only by the rounding of ``sum / weight`` in another order (a few ulps);
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
RECORD, REPLAY, EXACT_SUMS, CACHE, PRUNE, ROBUST = 1, 2, 4, 8, 16, 32
_U = EPSILON / 2.0  # unit roundoff


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
    code, bound, thr, _ = feature_best(X, y, w, scratch, fv, start, end, b, crit, n_classes,
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


# ----------------------------------------------------------------- order-robust nodes
@njit(cache=True, nogil=True, inline="always")
def _gamma(m):
    """``gamma_m = m u / (1 - m u)``: the relative error bound of ``m`` float operations."""
    return m * _U / (1.0 - m * _U)


@njit(cache=True, nogil=True)
def node_bounds(y, w, samples, start, end):
    """Rounding bounds of the squared-error sums at a node, for integer weights (exact
    ``wl``, ``wr``, ``wn``, each at least 1), whatever order the samples are summed in.

    Returns ``(e_proxy, q, t, m2)``.  A sum ``S_k`` of ``w_i y_ik`` that scikit-learn forms
    (``sum_total``, and ``sum_left`` / ``sum_right`` by adding and subtracting from the
    cheaper end: a recursive sum of at most ``3 n`` rounded terms, ``n`` the samples) is
    within ``e_k = 5 gamma_(3n+2) A_k`` of the exact one (``A_k = Sum |w_i y_ik|``).  A
    proxy ``Sum_k S_lk^2 / wl + S_rk^2 / wr`` then moves by at most
    ``Sum_k (2 |S_lk| / wl) e_k + e_k^2 / wl + (right)`` ``<= 2 t`` with
    ``t = Sum_k (2 M_k e_k + e_k^2)`` (``|S_lk| / wl <= M_k = max |y_ik|``), plus the
    ``n_out + 4`` roundings of forming it, relative to at most ``q + 2 t``
    (``q = Sum w_i y_ik^2`` bounds every proxy).  ``m2 = Sum_k M_k^2``.  The bound holds
    for the cached proxies and for scikit-learn's: two proxies differ by more than twice
    it only if their order is the same in both.
    """
    n_out = y.shape[1]
    n = end - start
    q = 0.0
    t = 0.0
    m2 = 0.0
    for k in range(n_out):
        a = 0.0
        m = 0.0
        for p in range(start, end):
            i = samples[p]
            v = abs(y[i, k])
            a += w[i] * v
            q += w[i] * v * v
            m = max(m, v)
        a *= 1.0 + 2.0 * _gamma(n + 2.0)  # the sums above round too
        e = 5.0 * _gamma(3.0 * n + 2.0) * a
        t += 2.0 * m * e + e * e
        m2 += m * m
    q *= 1.0 + 2.0 * _gamma(n_out * n + 3.0)
    return 2.0 * t + _gamma(n_out + 4.0) * (q + 2.0 * t), q, t, m2


@njit(cache=True, nogil=True, inline="always")
def imp_bound(n, q, t, m2, wc):
    """Rounding bound of the squared-error impurity of a child of weight ``wc`` (or of the
    node itself, ``wc = wn``) as scikit-learn forms it from its parent's sums
    (``sq_left / wl - Sum_k (S_lk / wl)^2``, right: ``(sq_total - sq_left) / wr - ...``;
    the sums of squares within ``gamma_(n+1) q`` each), with :func:`node_bounds`' ``q``,
    ``t``, ``m2`` of the parent (``n`` samples)."""
    return (4.0 * _gamma(n + 3.0) * q + t) / wc + 8.0 * _U * (q / wc + m2)


@njit(cache=True, nogil=True)
def _all_zero(y, samples, start, end):
    """Whether every target of samples[start:end] is 0.  A left child's impurity is then
    ``0 / wl - (S_l / wl)^2 <= 0`` exactly, whatever the rounding of ``S_l``: a leaf in any
    order (a right child's, ``(sq_total - sq_left) / wr - ...``, is not so bounded)."""
    for p in range(start, end):
        for k in range(y.shape[1]):
            if y[samples[p], k] != 0.0:
                return False
    return True


@njit(cache=True, nogil=True)
def _subtree_ok(ints, c_node, n_nodes):
    """``c_node[v, 5]``: every node of ``v``'s subtree is order-robust (``c_node[:, 4]``)."""
    for v in range(n_nodes - 1, -1, -1):
        ok = c_node[v, 4] > 0.0
        if ints[v, 0] >= 0:
            ok = ok and c_node[ints[v, 0], 5] > 0.0 and c_node[ints[v, 1], 5] > 0.0
        c_node[v, 5] = 1.0 if ok else 0.0


@njit(cache=True, nogil=True)
def _robust_walk(o_ints, o_end, orig, rng, features, constant_features, nconst,
                 max_features, c_pos, c_val, c_best, c_node, nc_walk):
    """Whether scikit-learn grows the original subtree ``orig`` again from this random
    state, whatever order its samples come in (their set is the original one).

    Every node of it is order-robust apart from the random draws (``c_node[orig, 5]``):
    its stopping tests and the margin of its split over the feature's other thresholds
    exceed their rounding bounds.  The draws are replayed node by node in depth-first
    order (:func:`~._builder.simulate_split`, advancing ``rng``, ``features`` and
    ``constant_features`` as scikit-learn does); each must pick the original feature
    with a cached proxy above every other scored feature's by more than ``c_node[v, 3]``
    (twice the proxies' rounding bound, with a factor 2 to spare).  On False the state
    is left advanced part-way: the caller restores it.
    """
    nc_walk[orig] = nconst
    for v in range(orig, o_end[orig]):
        if c_best[v] == -2:  # a leaf before any search: no draws
            continue
        best, n_total, runner = simulate_split(features, constant_features, nc_walk[v], rng,
                                               max_features, c_pos[v], c_val[v])
        if best != c_best[v]:
            return False
        if best >= 0 and not c_val[v, best, 0] - runner > c_node[v, 3]:
            return False
        if o_ints[v, 0] >= 0:
            nc_walk[o_ints[v, 0]] = n_total
            nc_walk[o_ints[v, 1]] = n_total
    return True


@njit(cache=True, nogil=True)
def _robust_flag(c_pos, c_val, c_node, node, feat, split, is_leaf, imp, il, ir, gain, e_imp,
                 wn, wl, wr, wn_samples, w_max, mid, n, q, t, m2, all_visited):
    """``c_node[node, 4]``: 1.0 where the decisions of a searched node hold for any order
    of its samples (see :func:`_robust_walk`), 0.0 else.

    The impurity test (``imp <= EPSILON``) must be more than twice ``e_imp`` (the bound of
    ``imp``) from the threshold, with a factor 2 to spare; the split's best proxy above
    the feature's other thresholds by ``c_node[node, 3]``; and the
    ``min_impurity_decrease`` test must fall the same way for the gain moved by twice its
    bound (two spare) and every weight of the data without one row
    (``wn_samples - w_max .. wn_samples``).  ``all_visited`` (``max_features`` covers every
    feature): every non-constant feature is scored whatever the random draws, so the
    margin over the other features is checked here too (the walk then cannot fail).
    """
    if imp > EPSILON - 4.0 * e_imp and imp <= EPSILON + 4.0 * e_imp:
        return 0.0
    if not split:
        return 1.0
    if not c_val[node, feat, 0] - c_val[node, feat, 3] > c_node[node, 3]:
        return 0.0
    if all_visited:
        for f in range(c_pos.shape[1]):
            if f != feat and c_pos[node, f] >= 0 and not (
                    c_val[node, feat, 0] - c_val[node, f, 0] > c_node[node, 3]):
                return 0.0
    e_l = imp_bound(n, q, t, m2, wl)
    e_r = imp_bound(n, q, t, m2, wr)
    e_gain = 4.0 * (e_imp + e_l + e_r + 8.0 * _U * (abs(imp) + abs(il) + abs(ir)))
    if wn_samples - w_max <= 0.0:
        return 0.0
    c_lo = wn / wn_samples
    c_hi = wn / (wn_samples - w_max)
    lo = min(c_lo * (gain - e_gain), c_hi * (gain - e_gain))
    hi = max(c_lo * (gain + e_gain), c_hi * (gain + e_gain))
    slack = 4.0 * _U * (max(abs(lo), abs(hi)) + EPSILON)
    if is_leaf:
        return 1.0 if hi + EPSILON + slack < mid else 0.0
    return 1.0 if lo + EPSILON - slack >= mid else 0.0


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
    # order-robust subtrees (squared error, integer weights, float targets): taken as they
    # are when scikit-learn's decisions in them cannot depend on the order of the sums
    robust = (mode & ROBUST) != 0 and replay and c_node.shape[0] > 0
    bounds = record and use_cache and crit == MSE and c_node.shape[1] > 5
    nc_walk = np.empty(o_ints.shape[0] if robust else 0, dtype=np.intp)
    w_max = 0.0
    for i in range(n):
        w_max = max(w_max, w[i])
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
    st_eimp = np.zeros(n_pos + 2)  # rounding bound of st_imp (bounds)
    st[0, 0], st[0, 1], st[0, 2], st[0, 3] = 0, n_pos, 0, -1
    st[0, 4], st[0, 5], st[0, 6] = 0, 0, 0 if replay else -1
    st_imp[0] = np.inf
    top = 1
    first = True
    node_count = 0
    n_eval = 0
    n_sim = 0
    n_pruned = 0
    n_robust = 0
    e_prox, bq, bt, bm2, wl_b = 0.0, 0.0, 0.0, 0.0, 0.0
    optr = 0
    cache_ok = True
    while top > 0:
        top -= 1
        start, end, depth = st[top, 0], st[top, 1], st[top, 2]
        parent, is_left, nconst, orig = st[top, 3], st[top, 4], st[top, 5], st[top, 6]
        imp = st_imp[top]
        e_imp = st_eimp[top]
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
        if known and robust and c_node[orig, 5] > 0.0:
            # same samples in another order (or another random state): the original
            # subtree again if its decisions hold for any order of the sums
            r0 = rng[0]
            saved[0, :] = features
            saved[1, :] = constant_features
            if _robust_walk(o_ints, o_end, orig, rng, features, constant_features, nconst,
                            max_features, c_pos, c_val, c_best, c_node, nc_walk):
                if parent >= 0:
                    ints[parent, 0 if is_left else 1] = node_count
                stop = o_end[orig]
                node_count += _copy_subtree(ints, flts, value, node_count, orig, o_ints,
                                            o_flts, o_value, stop)
                n_robust += stop - orig
                continue
            rng[0] = r0
            features[:] = saved[0]
            constant_features[:] = saved[1]
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
                best, nconst_child, _ = simulate_split(features, constant_features, nconst,
                                                       rng, max_features, c_pos[orig],
                                                       c_val[orig])
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
        structural = is_leaf
        if bounds:
            e_prox, bq, bt, bm2 = node_bounds(y, w, samples, start, end)
            c_node[node_count, 3] = 4.0 * e_prox
            c_node[node_count, 4] = 1.0
        if first:
            imp = _node_impurity(crit, n_classes, sum_total, wn, sq)
            if bounds:
                e_imp = imp_bound(n_node, bq, bt, bm2, wn)
            first = False
        is_leaf = is_leaf or imp <= EPSILON
        if bounds and not structural and is_leaf:  # leaf by the impurity test
            c_node[node_count, 4] = _robust_flag(
                c_pos, c_val, c_node, node_count, 0, False, True, imp, 0.0, 0.0, 0.0, e_imp,
                wn, 1.0, 1.0, wn_samples, w_max, mid, n_node, 0.0, 0.0, 0.0, False)
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
                sim, _, _ = simulate_split(features, constant_features, nconst, rng,
                                           max_features, c_pos[node_count], c_val[node_count])
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
            elif (prune and robust and max_features >= d and orig >= 0 and not lost
                  and c_best[orig] >= 0 and c_node[orig, 4] > 0.0):
                # same samples, other order, and the node's own pick holds for any order
                # of its sums (its subtree does not): only its feature is scanned, in
                # scikit-learn's order; the others' sorts are still replayed for the order
                must = c_best[orig]
                for f in range(d):
                    skip[f] = f != must
                tie_row[:] = c_val[orig, :, 2]
                n_tie = d
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
            if bounds:
                wl_b = 0.0
                for p in range(start, pos):
                    wl_b += w[samples[p]]
                c_node[node_count, 4] = _robust_flag(
                    c_pos, c_val, c_node, node_count, feat, pos < end, is_leaf, imp, il, ir,
                    gain, e_imp, wn, wl_b, wn - wl_b, wn_samples, w_max, mid, n_node, bq, bt,
                    bm2, max_features >= d)
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
        if bounds:
            st_eimp[top - 2] = imp_bound(n_node, bq, bt, bm2, wn - wl_b)  # right child
            st_eimp[top - 1] = (0.0 if _all_zero(y, samples, start, pos)
                                else imp_bound(n_node, bq, bt, bm2, wl_b))
    if bounds:
        _subtree_ok(ints, c_node, node_count)
    if record:
        rec[0][node_count] = rng[0]
        rec[1][node_count, :] = features
    return node_count, n_eval, n_sim, cache_ok, n_pruned, n_robust


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
        nn, ne, _, _, npr, nrob = grow(X, Y, w, n_classes, iprm, fprm, seed, ints, flts,
                                       value, rec, orig_tree, on_path, cache)
        w[j] = wj
        changed[a] |= not _same_structure(ints, flts, nn, o_ints, o_flts)
        evaluated[a, 0] += ne
        evaluated[a, 1] += npr
        evaluated[a, 2] += nrob
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
