"""Objectives of models whose output is linear in the parameters (GLMs).

``f(x; theta) = coef @ x + intercept`` with ``coef`` of shape (K, d).  The flat
parameter vector is ``[coef.ravel(), intercept]`` (the intercept block only
when it is fitted).  The output Jacobian of sample ``i`` is
``I_K kron [x_i, 1]``, so every Jacobian product is a GEMM with ``X`` and the
Hessian is ``sum_k,l X~^T diag(w S_kl) X~`` plus the penalty.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_array

from ._base import Objective, row_blocks
from ._kernels import csr_weighted_colsum, csr_weighted_gram


def check_features(X, n_features, name="X"):
    """Validate features for a fitted linear model: finite, 2-D, right width; float64; CSR kept."""
    X = check_array(
        X, accept_sparse="csr", dtype=np.float64, ensure_all_finite=True, input_name=name
    )
    if X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but the fitted estimator expects {n_features}."
        )
    return X


class LinearObjective(Objective):
    """Shared machinery of the GLM objectives; subclasses define the loss.

    Parameters
    ----------
    estimator : fitted estimator
    X : ndarray or CSR matrix of shape (n, d)
        Training features (already validated).
    y : ndarray of shape (n,)
        Encoded targets.
    weights : ndarray of shape (n,)
        Effective per-sample weights in ``J``.
    coef : ndarray of shape (K, d)
    intercept : ndarray of shape (K,) or None
        None when the model has no fitted intercept.
    coef_penalty : float
        ``lambda`` in ``R = lambda / 2 * ||coef||^2``.
    intercept_penalty : float
        Penalty on the intercept (non-zero only for liblinear-style models).
    feature_map : callable
        Maps raw X to the features (pipeline preprocessing).
    """

    linear_in_params = True
    # softmax losses are invariant to adding the same vector to every class
    shift_invariant = False

    def __init__(
        self,
        estimator,
        X,
        y,
        weights,
        coef,
        intercept,
        coef_penalty,
        intercept_penalty=0.0,
        feature_map=None,
    ):
        self.estimator = estimator
        self.X = X
        self.y = y
        self.weights = np.asarray(weights, dtype=np.float64)
        coef = np.asarray(coef, dtype=np.float64)
        self.n_outputs, self.n_features = coef.shape
        self.fit_intercept = intercept is not None
        self.coef_penalty = float(coef_penalty)
        self.intercept_penalty = float(intercept_penalty)
        self._feature_map = feature_map
        parts = [coef.ravel()]
        if self.fit_intercept:
            parts.append(np.asarray(intercept, dtype=np.float64).ravel())
        self.theta = np.concatenate(parts)
        self._curvature = None  # cached (w * S) at theta

    # ------------------------------------------------------------ layout
    @property
    def n_augmented(self):
        return self.n_features + int(self.fit_intercept)

    def split(self, theta):
        """``(coef (K, d), intercept (K,) or zeros)`` views of a flat vector."""
        K, d = self.n_outputs, self.n_features
        coef = theta[: K * d].reshape(K, d)
        intercept = theta[K * d :] if self.fit_intercept else np.zeros(K)
        return coef, intercept

    def _split_block(self, V):
        """Parameter-major (p, m) -> (coef (K, d, m), intercept (K, m) or None)."""
        K, d = self.n_outputs, self.n_features
        coef = V[: K * d].reshape(K, d, -1)
        intercept = V[K * d :] if self.fit_intercept else None
        return coef, intercept

    def penalty_diagonal(self):
        """Diagonal of ``R''`` (the penalty is a diagonal quadratic)."""
        K, d = self.n_outputs, self.n_features
        diag = np.full(self.n_params, self.coef_penalty)
        if self.fit_intercept:
            diag[K * d :] = self.intercept_penalty
        return diag

    def penalty_gradient(self, theta=None):
        theta = self.theta if theta is None else theta
        return self.penalty_diagonal() * theta

    def penalty_value(self, theta=None):
        theta = self.theta if theta is None else theta
        return 0.5 * float(self.penalty_diagonal() @ (theta * theta))

    # ---------------------------------------------------------- features
    def features(self, X):
        if self._feature_map is not None:
            X = self._feature_map(X)
        return check_features(X, self.n_features)

    # ------------------------------------------------- outputs, jacobian
    def outputs(self, Xf, theta=None):
        theta = self.theta if theta is None else theta
        coef, intercept = self.split(theta)
        Z = Xf @ coef.T
        Z = np.asarray(Z)
        return Z + intercept

    def jvp(self, Xf, V, theta=None):
        V = np.asarray(V, dtype=np.float64)
        squeeze = V.ndim == 1
        if squeeze:
            V = V[:, None]
        coef, intercept = self._split_block(V)
        n, K, m = Xf.shape[0], self.n_outputs, V.shape[1]
        out = np.empty((n, K, m))
        if K == 1 and not sp.issparse(Xf):
            # one output: V is [coef; intercept] = the augmented feature layout, one GEMM
            if intercept is not None:
                Xf = np.hstack([Xf, np.ones((n, 1))])
            np.matmul(Xf, V, out=out[:, 0, :])
            return out[:, :, 0] if squeeze else out
        for k in range(K):
            out[:, k, :] = _matmul(Xf, coef[k])
            if intercept is not None:
                out[:, k, :] += intercept[k]
        return out[:, :, 0] if squeeze else out

    def jvp_diagonal(self, Xf, V, theta=None):
        coef, intercept = self._split_block(np.asarray(V, dtype=np.float64))
        out = np.empty((Xf.shape[0], self.n_outputs))
        for k in range(self.n_outputs):
            Ck = coef[k]  # (d, m)
            if sp.issparse(Xf):
                out[:, k] = np.asarray(Xf.multiply(Ck.T).sum(axis=1)).ravel()
            else:
                out[:, k] = np.einsum("jd,dj->j", Xf, Ck)
            if intercept is not None:
                out[:, k] += intercept[k]
        return out

    def vjp(self, Xf, C, theta=None):
        C = np.asarray(C, dtype=np.float64).reshape(Xf.shape[0], self.n_outputs)
        n, K, d = Xf.shape[0], self.n_outputs, self.n_features
        out = np.empty((n, self.n_params))
        coef_part = out[:, : K * d].reshape(n, K, d)
        if sp.issparse(Xf):
            Xd = Xf.toarray()
        else:
            Xd = Xf
        for k in range(K):
            np.multiply(Xd, C[:, k : k + 1], out=coef_part[:, k, :])
        if self.fit_intercept:
            out[:, K * d :] = C
        return out

    def vjp_T(self, Xf, C, theta=None):
        """``(p, n)`` matrix whose column j is ``J_j^T c_j``, built directly in the
        parameter-major layout (no transpose of :meth:`vjp`)."""
        C = np.asarray(C, dtype=np.float64).reshape(Xf.shape[0], self.n_outputs)
        n, K, d = Xf.shape[0], self.n_outputs, self.n_features
        out = np.empty((self.n_params, n))
        if sp.issparse(Xf):
            XT = Xf.T.toarray()
        else:
            XT = Xf.T
        for k in range(K):
            np.multiply(XT, C[:, k][None, :], out=out[k * d : (k + 1) * d])
        if self.fit_intercept:
            out[K * d :] = C.T
        return out

    def jacobian_quadratic_forms(self, Xf, A):
        """``M_i = J_i A J_i^T`` (K, K) for each row, with ``A`` a (p, p) matrix.

        Used for leverages ``J_i H^{-1} J_i^T``: for a GLM the (k, l) entry is
        ``x~_i^T A_kl x~_i`` with ``A_kl`` the (d+1, d+1) block of classes k, l.  A
        callable ``A`` (a solver) takes the generic route of the base class.
        """
        if callable(A):
            return super().jacobian_quadratic_forms(Xf, A)
        n, K = Xf.shape[0], self.n_outputs
        M = np.empty((n, K, K))
        for k in range(K):
            for l in range(k, K):
                Akl = self._augmented_block(A, k, l)
                q = _row_quadratic_forms(Xf, Akl, self.fit_intercept)
                M[:, k, l] = q
                M[:, l, k] = q
        return M

    def _augmented_block(self, A, k, l):
        K, d = self.n_outputs, self.n_features
        rows = np.r_[k * d : (k + 1) * d]
        cols = np.r_[l * d : (l + 1) * d]
        if self.fit_intercept:
            rows = np.r_[rows, K * d + k]
            cols = np.r_[cols, K * d + l]
        return A[np.ix_(rows, cols)]

    # ----------------------------------------------------------- hessian
    def curvature(self, theta=None, *, weights=None):
        """``w_i * S_i`` of shape (n, K, K) at ``theta`` (cached at the fitted parameters
        and own weights)."""
        own = theta is None and weights is None
        if own and self._curvature is not None:
            return self._curvature
        Z = self.outputs(self.X, theta)
        _, S = self.loss_derivatives(Z, self.y)
        WS = S * self._weights(weights)[:, None, None]
        if own:
            self._curvature = WS
        return WS

    def hessian(self, theta=None, *, weights=None):
        WS = self.curvature(theta, weights=weights)
        K, d, p = self.n_outputs, self.n_features, self.n_params
        H = np.zeros((p, p))
        X = self.X
        for k in range(K):
            for l in range(k, K):
                wkl = np.ascontiguousarray(WS[:, k, l])
                if not np.any(wkl):
                    continue
                G = _weighted_gram(X, wkl)
                H[k * d : (k + 1) * d, l * d : (l + 1) * d] = G
                if l != k:
                    H[l * d : (l + 1) * d, k * d : (k + 1) * d] = G.T
                if self.fit_intercept:
                    cs = _weighted_colsum(X, wkl)
                    bk, bl = K * d + k, K * d + l
                    H[k * d : (k + 1) * d, bl] = cs
                    H[bl, k * d : (k + 1) * d] = cs
                    H[l * d : (l + 1) * d, bk] = cs
                    H[bk, l * d : (l + 1) * d] = cs
                    H[bk, bl] = H[bl, bk] = wkl.sum()
        H[np.diag_indices(p)] += self.penalty_diagonal()
        return H

    def hvp(self, V, theta=None, *, weights=None):
        V = np.asarray(V, dtype=np.float64)
        squeeze = V.ndim == 1
        if squeeze:
            V = V[:, None]
        WS = self.curvature(theta, weights=weights)
        JV = self.jvp(self.X, V)  # (n, K, m)
        U = np.einsum("ikl,ilm->ikm", WS, JV)
        out = self._jT_sum(U) + self.penalty_diagonal()[:, None] * V
        return out[:, 0] if squeeze else out

    def _jT_sum(self, U):
        """``sum_i J_i^T U[i]`` for U of shape (n, K, m): returns (p, m)."""
        K, d = self.n_outputs, self.n_features
        m = U.shape[2]
        out = np.empty((self.n_params, m))
        XT = self._transposed_X()
        for k in range(K):
            out[k * d : (k + 1) * d] = _matmul(XT, U[:, k, :])
        if self.fit_intercept:
            out[K * d :] = U.sum(axis=0)
        return out

    def _transposed_X(self):
        """``X.T``; for sparse X a cached CSR copy so that products with it run row-parallel."""
        if not sp.issparse(self.X):
            return self.X.T
        if getattr(self, "_XT_csr", None) is None:
            self._XT_csr = self.X.T.tocsr()
        return self._XT_csr

    def hessian_diagonal(self, theta=None):
        WS = self.curvature(theta)
        K, d = self.n_outputs, self.n_features
        diag = np.empty(self.n_params)
        X2 = self.X.multiply(self.X) if sp.issparse(self.X) else self.X * self.X
        for k in range(K):
            diag[k * d : (k + 1) * d] = np.asarray(X2.T @ WS[:, k, k]).ravel()
        if self.fit_intercept:
            diag[K * d :] = WS[:, np.arange(K), np.arange(K)].sum(axis=0)
        return diag + self.penalty_diagonal()

    def null_space(self):
        """Shift-invariance directions of softmax losses that carry no penalty."""
        if not self.shift_invariant or self.n_outputs < 2:
            return None
        K, d = self.n_outputs, self.n_features
        cols = []
        if self.coef_penalty == 0.0:
            for f in range(d):
                v = np.zeros(self.n_params)
                v[np.arange(K) * d + f] = 1.0 / np.sqrt(K)
                cols.append(v)
        if self.fit_intercept and self.intercept_penalty == 0.0:
            v = np.zeros(self.n_params)
            v[K * d :] = 1.0 / np.sqrt(K)
            cols.append(v)
        return np.column_stack(cols) if cols else None

    # -------------------------------------------------------- parameters
    def unflatten(self, theta):
        coef, intercept = self.split(np.asarray(theta, dtype=np.float64))
        est_coef = np.asarray(self.estimator.coef_)
        out = {"coef_": coef.copy().reshape(est_coef.shape)}
        if self.fit_intercept:
            est_int = np.asarray(self.estimator.intercept_)
            out["intercept_"] = intercept.copy().reshape(est_int.shape)
        return out


def _matmul(X, B):
    """``X @ B`` as a dense array; sparse CSR ``X`` through the parallel numba kernel."""
    if sp.issparse(X):
        from ._kernels import csr_matmul_dense

        X = X.tocsr()
        B = np.ascontiguousarray(B, dtype=np.float64)
        out = np.empty((X.shape[0], B.shape[1]))
        return csr_matmul_dense(X.data, X.indices, X.indptr, B, out)
    return X @ B


def _weighted_gram(X, w):
    if sp.issparse(X):
        X = X.tocsr()
        return csr_weighted_gram(X.data, X.indices, X.indptr, X.shape[1], w)
    # summed over row blocks: the weighted copy of X is as large as X
    G = None
    nonneg = bool(np.all(w >= 0))
    sw = np.sqrt(w) if nonneg else None
    for rows in row_blocks(X.shape[0], X.shape[1]):
        if nonneg:
            # a.T @ a runs as a symmetric rank-k update (syrk): half the flops of a GEMM
            Xs = X[rows] * sw[rows, None]
            part = Xs.T @ Xs
        else:
            part = (X[rows] * w[rows, None]).T @ X[rows]
        if G is None:
            G = part
        else:
            G += part
    return G if G is not None else np.zeros((X.shape[1], X.shape[1]))


def _weighted_colsum(X, w):
    if sp.issparse(X):
        X = X.tocsr()
        return csr_weighted_colsum(X.data, X.indices, X.indptr, X.shape[1], w)
    return X.T @ w


def _row_quadratic_forms(X, A, with_intercept):
    """``x~_i^T A x~_i`` with ``x~ = [x, 1]`` when ``with_intercept``."""
    if with_intercept:
        Axx, axb, abb = A[:-1, :-1], A[:-1, -1] + A[-1, :-1], A[-1, -1]
    else:
        Axx, axb, abb = A, None, 0.0
    if sp.issparse(X):
        from ._kernels import csr_row_quadratic_forms

        X = X.tocsr()
        q = csr_row_quadratic_forms(X.data, X.indices, X.indptr, np.ascontiguousarray(Axx),
                                    np.empty(X.shape[0]))
    else:
        q = np.empty(X.shape[0])
        for rows in row_blocks(X.shape[0], X.shape[1]):  # X @ Axx is as large as X
            q[rows] = np.einsum("ij,ij->i", X[rows] @ Axx, X[rows])
    if axb is not None:
        q = q + np.asarray(X @ axb).ravel() + abb
    return q
