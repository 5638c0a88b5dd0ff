"""Numba kernels for multi-layer perceptrons: forward pass, per-sample backprop and
the forward pass of Pearlmutter's R-operator (Jacobian-vector products).  The
second-order products (exact Hessian and Gauss-Newton) are in :mod:`._mlp_hvp_kernels`.

Parameter layout is scikit-learn's ``_pack``: every ``coefs_[l]`` raveled in C
order (shape ``(d_l, d_{l+1})``), then every ``intercepts_[l]``.  ``sizes`` holds
the layer widths ``[d_0, d_1, ..., d_L]`` (``d_0`` features, ``d_L`` raw
outputs).  Hidden-layer quantities of all samples are stored in one flat buffer,
layer ``l`` (1 <= l < L) occupying a contiguous ``(n, d_l)`` block, so each block
can be reshaped and fed to BLAS.

Notation: ``z_l = a_{l-1} W_l + b_l`` (``a_0 = x``), ``a_l = sigma(z_l)`` for
hidden layers, and the raw output is ``z_L`` (pre-activation of the output
layer).  The loss enters only through ``delta_L = w * dloss/dz_L`` and the
curvature ``w * d2loss/dz_L^2``, supplied by the caller.
"""

import numpy as np

from .._numba import njit

ACT_IDENTITY = 0
ACT_LOGISTIC = 1
ACT_TANH = 2
ACT_RELU = 3
ACTIVATION_CODES = {
    "identity": ACT_IDENTITY,
    "logistic": ACT_LOGISTIC,
    "tanh": ACT_TANH,
    "relu": ACT_RELU,
}


@njit(cache=True)
def param_offsets(sizes):
    """Start of each coef block and each intercept block in the flat vector."""
    L = sizes.shape[0] - 1
    coef_off = np.empty(L + 1, dtype=np.int64)
    int_off = np.empty(L + 1, dtype=np.int64)
    pos = 0
    for layer in range(L):
        coef_off[layer] = pos
        pos += sizes[layer] * sizes[layer + 1]
    coef_off[L] = pos
    for layer in range(L):
        int_off[layer] = pos
        pos += sizes[layer + 1]
    int_off[L] = pos
    return coef_off, int_off


@njit(cache=True)
def hidden_offsets(sizes, n):
    """Start of each hidden layer's (n, d_l) block in the flat hidden buffer."""
    L = sizes.shape[0] - 1
    off = np.zeros(L + 1, dtype=np.int64)
    pos = 0
    for layer in range(1, L):
        off[layer] = pos
        pos += n * sizes[layer]
    off[L] = pos
    return off


@njit(cache=True)
def _coef(theta, sizes, coef_off, layer):
    a = coef_off[layer]
    b = a + sizes[layer] * sizes[layer + 1]
    return np.ascontiguousarray(theta[a:b]).reshape((sizes[layer], sizes[layer + 1]))


@njit(cache=True)
def _bias(theta, sizes, int_off, layer):
    return theta[int_off[layer] : int_off[layer] + sizes[layer + 1]]


@njit(cache=True)
def _block(buf, hoff, sizes, n, layer):
    return buf[hoff[layer] : hoff[layer] + n * sizes[layer]].reshape((n, sizes[layer]))


@njit(cache=True)
def _activate(Z, act):
    n, d = Z.shape
    for i in range(n):
        for k in range(d):
            z = Z[i, k]
            if act == 1:
                # logistic, overflow-safe on both sides
                if z >= 0:
                    Z[i, k] = 1.0 / (1.0 + np.exp(-z))
                else:
                    e = np.exp(z)
                    Z[i, k] = e / (1.0 + e)
            elif act == 2:
                Z[i, k] = np.tanh(z)
            elif act == 3:
                Z[i, k] = z if z > 0.0 else 0.0


@njit(cache=True)
def _derivs(A, act, D1, D2):
    """First and second derivative of the activation as functions of its output ``A``.

    ReLU follows scikit-learn: derivative 0 where the output is 0 (so at z = 0 too).
    """
    n, d = A.shape
    for i in range(n):
        for k in range(d):
            a = A[i, k]
            if act == 0:
                D1[i, k] = 1.0
                D2[i, k] = 0.0
            elif act == 1:
                s = a * (1.0 - a)
                D1[i, k] = s
                D2[i, k] = s * (1.0 - 2.0 * a)
            elif act == 2:
                s = 1.0 - a * a
                D1[i, k] = s
                D2[i, k] = -2.0 * a * s
            else:
                D1[i, k] = 1.0 if a > 0.0 else 0.0
                D2[i, k] = 0.0


