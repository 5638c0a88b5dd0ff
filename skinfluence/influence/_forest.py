"""Removal of training points from decision trees and forests.

:class:`InfluenceFunctions` hands a fitted ``DecisionTree*``, ``ExtraTree*``,
``RandomForest*`` or ``ExtraTrees*`` (or a Pipeline ending in one) to this module.  A tree
has no parameter vector to perturb; removing point ``j`` changes the trees themselves.
Two approximations of that change, behind the names the estimator uses for its removals:

* ``"exact"`` (:func:`~skinfluence.trees._forest_kernels.replay_deltas`): every tree that
  saw ``j`` is regrown without it by a replica of scikit-learn's builder.  At each node on
  ``j``'s path the split is recomputed without ``j`` (the candidate thresholds, the
  ``min_samples_leaf`` / ``min_weight_fraction_leaf`` / ``max_depth`` /
  ``min_impurity_decrease`` rules and the tie-breaking by scikit-learn's random feature
  order all replayed); where it survives the walk goes on into ``j``'s child, where it
  changes the subtree is regrown, and every subtree scikit-learn would grow identically
  (same samples, same random stream and feature permutation on entry) is copied, the idea
  of data-removal-enabled forests (Brophy & Lowd, ICML 2021); at a re-evaluated node the
  features whose cached best split, plus a bound on what one row's removal can add to a
  split's score, cannot beat the original split's feature are not scanned (the same
  numbers, see ``trees._forest_kernels._prunable``).  In forests, a subtree whose samples
  only came in another order (tied feature values re-sorted) is kept as fitted where every
  decision in it exceeds a proven bound on the rounding of its sums
  (``ForestRemoval.robust``): the same splits, leaf values to a few ulps.  When the
  fitted model is a function of the data alone (single trees and ``bootstrap=False``
  forests with best splits over all features) this is scikit-learn's refit without ``j``,
  to rounding.
  Otherwise it is the refit with the same random draws (bootstrap samples, feature
  subsets, random thresholds) without ``j``: one draw of the random refit, whose
  expectation is the leave-one-out effect (``benchmarks/fidelity_trees.py`` measures both).
* ``"fixed_structure"`` (:func:`~skinfluence.trees._forest_kernels.leaf_deltas`): every
  split is kept and only the value of the leaf holding ``j`` is recomputed without it
  (the nearest ancestor that keeps weight when ``j`` was alone in its leaf).  Cheap for
  the whole influence matrix; it ignores the splits that move when ``j`` leaves, which
  dominate the effect of a removal (see the user guide for measured fidelity).

Losses: half the squared error summed over outputs for regressors (the convention of the
linear models), the log-loss of ``predict_proba`` for classifiers, probabilities clipped to
``[eps, 1 - eps]`` as :func:`sklearn.metrics.log_loss` does (summed over outputs).
"""

import numpy as np
from sklearn.utils.validation import check_array

from ..base import run_blocks
from ..trees._forest_kernels import PRUNE, ROBUST, leaf_deltas, replay_deltas
from ..trees._structure import is_tree_model, read_tree_model
from ..utils._parallel import chunk_slices, effective_n_jobs
from ..utils._output import row_labels
from ._base import SelfSide
from ._boosting import APPROXIMATIONS as BOOSTING_APPROXIMATIONS

__all__ = ["ForestRemoval", "TREE_APPROXIMATIONS", "check_approximation", "fit_tree_model",
           "is_tree_model"]

TREE_APPROXIMATIONS = ("exact", "fixed_structure")
# Training points per chunk of transform / explain at most
_MAX_CHUNK_POINTS = 256
_BLOCK_ENTRIES = 1 << 22
_EPS = np.finfo(np.float64).eps


def _split_pipeline(model):
    """(feature map or None, final tree model) of a model or a Pipeline ending in one."""
    steps = getattr(model, "steps", None)
    if steps:
        return model[:-1], steps[-1][1]
    return None, model


