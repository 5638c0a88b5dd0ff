"""Numba training loop of the knowledge-graph models, with rollback bookkeeping.

Every kernel takes the model's spec first and reaches the model only through
:func:`._interface.query` and :func:`._interface.query_backward`.

Rollback bookkeeping
--------------------
When recording, every example ``i`` accumulates in ``gam*[i]`` the parameter
change it caused on the rows it owns (head, relation and tail rows): under SGD
this is ``-lr * (its gradient on that row)`` summed over all steps, an exact
additive split of the trajectory of those rows.  Under (lazy) Adam the credit
is ``-lr * g_i / (sqrt(v_hat) + eps)`` with the second-moment estimate of the
step, i.e. each gradient's full effect through the momentum, credited when the
gradient is computed; the preconditioner ``v_hat`` (built from everyone's
gradients) is not rolled back.
"""

from collections import namedtuple

import numpy as np

from .._numba import njit
from ._interface import query, query_backward, query_scores
from ._optim import ADAM, SGD, apply_rows
from ._stream import _AHEAD, _epoch_order, _negative, _prefetch_row

#: The training triples as the kernels read them: ``heads``, ``relations``,
#: ``tails`` (int64), ``weights`` (float64) and the stream ``keys`` (uint64).
KGData = namedtuple("KGData", ["heads", "relations", "tails", "weights", "keys"])

#: What :func:`kg_fit` records: ``mode`` (0: nothing, 1: the triples' own rows,
#: 2: also their negatives' rows), ``head``, ``relation``, ``tail`` (``(n, dim)``, or
#: ``(1, dim)`` placeholders when not recording) and ``negatives`` (``(n,
#: n_entities, dim)`` with mode 2, else ``(1, 1, dim)``).
KGRecord = namedtuple("KGRecord", ["mode", "head", "relation", "tail", "negatives"])


@njit(cache=True, nogil=True)
def kg_scores(model, E, R, heads, rels):
    """Scores of every tail for each (head, relation): (n, n_entities)."""
    n = heads.shape[0]
    ne, d = E.shape
    out = np.empty((n, ne))
    q = np.empty(d)
    for i in range(n):
        query_scores(model, E, R, heads[i], rels[i], q, out[i])
    return out


@njit(cache=True, nogil=True, inline="always")
def softmax_scratch(n_cand, dE, dR):
    """Work arrays of :func:`candidate_softmax` and the backward pass: candidates,
    their scores, the query, its gradient and the head / relation gradients."""
    return (np.empty(n_cand, dtype=np.int64), np.empty(n_cand), np.empty(dE), np.empty(dE),
            np.empty(dE), np.empty(dR))


@njit(cache=True, nogil=True, inline="always")
def loss_coef(sc, z, c, row, t, full, scale):
    """``scale * d(-log p(t)) / d(score of candidate c)`` (``row``: its entity), from the
    output ``sc``, ``z`` of :func:`candidate_softmax`."""
    coef = sc[c] / z
    if row == t and (full or c == 0):
        coef -= 1.0
    return coef * scale


@njit(cache=True, nogil=True, inline="always")
def candidate_softmax(model, E, R, h, r, t, eki, n_neg, cand, sc, q):
    """The softmax candidates of triple ``(h, r, t)`` in the epoch with key ``eki``.

    Fills ``cand`` (the true tail, then ``n_neg`` sampled negatives; all
    entities when ``n_neg < 0``), ``q`` (the query vector) and ``sc``
    (``exp(score - max score)`` per candidate); returns their sum.
    """
    ne, d = E.shape
    if n_neg < 0:
        for c in range(ne):
            cand[c] = c
    else:
        cand[0] = t
        for s in range(n_neg):
            cand[s + 1] = _negative(eki, s, t, ne)
    n_cand = ne if n_neg < 0 else n_neg + 1
    query(model, E[h], R[r], q)
    mx = -np.inf
    for c in range(n_cand):
        s_ = 0.0
        row = cand[c]
        for k in range(d):
            s_ += q[k] * E[row, k]
        sc[c] = s_
        if s_ > mx:
            mx = s_
    z = 0.0
    for c in range(n_cand):
        sc[c] = np.exp(sc[c] - mx)
        z += sc[c]
    return z


