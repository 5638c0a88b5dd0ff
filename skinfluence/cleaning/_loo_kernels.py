"""numba kernels of the cleaner's leave-one-out path (``_loo.py``)."""

import numpy as np

from .._numba import njit
from ..objectives._kernels import lu_solve_small

__all__ = ["newton_step_outputs", "pair_weighted_rows"]

# rows solved side by side: the K x K systems of a block sit in (K, K, rows) arrays so that
# every elimination step is one loop over rows the compiler vectorises
_ROWS = 64


@njit(cache=True, nogil=True)
def _newton_row(i, Z, r, S, w, Mp, ks, ls, Z_loo, M, A, v, c):
    """Row ``i`` of :func:`newton_step_outputs` by LU with partial pivoting; True if singular."""
    K = Z.shape[1]
    for q in range(ks.shape[0]):
        M[ks[q], ls[q]] = Mp[i, q]
        M[ls[q], ks[q]] = Mp[i, q]
    for a in range(K):
        v[a] = r[i, a]
        for b in range(K):
            acc = 0.0
            for m in range(K):
                acc += S[i, a, m] * M[m, b]
            A[a, b] = (1.0 if a == b else 0.0) - w[i] * acc
    singular = lu_solve_small(A, v, c)
    if singular:
        for a in range(K):
            c[a] = r[i, a]
    for a in range(K):
        acc = 0.0
        for b in range(K):
            acc += M[a, b] * c[b]
        Z_loo[i, a] = Z[i, a] + w[i] * acc
    return singular


@njit(cache=True, nogil=True, error_model="numpy")
def newton_step_outputs(Z, r, S, w, Mp, ks, ls, Z_loo):
    """Own outputs after the Newton step without each point, from pair-packed leverages.

    ``Z_loo[i] = Z[i] + w_i M_i (I - w_i S_i M_i)^{-1} r_i`` with ``M_i`` symmetric,
    its entries ``k <= l`` in ``Mp[i]`` (pairs ``ks``, ``ls``); a (numerically) singular
    ``I - w_i S_i M_i`` (leverage one) keeps the first-order step ``w_i M_i r_i`` and is
    flagged in the returned mask.

    The systems are solved ``_ROWS`` at a time by Gaussian elimination without row
    exchanges, which is exactly LU with partial pivoting wherever the diagonal pivot is
    the largest of its column (the usual case: ``I - w_i S_i M_i`` is close to ``I``).
    The rows where partial pivoting would exchange rows, or whose pivot is too small,
    are solved again one by one with pivoting (:func:`_newton_row`), so every row gets
    the same floating-point operations as the one-by-one solve.  One row at a time the
    solve is a chain of dependent divisions; side by side they pipeline.
    """
    n, K = Z.shape
    B = _ROWS
    M = np.empty((K, K, B))
    A = np.empty((K, K, B))
    v = np.empty((K, B))
    c = np.empty((K, B))
    f = np.empty(B)
    tol = np.empty(B)
    redo = np.empty(B, dtype=np.bool_)
    singular = np.zeros(n, dtype=np.bool_)
    M1 = np.empty((K, K))
    A1 = np.empty((K, K))
    v1 = np.empty(K)
    c1 = np.empty(K)
    for s in range(0, n, B):
        m = min(B, n - s)
        for j in range(m):
            i = s + j
            for q in range(ks.shape[0]):
                M[ks[q], ls[q], j] = Mp[i, q]
                M[ls[q], ks[q], j] = Mp[i, q]
            scale = 0.0
            for a in range(K):
                v[a, j] = r[i, a]
                for b in range(K):
                    acc = 0.0
                    for mm in range(K):
                        acc += S[i, a, mm] * M[mm, b, j]
                    A[a, b, j] = (1.0 if a == b else 0.0) - w[i] * acc
                    scale = max(scale, abs(A[a, b, j]))
            tol[j] = 1e-12 * max(scale, 1e-300)
            redo[j] = False
        for col in range(K):
            for j in range(m):
                d = abs(A[col, col, j])
                bad = d <= tol[j]
                for rr in range(col + 1, K):
                    bad |= abs(A[rr, col, j]) > d
                redo[j] |= bad
            for rr in range(col + 1, K):
                for j in range(m):
                    f[j] = A[rr, col, j] / A[col, col, j]
                for cc in range(col, K):
                    for j in range(m):
                        A[rr, cc, j] -= f[j] * A[col, cc, j]
                for j in range(m):
                    v[rr, j] -= f[j] * v[col, j]
        for rr in range(K - 1, -1, -1):
            for j in range(m):
                acc = v[rr, j]
                for cc in range(rr + 1, K):
                    acc -= A[rr, cc, j] * c[cc, j]
                c[rr, j] = acc / A[rr, rr, j]
        for j in range(m):
            i = s + j
            if redo[j]:
                singular[i] = _newton_row(i, Z, r, S, w, Mp, ks, ls, Z_loo, M1, A1, v1, c1)
                continue
            for a in range(K):
                acc = 0.0
                for b in range(K):
                    acc += M[a, b, j] * c[b, j]
                Z_loo[i, a] = Z[i, a] + w[i] * acc
    return singular


@njit(cache=True, nogil=True)
def pair_weighted_rows(X, W, G):
    """``G[i, q d + a] = W[i, q] X[i, a]``: each row's features once per weight ``q``."""
    d = X.shape[1]
    for i in range(X.shape[0]):
        for q in range(W.shape[1]):
            wq = W[i, q]
            for a in range(d):
                G[i, q * d + a] = wq * X[i, a]
