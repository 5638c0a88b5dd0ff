"""Data-OOB: values from the out-of-bag performance of a bagged ensemble (Kwon & Zou, 2023)."""

import numbers
import warnings

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _num_samples

from ..utils._deprecation import positional_deprecated
from ..utils._routing import fit_weighted
from ._base import BaseValuation, check_train, spawn_seeds, take_rows
from ._fast_logistic import fast_logistic_spec, lr_bag_decisions


def _bag_task(estimator, X, y, sample_weight, seeds, n_draw, classifier):
    """Fit one model per seed on a bootstrap sample; return OOB masks and per-point OOB scores."""
    n = _num_samples(X)
    masks, scores = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=n_draw)
        counts = np.bincount(idx, minlength=n)
        oob = counts == 0
        if not oob.any():
            continue
        yb = y[idx]
        if classifier and np.unique(yb).size == 1:
            pred = np.full(int(oob.sum()), yb[0])  # single-class bag: constant predictor
        else:
            model = clone(estimator)
            sw = None if sample_weight is None else sample_weight[idx]
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*converge.*")
                fit_weighted(model, take_rows(X, idx), yb, sw)
            pred = model.predict(take_rows(X, oob))
        if classifier:
            s = (pred == y[oob]).astype(np.float64)
        else:
            s = -((np.asarray(pred, dtype=np.float64) - y[oob]) ** 2)
        masks.append(oob)
        scores.append(s)
    return masks, scores


