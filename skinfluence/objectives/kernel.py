"""Kernel models: KernelRidge and GaussianProcessRegressor (posterior mean).

Both predict ``f(x) = k(x, X) a + m`` with dual coefficients ``a`` (one column
per target) and, for a Gaussian process with ``normalize_y=True``, the mean
``m`` of the training targets.  Written with per-sample weights ``w_i``, the dual
coefficients minimise

    J(a) = sum_i w_i ||y_i - m - f(x_i)||^2 + sum_t a_t^T K a_t,

whose solution is ``a = (K + diag(1 / w))^{-1} (y - m)``:

* ``KernelRidge``: ``w_i = s_i / alpha`` (``s`` the ``sample_weight``);
  scikit-learn minimises ``sum_i s_i (y_i - f_i)^2 + alpha ||f||^2_H``;
* ``GaussianProcessRegressor``: ``w_i = 1 / noise_i``, the noise ``alpha_i`` added to
  the kernel's diagonal plus that of a ``WhiteKernel`` term (part of ``k(X)`` in
  the fit, not of ``k(x, X)`` in predictions), with the fitted kernel ``kernel_``
  held fixed; ``m`` and the
  dual coefficients are in the units of ``y`` (``normalize_y`` divides by the
  targets' standard deviation, which cancels in the mean prediction).

The objective is an adapter for the influence engine: its "features" are kernel
rows ``k(x, X)`` (so :attr:`X` is the training kernel matrix), its parameters
the dual coefficients followed by ``m`` when it is fitted, and the loss
``(y - f)^2`` per target.  Its removal is exact in closed form
(:mod:`skinfluence.influence._kernel`), not a Newton step: the model refit
without point ``j`` has dual coefficients ``(K_{-j} + diag(1/w_{-j}))^{-1}`` times
its targets, and for a Gaussian process ``m`` becomes the mean without ``j``.
Re-optimising the kernel's hyperparameters in that refit is not modelled here; it is
``InfluenceFunctions(hyperparameters="reselect")`` (:mod:`skinfluence.influence._reselect`).
"""

import numpy as np
from sklearn.utils.validation import check_array

from . import register_objective
from ._base import Objective
from .linear import (
    LOSS_CODES,
    check_regression_target,
    elementwise_derivatives,
    elementwise_loss_change,
    unsupported,
)

_LEAST_SQUARES = LOSS_CODES["least_squares"]


class KernelRows:
    """Features -> kernel rows ``k(x, X_train)`` of a fitted kernel model (picklable)."""

    def __init__(self, estimator):
        self.estimator = estimator

    def __call__(self, Xf):
        est = self.estimator
        if hasattr(est, "X_fit_"):  # KernelRidge (a precomputed kernel is its own rows)
            return np.asarray(est._get_kernel(Xf, est.X_fit_), dtype=np.float64)
        return np.asarray(est.kernel_(Xf, est.X_train_), dtype=np.float64)


