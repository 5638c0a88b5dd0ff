"""Numba training and rollback loops for neural matrix factorisation.

Nothing here is compiled at import time; every kernel is ``cache=True`` and
``nogil=True`` so that independent fits can run in threads.

Random stream
-------------
Batch order and negative samples come from a counter-based hash (splitmix64)
of ``(seed, epoch, content of the example)`` instead of a sequential
generator.  Consequences, both needed for faithful retraining experiments:

* an example with ``sample_weight=0`` is skipped (no gradient, no optimizer
  state touched) while every other example sees exactly the same batch
  neighbours and negatives as in the full run;
* with ``batch_size=1`` physically deleting a row of ``X`` gives bit-for-bit
  the same model as giving it weight 0, because the order is an argsort of
  per-example hashes (deleting one key keeps the relative order of the rest).

Rollback bookkeeping
--------------------
When ``record`` is true, every example ``i`` accumulates in ``gam_*[i]`` the
parameter change it caused on the rows it owns (head/relation/tail rows for
knowledge graphs, user/item rows for ratings): under SGD this is
``-lr * (its gradient on that row)`` summed over all steps, an exact additive
split of the trajectory of those rows.  Under (lazy) Adam the credit is
``-lr * g_i / (sqrt(v_hat) + eps)`` with the second-moment estimate of the
step, i.e. each gradient's full effect through the momentum, credited when the
gradient is computed; the preconditioner ``v_hat`` (built from everyone's
gradients) is not rolled back.
"""

import numpy as np
from llvmlite import ir
from llvmlite.binding import llvm_version_info
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .._numba import njit

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_NEG = np.uint64(0x632BE59BD9B4E019)

SGD = 0
ADAM = 1
DISTMULT = 0
COMPLEX = 1


@njit(cache=True, nogil=True, inline="always")
def _mix(z):
    z = z + _GOLD
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def content_keys(cols, seed):
    """Hash of each row's integer content, salted by ``seed`` (uint64)."""
    n, m = cols.shape
    keys = np.empty(n, dtype=np.uint64)
    for i in range(n):
        z = _mix(seed)
        for j in range(m):
            z = _mix(z ^ np.uint64(cols[i, j]))
        keys[i] = z
    return keys


@njit(cache=True, nogil=True)
def _epoch_order(keys, epoch):
    salt = _mix(np.uint64(epoch) * _NEG + _GOLD)
    n = keys.shape[0]
    ek = np.empty(n, dtype=np.uint64)
    for i in range(n):
        ek[i] = _mix(keys[i] ^ salt)
    # mergesort is stable: duplicated examples keep their relative order
    return np.argsort(ek, kind="mergesort"), ek


@njit(cache=True, nogil=True)
def epoch_negatives(keys, epoch, tails, n_entities, n_neg):
    """Negatives each example sees in ``epoch`` (for tests and inspection)."""
    _, ek = _epoch_order(keys, epoch)
    n = keys.shape[0]
    out = np.empty((n, n_neg), dtype=np.int64)
    for i in range(n):
        for s in range(n_neg):
            out[i, s] = _negative(ek[i], s, tails[i], n_entities)
    return out


@njit(cache=True, nogil=True, inline="always")
def _negative(ek, s, t, n_entities):
    u = _mix(ek + np.uint64(s + 1) * _NEG)
    neg = np.int64(u % np.uint64(n_entities - 1))
    if neg >= t:  # uniform over entities other than the true tail
        neg += 1
    return neg


# the intrinsic is mangled by pointer type: opaque pointers from LLVM 17 on
_PREFETCH_NAME = ("llvm.prefetch.p0" if llvm_version_info[0] >= 17
                  else "llvm.prefetch.p0i8")


