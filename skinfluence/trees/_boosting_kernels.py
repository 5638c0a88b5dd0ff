"""numba kernels of gradient-boosting influence: routing, leaf refits and their derivatives.

A boosted model here is ``n_iter`` iterations of ``K`` trees (one per output); tree
``s = t * K + k`` adds its leaf values to output ``k``.  Leaves of all trees share one
global numbering: tree ``s`` owns leaves ``leaf_start[s]:leaf_start[s + 1]``.  Training
points' leaves are stored per tree, ``leaves[s, i]`` (contiguous over points).

Leaf values follow scikit-learn's HistGradientBoosting: with per-sample weighted
gradients ``g`` and Hessians ``h`` of the loss at the previous iteration's outputs,
a leaf's value is ``(-G / (H + l2 + eps)) * learning_rate`` (``G``, ``H`` the sums
over the leaf, ``eps`` 1e-15), except a tree that is a single leaf, whose value stays 0.
GradientBoosting's leaves are the same Newton steps with ``l2 = 0`` (``eps`` 1e-300 and
the multinomial (K - 1) / K factor in the step; see ``_gb.py``).

Loss codes: 0 half squared error, 1 binomial log loss, 2 multinomial log loss,
3 half Poisson deviance, 4 half Gamma deviance (all with their canonical links).
"""

import math

import numpy as np

from .._numba import njit

SQUARED_ERROR, BINOMIAL, MULTINOMIAL, POISSON, GAMMA = 0, 1, 2, 3, 4
# scikit-learn's HistGradientBoosting adds this to every leaf's denominator
LEAF_EPS = 1e-15


# ------------------------------------------------------------------ routing
@njit(cache=True, nogil=True, inline="always")
def _in_bitset(bitsets, row, c):
    return (bitsets[row, c >> 5] >> np.uint32(c & 31)) & np.uint32(1)


@njit(cache=True, nogil=True)
def route(X, binned, missing_bin, roots, feature, threshold, missing_left, is_cat, bitset,
          left, right, leaf_id, bitsets, known_bitsets, f_idx_map):
    """Global leaf of every row of ``X`` in every tree: ``(n_trees, n)`` int32.

    Raw features (``binned=False``), as scikit-learn's predictor routes them: NaN follows
    the missing-value direction, ``x <= threshold`` goes left; a categorical value goes
    left when in the split's bitset, right when a known category, else (negative or
    unknown) it is treated as missing.  Binned features (``binned=True``, ``threshold``
    the bin thresholds and ``bitsets`` the binned ones), as the trees were grown: the
    bin ``missing_bin`` follows the missing-value direction.
    """
    n, T = X.shape[0], roots.shape[0]
    out = np.empty((T, n), dtype=np.int32)
    for s in range(T):
        for i in range(n):
            node = roots[s]
            while leaf_id[node] < 0:
                x = X[i, feature[node]]
                missing = x == missing_bin if binned else np.isnan(x)
                if missing:
                    go_left = missing_left[node] != 0
                elif is_cat[node]:
                    c = int(x) if x >= 0 and x < 256 else -1
                    if c >= 0 and _in_bitset(bitsets, bitset[node], c):
                        go_left = True
                    elif binned or (c >= 0 and _in_bitset(known_bitsets,
                                                          f_idx_map[feature[node]], c)):
                        go_left = False
                    else:
                        go_left = missing_left[node] != 0
                else:
                    go_left = x <= threshold[node]
                node = left[node] if go_left else right[node]
            out[s, i] = leaf_id[node]
    return out


