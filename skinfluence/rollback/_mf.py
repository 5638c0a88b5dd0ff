"""Numba kernels of biased matrix factorisation: training with rollback
bookkeeping, and the full and first-order rollbacks of a predicted rating.

``P`` is ``(n_users, k + 1)`` and ``Q`` is ``(n_items, k + 1)``: the last
column holds the user / item bias.  The rating is :func:`rating`, defined once
for training and the rollbacks.  Bookkeeping as for the knowledge-graph loop
(:mod:`._kg_train`): ``gam*[i]`` accumulates example ``i``'s updates of its
user and item rows.
"""

from collections import namedtuple

import numpy as np

from .._numba import njit
from ._optim import ADAM, SGD, adam_moments, adam_params, apply_rows
from ._stream import _AHEAD, _epoch_order, _prefetch_row

#: The ratings as the kernels read them: ``users``, ``items`` (int64), ``y``,
#: ``weights`` (float64), the intercept ``mu`` (float) and the stream ``keys``.
MFData = namedtuple("MFData", ["users", "items", "y", "weights", "mu", "keys"])

#: What :func:`mf_fit` records: ``on`` (bool), ``user``, ``item`` (``(n, k + 1)``,
#: or ``(1, k + 1)`` placeholders when not recording).
MFRecord = namedtuple("MFRecord", ["on", "user", "item"])


@njit(cache=True, nogil=True, inline="always")
def rating(pu, qi, mu):
    """``mu + pu[:k] . qi[:k] + pu[k] + qi[k]``: the rating of user row ``pu``, item row ``qi``."""
    k_ = pu.shape[0] - 1
    pred = mu + pu[k_] + qi[k_]
    for k in range(k_):
        pred += pu[k] * qi[k]
    return pred


@njit(cache=True, nogil=True)
def mf_fit(P, Q, data, hp, stP, stQ, rec, epoch_start, n_epochs, losses):
    """Train biased matrix factorisation on explicit ratings.

    ``P`` is ``(n_users, k + 1)`` and ``Q`` is ``(n_items, k + 1)``: the last
    column holds the user / item bias, so ``y_hat = mu + P[u, :k] . Q[i, :k]
    + P[u, k] + Q[i, k]``.  Per-example loss ``w * ((y_hat - y)^2 / 2 +
    alpha/2 * (|P[u]|^2 + |Q[i]|^2))``, batches divided by positional size;
    learning rate ``lr0 * lr_decay ** epoch``.

    ``data``: :data:`MFData`; ``hp``: :data:`~._optim.Hyper`; ``stP``, ``stQ``: the Adam
    state of ``P``, ``Q``; ``rec``: :data:`MFRecord`.
    """
    users, items, y, weights, mu, keys = data
    batch_size, lr0, lr_decay = hp.batch_size, hp.learning_rate, hp.learning_rate_decay
    alpha, opt = hp.alpha, hp.optimizer
    record, gamP, gamQ = rec
    n = users.shape[0]
    d = P.shape[1]
    k_ = d - 1
    GP = np.zeros_like(P)
    GQ = np.zeros_like(Q)
    rec_adam = record and opt == ADAM
    DP = np.empty_like(P) if rec_adam else np.empty((1, d))
    DQ = np.empty_like(Q) if rec_adam else np.empty((1, d))
    stampP = np.full(P.shape[0], -1, dtype=np.int64)
    stampQ = np.full(Q.shape[0], -1, dtype=np.int64)
    rowsP = np.empty(P.shape[0], dtype=np.int64)
    rowsQ = np.empty(Q.shape[0], dtype=np.int64)
    # Adam bookkeeping keeps two scalars per batch example: its gradient on
    # rows (u, i) is ``e * Q[i] + ra * P[u]`` (and ``e * P[u] + ra * Q[i]``),
    # recomputed when credited, before the rows move (cheaper than buffering
    # the vectors: no extra stores in the training loop)
    bidx = np.empty(batch_size, dtype=np.int64)
    bE = np.empty(batch_size)
    bA = np.empty(batch_size)
    step = 0
    for ep in range(epoch_start, epoch_start + n_epochs):
        lr = lr0 * lr_decay ** ep
        order, _ = _epoch_order(keys, ep)
        tot_loss = 0.0
        tot_w = 0.0
        for b0 in range(0, n, batch_size):
            b1_ = min(n, b0 + batch_size)
            bsz = b1_ - b0
            nP = 0
            nQ = 0
            nb = 0
            for pos in range(b0, b1_):
                i = order[pos]
                if record and pos + _AHEAD < n:
                    nxt = order[pos + _AHEAD]
                    _prefetch_row(gamP, nxt)
                    _prefetch_row(gamQ, nxt)
                w = weights[i]
                if w == 0.0:
                    continue
                u = users[i]
                it = items[i]
                err = rating(P[u], Q[it], mu) - y[i]
                tot_loss += w * 0.5 * err * err
                tot_w += w
                scale = w / bsz
                e = scale * err
                ra = scale * alpha
                if stampP[u] != step:
                    stampP[u] = step
                    rowsP[nP] = u
                    nP += 1
                if stampQ[it] != step:
                    stampQ[it] = step
                    rowsQ[nQ] = it
                    nQ += 1
                if record and opt == SGD:
                    # the step is -lr * gradient: credit it in the same pass
                    nlr = -lr
                    for k in range(k_):
                        gp = e * Q[it, k] + ra * P[u, k]
                        gq = e * P[u, k] + ra * Q[it, k]
                        GP[u, k] += gp
                        GQ[it, k] += gq
                        gamP[i, k] += nlr * gp
                        gamQ[i, k] += nlr * gq
                    gp = e + ra * P[u, k_]
                    gq = e + ra * Q[it, k_]
                    GP[u, k_] += gp
                    GQ[it, k_] += gq
                    gamP[i, k_] += nlr * gp
                    gamQ[i, k_] += nlr * gq
                else:
                    # plain training, and Adam with recording (the credit
                    # comes after the batch, from the two scalars kept here)
                    for k in range(k_):
                        gp = e * Q[it, k] + ra * P[u, k]
                        GQ[it, k] += e * P[u, k] + ra * Q[it, k]
                        GP[u, k] += gp
                    GP[u, k_] += e + ra * P[u, k_]
                    GQ[it, k_] += e + ra * Q[it, k_]
                    if record:
                        bE[nb] = e
                        bA[nb] = ra
                bidx[nb] = i
                nb += 1
            if nb == 0:
                continue
            if not rec_adam:
                apply_rows(P, GP, stP, rowsP, nP, hp, lr, 0.0, False, DP)
                apply_rows(Q, GQ, stQ, rowsQ, nQ, hp, lr, 0.0, False, DQ)
            else:
                # step sizes first, then the credits (gradients recomputed at
                # the rows' pre-update values), then the parameter update
                adam_moments(GP, stP, rowsP, nP, hp, lr, DP)
                adam_moments(GQ, stQ, rowsQ, nQ, hp, lr, DQ)
                for b in range(nb):
                    i = bidx[b]
                    u = users[i]
                    it = items[i]
                    e = bE[b]
                    ra = bA[b]
                    for k in range(k_):
                        gamP[i, k] -= DP[u, k] * (e * Q[it, k] + ra * P[u, k])
                    gamP[i, k_] -= DP[u, k_] * (e + ra * P[u, k_])
                    for k in range(k_):
                        gamQ[i, k] -= DQ[it, k] * (e * P[u, k] + ra * Q[it, k])
                    gamQ[i, k_] -= DQ[it, k_] * (e + ra * Q[it, k_])
                adam_params(P, GP, stP, rowsP, nP, hp.beta1, DP)
                adam_params(Q, GQ, stQ, rowsQ, nQ, hp.beta1, DQ)
            step += 1
        losses[ep - epoch_start] = tot_loss / tot_w if tot_w > 0 else np.nan