@intrinsic
def _prefetch(typingctx, arr, row, col):
    """Hint the CPU to fetch ``arr[row, col]``'s cache line for writing
    (``llvm.prefetch``; no effect on results).  The bookkeeping arrays are
    indexed by example in shuffled order, so their rows are cache misses:
    prefetching a few examples ahead overlaps them with the training work."""
    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        r = context.cast(builder, args[1], signature.args[1], types.intp)
        c = context.cast(builder, args[2], signature.args[2], types.intp)
        ptr = cgutils.get_item_pointer2(
            context, builder, data=ary.data, shape=cgutils.unpack_tuple(builder, ary.shape),
            strides=cgutils.unpack_tuple(builder, ary.strides), layout=aryty.layout,
            inds=[r, c])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            _PREFETCH_NAME)
        # rw=1 (write), locality=3 (keep in all levels), data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 1),
                          ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.void(arr, row, col), codegen


_AHEAD = 8  # examples to prefetch ahead


@njit(cache=True, nogil=True, inline="always")
def _prefetch_row(arr, row):
    """Prefetch every cache line of ``arr[row]`` (8 doubles per line)."""
    for c in range(0, arr.shape[1], 8):
        _prefetch(arr, row, c)
    _prefetch(arr, row, arr.shape[1] - 1)


@njit(cache=True, nogil=True, inline="always")
def _query(model, E, R, h, r, q):
    d = E.shape[1]
    if model == DISTMULT:
        for k in range(d):
            q[k] = E[h, k] * R[r, k]
    else:
        c = d // 2
        for k in range(c):
            hr = E[h, k]
            hi = E[h, c + k]
            rr = R[r, k]
            ri = R[r, c + k]
            q[k] = hr * rr - hi * ri
            q[c + k] = hr * ri + hi * rr


@njit(cache=True, nogil=True, inline="always")
def _query_backward(model, E, R, h, r, dq, gh, gr):
    d = E.shape[1]
    if model == DISTMULT:
        for k in range(d):
            gh[k] = dq[k] * R[r, k]
            gr[k] = dq[k] * E[h, k]
    else:
        c = d // 2
        for k in range(c):
            hr = E[h, k]
            hi = E[h, c + k]
            rr = R[r, k]
            ri = R[r, c + k]
            da = dq[k]
            db = dq[c + k]
            gh[k] = da * rr + db * ri
            gh[c + k] = -da * ri + db * rr
            gr[k] = da * hr + db * hi
            gr[c + k] = -da * hi + db * hr


@njit(cache=True, nogil=True)
def kg_scores(model, E, R, heads, rels):
    """Scores of every tail for each (head, relation): (n, n_entities)."""
    n = heads.shape[0]
    ne, d = E.shape
    out = np.empty((n, ne))
    q = np.empty(d)
    for i in range(n):
        _query(model, E, R, heads[i], rels[i], q)
        _tail_scores(q, E, out[i])
    return out