# ------------------------------------------------------------ loss derivatives
@njit(cache=True, nogil=True)
def gradients(loss, y, F, w, g, h, round32):
    """Weighted gradients ``g`` and Hessians ``h`` (n, K) of the loss at outputs ``F``.

    The arithmetic is scikit-learn's; ``round32`` rounds each value to float32 as
    HistGradientBoosting stores them.
    """
    n, K = F.shape
    for i in range(n):
        wi = w[i]
        if loss == MULTINOMIAL:
            mx = F[i, 0]
            for k in range(1, K):
                if mx < F[i, k]:
                    mx = F[i, k]
            tot = 0.0
            for k in range(K):
                g[i, k] = math.exp(F[i, k] - mx)
                tot += g[i, k]
            for k in range(K):
                p = g[i, k] / tot
                g[i, k] = (p - (1.0 if y[i] == k else 0.0)) * wi
                h[i, k] = (p * (1.0 - p)) * wi
        else:
            z, yi = F[i, 0], y[i]
            if loss == SQUARED_ERROR:
                gi, hi = z - yi, 1.0
            elif loss == BINOMIAL:
                if z > -37.0:
                    e = math.exp(-z)
                    gi = ((1.0 - yi) - yi * e) / (1.0 + e)
                    hi = e / (1.0 + e) ** 2
                else:
                    e = math.exp(z)
                    gi, hi = e - yi, e
            elif loss == POISSON:
                hi = math.exp(z)
                gi = hi - yi
            else:  # GAMMA
                e = math.exp(-z)
                gi, hi = 1.0 - yi * e, yi * e
            g[i, 0] = wi * gi
            h[i, 0] = wi * hi
        if round32:
            for k in range(K):
                g[i, k] = np.float64(np.float32(g[i, k]))
                h[i, k] = np.float64(np.float32(h[i, k]))


@njit(cache=True, nogil=True)
def third_derivative_ratio(loss, F):
    """``h'(z) / h(z)`` of the scalar losses at outputs ``F`` (n, 1): how the Hessian
    moves with the output, relative to the Hessian (which is the gradient's derivative)."""
    n = F.shape[0]
    out = np.empty(n)
    for i in range(n):
        if loss == SQUARED_ERROR:
            out[i] = 0.0
        elif loss == BINOMIAL:
            out[i] = 1.0 - 2.0 / (1.0 + math.exp(-F[i, 0]))
        elif loss == POISSON:
            out[i] = 1.0
        else:  # GAMMA
            out[i] = -1.0
    return out


# ------------------------------------------------------------------ refits
@njit(cache=True, nogil=True)
def _iteration_leaves(leaves, t, g, h, F, leaf_start, fixed_zero, lr, l2, values, G, H, eps):
    """Leaf values of iteration ``t``'s K trees from weighted gradients and Hessians
    ``g``, ``h`` (n, K); sums ``G``, ``H`` and ``values`` filled for their leaves, and the
    trees added to the outputs ``F``."""
    n, K = F.shape
    for k in range(K):
        s = t * K + k
        a, b = leaf_start[s], leaf_start[s + 1]
        G[a:b] = 0.0
        H[a:b] = 0.0
        row = leaves[s]
        for i in range(n):
            G[row[i]] += g[i, k]
            H[row[i]] += h[i, k]
        for leaf in range(a, b):
            if fixed_zero[leaf]:
                values[leaf] = 0.0
            else:
                values[leaf] = (-G[leaf] / (H[leaf] + l2 + eps)) * lr
        for i in range(n):
            F[i, k] += values[row[i]]


@njit(cache=True, nogil=True)
def refit_leaf_values(loss, y, w, leaves, F, leaf_start, fixed_zero, n_iter, lr, l2,
                      round32, values, eps=LEAF_EPS):
    """Recompute every leaf value with the tree structures fixed; ``F`` (n, K) holds the
    baseline on entry and the final training outputs on exit; ``values`` (L,) is filled."""
    n, K = F.shape
    L = values.shape[0]
    g = np.empty((n, K))
    h = np.empty((n, K))
    G = np.zeros(L)
    H = np.zeros(L)
    for t in range(n_iter):
        gradients(loss, y, F, w, g, h, round32)
        _iteration_leaves(leaves, t, g, h, F, leaf_start, fixed_zero, lr, l2, values, G, H, eps)


@njit(cache=True, nogil=True)
def leaf_refit_columns(loss, y, w, leaves, cols, baselines, leaf_start, fixed_zero, n_iter,
                       lr, l2, values_ref, out, self_out, eps=LEAF_EPS):
    """Leaf-value changes (L, m) when each training point ``cols[c]`` is removed.

    ``baselines[c]`` is the model's baseline without that point; ``out[:, c]`` gets the
    refit leaf values minus ``values_ref``; ``self_out[c]`` (K,) the change of the removed
    point's own training output.
    """
    n = y.shape[0]
    K = baselines.shape[1]
    L = values_ref.shape[0]
    wj = w.copy()
    F = np.empty((n, K))
    vals = np.empty(L)
    for c in range(cols.shape[0]):
        j = cols[c]
        wj[j] = 0.0
        for i in range(n):
            for k in range(K):
                F[i, k] = baselines[c, k]
        refit_leaf_values(loss, y, wj, leaves, F, leaf_start, fixed_zero, n_iter, lr, l2,
                          False, vals, eps)
        for leaf in range(L):
            out[leaf, c] = vals[leaf] - values_ref[leaf]
        for k in range(K):
            self_out[c, k] = F[j, k]
        wj[j] = w[j]


