"""Row-wise optimizer steps shared by the training loops and the trajectory replay.

Only the rows a batch touched are updated: plain SGD, or lazy Adam with a
step count per row.  The hyper-parameters travel as one :data:`Hyper` tuple.
"""

from collections import namedtuple

import numpy as np

from .._numba import njit

SGD = 0
ADAM = 1

#: Training hyper-parameters of the numba loops (a namedtuple, typed by numba):
#: ``batch_size``, ``n_negatives`` (knowledge graphs; ``-1``: full softmax),
#: ``learning_rate``, ``learning_rate_decay`` (epoch ``e`` uses ``learning_rate *
#: learning_rate_decay ** e``), ``alpha`` (L2), ``optimizer`` (:data:`SGD` or
#: :data:`ADAM`), ``beta1``, ``beta2``, ``epsilon`` and ``max_norm`` (``0``: none).
Hyper = namedtuple("Hyper", ["batch_size", "n_negatives", "learning_rate",
                             "learning_rate_decay", "alpha", "optimizer", "beta1", "beta2",
                             "epsilon", "max_norm"])

#: Lazy Adam state of one parameter matrix: first and second moments ``m``, ``v``
#: (same shape) and the per-row step counts ``t``.
RowState = namedtuple("RowState", ["m", "v", "t"])


def hyper_of(est, n_negatives=-1, max_norm=None):
    """The :data:`Hyper` tuple of an estimator's parameters."""
    return Hyper(int(est.batch_size), int(n_negatives), float(est.learning_rate),
                 float(est.learning_rate_decay), float(est.alpha),
                 ADAM if est.optimizer == "adam" else SGD, float(est.beta1),
                 float(est.beta2), float(est.epsilon),
                 float(max_norm) if max_norm is not None else 0.0)


def zero_state(P):
    """Fresh :data:`RowState` for parameter matrix ``P``."""
    return RowState(np.zeros_like(P), np.zeros_like(P), np.zeros(P.shape[0], dtype=np.int64))


@njit(cache=True, nogil=True, inline="always")
def apply_rows(P, G, st, rows, n_rows, hp, lr, max_norm, record, Dinv):
    """Optimizer step (``hp``, learning rate ``lr``) on the touched ``rows[:n_rows]`` of ``P``
    with gradient ``G`` (zeroed on those rows) and Adam state ``st``; rows are projected
    to ``max_norm`` if positive.  With ``record`` under Adam also stores ``lr /
    (sqrt(v_hat) + eps)`` of the step in ``Dinv`` for crediting."""
    M, V, T = st.m, st.v, st.t
    opt, b1, b2, eps = hp.optimizer, hp.beta1, hp.beta2, hp.epsilon
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
def adam_moments(G, st, rows, n_rows, hp, lr, Dinv):
    """First half of :func:`apply_rows` under Adam: moments and step sizes
    ``Dinv`` of the touched rows, parameters not yet moved."""
    M, V, T = st.m, st.v, st.t
    b1, b2, eps = hp.beta1, hp.beta2, hp.epsilon
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
def adam_params(P, G, st, rows, n_rows, b1, Dinv):
    """Second half: ``P -= step * m_hat`` (bit-identical to :func:`apply_rows`)."""
    M, T = st.m, st.t
    d = P.shape[1]
    for j in range(n_rows):
        row = rows[j]
        c1 = 1.0 - b1 ** T[row]
        for k in range(d):
            P[row, k] -= Dinv[row, k] * (M[row, k] / c1)
            G[row, k] = 0.0