@njit(cache=True, nogil=True, inline="always")
def _apply_rows(P, G, M, V, T, rows, n_rows, opt, lr, b1, b2, eps, max_norm, record, Dinv):
    """Optimizer step on the touched rows; with ``record`` under Adam also
    stores ``lr / (sqrt(v_hat) + eps)`` of the step in ``Dinv`` for crediting."""
    d = P.shape[1]
    for j in range(n_rows):
        row = rows[j]
        if opt == SGD:
            for k in range(d):
                P[row, k] -= lr * G[row, k]
        else:
            T[row] += 1
            c1 = 1.0 - b1 ** T[row]
            c2 = 1.0 - b2 ** T[row]
            for k in range(d):
                g = G[row, k]
                M[row, k] = b1 * M[row, k] + (1.0 - b1) * g
                V[row, k] = b2 * V[row, k] + (1.0 - b2) * g * g
                step = lr / (np.sqrt(V[row, k] / c2) + eps)
                P[row, k] -= step * (M[row, k] / c1)
                Dinv[row if record else 0, k] = step
        if max_norm > 0.0:
            nrm = 0.0
            for k in range(d):
                nrm += P[row, k] * P[row, k]
            nrm = np.sqrt(nrm)
            if nrm > max_norm:
                f = max_norm / nrm
                for k in range(d):
                    P[row, k] *= f
        for k in range(d):
            G[row, k] = 0.0


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
    _query(model, E, R, h, r, q)
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
def kg_fit(model, E, R, heads, rels, tails, weights, keys, epoch_start, n_epochs,
           batch_size, n_neg, lr0, lr_decay, alpha, opt, b1, b2, eps, max_norm,
           mE, vE, tE, mR, vR, tR, record, gamH, gamR, gamT, gamN, losses):
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
    """
    n = heads.shape[0]
    ne, dE = E.shape
    dR = R.shape[1]
    full = n_neg < 0
    n_cand = ne if full else n_neg + 1
    cand = np.empty(n_cand, dtype=np.int64)
    sc = np.empty(n_cand)
    q = np.empty(dE)
    dq = np.empty(dE)
    gh = np.empty(dE)
    gr = np.empty(dR)
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
                    coef = sc[c] / z
                    if row == t and (full or c == 0):
                        coef -= 1.0
                    coef *= scale
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
                _query_backward(model, E, R, h, r, dq, gh, gr)
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
            _apply_rows(E, GE, mE, vE, tE, rowsE, nE, opt, lr, b1, b2, eps, max_norm,
                        rec_adam, DE)
            _apply_rows(R, GR, mR, vR, tR, rowsR, nR, opt, lr, b1, b2, eps, 0.0,
                        rec_adam, DR)
            if buffered:
                # credit each example's buffered gradients with this update's
                # step sizes.  Written out here: the former helper (optimizer
                # branch inside the element loop, buffer reset after use) was
                # most of the Adam bookkeeping cost.  No reset is needed:
                # every buffer entry read was written for this batch.
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


@njit(cache=True, nogil=True, inline="always")
def _adam_moments(G, M, V, T, rows, n_rows, lr, b1, b2, eps, Dinv):
    """First half of :func:`_apply_rows` under Adam: moments and step sizes
    ``Dinv`` of the touched rows, parameters not yet moved."""
    d = G.shape[1]
    for j in range(n_rows):
        row = rows[j]
        T[row] += 1
        c2 = 1.0 - b2 ** T[row]
        for k in range(d):
            g = G[row, k]
            M[row, k] = b1 * M[row, k] + (1.0 - b1) * g
            V[row, k] = b2 * V[row, k] + (1.0 - b2) * g * g
            Dinv[row, k] = lr / (np.sqrt(V[row, k] / c2) + eps)


@njit(cache=True, nogil=True, inline="always")
def _adam_params(P, G, M, T, rows, n_rows, b1, Dinv):
    """Second half: ``P -= step * m_hat`` (bit-identical to :func:`_apply_rows`)."""
    d = P.shape[1]
    for j in range(n_rows):
        row = rows[j]
        c1 = 1.0 - b1 ** T[row]
        for k in range(d):
            P[row, k] -= Dinv[row, k] * (M[row, k] / c1)
            G[row, k] = 0.0


@njit(cache=True, nogil=True)
def mf_fit(P, Q, users, items, y, weights, mu, keys, epoch_start, n_epochs,
           batch_size, lr0, lr_decay, alpha, opt, b1, b2, eps, mP, vP, tP, mQ, vQ, tQ,
           record, gamP, gamQ, losses):
    """Train biased matrix factorisation on explicit ratings.

    ``P`` is ``(n_users, k + 1)`` and ``Q`` is ``(n_items, k + 1)``: the last
    column holds the user / item bias, so ``y_hat = mu + P[u, :k] . Q[i, :k]
    + P[u, k] + Q[i, k]``.  Per-example loss ``w * ((y_hat - y)^2 / 2 +
    alpha/2 * (|P[u]|^2 + |Q[i]|^2))``, batches divided by positional size;
    learning rate ``lr0 * lr_decay ** epoch``.
    """
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
                pred = mu + P[u, k_] + Q[it, k_]
                for k in range(k_):
                    pred += P[u, k] * Q[it, k]
                err = pred - y[i]
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
                _apply_rows(P, GP, mP, vP, tP, rowsP, nP, opt, lr, b1, b2, eps, 0.0,
                            False, DP)
                _apply_rows(Q, GQ, mQ, vQ, tQ, rowsQ, nQ, opt, lr, b1, b2, eps, 0.0,
                            False, DQ)
            else:
                # step sizes first, then the credits (gradients recomputed at
                # the rows' pre-update values), then the parameter update
                _adam_moments(GP, mP, vP, tP, rowsP, nP, lr, b1, b2, eps, DP)
                _adam_moments(GQ, mQ, vQ, tQ, rowsQ, nQ, lr, b1, b2, eps, DQ)
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
                _adam_params(P, GP, mP, tP, rowsP, nP, b1, DP)
                _adam_params(Q, GQ, mQ, tQ, rowsQ, nQ, b1, DQ)
            step += 1
        losses[ep - epoch_start] = tot_loss / tot_w if tot_w > 0 else np.nan


@njit(cache=True, nogil=True)
def csr_of_ids(cols, n_ids):
    """CSR (ptr, idx) listing, for each id, the examples holding it in any of
    the columns of ``cols`` (once per example, ascending): a counting sort,
    O(n) instead of an argsort."""
    n, m = cols.shape
    ptr = np.zeros(n_ids + 1, dtype=np.int64)
    for i in range(n):
        for c in range(m):
            if _first_in_row(cols, i, c):
                ptr[cols[i, c] + 1] += 1
    for v in range(n_ids):
        ptr[v + 1] += ptr[v]
    fill = ptr[:-1].copy()
    idx = np.empty(ptr[n_ids], dtype=np.int64)
    for i in range(n):
        for c in range(m):
            if _first_in_row(cols, i, c):
                v = cols[i, c]
                idx[fill[v]] = i
                fill[v] += 1
    return ptr, idx


@njit(cache=True, nogil=True, inline="always")
def _first_in_row(cols, i, c):
    """True unless ``cols[i, c]`` already appears earlier in row ``i``."""
    for c2 in range(c):
        if cols[i, c2] == cols[i, c]:
            return False
    return True


@njit(cache=True, nogil=True)
def scatter_add_rows(out, rows, vals):
    """``out[rows[i]] += vals[i]`` (np.add.at for 2-D rows, without its overhead)."""
    d = out.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        for k in range(d):
            out[r, k] += vals[i, k]


# --------------------------------------------------------------------------
# rollback at explanation time
# --------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _tail_scores(q, E, out):
    """``out[e] = q . E[e]``: the query's score for every candidate tail."""
    for e in range(E.shape[0]):
        s_ = 0.0
        for k in range(E.shape[1]):
            s_ += q[k] * E[e, k]
        out[e] = s_


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
def kg_candidates(qh, qr, qt, ent_ptr, ent_idx, rel_ptr, rel_idx, n_train, scope_all):
    """CSR (ptr, idx) of training examples to score for each query.

    ``scope_all``: every training example (rolling any of them back moves the
    softmax normaliser); otherwise the neighbourhood of the query, i.e. the
    examples whose head or tail is the query's head or tail, or whose
    relation is the query's relation (the only ones whose rollback changes
    the query's own score).
    """
    nq = qh.shape[0]
    ptr = np.zeros(nq + 1, dtype=np.int64)
    if scope_all:
        for a in range(nq):
            ptr[a + 1] = ptr[a] + n_train
        idx = np.empty(ptr[nq], dtype=np.int64)
        for a in range(nq):
            for j in range(n_train):
                idx[ptr[a] + j] = j
        return ptr, idx
    # neighbourhood: union of the examples listed under the query's head, tail, relation
    lo = np.empty((nq, 3), dtype=np.int64)
    hi = np.empty((nq, 3), dtype=np.int64)
    off = ent_idx.shape[0]  # relation lists follow the entity lists in `lists`
    for a in range(nq):
        lo[a, 0], hi[a, 0] = ent_ptr[qh[a]], ent_ptr[qh[a] + 1]
        lo[a, 1], hi[a, 1] = ent_ptr[qt[a]], ent_ptr[qt[a] + 1]
        lo[a, 2], hi[a, 2] = off + rel_ptr[qr[a]], off + rel_ptr[qr[a] + 1]
    return union_of_lists(lo, hi, np.concatenate((ent_idx, rel_idx)), n_train)


