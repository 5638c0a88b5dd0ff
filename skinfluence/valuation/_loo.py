"""Exact leave-one-out values by refitting without each point (or group)."""

import copy
import numbers
import warnings

import numpy as np
from sklearn.base import TransformerMixin, is_classifier
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import _num_samples, check_is_fitted

from ..utils._deprecation import positional_deprecated
from ..utils._output import TrainingColumnsMixin, check_dense_output, row_labels
from ._base import (
    BaseValuation,
    SubsetUtility,
    check_groups,
    check_inputs,
    check_train,
    check_validation,
    full_score,
)


def _pointwise_utility(estimator, pred, y):
    """Per-sample utility whose mean is accuracy (classifiers) or -MSE (regressors)."""
    if is_classifier(estimator):
        return (pred == y).astype(np.float64)
    return -((np.asarray(pred, dtype=np.float64) - y) ** 2)


def _loo_task(utility, full_model, warm, players, X_eval):
    """Refit without each of ``players``: validation scores, predictions on ``X_eval``."""
    utility = copy.copy(utility)  # own fit counters (threads share the object)
    utility.n_fits = utility.n_failures = 0
    n_train = utility.n_samples
    scores = np.empty(len(players))
    preds = []
    n_eval = None if X_eval is None else _num_samples(X_eval)
    for a, p in enumerate(players):
        keep = np.ones(n_train, dtype=bool)
        keep[utility.indices([p])] = False
        idx = np.flatnonzero(keep)
        model = None
        if warm:
            # start from the full-data solution: one point barely moves it
            model = copy.deepcopy(full_model)
            model.set_params(warm_start=True)
            if utility.classifier and np.unique(utility.y_codes[idx]).size != utility.classes.size:
                model = None  # a class disappeared: coefficient shapes change, fit cold
        scores[a], fitted = utility._fit_score(idx, model)
        if X_eval is not None:
            if fitted is None:  # constant predictor (single class left) or failed fit
                codes = utility.y_codes[idx]
                preds.append(np.full(n_eval, utility.classes[codes[0]]) if idx.size
                             else np.full(n_eval, np.nan))
            else:
                preds.append(fitted.predict(X_eval))
    return scores, preds, utility.n_fits, utility.n_failures


