"""Numba kernels of the first-order and full rollbacks of a knowledge-graph model.

For a query ``(h, r, t)`` and a candidate training triple ``j`` they score the
drop of ``p(t | h, r)`` (softmax over all tails) when ``j``'s recorded updates
``gamma_j`` are rolled back: exactly (:func:`kg_rollback_deltas`, and
:func:`kg_rollback_deltas_dense` with the negatives' rows recorded) or to first
order (:func:`kg_first_order_deltas`).  The model enters only through
:func:`._interface.query` and :func:`._interface.query_backward`.
"""

import numpy as np

from .._numba import njit
from ._interface import query, query_backward, query_scores, tail_scores


@njit(cache=True, nogil=True, inline="always")
def _max_and_sum_exp(scores):
    """``(m, sum_e exp(scores[e] - m))`` with ``m`` the largest score."""
    mx = -np.inf
    for e in range(scores.shape[0]):
        if scores[e] > mx:
            mx = scores[e]
    z = 0.0
    for e in range(scores.shape[0]):
        z += np.exp(scores[e] - mx)
    return mx, z


@njit(cache=True, nogil=True)
def _log_softmax_at(scores, t):
    mx, z = _max_and_sum_exp(scores)
    return scores[t] - mx - np.log(z)


@njit(cache=True, nogil=True)
def kg_rollback_deltas(model, E, R, qh, qr, qt, ptr, idx, data, rec):
    """Predicted drop ``p(t|h,r) - p_rolled(t|h,r)`` for each (query, candidate).

    The rollback of example ``j`` subtracts its recorded updates from rows
    ``h_j``, ``r_j``, ``t_j``; the full softmax over all tails is recomputed
    exactly (incrementally when only two tail scores move).  ``data``, ``rec``: the
    training triples (:data:`~._kg_train.KGData`) and their records
    (:data:`~._kg_train.KGRecord`); ``ptr``, ``idx``: CSR candidates per query.
    """
    heads, rels, tails = data.heads, data.relations, data.tails
    gamH, gamR, gamT = rec.head, rec.relation, rec.tail
    ne, dE = E.shape
    out = np.empty(idx.shape[0])
    q = np.empty(dE)
    q2 = np.empty(dE)
    base = np.empty(ne)
    sc2 = np.empty(ne)
    Eh = np.empty(dE)
    Et = np.empty(dE)
    Rr = np.empty(R.shape[1])
    for a in range(qh.shape[0]):
        h, r, t = qh[a], qr[a], qt[a]
        query_scores(model, E, R, h, r, q, base)
        mx, z = _max_and_sum_exp(base)
        lp0 = base[t] - mx - np.log(z)
        p0 = np.exp(lp0)
        for p in range(ptr[a], ptr[a + 1]):
            j = idx[p]
            hj = heads[j]
            rj = rels[j]
            tj = tails[j]
            if hj == h or tj == h or rj == r:
                # the query vector itself moves: rescore every tail
                for k in range(dE):
                    Eh[k] = E[hj, k] - gamH[j, k]
                    if tj == hj:
                        Eh[k] -= gamT[j, k]
                        Et[k] = Eh[k]
                    else:
                        Et[k] = E[tj, k] - gamT[j, k]
                for k in range(R.shape[1]):
                    Rr[k] = R[rj, k] - gamR[j, k]
                # the query of the rolled-back rows
                eh = Eh if h == hj else (Et if h == tj else E[h])
                query(model, eh, Rr if r == rj else R[r], q2)
                for e in range(ne):
                    s_ = 0.0
                    if e == hj:
                        for k in range(dE):
                            s_ += q2[k] * Eh[k]
                    elif e == tj:
                        for k in range(dE):
                            s_ += q2[k] * Et[k]
                    else:
                        for k in range(dE):
                            s_ += q2[k] * E[e, k]
                    sc2[e] = s_
                lp = _log_softmax_at(sc2, t)
                out[p] = p0 - np.exp(lp)
            else:
                # only the scores of tails hj and tj move
                s_h = 0.0
                s_t = 0.0
                for k in range(dE):
                    eh = E[hj, k] - gamH[j, k]
                    s_h += q[k] * eh
                if tj == hj:
                    s_h = 0.0
                    for k in range(dE):
                        s_h += q[k] * (E[hj, k] - gamH[j, k] - gamT[j, k])
                else:
                    for k in range(dE):
                        s_t += q[k] * (E[tj, k] - gamT[j, k])
                rest = z - np.exp(base[hj] - mx)
                if tj != hj:
                    rest -= np.exp(base[tj] - mx)
                if rest < 1e-9 * z:
                    # cancellation would be inaccurate: rescore from scratch
                    for e in range(ne):
                        sc2[e] = base[e]
                    sc2[hj] = s_h
                    if tj != hj:
                        sc2[tj] = s_t
                    lp = _log_softmax_at(sc2, t)
                else:
                    mx2 = max(mx, s_h)
                    if tj != hj:
                        mx2 = max(mx2, s_t)
                    z2 = rest * np.exp(mx - mx2) + np.exp(s_h - mx2)
                    if tj != hj:
                        z2 += np.exp(s_t - mx2)
                    st = base[t]
                    if t == hj:
                        st = s_h
                    elif t == tj:
                        st = s_t
                    lp = st - mx2 - np.log(z2)
                out[p] = p0 - np.exp(lp)
    return out


