"""Out-of-bag predictions of a fitted bagged forest: out-of-sample, without any refit.

Each tree of a ``RandomForest*`` / ``ExtraTrees*`` fitted with ``bootstrap=True`` never saw
the points left out of its bootstrap sample (``estimators_samples_``); averaged over those
trees, its predictions for a point are out-of-sample, as cross-validated ones are, from
the one fit the user already has.  :func:`oob_proba` gives the class probabilities that
confident learning needs (:class:`~skinfluence.InfluenceCleaner`), :func:`oob_scores` the
per-tree scores Data-OOB averages (:class:`~skinfluence.valuation.DataOOB`).
"""

import warnings

import numpy as np
from sklearn.utils.validation import check_array

from ._structure import FORESTS

__all__ = ["bagged_forest", "oob_proba", "oob_predict", "oob_scores"]


def bagged_forest(model):
    """``(feature map or None, forest)`` if ``model`` is a fitted bagged forest (possibly
    frozen, or the last step of a Pipeline), else None."""
    if type(model).__name__ == "FrozenEstimator":
        model = model.estimator
    head, final = None, model
    if getattr(model, "steps", None):
        head, final = model[:-1], model.steps[-1][1]
    if (isinstance(final, FORESTS) and final.bootstrap and hasattr(final, "estimators_")
            and getattr(final, "n_outputs_", 1) == 1):
        return head, final
    return None


def _oob_masks(forest, n):
    """(n_trees, n) True where the point is out of the tree's bootstrap sample."""
    if getattr(forest, "_n_samples", n) != n:
        raise ValueError(f"X has {n} samples; the forest was fitted on {forest._n_samples}: "
                         "out-of-bag predictions need the training data it was fitted on.")
    masks = np.ones((len(forest.estimators_), n), dtype=bool)
    for t, idx in enumerate(forest.estimators_samples_):
        masks[t, idx] = False
    return masks


def _features(head, X):
    Xf = X if head is None else head.transform(X)
    return np.ascontiguousarray(check_array(Xf, dtype=np.float32, ensure_all_finite=False))


def oob_proba(model, X):
    """Out-of-bag class probabilities ``(n, n_classes)`` of a fitted bagged forest classifier.

    Points that were in every tree's bootstrap sample have no out-of-bag prediction; they
    get the forest's in-sample probabilities, with a warning.
    """
    head, forest = bagged_forest(model)
    Xf = _features(head, X)
    n = Xf.shape[0]
    masks = _oob_masks(forest, n)
    P = np.zeros((n, len(forest.classes_)))
    for tree, oob in zip(forest.estimators_, masks):
        if oob.any():
            P[oob] += tree.predict_proba(Xf[oob], check_input=False)
    count = masks.sum(axis=0)
    never = count == 0
    P[~never] /= count[~never, None]
    if never.any():
        warnings.warn(
            f"{int(never.sum())} training points were in the bootstrap sample of every tree "
            f"of the {len(forest.estimators_)}; their in-sample probabilities stand in for "
            "out-of-bag ones. Use more trees.", UserWarning, stacklevel=3)
        P[never] = forest.predict_proba(Xf[never])
    return P


def oob_predict(model, X):
    """Out-of-bag predictions ``(n,)`` of a fitted bagged forest regressor (with one target).

    As :func:`oob_proba`: points in every tree's bootstrap sample get the forest's
    in-sample prediction, with a warning.
    """
    head, forest = bagged_forest(model)
    Xf = _features(head, X)
    n = Xf.shape[0]
    masks = _oob_masks(forest, n)
    pred = np.zeros(n)
    for tree, oob in zip(forest.estimators_, masks):
        if oob.any():
            pred[oob] += tree.predict(Xf[oob], check_input=False)
    count = masks.sum(axis=0)
    never = count == 0
    pred[~never] /= count[~never]
    if never.any():
        warnings.warn(
            f"{int(never.sum())} training points were in the bootstrap sample of every tree "
            f"of the {len(forest.estimators_)}; their in-sample predictions stand in for "
            "out-of-bag ones. Use more trees.", UserWarning, stacklevel=3)
        pred[never] = forest.predict(Xf[never])
    return pred


def oob_scores(model, X, y, classifier):
    """Per-point sums of the out-of-bag scores of the trees, their squares and counts.

    The score of a tree for a point is whether its prediction is the label
    (classifiers) or minus its squared error (regressors), as in Data-OOB.
    """
    head, forest = bagged_forest(model)
    Xf = _features(head, X)
    n = Xf.shape[0]
    masks = _oob_masks(forest, n)
    y = np.asarray(y)
    total, total_sq = np.zeros(n), np.zeros(n)
    for tree, oob in zip(forest.estimators_, masks):
        if not oob.any():
            continue
        if classifier:
            codes = np.argmax(tree.predict_proba(Xf[oob], check_input=False), axis=1)
            s = (forest.classes_[codes] == y[oob]).astype(np.float64)
        else:
            pred = tree.predict(Xf[oob], check_input=False)
            s = -((pred - y[oob].astype(np.float64)) ** 2)
        total[oob] += s
        total_sq[oob] += s**2
    return total, total_sq, masks.sum(axis=0).astype(np.float64)