class TreeModelView:
    """What :class:`InfluenceFunctions` asks of the model: its features, outputs and targets.

    Stands where linear models have their objective (``objective_``).  Outputs are the
    fitted model's ``predict_proba`` (classifiers) or ``predict`` (regressors), shaped
    ``(n, n_outputs, n_columns)``.
    """

    def __init__(self, estimator, ensemble, head):
        self.estimator = estimator
        self.ensemble = ensemble
        self._head = head
        self.n_train = ensemble.n_train
        self.classifier = ensemble.classifier
        self.n_outputs = ensemble.n_outputs
        self.n_columns = int(ensemble.n_classes.max())

    @property
    def n_params(self):
        raise TypeError(
            f"{type(self.ensemble.model).__name__} has no parameter vector: removing a point "
            "changes its trees. Use transform/explain for its effect on losses and outputs.")

    def features(self, X):
        Xf = X if self._head is None else self._head.transform(X)
        if hasattr(Xf, "toarray"):  # the trees are replayed on dense features
            Xf = Xf.toarray()
        Xf = check_array(Xf, dtype=np.float32, ensure_all_finite=True)
        if Xf.shape[1] != self.ensemble.X.shape[1]:
            raise ValueError(f"X has {Xf.shape[1]} features, but the model is expecting "
                             f"{self.ensemble.X.shape[1]} features as input.")
        return np.ascontiguousarray(Xf, dtype=np.float32)

    def outputs(self, Xf):
        model, n = self.ensemble.model, Xf.shape[0]
        out = np.zeros((n, self.n_outputs, self.n_columns))
        if not self.classifier:
            out[:, :, 0] = np.asarray(model.predict(Xf), dtype=np.float64).reshape(n, -1)
            return out
        proba = model.predict_proba(Xf)
        proba = [proba] if self.n_outputs == 1 else proba
        for k, p in enumerate(proba):
            out[:, k, :p.shape[1]] = p
        return out

    def encode_target(self, y):
        ens = self.ensemble
        y = np.asarray(y)
        Y = y.reshape(y.shape[0], -1)
        if Y.shape[1] != self.n_outputs:
            raise ValueError(f"y has {Y.shape[1]} outputs; the model has {self.n_outputs}.")
        if not self.classifier:
            return Y.astype(np.float64)
        codes = np.empty(Y.shape, dtype=np.intp)
        for k, ck in enumerate(ens.classes):
            pos = np.minimum(np.searchsorted(ck, Y[:, k]), len(ck) - 1)
            if not np.all(ck[pos] == Y[:, k]):
                raise ValueError(f"y has labels the model was not fitted on: "
                                 f"{np.setdiff1d(Y[:, k], ck)!r}.")
            codes[:, k] = pos
        return codes

    def prediction_from_outputs(self, Z):
        """A regressor's predictions from outputs ``(n, n_outputs, 1)``: ``(n,)`` for one
        output, else ``(n, n_outputs)``."""
        return Z[:, 0, 0] if self.n_outputs == 1 else Z[:, :, 0]

    def proba_from_outputs(self, Z):
        return Z[:, 0, :] if self.n_outputs == 1 else [Z[:, k] for k in range(self.n_outputs)]