@njit(cache=True)
def forward(X, theta, sizes, act):
    """Forward pass.

    Returns
    -------
    Z : (n, d_L) raw outputs.
    A, D1, D2 : flat hidden buffers with activations, sigma' and sigma''.
    """
    n = X.shape[0]
    L = sizes.shape[0] - 1
    coef_off, int_off = param_offsets(sizes)
    hoff = hidden_offsets(sizes, n)
    A = np.empty(hoff[L])
    D1 = np.empty(hoff[L])
    D2 = np.empty(hoff[L])
    prev = np.ascontiguousarray(X)
    Z = np.empty((n, sizes[L]))
    for layer in range(L):
        W = _coef(theta, sizes, coef_off, layer)
        b = _bias(theta, sizes, int_off, layer)
        z = np.dot(prev, W)
        for i in range(n):
            z[i, :] += b
        if layer < L - 1:
            _activate(z, act)
            Ab = _block(A, hoff, sizes, n, layer + 1)
            Ab[:, :] = z
            _derivs(Ab, act, _block(D1, hoff, sizes, n, layer + 1), _block(D2, hoff, sizes, n, layer + 1))
            prev = z
        else:
            Z[:, :] = z
    return Z, A, D1, D2


@njit(cache=True)
def backward_deltas(theta, sizes, D1, delta_out):
    """Back-propagated deltas of every layer for output deltas ``delta_out`` (n, d_L).

    Returns the flat hidden buffer of deltas (layers 1..L-1); the output delta is
    ``delta_out`` itself.
    """
    n = delta_out.shape[0]
    L = sizes.shape[0] - 1
    coef_off, int_off = param_offsets(sizes)
    hoff = hidden_offsets(sizes, n)
    Dl = np.empty(hoff[L])
    delta = np.ascontiguousarray(delta_out)
    for layer in range(L - 1, 0, -1):
        W = _coef(theta, sizes, coef_off, layer)
        back = np.dot(delta, W.T) * _block(D1, hoff, sizes, n, layer)
        _block(Dl, hoff, sizes, n, layer)[:, :] = back
        delta = back
    return Dl


@njit(cache=True)
def _layer_delta(Dl, delta_out, hoff, sizes, n, layer):
    L = sizes.shape[0] - 1
    if layer == L:
        return delta_out
    return _block(Dl, hoff, sizes, n, layer)


@njit(cache=True)
def _layer_input(X, A, hoff, sizes, n, layer):
    """Input ``a_{layer}`` of weight layer ``layer`` (0-based), i.e. X or a hidden activation."""
    if layer == 0:
        return X
    return _block(A, hoff, sizes, n, layer)


@njit(cache=True)
def per_sample_gradients(X, theta, sizes, A, D1, C):
    """Rows ``J_i^T c_i`` (n, p): per-sample backprop of output cotangents ``C`` (n, d_L)."""
    n = X.shape[0]
    L = sizes.shape[0] - 1
    coef_off, int_off = param_offsets(sizes)
    hoff = hidden_offsets(sizes, n)
    C = np.ascontiguousarray(C)
    Dl = backward_deltas(theta, sizes, D1, C)
    G = np.zeros((n, int_off[L]))
    for layer in range(L):
        a_in = _layer_input(X, A, hoff, sizes, n, layer)
        delta = _layer_delta(Dl, C, hoff, sizes, n, layer + 1)
        d_in = sizes[layer]
        d_out = sizes[layer + 1]
        c0 = coef_off[layer]
        i0 = int_off[layer]
        for i in range(n):
            for u in range(d_in):
                au = a_in[i, u]
                if au != 0.0:
                    base = c0 + u * d_out
                    for v in range(d_out):
                        G[i, base + v] = au * delta[i, v]
            for v in range(d_out):
                G[i, i0 + v] = delta[i, v]
    return G


@njit(cache=True)
def summed_gradient(X, theta, sizes, A, D1, C):
    """``sum_i J_i^T c_i`` (p,) computed with matrix products."""
    n = X.shape[0]
    L = sizes.shape[0] - 1
    coef_off, int_off = param_offsets(sizes)
    hoff = hidden_offsets(sizes, n)
    C = np.ascontiguousarray(C)
    Dl = backward_deltas(theta, sizes, D1, C)
    g = np.zeros(int_off[L])
    for layer in range(L):
        a_in = np.ascontiguousarray(_layer_input(X, A, hoff, sizes, n, layer))
        delta = _layer_delta(Dl, C, hoff, sizes, n, layer + 1)
        gw = np.dot(a_in.T, delta)
        g[coef_off[layer] : coef_off[layer + 1]] = gw.ravel()
        gb = g[int_off[layer] : int_off[layer] + sizes[layer + 1]]
        for i in range(n):
            gb += delta[i]
    return g


