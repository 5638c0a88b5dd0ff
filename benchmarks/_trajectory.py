"""Linearised-trajectory influence for the knowledge-graph estimators (evaluation only).

The question the PD / TC protocol asks is what *retraining* without a triple does
to a prediction.  Gradient Rollback sums the updates the triple made (it assumes
they persist unchanged); influence functions take the equilibrium shift ``H^-1 g``
(they assume training converged).  Neither follows how the removal propagates
through the rest of a 100-epoch Adam run with constant step size.

This module computes that propagation to first order, the adjoint way (as in
Hara, Nitanda & Maehara, "Data cleansing for models trained with SGD", NeurIPS
2019, extended to Adam's momentum):

* the training run is replayed step by step from its initialisation with the
  estimator's own random stream (order, negatives) and optimizer row update, and
  the state (parameters, Adam moments, row step counters) before every step is
  kept;
* for a query functional ``f(theta_T)`` the adjoint ``(lambda_theta, lambda_m)`` is
  carried backwards through every step: with ``m' = b1 m + (1 - b1) G(theta)``,
  ``theta' = theta - D m' / c1`` (``D`` the step's per-element Adam step size,
  held fixed), ``mu = lambda_m' - D / c1 * lambda_theta'``,
  ``lambda_theta = lambda_theta' + (1 - b1) H_B mu`` and ``lambda_m = b1 mu`` on the
  rows the batch touched (``H_B mu`` by central differences of the batch
  gradient);
* removing triple ``j`` changes the state after each step that contained it by
  an exactly computed one-step difference (its gradient taken out of the batch's
  row gradients and second moments; a row only ``j`` touched skips the Adam step
  altogether, as the lazy optimizer does), and ``f`` changes by the sum over those
  steps of ``<lambda after the step, difference>``.

What stays approximate: the later steps are linearised around the original
trajectory, and the second moments after a step carry no adjoint (a removal
changes them only through ``(1 - b2) g^2`` terms).  Only the Adam optimizer,
without ``max_norm``, is implemented: it is what the evaluation trains.
"""

import numpy as np
from numba import njit
from sklearn.utils import check_random_state

from skinfluence.rollback import _kernels as K


@njit(cache=True, nogil=True)
def _example_grad(model, E, R, h, r, t, eki, n_neg, alpha, scale, cand, sc, q, dq, gh, gr,
                  gE, gRr, rows, mark, stamp):
    """Loss gradient of one triple (times ``scale``) on its entity rows, as ``kg_fit``.

    Adds into ``gE`` (zero on the listed rows on entry), writes the relation
    row's gradient to ``gRr`` and returns the number of entity rows listed in
    ``rows`` (``mark`` flags listed rows while the example runs; all ``-1``
    on entry and on exit).
    """
    ne, dE = E.shape
    full = n_neg < 0
    n_cand = ne if full else n_neg + 1
    if full:
        for c in range(ne):
            cand[c] = c
    else:
        cand[0] = t
        for s in range(n_neg):
            cand[s + 1] = K._negative(eki, s, t, ne)
    K._query(model, E, R, h, r, q)
    mx = -np.inf
    for c in range(n_cand):
        s_ = 0.0
        row = cand[c]
        for k in range(dE):
            s_ += q[k] * E[row, k]
        sc[c] = s_
        if s_ > mx:
            mx = s_
    z = 0.0
    for c in range(n_cand):
        sc[c] = np.exp(sc[c] - mx)
        z += sc[c]
    for k in range(dE):
        dq[k] = 0.0
    n_rows = 0
    for c in range(n_cand):
        row = cand[c]
        coef = sc[c] / z
        if row == t and (full or c == 0):
            coef -= 1.0
        coef *= scale
        if mark[row] != stamp:
            mark[row] = stamp
            rows[n_rows] = row
            n_rows += 1
        for k in range(dE):
            dq[k] += coef * E[row, k]
            gE[row, k] += coef * q[k]
    K._query_backward(model, E, R, h, r, dq, gh, gr)
    ra = scale * alpha
    for row in (h, t):
        if mark[row] != stamp:
            mark[row] = stamp
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
def _batch_grad(model, E, R, heads, rels, tails, weights, order, ek, b0, b1_, n_neg, alpha,
                GE, GR, cntE, cntR, exE, exR, exRows, exN, exIdx, cand, sc, q, dq, gh, gr,
                mark, gRr):
    """Batch gradient ``GE``, ``GR`` (zero on entry) and, per example, its own
    gradient rows (``exE[b]`` dense over entities, ``exR[b]`` its relation row),
    with how many examples touch each row (``cntE``, ``cntR``).  Returns the
    number of non-removed examples."""
    bsz = b1_ - b0
    nb = 0
    for pos in range(b0, b1_):
        i = order[pos]
        w = weights[i]
        if w == 0.0:
            continue
        nb += 1
        stamp = 1
        gEb = exE[nb - 1]
        n_rows = _example_grad(model, E, R, heads[i], rels[i], tails[i], ek[i], n_neg, alpha,
                               w / bsz, cand, sc, q, dq, gh, gr, gEb, gRr, exRows[nb - 1],
                               mark, stamp)
        exN[nb - 1] = n_rows
        exIdx[nb - 1] = i
        for a in range(n_rows):
            row = exRows[nb - 1, a]
            cntE[row] += 1
            for k in range(E.shape[1]):
                GE[row, k] += gEb[row, k]
        r = rels[i]
        cntR[r] += 1
        for k in range(R.shape[1]):
            exR[nb - 1, k] = gRr[k]
            GR[r, k] += gRr[k]
    return nb