@njit(cache=True, nogil=True)
def kg_fit(model, E, R, data, hp, stE, stR, rec, epoch_start, n_epochs, losses):
    """Train DistMult / ComplEx with softmax cross-entropy over the true tail
    and ``n_neg`` sampled negatives (``n_neg < 0``: all entities).

    Per-example loss: ``w * (-log p(t | h, r) + alpha/2 * (|e_h|^2 + |w_r|^2
    + |e_t|^2))``; a batch minimises the sum divided by its positional size
    (zero-weight examples included), so removing an example never rescales
    the others.  Modifies ``E``, ``R``, the optimizer state and (if
    ``record``) the ``gam*`` arrays in place; writes per-epoch mean loss.
    ``record == 2`` also credits each triple's updates to the rows of its
    sampled negatives into ``gamN[i, entity]`` (dense, ``(n, n_entities, d)``).
    The learning rate of epoch ``ep`` is ``lr0 * lr_decay ** ep``.

    ``model``: the model's spec (see :mod:`._interface`); ``data``: :data:`KGData`;
    ``hp``: :data:`~._optim.Hyper`; ``stE``, ``stR``: the Adam state of ``E``, ``R``;
    ``rec``: :data:`KGRecord`; runs epochs ``epoch_start`` to ``epoch_start + n_epochs``.
    """
    heads, rels, tails, weights, keys = data
    batch_size, n_neg, max_norm = hp.batch_size, hp.n_negatives, hp.max_norm
    lr0, lr_decay, alpha, opt = hp.learning_rate, hp.learning_rate_decay, hp.alpha, hp.optimizer
    record, gamH, gamR, gamT, gamN = rec
    n = heads.shape[0]
    ne, dE = E.shape
    dR = R.shape[1]
    full = n_neg < 0
    n_cand = ne if full else n_neg + 1
    cand, sc, q, dq, gh, gr = softmax_scratch(n_cand, dE, dR)
    GE = np.zeros_like(E)
    GR = np.zeros_like(R)
    rec_adam = record and opt == ADAM
    DE = np.empty_like(E) if rec_adam else np.empty((1, dE))
    DR = np.empty_like(R) if rec_adam else np.empty((1, dR))
    stampE = np.full(ne, -1, dtype=np.int64)
    stampR = np.full(R.shape[0], -1, dtype=np.int64)
    rowsE = np.empty(ne, dtype=np.int64)
    rowsR = np.empty(R.shape[0], dtype=np.int64)
    bufH = np.zeros((batch_size, dE))
    bufT = np.zeros((batch_size, dE))
    bufR = np.zeros((batch_size, dR))
    bidx = np.empty(batch_size, dtype=np.int64)
    rec_neg = record == 2
    buffered = record != 0 and (opt == ADAM or rec_neg)
    if rec_neg:
        bufN = np.zeros((batch_size, n_cand, dE))
        candN = np.empty((batch_size, n_cand), dtype=np.int64)
    else:
        bufN = np.zeros((1, 1, dE))
        candN = np.empty((1, 1), dtype=np.int64)
    step = 0
    for ep in range(epoch_start, epoch_start + n_epochs):
        lr = lr0 * lr_decay ** ep
        order, ek = _epoch_order(keys, ep)
        tot_loss = 0.0
        tot_w = 0.0
        for b0 in range(0, n, batch_size):
            b1_ = min(n, b0 + batch_size)
            bsz = b1_ - b0
            nE = 0
            nR = 0
            nb = 0
            for pos in range(b0, b1_):
                i = order[pos]
                if record and pos + _AHEAD < n:
                    nxt = order[pos + _AHEAD]
                    _prefetch_row(gamH, nxt)
                    _prefetch_row(gamR, nxt)
                    _prefetch_row(gamT, nxt)
                w = weights[i]
                if w == 0.0:
                    continue  # removed: consumes its randoms, touches nothing
                h = heads[i]
                r = rels[i]
                t = tails[i]
                z = candidate_softmax(model, E, R, h, r, t, ek[i], n_neg, cand, sc, q)
                st = sc[t] if full else sc[0]
                tot_loss += w * (np.log(z) - np.log(st))
                tot_w += w
                scale = w / bsz
                for k in range(dE):
                    dq[k] = 0.0
                # candidate-role gradient of the triple's own rows: coef * q
                # (summed here as scalars; the rows are credited below)
                coefH = 0.0
                coefT = 0.0
                for c in range(n_cand):
                    row = cand[c]
                    coef = loss_coef(sc, z, c, row, t, full, scale)
                    if stampE[row] != step:
                        stampE[row] = step
                        rowsE[nE] = row
                        nE += 1
                    for k in range(dE):
                        dq[k] += coef * E[row, k]
                        GE[row, k] += coef * q[k]
                    if row == h:
                        coefH += coef
                    elif row == t:
                        coefT += coef
                    elif rec_neg:
                        candN[nb, c] = row
                        for k in range(dE):
                            bufN[nb, c, k] = coef * q[k]
                    if rec_neg and (row == h or row == t):
                        candN[nb, c] = -1
                query_backward(model, E[h], R[r], dq, gh, gr)
                if stampE[h] != step:
                    stampE[h] = step
                    rowsE[nE] = h
                    nE += 1
                if stampR[r] != step:
                    stampR[r] = step
                    rowsR[nR] = r
                    nR += 1
                ra = scale * alpha
                if not record:
                    for k in range(dE):
                        GE[h, k] += gh[k] + ra * E[h, k]
                        GE[t, k] += ra * E[t, k]
                    for k in range(dR):
                        GR[r, k] += gr[k] + ra * R[r, k]
                elif buffered:
                    # Adam / negatives: the credit needs the step's scaling
                    for k in range(dE):
                        g_h = gh[k] + ra * E[h, k]
                        g_t = ra * E[t, k]
                        GE[h, k] += g_h
                        GE[t, k] += g_t
                        g_h += coefH * q[k]
                        g_t += coefT * q[k]
                        if t == h:
                            bufH[nb, k] = g_h + g_t
                        else:
                            bufH[nb, k] = g_h
                            bufT[nb, k] = g_t
                    for k in range(dR):
                        g_r = gr[k] + ra * R[r, k]
                        GR[r, k] += g_r
                        bufR[nb, k] = g_r
                else:
                    # plain SGD: the step is -lr * gradient, credit it now
                    for k in range(dE):
                        g_h = gh[k] + ra * E[h, k]
                        g_t = ra * E[t, k]
                        GE[h, k] += g_h
                        GE[t, k] += g_t
                        g_h += coefH * q[k]
                        g_t += coefT * q[k]
                        if t == h:
                            gamH[i, k] -= lr * (g_h + g_t)
                        else:
                            gamH[i, k] -= lr * g_h
                            gamT[i, k] -= lr * g_t
                    for k in range(dR):
                        g_r = gr[k] + ra * R[r, k]
                        GR[r, k] += g_r
                        gamR[i, k] -= lr * g_r
                bidx[nb] = i
                nb += 1
            if nb == 0:
                continue
            apply_rows(E, GE, stE, rowsE, nE, hp, lr, max_norm, rec_adam, DE)
            apply_rows(R, GR, stR, rowsR, nR, hp, lr, 0.0, rec_adam, DR)
            if buffered:
                # credit each example's buffered gradients with this update's
                # step sizes.  Written out here, with the optimizer branch outside
                # the element loop: this is the hot part of the Adam bookkeeping.
                # No reset is needed: every buffer entry read was written for
                # this batch.
                for b in range(nb):
                    i = bidx[b]
                    h = heads[i]
                    r = rels[i]
                    t = tails[i]
                    if opt == ADAM:
                        for k in range(dE):
                            gamH[i, k] -= DE[h, k] * bufH[b, k]
                        for k in range(dR):
                            gamR[i, k] -= DR[r, k] * bufR[b, k]
                        if t != h:
                            for k in range(dE):
                                gamT[i, k] -= DE[t, k] * bufT[b, k]
                    else:
                        for k in range(dE):
                            gamH[i, k] -= lr * bufH[b, k]
                        for k in range(dR):
                            gamR[i, k] -= lr * bufR[b, k]
                        if t != h:
                            for k in range(dE):
                                gamT[i, k] -= lr * bufT[b, k]
                    if rec_neg:
                        for c in range(n_cand):
                            row = candN[b, c]
                            if row < 0:
                                continue
                            if opt == SGD:
                                for k in range(dE):
                                    gamN[i, row, k] -= lr * bufN[b, c, k]
                            else:
                                for k in range(dE):
                                    gamN[i, row, k] -= DE[row, k] * bufN[b, c, k]
            step += 1
        losses[ep - epoch_start] = tot_loss / tot_w if tot_w > 0 else np.nan