# ------------------------------------------------------ first-order (LeafInfluence)
@njit(cache=True, nogil=True, inline="always")
def _output_derivatives(multinomial, gs, hs, r, Fd, i, gd, hd):
    """Directional derivatives of point ``i``'s unweighted gradients and Hessians (K,)
    when its outputs move by ``Fd[i]``.  ``gs``, ``hs``, ``r`` are the iteration's
    arrays: gradients, Hessians and (scalar losses) ``h'/h`` or (multinomial) ``p``."""
    K = Fd.shape[1]
    if multinomial:
        s = 0.0
        for k in range(K):
            s += r[i, k] * Fd[i, k]
        for k in range(K):
            p = r[i, k]
            gd[k] = p * (Fd[i, k] - s)
            hd[k] = (1.0 - 2.0 * p) * gd[k]
    else:
        gd[0] = hs[i, 0] * Fd[i, 0]
        hd[0] = r[i, 0] * gd[0]


@njit(cache=True, nogil=True)
def leaf_influence_columns(multinomial, w, leaves, cols, base_deriv, leaf_start, fixed_zero,
                           lr, l2, values, H, g, h, r, out, self_out, eps=LEAF_EPS):
    """First-order leaf-value changes (L, m) of removing each training point ``cols[c]``.

    Forward-mode derivative of :func:`refit_leaf_values` in the weight of the point,
    times ``-w_j``: later trees move with the outputs of the earlier ones.  ``g``, ``h``
    (n_iter, n, K) are the unweighted gradients and Hessians of the fit, ``r`` their
    :func:`_output_derivatives` companion, ``H`` (L,) the leaf Hessian sums, ``values``
    (L,) the leaf values; ``base_deriv[c]`` (K,) the baseline's derivative in the weight.
    ``self_out[c]`` (K,) gets the change of the point's own output.
    """
    n_iter, n, K = g.shape
    L = values.shape[0]
    Fd = np.empty((n, K))
    Gd = np.empty(L)
    Hd = np.empty(L)
    vd = np.empty(L)
    gd = np.empty(K)
    hd = np.empty(K)
    for c in range(cols.shape[0]):
        j = cols[c]
        scale = -w[j]
        for i in range(n):
            for k in range(K):
                Fd[i, k] = base_deriv[c, k]
        for t in range(n_iter):
            gs, hs, rs = g[t], h[t], r[t]
            a, b = leaf_start[t * K], leaf_start[t * K + K]
            Gd[a:b] = 0.0
            Hd[a:b] = 0.0
            for i in range(n):
                _output_derivatives(multinomial, gs, hs, rs, Fd, i, gd, hd)
                wi = w[i]
                for k in range(K):
                    leaf = leaves[t * K + k, i]
                    Gd[leaf] += wi * gd[k]
                    Hd[leaf] += wi * hd[k]
            for k in range(K):
                leaf = leaves[t * K + k, j]
                Gd[leaf] += gs[j, k]
                Hd[leaf] += hs[j, k]
            for leaf in range(a, b):
                if fixed_zero[leaf]:
                    vd[leaf] = 0.0
                else:
                    vd[leaf] = -(lr * Gd[leaf] + values[leaf] * Hd[leaf]) / (
                        H[leaf] + l2 + eps)
                out[leaf, c] = scale * vd[leaf]
            for k in range(K):
                row = leaves[t * K + k]
                for i in range(n):
                    Fd[i, k] += vd[row[i]]
        for k in range(K):
            self_out[c, k] = scale * Fd[j, k]