@njit(cache=True, nogil=True)
def kg_rollback_deltas_dense(model, E, R, qh, qr, qt, ptr, idx, data, rec):
    """As :func:`kg_rollback_deltas` but also subtracting each example's
    recorded updates to its negatives' rows (``rec.negatives[j]``, every entity)."""
    heads, rels, tails = data.heads, data.relations, data.tails
    gamH, gamR, gamT, gamN = rec.head, rec.relation, rec.tail, rec.negatives
    ne, dE = E.shape
    out = np.empty(idx.shape[0])
    q = np.empty(dE)
    sc = np.empty(ne)
    E2 = np.empty_like(E)
    Rr = np.empty(R.shape[1])
    for a in range(qh.shape[0]):
        h, r, t = qh[a], qr[a], qt[a]
        query_scores(model, E, R, h, r, q, sc)
        p0 = np.exp(_log_softmax_at(sc, t))
        for p in range(ptr[a], ptr[a + 1]):
            j = idx[p]
            hj = heads[j]
            rj = rels[j]
            tj = tails[j]
            for e in range(ne):
                for k in range(dE):
                    E2[e, k] = E[e, k] - gamN[j, e, k]
            for k in range(dE):
                E2[hj, k] -= gamH[j, k]
                E2[tj, k] -= gamT[j, k]
            for k in range(R.shape[1]):
                Rr[k] = R[r, k] - (gamR[j, k] if rj == r else 0.0)
            query(model, E2[h], Rr, q)
            tail_scores(q, E2, sc)
            out[p] = p0 - np.exp(_log_softmax_at(sc, t))
    return out


@njit(cache=True, nogil=True, inline="always")
def proba_grad(model, E, R, h, r, t, q, sc, dq, gh, GE, gr):
    """Gradient of ``p(t | h, r)`` (softmax over all entities): every entity
    row into ``GE`` (candidate roles, plus the head's role through the
    query), the relation row ``r`` into ``gr``.  ``q``, ``sc``, ``dq``, ``gh``
    are scratch."""
    ne, dE = E.shape
    query_scores(model, E, R, h, r, q, sc)
    mx, z = _max_and_sum_exp(sc)
    for e in range(ne):
        sc[e] = np.exp(sc[e] - mx)
    pt = sc[t] / z
    # dp/ds_e = p_t (delta_et - p_e)
    for k in range(dE):
        dq[k] = 0.0
    for e in range(ne):
        c = pt * ((1.0 if e == t else 0.0) - sc[e] / z)
        for k in range(dE):
            GE[e, k] = c * q[k]  # candidate role of entity e
            dq[k] += c * E[e, k]
    query_backward(model, E[h], R[r], dq, gh, gr)
    for k in range(dE):
        GE[h, k] += gh[k]  # head role through the query


@njit(cache=True, nogil=True)
def kg_first_order_deltas(model, E, R, qh, qr, qt, ptr, idx, data, rec):
    """First-order rollback: ``grad p(t|h,r) . gamma_j`` for each (query, candidate).

    The derivative of ``p(t | h, r)`` at ``theta - eps * gamma_j`` with respect
    to ``-eps`` at ``eps = 0``: the predicted drop for an infinitesimal
    rollback of example ``j`` scaled to a full one.  Per query the gradient
    of ``p`` with respect to every entity row and the query relation's row is
    formed once (``O(n_entities * dim)``); each candidate then costs
    ``O(dim)`` (``O(n_entities * dim)`` with ``use_neg``, also crediting
    ``gamN[j]``, the example's updates to its negatives' rows, when ``rec.mode`` is 2).
    """
    heads, rels, tails = data.heads, data.relations, data.tails
    gamH, gamR, gamT, gamN = rec.head, rec.relation, rec.tail, rec.negatives
    use_neg = rec.mode == 2
    ne, dE = E.shape
    dR = R.shape[1]
    out = np.empty(idx.shape[0])
    q = np.empty(dE)
    sc = np.empty(ne)
    dq = np.empty(dE)
    gh = np.empty(dE)
    gr = np.empty(dR)
    GE = np.empty((ne, dE))
    for a in range(qh.shape[0]):
        h, r, t = qh[a], qr[a], qt[a]
        proba_grad(model, E, R, h, r, t, q, sc, dq, gh, GE, gr)
        for p in range(ptr[a], ptr[a + 1]):
            j = idx[p]
            hj = heads[j]
            tj = tails[j]
            s_ = 0.0
            for k in range(dE):
                s_ += GE[hj, k] * gamH[j, k] + GE[tj, k] * gamT[j, k]
            if rels[j] == r:
                for k in range(dR):
                    s_ += gr[k] * gamR[j, k]
            if use_neg:
                for e in range(ne):
                    for k in range(dE):
                        s_ += GE[e, k] * gamN[j, e, k]
            out[p] = s_
    return out
