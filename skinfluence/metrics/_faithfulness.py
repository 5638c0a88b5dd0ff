"""Faithfulness of attributions against actual retraining: LDS and LOO correlation."""

import numbers
import warnings

import numpy as np
from scipy.stats import pearsonr, rankdata
from sklearn.base import clone
from sklearn.utils import Bunch, check_random_state

from ._attribution import attributions, group_prediction, retrained_estimator, sample_loss
from ._retrain import Retrainer, check_fraction, random_subsets

__all__ = ["linear_datamodeling_score", "lds_ceiling", "lds_from", "loo_correlation",
           "loo_from"]


class _Loss:
    """Picklable ``model -> per-sample loss on (X, y)`` for the retraining workers."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __call__(self, model):
        return sample_loss(model, self.X, self.y)


def _spearman(a, b):
    """Spearman correlation of two vectors; NaN when either is constant."""
    ra, rb = rankdata(a), rankdata(b)
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return np.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def _pearson(a, b):
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return np.nan
    return float(pearsonr(a, b)[0])


def _mean_over_points(scores, what):
    scores = np.asarray(scores, dtype=np.float64)
    n_nan = int(np.isnan(scores).sum())
    if n_nan == scores.size:
        raise ValueError(f"Every {what} correlation is undefined (constant predictions or "
                         "constant retrained losses).")
    if n_nan:
        warnings.warn(f"{n_nan} of {scores.size} test points have a constant prediction or "
                      f"a constant retrained loss; the {what} averages the other ones.",
                      UserWarning, stacklevel=3)
    return float(np.nanmean(scores))


def _check_n(value, name, low=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")
    return int(value)


def _setup(explainer, X, y, X_test, y_test, estimator, sample_weight, memory, n_jobs,
           warm_start):
    """The retrainer, the attributions and the fitted explainer of a metric call."""
    est = retrained_estimator(explainer, estimator)
    retrainer = Retrainer(est, X, y, sample_weight, warm_start=warm_start, memory=memory,
                          n_jobs=n_jobs)
    A, fitted = attributions(explainer, X, y, X_test, y_test, retrainer.n_train,
                             sample_weight)
    return retrainer, A, fitted


def linear_datamodeling_score(explainer, X, y, X_test, y_test, *, fraction=0.5, n_subsets=100,
                              datamodel="additive", estimator=None, sample_weight=None,
                              random_state=None, n_jobs=None, memory=None, warm_start="auto",
                              return_details=False):
    """Linear datamodeling score (LDS) of a method against models retrained on subsets.

    For ``n_subsets`` random subsets of the training set, each without a random
    ``fraction`` of its points, the model is retrained and its loss on every test
    point measured.  The method predicts the change of that loss from the model fitted
    on all the data; the score is the Spearman correlation, over the subsets, of
    predicted and measured losses, averaged over the test points (Park et al., "TRAK",
    ICML 2023).  A method that gives one value per training point (a valuation) is
    compared with the mean test loss.

    Parameters
    ----------
    explainer : estimator, callable or array-like
        An explainer or valuation estimator (fitted on ``X, y``, or unfitted: a clone is
        fitted), a callable ``f(X_test, y_test)`` returning an ``(n_test, n_train)``
        matrix, or the attributions themselves: ``(n_test, n_train)`` or ``(n_train,)``.
        Positive entries: removing the training point increases the loss.
    X, y : array-like
        The training set.
    X_test, y_test : array-like
        The points whose losses are predicted.
    fraction : float in (0, 1), default=0.5
        Share of the training set removed in each subset.
    n_subsets : int, default=100
        Subsets, hence retrains.
    datamodel : {"additive", "group"}, default="additive"
        ``"additive"``: the predicted change is the sum of the removed points'
        single-removal attributions.  ``"group"``: the explainer's prediction for the
        removed set as a whole (for :class:`~skinfluence.InfluenceFunctions`, one
        Newton step of the objective without the set,
        :func:`skinfluence.valuation.predict_removal_effect`).
    estimator : estimator, default=None
        The model to retrain; default: the explainer's ``estimator``.  Required for
        callables and arrays.
    sample_weight : array-like of shape (n_train,), default=None
    random_state : int, RandomState or None, default=None
        Draws the subsets.  An int gives the same subsets, hence the same (cached)
        retrains, on every call.
    n_jobs : int, default=None
        Parallel retrains (joblib; any backend).
    memory : str, joblib.Memory or None, default=None
        Cache of the retrained models (see :class:`~skinfluence.metrics.Retrainer`).
    warm_start : {"auto", True, False}, default="auto"
        Warm-start retrains from the full-data model where the estimator allows.
    return_details : bool, default=False
        Return a Bunch instead of the score.

    Returns
    -------
    score : float, or Bunch
        With ``return_details``: ``score``; ``scores`` (per test point, or one entry
        for a value vector); ``predicted`` and ``actual`` (``(n_subsets, n_test)``, or
        ``(n_subsets,)``: loss changes from the full-data model); ``removed``
        (``(n_subsets, n_train)`` boolean masks); ``n_fits`` (retrains run, cache
        misses).

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skinfluence import InfluenceFunctions
    >>> from skinfluence.metrics import linear_datamodeling_score
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> inf = InfluenceFunctions(make_pipeline(StandardScaler(), LogisticRegression()))
    >>> lds = linear_datamodeling_score(inf, X[:300], y[:300], X[300:320], y[300:320],
    ...                                 n_subsets=20, random_state=0)
    >>> bool(lds > 0.5)
    True
    """
    retrainer, A, fitted = _setup(explainer, X, y, X_test, y_test, estimator, sample_weight,
                                  memory, n_jobs, warm_start)
    result = lds_from(retrainer, A, fitted, X_test, X_test, y_test, fraction=fraction,
                      n_subsets=n_subsets, datamodel=datamodel, random_state=random_state)
    return result if return_details else result.score


def lds_from(retrainer, A, fitted, X_query, X_test, y_test, *, fraction, n_subsets, datamodel,
             random_state):
    """LDS details for attributions ``A`` (of the ``fitted`` explainer, queried on
    ``X_query``) against ``retrainer``'s models evaluated on ``X_test``."""
    fraction = check_fraction(fraction)
    n_subsets = _check_n(n_subsets, "n_subsets", low=3)
    if datamodel not in ("additive", "group"):
        raise ValueError(f"datamodel must be 'additive' or 'group'; got {datamodel!r}.")
    if datamodel == "group" and fitted is None:
        raise ValueError("datamodel='group' needs an explainer estimator, not attributions.")
    removed = random_subsets(retrainer.n_train, fraction, n_subsets, random_state)
    loss = _Loss(X_test, y_test)
    base = loss(retrainer.full_model())
    actual = np.asarray(retrainer.map(removed, loss)) - base  # (n_subsets, n_test)
    if datamodel == "group":
        predicted = np.array([group_prediction(fitted, np.flatnonzero(m), X_query, y_test)
                              for m in removed])
    else:
        predicted = removed.astype(np.float64) @ A.T
    if predicted.ndim == 1:  # a value vector predicts the mean test loss
        actual = actual.mean(axis=1)
        scores = np.array([_spearman(predicted, actual)])
    else:
        scores = np.array([_spearman(predicted[:, i], actual[:, i])
                           for i in range(actual.shape[1])])
    return Bunch(score=_mean_over_points(scores, "LDS"), scores=scores, predicted=predicted,
                 actual=actual, removed=removed, n_fits=retrainer.n_fits_)