class LOOValuation(TrainingColumnsMixin, TransformerMixin, BaseValuation):
    """Exact leave-one-out values: refit the estimator without each training point.

    ``values_[j] = U(N) - U(N without j)`` where ``U`` is the validation score
    of the estimator refitted on a set of points.  The ``n_train`` refits run
    in parallel through joblib; estimators with a ``warm_start`` parameter
    start each refit from the full-data solution.

    Parameters
    ----------
    estimator : estimator
        Any scikit-learn estimator.
    scoring : str or callable, default=None
        Scorer on ``(X_val, y_val)``; ``None`` uses the estimator's ``score``.
    warm_start : {"auto"} or bool, default="auto"
        Warm-start refits from the full model when the estimator supports it.
        With an iterative solver the refit then stops at its tolerance near a
        slightly different point than a cold start; use ``False`` (or a
        tighter ``tol`` on the estimator) for bit-for-bit agreement with
        manual refits.
    error_score : "raise" or float, default="raise"
        Score used when a refit fails.
    n_jobs : int, default=None
        Parallel refits through joblib (any backend, e.g. dask).
    verbose : int, default=0
        Progress bar over refit batches.

    Attributes
    ----------
    values_ : ndarray of shape (n_players,)
        Drop in validation score when the point (or group) is removed;
        positive values help.
    utility_full_ : float
        Validation score of the model fitted on all points.
    estimator_ : estimator
        The model fitted on all points (``predict``/``score`` delegate to it).
    n_fits_ : int
    group_labels_ : ndarray
        The distinct groups, when ``groups`` was passed to ``fit``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.valuation import LOOValuation
    >>> X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    >>> loo = LOOValuation(LogisticRegression()).fit(X[:30], y[:30], X_val=X[30:], y_val=y[30:])
    >>> loo.values_.shape
    (30,)
    """

    _parameter_constraints = {
        "estimator": [object],
        "scoring": [None, str, callable],
        "warm_start": [StrOptions({"auto"}), "boolean"],
        "error_score": [StrOptions({"raise"}), numbers.Real],
        "n_jobs": [None, numbers.Integral],
        "verbose": ["verbose"],
    }

    @positional_deprecated("scoring")
    def __init__(self, estimator, *, scoring=None, warm_start="auto", error_score="raise",
                 n_jobs=None, verbose=0):
        self.estimator = estimator
        self.scoring = scoring
        self.warm_start = warm_start
        self.error_score = error_score
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _run(self, X_eval=None):
        u = self._utility
        n = u.n_players
        warm = self.warm_start is True or (
            self.warm_start == "auto" and "warm_start" in self.estimator.get_params())
        if warm and "warm_start" not in self.estimator.get_params():
            raise ValueError(f"{type(self.estimator).__name__} has no warm_start parameter.")
        tasks = ((u, self.estimator_, warm, c, X_eval) for c in self._task_chunks(n))
        results = self._run_tasks(_loo_task, tasks, "LOO refits")
        scores = np.concatenate([r[0] for r in results])
        preds = [p for r in results for p in r[1]]
        fits = sum(r[2] for r in results)
        failures = sum(r[3] for r in results)
        if failures:
            warnings.warn(f"{failures} refits failed and were scored error_score="
                          f"{self.error_score}.", RuntimeWarning)
        return scores, preds, fits

    def fit(self, X, y, *, X_val=None, y_val=None, sample_weight=None, groups=None):
        """Refit without each point (or group) and record the drop in validation score.

        Parameters
        ----------
        X : array-like of shape (n_train, n_features)
        y : array-like of shape (n_train,)
        X_val, y_val : array-like
            Validation set (required).
        sample_weight : array-like of shape (n_train,), default=None
        groups : array-like of shape (n_train,), default=None
            Leave one *group* out instead of one point.

        Returns
        -------
        self
        """
        self._validate_params()
        X_in = X  # a DataFrame index names the columns of transform
        X, y, sample_weight = check_train(self, X, y, sample_weight)
        X_val, y_val = check_validation(self, X_val, y_val, required=True)
        labels, members = check_groups(groups, _num_samples(X))
        self._utility = SubsetUtility(self.estimator, X, y, X_val, y_val, scoring=self.scoring,
                                      sample_weight=sample_weight, members=members,
                                      error_score=self.error_score, cache_size=0)
        self.utility_full_, self.estimator_ = full_score(self._utility)
        scores, _, fits = self._run()
        self.values_ = self.utility_full_ - scores
        self.n_fits_ = int(fits) + 1
        if labels is not None:
            self.group_labels_ = labels
        # transform's columns are the players: the groups, else the training rows
        self._output_labels = row_labels(X_in, X.shape[0]) if labels is None else labels
        return self

    def transform(self, X, y=None):
        """Per-sample leave-one-out effects (refits the ``n_train`` models again).

        Entry ``[i, j]`` is ``u_i(N) - u_i(N without j)`` with the per-sample
        utility ``u_i`` = correctness of the prediction for classifiers,
        minus the squared error for regressors (the terms of accuracy and of
        -MSE; other scorers do not decompose over samples).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            Targets of the samples.  ``None`` takes the prediction of the model fitted
            on all points as the target, so entry ``[i, j]`` says whether removing
            ``j`` changes the predicted class of sample ``i`` (1 if it does, else 0),
            or by how much it moves the predicted value (its square) for regressors.

        Returns
        -------
        ndarray of shape (n_samples, n_players)
        """
        check_is_fitted(self, "values_")
        if y is None:  # X checked as always, against a stand-in target of its length
            X, _ = check_inputs(self, X, np.zeros(_num_samples(X)), reset=False)
        else:
            X, y = check_inputs(self, X, y, reset=False)
        check_dense_output(_num_samples(X), self._utility.n_players, type(self).__name__,
                           explain=None)
        _, preds, _ = self._run(X_eval=X)
        full = self.estimator_.predict(X)
        if y is None:
            y = full
        base = _pointwise_utility(self.estimator, full, y)
        out = np.empty((_num_samples(X), len(preds)))
        for j, p in enumerate(preds):
            out[:, j] = base - _pointwise_utility(self.estimator, p, y)
        return out
