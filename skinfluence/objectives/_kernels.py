"""Numba kernels shared by the linear-model objectives.

Kept apart from the objective classes: they take plain arrays and know nothing
about estimators.  All are compiled lazily (no signatures), cached on disk, and
accept read-only inputs.
"""

import numpy as np
from numba import prange

from .._numba import njit, parallel_above


@njit(cache=True, nogil=True)
def csr_weighted_gram(data, indices, indptr, n_features, row_weights):
    """``X^T diag(row_weights) X`` for a CSR matrix, as a dense (d, d) array.

    Cost is ``sum_i nnz_i^2``: the right kernel for sparse rows, where a dense
    BLAS product would touch every zero.
    """
    out = np.zeros((n_features, n_features))
    n_rows = indptr.shape[0] - 1
    for i in range(n_rows):
        w = row_weights[i]
        if w == 0.0:
            continue
        start, stop = indptr[i], indptr[i + 1]
        for a in range(start, stop):
            va = w * data[a]
            ia = indices[a]
            for b in range(start, stop):
                out[ia, indices[b]] += va * data[b]
    return out


@njit(cache=True, nogil=True)
def csr_weighted_colsum(data, indices, indptr, n_features, row_weights):
    """``X^T row_weights`` for a CSR matrix (the feature/intercept Hessian block)."""
    out = np.zeros(n_features)
    n_rows = indptr.shape[0] - 1
    for i in range(n_rows):
        w = row_weights[i]
        for a in range(indptr[i], indptr[i + 1]):
            out[indices[a]] += w * data[a]
    return out


@njit(cache=True, nogil=True)
def csr_row_quadratic_forms(data, indices, indptr, A, out):
    """``out[i] = x_i^T A x_i`` for each CSR row ``x_i`` and dense symmetric ``A``."""
    n_rows = indptr.shape[0] - 1
    for i in range(n_rows):
        acc = 0.0
        start, stop = indptr[i], indptr[i + 1]
        for a in range(start, stop):
            va = data[a]
            ia = indices[a]
            for b in range(start, stop):
                acc += va * data[b] * A[ia, indices[b]]
        out[i] = acc
    return out


@njit(cache=True, nogil=True)
def lu_solve_small(M, v, x):
    """Solve ``M x = v`` for one small (K, K) system by LU with partial pivoting.

    ``M`` and ``v`` are overwritten.  Returns True (leaving ``x`` untouched) when a
    pivot falls below 1e-12 times the largest entry of ``M``: singular.
    """
    K = v.shape[0]
    scale = 0.0
    for r in range(K):
        for c in range(K):
            scale = max(scale, abs(M[r, c]))
    for col in range(K):
        piv = col
        for r in range(col + 1, K):
            if abs(M[r, col]) > abs(M[piv, col]):
                piv = r
        if abs(M[piv, col]) <= 1e-12 * max(scale, 1e-300):
            return True
        if piv != col:
            for c in range(K):
                tmp = M[col, c]
                M[col, c] = M[piv, c]
                M[piv, c] = tmp
            tmp = v[col]
            v[col] = v[piv]
            v[piv] = tmp
        for r in range(col + 1, K):
            f = M[r, col] / M[col, col]
            if f != 0.0:
                for c in range(col, K):
                    M[r, c] -= f * M[col, c]
                v[r] -= f * v[col]
    for r in range(K - 1, -1, -1):
        acc = v[r]
        for c in range(r + 1, K):
            acc -= M[r, c] * x[c]
        x[r] = acc / M[r, r]
    return False


@njit(cache=True, nogil=True)
def solve_small_systems(A, b):
    """Solve ``A[i] x_i = b[i]`` for a stack of small (K, K) systems by LU with partial pivoting.

    Returns ``(x, singular)`` where ``singular[i]`` flags a pivot below 1e-12
    times the largest pivot magnitude (``x[i]`` is then left as ``b[i]``).
    """
    n, K = b.shape
    x = np.empty((n, K))
    singular = np.zeros(n, dtype=np.bool_)
    M = np.empty((K, K))
    v = np.empty(K)
    xi = np.empty(K)
    for i in range(n):
        for r in range(K):
            v[r] = b[i, r]
            for c in range(K):
                M[r, c] = A[i, r, c]
        if lu_solve_small(M, v, xi):
            singular[i] = True
            for r in range(K):
                x[i, r] = b[i, r]
        else:
            for r in range(K):
                x[i, r] = xi[r]
    return x, singular


