"""numba kernels of confident learning (``_confident.py``): one pass over the rows of ``P``
where numpy would reduce many short rows."""

import numpy as np

from .._numba import njit

__all__ = ["assign_confident", "best_other_class"]


@njit(cache=True, nogil=True)
def assign_confident(labels, P, t):
    """``(C, assigned)`` of :func:`~skinfluence.cleaning.confident_joint` for finite ``P``:
    each row goes to the first class of largest probability among those reaching their
    threshold ``t``, or ``-1`` when none does."""
    n, K = P.shape
    C = np.zeros((K, K), dtype=np.int64)
    assigned = np.empty(n, dtype=np.intp)
    for i in range(n):
        best = -np.inf
        arg = -1
        for k in range(K):
            v = P[i, k]
            if v >= t[k] and v > best:
                best = v
                arg = k
        assigned[i] = arg
        if arg >= 0:
            C[labels[i], arg] += 1
    return C, assigned


@njit(cache=True, nogil=True)
def best_other_class(P, labels):
    """For each row, the first class of largest probability other than its label."""
    n, K = P.shape
    out = np.zeros(n, dtype=np.intp)
    for i in range(n):
        best = -np.inf
        for k in range(K):
            if k != labels[i] and P[i, k] > best:
                best = P[i, k]
                out[i] = k
    return out
