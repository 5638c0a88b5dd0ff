"""Numba kernels of the trajectory rollback: the derivative of a trained
knowledge-graph model's prediction with respect to each training triple's
weight, through the whole training run.

Training is deterministic given ``random_state`` (order and negatives come
from content hashes), so the trained parameters are a differentiable function
of the sample weights.  ``kg_trajectory_deltas`` computes ``d f / d w_j`` for
every training triple ``j`` at once, per query functional ``f``, by the adjoint
method (reverse mode through the training run; Hara, Nitanda & Maehara,
NeurIPS 2019 for SGD, here with Adam's first and second moments):

* the run is replayed epoch by epoch from optimizer-state checkpoints taken
  during ``fit`` (the replay uses the same gradient arithmetic and the
  training kernel's own row update);
* the adjoint ``(lambda_theta, lambda_m, lambda_v)`` of the state after a step is
  carried to the state before it.  With ``m' = b1 m + (1 - b1) G``, ``v' = b2 v +
  (1 - b2) G^2`` and ``theta' = theta - lr m' / (c1 (sqrt(v' / c2) + eps))`` on
  the rows the batch touched: ``mu = lambda_m' + d theta'/d m' lambda_theta'``,
  ``nu = lambda_v' + d theta'/d v' lambda_theta'``, the batch gradient ``G``
  receives ``dir = (1 - b1) mu + 2 (1 - b2) G nu``, so ``lambda_theta +=
  H_B dir`` (central differences of the batch gradient), ``lambda_m = b1 mu``,
  ``lambda_v = b2 nu``; plain SGD has ``dir = -lr lambda_theta'``;
* the triple's own gradient ``g_j`` in that batch enters ``G`` linearly in
  ``w_j``, so it contributes ``dir . g_j / w_j`` to ``d f / d w_j``.

Times ``w_j``, that is the first-order change of ``f`` when ``j`` is removed,
including everything its removal changes later in training (other triples'
gradients, the moments, the negatives' rows).  It is exact as a derivative
(the tests compare it with central differences of actual retraining in
``w_j``); a removal is a finite step, so it is first order there.
"""

from collections import namedtuple

import numpy as np

from .._numba import njit
from ._interface import query_backward
from ._kg_rollback import proba_grad
from ._kg_train import candidate_softmax, loss_coef, softmax_scratch
from ._optim import SGD, RowState, apply_rows
from ._stream import _epoch_order

#: Parameters and optimizer state at the start of every epoch (leading axis: epoch),
#: kept by a fit with ``trajectory=True``: entity / relation rows ``E``, ``R``, their
#: Adam moments ``mE``, ``vE``, ``mR``, ``vR`` and row step counts ``tE``, ``tR``.
Checkpoints = namedtuple("Checkpoints", ["E", "R", "mE", "vE", "tE", "mR", "vR", "tR"])


@njit(cache=True, nogil=True)
def _example_grad(model, E, R, h, r, t, eki, n_neg, alpha, scale, cand, sc, q, dq, gh, gr,
                  gE, gRr, rows, mark):
    """One triple's loss gradient times ``scale``, with ``kg_fit``'s arithmetic.

    Adds into ``gE`` (zero on these rows on entry), writes the relation row's
    gradient to ``gRr`` and returns how many entity rows it listed in ``rows``.
    ``mark`` (all ``-1``) flags listed rows while the triple runs.
    """
    ne, dE = E.shape
    full = n_neg < 0
    n_cand = ne if full else n_neg + 1
    z = candidate_softmax(model, E, R, h, r, t, eki, n_neg, cand, sc, q)
    for k in range(dE):
        dq[k] = 0.0
    n_rows = 0
    for c in range(n_cand):
        row = cand[c]
        coef = loss_coef(sc, z, c, row, t, full, scale)
        if mark[row] < 0:
            mark[row] = 1
            rows[n_rows] = row
            n_rows += 1
        for k in range(dE):
            dq[k] += coef * E[row, k]
            gE[row, k] += coef * q[k]
    query_backward(model, E[h], R[r], dq, gh, gr)
    ra = scale * alpha
    for row in (h, t):
        if mark[row] < 0:
            mark[row] = 1
            rows[n_rows] = row
            n_rows += 1
    for k in range(dE):
        gE[h, k] += gh[k] + ra * E[h, k]
        gE[t, k] += ra * E[t, k]
    for k in range(gRr.shape[0]):
        gRr[k] = gr[k] + ra * R[r, k]
    for a in range(n_rows):
        mark[rows[a]] = -1
    return n_rows