@njit(cache=True, nogil=True)
def union_of_lists(lo, hi, lists, n_train):
    """CSR (ptr, idx): for each query ``a``, the sorted union of ``lists[lo[a, s]:hi[a, s]]``.

    Two passes (count, then fill) with a per-query stamp to drop duplicates;
    sorted within each query for reproducible output.
    """
    nq, n_src = lo.shape
    ptr = np.zeros(nq + 1, dtype=np.int64)
    idx = np.empty(0, dtype=np.int64)
    stamp = np.full(n_train, -1, dtype=np.int64)
    for pass_ in range(2):
        if pass_ == 1:
            idx = np.empty(ptr[nq], dtype=np.int64)
            stamp[:] = -1
        for a in range(nq):
            cnt = 0
            for src in range(n_src):
                for p in range(lo[a, src], hi[a, src]):
                    j = lists[p]
                    if stamp[j] != a:
                        stamp[j] = a
                        if pass_ == 1:
                            idx[ptr[a] + cnt] = j
                        cnt += 1
            if pass_ == 0:
                ptr[a + 1] = ptr[a] + cnt
    for a in range(nq):
        idx[ptr[a]:ptr[a + 1]] = np.sort(idx[ptr[a]:ptr[a + 1]])
    return ptr, idx


@njit(cache=True, nogil=True)
def kg_rollback_deltas(model, E, R, qh, qr, qt, ptr, idx, heads, rels, tails,
                       gamH, gamR, gamT):
    """Predicted drop ``p(t|h,r) - p_rolled(t|h,r)`` for each (query, candidate).

    The rollback of example ``j`` subtracts its recorded updates from rows
    ``h_j``, ``r_j``, ``t_j``; the full softmax over all tails is recomputed
    exactly (incrementally when only two tail scores move).
    """
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
        h = qh[a]
        r = qr[a]
        t = qt[a]
        _query(model, E, R, h, r, q)
        _tail_scores(q, E, base)
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
                # query with modified rows, computed via temporaries
                if model == DISTMULT:
                    for k in range(dE):
                        hv = Eh[k] if h == hj else (Et[k] if h == tj else E[h, k])
                        rv = Rr[k] if r == rj else R[r, k]
                        q2[k] = hv * rv
                else:
                    c = dE // 2
                    for k in range(c):
                        if h == hj:
                            hr, hi = Eh[k], Eh[c + k]
                        elif h == tj:
                            hr, hi = Et[k], Et[c + k]
                        else:
                            hr, hi = E[h, k], E[h, c + k]
                        if r == rj:
                            rr, ri = Rr[k], Rr[c + k]
                        else:
                            rr, ri = R[r, k], R[r, c + k]
                        q2[k] = hr * rr - hi * ri
                        q2[c + k] = hr * ri + hi * rr
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
def mf_candidates(qu, qi, u_ptr, u_idx, i_ptr, i_idx, n_train):
    """CSR of training examples sharing the user or the item of each query."""
    nq = qu.shape[0]
    lo = np.empty((nq, 2), dtype=np.int64)
    hi = np.empty((nq, 2), dtype=np.int64)
    off = u_idx.shape[0]  # item lists follow the user lists in `lists`
    for a in range(nq):
        lo[a, 0], hi[a, 0] = u_ptr[qu[a]], u_ptr[qu[a] + 1]
        lo[a, 1], hi[a, 1] = off + i_ptr[qi[a]], off + i_ptr[qi[a] + 1]
    return union_of_lists(lo, hi, np.concatenate((u_idx, i_idx)), n_train)


