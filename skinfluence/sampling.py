"""Samplers that select training rows by their value.

:class:`ValueSampler` drops the lowest-valued fraction of the training rows, by any
valuation estimator or explainer, as a sampler step (``fit_resample``) of an
imbalanced-learn :class:`~imblearn.pipeline.Pipeline`.  A grid search can then search
the valuation method and the fraction together, scored on held-out folds that are not
resampled.
"""

import inspect
import numbers

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, check_memory

from .cleaning._containers import take_rows_like

__all__ = ["ValueSampler", "row_values"]


def row_values(valuer):
    """One value per training row of a fitted valuer; low values are dropped first.

    ``values_`` (valuation estimators), ``-scores_`` (cleaners: high suspicion) or
    ``-self_influence_`` (InfluenceFunctions, TracIn: a point the rest of the data does
    not explain).
    """
    for name, sign in (("values_", 1.0), ("scores_", -1.0), ("self_influence_", -1.0)):
        if hasattr(valuer, name):
            return sign * np.asarray(getattr(valuer, name), dtype=np.float64)
    raise TypeError(f"{type(valuer).__name__} gives no value per training row: expected "
                    "values_, scores_ or self_influence_.")


def _mask(rows, n):
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask


def _fit_values(valuer, X, y, cv=None):
    # module-level so that joblib.Memory keys its cache on the valuer's parameters and data
    if cv is None:
        return row_values(clone(valuer).fit(X, y))
    if "X_val" not in inspect.signature(valuer.fit).parameters:
        raise ValueError(
            f"cv={cv!r} cross-fits a valuer that takes a validation set (fit(X, y, X_val=, "
            f"y_val=)); {type(valuer).__name__}.fit takes none: use cv=None."
        )
    y_arr = np.asarray(y)
    classes = type_of_target(y_arr) in ("binary", "multiclass")
    splitter = check_cv(cv, y_arr, classifier=classes)
    total = np.zeros(len(y_arr))
    count = np.zeros(len(y_arr))
    for train, val in splitter.split(np.zeros((len(y_arr), 1)), y_arr):
        tr, va = _mask(train, len(y_arr)), _mask(val, len(y_arr))
        fitted = clone(valuer).fit(take_rows_like(X, tr), take_rows_like(y, tr),
                                   X_val=take_rows_like(X, va), y_val=take_rows_like(y, va))
        total[train] += row_values(fitted)
        count[train] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count  # NaN for a row never in a training part


class ValueSampler(BaseEstimator):
    """Drop the lowest-valued fraction of the training rows.

    Parameters
    ----------
    valuer : estimator
        Fitted on the rows given to :meth:`fit_resample` with ``fit(X, y)``; its values
        are read by :func:`row_values`: a valuation estimator that needs no validation
        set (e.g. :class:`~skinfluence.valuation.DataOOB`,
        :class:`~skinfluence.valuation.KNNShapley`), an
        :class:`~skinfluence.InfluenceCleaner`, or an explainer with
        ``self_influence_`` (:class:`~skinfluence.InfluenceFunctions`,
        :class:`~skinfluence.TracIn`).
    fraction : float in [0, 1), default=0.1
        Share of the rows dropped (``round(fraction * n_samples)``, lowest values first,
        ties by row index).  NaN values count as the lowest.
    memory : str, joblib.Memory or None, default=None
        Caches the values, keyed by the valuer's parameters and the data: a grid over
        ``fraction`` then values each fold once.  A string is a cache directory.
    cv : int, cross-validation generator, iterable or None, default=None
        ``None``: the valuer is fitted with ``fit(X, y)``.  Otherwise cross-fitting, for
        a valuer that measures value on a validation set (``fit(X, y, X_val=, y_val=)``,
        e.g. :class:`~skinfluence.valuation.KNNShapley`,
        :class:`~skinfluence.valuation.DataShapley`): the rows given to
        :meth:`fit_resample` (in a grid search, the fold's training part) are split by
        ``cv`` (an int: ``StratifiedKFold`` for class labels, else ``KFold``; see
        :func:`sklearn.model_selection.check_cv`), the valuer is fitted on each split's
        training rows with its held-out rows as the validation set, and a row's value
        is the mean of its values over the splits it is a training row in.  No row is
        then valued on a validation set it belongs to, and the outer held-out fold stays
        unseen.

    Attributes
    ----------
    values_ : ndarray of shape (n_samples,)
        Values of the rows of the last :meth:`fit_resample`.
    sample_indices_ : ndarray of int
        Rows kept.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.sampling import ValueSampler
    >>> from skinfluence.valuation import DataOOB
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> valuer = DataOOB(LogisticRegression(max_iter=5000), n_estimators=20, random_state=0)
    >>> X_kept, y_kept = ValueSampler(valuer, fraction=0.1).fit_resample(X, y)
    >>> X_kept.shape
    (512, 30)
    """

    _parameter_constraints = {
        "valuer": [HasMethods(["fit"])],
        "fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "memory": [None, str, HasMethods(["cache"])],
        "cv": [None, Interval(numbers.Integral, 2, None, closed="left"), "cv_object"],
    }

    def __init__(self, valuer, *, fraction=0.1, memory=None, cv=None):
        self.valuer = valuer
        self.fraction = fraction
        self.memory = memory
        self.cv = cv

    def fit(self, X, y):
        """Value the rows of ``(X, y)``; returns self."""
        self.fit_resample(X, y)
        return self

    def fit_resample(self, X, y):
        """Value the rows, then return ``(X, y)`` without the lowest-valued fraction.

        Returns
        -------
        X_kept, y_kept : same containers as X and y
            A DataFrame / Series keeps the index of the kept rows.
        """
        self._validate_params()
        values = check_memory(self.memory).cache(_fit_values)(self.valuer, X, y, self.cv)
        n = values.shape[0]
        n_drop = int(round(self.fraction * n))
        if n_drop >= n:
            raise ValueError(f"fraction={self.fraction} would drop all {n} rows.")
        key = np.where(np.isnan(values), -np.inf, values)
        dropped = np.argsort(key, kind="stable")[:n_drop]
        keep = np.ones(n, dtype=bool)
        keep[dropped] = False
        self.values_ = values
        self.sample_indices_ = np.flatnonzero(keep)
        return take_rows_like(X, keep), take_rows_like(y, keep)

    def get_mask(self):
        """Boolean mask of the rows kept by the last :meth:`fit_resample`."""
        check_is_fitted(self, "sample_indices_")
        mask = np.zeros(self.values_.shape[0], dtype=bool)
        mask[self.sample_indices_] = True
        return mask
