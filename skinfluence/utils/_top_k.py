"""Numba kernels of the per-row top-k of ``explain``: a running selection over column blocks.

Each row keeps its ``k`` largest and ``k`` smallest values seen so far, sorted, with their
column indices.  A block of columns updates them in one pass: each row is first checked for
a value that beats (or equals) its current ``k``-th ones in a branch-free, vectorised
sweep, and only rows holding one are walked entry by entry.  After the first few blocks
almost no row does, so almost every entry costs two comparisons.

A value enters only when it is strictly better than the ``k``-th, after the equal values
already held.  NaN never compares better, so it is never selected; nor are ``-inf``
(largest) and ``+inf`` (smallest): the slots they would fill keep index ``-1``.  Rows
where two selected values are equal, or a value equal to the ``k``-th was passed over,
are flagged ``tied``: the order of equal values is the caller's rule (see
:func:`skinfluence.base.top_k_over_blocks`).
"""

import numpy as np

from .._numba import njit


@njit(cache=True, nogil=True, inline="always")
def _insert_largest(vals, idx, v, j):
    """Insert ``v`` (column ``j``) into the descending ``vals``, the last entry dropping
    out; True if an equal value is already held."""
    p = vals.shape[0] - 1
    while p > 0 and vals[p - 1] < v:
        vals[p] = vals[p - 1]
        idx[p] = idx[p - 1]
        p -= 1
    vals[p] = v
    idx[p] = j
    return p > 0 and vals[p - 1] == v


@njit(cache=True, nogil=True, inline="always")
def _insert_smallest(vals, idx, v, j):
    """Insert ``v`` (column ``j``) into the ascending ``vals``, the last entry dropping
    out; True if an equal value is already held."""
    p = vals.shape[0] - 1
    while p > 0 and vals[p - 1] > v:
        vals[p] = vals[p - 1]
        idx[p] = idx[p - 1]
        p -= 1
    vals[p] = v
    idx[p] = j
    return p > 0 and vals[p - 1] == v


@njit(cache=True, nogil=True)
def _count_candidates(vals, tb, tw):
    """How many of ``vals`` reach the thresholds: branch-free, so it vectorises."""
    hits = 0
    for i in range(vals.shape[0]):
        v = vals[i]
        hits += (v >= tb) | (v <= tw)
    return hits


@njit(cache=True, nogil=True, inline="always")
def _offer(bv, bi, wv, wi, v, j):
    """Offer ``v`` (column ``j``) to one row's selections; True if it ties."""
    k = bv.shape[0]
    tied = False
    tb = bv[k - 1]
    if v > tb:
        tied |= _insert_largest(bv, bi, v, j)
    elif v == tb and tb != -np.inf:
        tied = True
    tw = wv[k - 1]
    if v < tw:
        tied |= _insert_smallest(wv, wi, v, j)
    elif v == tw and tw != np.inf:
        tied = True
    return tied


@njit(cache=True, nogil=True)
def top_k_update(block, col0, best_val, best_idx, worst_val, worst_idx, tied):
    """Fold a block ``(n, m)`` of columns ``col0 .. col0 + m - 1`` into the selections.

    ``best_*`` (n, k) hold each row's largest values in descending order, ``worst_*``
    the smallest in ascending order (they start from ``-inf`` / ``+inf`` and index
    ``-1``), ``tied`` (n,) the tie flags; all updated in place.
    """
    n, m = block.shape
    k = best_val.shape[1]
    for i in range(n):
        bv, bi, wv, wi = best_val[i], best_idx[i], worst_val[i], worst_idx[i]
        row = block[i]
        if _count_candidates(row, bv[k - 1], wv[k - 1]) == 0:
            continue
        t = False
        for j in range(m):
            v = row[j]
            if v >= bv[k - 1] or v <= wv[k - 1]:
                t |= _offer(bv, bi, wv, wi, v, col0 + j)
        if t:
            tied[i] = True


@njit(cache=True, nogil=True)
def top_k_merge(best_val, best_idx, worst_val, worst_idx, tied, nbv, nbi, nwv, nwi, ntied):
    """Fold the selections of a later block (``n*``; slots of index ``-1`` are empty) into
    the current ones, in place: the same result as if its columns had been seen here."""
    n, k = best_val.shape
    for i in range(n):
        t = ntied[i]
        for q in range(nbv.shape[1]):
            if nbi[i, q] < 0:
                break
            v = nbv[i, q]
            tb = best_val[i, k - 1]
            if v > tb:
                t |= _insert_largest(best_val[i], best_idx[i], v, nbi[i, q])
            elif v == tb:
                t = True
        for q in range(nwv.shape[1]):
            if nwi[i, q] < 0:
                break
            v = nwv[i, q]
            tw = worst_val[i, k - 1]
            if v < tw:
                t |= _insert_smallest(worst_val[i], worst_idx[i], v, nwi[i, q])
            elif v == tw:
                t = True
        if t:
            tied[i] = True


def empty_selection(n_rows, k):
    """``(best_val, best_idx, worst_val, worst_idx, tied)`` before any column."""
    return (np.full((n_rows, k), -np.inf), np.full((n_rows, k), -1, dtype=np.intp),
            np.full((n_rows, k), np.inf), np.full((n_rows, k), -1, dtype=np.intp),
            np.zeros(n_rows, dtype=np.bool_))