@njit(cache=True, nogil=True)
def _batch_grad(model, E, R, data, order, ek, b0, b1_, n_neg, alpha, GE, GR, cntE, cntR,
                exE, exR, exRows, exN, exIdx, cand, sc, q, dq, gh, gr, mark, gRr, keep_examples):
    """Gradient of one batch into ``GE``, ``GR`` (zero on entry), how many
    triples touch each row (``cntE``, ``cntR``) and, with ``keep_examples``,
    each triple's own gradient (``exE[b]`` dense over entities, zero on
    entry; ``exR[b]`` its relation row).  Returns the number of triples with
    non-zero weight."""
    heads, rels, tails, weights = data.heads, data.relations, data.tails, data.weights
    bsz = b1_ - b0
    nb = 0
    for pos in range(b0, b1_):
        i = order[pos]
        w = weights[i]
        if w == 0.0:
            continue
        gEb = exE[nb if keep_examples else 0]
        n_rows = _example_grad(model, E, R, heads[i], rels[i], tails[i], ek[i], n_neg, alpha,
                               w / bsz, cand, sc, q, dq, gh, gr, gEb, gRr, exRows[nb], mark)
        exN[nb] = n_rows
        exIdx[nb] = i
        for a in range(n_rows):
            row = exRows[nb, a]
            cntE[row] += 1
            for k in range(E.shape[1]):
                GE[row, k] += gEb[row, k]
                if not keep_examples:
                    gEb[row, k] = 0.0
        r = rels[i]
        cntR[r] += 1
        for k in range(R.shape[1]):
            exR[nb, k] = gRr[k]
            GR[r, k] += gRr[k]
        nb += 1
    return nb


@njit(cache=True, nogil=True)
def _touched(cnt, rows):
    n = 0
    for row in range(cnt.shape[0]):
        if cnt[row] > 0:
            rows[n] = row
            n += 1
    return n


@njit(cache=True, nogil=True)
def _row_adjoint(lam, lm, lv, m_s, v_s, G, row, T, hp, lr, mu, nu, dirn):
    """Adjoint of one touched row through its optimizer step (see the module
    docstring); writes ``mu``, ``nu`` and the direction ``dirn`` that the batch
    gradient receives.  Returns max |dirn| over the row."""
    b1, b2, eps = hp.beta1, hp.beta2, hp.epsilon
    mx = 0.0
    if hp.optimizer == SGD:
        for k in range(lam.shape[1]):
            dirn[row, k] = -lr * lam[row, k]
            mx = max(mx, abs(dirn[row, k]))
        return mx
    c1 = 1.0 - b1 ** T
    c2 = 1.0 - b2 ** T
    for k in range(lam.shape[1]):
        g = G[row, k]
        m2 = b1 * m_s[row, k] + (1.0 - b1) * g
        v2 = b2 * v_s[row, k] + (1.0 - b2) * g * g
        u = np.sqrt(v2 / c2)
        mu[row, k] = lm[row, k] - lr / (c1 * (u + eps)) * lam[row, k]
        nu[row, k] = lv[row, k]
        if u > 0.0:
            nu[row, k] += lr * m2 / (c1 * (u + eps) ** 2 * 2.0 * u * c2) * lam[row, k]
        dirn[row, k] = (1.0 - b1) * mu[row, k] + 2.0 * (1.0 - b2) * g * nu[row, k]
        mx = max(mx, abs(dirn[row, k]))
    return mx


