"""What a method predicts, and what the retrained model measures.

:func:`attributions` turns anything the metrics accept -- a fitted or unfitted
explainer, a valuation estimator, a cleaner, a callable or an array -- into one
attribution matrix ``(n_test, n_train)`` or one value vector ``(n_train,)``.  Their sign
convention is the library's: a positive entry means that removing the training point
increases the loss (the point helps).  :func:`sample_loss` is the loss whose change the
attributions predict, evaluated on a retrained model.
"""

import inspect

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted

from ..objectives import make_objective

__all__ = ["attributions", "group_prediction", "retrained_estimator", "sample_loss"]


def _is_fitted(est):
    try:
        check_is_fitted(est)
    except NotFittedError:
        return False
    return True


def _fit_explainer(explainer, X, y, X_test, y_test, sample_weight):
    """A clone of ``explainer`` fitted on ``(X, y)`` (``X_test`` as the validation set of
    a valuation estimator that takes one)."""
    est = clone(explainer)
    params = inspect.signature(est.fit).parameters
    kwargs = {}
    if sample_weight is not None:
        kwargs["sample_weight"] = sample_weight
    # a cleaner uses a validation set only with method="validation" (it warns otherwise)
    if "X_val" in params and getattr(est, "method", "validation") == "validation":
        try:
            return est.fit(X, y, X_val=X_test, y_val=y_test, **kwargs)
        except ValueError as exc:  # a valuer that takes no validation set (DataOOB)
            if "X_val" not in str(exc):
                raise
    return est.fit(X, y, **kwargs)


def fitted_explainer(explainer, X, y, X_test, y_test, sample_weight=None):
    """``explainer`` if it is fitted, else a fitted clone."""
    if _is_fitted(explainer):
        return explainer
    return _fit_explainer(explainer, X, y, X_test, y_test, sample_weight)


def attributions(explainer, X, y, X_test, y_test, n_train, sample_weight=None):
    """Attribution matrix ``(n_test, n_train)`` or value vector ``(n_train,)``, and the
    fitted explainer (None for arrays and callables).

    * an array: used as it is;
    * a callable that is not an estimator: ``explainer(X_test, y_test)``;
    * an estimator (fitted on ``(X, y)``, or unfitted: a clone is fitted): ``values_``
      (valuation estimators), ``-scores_`` (cleaners: high suspicion, low value), else
      ``transform(X_test, y_test)`` (InfluenceFunctions, TracIn, ...).
    """
    fitted = None
    if hasattr(explainer, "fit"):
        fitted = fitted_explainer(explainer, X, y, X_test, y_test, sample_weight)
        if hasattr(fitted, "values_"):
            A = fitted.values_
        elif hasattr(fitted, "scores_"):
            A = -np.asarray(fitted.scores_, dtype=np.float64)
        elif hasattr(fitted, "transform"):
            # y_test=None: queries that carry their target (Gradient Rollback's triples)
            A = (fitted.transform(X_test) if y_test is None
                 else fitted.transform(X_test, y_test))
        else:
            raise TypeError(
                f"{type(explainer).__name__} gives no attributions: expected values_, "
                "scores_ or transform(X, y)."
            )
    elif callable(explainer):
        A = explainer(X_test, y_test)
    else:
        A = explainer
    return _check_attributions(A, n_train, _n_rows(X_test)), fitted


def _check_attributions(A, n_train, n_test):
    A = np.asarray(A.toarray() if hasattr(A, "toarray") else A, dtype=np.float64)
    if not np.all(np.isfinite(A)):
        raise ValueError(f"Attributions contain {int(np.sum(~np.isfinite(A)))} NaN or "
                         "infinite entries (e.g. points a valuation never scored); the "
                         "metrics need a finite value for every training point.")
    if A.ndim == 1 and A.shape[0] == n_train:
        return A
    if A.ndim == 2 and A.shape == (n_test, n_train):
        return A
    raise ValueError(
        f"Attributions must have shape ({n_test}, {n_train}) (test points x training "
        f"points) or ({n_train},) (one value per training point); got {A.shape}.  An "
        "explainer fitted on other data than X, y has other columns."
    )


def _n_rows(data):
    return data.shape[0] if hasattr(data, "shape") else len(data)


def retrained_estimator(explainer, estimator):
    """The model to retrain: ``estimator`` if given, else the explainer's wrapped model."""
    if estimator is None:
        estimator = getattr(explainer, "estimator", None)
        if estimator is None or not hasattr(estimator, "fit"):
            raise ValueError(
                "Pass estimator=: the model to retrain cannot be taken from "
                f"{type(explainer).__name__}."
            )
    if isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator  # retraining is the point: refit what it wraps
    return estimator


def group_prediction(explainer, removed, X_test, y_test):
    """The explainer's group-aware prediction of the loss change on ``X_test`` when the
    training rows ``removed`` are removed together."""
    if hasattr(explainer, "predict_removal_effect"):
        return np.asarray(explainer.predict_removal_effect(removed, X_test, y_test))
    if hasattr(explainer, "objective_") and hasattr(explainer, "solver_"):
        from ..influence._group import predict_removal_effect

        return predict_removal_effect(explainer, removed, X_test, y_test, order=2)
    raise ValueError(
        f"datamodel='group' needs an explainer with a group-aware removal prediction "
        f"(InfluenceFunctions); {type(explainer).__name__} has none: use "
        "datamodel='additive'."
    )


def _is_kg_model(model):
    from ..rollback._kg_estimator import _KGEmbedding

    return isinstance(model, _KGEmbedding)


def sample_loss(model, X, y):
    """Per-sample loss of a fitted ``model`` on ``(X, y)``: ``(n_samples,)``.

    The training loss of the model's objective where :mod:`skinfluence.objectives`
    supports it (the loss whose change influence methods predict); otherwise the log
    loss of the given label (classifiers with ``predict_proba``) or the squared error
    (regressors).  Knowledge-graph models (:class:`~skinfluence.DistMult`,
    :class:`~skinfluence.ComplEx`) take ``(head, relation, tail)`` triples as ``X`` (``y``
    unused): minus the log-probability of each tail.
    """
    if _is_kg_model(model):  # DistMult, ComplEx on (head, relation, tail) triples
        X = np.asarray(X)
        P = model.predict_proba(X[:, :2])
        return -np.log(np.clip(P[np.arange(X.shape[0]), X[:, 2]], 1e-300, None))
    try:
        obj = make_objective(model, X, y)
    except TypeError:
        obj = None
    if obj is not None:
        return obj.sample_losses(obj.features(X), obj.encode_target(y))
    if is_classifier(model) and hasattr(model, "predict_proba"):
        P = model.predict_proba(X)
        col = np.searchsorted(model.classes_, np.asarray(y))
        known = (col < len(model.classes_)) & (model.classes_[np.minimum(
            col, len(model.classes_) - 1)] == np.asarray(y))
        p = np.where(known, P[np.arange(P.shape[0]), np.minimum(col, P.shape[1] - 1)], 0.0)
        return -np.log(np.clip(p, 1e-15, None))
    if not is_classifier(model):
        err = np.asarray(model.predict(X), dtype=np.float64) - np.asarray(y, dtype=np.float64)
        return (err ** 2).reshape(err.shape[0], -1).sum(axis=1)
    raise TypeError(
        f"No per-sample loss for {type(model).__name__}: a classifier needs predict_proba."
    )
