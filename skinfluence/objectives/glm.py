"""PoissonRegressor, GammaRegressor and TweedieRegressor (L2-penalised GLMs).

scikit-learn minimises (``sklearn/linear_model/_glm/glm.py``)

    1/(2 sum(s)) sum_i s_i deviance(y_i, mu_i) + alpha/2 ||coef||^2

with ``mu = h(z)`` for the linear predictor ``z = x @ coef + intercept``, the
intercept unpenalised and ``s`` the ``sample_weight``.  Here the per-sample
loss is the half unit deviance (``sklearn._loss``'s ``HalfTweedieLoss`` plus
the constant making it zero at ``mu = y``), the weights are
``s_i / sum(s)`` and the penalty is ``alpha``.  The output is the linear
predictor; :meth:`GLMObjective.prediction_from_outputs` returns ``mu``.
Because of the normalisation by ``sum(s)``, a refit without point ``j``
rescales the other weights by ``sum(s) / (sum(s) - s_j)``
(:meth:`GLMObjective.removal_reweighting`).

Links: log for Poisson and Gamma; for Tweedie, ``link="auto"`` is the
identity when ``power <= 0`` and the log otherwise.  Half deviance for the
Tweedie power ``p`` (``p = 0`` normal, 1 Poisson, 2 Gamma)::

    p not in {1, 2}: max(y, 0)^(2-p) / ((1-p)(2-p)) - y mu^(1-p) / (1-p) + mu^(2-p) / (2-p)
    p = 1:           y log(y / mu) - y + mu
    p = 2:           log(mu / y) + y / mu - 1

The objective is convex for the log link with ``1 <= p <= 2`` and the
identity link with ``p = 0``; otherwise the Hessian computed here is the exact
(possibly indefinite) one.
"""

import math
import warnings

import numpy as np
from numba import prange
from sklearn.utils.validation import check_array


from .._numba import njit, parallel_above
from . import register_objective
from .linear import RemovalReweighting, _check_xy, linear_parameters
from ._linear import LinearObjective


@njit(cache=True, nogil=True)
def _half_deviance(p, log_link, y, z):
    """``(loss, dloss/dz, d2loss/dz2)`` of the half Tweedie deviance at linear predictor z."""
    if log_link:
        mu = math.exp(z)
        if p == 1.0:
            c = y * math.log(y) - y if y > 0.0 else 0.0
            return c - y * z + mu, mu - y, mu
        if p == 2.0:
            a = y * math.exp(-z)  # y / mu
            return z - math.log(y) + a - 1.0, 1.0 - a, a
        m1 = math.exp((1.0 - p) * z)  # mu^(1-p)
        m2 = mu * m1  # mu^(2-p)
        c = max(y, 0.0) ** (2.0 - p) / ((1.0 - p) * (2.0 - p))
        loss = c - y * m1 / (1.0 - p) + m2 / (2.0 - p)
        return loss, m2 - y * m1, (2.0 - p) * m2 - (1.0 - p) * y * m1
    mu = z
    if p == 0.0:
        r = mu - y
        return 0.5 * r * r, r, 1.0
    if mu <= 0.0:  # outside the identity link's domain for p > 0
        return np.nan, np.nan, np.nan
    if p == 1.0:
        c = y * math.log(y / mu) if y > 0.0 else 0.0
        return c - y + mu, 1.0 - y / mu, y / (mu * mu)
    if p == 2.0:
        return math.log(mu / y) + y / mu - 1.0, 1.0 / mu - y / (mu * mu), (
            -1.0 / (mu * mu) + 2.0 * y / (mu * mu * mu)
        )
    m1 = mu ** (1.0 - p)
    m2 = mu * m1
    c = max(y, 0.0) ** (2.0 - p) / ((1.0 - p) * (2.0 - p))
    loss = c - y * m1 / (1.0 - p) + m2 / (2.0 - p)
    mp = m1 / mu  # mu^(-p)
    return loss, m1 - y * mp, (1.0 - p) * mp + p * y * mp / mu


@njit(cache=True, nogil=True)
def glm_derivatives(p, log_link, y, z, loss, r, s):
    for i in range(z.shape[0]):
        loss[i], r[i], s[i] = _half_deviance(p, log_link, y[i], z[i])


@parallel_above()
@njit(cache=True, nogil=True, parallel=True)
def glm_loss_change(p, log_link, y, z0, D, out):
    """``out[i, j] = loss(z_i + D[i, j]) - loss(z_i)``."""
    n, m = D.shape
    for i in prange(n):
        base = _half_deviance(p, log_link, y[i], z0[i])[0]
        for j in range(m):
            out[i, j] = _half_deviance(p, log_link, y[i], z0[i] + D[i, j])[0] - base
    return out