@njit(cache=True, nogil=True)
def kg_trajectory_deltas(model, data, hp, ck, lamE0, lamR0, out):
    """``out[a, j] += w_j d f_a / d w_j`` for query functionals with gradients
    ``lamE0[a]``, ``lamR0[a]`` at the trained parameters.

    ``data``: the training triples (:data:`~._kg_train.KGData`); ``hp``: the
    training's :data:`~._optim.Hyper`; ``ck``: its :data:`Checkpoints`.
    """
    heads, rels, keys = data.heads, data.relations, data.keys
    batch_size, n_neg, alpha = hp.batch_size, hp.n_negatives, hp.alpha
    lr0, lr_decay, opt = hp.learning_rate, hp.learning_rate_decay, hp.optimizer
    b1, b2 = hp.beta1, hp.beta2
    ckE, ckR, ckmE, ckvE, cktE, ckmR, ckvR, cktR = ck
    n = heads.shape[0]
    n_ep = ckE.shape[0]
    n_q, ne, dE = lamE0.shape
    nr, dR = lamR0.shape[1], lamR0.shape[2]
    lamE = lamE0.copy()
    lamR = lamR0.copy()
    lmE = np.zeros_like(lamE)
    lmR = np.zeros_like(lamR)
    lvE = np.zeros_like(lamE)
    lvR = np.zeros_like(lamR)
    muE = np.zeros((ne, dE))
    muR = np.zeros((nr, dR))
    nuE = np.zeros((ne, dE))
    nuR = np.zeros((nr, dR))
    dirE = np.zeros((ne, dE))
    dirR = np.zeros((nr, dR))
    n_cand = ne if n_neg < 0 else n_neg + 1
    cand, sc, q, dq, gh, gr = softmax_scratch(n_cand, dE, dR)
    gRr = np.empty(dR)
    GE = np.zeros((ne, dE))
    GR = np.zeros((nr, dR))
    GEp = np.zeros((ne, dE))
    GRp = np.zeros((nr, dR))
    GEm = np.zeros((ne, dE))
    GRm = np.zeros((nr, dR))
    cntE = np.zeros(ne, dtype=np.int64)
    cntR = np.zeros(nr, dtype=np.int64)
    cnt2E = np.zeros(ne, dtype=np.int64)
    cnt2R = np.zeros(nr, dtype=np.int64)
    rowsE = np.empty(ne, dtype=np.int64)
    rowsR = np.empty(nr, dtype=np.int64)
    exE = np.zeros((batch_size, ne, dE))
    exR = np.zeros((batch_size, dR))
    exRows = np.empty((batch_size, n_cand + 2), dtype=np.int64)
    exN = np.zeros(batch_size, dtype=np.int64)
    exIdx = np.zeros(batch_size, dtype=np.int64)
    scratchE = np.zeros((1, ne, dE))
    exR2 = np.zeros((batch_size, dR))
    exRows2 = np.empty((batch_size, n_cand + 2), dtype=np.int64)
    exN2 = np.zeros(batch_size, dtype=np.int64)
    exIdx2 = np.zeros(batch_size, dtype=np.int64)
    mark = np.full(ne, -1, dtype=np.int64)
    dummyE = np.empty((1, dE))
    dummyR = np.empty((1, dR))
    Ep = np.empty((ne, dE))
    Rp = np.empty((nr, dR))
    n_steps = (n + batch_size - 1) // batch_size
    # the state before every step of one epoch, replayed from its checkpoint
    sE = np.empty((n_steps, ne, dE))
    sR = np.empty((n_steps, nr, dR))
    smE = np.empty((n_steps, ne, dE))
    svE = np.empty((n_steps, ne, dE))
    stE_s = np.empty((n_steps, ne), dtype=np.int64)
    smR = np.empty((n_steps, nr, dR))
    svR = np.empty((n_steps, nr, dR))
    stR_s = np.empty((n_steps, nr), dtype=np.int64)
    sb0 = np.empty(n_steps, dtype=np.int64)
    E = np.empty((ne, dE))
    R = np.empty((nr, dR))
    mE = np.empty((ne, dE))
    vE = np.empty((ne, dE))
    tE = np.empty(ne, dtype=np.int64)
    mR = np.empty((nr, dR))
    vR = np.empty((nr, dR))
    tR = np.empty(nr, dtype=np.int64)
    stE = RowState(mE, vE, tE)
    stR = RowState(mR, vR, tR)
    for ep in range(n_ep - 1, -1, -1):
        lr = lr0 * lr_decay ** ep
        order, ek = _epoch_order(keys, ep)
        E[:] = ckE[ep]
        R[:] = ckR[ep]
        mE[:] = ckmE[ep]
        vE[:] = ckvE[ep]
        tE[:] = cktE[ep]
        mR[:] = ckmR[ep]
        vR[:] = ckvR[ep]
        tR[:] = cktR[ep]
        ns = 0
        for b0 in range(0, n, batch_size):
            b1_ = min(n, b0 + batch_size)
            nb = _batch_grad(model, E, R, data, order, ek, b0, b1_, n_neg, alpha, GE, GR,
                             cntE, cntR, scratchE, exR2, exRows2, exN2, exIdx2, cand, sc, q,
                             dq, gh, gr, mark, gRr, False)
            if nb == 0:
                continue
            sE[ns] = E
            sR[ns] = R
            smE[ns] = mE
            svE[ns] = vE
            stE_s[ns] = tE
            smR[ns] = mR
            svR[ns] = vR
            stR_s[ns] = tR
            sb0[ns] = b0
            ns += 1
            nE = _touched(cntE, rowsE)
            nR = _touched(cntR, rowsR)
            cntE[:] = 0
            cntR[:] = 0
            apply_rows(E, GE, stE, rowsE, nE, hp, lr, 0.0, False, dummyE)
            apply_rows(R, GR, stR, rowsR, nR, hp, lr, 0.0, False, dummyR)
        for s in range(ns - 1, -1, -1):
            b0 = sb0[s]
            b1_ = min(n, b0 + batch_size)
            Es = sE[s]
            Rs = sR[s]
            nb = _batch_grad(model, Es, Rs, data, order, ek, b0, b1_, n_neg, alpha, GE, GR,
                             cntE, cntR, exE, exR, exRows, exN, exIdx, cand, sc, q, dq, gh,
                             gr, mark, gRr, True)
            nE = _touched(cntE, rowsE)
            nR = _touched(cntR, rowsR)
            for a in range(n_q):
                mx = 0.0
                for j in range(nE):
                    row = rowsE[j]
                    mx = max(mx, _row_adjoint(lamE[a], lmE[a], lvE[a], smE[s], svE[s], GE, row,
                                              stE_s[s, row] + 1, hp, lr, muE, nuE, dirE))
                for j in range(nR):
                    row = rowsR[j]
                    mx = max(mx, _row_adjoint(lamR[a], lmR[a], lvR[a], smR[s], svR[s], GR, row,
                                              stR_s[s, row] + 1, hp, lr, muR, nuR, dirR))
                # each triple's gradient enters G linearly in its weight
                for b in range(nb):
                    acc = 0.0
                    for c in range(exN[b]):
                        row = exRows[b, c]
                        for k in range(dE):
                            acc += dirE[row, k] * exE[b, row, k]
                    r = rels[exIdx[b]]
                    for k in range(dR):
                        acc += dirR[r, k] * exR[b, k]
                    out[a, exIdx[b]] += acc
                if mx > 0.0:
                    # lambda_theta += H_B dir, by central differences of the batch gradient
                    h_ = 1e-5 / mx
                    for sign in (1.0, -1.0):
                        Ep[:] = Es
                        Rp[:] = Rs
                        for j in range(nE):
                            row = rowsE[j]
                            for k in range(dE):
                                Ep[row, k] += sign * h_ * dirE[row, k]
                        for j in range(nR):
                            row = rowsR[j]
                            for k in range(dR):
                                Rp[row, k] += sign * h_ * dirR[row, k]
                        G1 = GEp if sign > 0 else GEm
                        G2 = GRp if sign > 0 else GRm
                        _batch_grad(model, Ep, Rp, data, order, ek, b0, b1_, n_neg, alpha, G1,
                                    G2, cnt2E, cnt2R, scratchE, exR2, exRows2, exN2, exIdx2,
                                    cand, sc, q, dq, gh, gr, mark, gRr, False)
                    for j in range(nE):
                        row = rowsE[j]
                        for k in range(dE):
                            lamE[a, row, k] += (GEp[row, k] - GEm[row, k]) / (2.0 * h_)
                    for j in range(nR):
                        row = rowsR[j]
                        for k in range(dR):
                            lamR[a, row, k] += (GRp[row, k] - GRm[row, k]) / (2.0 * h_)
                    GEp[:] = 0.0
                    GEm[:] = 0.0
                    GRp[:] = 0.0
                    GRm[:] = 0.0
                    cnt2E[:] = 0
                    cnt2R[:] = 0
                if opt != SGD:
                    for j in range(nE):
                        row = rowsE[j]
                        for k in range(dE):
                            lmE[a, row, k] = b1 * muE[row, k]
                            lvE[a, row, k] = b2 * nuE[row, k]
                    for j in range(nR):
                        row = rowsR[j]
                        for k in range(dR):
                            lmR[a, row, k] = b1 * muR[row, k]
                            lvR[a, row, k] = b2 * nuR[row, k]
            for b in range(nb):
                for c in range(exN[b]):
                    row = exRows[b, c]
                    for k in range(dE):
                        exE[b, row, k] = 0.0
            for j in range(nE):
                row = rowsE[j]
                cntE[row] = 0
                for k in range(dE):
                    GE[row, k] = 0.0
            for j in range(nR):
                row = rowsR[j]
                cntR[row] = 0
                for k in range(dR):
                    GR[row, k] = 0.0


@njit(cache=True, nogil=True)
def kg_proba_grads(model, E, R, qh, qr, qt, lamE, lamR):
    """Gradient of ``p(t | h, r)`` (softmax over all entities) per query, into
    ``lamE[a]`` (all entity rows) and ``lamR[a]`` (zero but row ``r``)."""
    ne, d = E.shape
    q = np.empty(d)
    dq = np.empty(d)
    gh = np.empty(d)
    gr = np.empty(R.shape[1])
    sc = np.empty(ne)
    for a in range(qh.shape[0]):
        r = qr[a]
        proba_grad(model, E, R, qh[a], r, qt[a], q, sc, dq, gh, lamE[a], gr)
        lamR[a, :, :] = 0.0
        lamR[a, r, :] = gr
