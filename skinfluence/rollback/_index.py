"""Candidate lists of the rollbacks: which training examples to score for each query."""

import numpy as np

from .._numba import njit


@njit(cache=True, nogil=True)
def csr_of_ids(cols, n_ids):
    """CSR (ptr, idx) listing, for each id, the examples holding it in any of
    the columns of ``cols`` (once per example, ascending): a counting sort,
    O(n) instead of an argsort."""
    n, m = cols.shape
    ptr = np.zeros(n_ids + 1, dtype=np.int64)
    for i in range(n):
        for c in range(m):
            if _first_in_row(cols, i, c):
                ptr[cols[i, c] + 1] += 1
    for v in range(n_ids):
        ptr[v + 1] += ptr[v]
    fill = ptr[:-1].copy()
    idx = np.empty(ptr[n_ids], dtype=np.int64)
    for i in range(n):
        for c in range(m):
            if _first_in_row(cols, i, c):
                v = cols[i, c]
                idx[fill[v]] = i
                fill[v] += 1
    return ptr, idx


@njit(cache=True, nogil=True, inline="always")
def _first_in_row(cols, i, c):
    """True unless ``cols[i, c]`` already appears earlier in row ``i``."""
    for c2 in range(c):
        if cols[i, c2] == cols[i, c]:
            return False
    return True


@njit(cache=True, nogil=True)
def scatter_add_rows(out, rows, vals):
    """``out[rows[i]] += vals[i]`` (np.add.at for 2-D rows, without its overhead)."""
    d = out.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        for k in range(d):
            out[r, k] += vals[i, k]


@njit(cache=True, nogil=True)
def kg_candidates(qh, qr, qt, ent_ptr, ent_idx, rel_ptr, rel_idx, n_train, scope_all):
    """CSR (ptr, idx) of training examples to score for each query.

    ``scope_all``: every training example (rolling any of them back moves the
    softmax normaliser); otherwise the neighbourhood of the query, i.e. the
    examples whose head or tail is the query's head or tail, or whose
    relation is the query's relation (the only ones whose rollback changes
    the query's own score).
    """
    nq = qh.shape[0]
    ptr = np.zeros(nq + 1, dtype=np.int64)
    if scope_all:
        for a in range(nq):
            ptr[a + 1] = ptr[a] + n_train
        idx = np.empty(ptr[nq], dtype=np.int64)
        for a in range(nq):
            for j in range(n_train):
                idx[ptr[a] + j] = j
        return ptr, idx
    # neighbourhood: union of the examples listed under the query's head, tail, relation
    lo = np.empty((nq, 3), dtype=np.int64)
    hi = np.empty((nq, 3), dtype=np.int64)
    off = ent_idx.shape[0]  # relation lists follow the entity lists in `lists`
    for a in range(nq):
        lo[a, 0], hi[a, 0] = ent_ptr[qh[a]], ent_ptr[qh[a] + 1]
        lo[a, 1], hi[a, 1] = ent_ptr[qt[a]], ent_ptr[qt[a] + 1]
        lo[a, 2], hi[a, 2] = off + rel_ptr[qr[a]], off + rel_ptr[qr[a] + 1]
    return union_of_lists(lo, hi, np.concatenate((ent_idx, rel_idx)), n_train)


@njit(cache=True, nogil=True)
def union_of_lists(lo, hi, lists, n_train):
    """CSR (ptr, idx): for each query ``a``, the sorted union of ``lists[lo[a, s]:hi[a, s]]``.

    Two passes (count, then fill) with a per-query stamp to drop duplicates;
    sorted within each query for reproducible output.
    """
    nq, n_src = lo.shape
    ptr = np.zeros(nq + 1, dtype=np.int64)
    idx = np.empty(0, dtype=np.int64)
    stamp = np.full(n_train, -1, dtype=np.int64)
    for pass_ in range(2):
        if pass_ == 1:
            idx = np.empty(ptr[nq], dtype=np.int64)
            stamp[:] = -1
        for a in range(nq):
            cnt = 0
            for src in range(n_src):
                for p in range(lo[a, src], hi[a, src]):
                    j = lists[p]
                    if stamp[j] != a:
                        stamp[j] = a
                        if pass_ == 1:
                            idx[ptr[a] + cnt] = j
                        cnt += 1
            if pass_ == 0:
                ptr[a + 1] = ptr[a] + cnt
    for a in range(nq):
        idx[ptr[a]:ptr[a + 1]] = np.sort(idx[ptr[a]:ptr[a + 1]])
    return ptr, idx


@njit(cache=True, nogil=True)
def mf_candidates(qu, qi, u_ptr, u_idx, i_ptr, i_idx, n_train):
    """CSR of training examples sharing the user or the item of each query."""
    nq = qu.shape[0]
    lo = np.empty((nq, 2), dtype=np.int64)
    hi = np.empty((nq, 2), dtype=np.int64)
    off = u_idx.shape[0]  # item lists follow the user lists in `lists`
    for a in range(nq):
        lo[a, 0], hi[a, 0] = u_ptr[qu[a]], u_ptr[qu[a] + 1]
        lo[a, 1], hi[a, 1] = off + i_ptr[qi[a]], off + i_ptr[qi[a] + 1]
    return union_of_lists(lo, hi, np.concatenate((u_idx, i_idx)), n_train)