@njit(cache=True, nogil=True)
def leaf_influence_rows(multinomial, w, leaves, q_leaves, q_outputs, base_deriv, leaf_start,
                        fixed_zero, lr, l2, values, H, g, h, r, out, eps=LEAF_EPS):
    """First-order output changes of queries when each training point is removed.

    Reverse-mode derivative of :func:`refit_leaf_values`: one backward pass per query
    row ``e`` gives the derivative of its output ``q_outputs[e]`` in every training
    weight; ``out[e, j]`` is that times ``-w_j``.  ``q_leaves`` (n_trees, n_q) are the
    queries' leaves; the other arguments are those of :func:`leaf_influence_columns`.
    Queries go backward together in groups of 16, so the training arrays are read
    once per group.
    """
    n_iter, n, K = g.shape
    L = values.shape[0]
    nq = q_leaves.shape[1]
    B = 16
    Fb = np.empty((n, K, B))
    wb = np.empty((n, B))
    vb = np.empty((L, B))
    Gb = np.empty((L, B))
    Hb = np.empty((L, B))
    q = np.empty((K, B))
    tot = np.empty(B)
    for e0 in range(0, nq, B):
        nb = min(B, nq - e0)
        Fb[:, :, :] = 0.0
        wb[:, :] = 0.0
        for t in range(n_iter - 1, -1, -1):
            gs, hs, rs = g[t], h[t], r[t]
            for k in range(K):
                s = t * K + k
                a, b = leaf_start[s], leaf_start[s + 1]
                vb[a:b, :] = 0.0
                for c in range(nb):
                    if q_outputs[e0 + c] == k:
                        vb[q_leaves[s, e0 + c], c] += 1.0
                row = leaves[s]
                for i in range(n):
                    leaf = row[i]
                    for c in range(nb):
                        vb[leaf, c] += Fb[i, k, c]
                for leaf in range(a, b):
                    if fixed_zero[leaf]:
                        Gb[leaf, :] = 0.0
                        Hb[leaf, :] = 0.0
                    else:
                        d = H[leaf] + l2 + eps
                        for c in range(nb):
                            Gb[leaf, c] = -lr * vb[leaf, c] / d
                            Hb[leaf, c] = -values[leaf] * vb[leaf, c] / d
            for i in range(n):
                wi = w[i]
                tot[:] = 0.0
                for k in range(K):
                    leaf = leaves[t * K + k, i]
                    gik, hik, rik = gs[i, k], hs[i, k], rs[i, k]
                    for c in range(nb):
                        wb[i, c] += gik * Gb[leaf, c] + hik * Hb[leaf, c]
                    if multinomial:
                        for c in range(nb):
                            q[k, c] = wi * (Gb[leaf, c] + (1.0 - 2.0 * rik) * Hb[leaf, c]) * rik
                            tot[c] += q[k, c]
                    else:
                        for c in range(nb):
                            Fb[i, k, c] += wi * hik * (Gb[leaf, c] + rik * Hb[leaf, c])
                if multinomial:
                    for k in range(K):
                        for c in range(nb):
                            Fb[i, k, c] += q[k, c] - tot[c] * rs[i, k]
        for k in range(K):
            for c in range(nb):
                bb = 1.0 if q_outputs[e0 + c] == k else 0.0
                for i in range(n):
                    bb += Fb[i, k, c]
                for i in range(n):
                    wb[i, c] += bb * base_deriv[i, k]
        for c in range(nb):
            for i in range(n):
                out[e0 + c, i] = -w[i] * wb[i, c]


@njit(cache=True, nogil=True)
def record_fit(loss, y, w, leaves, F, leaf_start, fixed_zero, n_iter, lr, l2, values, H, g, h,
               r, eps=LEAF_EPS):
    """:func:`refit_leaf_values` in float64, recording what its derivatives need.

    Fills ``values`` and ``H`` (L,): leaf values and leaf Hessian sums; ``g``, ``h``
    (n_iter, n, K): each iteration's unweighted gradients and Hessians; ``r``: their
    companion of :func:`_output_derivatives` (``h'/h``, or the class probabilities).
    """
    n, K = F.shape
    ones = np.ones(n)
    G = np.zeros(values.shape[0])
    gw = np.empty((n, K))
    hw = np.empty((n, K))
    for t in range(n_iter):
        gradients(loss, y, F, ones, g[t], h[t], False)
        if loss == MULTINOMIAL:
            for i in range(n):
                for k in range(K):
                    r[t, i, k] = g[t, i, k] + (1.0 if y[i] == k else 0.0)
        else:
            r[t, :, 0] = third_derivative_ratio(loss, F)
        for i in range(n):
            for k in range(K):
                gw[i, k] = w[i] * g[t, i, k]
                hw[i, k] = w[i] * h[t, i, k]
        _iteration_leaves(leaves, t, gw, hw, F, leaf_start, fixed_zero, lr, l2, values, G, H, eps)


