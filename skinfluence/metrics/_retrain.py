"""The retraining engine under every faithfulness metric.

:class:`Retrainer` fits clones of one estimator on subsets of one training set and
evaluates a function of each refitted model.  Every metric of
:mod:`skinfluence.metrics` goes through it, so with the same ``memory`` and the same
seeded subsets, every method is scored against the same retrained models, computed once.
"""

import copy
import numbers

import joblib
import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_memory

from ..utils._routing import fit_weighted

__all__ = ["Retrainer", "random_subsets", "take"]


def take(data, rows):
    """Rows ``rows`` of an array, sparse matrix, DataFrame or list."""
    if data is None:
        return None
    if hasattr(data, "iloc"):
        return data.iloc[rows]
    if isinstance(data, list):
        return [data[i] for i in rows]
    return data[rows]


def random_subsets(n_train, fraction, n_subsets, random_state):
    """Boolean masks ``(n_subsets, n_train)`` of the training points *removed*.

    Each mask removes ``round(fraction * n_train)`` points drawn uniformly without
    replacement; the draws depend only on ``random_state`` (an int gives the same
    subsets on every call, hence the same cached retrains).
    """
    n_removed = int(round(fraction * n_train))
    if not 1 <= n_removed < n_train:
        raise ValueError(
            f"fraction={fraction} removes {n_removed} of {n_train} training points; "
            "it must remove at least one and keep at least one."
        )
    rng = check_random_state(random_state)
    masks = np.zeros((n_subsets, n_train), dtype=bool)
    for s in range(n_subsets):
        masks[s, rng.permutation(n_train)[:n_removed]] = True
    return masks


def _final_step(estimator):
    return estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator


def _adds_members(estimator):
    """Whether ``warm_start`` of ``estimator`` *adds* members to a fitted ensemble (forests,
    boosting) instead of starting an optimiser from the previous solution: refitted with
    the same size, such an ensemble keeps its old members, fitted on other data."""
    return type(estimator).__module__.startswith("sklearn.ensemble")


def _warm_startable(estimator):
    final = _final_step(estimator)
    return "warm_start" in final.get_params() and not _adds_members(final)


def _with_warm_start(estimator, init):
    """A clone of ``estimator`` whose final step starts from ``init``'s fitted final step."""
    est = clone(estimator)
    start = copy.deepcopy(_final_step(init))
    start.set_params(warm_start=True)
    if isinstance(est, Pipeline):
        est.steps[-1] = (est.steps[-1][0], start)
        return est
    return start


def _fit_subset(estimator, data_key, keep, warm, X, y, sample_weight, init):
    """``estimator`` refitted on the rows ``keep``: the cached unit of work.

    The cache key is (``estimator``'s parameters, ``data_key``, ``keep``, ``warm``);
    the data and the warm-start model are left out of it (``data_key`` fingerprints
    the data, and the warm start is determined by the estimator and the data).
    """
    Xs, ys, ws = take(X, keep), take(y, keep), take(sample_weight, keep)
    if warm and init is not None:
        try:
            return fit_weighted(_with_warm_start(estimator, init), Xs, ys, ws,
                                final_step=True)
        except ValueError:  # e.g. a class missing from the subset: shapes differ
            pass
    return fit_weighted(clone(estimator), Xs, ys, ws, final_step=True)


def _evaluate(fit, args, func):
    model = fit(*args)
    return func(model)