@njit(cache=True, nogil=True)
def _clear_examples(exE, exRows, exN, nb):
    for b in range(nb):
        for a in range(exN[b]):
            row = exRows[b, a]
            for k in range(exE.shape[2]):
                exE[b, row, k] = 0.0


@njit(cache=True, nogil=True)
def replay(model, E, R, heads, rels, tails, weights, keys, n_epochs, batch_size, n_neg, lr0,
           lr_decay, alpha, b1, b2, eps, Es, Rs, mEs, vEs, tEs, mRs, vRs, tRs, step_epoch,
           step_b0):
    """Re-run Adam training from ``E``, ``R`` (modified in place), storing the
    state before every step in the ``*s`` arrays."""
    n = heads.shape[0]
    ne, dE = E.shape
    nr, dR = R.shape
    mE = np.zeros_like(E)
    vE = np.zeros_like(E)
    mR = np.zeros_like(R)
    vR = np.zeros_like(R)
    tE = np.zeros(ne, dtype=np.int64)
    tR = np.zeros(nr, dtype=np.int64)
    n_cand = ne if n_neg < 0 else n_neg + 1
    cand = np.empty(n_cand, dtype=np.int64)
    sc = np.empty(n_cand)
    q = np.empty(dE)
    dq = np.empty(dE)
    gh = np.empty(dE)
    gr = np.empty(dR)
    gRr = np.empty(dR)
    GE = np.zeros_like(E)
    GR = np.zeros_like(R)
    cntE = np.zeros(ne, dtype=np.int64)
    cntR = np.zeros(nr, dtype=np.int64)
    exE = np.zeros((batch_size, ne, dE))
    exR = np.zeros((batch_size, dR))
    exRows = np.empty((batch_size, n_cand + 2), dtype=np.int64)
    exN = np.zeros(batch_size, dtype=np.int64)
    exIdx = np.zeros(batch_size, dtype=np.int64)
    mark = np.full(ne, -1, dtype=np.int64)
    rowsE = np.empty(ne, dtype=np.int64)
    rowsR = np.empty(nr, dtype=np.int64)
    dummy = np.empty((1, dE))
    s = 0
    for ep in range(n_epochs):
        lr = lr0 * lr_decay ** ep
        order, ek = K._epoch_order(keys, ep)
        for b0 in range(0, n, batch_size):
            b1_ = min(n, b0 + batch_size)
            nb = _batch_grad(model, E, R, heads, rels, tails, weights, order, ek, b0, b1_,
                             n_neg, alpha, GE, GR, cntE, cntR, exE, exR, exRows, exN, exIdx,
                             cand, sc, q, dq, gh, gr, mark, gRr)
            _clear_examples(exE, exRows, exN, nb)
            if nb == 0:
                continue
            Es[s] = E
            Rs[s] = R
            mEs[s] = mE
            vEs[s] = vE
            tEs[s] = tE
            mRs[s] = mR
            vRs[s] = vR
            tRs[s] = tR
            step_epoch[s] = ep
            step_b0[s] = b0
            s += 1
            nE = 0
            for row in range(ne):
                if cntE[row] > 0:
                    rowsE[nE] = row
                    nE += 1
                    cntE[row] = 0
            nR = 0
            for row in range(nr):
                if cntR[row] > 0:
                    rowsR[nR] = row
                    nR += 1
                    cntR[row] = 0
            K._apply_rows(E, GE, mE, vE, tE, rowsE, nE, K.ADAM, lr, b1, b2, eps, 0.0,
                          False, dummy)
            K._apply_rows(R, GR, mR, vR, tR, rowsR, nR, K.ADAM, lr, b1, b2, eps, 0.0,
                          False, dummy)
    return s