# ------------------------------------------------------------ BoostIn-style
@njit(cache=True, nogil=True)
def direct_leaf_changes(w, leaves, fixed_zero, lr, l2, values, H, g, h, eps=LEAF_EPS,
                        own_share=False):
    """Change ``(n_trees, n)`` of each training point's own leaf value in each tree when
    the point is removed, the other points' gradients held at the fit (no propagation
    to later trees): ``w_j (lr g_j + v h_j) / (H + l2)``.

    ``own_share``: the leaf's Hessian sum held fixed as well, so the change is the
    point's share of its leaf's value, negated, ``w_j lr g_j / (H + l2)`` (a leaf's
    value ``-lr G / (H + l2)`` is the sum of these shares over its points); ``h`` and
    ``values`` are then not read."""
    n_iter, n, K = g.shape
    out = np.empty((n_iter * K, n))
    for t in range(n_iter):
        for k in range(K):
            s = t * K + k
            row = leaves[s]
            for i in range(n):
                leaf = row[i]
                if fixed_zero[leaf]:
                    out[s, i] = 0.0
                elif own_share:
                    out[s, i] = w[i] * (lr * g[t, i, k]) / (H[leaf] + l2 + eps)
                else:
                    out[s, i] = w[i] * (lr * g[t, i, k] + values[leaf] * h[t, i, k]) / (
                        H[leaf] + l2 + eps)
    return out


@njit(cache=True, nogil=True)
def shares_at_weights(loss, y, w, leaves, q_leaf, base, leaf_start, fixed_zero, n_iter, lr,
                      l2, ptr, idx, shares, z_query, eps=LEAF_EPS):
    """One query's ``boostin_contribution`` shares in the model refit with weights ``w``.

    The leaf values are recomputed iteration by iteration with the structures fixed (as
    :func:`refit_leaf_values`, from the baseline ``base`` (K,)); ``z_query`` (K,) gets the
    query's outputs in that refit and ``shares[j, k]`` (n, K) the sum, over the trees of
    output ``k`` in which row ``j`` shares the query's leaf ``q_leaf[s]``, of
    ``w_j lr g_j / (H + l2)`` (``g_j`` its gradient at the refit's outputs, ``H`` the
    leaf's Hessian sum): the change of that leaf's value when ``j``'s gradient leaves the
    leaf's sum with ``H`` held.  Rows of weight 0 get 0.  ``(ptr, idx)``: the rows of each
    leaf (:func:`leaf_members`).

    For the binomial loss each row's ``exp(-z)`` is carried from one iteration to the
    next, multiplied by ``exp(-v)`` of the leaf it falls in (one exponential per leaf
    instead of one per row; equal to recomputing it to a relative 1e-13 over hundreds of
    iterations)."""
    n, K = shares.shape
    L = fixed_zero.shape[0]
    F = np.empty((n, K))
    for i in range(n):
        for k in range(K):
            F[i, k] = base[k]
            shares[i, k] = 0.0
    for k in range(K):
        z_query[k] = base[k]
    g = np.empty((n, K))
    h = np.empty((n, K))
    G = np.zeros(L)
    H = np.zeros(L)
    values = np.zeros(L)
    binomial = loss == BINOMIAL
    E = np.empty(n)  # binomial: exp(-F[:, 0])
    ev = np.empty(L)
    if binomial:
        for i in range(n):
            E[i] = math.exp(-F[i, 0])
    for t in range(n_iter):
        if not binomial:
            gradients(loss, y, F, w, g, h, False)
            _iteration_leaves(leaves, t, g, h, F, leaf_start, fixed_zero, lr, l2, values, G, H,
                              eps)
        else:  # one pass for gradients and leaf sums, one for the outputs
            a, b = leaf_start[t], leaf_start[t + 1]
            G[a:b] = 0.0
            H[a:b] = 0.0
            row = leaves[t]
            for i in range(n):
                z, yi, wi = F[i, 0], y[i], w[i]
                if z > -37.0:  # scikit-learn's two branches, exp(-z) carried
                    if E[i] <= 0.0:  # back from below -37 (or underflowed): recomputed
                        E[i] = math.exp(-z)
                    e = E[i]
                    g[i, 0] = wi * (((1.0 - yi) - yi * e) / (1.0 + e))
                    h[i, 0] = wi * (e / (1.0 + e) ** 2)
                else:
                    e = math.exp(z)
                    g[i, 0] = wi * (e - yi)
                    h[i, 0] = wi * e
                    E[i] = -1.0  # exp(-z) may overflow: not carried below -37
                G[row[i]] += g[i, 0]
                H[row[i]] += h[i, 0]
            for leaf in range(a, b):
                if fixed_zero[leaf]:
                    values[leaf] = 0.0
                else:
                    values[leaf] = (-G[leaf] / (H[leaf] + l2 + eps)) * lr
                ev[leaf] = math.exp(-values[leaf])
            for i in range(n):
                F[i, 0] += values[row[i]]
                E[i] *= ev[row[i]]
        for k in range(K):
            s = t * K + k
            leaf = q_leaf[s]
            z_query[k] += values[leaf]
            if fixed_zero[leaf]:
                continue
            d = lr / (H[leaf] + l2 + eps)
            for p in range(ptr[leaf], ptr[leaf + 1]):
                shares[idx[p], k] += d * g[idx[p], k]


