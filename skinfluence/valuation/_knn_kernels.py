"""numba kernels of KNN-Shapley: the closed forms of Jia et al. (VLDB 2019) per validation point.

Every kernel takes the squared distances ``D`` of a block of validation points to the
training points, an argsort of each row of ``D`` and an ``exclude`` index per row (``-1``,
or a training point that takes part in no game: the point itself when the training set
values itself), and writes the Shapley value of every training point for each validation
point into ``out``.  Training points are ranked by distance, nearest first, ties broken by
training index.
"""

import numpy as np
from numba import prange

from .._numba import njit

__all__ = ["knn_classifier_shapley_rows", "knn_regressor_shapley_rows", "merge_sorted_rows"]


@njit(cache=True)
def _game_order(d, order, skip, row):  # pragma: no cover - numba
    """The training points of one game ranked by distance ``d``, nearest first.

    ``order`` is an (unstable, fast) argsort of ``d``; runs of equal distances are
    re-sorted by index so that ties break deterministically.  ``skip >= 0`` is left out
    of the game, with value ``row[skip] = 0``.  Returns a new array.
    """
    order = order.copy()
    n = order.shape[0]
    t = 1
    while t < n:
        if d[order[t]] == d[order[t - 1]]:
            a = t - 1
            while t < n and d[order[t]] == d[order[a]]:
                t += 1
            order[a:t] = np.sort(order[a:t])
        else:
            t += 1
    if skip < 0:
        return order
    row[skip] = 0.0
    kept = np.empty(n - 1, dtype=order.dtype)
    j = 0
    for t in range(n):
        if order[t] != skip:
            kept[j] = order[t]
            j += 1
    return kept


@njit(parallel=True, cache=True)
def knn_classifier_shapley_rows(D, orders, y_train, y_val, k, exclude,
                                out):  # pragma: no cover - numba
    """Row ``r`` of ``out``: Shapley values of the K-NN classifier utility of validation row ``r``.

    Theorem 1 of Jia et al. on the ranked training points (1-based rank ``i``):
    ``s[N] = 1[y_N = y] / N * min(K, N) / K``,
    ``s[i] = s[i+1] + (1[y_i = y] - 1[y_{i+1} = y]) / K * min(K, i) / i``.
    ``y_train`` and ``y_val`` are integer class codes.
    """
    m = D.shape[0]
    for r in prange(m):
        row = out[r]
        order = _game_order(D[r], orders[r], exclude[r], row)
        n_eff = order.shape[0]
        if n_eff == 0:  # a one-point training set valuing itself: no game, all values 0
            continue
        yv = y_val[r]
        last = order[n_eff - 1]
        match_next = 1.0 if y_train[last] == yv else 0.0
        # the farthest point counts only in coalitions smaller than K (all of them if K >= N)
        s = match_next * min(k, n_eff) / (n_eff * k)
        row[last] = s
        for i in range(n_eff - 1, 0, -1):  # i is the 1-based rank of order[i - 1]
            idx = order[i - 1]
            match = 1.0 if y_train[idx] == yv else 0.0
            s = s + (match - match_next) / k * min(k, i) / i
            row[idx] = s
            match_next = match


@njit(parallel=True, cache=True)
def knn_regressor_shapley_rows(D, orders, y_train, y_val, k, exclude,
                               out):  # pragma: no cover - numba
    """Row ``r`` of ``out``: Shapley values of the K-NN regressor utility of validation row ``r``.

    The utility of a coalition ``S`` is ``-((sum of the targets of the min(K, |S|) points
    of S nearest to x) / K - y)^2``.  On the ranked training points (1-based rank ``i``,
    targets ``y_i``, a phantom ``y_{N+1} = 0`` with ``s[N+1] = 0``):
    ``s[i] = s[i+1] - (y_i - y_{i+1}) / K * (((y_i + y_{i+1}) / K - 2 y) * min(K, i) / i
    + 2 / K * (w[i+1] * (y_1 + ... + y_{i-1}) + w[i+2] y_{i+2} + ... + w[N] y_N))``
    with ``w[j] = L (L - 1) / (2 (j - 1) (j - 2))``, ``L = min(K, j - 1)`` (``w[j] = 0`` for
    ``j < 3``).  ``y_train`` and ``y_val`` are floats.
    """
    m = D.shape[0]
    inv_k = 1.0 / k
    for r in prange(m):
        row = out[r]
        order = _game_order(D[r], orders[r], exclude[r], row)
        n_eff = order.shape[0]
        if n_eff == 0:  # a one-point training set valuing itself: no game, all values 0
            continue
        ys = np.empty(n_eff + 1)  # targets by rank (0-based), then the phantom 0
        for t in range(n_eff):
            ys[t] = y_train[order[t]]
        ys[n_eff] = 0.0
        prefix = np.empty(n_eff + 1)  # prefix[i] = y_1 + ... + y_i (1-based ranks)
        prefix[0] = 0.0
        for t in range(n_eff):
            prefix[t + 1] = prefix[t] + ys[t]
        two_y = 2.0 * y_val[r]
        s = 0.0
        suffix = 0.0  # w[i+2] y_{i+2} + ... + w[N] y_N for the current i
        for i in range(n_eff, 0, -1):
            yi = ys[i - 1]
            y_next = ys[i]
            m_i = min(k, i)
            w_next = m_i * (m_i - 1) / (2.0 * i * (i - 1)) if i > 1 else 0.0  # w[i+1]
            mean_part = ((yi + y_next) * inv_k - two_y) * m_i / i
            rest = 2.0 * inv_k * (w_next * prefix[i - 1] + suffix)
            s = s - (yi - y_next) * inv_k * (mean_part + rest)
            row[order[i - 1]] = s
            suffix += w_next * y_next


@njit(cache=True)
def merge_sorted_rows(da, ia, db, ib):  # pragma: no cover - numba
    """Merge, row by row, two lists of training points sorted by distance.

    ``da``/``ia`` (distances, training indices) hold points whose indices are all smaller
    than those of ``db``/``ib`` (consecutive row blocks, earlier first); each row is
    sorted by distance, ties by index.  On equal distances the point of ``a`` comes
    first, so the merged rows are sorted by distance, ties by index, as one argsort of
    the union with ties broken by index.  Returns ``(d, i)`` of shape ``(m, na + nb)``.
    """
    m, na = da.shape
    nb = db.shape[1]
    d = np.empty((m, na + nb))
    idx = np.empty((m, na + nb), dtype=ia.dtype)
    for r in range(m):
        s = 0
        t = 0
        for u in range(na + nb):
            if t >= nb or (s < na and da[r, s] <= db[r, t]):
                d[r, u] = da[r, s]
                idx[r, u] = ia[r, s]
                s += 1
            else:
                d[r, u] = db[r, t]
                idx[r, u] = ib[r, t]
                t += 1
    return d, idx
