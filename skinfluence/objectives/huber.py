"""HuberRegressor: the Huber loss with its jointly fitted scale.

scikit-learn minimises over the coefficients ``coef``, the intercept ``b`` and
the scale ``sigma > 0`` (Owen, 2007; ``sklearn.linear_model._huber``)

    J = sum_i s_i (sigma + H_eps(r_i / sigma) sigma) + alpha ||coef||^2,
    r_i = y_i - coef @ x_i - b,

with ``H_eps(t) = t^2`` for ``|t| <= eps`` and ``2 eps |t| - eps^2`` beyond.  The
scale is a parameter of every sample's loss, so the model has two outputs per
sample, ``z = (coef @ x + b, sigma)``, linear in the parameters
``theta = [coef, b, sigma]`` (the second output's Jacobian row picks ``sigma``).
The loss in ``z`` is

    sigma + r^2 / sigma                          for |r| <= eps sigma,
    sigma + 2 eps |r| - eps^2 sigma              beyond (an outlier),

jointly convex (a perspective function).  It is once differentiable: its
curvature ``(2 / sigma) [1, r / sigma]^T [1, r / sigma]`` inside the threshold
drops to zero beyond it.  A removal that moves another training point across
``|r| = eps sigma`` changes the Hessian the Newton step assumed:
:meth:`HuberObjective.crosses_kink` flags such removals, whose refits are then
computed exactly (:func:`skinfluence.influence._refit.refine_largest`).
"""

import numpy as np
import scipy.sparse as sp

from . import register_objective
from ._base import Objective
from ._linear import check_features
from .linear import check_regression_target