@njit(cache=True, nogil=True, inline="always")
def _adam_row(p, m, v, g, c1, c2, lr, b1, b2, eps):
    """Parameter and moments of one element after a lazy-Adam step."""
    m2 = b1 * m + (1.0 - b1) * g
    v2 = b2 * v + (1.0 - b2) * g * g
    return p - lr / (np.sqrt(v2 / c2) + eps) * (m2 / c1), m2, v2


@njit(cache=True, nogil=True)
def _row_adjoint(lam, lm, lv, m_s, v_s, G, row, T, lr, b1, b2, eps, second_moment, mu, nu, dirn):
    """Adjoint through one row's Adam step: ``mu`` (first moment), ``nu`` (second
    moment, zero unless ``second_moment``) and the direction ``dirn`` that the
    batch Hessian maps into ``lambda_theta``.  Returns max |dirn| of the row."""
    c1 = 1.0 - b1 ** T
    c2 = 1.0 - b2 ** T
    mx = 0.0
    for k in range(lam.shape[1]):
        g = G[row, k]
        m2 = b1 * m_s[row, k] + (1.0 - b1) * g
        v2 = b2 * v_s[row, k] + (1.0 - b2) * g * g
        u = np.sqrt(v2 / c2)
        mu[row, k] = lm[row, k] - lr / (u + eps) / c1 * lam[row, k]
        nu[row, k] = 0.0
        if second_moment and u > 0.0:
            # theta' = theta - lr m' / (c1 (sqrt(v' / c2) + eps)): d theta' / d v'
            dth_dv = lr * m2 / (c1 * (u + eps) ** 2 * 2.0 * u * c2)
            nu[row, k] = lv[row, k] + dth_dv * lam[row, k]
        dirn[row, k] = (1.0 - b1) * mu[row, k] + 2.0 * (1.0 - b2) * g * nu[row, k]
        mx = max(mx, abs(dirn[row, k]))
    return mx


