"""Fitted scikit-learn trees and forests, read as the data and random streams they grew from.

:func:`read_tree_model` turns a fitted ``DecisionTree*``, ``ExtraTree*``, ``RandomForest*``
or ``ExtraTrees*`` (or a Pipeline ending in one) and its training data into a
:class:`TreeEnsemble`: the float32 features the trees split on, the encoded targets, and
for every tree the sample weights it was grown with (sample and class weights, bootstrap
counts from ``estimators_samples_``) and the initial state of its splitter's random
stream.  Every tree is then regrown by the replica of :mod:`._builder` and compared with
``tree_`` node for node: a model not fitted on this data, or grown in a way the replica
does not follow, is refused here rather than explained wrongly.
"""

import numbers

import numpy as np
from sklearn.base import is_classifier
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import BaseDecisionTree
from sklearn.utils import compute_sample_weight
from sklearn.utils.validation import _check_sample_weight, check_array, check_is_fitted

from . import _builder as B
from . import _forest_kernels as K

__all__ = ["FORESTS", "TreeEnsemble", "is_tree_model", "read_tree_model"]

FORESTS = (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier,
           ExtraTreesRegressor)
_CRITERIA = {"squared_error": B.MSE, "gini": B.GINI, "entropy": B.ENTROPY,
             "log_loss": B.ENTROPY}
_SUPPORTED = ("DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, "
              "ExtraTreeRegressor, RandomForestClassifier, RandomForestRegressor, "
              "ExtraTreesClassifier and ExtraTreesRegressor")


def _final_step(model):
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def is_tree_model(model):
    """Whether ``model`` (or a Pipeline's last step) is a tree or forest of scikit-learn."""
    final = _final_step(getattr(model, "estimator", model) if _is_frozen(model) else model)
    return isinstance(final, (BaseDecisionTree,) + FORESTS)


def _is_frozen(model):
    return type(model).__name__ == "FrozenEstimator"


def _check_supported(model, trees):
    """Refuse, naming what is supported, the settings the replica does not reproduce."""
    name = type(model).__name__
    if not isinstance(model, (BaseDecisionTree,) + FORESTS):
        raise TypeError(f"{name} is not a tree model; supported: {_SUPPORTED}.")
    first = trees[0]
    if first.criterion not in _CRITERIA:
        raise NotImplementedError(
            f"{name}(criterion={first.criterion!r}) is not supported: tree influence "
            f"supports criterion in {sorted(_CRITERIA)}.")
    unsupported = {
        "monotonic_cst": first.monotonic_cst is not None,
        "max_leaf_nodes": first.max_leaf_nodes is not None,  # best-first growth
        "ccp_alpha": first.ccp_alpha != 0.0,  # pruning after growth
    }
    for param, bad in unsupported.items():
        if bad:
            raise NotImplementedError(
                f"{name}({param}={getattr(first, param)!r}) is not supported by tree "
                f"influence; supported: depth-first trees with max_depth, min_samples_*, "
                f"min_weight_fraction_leaf, min_impurity_decrease, max_features, "
                f"class_weight (dict or list) and sample weights, {param} left at its "
                f"default.")
    class_weight = getattr(model, "class_weight", None)
    if isinstance(class_weight, str):
        raise NotImplementedError(
            f"{name}(class_weight={class_weight!r}) is not supported: its weights are "
            "recomputed from the class counts, so removing one point reweights every "
            "other; pass the weights as a dict (class_weight={label: weight}).")


def _seed(tree, name):
    """The initial ``rand_r_state`` of the tree's splitter (``randint(0, RAND_R_MAX)``)."""
    rs = tree.random_state
    if isinstance(rs, numbers.Integral):
        return int(np.random.RandomState(rs).randint(0, B.RAND_R_MAX)), True
    return 0, False


class TreeRecord:
    """One tree as the replica grew it, with what a replay without a point reads.

    ``tree`` = (ints, flts, value, subtree ends) (see :mod:`._forest_kernels`); ``rec``:
    each node's entry state; ``cache``: its cached split statistics (empty arrays when
    not kept); ``mode``: the mode bits of a replay.
    """

    def __init__(self, tree, rec, cache, mode):
        self.tree, self.rec, self.cache, self.mode = tree, rec, cache, mode

    @property
    def ints(self):
        return self.tree[0]

    @property
    def flts(self):
        return self.tree[1]

    @property
    def value(self):
        return self.tree[2]

    @property
    def n_nodes(self):
        return self.tree[0].shape[0]


def _empty_cache(d):
    return (np.zeros((0, d), np.intp), np.zeros((0, d, 4)), np.zeros(0, np.intp),
            np.zeros((0, 6)))