class KernelObjective(Objective):
    """Dual objective of a fitted kernel ridge / Gaussian process model (module docstring).

    Parameters
    ----------
    estimator : fitted KernelRidge or GaussianProcessRegressor
    K : ndarray of shape (n, n)
        Training kernel matrix (the training "features").
    y : ndarray of shape (n,) or (n, T)
        Training targets.
    weights : ndarray of shape (n,)
        ``w_i``; the noise on the kernel's diagonal is ``1 / w_i``.
    dual : ndarray of shape (n, T)
        Dual coefficients in the units of ``y``.
    mean : ndarray of shape (T,) or None
        The fitted mean of the targets (``normalize_y``), else None (zero).
    kernel_rows : callable
        Validated features -> kernel rows ``(m, n)``.
    feature_map : callable
        Raw X -> validated features (pipeline preprocessing).
    """

    linear_in_params = True
    closed_form_removal = True

    def __init__(self, estimator, K, y, weights, dual, mean, kernel_rows, feature_map):
        self.estimator = estimator
        self.X = K
        self.y = y
        self.weights = np.asarray(weights, dtype=np.float64)
        dual = np.asarray(dual, dtype=np.float64).reshape(K.shape[0], -1)
        self.n_outputs = dual.shape[1]
        self.fit_mean = mean is not None
        parts = [dual.T.ravel()] + ([np.asarray(mean, dtype=np.float64).ravel()]
                                    if self.fit_mean else [])
        self.theta = np.concatenate(parts)
        self._kernel_rows = kernel_rows
        self._feature_map = feature_map

    # ------------------------------------------------------------ layout
    def split(self, V):
        """``(dual (T, n, m), mean (T, m) or None)`` blocks of parameter-major ``V``."""
        V = np.asarray(V, dtype=np.float64)
        V = V[:, None] if V.ndim == 1 else V
        n, T = self.n_train, self.n_outputs
        return V[: T * n].reshape(T, n, -1), (V[T * n:] if self.fit_mean else None)

    def targets(self, y=None):
        """Targets as an ``(n, T)`` array."""
        y = self.y if y is None else y
        return np.asarray(y, dtype=np.float64).reshape(-1, self.n_outputs)

    # ---------------------------------------------------------- targets
    def features(self, X):
        Xf = self._feature_map(X)
        rows = self._kernel_rows(Xf)
        if rows.ndim != 2 or rows.shape[1] != self.n_train:
            raise ValueError(
                f"X gives kernel rows of shape {rows.shape}; expected (n_samples, "
                f"{self.n_train})."
            )
        return rows

    def encode_target(self, y):
        return check_regression_target(y, self.n_outputs)

    # ------------------------------------------------- outputs, jacobian
    def outputs(self, Xf, theta=None):
        return self.jvp(Xf, self.theta if theta is None else theta)[:, :, 0]

    def jvp(self, Xf, V, theta=None):
        dual, mean = self.split(V)
        out = np.einsum("in,tnm->itm", Xf, dual) if self.n_outputs > 1 else (
            (Xf @ dual[0])[:, None, :])
        if mean is not None:
            out += mean[None, :, :]
        return out

    def jvp_diagonal(self, Xf, V, theta=None):
        dual, mean = self.split(V)
        out = np.einsum("jn,tnj->jt", Xf, dual)
        if mean is not None:
            out += mean.T
        return out

    def vjp(self, Xf, C, theta=None):
        C = np.asarray(C, dtype=np.float64).reshape(Xf.shape[0], self.n_outputs)
        parts = [Xf * C[:, t : t + 1] for t in range(self.n_outputs)]
        if self.fit_mean:
            parts.append(C)
        return np.hstack(parts)

    # ------------------------------------------------------------- loss
    def _derivatives(self, Z, y):
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        n, T = Z.shape
        loss, R, S = np.empty(n), np.empty((n, T)), np.zeros((n, T, T))
        elementwise_derivatives(_LEAST_SQUARES, 0.0, self.targets(y), np.ones((n, T)), Z,
                                loss, R, S)
        return loss, R, S

    def loss_from_outputs(self, Z, y):
        return self._derivatives(Z, y)[0]

    def loss_derivatives(self, Z, y):
        return self._derivatives(Z, y)[1:]

    def loss_change(self, Z0, y, D, out=None):
        Z0 = np.ascontiguousarray(Z0, dtype=np.float64)
        if out is None:
            out = np.empty((Z0.shape[0], D.shape[2]))
        return elementwise_loss_change(_LEAST_SQUARES, 0.0, self.targets(y),
                                       np.ones_like(Z0), Z0,
                                       np.ascontiguousarray(D, dtype=np.float64), out)

    def prediction_from_outputs(self, Z):
        """The prediction; the mean over targets for a multi-target model."""
        return Z[:, 0].copy() if self.n_outputs == 1 else Z.mean(axis=1)

    def prediction_change(self, Z0, D):
        return D[:, 0, :].copy() if self.n_outputs == 1 else D.mean(axis=1)

    # ---------------------------------------------------------- hessian
    def penalty_value(self, theta=None):
        dual, _ = self.split(self.theta if theta is None else theta)
        return float(sum(a[:, 0] @ self.X @ a[:, 0] for a in dual))

    def penalty_gradient(self, theta=None):
        dual, mean = self.split(self.theta if theta is None else theta)
        parts = [2.0 * (self.X @ a[:, 0]) for a in dual]
        if mean is not None:
            parts.append(np.zeros(self.n_outputs))
        return np.concatenate(parts)

    def hvp(self, V, theta=None, *, weights=None):
        V = np.asarray(V, dtype=np.float64)
        squeeze = V.ndim == 1
        V = V[:, None] if squeeze else V
        w = self._weights(weights)
        JV = self.jvp(self.X, V)  # (n, T, m)
        out = 2.0 * self.vjp_T_block(w[:, None, None] * JV)
        dual, _ = self.split(V)
        n, T = self.n_train, self.n_outputs
        for t in range(T):
            out[t * n : (t + 1) * n] += 2.0 * (self.X @ dual[t])
        return out[:, 0] if squeeze else out

    def vjp_T_block(self, U):
        """``sum_i J_i^T U[i]`` for ``U`` of shape (n, T, m): (p, m)."""
        parts = [self.X.T @ U[:, t, :] for t in range(self.n_outputs)]
        if self.fit_mean:
            parts.append(U.sum(axis=0))
        return np.vstack(parts)

    def hessian(self, theta=None, *, weights=None):
        """Hessian of ``J`` in the dual coefficients and ``m`` (the loss is quadratic)."""
        return self.hvp(np.eye(self.n_params), weights=weights)

    # -------------------------------------------------------- parameters
    def unflatten(self, theta):
        dual, mean = self.split(theta)
        dual = dual[:, :, 0].T  # (n, T)
        est = self.estimator
        if hasattr(est, "dual_coef_"):
            return {"dual_coef_": dual.reshape(np.shape(est.dual_coef_))}
        std = np.asarray(est._y_train_std, dtype=np.float64)
        out = {"alpha_": (dual / std).reshape(np.shape(est.alpha_))}
        if mean is not None:
            out["_y_train_mean"] = mean[:, 0].reshape(np.shape(est._y_train_mean))
        return out