@njit(cache=True, nogil=True)
def adjoint_influence(model, heads, rels, tails, weights, keys, batch_size, n_neg, lr0,
                      lr_decay, alpha, b1, b2, eps, Es, Rs, mEs, vEs, tEs, mRs, vRs, tRs,
                      step_epoch, step_b0, n_steps, first_step, second_moment, derivative, lamE0,
                      lamR0, out):
    """First-order change of ``f(theta_T)`` when each training triple is removed.

    ``lamE0``, ``lamR0``: gradient of ``f`` at the final parameters.  ``out``
    (n_train,) receives the predicted change of ``f`` (negative: ``f`` drops).
    Returns the adjoint of the parameters before ``first_step`` (with
    ``first_step=0``: the gradient of ``f`` with respect to the initialisation).
    Only steps from ``first_step`` on contribute (a truncated horizon).
    ``second_moment``: also carry the adjoint of Adam's second moments (else
    they are held fixed, as the step sizes of the original run).
    ``derivative``: ``out`` is ``-d f / d w_i`` (the removal linearised at every
    step too) instead of the exact one-step removals propagated linearly.
    """
    n = heads.shape[0]
    ne, dE = lamE0.shape
    nr, dR = lamR0.shape
    lamE = lamE0.copy()
    lamR = lamR0.copy()
    lmE = np.zeros_like(lamE)
    lmR = np.zeros_like(lamR)
    lvE = np.zeros_like(lamE)
    lvR = np.zeros_like(lamR)
    muE = np.zeros_like(lamE)
    muR = np.zeros_like(lamR)
    nuE = np.zeros_like(lamE)
    nuR = np.zeros_like(lamR)
    dirE = np.zeros_like(lamE)
    dirR = np.zeros_like(lamR)
    n_cand = ne if n_neg < 0 else n_neg + 1
    cand = np.empty(n_cand, dtype=np.int64)
    sc = np.empty(n_cand)
    q = np.empty(dE)
    dq = np.empty(dE)
    gh = np.empty(dE)
    gr = np.empty(dR)
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
    exE = np.zeros((batch_size, ne, dE))
    exR = np.zeros((batch_size, dR))
    exRows = np.empty((batch_size, n_cand + 2), dtype=np.int64)
    exN = np.zeros(batch_size, dtype=np.int64)
    exIdx = np.zeros(batch_size, dtype=np.int64)
    exE2 = np.zeros((batch_size, ne, dE))
    exR2 = np.zeros((batch_size, dR))
    exRows2 = np.empty((batch_size, n_cand + 2), dtype=np.int64)
    exN2 = np.zeros(batch_size, dtype=np.int64)
    exIdx2 = np.zeros(batch_size, dtype=np.int64)
    mark = np.full(ne, -1, dtype=np.int64)
    Ep = np.empty((ne, dE))
    Rp = np.empty((nr, dR))
    cur_ep = -1
    order = np.empty(n, dtype=np.int64)
    ek = np.empty(n, dtype=np.uint64)
    for s in range(n_steps - 1, first_step - 1, -1):
        ep = step_epoch[s]
        b0 = step_b0[s]
        b1_ = min(n, b0 + batch_size)
        if ep != cur_ep:
            order, ek = K._epoch_order(keys, ep)
            cur_ep = ep
        lr = lr0 * lr_decay ** ep
        E = Es[s]
        R = Rs[s]
        nb = _batch_grad(model, E, R, heads, rels, tails, weights, order, ek, b0, b1_, n_neg,
                         alpha, GE, GR, cntE, cntR, exE, exR, exRows, exN, exIdx, cand, sc, q,
                         dq, gh, gr, mark, gRr)
        # adjoint through the row updates of the touched rows (zero elsewhere)
        mx = 0.0
        for row in range(ne):
            if cntE[row] > 0:
                mx = max(mx, _row_adjoint(lamE, lmE, lvE, mEs[s], vEs[s], GE, row,
                                          tEs[s, row] + 1, lr, b1, b2, eps, second_moment,
                                          muE, nuE, dirE))
        for row in range(nr):
            if cntR[row] > 0:
                mx = max(mx, _row_adjoint(lamR, lmR, lvR, mRs[s], vRs[s], GR, row,
                                          tRs[s, row] + 1, lr, b1, b2, eps, second_moment,
                                          muR, nuR, dirR))
        if derivative:
            # d f / d w_i (times -1): the step's derivative along the example's gradient
            for b in range(nb):
                i = exIdx[b]
                acc = 0.0
                for a in range(exN[b]):
                    row = exRows[b, a]
                    for k in range(dE):
                        acc += dirE[row, k] * exE[b, row, k]
                r = rels[i]
                for k in range(dR):
                    acc += dirR[r, k] * exR[b, k]
                out[i] -= acc
            nb_exact = 0
        else:
            nb_exact = nb
        # one-step differences of removing each example, against lambda after the step
        for b in range(nb_exact):
            i = exIdx[b]
            acc = 0.0
            for a in range(exN[b]):
                row = exRows[b, a]
                T = tEs[s, row] + 1
                c1 = 1.0 - b1 ** T
                c2 = 1.0 - b2 ** T
                for k in range(dE):
                    p = E[row, k]
                    m = mEs[s, row, k]
                    v = vEs[s, row, k]
                    p1, m1, v1 = _adam_row(p, m, v, GE[row, k], c1, c2, lr, b1, b2, eps)
                    if cntE[row] == 1:  # only this example touched the row: no step
                        p0, m0, v0 = p, m, v
                    else:
                        p0, m0, v0 = _adam_row(p, m, v, GE[row, k] - exE[b, row, k], c1, c2,
                                               lr, b1, b2, eps)
                    acc += (lamE[row, k] * (p0 - p1) + lmE[row, k] * (m0 - m1)
                            + lvE[row, k] * (v0 - v1))
            r = rels[i]
            T = tRs[s, r] + 1
            c1 = 1.0 - b1 ** T
            c2 = 1.0 - b2 ** T
            for k in range(dR):
                p = R[r, k]
                m = mRs[s, r, k]
                v = vRs[s, r, k]
                p1, m1, v1 = _adam_row(p, m, v, GR[r, k], c1, c2, lr, b1, b2, eps)
                if cntR[r] == 1:
                    p0, m0, v0 = p, m, v
                else:
                    p0, m0, v0 = _adam_row(p, m, v, GR[r, k] - exR[b, k], c1, c2, lr, b1, b2,
                                           eps)
                acc += (lamR[r, k] * (p0 - p1) + lmR[r, k] * (m0 - m1)
                        + lvR[r, k] * (v0 - v1))
            out[i] += acc
        _clear_examples(exE, exRows, exN, nb)
        if mx > 0.0:
            # lambda_theta += H_B dir, by central differences of the batch gradient
            h_ = 1e-5 / mx
            for sign in (1.0, -1.0):
                Ep[:] = E
                Rp[:] = R
                for row in range(ne):
                    if cntE[row] > 0:
                        for k in range(dE):
                            Ep[row, k] += sign * h_ * dirE[row, k]
                for row in range(nr):
                    if cntR[row] > 0:
                        for k in range(dR):
                            Rp[row, k] += sign * h_ * dirR[row, k]
                G1 = GEp if sign > 0 else GEm
                G2 = GRp if sign > 0 else GRm
                nb2 = _batch_grad(model, Ep, Rp, heads, rels, tails, weights, order, ek, b0,
                                  b1_, n_neg, alpha, G1, G2, cnt2E, cnt2R, exE2, exR2, exRows2,
                                  exN2, exIdx2, cand, sc, q, dq, gh, gr, mark, gRr)
                _clear_examples(exE2, exRows2, exN2, nb2)
            for row in range(ne):
                if cntE[row] > 0:
                    for k in range(dE):
                        lamE[row, k] += (GEp[row, k] - GEm[row, k]) / (2.0 * h_)
            for row in range(nr):
                if cntR[row] > 0:
                    for k in range(dR):
                        lamR[row, k] += (GRp[row, k] - GRm[row, k]) / (2.0 * h_)
        for row in range(ne):
            cnt2E[row] = 0
            if cntE[row] > 0:
                for k in range(dE):
                    lmE[row, k] = b1 * muE[row, k]
                    lvE[row, k] = b2 * nuE[row, k]
        for row in range(nr):
            cnt2R[row] = 0
            if cntR[row] > 0:
                for k in range(dR):
                    lmR[row, k] = b1 * muR[row, k]
                    lvR[row, k] = b2 * nuR[row, k]
        GEp[:] = 0.0
        GEm[:] = 0.0
        GRp[:] = 0.0
        GRm[:] = 0.0
        for row in range(ne):
            cntE[row] = 0
            for k in range(dE):
                GE[row, k] = 0.0
        for row in range(nr):
            cntR[row] = 0
            for k in range(dR):
                GR[row, k] = 0.0
    return lamE, lamR