def loo_correlation(explainer, X, y, X_test, y_test, *, method="pearson", n_samples=100,
                    estimator=None, sample_weight=None, random_state=None, n_jobs=None,
                    memory=None, warm_start="auto", return_details=False):
    """Correlation of a method's attributions with actual leave-one-out retraining.

    ``n_samples`` training points are drawn; the model is retrained without each, and
    the change of every test point's loss measured.  The score is the correlation,
    over all these (test point, training point) pairs, of attribution and measured
    change.  A method that gives one value per training point is compared with the
    change of the mean test loss.

    Parameters
    ----------
    explainer, X, y, X_test, y_test, estimator, sample_weight, n_jobs, memory, warm_start
        As in :func:`linear_datamodeling_score`.
    method : {"pearson", "spearman"}, default="pearson"
        The correlation returned (the details hold both).
    n_samples : int or None, default=100
        Training points left out (at most ``n_train``; ``None``: all of them).
    random_state : int, RandomState or None, default=None
        Draws the training points.
    return_details : bool, default=False
        Return a Bunch: ``score``, ``pearson``, ``spearman``, ``predicted`` and
        ``actual`` (``(n_test, n_samples)`` or ``(n_samples,)``), ``train_indices``,
        ``n_fits``.

    Returns
    -------
    score : float, or Bunch
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman'; got {method!r}.")
    retrainer, A, _ = _setup(explainer, X, y, X_test, y_test, estimator, sample_weight, memory,
                             n_jobs, warm_start)
    result = loo_from(retrainer, A, X_test, y_test, method=method, n_samples=n_samples,
                      random_state=random_state)
    return result if return_details else result.score


def loo_from(retrainer, A, X_test, y_test, *, method, n_samples, random_state):
    """LOO correlation details for attributions ``A`` against ``retrainer``'s models."""
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman'; got {method!r}.")
    n = retrainer.n_train
    m = n if n_samples is None else min(_check_n(n_samples, "n_samples"), n)
    rng = check_random_state(random_state)
    idx = np.sort(rng.permutation(n)[:m])
    loss = _Loss(X_test, y_test)
    base = loss(retrainer.full_model())
    actual = (np.asarray(retrainer.map([[j] for j in idx], loss)) - base).T  # (n_test, m)
    predicted = A[..., idx]
    if predicted.ndim == 1:
        actual = actual.mean(axis=0)
    pearson = _pearson(predicted.ravel(), actual.ravel())
    spearman = _spearman(predicted.ravel(), actual.ravel())
    return Bunch(score=pearson if method == "pearson" else spearman, pearson=pearson,
                 spearman=spearman, predicted=predicted, actual=actual, train_indices=idx,
                 n_fits=retrainer.n_fits_)


