"""A numba replica of scikit-learn's tree splitters: one node's split, step for step.

scikit-learn grows a tree from the data *and* a random stream: at every node the features
are visited in an order drawn by a xorshift generator (``our_rand_r``) from a permutation
that persists from node to node, and a tie between equally good splits goes to the feature
visited first.  The stream and the permutation are consumed differently when the data
change (a feature found constant, a node that stops splitting), so a tree refit without one
point can break ties differently anywhere after that point in depth-first order.  Refitting
"without j" exactly therefore means replaying scikit-learn's arithmetic, not only its
criterion: this module does, step for step (``_splitter.pyx``, ``_partitioner.pyx``,
``_criterion.pyx``), for dense data without missing values, the ``best`` and ``random``
splitters and the squared-error, Gini and entropy criteria; :mod:`._introsort` sorts as
scikit-learn does and :func:`~._forest_kernels.grow` is the depth-first builder loop.

:func:`feature_best` / :func:`feature_stats` score features the way the best splitter does
and :func:`simulate_split` picks a node's split from such cached scores with the same
random draws, without sorting: exact where the criterion's sums are (integer weights and
targets), which the replays of :mod:`._forest_kernels` check before using them.
"""

import numpy as np

from .._numba import njit
from ._introsort import _sort, _swap

MSE, GINI, ENTROPY = 0, 1, 2
BEST, RANDOM = 0, 1
RAND_R_MAX = 2147483647
TREE_LEAF = -1
EPSILON = np.finfo(np.float64).eps


# ----------------------------------------------------------------- random stream
@njit(cache=True, nogil=True, inline="always")
def _rand_r(state):
    """scikit-learn's ``our_rand_r``: 32-bit xorshift, state kept in ``state[0]``."""
    s = state[0]
    if s == 0:
        s = 1
    s ^= (s << 13) & 0xFFFFFFFF
    s ^= s >> 17
    s ^= (s << 5) & 0xFFFFFFFF
    state[0] = s
    return s % 2147483648


# ----------------------------------------------------------------- criteria
@njit(cache=True, nogil=True)
def _crit_init(y, w, samples, start, end, crit, sum_total):
    sum_total[:, :] = 0.0
    n_out = y.shape[1]
    wn = 0.0
    sq = 0.0
    for p in range(start, end):
        i = samples[p]
        wi = w[i]
        if crit == MSE:
            for k in range(n_out):
                yik = y[i, k]
                wy = wi * yik
                sum_total[k, 0] += wy
                sq += wy * yik
        else:
            for k in range(n_out):
                sum_total[k, int(y[i, k])] += wi
        wn += wi
    return wn, sq


@njit(cache=True, nogil=True, inline="always")
def _crit_update(y, w, samples, crit, pos, new_pos, end, sum_total, sum_left, sum_right, wn, wl):
    """``Criterion.update``: samples[pos:new_pos] to the left, from the cheaper end."""
    n_out = y.shape[1]
    if (new_pos - pos) <= (end - new_pos):
        for p in range(pos, new_pos):
            i = samples[p]
            wi = w[i]
            if crit == MSE:
                for k in range(n_out):
                    sum_left[k, 0] += wi * y[i, k]
            else:
                for k in range(n_out):
                    sum_left[k, int(y[i, k])] += wi
            wl += wi
    else:
        sum_left[:, :] = sum_total
        wl = wn
        for p in range(end - 1, new_pos - 1, -1):
            i = samples[p]
            wi = w[i]
            if crit == MSE:
                for k in range(n_out):
                    sum_left[k, 0] -= wi * y[i, k]
            else:
                for k in range(n_out):
                    sum_left[k, int(y[i, k])] -= wi
            wl -= wi
    for k in range(sum_total.shape[0]):
        for c in range(sum_total.shape[1]):
            sum_right[k, c] = sum_total[k, c] - sum_left[k, c]
    return wl, wn - wl


@njit(cache=True, nogil=True, inline="always")
def _log2(x):
    return np.log(x) / np.log(2.0)