class Trajectory:
    """The replayed training run of a fitted (unrecorded) DistMult / ComplEx.

    ``Trajectory(model, X).influence(lamE, lamR)`` → predicted change of ``f``
    for removing each training triple, given ``grad f`` at the final
    parameters ``(lamE, lamR)``.
    """

    def __init__(self, model, X):
        if model.optimizer != "adam" or model.max_norm is not None:
            raise NotImplementedError("the trajectory adjoint covers Adam without max_norm")
        X = np.asarray(X, dtype=np.int64)
        self.model = model
        ne, nr = model.n_entities_, model.n_relations_
        d = model.entity_embeddings_.shape[1]
        # the estimator's initialisation and random stream (see _KGEmbedding._fit)
        rs = check_random_state(model.random_state)
        E = rs.normal(scale=model.init_scale, size=(ne, d))
        R = rs.normal(scale=model.init_scale, size=(nr, d))
        if model._model_id == K.DISTMULT:
            R += 1.0
        seed = np.uint64(rs.randint(0, 2**31 - 1)) * np.uint64(2**31) + np.uint64(
            rs.randint(0, 2**31 - 1))
        self.keys = K.content_keys(X, seed)
        self.init = (E.copy(), R.copy())
        self.heads, self.rels, self.tails = (np.ascontiguousarray(X[:, c]) for c in range(3))
        self.weights = np.ones(X.shape[0])
        n = X.shape[0]
        bs = model.batch_size
        S = model.max_iter * ((n + bs - 1) // bs)
        self.n_neg = -1 if model.n_negatives is None else int(model.n_negatives)
        self.Es = np.empty((S, ne, d))
        self.Rs = np.empty((S, nr, d))
        self.mEs = np.empty((S, ne, d))
        self.vEs = np.empty((S, ne, d))
        self.mRs = np.empty((S, nr, d))
        self.vRs = np.empty((S, nr, d))
        self.tEs = np.empty((S, ne), dtype=np.int64)
        self.tRs = np.empty((S, nr), dtype=np.int64)
        self.step_epoch = np.empty(S, dtype=np.int64)
        self.step_b0 = np.empty(S, dtype=np.int64)
        self.hyper = (bs, self.n_neg, float(model.learning_rate),
                      float(model.learning_rate_decay), float(model.alpha),
                      float(model.beta1), float(model.beta2), float(model.epsilon))
        bs_, n_neg, lr0, decay, alpha, b1, b2, eps = self.hyper
        self.n_steps = replay(model._model_id, E, R, self.heads, self.rels, self.tails,
                              self.weights, self.keys, model.max_iter, bs_, n_neg, lr0, decay,
                              alpha, b1, b2, eps, self.Es, self.Rs, self.mEs, self.vEs,
                              self.tEs, self.mRs, self.vRs, self.tRs, self.step_epoch,
                              self.step_b0)
        # the replay must land on the fitted parameters (same arithmetic up to the
        # order of a few additions per row)
        self.replay_error = max(np.abs(E - model.entity_embeddings_).max(),
                                np.abs(R - model.relation_embeddings_).max())

    def influence(self, lamE, lamR, last_epochs=None, second_moment=True, derivative=False,
                  return_initial=False):
        """Predicted change of ``f`` per removed triple (and, with
        ``return_initial``, ``d f / d`` initial ``(E, R)``)."""
        first = 0
        if last_epochs is not None:
            first = int(np.searchsorted(self.step_epoch[:self.n_steps],
                                        self.model.max_iter - last_epochs))
        out = np.zeros(self.heads.shape[0])
        bs, n_neg, lr0, decay, alpha, b1, b2, eps = self.hyper
        lam0 = adjoint_influence(
            self.model._model_id, self.heads, self.rels, self.tails, self.weights, self.keys,
            bs, n_neg, lr0, decay, alpha, b1, b2, eps, self.Es, self.Rs, self.mEs, self.vEs,
            self.tEs, self.mRs, self.vRs, self.tRs, self.step_epoch, self.step_b0, self.n_steps,
            first, second_moment, derivative, np.ascontiguousarray(lamE, dtype=np.float64),
            np.ascontiguousarray(lamR, dtype=np.float64), out)
        return (out, lam0) if return_initial else out
