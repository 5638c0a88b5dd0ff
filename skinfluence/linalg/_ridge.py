"""Exact leave-one-out errors of ridge regression for a whole grid of penalties, from one SVD."""

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils.validation import check_array, check_consistent_length

from ._ridge_kernels import pair_criteria

__all__ = ["ridge_cv_deletions", "ridge_loo_path"]

# default grid: this many penalties, log-spaced between these multiples of the mean
# eigenvalue of the centred Gram matrix (the scale of X^T X, so that the grid does not
# depend on the units of X)
_N_ALPHAS = 41
_ALPHA_RANGE = (1e-6, 1e2)


def _default_alphas(singular_values, n_features):
    scale = float(np.sum(singular_values ** 2)) / max(n_features, 1)
    if not np.isfinite(scale) or scale <= 0.0:
        scale = 1.0  # constant features: every alpha predicts the mean
    return scale * np.logspace(np.log10(_ALPHA_RANGE[0]), np.log10(_ALPHA_RANGE[1]),
                               _N_ALPHAS)


def ridge_loo_path(X, y, *, alphas=None, fit_intercept=True):
    """Exact leave-one-out errors of :class:`~sklearn.linear_model.Ridge` for many ``alpha``.

    Ridge regression is a linear smoother: its fitted values are ``H y`` with the hat
    matrix ``H = 1 1^T / n + Xc (Xc^T Xc + alpha I)^{-1} Xc^T`` (``Xc``: ``X`` centred, the
    ``1 1^T / n`` term only with an unpenalised intercept).  Removing row ``i`` and
    refitting changes its residual to ``(y_i - (H y)_i) / (1 - H_ii)`` exactly (the PRESS
    identity).  With the thin SVD ``Xc = U S V^T`` computed once, ``H`` is
    ``U diag(s^2 / (s^2 + alpha)) U^T`` (plus ``1/n``) for every ``alpha``, so each penalty
    of the grid costs ``O(n r)`` (``r = min(n, p)``) after the ``O(n p r)`` SVD: the
    leave-one-out errors of all refits, without one refit.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
    alphas : array-like of shape (n_alphas,), default=None
        Positive penalties (``Ridge``'s ``alpha``).  Default: 41 values log-spaced from
        ``1e-6`` to ``1e2`` times the mean eigenvalue of ``Xc^T Xc``.
    fit_intercept : bool, default=True
        As ``Ridge``'s: an unpenalised intercept (``X`` and ``y`` centred).

    Returns
    -------
    Bunch
        ``alphas`` (n_alphas,), ``loo_mse`` (n_alphas,): mean squared leave-one-out
        residual (averaged over targets too), ``alpha``: the penalty with the smallest
        ``loo_mse`` (the largest such penalty on ties), ``loo_residuals``: the
        leave-one-out residuals ``y_i - prediction without i`` at ``alpha``, shaped as
        ``y``; ``at_edge``: whether ``alpha`` is the smallest or largest of ``alphas``.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.linalg import ridge_loo_path
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 3))
    >>> y = X @ [1.0, 0.0, -1.0] + rng.normal(size=50)
    >>> path = ridge_loo_path(X, y, alphas=[0.1, 1.0, 10.0])
    >>> path.loo_mse.shape
    (3,)
    """
    X = check_array(X, dtype=np.float64, ensure_min_samples=3)
    y_in = np.asarray(y)
    y = check_array(y, dtype=np.float64, ensure_2d=False)
    check_consistent_length(X, y)
    if y.ndim == 1:
        y = y[:, None]
    n = X.shape[0]
    if fit_intercept:
        Xc = X - X.mean(axis=0)
        yc = y - y.mean(axis=0)
    else:
        Xc, yc = X, y
    U, s, _ = np.linalg.svd(Xc, full_matrices=False)
    if alphas is None:
        alphas = _default_alphas(s, X.shape[1])
    alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) \
            or np.any(alphas <= 0):
        raise ValueError(f"alphas must be positive finite numbers; got {alphas!r}.")
    s2 = s ** 2
    Uty = U.T @ yc  # (r, n_targets)
    U2 = U ** 2
    base = 1.0 / n if fit_intercept else 0.0
    loo_mse = np.empty(alphas.size)
    for a, alpha in enumerate(alphas):
        shrink = s2 / (s2 + alpha)
        leverage = base + U2 @ shrink
        residual = yc - U @ (shrink[:, None] * Uty)
        with np.errstate(divide="ignore", invalid="ignore"):
            loo = residual / (1.0 - leverage)[:, None]
        loo_mse[a] = np.mean(loo ** 2) if np.all(leverage < 1.0) else np.inf
    best = alphas.size - 1 - int(np.argmin(loo_mse[::-1]))  # largest alpha on ties
    alpha = float(alphas[best])
    shrink = s2 / (s2 + alpha)
    leverage = base + U2 @ shrink
    loo_residuals = (yc - U @ (shrink[:, None] * Uty)) / (1.0 - leverage)[:, None]
    if y_in.ndim == 1:
        loo_residuals = loo_residuals[:, 0]
    return Bunch(alphas=alphas, loo_mse=loo_mse, alpha=alpha, loo_residuals=loo_residuals,
                 at_edge=alphas.size > 1 and alpha in (alphas.min(), alphas.max()))



class RidgeCVDeletions(Bunch):
    """What :func:`ridge_cv_deletions` returns (a Bunch; see there)."""


