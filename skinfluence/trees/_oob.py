"""Out-of-bag predictions of a fitted bagged forest: out-of-sample, without any refit.

Each tree of a ``RandomForest*`` / ``ExtraTrees*`` fitted with ``bootstrap=True`` never saw
the points left out of its bootstrap sample (``estimators_samples_``); averaged over those
trees, its predictions for a point are out-of-sample, as cross-validated ones are, from
the one fit the user already has.  :func:`oob_proba` gives the class probabilities that
confident learning needs (:class:`~skinfluence.InfluenceCleaner`), :func:`oob_scores` the
per-tree scores Data-OOB averages (:class:`~skinfluence.valuation.DataOOB`).

:func:`all_tree_proba` adds the trees that did see a point, through each one's
leave-one-out prediction read from the fitted tree (``_oob_kernels.py``): lower variance
(every tree instead of ~37% of them) but biased towards the given label, as the read
keeps the splits the tree chose with the point.
"""

import warnings

import numpy as np
from sklearn.utils.validation import check_array

from ._oob_kernels import add_tree, tree_loo_counts
from ._structure import FORESTS

__all__ = ["all_tree_proba", "bagged_forest", "oob_proba", "oob_predict", "oob_scores"]


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


def _oob_masks(forest, n, samples=None):
    """(n_trees, n) True where the point is out of the tree's bootstrap sample
    (``samples``: ``forest.estimators_samples_``, which scikit-learn redraws on each read)."""
    if getattr(forest, "_n_samples", n) != n:
        raise ValueError(f"X has {n} samples; the forest was fitted on {forest._n_samples}: "
                         "out-of-bag predictions need the training data it was fitted on.")
    masks = np.ones((len(forest.estimators_), n), dtype=bool)
    for t, idx in enumerate(forest.estimators_samples_ if samples is None else samples):
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
    return _oob_mean(P, masks, forest, Xf)


def _oob_mean(P, masks, forest, Xf):
    """``P`` (the sums over each row's out-of-bag trees) divided by their counts; rows
    in every tree's bootstrap sample get the forest's in-sample probabilities, with a
    warning."""
    count = masks.sum(axis=0)
    never = count == 0
    P[~never] /= count[~never, None]
    if never.any():
        warnings.warn(
            f"{int(never.sum())} training points were in the bootstrap sample of every tree "
            f"of the {len(forest.estimators_)}; their in-sample probabilities stand in for "
            "out-of-bag ones. Use more trees.", UserWarning, stacklevel=4)
        P[never] = forest.predict_proba(Xf[never])
    return P


def _tree_weights(forest, codes, indices):
    """The rows' weights in the tree fitted on the bootstrap draw ``indices``: their counts
    in it, times the class weights of that draw for ``class_weight="balanced_subsample"``
    (scikit-learn >= 1.9 puts sample and other class weights into the draw instead)."""
    w = np.bincount(indices, minlength=codes.shape[0]).astype(np.float64)
    if forest.class_weight == "balanced_subsample":
        from sklearn.utils.class_weight import compute_sample_weight

        w *= compute_sample_weight("balanced", codes, indices=indices)
    return w


def all_tree_proba(model, X, codes):
    """Class probabilities of a fitted bagged forest classifier at its training rows from
    every tree: ``(P_all, P_oob)``, both ``(n, n_classes)``.

    A tree that left row ``i`` out gives its prediction at ``x_i``; a tree that saw it
    gives its leave-one-out class fractions read without regrowth
    (:func:`~skinfluence.trees._oob_kernels.tree_loo_counts`: the thresholds on the row's
    path that it alone placed moved as if placed without it, the leaf reached without the
    row's own weight).  ``P_all`` averages all trees, ``P_oob`` the out-of-bag ones
    (:func:`oob_proba`).  ``codes``: the rows' labels as indices into ``classes_``, those
    the forest was fitted on.  Returns ``(None, P_oob)`` with a warning when the leaves do
    not hold these rows with these labels and weights (a forest fitted on other data).
    """
    head, forest = bagged_forest(model)
    if getattr(forest.estimators_[0], "splitter", "best") != "best":
        raise ValueError(
            f"{type(forest).__name__} draws its split thresholds at random; the in-bag "
            "trees' leave-one-out read assumes thresholds placed midway between rows "
            "(RandomForestClassifier). Use the out-of-bag probabilities "
            "(InfluenceCleaner(forest_trees='out_of_bag')).")
    Xf = _features(head, X)
    n, K = Xf.shape[0], len(forest.classes_)
    samples = forest.estimators_samples_
    masks = _oob_masks(forest, n, samples)
    codes = np.ascontiguousarray(codes, dtype=np.intp)
    P_all, P_oob = np.zeros((n, K)), np.zeros((n, K))
    out, case = np.empty((n, K)), np.empty(n, dtype=np.intp)
    leaves = np.empty(n, dtype=np.intp)
    for tree, indices in zip(forest.estimators_, samples):
        t = tree.tree_
        counts = t.value[:, 0, :] * t.weighted_n_node_samples[:, None]
        w = _tree_weights(forest, codes, indices)
        tree_loo_counts(t.children_left, t.children_right, t.feature, t.threshold,
                        t.missing_go_to_left, counts, Xf, w, codes, out, case, leaves)
        # the leaves must hold exactly these rows' weights in their classes
        gap = add_tree(out, w, codes, leaves, counts, t.children_left, P_all, P_oob)
        if gap > 1e-9 * max(1.0, t.weighted_n_node_samples[0]):
            warnings.warn(
                "the forest's leaves do not hold these training rows with these labels and "
                "weights (was it fitted on this X and y?): the in-bag trees are left out "
                "and only the out-of-bag probabilities are used.", UserWarning, stacklevel=3)
            return None, oob_proba(model, X)
    P_all /= len(forest.estimators_)
    return P_all, _oob_mean(P_oob, masks, forest, Xf)


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
