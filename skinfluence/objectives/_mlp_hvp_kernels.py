"""Numba kernels of the second-order products of multi-layer perceptrons.

Pearlmutter's R-operator backward pass on top of the forward pass, backprop and
R-forward pass of :mod:`._mlp_kernels` (same parameter layout and notation):
exact Hessian-vector products of the data term, Gauss-Newton products, and each
sample's own loss Hessian times its own direction.
"""

import numpy as np

from .._numba import njit
from ._mlp_kernels import (
    _block,
    _coef,
    _layer_delta,
    _layer_input,
    _r_forward,
    _r_forward_block,
    backward_deltas,
    forward,
    hidden_offsets,
    param_offsets,
)


@njit(cache=True)
def hvp_columns(X, theta, sizes, A, D1, D2, delta_out, Sw, V, gauss_newton):
    """Data-term Hessian (or Gauss-Newton matrix) times each column of ``V`` (p, m).

    ``delta_out`` = ``w_i * dloss/dz`` (n, d_L) and ``Sw`` = ``w_i * d2loss/dz2``
    (n, d_L, d_L).  Pearlmutter's R-operator: forward R-pass for ``R{z}``, then
    the R-backward pass differentiating backprop along ``V``.  With
    ``gauss_newton`` the terms involving the back-propagated residuals are
    dropped, leaving ``sum_i J_i^T S_i J_i v``.
    """
    n = X.shape[0]
    L = sizes.shape[0] - 1
    K = sizes[L]
    coef_off, int_off = param_offsets(sizes)
    hoff = hidden_offsets(sizes, n)
    p = int_off[L]
    m = V.shape[1]
    delta_out = np.ascontiguousarray(delta_out)
    Dl = backward_deltas(theta, sizes, D1, delta_out)
    RZh = np.empty(hoff[L])
    out = np.zeros((p, m))
    for j in range(m):
        v = np.ascontiguousarray(V[:, j])
        rzL = _r_forward(X, theta, sizes, A, D1, v, RZh)
        # R{delta_L} = S_i R{z_L}
        rdelta = np.zeros((n, K))
        for i in range(n):
            for a in range(K):
                s = 0.0
                for b in range(K):
                    s += Sw[i, a, b] * rzL[i, b]
                rdelta[i, a] = s
        for layer in range(L - 1, -1, -1):
            a_in = np.ascontiguousarray(_layer_input(X, A, hoff, sizes, n, layer))
            hw = np.dot(a_in.T, rdelta)
            delta = _layer_delta(Dl, delta_out, hoff, sizes, n, layer + 1)
            if layer > 0 and not gauss_newton:
                # R{a_{l}} = sigma'(z_l) R{z_l}
                Ra = _block(RZh, hoff, sizes, n, layer) * _block(D1, hoff, sizes, n, layer)
                hw += np.dot(Ra.T, delta)
            out[coef_off[layer] : coef_off[layer + 1], j] = hw.ravel()
            for i in range(n):
                for c in range(sizes[layer + 1]):
                    out[int_off[layer] + c, j] += rdelta[i, c]
            if layer > 0:
                W = _coef(theta, sizes, coef_off, layer)
                back = np.dot(rdelta, W.T)
                d1 = _block(D1, hoff, sizes, n, layer)
                if gauss_newton:
                    rdelta = back * d1
                else:
                    dW = _coef(v, sizes, coef_off, layer)
                    back += np.dot(delta, dW.T)
                    # derivative of sigma'(z_l) along v: sigma''(z_l) R{z_l}
                    pre = np.dot(delta, W.T)
                    rdelta = back * d1 + pre * _block(D2, hoff, sizes, n, layer) * _block(
                        RZh, hoff, sizes, n, layer
                    )
    return out