class HuberObjective(Objective):
    """Objective of a fitted :class:`~sklearn.linear_model.HuberRegressor` (module docstring)."""

    linear_in_params = True
    n_outputs = 2

    def __init__(self, estimator, X, y, weights, feature_map):
        self.estimator = estimator
        self.X = X
        self.y = y
        self.weights = np.asarray(weights, dtype=np.float64)
        self.epsilon = float(estimator.epsilon)
        self.alpha = float(estimator.alpha)
        self.fit_intercept = bool(estimator.fit_intercept)
        self.n_features = X.shape[1]
        self._feature_map = feature_map
        parts = [np.asarray(estimator.coef_, dtype=np.float64).ravel()]
        if self.fit_intercept:
            parts.append([float(estimator.intercept_)])
        parts.append([float(estimator.scale_)])
        self.theta = np.concatenate(parts)

    # ------------------------------------------------------------ layout
    def split(self, V):
        """``(coef (d, m), intercept (m,) or None, sigma (m,))`` of parameter-major ``V``."""
        d = self.n_features
        return V[:d], (V[d] if self.fit_intercept else None), V[-1]

    def penalty_diagonal(self):
        diag = np.zeros(self.n_params)
        diag[: self.n_features] = 2.0 * self.alpha
        return diag

    def penalty_value(self, theta=None):
        theta = self.theta if theta is None else theta
        coef = theta[: self.n_features]
        return self.alpha * float(coef @ coef)

    def penalty_gradient(self, theta=None):
        theta = self.theta if theta is None else theta
        return self.penalty_diagonal() * theta

    # ---------------------------------------------------------- targets
    def features(self, X):
        if self._feature_map is not None:
            X = self._feature_map(X)
        return check_features(X, self.n_features)

    def encode_target(self, y):
        return check_regression_target(y, 1)

    # ------------------------------------------------- outputs, jacobian
    def outputs(self, Xf, theta=None):
        return self.jvp(Xf, self.theta if theta is None else theta)[:, :, 0]

    def jvp(self, Xf, V, theta=None):
        V = np.asarray(V, dtype=np.float64)
        V = V[:, None] if V.ndim == 1 else V
        coef, intercept, sigma = self.split(V)
        out = np.empty((Xf.shape[0], 2, V.shape[1]))
        out[:, 0, :] = np.asarray(Xf @ coef)
        if intercept is not None:
            out[:, 0, :] += intercept
        out[:, 1, :] = sigma
        return out

    def jvp_diagonal(self, Xf, V, theta=None):
        coef, intercept, sigma = self.split(np.asarray(V, dtype=np.float64))
        out = np.empty((Xf.shape[0], 2))
        if sp.issparse(Xf):
            out[:, 0] = np.asarray(Xf.multiply(coef.T).sum(axis=1)).ravel()
        else:
            out[:, 0] = np.einsum("jd,dj->j", Xf, coef)
        if intercept is not None:
            out[:, 0] += intercept
        out[:, 1] = sigma
        return out

    def vjp(self, Xf, C, theta=None):
        C = np.asarray(C, dtype=np.float64).reshape(Xf.shape[0], 2)
        Xd = Xf.toarray() if sp.issparse(Xf) else Xf
        parts = [Xd * C[:, :1]]
        if self.fit_intercept:
            parts.append(C[:, :1])
        parts.append(C[:, 1:])
        return np.hstack(parts)

    def _sum_jT(self, U):
        """``sum_i J_i^T U[i]`` for ``U`` of shape (n, 2, m): (p, m)."""
        parts = [np.asarray(self.X.T @ U[:, 0, :])]
        if self.fit_intercept:
            parts.append(U[:, 0, :].sum(axis=0, keepdims=True))
        parts.append(U[:, 1, :].sum(axis=0, keepdims=True))
        return np.vstack(parts)

    # ------------------------------------------------------------- loss
    def _residuals(self, Z, y):
        r = np.asarray(y, dtype=np.float64) - Z[:, 0]
        sigma = Z[:, 1]
        return r, sigma, np.abs(r) > self.epsilon * sigma

    def loss_from_outputs(self, Z, y):
        r, sigma, out = self._residuals(Z, y)
        eps = self.epsilon
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = np.where(out, sigma + 2.0 * eps * np.abs(r) - eps**2 * sigma,
                            sigma + r * r / sigma)
        return np.where(sigma > 0, loss, np.inf)  # the scale is constrained to be positive

    def loss_derivatives(self, Z, y):
        r, sigma, out = self._residuals(Z, y)
        eps = self.epsilon
        n = r.shape[0]
        R, S = np.empty((n, 2)), np.zeros((n, 2, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = r / sigma
            R[:, 0] = np.where(out, -2.0 * eps * np.sign(r), -2.0 * t)
            R[:, 1] = np.where(out, 1.0 - eps**2, 1.0 - t * t)
            inner = ~out
            S[inner, 0, 0] = 2.0 / sigma[inner]
            S[inner, 0, 1] = S[inner, 1, 0] = 2.0 * t[inner] / sigma[inner]
            S[inner, 1, 1] = 2.0 * t[inner] ** 2 / sigma[inner]
        bad = ~(sigma > 0)
        R[bad], S[bad] = np.nan, np.nan
        return R, S

    def loss_change(self, Z0, y, D, out=None):
        base = self.loss_from_outputs(Z0, y)
        r = (np.asarray(y, dtype=np.float64)[:, None] - Z0[:, :1]) - D[:, 0, :]
        sigma = Z0[:, 1:] + D[:, 1, :]
        eps = self.epsilon
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = np.where(np.abs(r) > eps * sigma,
                            sigma + 2.0 * eps * np.abs(r) - eps**2 * sigma,
                            sigma + r * r / sigma)
        loss = np.where(sigma > 0, loss, np.inf)
        if out is None:
            out = np.empty(loss.shape)
        np.subtract(loss, base[:, None], out=out)
        return out

    def crosses_kink(self, Z0, y, D):
        """``(n, m)``: whether output changes ``D`` move sample ``i`` across the threshold."""
        _, _, before = self._residuals(Z0, y)
        r = (np.asarray(y, dtype=np.float64)[:, None] - Z0[:, :1]) - D[:, 0, :]
        after = np.abs(r) > self.epsilon * (Z0[:, 1:] + D[:, 1, :])
        return after != before[:, None]

    def prediction_from_outputs(self, Z):
        return Z[:, 0].copy()

    def prediction_change(self, Z0, D):
        return D[:, 0, :].copy()

    # ---------------------------------------------------------- hessian
    def hvp(self, V, theta=None, *, weights=None):
        V = np.asarray(V, dtype=np.float64)
        squeeze = V.ndim == 1
        V = V[:, None] if squeeze else V
        _, S = self.loss_derivatives(self.outputs(self.X, theta), self.y)
        WS = S * self._weights(weights)[:, None, None]
        U = np.einsum("ikl,ilm->ikm", WS, self.jvp(self.X, V))
        out = self._sum_jT(U) + self.penalty_diagonal()[:, None] * V
        return out[:, 0] if squeeze else out

    def hessian(self, theta=None, *, weights=None):
        return self.hvp(np.eye(self.n_params), theta, weights=weights)

    def hessian_diagonal(self, theta=None):
        return np.diag(self.hessian(theta)).copy()

    # -------------------------------------------------------- parameters
    def unflatten(self, theta):
        coef, intercept, sigma = self.split(np.asarray(theta, dtype=np.float64))
        out = {"coef_": coef.copy(), "scale_": float(sigma)}
        if intercept is not None:
            out["intercept_"] = float(intercept)
        return out


@register_objective("HuberRegressor")
def _build_huber(estimator, Xf, y, sample_weight, feature_map):
    y = check_regression_target(y, 1)
    X = check_features(Xf, np.shape(estimator.coef_)[0])
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}.")
    sw = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    return HuberObjective(estimator, X, y, sw, feature_map)
