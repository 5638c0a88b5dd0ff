"""numba kernel of :func:`skinfluence.linalg._ridge.ridge_cv_deletions`: the leave-one-out
criteria of ridge refits without each of a block of rows, in one pass over ``M``."""

import numpy as np

from .._numba import njit


@njit(cache=True, nogil=True)
def pair_criteria(MJ, m, e, J, out):
    """``out[c, t] = sum_{i != J[c]} r_ict^2`` with ``r_ict`` the residual of row ``i``
    (target ``t``) refit without rows ``{i, J[c]}``:
    ``(M_jj e_it - M_ij e_jt) / (M_ii M_jj - M_ij^2)``, ``j = J[c]``.

    ``MJ`` is ``M[J, :]`` (b, n), ``m`` the diagonal of ``M`` (n,), ``e`` the residuals
    ``M y`` (n, T).  A pair whose determinant is not positive (``{i, j}`` together
    determine the fit) makes the criterion infinite.
    """
    b, n = MJ.shape
    T = e.shape[1]
    for c in range(b):
        j = J[c]
        mj = m[j]
        for t in range(T):
            out[c, t] = 0.0
        for i in range(n):
            if i == j:
                continue
            mij = MJ[c, i]
            det = m[i] * mj - mij * mij
            if not det > 0.0:
                for t in range(T):
                    out[c, t] = np.inf
                break
            for t in range(T):
                r = (mj * e[i, t] - mij * e[j, t]) / det
                out[c, t] += r * r