@njit(cache=True)
def hvp_block(X, theta, sizes, A, D1, D2, delta_out, Sw, V, gauss_newton):
    """Batched version of :func:`hvp_columns`: all m directions go through each layer
    together (layout (n, d, m)), so the heavy products are large GEMMs."""
    n = X.shape[0]
    m = V.shape[1]
    L = sizes.shape[0] - 1
    coef_off, int_off = param_offsets(sizes)
    hoff = hidden_offsets(sizes, n)
    p = int_off[L]
    V = np.ascontiguousarray(V)
    delta_out = np.ascontiguousarray(delta_out)
    Dl = backward_deltas(theta, sizes, D1, delta_out)
    RZh = np.empty(m * hoff[L])
    rzL = _r_forward_block(X, theta, sizes, A, D1, V, RZh)
    out = np.zeros((p, m))
    # R{delta_L} = S_i R{z_L}
    rdelta = np.empty_like(rzL)
    K = rzL.shape[1]
    for i in range(n):
        for a in range(K):
            for j in range(m):
                rdelta[i, a, j] = 0.0
            for b in range(K):
                s = Sw[i, a, b]
                if s != 0.0:
                    for j in range(m):
                        rdelta[i, a, j] += s * rzL[i, b, j]
    for layer in range(L - 1, -1, -1):
        d_in = sizes[layer]
        d_out = sizes[layer + 1]
        c0 = coef_off[layer]
        a_in = np.ascontiguousarray(_layer_input(X, A, hoff, sizes, n, layer))
        delta = _layer_delta(Dl, delta_out, hoff, sizes, n, layer + 1)
        # a_in^T R{delta}: rows (u, o), columns j -- already parameter-major
        out[c0 : c0 + d_in * d_out] = np.dot(a_in.T, rdelta.reshape((n, d_out * m))).reshape(
            (d_in * d_out, m)
        )
        if layer > 0 and not gauss_newton:
            # R{a_l}^T delta with R{a_l} = sigma'(z_l) R{z_l}
            D1b = _block(D1, hoff, sizes, n, layer)
            rz_h = RZh[m * hoff[layer] : m * (hoff[layer] + n * d_in)].reshape((n, d_in, m))
            Ra = np.empty((n, d_in, m))
            for i in range(n):
                for u in range(d_in):
                    g = D1b[i, u]
                    for j in range(m):
                        Ra[i, u, j] = rz_h[i, u, j] * g
            t = np.dot(Ra.reshape((n, d_in * m)).T, delta).reshape((d_in, m, d_out))
            for u in range(d_in):
                for o in range(d_out):
                    row = c0 + u * d_out + o
                    for j in range(m):
                        out[row, j] += t[u, j, o]
        i0 = int_off[layer]
        for i in range(n):
            for o in range(d_out):
                for j in range(m):
                    out[i0 + o, j] += rdelta[i, o, j]
        if layer > 0:
            W = np.ascontiguousarray(_coef(theta, sizes, coef_off, layer))
            D1b = _block(D1, hoff, sizes, n, layer)
            new = np.empty((n, d_in, m))
            for i in range(n):
                np.dot(W, rdelta[i], new[i])
            if gauss_newton:
                for i in range(n):
                    for u in range(d_in):
                        g = D1b[i, u]
                        for j in range(m):
                            new[i, u, j] *= g
            else:
                # delta dW^T as one GEMM: M[o, (u, j)] = dW[u, o, j]
                Vb = V[c0 : c0 + d_in * d_out].reshape((d_in, d_out, m))
                M = np.empty((d_out, d_in, m))
                for u in range(d_in):
                    for o in range(d_out):
                        for j in range(m):
                            M[o, u, j] = Vb[u, o, j]
                t2 = np.dot(delta, M.reshape((d_out, d_in * m))).reshape((n, d_in, m))
                pre = np.dot(delta, W.T)
                D2b = _block(D2, hoff, sizes, n, layer)
                rz_h = RZh[m * hoff[layer] : m * (hoff[layer] + n * d_in)].reshape((n, d_in, m))
                for i in range(n):
                    for u in range(d_in):
                        c = pre[i, u] * D2b[i, u]
                        d1 = D1b[i, u]
                        for j in range(m):
                            new[i, u, j] = (new[i, u, j] + t2[i, u, j]) * d1 + c * rz_h[i, u, j]
            rdelta = new
    return out


@njit(cache=True)
def hvp_diagonal(X, theta, sizes, act, delta_out, Sw, V):
    """Per-sample products ``H_i v_i`` (p, n): sample ``i``'s own loss Hessian times
    column ``i`` of ``V`` (``delta_out``, ``Sw`` as in :func:`hvp_columns`).

    Each sample is one R-operator pass of its own, so the cost is that of a single
    Hessian-vector product over the training set.
    """
    n = X.shape[0]
    p = V.shape[0]
    out = np.empty((p, n))
    for i in range(n):
        Xi = np.ascontiguousarray(X[i : i + 1])
        _, A, D1, D2 = forward(Xi, theta, sizes, act)
        col = hvp_block(
            Xi, theta, sizes, A, D1, D2, np.ascontiguousarray(delta_out[i : i + 1]),
            np.ascontiguousarray(Sw[i : i + 1]), np.ascontiguousarray(V[:, i : i + 1]), False,
        )
        for k in range(p):
            out[k, i] = col[k, 0]
    return out