def _check_training(estimator, Xf, n_fit):
    if Xf.shape[0] != n_fit:
        raise ValueError(
            f"X has {Xf.shape[0]} samples but the fitted {type(estimator).__name__} was "
            f"fitted on {n_fit}: pass the data it was fitted on."
        )


@register_objective("KernelRidge")
def _build_kernel_ridge(estimator, Xf, y, sample_weight, feature_map):
    alpha = np.ravel(np.asarray(estimator.alpha, dtype=np.float64))
    if np.unique(alpha).size > 1:
        raise unsupported(estimator, "one alpha per target", "a scalar alpha")
    if alpha[0] <= 0:
        raise unsupported(estimator, "alpha <= 0 (an interpolating fit)", "alpha > 0")
    n_fit = np.shape(estimator.dual_coef_)[0]
    if estimator.kernel == "precomputed":
        Xf = check_array(Xf, dtype=np.float64, input_name="X")
    _check_training(estimator, Xf, n_fit)
    dual = np.asarray(estimator.dual_coef_, dtype=np.float64).reshape(n_fit, -1)
    y = check_regression_target(y, dual.shape[1])
    sw = np.ones(n_fit) if sample_weight is None else np.asarray(sample_weight, float)
    if np.any(sw < 0):
        raise ValueError("KernelRidge influence needs non-negative sample weights.")
    rows = KernelRows(estimator)
    K = rows(Xf)
    return KernelObjective(estimator, K, y, sw / alpha[0], dual, None, rows, feature_map)


@register_objective("GaussianProcessRegressor")
def _build_gaussian_process(estimator, Xf, y, sample_weight, feature_map):
    if sample_weight is not None:
        raise ValueError("GaussianProcessRegressor does not take sample_weight.")
    n_fit = estimator.X_train_.shape[0]
    _check_training(estimator, Xf, n_fit)
    T = 1 if np.ndim(estimator.y_train_) == 1 else np.shape(estimator.y_train_)[1]
    y = check_regression_target(y, T)
    noise = np.broadcast_to(np.asarray(estimator.alpha, dtype=np.float64), (n_fit,))
    rows = KernelRows(estimator)
    K = rows(Xf)
    # a WhiteKernel adds its noise to k(X) (the fit) but not to k(X, X_train) (predictions)
    white = estimator.kernel_(Xf) - K
    if np.abs(white - np.diag(np.diag(white))).max() > 1e-12 * max(np.abs(K).max(), 1.0):
        raise unsupported(estimator, "a kernel whose k(X) and k(X, X) differ off the diagonal",
                          "kernels whose noise terms are diagonal (e.g. WhiteKernel)")
    noise = noise + np.diag(white)
    if np.any(noise <= 0):
        raise unsupported(estimator, "no noise (alpha and any WhiteKernel are zero): an "
                          "interpolating fit", "alpha > 0 or a WhiteKernel")
    std = np.asarray(estimator._y_train_std, dtype=np.float64).reshape(-1)
    dual = np.asarray(estimator.alpha_, dtype=np.float64).reshape(n_fit, -1) * std
    mean = None
    if estimator.normalize_y:
        mean = np.asarray(estimator._y_train_mean, dtype=np.float64).reshape(-1)
    return KernelObjective(estimator, K, y, 1.0 / noise, dual, mean, rows, feature_map)
