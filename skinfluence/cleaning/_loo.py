"""Leave-one-out outputs of a GLM's training points from leverages only.

For a model whose outputs are linear in the parameters, removing training
point ``j`` changes the Hessian by the rank-``K`` term ``w_j J_j^T S_j J_j``,
so one Newton step of the objective without ``j`` moves ``j``'s own outputs by

    dz_j = M_j (I - w_j S_j M_j)^{-1} w_j r_j,    M_j = J_j H^{-1} J_j^T,

(the same step as :class:`skinfluence.InfluenceFunctions` with
``approximation="newton"``).  Cleaning needs only these ``n`` vectors, so the
``(n_params, n_train)`` parameter changes, self-influences and exact refits
that the general engine prepares are skipped: the cost is one Hessian, one
``p x p`` inverse and the ``K x K`` leverages, all as large BLAS calls.
"""

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from ..objectives._kernels import solve_small_systems
from ..objectives._linear import LinearObjective
from ..solvers._base import EXACT_MAX_PARAMS

__all__ = ["glm_loo_outputs"]

# rows of the (n, n_pairs * d) leverage intermediate materialised at a time
_BLOCK_ENTRIES = 1 << 22


def _applicable(obj):
    return (
        isinstance(obj, LinearObjective)
        and obj.linear_in_params
        and obj.n_params <= EXACT_MAX_PARAMS
        and obj.removal_reweighting() is None  # balanced class weights: the general engine
    )


def _augmented_order(obj):
    """Permutation of the flat parameters into class-major ``(k, [x, 1])`` blocks."""
    K, d = obj.n_outputs, obj.n_features
    blocks = []
    for k in range(K):
        blocks.append(np.arange(k * d, (k + 1) * d))
        if obj.fit_intercept:
            blocks.append(np.array([K * d + k]))
    return np.concatenate(blocks)


def _augment(X, fit_intercept):
    if fit_intercept:
        return np.hstack([X, np.ones((X.shape[0], 1))])
    return np.ascontiguousarray(X)


def _softmax_hessian(Xa, P, w):
    """``sum_i w_i (diag(p_i) - p_i p_i^T) kron x~_i x~_i^T`` in (k, a) layout.

    The rank-one part is a single (n, K d~) Gram matrix (one symmetric BLAS
    update) instead of K (K + 1) / 2 small weighted Grams.
    """
    n, da = Xa.shape
    K = P.shape[1]
    sw = np.sqrt(w)
    G = (P * sw[:, None])[:, :, None] * Xa[:, None, :]  # (n, K, d~)
    G = G.reshape(n, K * da)
    H = -(G.T @ G)
    for k in range(K):
        Xs = Xa * np.sqrt(w * P[:, k])[:, None]
        H[k * da : (k + 1) * da, k * da : (k + 1) * da] += Xs.T @ Xs
    return H


def _dense_hessian(obj, Xa, WS, Z):
    """Hessian without penalty in (k, a) layout, or None to use the objective's own."""
    K = obj.n_outputs
    if K == 1:
        ws = WS[:, 0, 0]
        if np.all(ws >= 0):
            Xs = Xa * np.sqrt(ws)[:, None]
            return Xs.T @ Xs
        return (Xa * ws[:, None]).T @ Xa
    if getattr(obj, "shift_invariant", False) and hasattr(obj, "proba_from_outputs"):
        P = obj.proba_from_outputs(Z)
        w = obj.weights
        # the curvature really is w (diag(p) - p p^T) (guards against other softmax families)
        probe = slice(0, min(Z.shape[0], 8))
        expect = w[probe, None, None] * (
            P[probe, :, None] * np.eye(K)[None] - P[probe, :, None] * P[probe, None, :]
        )
        if np.all(w >= 0) and np.allclose(WS[probe], expect, rtol=1e-10, atol=1e-14):
            return _softmax_hessian(Xa, P, w)
    return None


