"""Regression targets in :class:`~skinfluence.InfluenceCleaner`: standardised residuals.

A row is suspect when its target is far from what the rest of the data predicts for it:
the leave-one-out residual ``y_i - yhat_(i)``.  For least squares (Ridge,
LinearRegression, with sample weights and several targets) the Newton step of the
objective without ``i`` is exact, so ``yhat_(i)`` is the prediction of the model refit
without row ``i`` (the PRESS residual ``e_i / (1 - h_ii)``); for GLMs and the other
supported models it is the influence engine's Newton step.

To make a threshold mean the same on every data set the residual ``u_i`` (the deviance
residual at ``yhat_(i)`` for Tweedie GLMs, whose variance grows with the mean) is
multiplied by ``sqrt(1 - h_i)`` where the leverage ``h_i`` is known (then
``Var u_i = sigma^2`` exactly for ordinary least squares: the classical mean-shift outlier
statistic), centred on its median and divided by ``1.4826 MAD``, a scale estimate that
the suspects themselves do not inflate.  Under Gaussian noise ``z`` is then close to a
standard normal; several targets combine into the normal quantile of ``sum_k z_k^2``
under a chi-square law.
"""

import warnings

import numpy as np
from scipy.special import ndtri_exp, xlogy
from scipy.stats import chi2, norm
from sklearn.utils import get_tags

from ..objectives import split_pipeline, unwrap_frozen

__all__ = [
    "DEFAULT_Z",
    "combined_scores",
    "is_regression_task",
    "robust_z",
    "signed_residuals",
    "tweedie_power",
]

# 1 / Phi^{-1}(3/4): the MAD of a Gaussian sample times this estimates its standard deviation
MAD_TO_SD = 1.482602218505602
# |z| above which 1% of the rows of clean data with Gaussian noise are flagged (two-sided)
DEFAULT_Z = float(norm.isf(0.005))
_REGRESSION_TARGETS = ("continuous", "continuous-multioutput")
_TWEEDIE = ("PoissonRegressor", "GammaRegressor", "TweedieRegressor")


def is_regression_task(estimator, y):
    """Whether ``y`` is cleaned as a regression target.

    A wrapped model that declares its type decides (a regressor cleans regression targets,
    even integer-valued ones; a classifier, labels); without a model, or with a model of
    unknown type, the target decides: continuous values are regression targets.
    """
    if estimator is not None:
        try:
            kind = get_tags(estimator).estimator_type
        except (AttributeError, TypeError):  # duck-typed model without tags
            kind = None
        if kind in ("regressor", "classifier"):
            return kind == "regressor"
    from sklearn.utils.multiclass import type_of_target

    return type_of_target(y, input_name="y") in _REGRESSION_TARGETS


def tweedie_power(estimator):
    """Tweedie power of a (Pipeline ending in a) Poisson/Gamma/Tweedie GLM, else None."""
    _, final = split_pipeline(unwrap_frozen(estimator))
    final = unwrap_frozen(final)
    if type(final).__name__ not in _TWEEDIE:
        return None
    from ..objectives.glm import _family

    return _family(final)[0]


def _unit_deviance(y, mu, p):
    """Tweedie unit deviance ``d(y, mu)`` (zero at ``mu = y``), for ``p`` not in (0, 1)."""
    if p == 1:
        return 2.0 * (xlogy(y, y / mu) - y + mu)
    if p == 2:
        return 2.0 * (np.log(mu / y) + y / mu - 1.0)
    return 2.0 * (np.maximum(y, 0.0) ** (2 - p) / ((1 - p) * (2 - p))
                  - y * mu ** (1 - p) / (1 - p) + mu ** (2 - p) / (2 - p))


def signed_residuals(Y, pred, power=None):
    """``Y - pred`` (n, K); for a Tweedie power > 0, the deviance residuals
    ``sign(y - mu) sqrt(d(y, mu))``, whose spread does not grow with the mean."""
    u = Y - pred
    if not power:
        return u
    mu = np.maximum(pred, np.finfo(np.float64).tiny)  # a mean <= 0 has no deviance
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = _unit_deviance(Y, mu, power)
    return np.sign(u) * np.sqrt(np.maximum(np.nan_to_num(d, nan=0.0, posinf=np.inf), 0.0))


def robust_z(u, leverage=None, reference=None, stacklevel=2):
    """Standardised residuals ``(v - median v) / (1.4826 MAD v)``, per column.

    Parameters
    ----------
    u : ndarray of shape (n, K)
        Signed residuals.
    leverage : ndarray of shape (n, K), default=None
        Leverages; ``v = u sqrt(1 - h)``, and ``z = 0`` where the leverage is one.
        None: ``v = u``.
    reference : ndarray of shape (n, K), default=None
        Residuals of the constant model (same kind as ``u``): a column whose MAD is below
        ``sqrt(eps)`` times their largest magnitude (a model that reproduces most targets
        to rounding) is scaled by that floor instead, with a warning.

    Returns
    -------
    z : ndarray of shape (n, K)
    scale : ndarray of shape (K,)
        The scales used.
    """
    v = u if leverage is None else u * np.sqrt(np.clip(1.0 - leverage, 0.0, None))
    center = np.median(v, axis=0)
    scale = MAD_TO_SD * np.median(np.abs(v - center), axis=0)
    ref = np.abs(v if reference is None else reference).max(axis=0)
    floor = np.sqrt(np.finfo(np.float64).eps) * ref
    low = ~(scale > floor)
    if low.any():
        warnings.warn(
            "The model reproduces more than half of the targets to rounding error: their "
            "residuals are scaled by sqrt(machine epsilon) times the spread of the targets "
            "instead of their MAD, so only rows the model does not reproduce stand out.",
            UserWarning, stacklevel=stacklevel + 1)
        scale = np.where(low, floor, scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, (v - center) / scale, 0.0)
    if leverage is not None:
        # leverage one: the refit without the row is not determined, nothing to compare
        z[leverage >= 1.0 - np.sqrt(np.finfo(np.float64).eps)] = 0.0
    return z, scale


def combined_scores(z):
    """One suspicion score per row on the ``|z|`` scale: ``|z|`` for one target; for
    ``K`` targets the ``|N(0, 1)|`` quantile of ``sum_k z_k^2`` under ``chi2(K)``, so that
    one threshold flags the same share of clean Gaussian rows whatever ``K``."""
    if z.shape[1] == 1:
        return np.abs(z[:, 0])
    s2 = np.einsum("ik,ik->i", z, z)
    return -ndtri_exp(chi2.logsf(s2, z.shape[1]) - np.log(2.0))