class ForestRemoval:
    """Changes of a tree model's outputs when each training point is removed.

    Parameters
    ----------
    ensemble : skinfluence.trees._structure.TreeEnsemble
    approximation : {"exact", "fixed_structure"}
    n_jobs : int, default=None
        Threads of :meth:`self_side` (its chunks of training points).
    verbose : int, default=0

    Attributes
    ----------
    changed : ndarray of shape (n_train, n_trees) of bool
        After :meth:`self_side` with ``"exact"``: whether the tree regrown without each
        point has other splits than the fitted tree (False for trees that did not see it).
    evaluated : ndarray of int
        After :meth:`deltas` with ``"exact"``: nodes evaluated in full for each point,
        summed over the trees (the rest were copied or picked from cached statistics).
    pruned : ndarray of int
        After :meth:`deltas` with ``"exact"``: features at those nodes whose thresholds
        were not scanned again for each point (bounded out, or the scan reused), summed
        over the trees.
    robust_nodes : ndarray of int
        After :meth:`deltas` with ``"exact"``: nodes taken from the fitted tree because
        scikit-learn's decisions in their subtree hold whatever order their sums are
        formed in (see :attr:`robust`), for each point, summed over the trees.
    """

    refined = {}
    leverages = None
    cached = False
    # "exact": skip the features that provably cannot win at a node on the removed point's
    # path (False re-scores every feature: the same numbers, for tests and benchmarks)
    prune = True
    # "exact", forests with a squared-error criterion, integer weights and a float target:
    # a subtree whose samples did not change but come in another order (tied feature
    # values re-sorted) is taken as fitted when every decision in it (split margins,
    # stopping tests) exceeds a proven bound on the rounding of its sums, instead of being
    # regrown in scikit-learn's order (``trees._forest_kernels._robust_walk``).  Its splits
    # are then the refit's and its leaf values the refit's up to that rounding (a few ulps
    # of the target), as the mean over the trees already is.  None: on for forests, off
    # for a single tree (which stays equal to its refit to the bit); False: the bit-exact
    # replay everywhere.
    robust = None

    def __init__(self, ensemble, approximation, n_jobs=None, verbose=0):
        self.ensemble = ensemble
        self.approximation = approximation
        self.n_jobs = n_jobs
        self.verbose = verbose
        self._self_side = None
        self.changed = None
        self.evaluated = None
        self.pruned = None
        self.robust_nodes = None

    def ensure_cached(self):
        return False

    def blocks(self, explainer):
        """The influence blocks of ``transform`` / ``explain`` over this removal, run by
        ``explainer``'s block runner."""
        return ForestBlocks(self, explainer)

    def directions(self, cols):
        raise TypeError("tree models have no parameter vector; see transform/explain.")

    def deltas(self, Xq, sel, js, diag=False, changed=None):
        """Mean change over the trees of the outputs ``sel`` at ``Xq`` without each ``js``.

        Returns ``(len(js), n_queries, n_outputs, n_cols)`` (``n_queries = 1`` with
        ``diag``: query ``a`` is ``js[a]``'s own row ``Xq[a]``); ``sel`` is
        ``(n_queries, n_outputs, n_cols)``, the output columns to follow.
        """
        ens = self.ensemble.ensure_writable()
        js = np.ascontiguousarray(js, dtype=np.intp)
        sel = np.ascontiguousarray(sel, dtype=np.intp)
        Xq = np.require(Xq, dtype=np.float32, requirements=["C", "W"])
        m = js.shape[0]
        out = np.zeros((m, 1 if diag else Xq.shape[0], ens.n_outputs, sel.shape[2]))
        if changed is None:
            changed = np.zeros((m, ens.n_trees), dtype=np.bool_)
        evaluated = np.zeros((m, 3), dtype=np.intp)
        robust = ens.is_forest if self.robust is None else self.robust
        n_rows = ens.n_train - 1
        for t, r in enumerate(ens.records):
            w = ens.weights[t].copy()  # the replay zeroes w[j] in place
            if self.approximation == "fixed_structure":
                leaf_deltas(r.ints, r.flts, r.value, ens.X, ens.Y, w, ens.classifier, js, Xq,
                            sel, diag, out)
                continue
            flag = np.zeros(m, dtype=np.bool_)
            mode = r.mode if self.prune else r.mode & ~PRUNE
            mode = mode if robust else mode & ~ROBUST
            replay_deltas(ens.X, ens.Y, w, ens.n_classes, ens.iprm(n_rows, mode),
                          ens.min_weight_fraction, ens.min_impurity_decrease, ens.seeds[t],
                          r.tree, r.rec, r.cache, js, Xq, sel, diag, out, flag, evaluated)
            changed[:, t] |= flag
        self.evaluated, self.pruned = evaluated[:, 0], evaluated[:, 1]
        self.robust_nodes = evaluated[:, 2]
        out /= ens.n_trees
        return out

    def self_side(self):
        """Leave-one-out outputs ``(n, n_outputs, n_cols)`` and self-influence of the
        training points (computed on first use: it regrows every tree once per point)."""
        if self._self_side is not None:
            return self._self_side
        ens = self.ensemble
        n, n_cols = ens.n_train, int(ens.n_classes.max())
        sel = np.broadcast_to(np.arange(n_cols), (n, ens.n_outputs, n_cols))
        if not ens.classifier:
            sel = np.zeros((n, ens.n_outputs, 1), dtype=np.intp)
        sel = np.ascontiguousarray(sel, dtype=np.intp)
        self.changed = np.zeros((n, ens.n_trees), dtype=np.bool_)
        D = np.empty((n, ens.n_outputs, sel.shape[2]))

        def own(cols):
            js = np.arange(cols.start, cols.stop)
            return cols, self.deltas(ens.X[cols], sel[cols], js, diag=True,
                                     changed=self.changed[cols])[:, 0]

        size = max(1, min(256, -(-n // (4 * effective_n_jobs(self.n_jobs)))))
        for cols, d in run_blocks(own, chunk_slices(n, size), "self-influence",
                                  self.n_jobs, self.verbose):
            D[cols] = d
        Z = self._train_outputs()
        loo = Z + D
        y = ens.Y.astype(np.intp) if ens.classifier else ens.Y
        self_influence = loss_change(Z, y, loo - Z, ens.classifier)
        self._self_side = SelfSide(loo, self_influence)
        return self._self_side

    def _train_outputs(self):
        ens = self.ensemble
        return TreeModelView(None, ens, None).outputs(ens.X)


def _selected(Z0, y_enc, n_classes, classifier):
    """Columns followed per query and output, ``(n, n_outputs, 1)``: the true class (with
    ``y``), else the predicted class (the positive class of a binary output); 0 for
    regressors."""
    n, n_out = Z0.shape[:2]
    if not classifier:
        return np.zeros((n, n_out, 1), dtype=np.intp)
    if y_enc is not None:
        return np.ascontiguousarray(y_enc.reshape(n, n_out, 1), dtype=np.intp)
    pred = np.argmax(Z0, axis=2)
    pred[:, n_classes == 2] = 1
    return np.ascontiguousarray(pred[:, :, None], dtype=np.intp)


def loss_change(Z0, y, D, classifier):
    """Change of each sample's loss when its outputs move from ``Z0`` by ``D`` (n, n_out, C).

    Classifiers: ``y`` are class codes; ``Z0`` and ``D`` hold either every class column
    or (``C == 1``) only the column of the true class.
    """
    n, n_out = D.shape[:2]
    if not classifier:
        r = Z0[:, :, 0] - y.reshape(n, n_out)
        d = D[:, :, 0]
        return (d * r + 0.5 * d * d).sum(axis=1)
    codes = y.reshape(n, n_out)
    if D.shape[2] > 1:  # all class columns: follow the true class
        rows = np.arange(n)[:, None]
        outs = np.arange(n_out)[None, :]
        p0, d = Z0[rows, outs, codes], D[rows, outs, codes]
    else:
        p0, d = Z0[:, :, 0], D[:, :, 0]
    before = np.clip(p0, _EPS, 1 - _EPS)
    after = np.clip(p0 + d, _EPS, 1 - _EPS)
    return (np.log(before) - np.log(after)).sum(axis=1)


class ForestBlocks:
    """``transform``, ``explain`` blocks and column sums of a :class:`ForestRemoval`, in
    chunks of training points run by the explainer's
    :meth:`~skinfluence.base.BaseExplainer._run_blocks` (threads under ``n_jobs``; the
    kernels release the GIL)."""

    def __init__(self, removal, explainer):
        self.removal = removal
        self.explainer = explainer

    def query_side(self, n_queries, y):
        return False

    def column_chunks(self, n_queries):
        """Chunks of training points whose blocks over ``n_queries`` queries stay small."""
        ens = self.removal.ensemble
        size = max(16, _BLOCK_ENTRIES // max(n_queries * ens.n_outputs, 1))
        # a point regrows every tree that saw it: small chunks keep the progress moving and
        # the threads busy.  The chunks do not depend on n_jobs: explain's order of equal
        # values follows them, and must not change with the thread count.
        size = min(size, _MAX_CHUNK_POINTS)
        return chunk_slices(ens.n_train, size)

    def block(self, Xf, Z0, y_enc, cols):
        """Influence values (n_queries, m) of training points ``cols``."""
        ens = self.removal.ensemble
        sel = _selected(Z0, y_enc, ens.n_classes, ens.classifier)
        js = np.arange(cols.start, cols.stop)
        D = self.removal.deltas(Xf, sel, js)  # (m, n, n_out, 1)
        if y_enc is None:  # change of the followed output, averaged over outputs
            return D[:, :, :, 0].mean(axis=2).T.copy()
        Zs = np.take_along_axis(Z0, sel, axis=2)
        out = np.empty((Xf.shape[0], js.shape[0]))
        for a in range(js.shape[0]):
            out[:, a] = loss_change(Zs, y_enc, D[a], ens.classifier)
        return out

    def _map(self, func, n_queries, desc):
        return self.explainer._run_blocks(func, self.column_chunks(n_queries), desc)

    def transform(self, Xf, Z0, y_enc, out=None):
        """The influence matrix (n_queries, n_train), written into ``out`` when given."""
        if out is None:
            out = np.empty((Xf.shape[0], self.removal.ensemble.n_train))

        def fill(cols):
            return cols, self.block(Xf, Z0, y_enc, cols)

        for cols, vals in self._map(fill, Xf.shape[0], "influence"):
            out[:, cols] = vals
        return out

    def explain(self, Xf, Z0, y_enc, k):
        """Top-``k`` helpful and harmful training points of each query (the explain Bunch)."""
        n = Xf.shape[0]
        return self.explainer._explain_blocks(lambda cols: self.block(Xf, Z0, y_enc, cols),
                                              self.column_chunks(n), n,
                                              self.removal.ensemble.n_train, k)

    def column_sums(self, Xf, Z0, y_enc, desc="values"):
        total = np.zeros(self.removal.ensemble.n_train)

        def sums(cols):
            return cols, self.block(Xf, Z0, y_enc, cols).sum(axis=0)

        for cols, s in self._map(sums, Xf.shape[0], desc):
            total[cols] = s
        return total


def check_approximation(approximation, tree, boosted=False):
    """``approximation`` resolved for a tree model (``tree``) or refused for another model
    (``boosted``: a gradient-boosted one), naming the approximations of the model given."""
    if tree:
        if approximation in ("newton", "first_order") + BOOSTING_APPROXIMATIONS:
            what = ("applies to gradient-boosted trees" if approximation in
                    BOOSTING_APPROXIMATIONS else "needs a model with parameters")
            raise ValueError(
                f"approximation={approximation!r} {what}; for trees and forests use one of "
                f"{('auto',) + TREE_APPROXIMATIONS}.")
        return "exact" if approximation == "auto" else approximation
    if approximation in TREE_APPROXIMATIONS:
        use = ("'auto', 'leaf_refit', 'leaf_influence' or 'boostin' (gradient boosting)"
               if boosted else "'auto', 'newton' or 'first_order'")
        raise ValueError(f"approximation={approximation!r} applies to trees and forests only; "
                         f"use {use}.")
    return approximation


def fit_tree_model(influence, fitted, X, y, sample_weight):
    """Set up ``influence`` (an :class:`InfluenceFunctions`) for a fitted tree model."""
    head, model = _split_pipeline(fitted)
    Xf = X if head is None else head.transform(X)
    influence.approximation_ = check_approximation(influence.approximation, tree=True)
    ensemble = read_tree_model(model, Xf, y, sample_weight,
                               replay=influence.approximation_ == "exact")
    influence.objective_ = TreeModelView(fitted, ensemble, head)
    influence.solver_ = None
    influence.solver_info_ = {"solver": None}
    influence.n_iter_ = 1  # direct: no iterative solve
    influence.refined_indices_ = np.array([], dtype=np.intp)
    influence._removal = ForestRemoval(ensemble, influence.approximation_,
                                       n_jobs=influence.n_jobs, verbose=influence.verbose)
    influence._output_labels = row_labels(X, ensemble.n_train)
    return influence