def _family(estimator):
    """``(power, log_link)`` of a fitted GLM."""
    name = type(estimator).__name__
    if name == "PoissonRegressor":
        return 1.0, True
    if name == "GammaRegressor":
        return 2.0, True
    power = float(estimator.power)
    link = estimator.link
    if link == "auto":
        link = "identity" if power <= 0 else "log"
    return power, link == "log"


class GLMObjective(LinearObjective):
    """Objective of a fitted Poisson / Gamma / Tweedie regressor (see the module docstring)."""

    def __init__(self, estimator, X, y, sample_weight, feature_map):
        self.power, self.log_link = _family(estimator)
        y = self._check_target(y, type(estimator).__name__)
        X = _check_xy(estimator, X, y)
        sw = np.ones(X.shape[0]) if sample_weight is None else sample_weight
        coef, intercept = linear_parameters(estimator)
        super().__init__(
            estimator, X, y, sw / sw.sum(), coef, intercept, float(estimator.alpha), 0.0,
            feature_map,
        )
        # weights are s_i / S (S = 1 after normalising): removing j rescales the rest
        # by S / (S - s_j)
        self._reweighting = RemovalReweighting(
            (1.0 / (1.0 - self.weights))[:, None], sample_parts=np.zeros(self.n_train)
        )
        if not self.log_link and self.power > 0:
            Z = self.outputs(self.X)
            if np.any(Z <= 0):
                raise ValueError(
                    "The fitted identity-link GLM predicts mu <= 0 on training samples, "
                    f"where the Tweedie deviance with power={self.power} is undefined."
                )

    def _check_target(self, y, name="y"):
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"y must have shape (n_samples,), got {y.shape}.")
        p = self.power
        if p >= 2 and np.any(y <= 0):
            raise ValueError(
                f"y must be strictly positive for a GLM with Tweedie power {p} "
                "(e.g. GammaRegressor); got values <= 0."
            )
        if 0 < p < 2 and np.any(y < 0):
            raise ValueError(
                f"y must be non-negative for a GLM with Tweedie power {p} "
                "(e.g. PoissonRegressor); got negative values."
            )
        return y

    def encode_target(self, y):
        return self._check_target(y)

    def removal_reweighting(self):
        """Weights are ``s_i / S``: removing ``j`` rescales the others by ``S / (S - s_j)``."""
        return self._reweighting.gradient_terms(self)

    def removal_weights(self, j):
        """Weights of the objective refit without point ``j`` (renormalised to sum 1)."""
        return self._reweighting.weights_without(self, j)

    def _derivatives(self, Z, y):
        z = np.ascontiguousarray(np.asarray(Z, dtype=np.float64)[:, 0])
        y = np.ascontiguousarray(y, dtype=np.float64)
        n = z.shape[0]
        loss, r, s = np.empty(n), np.empty(n), np.empty(n)
        glm_derivatives(self.power, self.log_link, y, z, loss, r, s)
        if np.isnan(loss).any():
            warnings.warn(
                "Some outputs give mu <= 0 under the identity link, where the deviance is "
                "undefined; their losses and derivatives are NaN.",
                RuntimeWarning,
                stacklevel=3,
            )
        return loss, r, s

    def loss_from_outputs(self, Z, y):
        return self._derivatives(Z, y)[0]

    def loss_derivatives(self, Z, y):
        _, r, s = self._derivatives(Z, y)
        return r[:, None], s[:, None, None]

    def loss_change(self, Z0, y, D, out=None):
        z0 = np.ascontiguousarray(np.asarray(Z0, dtype=np.float64)[:, 0])
        D = np.ascontiguousarray(np.asarray(D, dtype=np.float64)[:, 0, :])
        if out is None:
            out = np.empty(D.shape)
        return glm_loss_change(
            self.power, self.log_link, np.ascontiguousarray(y, dtype=np.float64), z0, D, out
        )

    def prediction_from_outputs(self, Z):
        """The predicted mean ``mu`` (the inverse link of the linear predictor)."""
        z = np.asarray(Z, dtype=np.float64)[:, 0]
        return np.exp(z) if self.log_link else z.copy()


@register_objective("PoissonRegressor", "GammaRegressor", "TweedieRegressor")
def _build(estimator, Xf, y, sample_weight, feature_map):
    return GLMObjective(estimator, Xf, y, sample_weight, feature_map)