def _dense_leverages(Xa, Hinv, K, out):
    """``M_i[k, l] = x~_i^T Hinv_kl x~_i`` for every row, one GEMM per row block."""
    n, da = Xa.shape
    pairs = [(k, l) for k in range(K) for l in range(k, K)]
    H4 = Hinv.reshape(K, da, K, da)
    # R[a, (pair, b)] = Hinv[k, a, l, b]
    R = np.stack([H4[k, :, l, :] for k, l in pairs], axis=1).reshape(da, len(pairs) * da)
    rows = max(1, _BLOCK_ENTRIES // (len(pairs) * da))
    ks = np.array([k for k, _ in pairs])
    ls = np.array([l for _, l in pairs])
    for start in range(0, n, rows):
        sl = slice(start, min(n, start + rows))
        T = (Xa[sl] @ R).reshape(-1, len(pairs), da)
        q = np.einsum("ipb,ib->ip", T, Xa[sl])
        out[sl, ks, ls] = q
        out[sl, ls, ks] = q
    return out


def glm_loo_outputs(obj, damping=0.0):
    """Raw outputs of each training point under the model refit without it (Newton step).

    Parameters
    ----------
    obj : skinfluence.objectives.Objective
        Objective of the fitted model on its training data.
    damping : float, default=0.0
        Added to the Hessian diagonal.

    Returns
    -------
    result : tuple ``(Z, Z_loo, n_singular)`` or None
        In-sample and leave-one-out outputs, both ``(n_train, K)``, and the
        number of points whose Newton step was singular (leverage one; they
        keep the first-order step).  ``None`` when the fast path does not
        apply (not a GLM, too many parameters for a dense inverse, weights
        that move on removal, or a Hessian that is not positive definite):
        the caller then uses :class:`~skinfluence.InfluenceFunctions`.
    """
    if not _applicable(obj):
        return None
    X = obj.X
    K, p = obj.n_outputs, obj.n_params
    Z = obj.outputs(X)
    r, S = obj.loss_derivatives(Z, obj.y)
    w = obj.weights
    WS = S * w[:, None, None]
    order = _augmented_order(obj)
    dense = not sp.issparse(X)
    H = None
    if dense:
        Xa = _augment(np.asarray(X, dtype=np.float64), obj.fit_intercept)
        H = _dense_hessian(obj, Xa, WS, Z)
        if H is not None:
            H[np.diag_indices(p)] += obj.penalty_diagonal()[order]
    if H is None:
        H = obj.hessian()[np.ix_(order, order)]
    N = obj.null_space()  # structural flat directions (softmax shift), parameter layout
    scale = float(np.mean(np.abs(np.diag(H)))) or 1.0
    lift = scale + damping
    if N is not None:
        Na = N[order]
        H += scale * (Na @ Na.T)
    H[np.diag_indices(p)] += damping
    L, info = lapack.dpotrf(H, lower=1, clean=1, overwrite_a=1)
    if info != 0:
        return None
    diag = np.diag(L)
    if diag.min() ** 2 < 1e-13 * diag.max() ** 2:  # numerically singular: general engine
        return None
    Hinv, info = lapack.dpotri(L, lower=1)
    if info != 0:
        return None
    Hinv = np.tril(Hinv) + np.tril(Hinv, -1).T

    if dense:
        M = _dense_leverages(Xa, Hinv, K, np.empty((Z.shape[0], K, K)))
    else:
        back = np.empty(p, dtype=np.intp)
        back[order] = np.arange(p)
        M = obj.jacobian_quadratic_forms(X, Hinv[np.ix_(back, back)])
    if N is not None:
        # the lifted inverse is the pseudo-inverse plus N N^T / lift (N is an eigenvector
        # of the lifted Hessian): take that part out, as the exact solver's projection does
        JN = obj.jvp(X, N)  # (n, K, r)
        M -= np.einsum("ikr,ilr->ikl", JN, JN) / lift

    A = np.eye(K)[None] - np.einsum("ikl,ilm->ikm", WS, M)
    c, singular = solve_small_systems(np.ascontiguousarray(A), np.ascontiguousarray(r))
    c[singular] = r[singular]
    dz = np.einsum("ikl,il->ik", M, w[:, None] * c)
    return Z, Z + dz, int(singular.sum())
