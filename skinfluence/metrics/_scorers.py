"""Scorers that rate a fitted explainer by its faithfulness, for GridSearchCV.

``GridSearchCV(InfluenceFunctions(model), {"damping": [...]}, scoring=lds_scorer(X_test,
y_test, memory=cache))`` tunes the explainer's own parameters by how well its
predictions match retraining.  The explainer's ``score`` still delegates to the wrapped
model: these scorers replace it only where they are passed as ``scoring``.
"""

import numpy as np
from sklearn.base import clone, is_classifier

from ._attribution import attributions, retrained_estimator
from ._faithfulness import _check_n, lds_from, loo_from
from ._retrain import Retrainer, check_fraction

__all__ = ["lds_scorer", "loo_scorer", "training_data"]


def training_data(explainer):
    """``(estimator, X, y, sample_weight, feature_map)`` an explainer was fitted on.

    Read from the training objective of a fitted
    :class:`~skinfluence.InfluenceFunctions` or :class:`~skinfluence.TracIn`: the
    features the model's final step saw (a Pipeline's earlier steps stay the fixed
    feature map ``feature_map``, as the explainer treats them) and its labels, with an
    unfitted clone of that final step to retrain.
    """
    obj = getattr(explainer, "objective_", None)
    if obj is None:
        objectives = getattr(explainer, "_objectives", None)
        obj = objectives[0] if objectives else None
    if obj is None:
        raise ValueError(
            f"The training data of {type(explainer).__name__} cannot be recovered: pass "
            "X= and y= (the data the explainer is fitted on) to the scorer."
        )
    final = clone(obj.estimator)
    y = np.asarray(obj.y)
    if is_classifier(final):
        y = np.asarray(obj.estimator.classes_)[y.astype(np.intp)]
    w = np.asarray(obj.weights, dtype=np.float64)
    if np.all(w == 1.0):
        w = None
    elif getattr(final, "class_weight", None) is not None:
        raise ValueError(
            "The explainer's model has class weights: its training weights cannot be "
            "recovered; pass X= and y= (and sample_weight=) to the scorer."
        )
    return final, obj.X, y, w, obj.features


class _FaithfulnessScorer:
    """``scorer(explainer, X_fold, y_fold)``: a faithfulness score of a fitted explainer."""

    def __init__(self, kind, X_test, y_test, X, y, sample_weight, params, memory, n_jobs,
                 warm_start):
        if (X_test is None) != (y_test is None):
            raise ValueError("Pass both X_test and y_test, or neither (then the held-out "
                             "fold is used).")
        if (X is None) != (y is None):
            raise ValueError("Pass both X and y (the training data), or neither.")
        self.kind, self.params = kind, params
        self.X_test, self.y_test, self.X, self.y = X_test, y_test, X, y
        self.sample_weight = sample_weight
        self.memory, self.n_jobs, self.warm_start = memory, n_jobs, warm_start

    def __repr__(self):
        return f"{self.kind}_scorer({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

    def __call__(self, explainer, X_fold=None, y_fold=None, **kwargs):
        X_query, y_test = ((self.X_test, self.y_test) if self.X_test is not None
                           else (X_fold, y_fold))
        if self.X is not None:
            est = retrained_estimator(explainer, None)
            X, y, w, X_test = self.X, self.y, self.sample_weight, X_query
        else:
            est, X, y, w, features = training_data(explainer)
            X_test = features(X_query)
        retrainer = Retrainer(est, X, y, w, warm_start=self.warm_start, memory=self.memory,
                              n_jobs=self.n_jobs)
        A, _ = attributions(explainer, None, None, X_query, y_test, retrainer.n_train)
        if self.kind == "lds":
            return lds_from(retrainer, A, explainer, X_query, X_test, y_test,
                            **self.params).score
        return loo_from(retrainer, A, X_test, y_test, **self.params).score


def lds_scorer(X_test=None, y_test=None, *, X=None, y=None, sample_weight=None, fraction=0.5,
               n_subsets=100, datamodel="additive", random_state=0, memory=None, n_jobs=None,
               warm_start="auto"):
    """Scorer of a fitted explainer by its linear datamodeling score.

    Parameters
    ----------
    X_test, y_test : array-like, default=None
        Points whose losses are predicted; ``None``: the held-out fold the scorer is
        called with.
    X, y : array-like, default=None
        The training data the explainer is fitted on.  ``None``: recovered from the
        fitted explainer (:func:`training_data`; InfluenceFunctions and TracIn), so
        that each cross-validation fold is retrained on its own training part.  When
        given, the explainer must have been fitted on exactly these rows (a
        cross-validation split that trains on all of them, e.g.
        ``cv=[(np.arange(n), np.arange(n))]``).
    sample_weight : array-like, default=None
        Weights of ``X``'s rows.
    fraction, n_subsets, datamodel, n_jobs, warm_start :
        As in :func:`linear_datamodeling_score`.
    random_state : int, default=0
        Seeds the subsets; fixed so that every candidate is scored on the same
        subsets, hence the same retrains.
    memory : str, joblib.Memory or None, default=None
        Cache of the retrained models: with it, a grid search retrains once per fold,
        whatever the number of candidates.

    Returns
    -------
    scorer : callable
        ``scorer(explainer, X, y)``, higher is better.

    Examples
    --------
    >>> from tempfile import mkdtemp
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skinfluence import InfluenceFunctions
    >>> from skinfluence.metrics import lds_scorer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = (X - X.mean(0)) / X.std(0)
    >>> scorer = lds_scorer(X[300:310], y[300:310], n_subsets=10, memory=mkdtemp())
    >>> search = GridSearchCV(InfluenceFunctions(LogisticRegression()),
    ...                       {"approximation": ["newton", "first_order"]},
    ...                       scoring=scorer, cv=2).fit(X[:300], y[:300])
    >>> search.best_params_["approximation"] in ("newton", "first_order")
    True
    """
    params = dict(fraction=check_fraction(fraction), n_subsets=_check_n(n_subsets, "n_subsets",
                                                                       low=3),
                  datamodel=datamodel, random_state=random_state)
    if datamodel not in ("additive", "group"):
        raise ValueError(f"datamodel must be 'additive' or 'group'; got {datamodel!r}.")
    return _FaithfulnessScorer("lds", X_test, y_test, X, y, sample_weight, params, memory,
                               n_jobs, warm_start)


def loo_scorer(X_test=None, y_test=None, *, X=None, y=None, sample_weight=None,
               method="pearson", n_samples=100, random_state=0, memory=None, n_jobs=None,
               warm_start="auto"):
    """Scorer of a fitted explainer by its leave-one-out correlation.

    Parameters are those of :func:`lds_scorer`, with ``method`` and ``n_samples`` of
    :func:`loo_correlation`.

    Returns
    -------
    scorer : callable
        ``scorer(explainer, X, y)``, higher is better.
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman'; got {method!r}.")
    params = dict(method=method, n_samples=n_samples, random_state=random_state)
    return _FaithfulnessScorer("loo", X_test, y_test, X, y, sample_weight, params, memory,
                               n_jobs, warm_start)