@njit(cache=True, nogil=True, inline="always")
def _clf_impurity(crit, n_classes, sums, wn):
    n_out = sums.shape[0]
    out = 0.0
    for k in range(n_out):
        if crit == GINI:
            sq = 0.0
            for c in range(n_classes[k]):
                sq += sums[k, c] * sums[k, c]
            out += 1.0 - sq / (wn * wn)
        else:
            for c in range(n_classes[k]):
                count = sums[k, c]
                if count > 0.0:
                    count /= wn
                    out -= count * _log2(count)
    return out / n_out


@njit(cache=True, nogil=True)
def _node_impurity(crit, n_classes, sum_total, wn, sq):
    if crit != MSE:
        return _clf_impurity(crit, n_classes, sum_total, wn)
    imp = sq / wn
    for k in range(sum_total.shape[0]):
        imp -= (sum_total[k, 0] / wn) ** 2.0
    return imp / sum_total.shape[0]


@njit(cache=True, nogil=True)
def _children_impurity(y, w, samples, crit, n_classes, start, pos, sum_left, sum_right, wl, wr,
                       sq_total):
    if crit != MSE:
        return (_clf_impurity(crit, n_classes, sum_left, wl),
                _clf_impurity(crit, n_classes, sum_right, wr))
    n_out = y.shape[1]
    sq_left = 0.0
    for p in range(start, pos):
        i = samples[p]
        wi = w[i]
        for k in range(n_out):
            yik = y[i, k]
            sq_left += wi * yik * yik
    il = sq_left / wl
    ir = (sq_total - sq_left) / wr
    for k in range(n_out):
        il -= (sum_left[k, 0] / wl) ** 2.0
        ir -= (sum_right[k, 0] / wr) ** 2.0
    return il / n_out, ir / n_out


@njit(cache=True, nogil=True, inline="always")
def _proxy(y, w, samples, crit, n_classes, start, pos, sum_left, sum_right, wl, wr):
    if crit == MSE:
        pl = 0.0
        pr = 0.0
        for k in range(sum_left.shape[0]):
            pl += sum_left[k, 0] * sum_left[k, 0]
            pr += sum_right[k, 0] * sum_right[k, 0]
        return pl / wl + pr / wr
    il = _clf_impurity(crit, n_classes, sum_left, wl)
    ir = _clf_impurity(crit, n_classes, sum_right, wr)
    return -wr * ir - wl * il


# ----------------------------------------------------------------- splitters
@njit(cache=True, nogil=True)
def _partition_final(X, samples, start, end, feature, threshold):
    ps = start
    pe = end
    while ps < pe:
        if X[samples[ps], feature] <= threshold:
            ps += 1
        else:
            pe -= 1
            t = samples[ps]
            samples[ps] = samples[pe]
            samples[pe] = t


@njit(cache=True, nogil=True)
def _sorted_by(X, samples, fv, start, end, feat):
    for p in range(start, end):
        fv[p] = X[samples[p], feat]
    _sort(fv, samples, start, end - start)


@njit(cache=True, nogil=True)
def _has_ties(fv, start, end):
    """Whether sorted fv[start:end] holds two equal values."""
    for p in range(start + 1, end):
        if fv[p] == fv[p - 1]:
            return True
    return False


@njit(cache=True, nogil=True)
def _catch_up(X, samples, fv, saved, start, end, pend, n_pend, feat, tied):
    """Sort samples[start:end] by ``feat`` as scikit-learn does after it also sorted them by
    the skipped features ``pend[:n_pend]`` (which this replica did not).

    An introsort only depends on its input order through ties, so when ``feat`` has no two
    equal values here the one sort is enough; otherwise the skipped sorts are replayed
    (at once when ``tied``: ``feat`` had ties before the point left).
    """
    if not tied:
        saved[start:end] = samples[start:end]
        _sorted_by(X, samples, fv, start, end, feat)
        if not _has_ties(fv, start, end):
            return
        samples[start:end] = saved[start:end]
    for a in range(n_pend):
        _sorted_by(X, samples, fv, start, end, pend[a])
    _sorted_by(X, samples, fv, start, end, feat)