@njit(cache=True, nogil=True)
def mf_rollback_deltas(P, Q, qu, qi, ptr, idx, users, items, gamP, gamQ):
    """Predicted drop of the rating ``y_hat(u, i)`` when example ``j`` is
    rolled back (its recorded updates subtracted from rows ``u_j``, ``i_j``)."""
    d = P.shape[1]
    k_ = d - 1
    out = np.empty(idx.shape[0])
    pu = np.empty(d)
    qv = np.empty(d)
    for a in range(qu.shape[0]):
        u = qu[a]
        it = qi[a]
        base = P[u, k_] + Q[it, k_]
        for k in range(k_):
            base += P[u, k] * Q[it, k]
        for p in range(ptr[a], ptr[a + 1]):
            j = idx[p]
            for k in range(d):
                pu[k] = P[u, k] - (gamP[j, k] if users[j] == u else 0.0)
                qv[k] = Q[it, k] - (gamQ[j, k] if items[j] == it else 0.0)
            new = pu[k_] + qv[k_]
            for k in range(k_):
                new += pu[k] * qv[k]
            out[p] = base - new
    return out


@njit(cache=True, nogil=True)
def kg_rollback_deltas_dense(model, E, R, qh, qr, qt, ptr, idx, heads, rels, tails,
                             gamH, gamR, gamT, gamN):
    """As :func:`kg_rollback_deltas` but also subtracting each example's
    recorded updates to its negatives' rows (``gamN[j]``, every entity)."""
    ne, dE = E.shape
    out = np.empty(idx.shape[0])
    q = np.empty(dE)
    sc = np.empty(ne)
    E2 = np.empty_like(E)
    Rr = np.empty(R.shape[1])
    for a in range(qh.shape[0]):
        h = qh[a]
        r = qr[a]
        t = qt[a]
        _query(model, E, R, h, r, q)
        _tail_scores(q, E, sc)
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
            if model == DISTMULT:
                for k in range(dE):
                    q[k] = E2[h, k] * Rr[k]
            else:
                c = dE // 2
                for k in range(c):
                    hr = E2[h, k]
                    hi = E2[h, c + k]
                    rr = Rr[k]
                    ri = Rr[c + k]
                    q[k] = hr * rr - hi * ri
                    q[c + k] = hr * ri + hi * rr
            _tail_scores(q, E2, sc)
            out[p] = p0 - np.exp(_log_softmax_at(sc, t))
    return out