@njit(cache=True, nogil=True)
def mf_rollback_deltas(P, Q, qu, qi, ptr, idx, users, items, gamP, gamQ):
    """Predicted drop of the rating ``y_hat(u, i)`` when example ``j`` is
    rolled back (its recorded updates subtracted from rows ``u_j``, ``i_j``)."""
    d = P.shape[1]
    out = np.empty(idx.shape[0])
    pu = np.empty(d)
    qv = np.empty(d)
    for a in range(qu.shape[0]):
        u = qu[a]
        it = qi[a]
        base = rating(P[u], Q[it], 0.0)
        for p in range(ptr[a], ptr[a + 1]):
            j = idx[p]
            for k in range(d):
                pu[k] = P[u, k] - (gamP[j, k] if users[j] == u else 0.0)
                qv[k] = Q[it, k] - (gamQ[j, k] if items[j] == it else 0.0)
            out[p] = base - rating(pu, qv, 0.0)
    return out


@njit(cache=True, nogil=True)
def mf_first_order_deltas(P, Q, qu, qi, ptr, idx, users, items, gamP, gamQ):
    """First-order rollback of the rating ``y_hat(u, i)``: its gradient with
    respect to rows ``u`` and ``i`` dotted with example ``j``'s recorded
    updates (equal to the full rollback unless ``j`` holds both ``u`` and
    ``i``, where the product term of the two moved rows is dropped)."""
    d = P.shape[1]
    k_ = d - 1
    out = np.empty(idx.shape[0])
    for a in range(qu.shape[0]):
        u = qu[a]
        it = qi[a]
        for p in range(ptr[a], ptr[a + 1]):
            j = idx[p]
            s_ = 0.0
            if users[j] == u:
                for k in range(k_):
                    s_ += Q[it, k] * gamP[j, k]
                s_ += gamP[j, k_]
            if items[j] == it:
                for k in range(k_):
                    s_ += P[u, k] * gamQ[j, k]
                s_ += gamQ[j, k_]
            out[p] = s_
    return out