@njit(cache=True, nogil=True)
def _node_split(X, y, w, samples, fv, start, end, features, constant_features, n_known, rng,
                splitter, max_features, msl, mwl, crit, n_classes, sum_total, sum_left,
                sum_right, wn, sq_total, impurity, skip, keep_order, saved, pend, must,
                must_pos, must_proxy, must_thr, must_order, tied):
    """``node_split_best`` / ``node_split_random`` on samples[start:end].

    ``skip[f]``: the best splitter draws feature ``f`` and checks whether it is constant
    (from its range, without sorting) but does not score its thresholds; for features
    known not to win against feature ``must`` (see the replay of :mod:`._forest_kernels`).
    ``must_pos >= 0``: ``must`` was scored by the caller (its best split sends
    ``must_pos`` samples left, with ``must_proxy``, ``must_thr``): not sorted again
    (with ``keep_order``, ``must`` has no ties and ``must_order[start:end]`` holds the
    samples sorted by it).  ``tied[f] > 0``: feature ``f`` is known to have ties here
    (empty: unknown).
    With ``keep_order`` (sums that round by order) the samples still end in scikit-learn's
    order: the sorts skipped are caught up with at the next sort (:func:`_catch_up`, with
    scratch ``saved`` (n,) and ``pend`` (n_features,)).

    Returns (pos, feature, threshold, impurity_left, impurity_right, gain,
    n_constant_features, valid): ``pos == end`` when no split was found; scikit-learn's
    improvement is ``(wn / wn_samples) * gain``, formed by the caller.  ``valid`` is False
    when a feature was skipped but ``must`` was not scored (other random draws): the
    caller evaluates the node again without skipping.
    """
    ft = np.float32(1e-7)
    n_features = X.shape[1]
    best_pos = end
    best_feat = 0
    best_thr = 0.0
    best_proxy = -np.inf
    imp_l = np.inf
    imp_r = np.inf
    gain = -np.inf
    cur_feat = -1
    f_i = n_features
    n_visited = 0
    n_found = 0
    n_drawn = 0
    n_total = n_known
    n_pend = 0
    skipped = False
    scored_must = False
    while f_i > n_total and (n_visited < max_features or n_visited <= n_found + n_drawn):
        n_visited += 1
        f_j = n_drawn + _rand_r(rng) % (f_i - n_found - n_drawn)
        if f_j < n_known:
            t = features[n_drawn]
            features[n_drawn] = features[f_j]
            features[f_j] = t
            n_drawn += 1
            continue
        f_j += n_found
        feat = features[f_j]
        cur_feat = feat
        if splitter == BEST and feat == must and must_pos >= 0:  # non-constant, scored
            if keep_order:
                pend[n_pend] = feat
                n_pend += 1
            f_i -= 1
            t = features[f_i]
            features[f_i] = features[f_j]
            features[f_j] = t
            scored_must = True
            if must_proxy > best_proxy:
                best_proxy = must_proxy
                best_thr = must_thr
                best_pos = start + must_pos
                best_feat = feat
            continue
        if splitter == BEST and not skip[feat]:
            if n_pend > 0:
                _catch_up(X, samples, fv, saved, start, end, pend, n_pend, feat,
                          tied.shape[0] > 0 and tied[feat] > 0.0)
                n_pend = 0
            else:
                _sorted_by(X, samples, fv, start, end, feat)
            lo = fv[start]
            hi = fv[end - 1]
        else:  # find_min_max, with its elif chain
            if splitter == BEST and keep_order:  # scikit-learn sorts here
                pend[n_pend] = feat
                n_pend += 1
            lo = X[samples[start], feat]
            hi = lo
            for p in range(start, end):
                v = X[samples[p], feat]
                fv[p] = v
                if p == start:
                    continue
                if v < lo:
                    lo = v
                elif v > hi:
                    hi = v
        if hi <= lo + ft:  # constant in this node
            features[f_j] = features[n_total]
            features[n_total] = feat
            n_found += 1
            n_total += 1
            continue
        f_i -= 1
        t = features[f_i]
        features[f_i] = features[f_j]
        features[f_j] = t
        if splitter == BEST:
            if skip[feat]:
                skipped = True
                continue
            scored_must |= feat == must
            sum_left[:, :] = 0.0
            sum_right[:, :] = sum_total
            wl = 0.0
            pos = start
            p = start
            while p < end:
                p += 1
                while p < end and fv[p] <= fv[p - 1] + ft:
                    p += 1
                if p == end:
                    continue
                if p - start < msl or end - p < msl:
                    continue
                wl, wr = _crit_update(y, w, samples, crit, pos, p, end, sum_total, sum_left,
                                      sum_right, wn, wl)
                pos = p
                if wl < mwl or wr < mwl:
                    continue
                proxy = _proxy(y, w, samples, crit, n_classes, start, p, sum_left, sum_right,
                               wl, wr)
                if proxy > best_proxy:
                    best_proxy = proxy
                    best_thr = fv[p - 1] / 2.0 + fv[p] / 2.0
                    best_pos = p
                    best_feat = feat
        else:
            lo64 = np.float64(lo)
            thr = ((np.float64(hi) - lo64) * np.float64(_rand_r(rng))
                   / np.float64(RAND_R_MAX)) + lo64
            if thr == hi:
                thr = lo64
            ps = start
            pe = end
            while ps < pe:
                if fv[ps] <= thr:
                    ps += 1
                else:
                    pe -= 1
                    _swap(fv, samples, ps, pe)
            p = pe
            if p - start < msl or end - p < msl:
                continue
            sum_left[:, :] = 0.0
            sum_right[:, :] = sum_total
            wl, wr = _crit_update(y, w, samples, crit, start, p, end, sum_total, sum_left,
                                  sum_right, wn, 0.0)
            if wl < mwl or wr < mwl:
                continue
            proxy = _proxy(y, w, samples, crit, n_classes, start, p, sum_left, sum_right, wl, wr)
            if proxy > best_proxy:
                best_proxy = proxy
                best_thr = thr
                best_pos = p
                best_feat = feat
    if n_pend > 0:  # the last sorts were skipped
        if pend[n_pend - 1] == must and must_pos >= 0:  # tie-free: one order, known
            samples[start:end] = must_order[start:end]
        else:
            g = pend[n_pend - 1]
            _catch_up(X, samples, fv, saved, start, end, pend, n_pend - 1, g,
                      tied.shape[0] > 0 and tied[g] > 0.0)
    if skipped and not scored_must:
        return end, 0, 0.0, np.inf, np.inf, -np.inf, n_total, False
    if best_pos < end:
        if splitter == BEST or cur_feat != best_feat:
            _partition_final(X, samples, start, end, best_feat, best_thr)
        sum_left[:, :] = 0.0
        sum_right[:, :] = sum_total
        wl, wr = _crit_update(y, w, samples, crit, start, best_pos, end, sum_total, sum_left,
                              sum_right, wn, 0.0)
        imp_l, imp_r = _children_impurity(y, w, samples, crit, n_classes, start, best_pos,
                                          sum_left, sum_right, wl, wr, sq_total)
        gain = impurity - (wr / wn * imp_r) - (wl / wn * imp_l)
    for a in range(n_known):
        features[a] = constant_features[a]
    for a in range(n_known, n_known + n_found):
        constant_features[a] = features[a]
    return best_pos, best_feat, best_thr, imp_l, imp_r, gain, n_total, True