def _empty_rec(d):
    e = np.zeros(0, np.intp)
    return (np.zeros(0, np.int64), np.zeros((0, d), np.intp), e, e, e)


class TreeEnsemble:
    """The trees of a fitted tree model and what each was grown from.

    Attributes
    ----------
    model : estimator
        The fitted tree or forest (a Pipeline's last step).
    is_forest, classifier : bool
    X : ndarray of shape (n_train, n_features), float32
        Features the trees split on.
    Y : ndarray of shape (n_train, n_outputs), float64
        Targets; class codes ``0..n_classes-1`` for classifiers.
    n_classes : ndarray of int, shape (n_outputs,)
        Ones for regressors.
    classes : list of ndarray or None
        Class labels of each output (classifiers).
    weights : ndarray of shape (n_trees, n_train)
        The sample weights each tree was grown with (zero: not in its bootstrap sample).
    seeds : ndarray of int64, shape (n_trees,)
    deterministic : bool
        Whether the fitted model is a function of the data alone (no bootstrap, every
        feature a candidate at every node, best splits): then a replay without a point is
        scikit-learn's own refit without it; otherwise it is the refit with the same
        random draws (bootstrap samples, feature subsets, thresholds) without the point.
    records : list of TreeRecord
    """

    def __init__(self, model, X, y, sample_weight, replay=True):
        check_is_fitted(model)
        trees = list(model.estimators_) if isinstance(model, FORESTS) else [model]
        _check_supported(model, trees)
        self.model = model
        self.is_forest = isinstance(model, FORESTS)
        self.classifier = is_classifier(model)
        self.X = np.ascontiguousarray(check_array(X, dtype=np.float32), dtype=np.float32)
        if self.X.shape[1] != trees[0].n_features_in_:
            raise ValueError(f"X has {self.X.shape[1]} features; the model was fitted on "
                             f"{trees[0].n_features_in_}.")
        n = self.X.shape[0]
        self._encode_targets(y, n)
        sw = None if sample_weight is None else _check_sample_weight(sample_weight, self.X)
        self.weights = self._tree_weights(trees, sw, n)
        first = trees[0]
        self.crit = _CRITERIA[first.criterion]
        self.splitter = B.BEST if first.splitter == "best" else B.RANDOM
        self.max_features = int(first.max_features_)
        self._tree_params = first
        self.max_depth = np.iinfo(np.int32).max if first.max_depth is None else first.max_depth
        self.min_impurity_decrease = float(first.min_impurity_decrease)
        self.bootstrap = self.is_forest and bool(model.bootstrap)
        self.deterministic = (not self.bootstrap and self.splitter == B.BEST
                              and self.max_features >= self.X.shape[1])
        seeds = [_seed(t, type(model).__name__) for t in trees]
        self.seeds = np.array([s for s, _ in seeds], dtype=np.int64)
        self._seeded = all(ok for _, ok in seeds)
        if replay:
            self.records = [self._record(t, i) for i, t in enumerate(trees)]
        else:  # the fitted arrays as they are: enough to keep the splits
            self.records = [self._fitted(t) for t in trees]

    # ------------------------------------------------------------ reading
    def _encode_targets(self, y, n):
        y = np.asarray(y)
        if y.shape[0] != n:
            raise ValueError(f"X has {n} samples but y has {y.shape[0]}.")
        Y = y.reshape(n, -1)
        self.n_outputs = Y.shape[1]
        if self.n_outputs != self.model.n_outputs_:
            raise ValueError(f"y has {self.n_outputs} outputs; the model has "
                             f"{self.model.n_outputs_}.")
        if not self.classifier:
            self.Y = np.ascontiguousarray(Y, dtype=np.float64)
            self.n_classes = np.ones(self.n_outputs, dtype=np.intp)
            self.classes = None
            return
        classes = self.model.classes_
        classes = [classes] if self.n_outputs == 1 else list(classes)
        codes = np.empty(Y.shape, dtype=np.float64)
        for k, ck in enumerate(classes):
            pos = np.searchsorted(ck, Y[:, k])
            pos = np.minimum(pos, len(ck) - 1)
            if not np.all(ck[pos] == Y[:, k]):
                raise ValueError("y has labels the model was not fitted on.")
            codes[:, k] = pos
        self.Y = codes
        self.classes = classes
        self.n_classes = np.array([len(c) for c in classes], dtype=np.intp)

    def _tree_weights(self, trees, sw, n):
        base = np.ones(n) if sw is None else np.asarray(sw, dtype=np.float64)
        class_weight = getattr(self.model, "class_weight", None)
        if class_weight is not None:
            labels = self.Y if self.classes is None else np.column_stack(
                [c[self.Y[:, k].astype(np.intp)] for k, c in enumerate(self.classes)])
            cw = compute_sample_weight(class_weight, labels.reshape(n, -1).squeeze())
            base = base * cw
        if not (self.is_forest and self.model.bootstrap):
            return np.tile(base, (len(trees), 1))
        # bootstrap: a tree is grown on its draw counts (sample and class weights only
        # shape the draw probabilities)
        return np.array([np.bincount(idx, minlength=n).astype(np.float64)
                         for idx in self.model.estimators_samples_])

    def min_samples(self, n):
        """(min_samples_leaf, min_samples_split) as scikit-learn resolves them for ``n`` rows."""
        t = self._tree_params
        msl = t.min_samples_leaf
        if not isinstance(msl, numbers.Integral):
            msl = int(np.ceil(msl * n))
        mss = t.min_samples_split
        if not isinstance(mss, numbers.Integral):
            mss = max(2, int(np.ceil(mss * n)))
        return int(msl), int(max(mss, 2 * msl))

    @property
    def min_weight_fraction(self):
        return float(self._tree_params.min_weight_fraction_leaf)

    def _exact_sums(self, w):
        """Whether every sum the criterion forms is an exact float (integer data)."""
        if not np.all(w == np.round(w)):
            return False
        if self.classifier:
            return True
        Y = self.Y
        return bool(np.all(Y == np.round(Y)) and
                    np.max(np.abs(Y)) ** 2 * max(w.sum(), 1.0) < 2.0 ** 50)

    def _robust_ok(self, w):
        """Whether order-robust subtrees can be taken (:func:`~._forest_kernels.grow`,
        ``ROBUST``): squared error, and non-negative integer weights (exact weight sums,
        each weight in a node at least 1), on which its rounding bounds rest."""
        return bool(self.crit == B.MSE and np.all(w == np.round(w)) and np.all(w >= 0)
                    and w.sum() < 2.0 ** 50)

    def iprm(self, n_rows, mode):
        """The integer parameters of :func:`~._forest_kernels.grow` for ``n_rows`` rows."""
        msl, mss = self.min_samples(n_rows)
        return np.array([self.crit, self.splitter, self.max_features, msl, mss,
                         self.max_depth, mode, -1], dtype=np.int64)

    def grow(self, t, w, n_rows, mode=0, rec=None, cache=None):
        """Grow tree ``t`` on weights ``w``: ``(ints, flts, value, cache_ok)``."""
        n, d = self.X.shape
        fprm = np.array([self.min_weight_fraction * float(np.sum(w)),
                         self.min_impurity_decrease, 0.0])
        cap = 2 * n + 1
        ints = np.empty((cap, 4), dtype=np.intp)
        flts = np.empty((cap, 3))
        value = np.empty((cap, self.n_outputs, int(self.n_classes.max())))
        orig = (ints, flts, value, np.zeros(0, np.intp))
        nn, _, _, cache_ok, _, _ = K.grow(
            self.X, self.Y, w, self.n_classes, self.iprm(n_rows, mode), fprm, self.seeds[t],
            ints, flts, value, _empty_rec(d) if rec is None else rec, orig,
            np.zeros(0, np.bool_), _empty_cache(d) if cache is None else cache)
        return ints[:nn].copy(), flts[:nn].copy(), value[:nn].copy(), cache_ok

    def _has_stats(self):
        """Whether each node's split statistics are kept: best splits, and leaf sizes that
        do not depend on the number of rows (removing a row admits no new threshold)."""
        t = self._tree_params
        return (self.splitter == B.BEST and self.min_weight_fraction == 0.0
                and isinstance(t.min_samples_leaf, numbers.Integral)
                and isinstance(t.min_samples_split, numbers.Integral))

    def _record(self, tree, t):
        """Regrow tree ``t``, check it is the fitted one, and keep what replays read."""
        w = self.weights[t]
        n, d = self.X.shape
        ints, flts, value, _ = self.grow(t, w, n)
        if not _same_tree(tree.tree_, ints, flts, value):
            raise ValueError(self._mismatch_message())
        exact = self._exact_sums(w)
        # statistics bound the proxies (pruning, any sums); they pick splits only when exact
        cacheable = self._has_stats()
        nn = ints.shape[0]
        order_size = 0 if exact else int(ints[:, 3].sum())
        rec = (np.zeros(2 * n + 2, np.int64), np.zeros((2 * n + 2, d), np.intp),
               np.zeros(2 * n + 1, np.intp), np.zeros(order_size, np.intp),
               np.zeros(2 * n + 1, np.intp))
        cache = _empty_cache(d)
        if cacheable:
            cache = (np.zeros((nn, d), np.intp), np.zeros((nn, d, 4)),
                     np.zeros(nn, np.intp), np.zeros((nn, 6)))
        mode = K.RECORD | (K.CACHE if cacheable else 0) | (K.EXACT_SUMS if exact else 0)
        _, _, _, cache_ok = self.grow(t, w, n, mode=mode, rec=rec, cache=cache)
        rec = (rec[0][:nn + 1].copy(), rec[1][:nn + 1].copy(), rec[2][:nn].copy(), rec[3],
               rec[4][:nn].copy())
        mode = K.REPLAY | (K.EXACT_SUMS if exact else 0)
        if cacheable:
            mode |= K.PRUNE
            if exact and cache_ok:
                mode |= K.CACHE
            if not exact and self._robust_ok(w):
                mode |= K.ROBUST
        else:
            cache = _empty_cache(d)
        return TreeRecord((ints, flts, value, K.subtree_ends(ints, nn)), rec, cache, mode)

    def _fitted(self, tree):
        """A record of the fitted ``tree_`` without replay state (no regrowing)."""
        t = tree.tree_
        ints = np.ascontiguousarray(np.column_stack(
            [t.children_left, t.children_right, t.feature, t.n_node_samples]), dtype=np.intp)
        flts = np.ascontiguousarray(np.column_stack(
            [t.threshold, t.impurity, t.weighted_n_node_samples]), dtype=np.float64)
        value = np.ascontiguousarray(t.value[:, :, :int(self.n_classes.max())], np.float64)
        d = self.X.shape[1]
        return TreeRecord((ints, flts, value, K.subtree_ends(ints, ints.shape[0])),
                          _empty_rec(d), _empty_cache(d), K.REPLAY)

    def _mismatch_message(self):
        name = type(self.model).__name__
        if not self._seeded:
            drawn = ["the choice between equally good splits"]
            if self.max_features < self.X.shape[1]:
                drawn.append(f"the feature subsets (max_features={self.max_features})")
            if self.splitter == B.RANDOM:
                drawn.append("the random thresholds (splitter='random')")
            return (
                f"{name} was fitted with random_state={self._tree_params.random_state!r}: "
                "scikit-learn took "
                f"{', '.join(drawn)} from a random stream it does not keep, and the tree "
                "regrown from the data with a known stream is a different tree, so the "
                "refit without a point is not defined for it. Refit it with an integer "
                f"random_state and explain that model: pass {name}(..., random_state=0) "
                "unfitted "
                "(or model.set_params(random_state=0).fit(X, y) wrapped in "
                "FrozenEstimator). approximation='fixed_structure' explains the fitted "
                "tree as it is, with every split kept.")
        return (f"{name} could not be regrown from the data passed to fit: pass exactly the "
                "X, y and sample_weight it was fitted on (a model fitted on other data, with "
                "missing values or with sparse input is not supported).")

    def ensure_writable(self):
        """Copy arrays that came back read-only (e.g. unpickled from a read-only memmap):
        the kernels are compiled for writable arrays."""
        def own(a):
            return a if a.flags.writeable else a.copy()

        for name in ("X", "Y", "n_classes", "weights", "seeds"):
            setattr(self, name, own(getattr(self, name)))
        for r in self.records:
            r.tree, r.rec, r.cache = (tuple(own(a) for a in group)
                                      for group in (r.tree, r.rec, r.cache))
        return self

    @property
    def n_trees(self):
        return len(self.records)

    @property
    def n_train(self):
        return self.X.shape[0]