def _reseeded(estimator, seed):
    """A clone of ``estimator`` with every ``random_state`` parameter set to ``seed``."""
    keys = [k for k in estimator.get_params() if k.split("__")[-1] == "random_state"]
    if not keys:
        raise ValueError(
            f"{type(estimator).__name__} has no random_state: its training is "
            "deterministic and the LDS ceiling is 1; lds_ceiling is for stochastic "
            "training (neural networks, forests, SGD)."
        )
    return clone(estimator).set_params(**dict.fromkeys(keys, seed))


def lds_ceiling(estimator, X, y, X_test, y_test, *, seed=1, fraction=0.5, n_subsets=100,
                sample_weight=None, random_state=None, n_jobs=None, memory=None,
                warm_start="auto", return_details=False):
    """The LDS of retraining itself: how well one retraining predicts another.

    The model retrained from scratch with ``random_state=seed`` on each subset is used
    as the "method": its change of every test loss is scored against the retrains that
    :func:`linear_datamodeling_score` uses (same ``fraction``, ``n_subsets``,
    ``random_state``, ``warm_start`` and ``memory``, hence the same cached models).  When
    training is stochastic (an MLP's initialisation, a forest's bootstrap, SGD's
    shuffling), two retrains on the same subset differ, and no attribution method can
    be expected to predict one retraining better than another retraining does: this is
    the scale on which to read a method's LDS.  It estimates the agreement of two
    training runs, for these subsets and test points.

    Parameters
    ----------
    estimator : estimator
        The model (unfitted), with a ``random_state`` parameter (Pipelines: every step's
        ``random_state`` is set).
    X, y, X_test, y_test, fraction, n_subsets, sample_weight, random_state, n_jobs, \
memory, warm_start, return_details
        As in :func:`linear_datamodeling_score`.
    seed : int, default=1
        The ``random_state`` of the competing retrains (always from scratch).

    Returns
    -------
    score : float, or Bunch
        As :func:`linear_datamodeling_score` returns; ``predicted`` are the competing
        retrains' loss changes.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.neural_network import MLPClassifier
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence.metrics import lds_ceiling
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = scale(X)
    >>> mlp = MLPClassifier((8,), solver="lbfgs", max_iter=300, random_state=0)
    >>> c = lds_ceiling(mlp, X[:150], y[:150], X[500:520], y[500:520], n_subsets=10,
    ...                 warm_start=False, random_state=0)
    >>> bool(0 < c < 1)
    True
    """
    est = retrained_estimator(None, estimator)  # a FrozenEstimator: the model it wraps
    reference = Retrainer(est, X, y, sample_weight, warm_start=warm_start, memory=memory,
                          n_jobs=n_jobs)
    other = Retrainer(_reseeded(est, seed), X, y, sample_weight, warm_start=False,
                      memory=memory, n_jobs=n_jobs)
    fraction = check_fraction(fraction)
    n_subsets = _check_n(n_subsets, "n_subsets", low=3)
    removed = random_subsets(reference.n_train, fraction, n_subsets, random_state)
    loss = _Loss(X_test, y_test)
    actual = np.asarray(reference.map(removed, loss)) - loss(reference.full_model())
    predicted = np.asarray(other.map(removed, loss)) - loss(other.full_model())
    scores = np.array([_spearman(predicted[:, i], actual[:, i])
                       for i in range(actual.shape[1])])
    result = Bunch(score=_mean_over_points(scores, "LDS"), scores=scores,
                   predicted=predicted, actual=actual, removed=removed,
                   n_fits=reference.n_fits_ + other.n_fits_)
    return result if return_details else result.score