# ----------------------------------------------------------------- cached split statistics
@njit(cache=True, nogil=True)
def feature_best(X, y, w, samples, fv, start, end, feat, crit, n_classes, sum_total, sum_left,
                 sum_right, wn, msl, mwl):
    """A feature's best split of samples[start:end], as the best splitter scores it.

    Returns ``(code, proxy, threshold, second)``: ``code`` -2 if the feature is constant
    here, -1 without a valid threshold, else the number of samples going left at its first
    best threshold; ``second`` the best proxy of its other thresholds (-inf: none).
    ``samples`` and ``fv`` are scratch (reordered).  Exact only where the criterion's sums
    are (integer data): the order of the samples is not kept.
    """
    ft = np.float32(1e-7)
    for p in range(start, end):
        fv[p] = X[samples[p], feat]
    _sort(fv, samples, start, end - start)
    if fv[end - 1] <= fv[start] + ft:
        return -2, -np.inf, 0.0, -np.inf
    code, best, thr, second = -1, -np.inf, 0.0, -np.inf
    sum_left[:, :] = 0.0
    sum_right[:, :] = sum_total
    wl = 0.0
    pos = start
    p = start
    while p < end:
        p += 1
        while p < end and fv[p] <= fv[p - 1] + ft:
            p += 1
        if p == end or p - start < msl or end - p < msl:
            continue
        wl, wr = _crit_update(y, w, samples, crit, pos, p, end, sum_total, sum_left,
                              sum_right, wn, wl)
        pos = p
        if wl < mwl or wr < mwl:
            continue
        proxy = _proxy(y, w, samples, crit, n_classes, start, p, sum_left, sum_right, wl, wr)
        if proxy > best:
            second = best
            code, best, thr = p - start, proxy, fv[p - 1] / 2.0 + fv[p] / 2.0
        elif proxy > second:
            second = proxy
    return code, best, thr, second