# ----------------------------------------------------------------- losses
@njit(cache=True, nogil=True)
def _softplus(z):
    # log(1 + exp(z)) without overflow
    if z > 0.0:
        return z + np.log1p(np.exp(-z))
    return np.log1p(np.exp(z))


@parallel_above()
@njit(cache=True, nogil=True, parallel=True)
def binary_logloss_change(Z0, y, D, out):
    """``out[i, j] = l(z_i + D[i, j], y_i) - l(z_i, y_i)`` for the binary log-loss.

    ``l(z, y) = softplus(z) - y z`` with ``y`` in {0, 1}.  Fused over a block
    of the influence matrix so the matrix is touched once after the GEMM.
    ``out`` may be ``D`` itself (elementwise).

    Leave-one-out output changes are mostly tiny, and there the difference of
    two softplus values loses digits to cancellation and costs two
    transcendentals: for ``|d| <= 1e-3`` the Taylor series in ``d`` (derivatives
    of the loss are polynomials in ``s = sigmoid(z)``) to fifth order is used,
    whose remainder is below 1e-20.
    """
    n, m = D.shape
    for i in prange(n):
        z = Z0[i]
        base = _softplus(z)
        yi = y[i]
        s = np.exp(z - base)  # sigmoid(z) = exp(z - softplus(z)), no overflow
        v = s * (1.0 - s)
        c1 = s - yi
        c2 = v / 2.0
        c3 = v * (1.0 - 2.0 * s) / 6.0
        c4 = v * (1.0 - 6.0 * v) / 24.0
        c5 = v * (1.0 - 2.0 * s) * (1.0 - 12.0 * v) / 120.0
        if D.ctypes.data == out.ctypes.data:  # in place: one pass, D read before written
            for j in range(m):
                d = D[i, j]
                if abs(d) <= 1e-3:
                    out[i, j] = d * (c1 + d * (c2 + d * (c3 + d * (c4 + d * c5))))
                else:
                    out[i, j] = _softplus(z + d) - base - yi * d
            continue
        # the series for every entry first (no branch: vectorised), then the few entries
        # beyond its range again: the same numbers as choosing per entry
        beyond = 0
        for j in range(m):
            d = D[i, j]
            beyond += abs(d) > 1e-3
            out[i, j] = d * (c1 + d * (c2 + d * (c3 + d * (c4 + d * c5))))
        if beyond:
            for j in range(m):
                d = D[i, j]
                if abs(d) > 1e-3:
                    out[i, j] = _softplus(z + d) - base - yi * d
    return out


@parallel_above(work=lambda *args: args[-2].size)  # D: (n, K, m)
@njit(cache=True, nogil=True, parallel=True)
def multinomial_logloss_change(Z0, y, D, out):
    """``out[i, j] = l(z_i + D[i, :, j], y_i) - l(z_i, y_i)`` for the softmax log-loss.

    ``Z0`` is (n, K), ``D`` is (n, K, m), ``y`` holds class indices.
    """
    n, K, m = D.shape
    for i in prange(n):
        zmax = Z0[i, 0]
        for k in range(1, K):
            zmax = max(zmax, Z0[i, k])
        s = 0.0
        for k in range(K):
            s += np.exp(Z0[i, k] - zmax)
        base = zmax + np.log(s) - Z0[i, y[i]]
        for j in range(m):
            zm = Z0[i, 0] + D[i, 0, j]
            for k in range(1, K):
                zm = max(zm, Z0[i, k] + D[i, k, j])
            s = 0.0
            for k in range(K):
                s += np.exp(Z0[i, k] + D[i, k, j] - zm)
            out[i, j] = zm + np.log(s) - (Z0[i, y[i]] + D[i, y[i], j]) - base
    return out


@parallel_above(work=lambda data, indices, indptr, B, out: data.size * B.shape[1])
@njit(cache=True, nogil=True, parallel=True)
def csr_matmul_dense(data, indices, indptr, B, out):
    """``out = X @ B`` for CSR ``X`` and dense C-ordered ``B`` (rows in parallel).

    scipy's sparse-times-multivector loop is single-threaded and not vectorised
    over ``B``'s columns; this is the hot product of matrix-free CG on sparse data.
    """
    n_rows = indptr.shape[0] - 1
    m = B.shape[1]
    for i in prange(n_rows):
        for j in range(m):
            out[i, j] = 0.0
        for a in range(indptr[i], indptr[i + 1]):
            v = data[a]
            row = indices[a]
            for j in range(m):
                out[i, j] += v * B[row, j]
    return out