@njit(cache=True)
def _r_forward(X, theta, sizes, A, D1, v, RZh):
    """R-operator forward pass: fills hidden ``R{z_l}`` into ``RZh``; returns ``R{z_L}`` = J v."""
    n = X.shape[0]
    L = sizes.shape[0] - 1
    coef_off, int_off = param_offsets(sizes)
    hoff = hidden_offsets(sizes, n)
    v = np.ascontiguousarray(v)
    Ra = np.zeros((1, 1))
    rz = np.zeros((1, 1))
    for layer in range(L):
        a_in = _layer_input(X, A, hoff, sizes, n, layer)
        dW = _coef(v, sizes, coef_off, layer)
        db = _bias(v, sizes, int_off, layer)
        rz = np.dot(np.ascontiguousarray(a_in), dW)
        if layer > 0:
            W = _coef(theta, sizes, coef_off, layer)
            rz += np.dot(Ra, W)
        for i in range(n):
            rz[i, :] += db
        if layer < L - 1:
            _block(RZh, hoff, sizes, n, layer + 1)[:, :] = rz
            Ra = rz * _block(D1, hoff, sizes, n, layer + 1)
    return rz


@njit(cache=True)
def jvp_columns(X, theta, sizes, A, D1, V):
    """``J_i V`` for all samples: (n, d_L, m)."""
    n = X.shape[0]
    L = sizes.shape[0] - 1
    hoff = hidden_offsets(sizes, n)
    m = V.shape[1]
    out = np.empty((n, sizes[L], m))
    RZh = np.empty(hoff[L])
    for j in range(m):
        out[:, :, j] = _r_forward(X, theta, sizes, A, D1, V[:, j], RZh)
    return out


@njit(cache=True)
def weighted_gram(G, w):
    """``G^T diag(w) G`` for a (n, p) matrix of per-sample rows."""
    Gw = G * np.sqrt(w).reshape((-1, 1))
    return np.dot(Gw.T, Gw)


@njit(cache=True)
def _r_forward_block(X, theta, sizes, A, D1, V, RZh):
    """R-forward pass for m directions at once.

    ``V`` is (p, m).  All R-quantities use the layout (n, d, m) -- directions
    innermost -- so that ``a_{l-1} dW`` for every direction is one GEMM with
    ``V``'s own memory and the parameter-major result needs no transposes.
    Fills ``RZh`` (hidden ``R{z_l}``, layer l a (n, d_l, m) block at offset
    ``m * hoff[l]``) and returns ``R{z_L}`` of shape (n, d_L, m).
    """
    n = X.shape[0]
    m = V.shape[1]
    L = sizes.shape[0] - 1
    coef_off, int_off = param_offsets(sizes)
    hoff = hidden_offsets(sizes, n)
    Ra = np.zeros((1, 1, 1))
    rz = np.zeros((n, sizes[L], m))
    for layer in range(L):
        d_in = sizes[layer]
        d_out = sizes[layer + 1]
        a_in = np.ascontiguousarray(_layer_input(X, A, hoff, sizes, n, layer))
        # rows (u, o) of V are contiguous: (d_in, d_out * m)
        dW = V[coef_off[layer] : coef_off[layer + 1]].reshape((d_in, d_out * m))
        rz = np.dot(a_in, dW).reshape((n, d_out, m))
        db = V[int_off[layer] : int_off[layer] + d_out]
        if layer > 0:
            # (Ra W)[i, o, j] = sum_u W[u, o] Ra[i, u, j]: one GEMM per sample
            WT = np.ascontiguousarray(_coef(theta, sizes, coef_off, layer).T)
            tmp = np.empty((d_out, m))
            for i in range(n):
                np.dot(WT, Ra[i], tmp)
                for o in range(d_out):
                    for j in range(m):
                        rz[i, o, j] += tmp[o, j]
        for i in range(n):
            for o in range(d_out):
                for j in range(m):
                    rz[i, o, j] += db[o, j]
        if layer < L - 1:
            RZh[m * hoff[layer + 1] : m * (hoff[layer + 1] + n * d_out)] = rz.ravel()
            D1b = _block(D1, hoff, sizes, n, layer + 1)
            Ra = np.empty((n, d_out, m))
            for i in range(n):
                for o in range(d_out):
                    g = D1b[i, o]
                    for j in range(m):
                        Ra[i, o, j] = rz[i, o, j] * g
    return rz


@njit(cache=True)
def jvp_block(X, theta, sizes, A, D1, V):
    """``J_i V`` for all samples, (n, d_L, m), from one batched R-forward pass."""
    n = X.shape[0]
    m = V.shape[1]
    L = sizes.shape[0] - 1
    hoff = hidden_offsets(sizes, n)
    RZh = np.empty(m * hoff[L])
    return _r_forward_block(X, theta, sizes, A, D1, np.ascontiguousarray(V), RZh)
