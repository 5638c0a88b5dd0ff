"""The output losses of scikit-learn's multi-layer perceptrons, on raw outputs.

``kind`` is :attr:`skinfluence.objectives.mlp.MLPObjective.kind`: softmax
cross-entropy (``"multiclass"``), logistic loss per output unit (``"binary"``,
``"multilabel"``), half squared error summed over outputs (``"squared_error"``)
or the half Poisson deviance with an ``exp`` output (``"poisson"``).  ``Z`` is
the ``(n, K)`` pre-activation of the output layer.
"""

import numpy as np
from scipy.special import xlogy


def sigmoid(z):
    """The logistic function, without overflow for large ``|z|``."""
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    e = np.exp(z[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def softplus(z):
    return np.logaddexp(0.0, z)


def target_matrix(kind, y, n, n_outputs):
    """Targets as an (n, K) float matrix matching the output units."""
    if kind == "multiclass":
        T = np.zeros((n, n_outputs))
        T[np.arange(n), np.asarray(y, dtype=np.intp)] = 1.0
        return T
    y = np.asarray(y, dtype=np.float64)
    return y.reshape(n, n_outputs)


def loss(kind, Z, y, n_outputs):
    """Unweighted per-sample loss, shape ``(n,)``."""
    Z = np.asarray(Z, dtype=np.float64)
    n = Z.shape[0]
    if kind == "multiclass":
        y = np.asarray(y, dtype=np.intp)
        zmax = Z.max(axis=1)
        lse = zmax + np.log(np.exp(Z - zmax[:, None]).sum(axis=1))
        return lse - Z[np.arange(n), y]
    T = target_matrix(kind, y, n, n_outputs)
    if kind in ("binary", "multilabel"):
        return (softplus(Z) - T * Z).sum(axis=1)
    if kind == "squared_error":
        return 0.5 * ((Z - T) ** 2).sum(axis=1)
    # half Poisson deviance as scikit-learn writes it (with its constant term)
    return (np.exp(Z) - T * Z + xlogy(T, T) - T).sum(axis=1)


def loss_derivatives(kind, Z, y, n_outputs):
    """First ``(n, K)`` and second ``(n, K, K)`` derivative of the loss in ``Z``."""
    Z = np.asarray(Z, dtype=np.float64)
    n, K = Z.shape
    S = np.zeros((n, K, K))
    diag = np.arange(K)
    if kind == "multiclass":
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        T = target_matrix(kind, y, n, n_outputs)
        S[:] = -P[:, :, None] * P[:, None, :]
        S[:, diag, diag] += P
        return P - T, S
    T = target_matrix(kind, y, n, n_outputs)
    if kind in ("binary", "multilabel"):
        P = sigmoid(Z)
        S[:, diag, diag] = P * (1.0 - P)
        return P - T, S
    if kind == "squared_error":
        S[:, diag, diag] = 1.0
        return Z - T, S
    E = np.exp(Z)
    S[:, diag, diag] = E
    return E - T, S


def proba(kind, Z):
    """Probabilities as ``predict_proba`` computes them from raw outputs (classifiers)."""
    Z = np.asarray(Z, dtype=np.float64)
    if kind == "multiclass":
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        return P / P.sum(axis=1, keepdims=True)
    if kind == "binary":
        p = sigmoid(Z[:, 0])
        return np.column_stack([1.0 - p, p])
    if kind == "multilabel":
        return sigmoid(Z)
    raise AttributeError("proba_from_outputs is only defined for classifiers.")
