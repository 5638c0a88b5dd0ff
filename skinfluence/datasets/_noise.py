"""Label-noise injection for cleaning experiments."""

import numbers

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["make_noisy_labels"]


def make_noisy_labels(y, rate, random_state=None):
    """Flip a fraction of labels to a different, uniformly chosen class.

    Exactly ``round(rate * n_samples)`` samples, chosen uniformly without
    replacement, get a label drawn uniformly from the *other* classes present
    in ``y`` (symmetric, class-independent noise as in the confident-learning
    and influence-function papers).  Every flipped label is therefore wrong.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Clean labels: integers, strings or any hashable, comparable values;
        a :class:`pandas.Series` is accepted and returned as one (same index
        and name).
    rate : float in [0, 1]
        Fraction of samples whose label is flipped.
    random_state : int, RandomState instance or None, default=None
        Controls which samples are flipped and to which class.

    Returns
    -------
    y_noisy : ndarray or pandas.Series of shape (n_samples,)
        Noisy labels with the same dtype and set of classes as ``y``.
    flipped : ndarray of shape (n_samples,), dtype=bool
        True where the label was changed.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.datasets import make_noisy_labels
    >>> y = np.array(["cat", "dog", "bird"] * 10)
    >>> y_noisy, flipped = make_noisy_labels(y, 0.2, random_state=0)
    >>> int(flipped.sum())
    6
    >>> bool(np.all(y_noisy[flipped] != y[flipped]))
    True
    """
    series = None
    if hasattr(y, "iloc") and hasattr(y, "index") and getattr(y, "ndim", 1) == 1:
        series = y
        values = y.to_numpy()
    else:
        values = np.asarray(y)
    if values.ndim != 1:
        raise ValueError(f"y must be one-dimensional; got an array of shape {values.shape}.")
    if not isinstance(rate, numbers.Real) or isinstance(rate, bool) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be a float in [0, 1]; got {rate!r}.")
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise ValueError("y contains NaN; labels must be defined for every sample.")
    classes, codes = np.unique(values, return_inverse=True)
    if classes.shape[0] < 2:
        raise ValueError(
            f"y must contain at least two classes to flip labels; got {classes.shape[0]}."
        )
    rng = check_random_state(random_state)
    n = values.shape[0]
    n_flip = int(round(rate * n))
    flipped = np.zeros(n, dtype=bool)
    idx = rng.choice(n, size=n_flip, replace=False)
    flipped[idx] = True
    # shift by 1..K-1 modulo K: uniform over the other classes, never the original
    shift = rng.randint(1, classes.shape[0], size=n_flip)
    new_codes = codes.copy()
    new_codes[idx] = (codes[idx] + shift) % classes.shape[0]
    noisy = values.copy()
    noisy[idx] = classes[new_codes[idx]]
    if series is not None:
        noisy = series.__class__(noisy, index=series.index, name=series.name, dtype=series.dtype)
    return noisy, flipped