@njit(cache=True, nogil=True)
def leaf_members(leaves, n_leaves):
    """CSR ``(ptr, idx)`` of the training points in each global leaf (counting sort)."""
    T, n = leaves.shape
    ptr = np.zeros(n_leaves + 1, dtype=np.int64)
    for s in range(T):
        for i in range(n):
            ptr[leaves[s, i] + 1] += 1
    for leaf in range(n_leaves):
        ptr[leaf + 1] += ptr[leaf]
    fill = ptr[:-1].copy()
    idx = np.empty(ptr[n_leaves], dtype=np.int64)
    for s in range(T):
        for i in range(n):
            leaf = leaves[s, i]
            idx[fill[leaf]] = i
            fill[leaf] += 1
    return ptr, idx


@njit(cache=True, nogil=True)
def shared_leaf_rows(q_leaves, q_weights, ptr, idx, coef, dense, out):
    """``out[e, j] += sum_s q_weights[s, e] * coef[p]`` over the trees ``s`` in which
    training point ``j = idx[p]`` shares query ``e``'s leaf (``coef`` aligned with
    ``idx``), skipping the leaves marked ``dense`` (added by a matrix product instead)."""
    T, nq = q_leaves.shape
    for e in range(nq):
        for s in range(T):
            a = q_weights[s, e]
            leaf = q_leaves[s, e]
            if a == 0.0 or dense[leaf]:
                continue
            for p in range(ptr[leaf], ptr[leaf + 1]):
                out[e, idx[p]] += a * coef[p]


@njit(cache=True, nogil=True, inline="always")
def _softplus(x):
    return x + math.log1p(math.exp(-x)) if x > 0.0 else math.log1p(math.exp(x))


@njit(cache=True, nogil=True)
def scalar_loss_change(loss, z, y, D):
    """In place: the output changes ``D[e, c]`` of queries with outputs ``z`` and targets
    ``y`` become the exact changes of their (unweighted) loss, for the scalar losses,
    written as differences so no large loss values cancel."""
    nq, m = D.shape
    for e in range(nq):
        ze, ye = z[e], y[e]
        sp0 = _softplus(ze)
        ez = math.exp(ze)
        yez = ye * math.exp(-ze)
        for c in range(m):
            d = D[e, c]
            if loss == SQUARED_ERROR:  # (z - y)^2 / 2
                D[e, c] = d * (ze - ye) + 0.5 * d * d
            elif loss == BINOMIAL:  # log(1 + e^z) - y z
                D[e, c] = _softplus(ze + d) - sp0 - ye * d
            elif loss == POISSON:  # e^z - y z
                D[e, c] = ez * math.expm1(d) - ye * d
            else:  # GAMMA: z + y e^-z
                D[e, c] = d + yez * math.expm1(-d)


# ----------------------------------------------------------------- gathering
@njit(cache=True, nogil=True)
def gather_output_changes(q_leaves, tree_output, V, base_change, out):
    """Output changes ``out`` (n_q, K, m) of queries from leaf-value changes ``V`` (L, m)
    and baseline changes ``base_change`` (K, m)."""
    T, nq = q_leaves.shape
    K, m = base_change.shape
    for e in range(nq):
        for k in range(K):
            for c in range(m):
                out[e, k, c] = base_change[k, c]
        for s in range(T):
            k = tree_output[s]
            leaf = q_leaves[s, e]
            for c in range(m):
                out[e, k, c] += V[leaf, c]
