"""Koh & Liang's "fraction of flips found vs fraction of data checked" curve."""

import numpy as np

__all__ = ["cleaning_curve"]


def cleaning_curve(is_noisy, scores, *, n_points=None):
    """Fraction of mislabelled points found when checking training points by decreasing score.

    The protocol of Koh & Liang (ICML 2017, Fig. 6): a human inspects the
    training points in the order a method ranks them; after checking a
    fraction ``f`` of the training set, the curve gives the fraction of all
    flipped labels found so far.  A perfect ranking reaches 1 at
    ``f = noise rate``; a random one follows the diagonal.

    Parameters
    ----------
    is_noisy : array-like of shape (n_samples,), dtype=bool
        True for the points whose label is wrong (e.g. the mask returned by
        :func:`skinfluence.datasets.make_noisy_labels`).
    scores : array-like of shape (n_samples,)
        Higher = checked earlier (e.g. ``InfluenceCleaner.scores_``).  Ties
        are broken by index so the curve is deterministic.
    n_points : int, default=None
        Return the curve subsampled at this many evenly spaced fractions
        (plus both end points); ``None`` returns every step.

    Returns
    -------
    fraction_checked : ndarray
        From 0 to 1.
    fraction_found : ndarray
        Same shape; 0 at the start and 1 at the end.
    auc : float
        Area under the curve (1 is impossible unless all labels are wrong;
        0.5 is random order).

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.cleaning import cleaning_curve
    >>> is_noisy = np.array([False, True, False, True])
    >>> checked, found, auc = cleaning_curve(is_noisy, [0.1, 0.9, 0.2, 0.8])
    >>> found.tolist()
    [0.0, 0.5, 1.0, 1.0, 1.0]
    """
    is_noisy = np.asarray(is_noisy)
    scores = np.asarray(scores, dtype=np.float64)
    if is_noisy.ndim != 1 or scores.shape != is_noisy.shape:
        raise ValueError(
            f"is_noisy and scores must be 1-D of equal length; got {is_noisy.shape} and "
            f"{scores.shape}."
        )
    if is_noisy.dtype != bool:
        if not np.isin(is_noisy, [0, 1]).all():
            raise ValueError("is_noisy must be a boolean mask.")
        is_noisy = is_noisy.astype(bool)
    if np.isnan(scores).any():
        raise ValueError("scores contains NaN.")
    n = scores.shape[0]
    n_noisy = int(is_noisy.sum())
    if n == 0 or n_noisy == 0:
        raise ValueError("is_noisy must contain at least one True (a flipped label).")
    order = np.argsort(-scores, kind="stable")
    found = np.concatenate([[0], np.cumsum(is_noisy[order])]) / n_noisy
    checked = np.arange(n + 1) / n
    auc = float(np.trapezoid(found, checked)) if hasattr(np, "trapezoid") else float(
        np.trapz(found, checked)
    )
    if n_points is not None and n_points < n + 1:
        idx = np.unique(np.round(np.linspace(0, n, int(n_points))).astype(int))
        checked, found = checked[idx], found[idx]
    return checked, found, auc