def _same_tree(tree_, ints, flts, value):
    """Node-for-node equality of a grown tree with scikit-learn's ``tree_``."""
    if ints.shape[0] != tree_.node_count:
        return False
    return bool(np.array_equal(ints[:, 0], tree_.children_left)
                and np.array_equal(ints[:, 1], tree_.children_right)
                and np.array_equal(ints[:, 2], tree_.feature)
                and np.array_equal(flts[:, 0], tree_.threshold)
                and np.array_equal(ints[:, 3], tree_.n_node_samples)
                and np.allclose(value, tree_.value[:, :, :value.shape[2]], rtol=0,
                                atol=1e-12))


def read_tree_model(model, X, y, sample_weight=None, replay=True):
    """The :class:`TreeEnsemble` of a fitted tree model and its training data.

    ``replay=False`` reads the fitted trees' arrays only (fixed-structure removal): no
    regrowing, no check that the trees were grown from this data.  Sparse ``X`` is
    densified: the replica grows trees as the dense splitter does, and the node-for-node
    check refuses a tree that scikit-learn's sparse splitter grew otherwise.
    """
    if hasattr(X, "toarray"):
        X = X.toarray()
    if np.isnan(np.asarray(X, dtype=np.float64)).any():
        raise ValueError(
            f"Input X contains NaN: {type(model).__name__} splits on missing values, and "
            "tree influence does not replay those splits; impute them first.")
    return TreeEnsemble(model, X, y, sample_weight, replay=replay)