@njit(cache=True, nogil=True)
def feature_stats(X, y, w, samples, fv, start, end, crit, n_classes, sum_total, sum_left,
                  sum_right, wn, msl, mwl, c_pos, c_val):
    """:func:`feature_best` of every feature into ``c_pos[f]``, ``c_val[f]`` = (proxy,
    threshold, 1.0 if two samples share a value of ``f`` else 0.0, the best proxy of its
    other thresholds)."""
    for feat in range(X.shape[1]):
        c_pos[feat], c_val[feat, 0], c_val[feat, 1], c_val[feat, 3] = feature_best(
            X, y, w, samples, fv, start, end, feat, crit, n_classes, sum_total, sum_left,
            sum_right, wn, msl, mwl)
        c_val[feat, 2] = 1.0 if _has_ties(fv, start, end) else 0.0


@njit(cache=True, nogil=True)
def near_value(X, samples, start, end, feat, x):
    """Whether a sample of samples[start:end] has feature ``feat`` within 2e-7 of ``x``."""
    tol = np.float32(2e-7)
    for p in range(start, end):
        if abs(X[samples[p], feat] - x) <= tol:
            return True
    return False


@njit(cache=True, nogil=True)
def simulate_split(features, constant_features, n_known, rng, max_features, c_pos, c_val):
    """The feature ``node_split_best`` picks from cached statistics (-1: none), drawing the
    same random numbers and permuting ``features`` as it does; n_constant_features; and the
    best cached proxy of the other features it scored (the runner-up, -inf: none)."""
    f_i = features.shape[0]
    n_visited = 0
    n_found = 0
    n_drawn = 0
    n_total = n_known
    best = -1
    best_proxy = -np.inf
    runner = -np.inf
    while f_i > n_total and (n_visited < max_features or n_visited <= n_found + n_drawn):
        n_visited += 1
        f_j = n_drawn + _rand_r(rng) % (f_i - n_found - n_drawn)
        if f_j < n_known:
            t = features[n_drawn]
            features[n_drawn] = features[f_j]
            features[f_j] = t
            n_drawn += 1
            continue
        f_j += n_found
        feat = features[f_j]
        if c_pos[feat] == -2:
            features[f_j] = features[n_total]
            features[n_total] = feat
            n_found += 1
            n_total += 1
            continue
        f_i -= 1
        t = features[f_i]
        features[f_i] = features[f_j]
        features[f_j] = t
        if c_pos[feat] >= 0:
            if c_val[feat, 0] > best_proxy:
                runner = best_proxy
                best_proxy = c_val[feat, 0]
                best = feat
            elif c_val[feat, 0] > runner:
                runner = c_val[feat, 0]
    for a in range(n_known):
        features[a] = constant_features[a]
    for a in range(n_known, n_known + n_found):
        constant_features[a] = features[a]
    return best, n_total, runner
