"""Leave-one-out outputs of a GLM's training points from leverages only.

For a model whose outputs are linear in the parameters, removing training
point ``j`` changes the Hessian by the rank-``K`` term ``w_j J_j^T S_j J_j``,
so one Newton step of the objective without ``j`` moves ``j``'s own outputs by

    dz_j = M_j (I - w_j S_j M_j)^{-1} w_j r_j,    M_j = J_j H^{-1} J_j^T,

(the same step as :class:`skinfluence.InfluenceFunctions` with
``approximation="newton"``).  Cleaning needs only these ``n`` vectors, so the
``(n_params, n_train)`` parameter changes, self-influences and exact refits
that the general engine prepares are skipped: the cost is one Hessian, one
``p x p`` inverse (by :class:`skinfluence.linalg.CholeskyFactor`) and the
``K x K`` leverages, all as large BLAS calls.
"""

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.frozen import FrozenEstimator

from ..linalg import EXACT_MAX_PARAMS, CholeskyFactor
from ..objectives._base import row_blocks
from ..objectives._linear import LinearObjective
from ._containers import scores_to_proba
from ._loo_kernels import newton_step_outputs, pair_weighted_rows

__all__ = ["glm_loo_outputs", "leverage_loo_outputs", "leverage_loo_proba"]

# Row blocks sized so that the BLAS operands stay in cache (float64 entries):
# the (rows, n_pairs d~) weighted copies of the Hessian and the (rows, n_pairs d~) leverage
# product.
_GRAM_ENTRIES = 1 << 16
_LEVERAGE_ENTRIES = 1 << 17
# largest (n, d~ (d~ + 1) / 2) matrix of pair products materialised (32 MiB)
_PAIR_ENTRIES = 1 << 22
# largest augmented feature matrix [X, 1] held at once (32 MiB); above, built per row block
_MATERIALISED_ENTRIES = 1 << 22


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


class _AugmentedRows:
    """Rows of the augmented features ``x~ = [x[active], 1]``, sliced like an array.

    Held as one array when it is small; otherwise each row block is built when it is
    asked for, so that no copy as large as ``X`` is kept.
    """

    def __init__(self, X, active, fit_intercept):
        self.X, self.active, self.fit_intercept = X, active, fit_intercept
        n_cols = X.shape[1] if active is None else active.size
        self.shape = (X.shape[0], n_cols + int(fit_intercept))
        self._full = None
        if self.shape[0] * self.shape[1] <= _MATERIALISED_ENTRIES:
            self._full = self._build(slice(0, self.shape[0]))

    def _build(self, rows):
        X = self.X[rows]
        return _augment(X if self.active is None else X[:, self.active], self.fit_intercept)

    def __getitem__(self, rows):
        return self._full[rows] if self._full is not None else self._build(rows)

    def full(self):
        """All rows as one array (only for the pair products, which are small)."""
        return self._full if self._full is not None else self._build(slice(0, self.shape[0]))


def _big_blocks(rows):
    """Row blocks of :func:`skinfluence.objectives._base.row_blocks` (one when small)."""
    return row_blocks(rows.shape[0], rows.shape[1])