@njit(cache=True, nogil=True, inline="always")
def proba_grad(model, E, R, h, r, t, q, sc, dq, gh, GE, gr):
    """Gradient of ``p(t | h, r)`` (softmax over all entities): every entity
    row into ``GE`` (candidate roles, plus the head's role through the
    query), the relation row ``r`` into ``gr``.  ``q``, ``sc``, ``dq``, ``gh``
    are scratch."""
    ne, dE = E.shape
    _query(model, E, R, h, r, q)
    _tail_scores(q, E, sc)
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
    _query_backward(model, E, R, h, r, dq, gh, gr)
    for k in range(dE):
        GE[h, k] += gh[k]  # head role through the query


@njit(cache=True, nogil=True)
def kg_first_order_deltas(model, E, R, qh, qr, qt, ptr, idx, heads, rels, tails,
                          gamH, gamR, gamT, gamN, use_neg):
    """First-order rollback: ``grad p(t|h,r) . gamma_j`` for each (query, candidate).

    The derivative of ``p(t | h, r)`` at ``theta - eps * gamma_j`` with respect
    to ``-eps`` at ``eps = 0``: the predicted drop for an infinitesimal
    rollback of example ``j`` scaled to a full one.  Per query the gradient
    of ``p`` with respect to every entity row and the query relation's row is
    formed once (``O(n_entities * dim)``); each candidate then costs
    ``O(dim)`` (``O(n_entities * dim)`` with ``use_neg``, also crediting
    ``gamN[j]``, the example's updates to its negatives' rows).
    """
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
        h = qh[a]
        r = qr[a]
        t = qt[a]
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