def ridge_cv_deletions(X, Y, alphas, *, sample_weight=None, fit_intercept=True,
                       alpha_per_target=False, block=256):
    """``RidgeCV`` (efficient leave-one-out selection) refit without each row, exactly.

    ``RidgeCV(alphas, cv=None)`` picks the ``alpha`` whose leave-one-out squared error
    (in the ``sqrt(sample_weight)``-scaled space, averaged over rows and targets) is
    smallest, the first one on ties, and fits ridge with it.  Refit without row ``j``,
    its criterion is over the other ``n - 1`` rows, each left out *together with* ``j``:
    with ``M = I - H`` (``H`` the hat matrix of the scaled problem, intercept
    unpenalised) and residuals ``e = M y``, deleting rows ``{i, j}`` leaves ``i`` the
    residual ``(M_jj e_i - M_ij e_j) / (M_ii M_jj - M_ij^2)`` (the block form of the
    PRESS identity).  With the thin SVD ``Xc = U S V^T`` of the centred, scaled ``X``
    (one ``O(n p r)`` factorisation, ``r = min(n, p)``), every ``M`` is
    ``I - q q^T - U diag(s^2 / (s^2 + alpha)) U^T``, so the criteria of all ``n``
    deletions at one ``alpha`` cost ``O(n^2 r)`` (``n x block`` pieces of ``M`` at a
    time, the pairs summed by a numba kernel); the model at the selected ``alpha``
    without ``j`` is a rank-one downdate.

    Parameters
    ----------
    X : ndarray of shape (n, p)
    Y : ndarray of shape (n, T)
        Targets (``RidgeClassifierCV``: its +-1 columns).
    alphas : array-like of shape (n_alphas,)
        The grid, in ``RidgeCV``'s order (it decides ties).
    sample_weight : ndarray of shape (n,), default=None
    fit_intercept : bool, default=True
    alpha_per_target : bool, default=False
        Select one ``alpha`` per target (``RidgeCV(alpha_per_target=True)``).
    block : int, default=256
        Rows removed per piece of ``M`` (memory ``O(n block)``).

    Returns
    -------
    RidgeCVDeletions
        ``selected`` (n, T) int: index into ``alphas`` chosen by the refit without
        each row (the same in every column unless ``alpha_per_target``);
        ``full`` (T,) int: the selection on all rows; ``coef`` (n, T, p) and
        ``intercept`` (n, T): the refits' parameters (intercept zero without one).
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    n, p = X.shape
    T = Y.shape[1]
    alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    rsw = np.sqrt(sw)
    if fit_intercept:
        xbar = sw @ X / sw.sum()
        ybar = sw @ Y / sw.sum()
        q = rsw / np.sqrt(sw.sum())  # the unpenalised intercept direction (unit)
    else:
        xbar, ybar, q = np.zeros(p), np.zeros(T), np.zeros(n)
    Xc = rsw[:, None] * (X - xbar)
    Yc = rsw[:, None] * (Y - ybar)  # = (I - q q^T) of the scaled targets
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    s2 = s ** 2
    UtY = U.T @ Yc
    U2 = U ** 2
    A = alphas.size
    crit = np.empty((n, A, T))
    resid = np.empty((A, n, T))
    mdiag = np.empty((A, n))
    for a, alpha in enumerate(alphas):
        W = s2 / (s2 + alpha)
        e = Yc - U @ (W[:, None] * UtY)
        m = 1.0 - q ** 2 - U2 @ W
        resid[a], mdiag[a] = e, m
        UW = U * W
        for start in range(0, n, block):
            J = np.arange(start, min(start + block, n))
            MJ = -(UW[J] @ U.T) - np.outer(q[J], q)  # M[J, :]
            MJ[np.arange(J.size), J] += 1.0
            out = np.empty((J.size, T))
            pair_criteria(MJ, m, e, J, out)
            crit[J, a] = out
    crit[~np.isfinite(crit)] = np.inf
    if alpha_per_target:
        selected = np.argmin(crit, axis=1)  # (n, T): first minimum, as RidgeCV
    else:
        selected = np.repeat(np.argmin(crit.sum(axis=2), axis=1)[:, None], T, axis=1)
    # the selection on all rows: each row's own leave-one-out residual e_i / M_ii
    with np.errstate(divide="ignore", invalid="ignore"):
        full_crit = (resid / mdiag[:, :, None]) ** 2  # (A, n, T)
    full_crit[~np.isfinite(full_crit)] = np.inf
    full = (np.argmin(full_crit.sum(axis=1), axis=0) if alpha_per_target
            else np.full(T, np.argmin(full_crit.sum(axis=(1, 2)))))
    coef = np.empty((n, T, p))
    intercept = np.zeros((n, T))
    V = Vt.T
    for a in np.unique(selected):
        shrink = s / (s2 + alphas[a])  # (Xc^T Xc + alpha I)^{-1} Xc^T = V diag(shrink) U^T
        beta = V @ (shrink[:, None] * UtY)  # (p, T) on all rows
        rows, cols = np.nonzero(selected == a)
        # rank-one downdate of the augmented problem: row j leaves with its residual
        step = resid[a][rows, cols] / mdiag[a][rows]  # e_j / M_jj
        dbeta = (U[rows] * shrink) @ Vt * step[:, None]  # (m, p)
        coef[rows, cols] = beta[:, cols].T - dbeta
        if fit_intercept:
            c0 = ybar[cols] - rsw[rows] * step / sw.sum()
            intercept[rows, cols] = c0 - np.einsum("p,mp->m", xbar, coef[rows, cols])
    return RidgeCVDeletions(selected=selected, full=full, coef=coef, intercept=intercept)
