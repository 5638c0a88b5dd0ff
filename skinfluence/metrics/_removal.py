"""Removal experiments: the score after removing the highest- / lowest-valued points, and
the fewest top-attributed points whose removal flips a prediction (brittleness)."""

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import check_scoring
from sklearn.utils import Bunch

from ._attribution import attributions, retrained_estimator
from ._retrain import Retrainer, take

__all__ = ["brittleness", "removal_curve"]

DEFAULT_FRACTIONS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)


class _Score:
    """Picklable ``model -> scorer(model, X, y)`` for the retraining workers."""

    def __init__(self, scorer, X, y):
        self.scorer, self.X, self.y = scorer, X, y

    def __call__(self, model):
        return float(self.scorer(model, self.X, self.y))


def _check_fractions(fractions):
    f = np.asarray(fractions, dtype=np.float64).ravel()
    if f.size == 0 or np.any(f < 0) or np.any(f >= 1) or not np.all(np.isfinite(f)):
        raise ValueError(f"fractions must be in [0, 1); got {fractions!r}.")
    return f


def _value_vector(values_or_explainer, X, y, X_test, y_test, n_train, sample_weight):
    A, _ = attributions(values_or_explainer, X, y, X_test, y_test, n_train, sample_weight)
    return A if A.ndim == 1 else A.mean(axis=0)  # a matrix: value for the mean test loss


def removal_curve(values_or_explainer, estimator, X, y, X_test, y_test, *, order="high",
                  fractions=DEFAULT_FRACTIONS, scoring=None, sample_weight=None, n_jobs=None,
                  memory=None, warm_start=False):
    """Held-out score after removing the highest- (or lowest-) valued training points.

    For each fraction ``f``, the ``int(f * n_train)`` training points with the highest
    (``order="high"``) or lowest (``"low"``) values are removed, ``estimator`` is
    refitted on the rest and scored on ``(X_test, y_test)``: the point-removal
    experiment of pyDVL's ``compute_removal_score`` / ``run_removal_experiment``
    (``remove_best=True`` for ``"high"``).  A good valuation makes the ``"high"`` curve
    fall fast and the ``"low"`` curve stay up (or rise, when low values mark noise).
    Ties are broken by training index, the lower first.

    Parameters
    ----------
    values_or_explainer : array-like of shape (n_train,) or (n_test, n_train), estimator or
        callable
        Values of the training points, or anything
        :func:`linear_datamodeling_score` accepts; a matrix is averaged over its rows
        (the value of each point for the mean test loss).
    estimator : estimator
        The model retrained on what is left (unfitted; any scikit-learn estimator).
    X, y : array-like
        Training set.
    X_test, y_test : array-like
        Held-out data the retrained model is scored on.
    order : {"high", "low"}, default="high"
        Remove the highest- or the lowest-valued points first.
    fractions : array-like of float in [0, 1)
        Fractions of the training set removed.
    scoring : str, callable or None, default=None
        Scorer of the retrained model; ``None``: the estimator's ``score``.
    sample_weight : array-like of shape (n_train,), default=None
    n_jobs, memory :
        As in :func:`linear_datamodeling_score` (retrains are shared through ``memory``).
    warm_start : {"auto", True, False}, default=False
        Cold refits by default, as the experiment defines them.

    Returns
    -------
    fractions : ndarray of shape (n_fractions,)
    scores : ndarray of shape (n_fractions,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.metrics import removal_curve
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> values = np.random.default_rng(0).normal(size=300)
    >>> f, s = removal_curve(values, LogisticRegression(max_iter=5000), X[:300], y[:300],
    ...                      X[300:], y[300:], fractions=[0.0, 0.5])
    >>> s.shape
    (2,)
    """
    if order not in ("high", "low"):
        raise ValueError(f"order must be 'high' or 'low'; got {order!r}.")
    fractions = _check_fractions(fractions)
    retrainer = Retrainer(estimator, X, y, sample_weight, warm_start=warm_start, memory=memory,
                          n_jobs=n_jobs)
    n = retrainer.n_train
    values = _value_vector(values_or_explainer, X, y, X_test, y_test, n, sample_weight)
    key = -values if order == "high" else values
    ranked = np.argsort(key, kind="stable")  # removed first -> last
    removed = [ranked[:int(f * n)] for f in fractions]
    scorer = check_scoring(retrainer.estimator, scoring=scoring)
    scores = retrainer.map(removed, _Score(scorer, X_test, y_test))
    return fractions, np.asarray(scores, dtype=np.float64)