class Retrainer:
    """Fits clones of ``estimator`` on subsets of ``(X, y)`` and evaluates each refit.

    Parameters
    ----------
    estimator : estimator
        The model to retrain (unfitted; a :class:`~sklearn.frozen.FrozenEstimator` is
        replaced by a clone of the model it wraps, since retraining is the point).
    X, y : array-like
        The training set the subsets index (``y=None`` for models fitted on ``X``
        alone, such as the knowledge-graph models on triples).
    sample_weight : array-like of shape (n_train,), default=None
        Weights of the training points; a subset keeps the weights of its rows (a
        Pipeline's final step receives them).
    warm_start : {"auto", True, False}, default="auto"
        Start each refit from the model fitted on all the data, where the (final)
        estimator has a ``warm_start`` parameter (``"auto"`` and ``True``) that starts
        its optimiser there; never for scikit-learn's ensembles, whose ``warm_start``
        adds trees to the old ones (``True`` raises for them).  For a
        convex objective the refit reaches the same optimum in fewer iterations; for a
        neural network it is the local minimum near the fitted one, which is what
        influence methods approximate.
    memory : str, joblib.Memory or None, default=None
        Cache of the refitted models, keyed by the subset, the estimator's parameters,
        the warm start and a fingerprint of the data: a second metric (or a second
        method) on the same subsets loads them instead of refitting.  A string is a
        cache directory.
    n_jobs : int, default=None
        Refits run in parallel through :class:`joblib.Parallel`, so any joblib backend
        (``parallel_config(backend="dask")``) applies unchanged.

    Notes
    -----
    Retrains are reproducible when the estimator is (an integer ``random_state`` for
    stochastic fits): the cache assumes that the same subset gives the same model.

    Attributes
    ----------
    n_fits_ : int
        Refits actually run (cache misses), the full-data model included.
    n_train : int
    """

    def __init__(self, estimator, X, y, sample_weight=None, *, warm_start="auto", memory=None,
                 n_jobs=None):
        if isinstance(estimator, FrozenEstimator):
            estimator = clone(estimator.estimator)
        if warm_start not in ("auto", True, False):
            raise ValueError(f"warm_start must be 'auto', True or False; got {warm_start!r}.")
        self.estimator = clone(estimator)
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.n_train = _n_rows(X)
        if y is not None and _n_rows(y) != self.n_train:
            raise ValueError(f"X has {self.n_train} rows but y has {_n_rows(y)}.")
        if sample_weight is not None and _n_rows(sample_weight) != self.n_train:
            raise ValueError("sample_weight must have one entry per training row.")
        if warm_start is True and _adds_members(_final_step(self.estimator)):
            raise ValueError(
                f"warm_start=True cannot retrain {type(_final_step(self.estimator)).__name__}"
                ": its warm start adds trees to the fitted ensemble and keeps the old ones "
                "(fitted on all the data); use warm_start='auto' or False (a fresh fit)."
            )
        self.warm = warm_start is not False and _warm_startable(self.estimator)
        self.memory = check_memory(memory)
        self.n_jobs = n_jobs
        self.data_key = joblib.hash((X, y, sample_weight))
        self._fit = self.memory.cache(_fit_subset, ignore=["X", "y", "sample_weight", "init"])
        self.n_fits_ = 0
        self._full = None

    def _args(self, keep, warm, init):
        return (self.estimator, self.data_key, keep, warm, self.X, self.y, self.sample_weight,
                init)

    def _is_cached(self, args):
        check = getattr(self._fit, "check_call_in_cache", None)
        return check is not None and check(*args)

    def full_model(self):
        """The model fitted on all the training rows (fitted, or loaded, once)."""
        if self._full is None:
            args = self._args(np.arange(self.n_train), False, None)
            self.n_fits_ += not self._is_cached(args)
            self._full = self._fit(*args)
        return self._full

    def map(self, removed, func):
        """``func(model)`` for the model refitted without each set of rows in ``removed``.

        Parameters
        ----------
        removed : iterable of index arrays or boolean masks
            The training rows removed in each refit.
        func : callable
            Evaluated on each refitted model (in the worker that fits or loads it).

        Returns
        -------
        list
            ``func``'s results, in the order of ``removed``.
        """
        init = self.full_model() if self.warm else None
        jobs = []
        for rows in removed:
            keep = np.setdiff1d(np.arange(self.n_train), _as_indices(rows, self.n_train))
            if keep.size == 0:
                raise ValueError("A subset removes every training point: nothing to refit.")
            args = self._args(keep, self.warm, init)
            self.n_fits_ += not self._is_cached(args)
            jobs.append(args)
        return Parallel(n_jobs=self.n_jobs)(
            delayed(_evaluate)(self._fit, args, func) for args in jobs
        )


def _n_rows(data):
    return data.shape[0] if hasattr(data, "shape") else len(data)


def _as_indices(rows, n):
    rows = np.asarray(rows)
    if rows.dtype == bool:
        if rows.shape != (n,):
            raise ValueError(f"A boolean subset mask must have shape ({n},); got {rows.shape}.")
        return np.flatnonzero(rows)
    if rows.size and (not np.issubdtype(rows.dtype, np.integer) or rows.min() < 0
                      or rows.max() >= n):
        raise ValueError(f"Subset indices must be integers in [0, {n}).")
    return np.unique(rows.astype(np.intp))


def check_fraction(fraction, name="fraction"):
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not (
            0 < fraction < 1):
        raise ValueError(f"{name} must be a float in (0, 1); got {fraction!r}.")
    return float(fraction)