class DataOOB(BaseValuation):
    """Data-OOB values: each point's average out-of-bag score in a bagged ensemble.

    ``n_estimators`` models are fitted on bootstrap samples; the value of a
    point is the mean, over the models that did not see it, of the
    correctness of their prediction for it (classifiers) or minus its squared
    error (regressors).  Needs no validation set and only ``n_estimators``
    fits; low values flag points the rest of the data contradicts, e.g.
    mislabelled ones.

    Parameters
    ----------
    estimator : estimator
        Base model of the bag (any scikit-learn estimator).  A fitted bagged forest
        (``RandomForest*`` / ``ExtraTrees*`` with ``bootstrap=True``) wrapped in
        :class:`~sklearn.frozen.FrozenEstimator` is its own bag: its trees and their
        bootstrap samples are used as they are (``n_estimators`` and ``max_samples``
        are then ignored; pass the data it was fitted on).
    n_estimators : int, default=200
        Number of bootstrap models.
    max_samples : float, default=1.0
        Bootstrap size as a fraction of the training set.
    fast_utility : bool, default=True
        For binary L2 ``LogisticRegression``, fit each bag as a weighted
        Newton solve of the same objective in numba (a bootstrap sample is the
        training set weighted by its draw counts) instead of a ``fit`` call.
    random_state : int, RandomState or None, default=None
    n_jobs : int, default=None
        Parallel fits through joblib (any backend, e.g. dask).
    verbose : int, default=0

    Attributes
    ----------
    values_ : ndarray of shape (n_train,)
        Mean out-of-bag score of each point (``nan`` if a point was never out of bag).
    stderr_ : ndarray of shape (n_train,)
        Standard error of that mean.
    n_oob_ : ndarray of shape (n_train,)
        Number of models for which the point was out of bag.
    fast_utility_ : bool
        Whether the Newton fast path fitted the bags.
    estimator_ : estimator
        The base estimator fitted on all points (``predict``/``score`` delegate to it).

    References
    ----------
    Y. Kwon and J. Zou, "Data-OOB: Out-of-bag estimate as a simple and
    efficient data value", ICML 2023.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.valuation import DataOOB
    >>> X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    >>> oob = DataOOB(LogisticRegression(), n_estimators=50, random_state=0).fit(X, y)
    >>> oob.values_.shape
    (60,)
    """

    _parameter_constraints = {
        "estimator": [object],
        "n_estimators": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_samples": [Interval(numbers.Real, 0, 1, closed="right")],
        "fast_utility": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": [None, numbers.Integral],
        "verbose": ["verbose"],
    }

    @positional_deprecated("n_estimators")
    def __init__(self, estimator, *, n_estimators=200, max_samples=1.0, fast_utility=True,
                 random_state=None, n_jobs=None, verbose=0):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.fast_utility = fast_utility
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self._wrapped_tags() is None:
            # duck-typed model without sklearn tags: pass sparse input on, let it decide
            tags.input_tags.sparse = True
        return tags

    def fit(self, X, y, *, X_val=None, y_val=None, sample_weight=None):
        """Fit the bag and compute the out-of-bag value of every training point.

        Parameters
        ----------
        X : array-like of shape (n_train, n_features)
        y : array-like of shape (n_train,)
        X_val, y_val : None
            Not used: Data-OOB scores points out of bag.  Passing them raises.
        sample_weight : array-like of shape (n_train,), default=None
            Passed to the base estimator's ``fit`` on each bootstrap sample.

        Returns
        -------
        self
        """
        self._validate_params()
        if X_val is not None or y_val is not None:
            raise ValueError("DataOOB values points by their out-of-bag scores and uses no "
                             "validation set; do not pass X_val/y_val.")
        classifier = is_classifier(self.estimator)
        sparse = self.__sklearn_tags__().input_tags.sparse
        # regressors: object-dtype numeric targets become float (squared errors need numbers)
        X, y, sample_weight = check_train(self, X, y, sample_weight,
                                          accept_sparse="csr" if sparse else False,
                                          y_numeric=not classifier)
        if classifier:
            check_classification_targets(y)
        from ..trees._oob import bagged_forest, oob_scores

        if isinstance(self.estimator, FrozenEstimator) and bagged_forest(self.estimator):
            # a fitted bagged forest: its own trees are the bag (no refit)
            self.fast_utility_ = False
            return self._finish(X, y, sample_weight, *oob_scores(self.estimator, X, y,
                                                                 classifier))
        n = _num_samples(X)
        n_draw = max(1, int(round(self.max_samples * n)))
        seeds = spawn_seeds(self.random_state, self.n_estimators)
        code = None
        if self.fast_utility:
            code = fast_logistic_spec(self.estimator, None, X, y, sample_weight)
        self.fast_utility_ = code is not None
        if code is not None:
            return self._fit_fast(X, y, sample_weight, seeds, n_draw)
        tasks = ((self.estimator, X, y, sample_weight, [seeds[i] for i in c], n_draw, classifier)
                 for c in self._task_chunks(self.n_estimators))
        total = np.zeros(n)
        total_sq = np.zeros(n)
        count = np.zeros(n)
        for masks, scores in self._run_tasks(_bag_task, tasks, "Data-OOB"):
            for m, s in zip(masks, scores):
                total[m] += s
                total_sq[m] += s**2
                count[m] += 1
        return self._finish(X, y, sample_weight, total, total_sq, count)

    def _fit_fast(self, X, y, sample_weight, seeds, n_draw):
        """Binary L2 logistic regression: every bag is a weighted Newton solve in numba."""
        n = X.shape[0]
        classes = np.unique(y)
        Xc = np.ascontiguousarray(X, dtype=np.float64)
        t = (y == classes[1]).astype(np.float64)
        sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
        counts = np.empty((len(seeds), n), dtype=np.float64)
        for b, seed in enumerate(seeds):  # the same bootstrap draws as the generic path
            idx = np.random.default_rng(seed).integers(0, n, size=n_draw)
            counts[b] = np.bincount(idx, minlength=n)
        fit_intercept = bool(self.estimator.fit_intercept)
        theta0 = np.zeros(X.shape[1] + int(fit_intercept))
        Z = lr_bag_decisions(Xc, t, sw, counts, theta0, float(self.estimator.C), fit_intercept,
                             100)
        oob = counts == 0
        correct = ((Z > 0) == (t[None, :] == 1.0)).astype(np.float64)
        total = (correct * oob).sum(0)
        total_sq = total.copy()  # 0/1 scores
        count = oob.sum(0).astype(np.float64)
        return self._finish(X, y, sample_weight, total, total_sq, count)

    def _finish(self, X, y, sample_weight, total, total_sq, count):
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
            var = np.maximum(total_sq / count - mean**2, 0) * count / np.maximum(count - 1, 1)
            self.stderr_ = np.sqrt(var / count)
        if np.any(count == 0):
            warnings.warn(f"{int(np.sum(count == 0))} points were never out of bag; their value "
                          "is nan. Increase n_estimators.", UserWarning)
        self.values_ = mean
        self.n_oob_ = count.astype(np.int64)
        self.estimator_ = self._fit_estimator(X, y, sample_weight)
        return self