def _row_blocks(n, width, entries):
    rows = max(16, entries // max(width, 1))
    return [slice(s, min(n, s + rows)) for s in range(0, n, rows)]


def _pair_block_hessian(Xa, S, w, K):
    """``sum_i w_i S_i kron x~_i x~_i^T`` in (k, a) layout, for symmetric per-point ``S_i``.

    Block ``(k, l)`` is ``X~^T diag(w S_kl) X~``; the blocks ``k <= l`` side by side are
    one GEMM ``X~^T [w S_kl x~]_(k <= l)`` per row block, ``2 n d~^2 K (K + 1) / 2`` flops:
    half of the ``K d~ x K d~`` Gram of ``p_i kron x~_i`` it replaces, with the diagonal
    blocks included.  The weighted copies are built by a numba kernel, in cache.
    """
    n, da = Xa.shape
    ks, ls = _pairs(K)
    n_pairs = ks.size
    Wp = np.ascontiguousarray(S[:, ks, ls] * w[:, None])
    B = np.zeros((da, n_pairs * da))
    blocks = _row_blocks(n, n_pairs * da, _GRAM_ENTRIES)
    G = np.empty((blocks[0].stop - blocks[0].start, n_pairs * da))
    for sl in blocks:
        Xb = np.ascontiguousarray(Xa[sl], dtype=np.float64)
        Gb = G[: Xb.shape[0]]
        pair_weighted_rows(Xb, Wp[sl], Gb)
        B += Xb.T @ Gb
    Hb = B.reshape(da, n_pairs, da).transpose(1, 0, 2)  # (pair, a, b)
    H4 = np.empty((K, da, K, da))
    H4[ks, :, ls, :] = Hb
    H4[ls, :, ks, :] = Hb.transpose(0, 2, 1)
    for q in np.flatnonzero(ks == ls):  # rounding leaves X^T (s x) a hair from symmetric
        H4[ks[q], :, ks[q], :] = 0.5 * (Hb[q] + Hb[q].T)
    return H4.reshape(K * da, K * da)


def _dense_hessian(obj, Xa, S, w, Z):
    """Hessian without penalty in (k, a) layout, or None to use the objective's own.

    ``Xa`` is the :class:`_AugmentedRows` of the training points.
    """
    K = obj.n_outputs
    if K == 1:
        ws = S[:, 0, 0] * w
        nonneg = bool(np.all(ws >= 0))
        sw = np.sqrt(ws) if nonneg else None
        H = np.zeros((Xa.shape[1], Xa.shape[1]))
        for sl in _big_blocks(Xa):
            Xb = Xa[sl]
            if nonneg:
                Xs = Xb * sw[sl, None]
                H += Xs.T @ Xs
            else:
                H += (Xb * ws[sl, None]).T @ Xb
        return H
    if getattr(obj, "shift_invariant", False):
        probe = slice(0, min(Z.shape[0], 8))
        try:
            P = obj.proba_from_outputs(Z[probe])
        except AttributeError:  # no probability link (the Objective default)
            return None
        # the curvature really is w (diag(p) - p p^T) (guards against other softmax families)
        expect = w[probe, None, None] * (
            P[:, :, None] * np.eye(K)[None] - P[:, :, None] * P[:, None, :]
        )
        if np.all(w >= 0) and np.allclose(S[probe] * w[probe, None, None], expect, rtol=1e-10,
                                          atol=1e-14):
            return _pair_block_hessian(Xa, S, w, K)
    return None


def _pairs(K):
    ks, ls = np.triu_indices(K)
    return ks, ls


def _dense_leverages(Xa, Hinv, K):
    """``x~_i^T Hinv_kl x~_i`` for every row and class pair ``k <= l``: (n, n_pairs).

    One GEMM per row block against the pair blocks of ``Hinv`` side by side.
    """
    n, da = Xa.shape
    ks, ls = _pairs(K)
    n_pairs = ks.shape[0]
    H4 = Hinv.reshape(K, da, K, da)
    # block (l, k) = block (k, l)^T gives the same quadratic form: the lower triangle suffices
    R = np.ascontiguousarray(H4[ls, :, ks, :].transpose(1, 0, 2)).reshape(da, n_pairs * da)
    out = np.empty((n, n_pairs))
    for sl in _row_blocks(n, n_pairs * da, _LEVERAGE_ENTRIES):
        Xb = Xa[sl]
        T = (Xb @ R).reshape(-1, n_pairs, da)
        np.matmul(T, Xb[:, :, None], out=out[sl, :, None])
    return out


class _PairProducts:
    """Unique products ``x~_a x~_b`` (``a <= b``) of every row: (n, d~ (d~ + 1) / 2).

    Every Hessian block and every leverage is linear in these, so with them both
    are one GEMM each, over half the flops of the full ``d~ x d~`` forms.  Worth
    it for several outputs and a moderate ``n`` (the matrix is materialised).
    """

    def __init__(self, Xa):
        n, da = Xa.shape
        self.da = da
        self.iu, self.ju = np.triu_indices(da)
        # stored transposed, (nq, n): every feature a writes one contiguous block of rows,
        # which beats strided column blocks and a fancy-index gather
        XT = np.ascontiguousarray(Xa.T)
        self.QT = np.empty((self.iu.size, n))
        off = 0
        for a in range(da):
            np.multiply(XT[a:], XT[a], out=self.QT[off : off + da - a])
            off += da - a

    @staticmethod
    def worth_it(n, da, K):
        if K < 2:
            return False
        n_pairs, nq = K * (K + 1) // 2, da * (da + 1) // 2
        blas = n * (K * da) ** 2 + 2 * n * da * da * n_pairs
        return n * nq <= _PAIR_ENTRIES and 4 * n * nq * n_pairs < blas

    def hessian(self, S, w, K):
        """Hessian without penalty in (k, a) layout from the per-point curvature ``S``."""
        ks, ls = _pairs(K)
        Wp = S[:, ks, ls] * w[:, None]
        # (nq, n) @ (n, n_pairs): the long side outermost runs fastest in BLAS here
        Hp = (self.QT @ Wp).T  # (n_pairs, nq): packed symmetric blocks
        da = self.da
        blocks = np.empty((ks.size, da, da))
        blocks[:, self.iu, self.ju] = Hp
        blocks[:, self.ju, self.iu] = Hp
        H4 = np.empty((K, da, K, da))
        H4[ks, :, ls, :] = blocks
        H4[ls, :, ks, :] = blocks  # every block is symmetric: H_lk = H_kl^T = H_kl
        return H4.reshape(K * da, K * da)

    def leverages(self, Hinv, K):
        """``x~_i^T Hinv_kl x~_i`` for every row and pair ``k <= l``: (n, n_pairs)."""
        ks, ls = _pairs(K)
        da = self.da
        blocks = Hinv.reshape(K, da, K, da)[ls, :, ks, :]  # lower blocks (l >= k)
        Hq = blocks[:, self.iu, self.ju] + blocks[:, self.ju, self.iu]
        Hq[:, self.iu == self.ju] *= 0.5
        # (n, nq) @ (nq, n_pairs), both operands transposed views: the orientation BLAS runs
        # fastest here, and the result comes out row-major
        return self.QT.T @ Hq.T


def _active_features(X):
    """Features that are non-zero on some row (over row blocks: ``X != 0`` is n x d)."""
    nonzero = np.zeros(X.shape[1], dtype=bool)
    for sl in row_blocks(X.shape[0], X.shape[1]):
        nonzero |= np.any(X[sl] != 0, axis=0)
    return np.flatnonzero(nonzero)


def _dense_stationarity(obj, Xa, order, w, r):
    """``max |grad J|`` over the per-sample gradient scale (as
    :func:`skinfluence.objectives.stationarity`) from ``sum_i w_i r_i x~_i`` and
    ``sum_i |w_i r_i| |x~_i|``, summed over row blocks: no per-sample gradients."""
    wr = w[:, None] * r
    grad = np.zeros((r.shape[1], Xa.shape[1]))
    scale = np.zeros_like(grad)
    for sl in _big_blocks(Xa):
        Xb = Xa[sl]
        grad += wr[sl].T @ Xb
        scale += np.abs(wr[sl]).T @ np.abs(Xb)
    grad = grad.ravel() + obj.penalty_gradient()[order]
    scale = scale.max()
    return float(np.abs(grad).max() / scale) if scale > 0 else 0.0


def _dense_hessian_parts(obj, Z, r, S, w, N, check_stationarity):
    """Dense ``X``: ``(Xa, order, N, H, stationarity, pair products)`` with ``Xa`` the
    :class:`_AugmentedRows` without the features that are zero on every row, ``H`` the
    penalised Hessian in ``order`` (None when the family defines its own Hessian) and the
    stationarity from two small products."""
    X = np.asarray(obj.X, dtype=np.float64)
    K = obj.n_outputs
    order = _augmented_order(obj)
    # features that are zero on every training row (e.g. constant pixels after
    # scaling) appear in no Jacobian and in no Hessian entry but the penalty: their
    # parameters decouple and drop out of every leverage exactly
    active = _active_features(X)
    if active.size < X.shape[1]:
        d = X.shape[1]
        keep = np.zeros((K, d + int(obj.fit_intercept)), dtype=bool)
        keep[:, active] = True
        if obj.fit_intercept:
            keep[:, d] = True
        order = order[keep.ravel()]
        if N is not None:
            N = N[:, np.abs(N[order]).sum(axis=0) > 0]  # columns of dropped features go
            N = N if N.shape[1] else None
    else:
        active = None
    Xa = _AugmentedRows(X, active, obj.fit_intercept)
    station = _dense_stationarity(obj, Xa, order, w, r) if check_stationarity else None
    # the kernels below build sum_i J_i^T (w_i S_i) J_i + penalty, which is the
    # family's Hessian unless it defines its own
    own = type(obj).hessian is LinearObjective.hessian and (
        type(obj).curvature is LinearObjective.curvature
    )
    pair = _PairProducts(Xa.full()) if _PairProducts.worth_it(*Xa.shape, K) else None
    H = None
    if own:  # None from _dense_hessian too: the objective's own Hessian
        H = pair.hessian(S, w, K) if pair is not None else _dense_hessian(obj, Xa, S, w, Z)
    if H is None:
        H = obj.hessian()[np.ix_(order, order)]
    else:
        H[np.diag_indices(order.size)] += obj.penalty_diagonal()[order]
    return Xa, order, N, H, station, pair


def glm_loo_outputs(obj, damping=0.0, check_stationarity=True, return_leverage=False,
                    stacklevel=5):
    """Raw outputs of each training point under the model refit without it (Newton step).

    Parameters
    ----------
    obj : skinfluence.objectives.Objective
        Objective of the fitted model on its training data.
    damping : float, default=0.0
        Added to the Hessian diagonal.
    check_stationarity : bool, default=True
        Also measure how far the fitted parameters are from the optimum.
    return_leverage : bool, default=False
        Also return the leverages ``h_ik = w_i (S_i M_i)_kk``, ``(n_train, K)``
        (for least squares the diagonal of the hat matrix, per output).
    stacklevel : int, default=5
        Stack level of the damping warning, counted from the caller of this function.

    Returns
    -------
    result : tuple ``(Z, Z_loo, n_singular, stationarity)`` or None
        In-sample and leave-one-out outputs, both ``(n_train, K)``, the
        number of points whose Newton step was singular (leverage one; they
        keep the first-order step), and ``max |grad J|`` over the per-sample
        gradient scale (as :func:`skinfluence.objectives.stationarity`; None
        without ``check_stationarity``), then the leverages with
        ``return_leverage``.  ``None`` when the fast path does not
        apply (not a GLM, too many parameters for a dense inverse, or weights
        that move on removal): the caller then uses
        :class:`~skinfluence.InfluenceFunctions`.  ``H^{-1}`` is the
        :class:`~skinfluence.linalg.CholeskyFactor` inverse, as in the exact
        solver: pseudo-inverse on flat directions, damping with a warning when
        the Hessian is singular or indefinite.
    """
    if not _applicable(obj):
        return None
    K = obj.n_outputs
    Z = obj.outputs(obj.X)
    r, S = obj.loss_derivatives(Z, obj.y)
    w = obj.weights
    N = obj.null_space()  # structural flat directions (softmax shift), parameter layout
    if sp.issparse(obj.X):
        from ..objectives import stationarity

        X, Xa, order, pair = obj.X, None, _augmented_order(obj), None
        H = obj.hessian()[np.ix_(order, order)]
        station = stationarity(obj) if check_stationarity else None
    else:
        Xa, order, N, H, station, pair = _dense_hessian_parts(
            obj, Z, r, S, w, N, check_stationarity)
    # flat directions get the pseudo-inverse; singular or indefinite Hessians are damped
    # with a warning, exactly as by the influence engine's exact solver
    factor = CholeskyFactor(H, None if N is None else N[order], damping, overwrite=True,
                            stacklevel=stacklevel)
    Hinv = factor.inverse()
    ks, ls = _pairs(K)
    if Xa is not None:
        Mp = pair.leverages(Hinv, K) if pair is not None else _dense_leverages(Xa, Hinv, K)
    else:
        back = np.empty(order.size, dtype=np.intp)
        back[order] = np.arange(order.size)
        Mp = obj.jacobian_quadratic_forms(X, Hinv[np.ix_(back, back)])[:, ks, ls]

    Z_loo = np.empty_like(Z)
    singular = newton_step_outputs(
        np.ascontiguousarray(Z), np.ascontiguousarray(r), np.ascontiguousarray(S),
        np.ascontiguousarray(w), Mp, ks, ls, Z_loo,
    )
    if not return_leverage:
        return Z, Z_loo, int(singular.sum()), station
    M = np.empty((Z.shape[0], K, K))
    M[:, ks, ls] = Mp
    M[:, ls, ks] = Mp
    h = w[:, None] * np.einsum("ikm,imk->ik", S, M)
    return Z, Z_loo, int(singular.sum()), station, h


def leverage_loo_outputs(fitted, X, y, sample_weight, damping, depth=3,
                         return_leverage=False):
    """``(objective, Z_loo)`` of the fitted GLM ``fitted`` straight from the leverages
    (:func:`glm_loo_outputs`), ``(objective, Z_loo, h)`` with ``return_leverage``; None
    for a model outside that fast path.

    A user's :class:`~sklearn.frozen.FrozenEstimator` (fitted elsewhere) is checked for
    stationarity on this data.  ``depth``: frames between the user's call and this one,
    so that the warnings point at the user's line.
    """
    from ..objectives import make_objective, warn_if_not_stationary

    try:
        obj = make_objective(fitted, X, y, sample_weight)
        obj.check_minimum()
    except (TypeError, ValueError):
        return None  # unsupported here: InfluenceFunctions raises the clear error
    user_frozen = isinstance(fitted, FrozenEstimator)
    out = glm_loo_outputs(obj, damping=damping, check_stationarity=user_frozen,
                          return_leverage=return_leverage, stacklevel=depth + 2)
    if out is None:
        return None
    Z_loo, n_singular, station = out[1:4]
    if user_frozen:
        warn_if_not_stationary(station, stacklevel=depth + 2)
    if n_singular:
        warnings.warn(
            f"{n_singular} training point(s) have leverage 1: the model refit without "
            "them is not determined by the rest of the data (their Newton step is "
            "singular). Their leave-one-out outputs use the first-order formula instead.",
            RuntimeWarning,
            stacklevel=depth + 1,
        )
    return (obj, Z_loo, out[4]) if return_leverage else (obj, Z_loo)


def leverage_loo_proba(fitted, X, y, sample_weight, n_classes, damping):
    """Leave-one-out class probabilities of the training points from
    :func:`leverage_loo_outputs`; None for a model outside that fast path."""
    out = leverage_loo_outputs(fitted, X, y, sample_weight, damping, depth=6)
    if out is None:
        return None
    obj, Z_loo = out
    if hasattr(fitted, "predict_proba"):
        try:
            return obj.proba_from_outputs(Z_loo)
        except AttributeError:  # no probability link (the Objective default)
            pass
    return scores_to_proba(Z_loo, n_classes)