def brittleness(explainer, X, y, X_test, *, y_test=None, n_removed=(1, 2, 5, 10, 20, 50, 100),
                estimator=None, sample_weight=None, n_jobs=None, memory=None,
                warm_start="auto", return_details=False):
    """Fewest top-attributed training points whose removal flips each test prediction.

    For each test point, the training points are ranked by how much they support the
    prediction of the model fitted on all the data (the attribution for the predicted
    label); the model is retrained without the top ``k`` for each ``k`` in
    ``n_removed`` (in increasing order, stopping at the first flip) and the smallest
    ``k`` that changes the prediction is reported -- each one checked by retraining.
    Small numbers: predictions that rest on few training points, found by the method.

    Parameters
    ----------
    explainer : estimator, callable or array-like
        As in :func:`linear_datamodeling_score`; attributions are taken for the
        *predicted* labels of ``X_test``.
    X, y : array-like
        Training set.
    X_test : array-like
        Test points (classification only).
    y_test : ignored
        Accepted for a uniform signature: the predicted labels are explained.
    n_removed : array-like of int, default=(1, 2, 5, 10, 20, 50, 100)
        Candidate numbers of removed points (those below ``n_train``).
    estimator, sample_weight, n_jobs, memory, warm_start :
        As in :func:`linear_datamodeling_score`.
    return_details : bool, default=False
        Return a Bunch: ``n_removed`` (per test point), ``flipped`` (bool),
        ``n_fits``.

    Returns
    -------
    n_removed : ndarray of shape (n_test,)
        The smallest flipping ``k`` (float), NaN where no candidate flips.
    """
    est = retrained_estimator(explainer, estimator)
    if not is_classifier(est):
        raise ValueError("brittleness is defined for classifiers (a prediction that flips).")
    retrainer = Retrainer(est, X, y, sample_weight, warm_start=warm_start, memory=memory,
                          n_jobs=n_jobs)
    n = retrainer.n_train
    ks = np.unique(np.asarray(n_removed, dtype=np.int64))
    if ks.size == 0 or ks.min() < 1:
        raise ValueError(f"n_removed must be positive integers; got {n_removed!r}.")
    ks = ks[ks < n]
    pred = retrainer.full_model().predict(X_test)
    A, _ = attributions(explainer, X, y, X_test, pred, n, sample_weight)
    A = np.broadcast_to(A, (len(pred), n)) if A.ndim == 1 else A
    ranked = np.argsort(-A, axis=1, kind="stable")
    out = np.full(len(pred), np.nan)
    todo = np.arange(len(pred))
    for k in ks:
        if todo.size == 0:
            break
        flips = retrainer.map([ranked[i, :k] for i in todo],
                              _PredictOne(X_test, todo))
        flipped = np.array([f[j] for j, f in enumerate(flips)]) != pred[todo]
        out[todo[flipped]] = k
        todo = todo[~flipped]
    if not return_details:
        return out
    return Bunch(n_removed=out, flipped=~np.isnan(out), n_fits=retrainer.n_fits_)


class _PredictOne:
    """``model -> predictions on the test points of a batch`` (each model is checked on
    its own test point: entry ``j`` of the result is used for the ``j``-th subset)."""

    def __init__(self, X, rows):
        self.X = take(X, rows)

    def __call__(self, model):
        return model.predict(self.X)
