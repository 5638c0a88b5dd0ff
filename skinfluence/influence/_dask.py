"""InfluenceFunctions on dask arrays: GLMs and linear models already fitted, by row blocks.

The training data stay where they are (the row blocks of a dask array, e.g. on a
``dask.distributed`` cluster).  For a model whose outputs are linear in its parameters,
everything the in-memory path computes for a training point needs that point's row and
the factorised Hessian only:

* ``fit``: one pass over the blocks sums the ``p x p`` Hessian pieces (and the sums of
  the stationarity check) as a tree of tasks; the sum is factorised once, on the client
  (:class:`~skinfluence.linalg.FactoredSolver`).  The rows of dask frames not counted
  before are counted by the same pass (one read of the data, not two);
* ``self_influence_``, the leave-one-out outputs: one lazy block per row block;
* ``transform``: one lazy block per (query block, training block);
* ``explain``: the top k of each training block, merged by a tree of tasks.

Each task runs the in-memory machinery on its rows (the objective of the rows, a
:class:`~skinfluence.influence._base.Removal` prepared with the shared solver,
:class:`~skinfluence.influence._blocks.InfluenceBlocks`), so the numbers are those of
the in-memory path up to the order in which the Hessian is summed.  dask is imported
only when dask arrays are passed.
"""

import copy
import warnings

import numpy as np
from sklearn.base import is_classifier
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from ..base import BaseExplainer, _merge_top_k, explain_result
from ..linalg import EXACT_MAX_PARAMS, FactoredSolver, tree_sum
from ..objectives import (
    make_objective,
    stationarity_ratio,
    stationarity_sums,
    unwrap_frozen,
    warn_if_not_stationary,
)
from ..objectives._linear import LinearObjective
from ..objectives.linear import RemovalReweighting
from ..utils._dask import (
    frame_meta,
    is_dask_collection,
    remember_lengths,
    row_blocked,
    to_dask_array,
    uncounted_partitions,
)
from ..utils._parallel import one_numba_thread
from ._blocks import InfluenceBlocks
from ._first_order import FirstOrder
from ._newton import Newton, leverage_one_message

__all__ = ["DaskGLM", "fit_dask", "frame_meta", "is_dask_collection"]

# Query rows per block of a lazy transform, so that a block holds about this many values
_TRANSFORM_BLOCK_ENTRIES = 1 << 24
# Row blocks of the training data summed per task of the tree reductions
_SPLIT_EVERY = 8


class _Serial:
    """The block runner inside a task: chunks one after the other (the cluster is the
    parallelism), no progress bar."""

    n_jobs = None
    verbose = 0
    _run_blocks = BaseExplainer._run_blocks
    _explain_blocks = BaseExplainer._explain_blocks


_SERIAL = _Serial()


# ------------------------------------------------------------------ per-block work
class _CollectingNewton(Newton):
    """Newton inside a task: the points that keep the first-order step (leverage 1) are
    collected as rows of the block (``first_order_points``) for the client to warn about
    once, instead of a warning in the worker, which never reaches the client."""

    first_order_points = np.empty(0, dtype=np.intp)

    def _report_first_order(self, singular):
        self.first_order_points = np.flatnonzero(singular)


class _GlobalMean(RemovalReweighting):
    """The one-part reweighting of a row block of a larger training set whose weights are
    a mean over it: the ratios and the summed gradient ``B`` are those of the whole set."""

    def __init__(self, ratio, gradient_sum):
        super().__init__(ratio[:, None], sample_parts=np.zeros(ratio.shape[0]))
        self.gradient_sum = gradient_sum

    def gradient_terms(self, objective):
        return self.ratio[:, 0], self.gradient_sum[:, None], self.ratio - 1.0


def _mean_units(obj, sample_weight):
    """What each row adds to the normaliser of a mean-weighted objective: the sample
    weight for Poisson/Gamma/Tweedie (``s_i / S``), one row for SGD (``1 / n``); None
    when the weights are not such a mean."""
    rw = getattr(obj, "_reweighting", None)
    if not (isinstance(rw, RemovalReweighting) and rw.sample_parts is not None
            and rw.ratio.shape[1] == 1 and not rw.sample_parts.any()):
        return None
    from ..objectives.glm import GLMObjective
    from ..objectives.sgd import SGDObjective

    if isinstance(obj, GLMObjective):
        return np.ones(obj.n_train) if sample_weight is None else np.asarray(sample_weight)
    if isinstance(obj, SGDObjective):
        return np.ones(obj.n_train)
    return None


def _normaliser(obj, n_rows, sample_weight):
    """The sum of :func:`_mean_units` over the whole training set."""
    from ..objectives.glm import GLMObjective

    if isinstance(obj, GLMObjective) and sample_weight is not None:
        return float(sample_weight.sum().compute())
    return float(n_rows)


def _objective(estimator, X, y, sample_weight, mean=None):
    """The objective of a row block, as rows of the whole training set.

    ``mean``: ``(normaliser, summed gradient or None)`` of the whole set when the
    family's weights are a mean over it (then a new objective whose weights and
    reweighting are the whole set's); None when they are per-row constants.
    """
    obj = make_objective(estimator, X, y, sample_weight)
    if mean is None:
        return obj
    total, gradient_sum = mean
    units = _mean_units(obj, sample_weight)
    block = copy.copy(obj)  # the block's own weights are a mean over the block only
    block.weights = obj.weights * (units.sum() / total)
    block._reweighting = _GlobalMean(total / (total - units), gradient_sum)
    return block


class _Context:
    """What every task of a fitted model shares: the model, the factorised Hessian, the
    approximation and the whole set's mean (see :func:`_objective`)."""

    def __init__(self, estimator, solver, approximation, mean):
        self.estimator, self.solver = estimator, solver
        self.approximation, self.mean = approximation, mean

    def objective(self, X, y, sample_weight):
        return _objective(self.estimator, X, y, sample_weight, self.mean)

    def removal(self, X, y, sample_weight):
        """The block's objective and its removal, prepared with the shared solver."""
        obj = self.objective(X, y, sample_weight)
        removal = FirstOrder() if self.approximation == "first_order" else _CollectingNewton()
        return obj, removal.prepare(obj, self.solver)


@one_numba_thread
def _fit_sums(X, y, sample_weight, *, estimator, mean):
    """A row block's Hessian data term (p, p), stationarity sums (p,) x 2 and a 1 if the
    fitted model separates the block's rows (an unpenalised model's check), else 0."""
    obj = _objective(estimator, X, y, sample_weight, mean)
    H = obj.hessian()
    H[np.diag_indices_from(H)] -= obj.penalty_diagonal()  # the penalty is added once
    grad, total = stationarity_sums(obj)
    try:
        obj.check_minimum()
        separated = 0.0
    except ValueError:  # every row of the block is fitted perfectly
        separated = 1.0
    return H, grad, total, np.array([separated])


def _head(part, rows=1024):
    """The first ``rows`` rows of a partition of a dask frame, as in its row block."""
    return None if part is None else part.iloc[:rows].to_numpy()


def _counted_sums_block(X, y, sample_weight, index, n_parts, *, estimator, zero):
    """:func:`_fit_sums` of one partition of dask frames with its rows counted: ``(3,
    n_parts)`` counts, zero but for column ``index`` (the rows of X, y and the weights);
    the sums are ``zero`` if the three do not hold as many rows."""
    counts = np.zeros((3, n_parts))
    counts[:, index] = [len(v) for v in (X, y, X if sample_weight is None else sample_weight)]
    if not counts[0, index] == counts[1, index] == counts[2, index]:
        return zero + (counts,)
    w = None if sample_weight is None else sample_weight.to_numpy()
    return _fit_sums(X.to_numpy(), y.to_numpy(), w, estimator=estimator, mean=None) + (counts,)


def _counted_sums(frames, collections, estimator, head):
    """The sums of :func:`_fit_sums` (per-row weights) over the partitions ``frames`` of
    dask frames whose rows are not counted yet, counting them in the same pass: one read
    of the data instead of two.  The counts are kept (:func:`remember_lengths`) for the
    row blocks built next.  None if a partition of y or of the weights does not hold the
    rows of X's: the blocks are aligned and the sums taken on them then.

    ``head``: the first rows of the first partitions (the shapes of the sums)."""
    from dask import compute, delayed

    zero = tuple(np.zeros_like(a) for a in _fit_sums(*head, estimator=estimator, mean=None))
    block = delayed(_counted_sums_block, pure=True)
    pieces = [block(*parts, i, len(frames), estimator=estimator, zero=zero)
              for i, parts in enumerate(frames)]
    *sums, counts = compute(tree_sum(pieces, _SPLIT_EVERY))[0]
    for v, c in zip(collections, counts):
        if v is not None:
            remember_lengths(v, c)
    return tuple(sums) if (counts[0] == counts[1]).all() and (
        counts[0] == counts[2]).all() else None


@one_numba_thread
def _self_side(X, y, *weights, context, what):
    _, removal = context.removal(X, y, weights[0] if weights else None)
    side = removal.self_side()
    return side.self_influence if what == "self_influence" else side.loo_outputs


def _first_order_points(removal, offset):
    """Global rows of a block's points that keep the first-order step."""
    return getattr(removal, "first_order_points", np.empty(0, dtype=np.intp)) + offset


@one_numba_thread
def _flagged_block(X, y, sample_weight, offset, *, context):
    return _first_order_points(context.removal(X, y, sample_weight)[1], offset)


@one_numba_thread
def _loo_block(X, y, sample_weight, offset, *, context):
    """A block's leave-one-out outputs and its points that keep the first-order step."""
    _, removal = context.removal(X, y, sample_weight)
    return removal.self_side().loo_outputs, _first_order_points(removal, offset)


def _queries(obj, Xq, yq):
    Xf = obj.features(Xq)
    return Xf, obj.outputs(Xf), None if yq is None else obj.encode_target(yq)


@one_numba_thread
def _transform_block(*arrays, context, with_y, with_weights):
    """One block of the influence matrix: a block of queries by a block of training rows."""
    arrays = list(arrays)
    Xq = arrays.pop(0)
    yq = arrays.pop(0) if with_y else None
    X, y = arrays.pop(0), arrays.pop(0)
    obj, removal = context.removal(X, y, arrays.pop(0) if with_weights else None)
    return InfluenceBlocks(removal, _SERIAL).transform(*_queries(obj, Xq, yq))


@one_numba_thread
def _explain_block(queries, X, y, sample_weight, offset, *, context, k):
    """Top ``k`` of one training block for every query, with global training indices."""
    Xf, Z0, y_enc = queries
    _, removal = context.removal(X, y, sample_weight)
    # the in-memory selection (running top-k kernel over cache-sized blocks), serially
    result = InfluenceBlocks(removal, _SERIAL).explain(Xf, Z0, y_enc, k)
    parts = (result.helpful_values, result.helpful_indices, result.harmful_values,
             result.harmful_indices)
    return tuple(a + offset if a.dtype.kind == "i" else a for a in parts) + (
        _first_order_points(removal, offset),)


def _merge(*parts, k):
    """Merge the top-k tuples of consecutive training blocks (earlier blocks first) and
    their points that keep the first-order step."""
    bv, bi, wv, wi, flagged = parts[0]
    for nbv, nbi, nwv, nwi, nflagged in parts[1:]:
        bv, bi = _merge_top_k(bv, bi, nbv, nbi, k, largest=True)
        wv, wi = _merge_top_k(wv, wi, nwv, nwi, k, largest=False)
        flagged = np.concatenate([flagged, nflagged])
    return bv, bi, wv, wi, flagged


# ------------------------------------------------------------------------ the model
class DaskGLM:
    """The training objective of a fitted GLM on the row blocks of dask arrays, with its
    factorised Hessian: what :class:`~skinfluence.InfluenceFunctions` keeps as
    ``objective_`` after a fit on dask arrays.

    Built by :meth:`fit`; every method returns lazy dask arrays or computes a small
    result (the ``explain`` top k), one task per row block.

    Attributes
    ----------
    estimator : estimator
        The fitted model (a FrozenEstimator unwrapped).
    X, y, sample_weight : dask.array.Array
        The training data, on the same row blocks (``sample_weight`` may be None).
    template : Objective
        The objective of the first row block: the query side (``features``,
        ``outputs``, ``encode_target``) and the sizes, which do not depend on the rows.
    solver : FactoredSolver
        The factorised Hessian of the whole training set.
    approximation : {"newton", "first_order"}
    n_train, n_params, n_outputs : int
    theta : ndarray of shape (n_params,)
    linear_in_params : bool
        Always True.
    """

    linear_in_params = True

    def __init__(self, X, y, sample_weight, template, context):
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.template, self.context = template, context
        self.estimator, self.solver = context.estimator, context.solver
        self.approximation = context.approximation
        self.n_train = int(X.shape[0])
        self.n_params, self.n_outputs = template.n_params, template.n_outputs
        self.theta = template.theta
        self._first_order = None  # rows that keep the first-order step, once known
        self._warned = False

    @classmethod
    def fit(cls, estimator, X, y, sample_weight=None, *, damping=0.0, approximation="newton",
            check_stationarity=True, owner="InfluenceFunctions", stacklevel=2):
        """Check the model, sum the Hessian over the row blocks and factorise it.

        ``estimator`` is a fitted model (a Pipeline ending in a GLM, or a FrozenEstimator
        of one); a :class:`~skinfluence.objectives.NotStationaryWarning` is raised if it
        is not at the optimum of these data (``check_stationarity``).  ``stacklevel``
        of the warnings is counted from the caller of this method (1: the caller).
        """
        from dask import compute, delayed

        estimator = unwrap_frozen(estimator)
        check_is_fitted(estimator)
        sums = None
        frames = uncounted_partitions(X, y, sample_weight, owner)
        if frames is not None:  # dask frames: their first rows, then maybe one pass for all
            head = compute(*[delayed(_head, pure=True)(p) for p in frames[0]])
            rows = min(len(h) for h in head if h is not None)
            head = [None if h is None else h[:rows] for h in head]
            template = _objective(estimator, *head)
            if not _check_supported(template, owner):  # per-row weights
                sums = _counted_sums(frames, (X, y, sample_weight), estimator, head)
        X, y, sample_weight = row_blocked(X, y, sample_weight, owner=owner)
        if sums is None:  # (with the sums, the head was these rows)
            # the query side and the model's checks: a few rows suffice
            first = slice(0, min(X.chunks[0][0], 1024))
            first_weights = None if sample_weight is None else sample_weight[first]
            template = _objective(estimator, *compute(X[first], y[first], first_weights))
        mean = None
        if _check_supported(template, owner):  # weights are a mean over the whole set
            mean = (_normaliser(template, X.shape[0], sample_weight), None)
        n_blocks = len(X.chunks[0])
        if sums is None:
            pieces = [delayed(_fit_sums, pure=True)(*block, estimator=estimator, mean=mean)
                      for block in _row_block_values(X, y, sample_weight)]
            sums = compute(tree_sum(pieces, _SPLIT_EVERY))[0]
        H, grad, total, separated = sums
        if separated[0] == n_blocks:
            raise ValueError(
                f"{type(template.estimator).__name__} without a penalty has no optimum on "
                "these training data: the fitted model classifies every row of every block "
                "correctly (the data are linearly separable), so scaling its coefficients "
                "up lowers the loss without bound. Use a finite C (an L2 penalty)."
            )
        if check_stationarity:
            warn_if_not_stationary(stationarity_ratio(template, grad, total),
                                   stacklevel=stacklevel + 2)
        H[np.diag_indices_from(H)] += template.penalty_diagonal()
        solver = FactoredSolver(H, template.null_space(), damping, stacklevel=stacklevel + 1)
        if mean is not None:  # at the fit, the reweighting's B is the data term's gradient
            mean = (mean[0], grad)
        context = _Context(estimator, solver, approximation, mean)
        return cls(X, y, sample_weight, template, context)

    # ----------------------------------------------------------- lazy results
    def first_order_rows(self):
        """Training rows whose Newton step is singular (leverage 1), which keep the
        first-order step: collected by ``explain`` and :meth:`compute_loo_outputs`, else
        found by one pass over the blocks the first time they are asked for."""
        if self._first_order is None:
            from dask import compute, delayed

            if self.approximation != "newton":
                self._first_order = np.empty(0, dtype=np.intp)
            else:
                flag = delayed(_flagged_block, pure=True)
                context = delayed(self.context, pure=True)
                parts = [flag(*block, int(offset), context=context)
                         for block, offset in self._blocks()]
                self._first_order = np.concatenate(compute(*parts))
        return self._first_order

    def _note_first_order(self, rows, stacklevel):
        """Keep the rows that keep the first-order step and warn about them, once per
        model; ``stacklevel`` counts from the caller (1: the caller)."""
        if self._first_order is None:
            self._first_order = np.sort(rows)
        rows = self._first_order
        if rows.size and not self._warned:
            self._warned = True
            warnings.warn(leverage_one_message(rows.size, rows), RuntimeWarning,
                          stacklevel=stacklevel + 1)

    def _blocks(self):
        """``((X, y, sample_weight) delayed blocks, row offset)`` per row block."""
        offsets = np.concatenate([[0], np.cumsum(self.X.chunks[0])[:-1]])
        return list(zip(_row_block_values(self.X, self.y, self.sample_weight), offsets))

    def compute_loo_outputs(self, stacklevel=1):
        """The ``(n_train, K)`` leave-one-out outputs in memory, warning on the client
        about points that keep the first-order step (found by the same tasks)."""
        from dask import compute, delayed

        loo = delayed(_loo_block, pure=True)
        context = delayed(self.context, pure=True)
        parts = compute(*[loo(*block, int(offset), context=context)
                          for block, offset in self._blocks()])
        self._note_first_order(np.concatenate([p[1] for p in parts]), stacklevel + 1)
        return np.concatenate([p[0] for p in parts])

    def _per_row(self, what, new_axis=None):
        import dask.array as da

        self._note_first_order(self.first_order_rows(), stacklevel=4)  # the user's call

        args = [self.X, "ij", self.y, "i" if self.y.ndim == 1 else "it"]
        if self.sample_weight is not None:
            args += [self.sample_weight, "i"]
        out_ind = "i" if new_axis is None else "ik"
        return da.blockwise(
            _self_side, out_ind, *args, new_axes=None if new_axis is None else {"k": new_axis},
            concatenate=True, dtype=np.float64, meta=np.empty((0,) * len(out_ind)),
            context=self.context, what=what,
        )

    def self_influence(self):
        """Lazy ``(n_train,)`` self-influence, one task per row block."""
        return self._per_row("self_influence")

    def loo_outputs(self):
        """Lazy ``(n_train, K)`` leave-one-out outputs, one task per row block."""
        return self._per_row("loo_outputs", new_axis=self.n_outputs)

    def transform(self, Xq, yq=None):
        """Lazy ``(n_queries, n_train)`` influence matrix, chunked by query and training
        blocks (queries in memory are split so that a block holds about 16M values)."""
        import dask.array as da

        self._note_first_order(self.first_order_rows(), stacklevel=4)  # the user's call
        Xq, yq = (to_dask_array(v, "InfluenceFunctions") for v in (Xq, yq))
        n_q = Xq.shape[0]
        if not isinstance(Xq, da.Array):
            rows = max(1, _TRANSFORM_BLOCK_ENTRIES // max(max(self.X.chunks[0]), 1))
            Xq = da.from_array(np.asarray(Xq), chunks=(rows, -1))
        Xq = Xq.rechunk({1: -1})
        args = [Xq, "ak"]
        if yq is not None:
            if not isinstance(yq, da.Array):
                yq = np.asarray(yq)
                yq = da.from_array(yq, chunks=(Xq.chunks[0],) + yq.shape[1:])
            if yq.shape[0] != n_q:
                raise ValueError(f"X has {n_q} samples but y has {yq.shape[0]}.")
            args += [yq.rechunk({0: Xq.chunks[0]}), "a" if yq.ndim == 1 else "az"]
        args += [self.X, "ik", self.y, "i" if self.y.ndim == 1 else "it"]
        if self.sample_weight is not None:
            args += [self.sample_weight, "i"]
        return da.blockwise(
            _transform_block, "ai", *args, concatenate=True, dtype=np.float64,
            meta=np.empty((0, 0)), context=self.context, with_y=yq is not None,
            with_weights=self.sample_weight is not None,
        )

    def explain(self, Xq, yq, k):
        """The ``explain`` Bunch: each training block's top ``k``, merged as a tree."""
        from dask import compute, delayed

        Xq, yq = compute(Xq, yq)  # the queries are held in memory, as the result
        queries = delayed(_queries(self.template, Xq, yq), pure=True)
        k = min(k, self.n_train)
        offsets = np.concatenate([[0], np.cumsum(self.X.chunks[0])[:-1]])
        explain_one = delayed(_explain_block, pure=True)
        context = delayed(self.context, pure=True)  # one copy in the graph, not one per task
        parts = [explain_one(queries, *block, int(offset), context=context, k=k)
                 for block, offset in zip(_row_block_values(self.X, self.y,
                                                             self.sample_weight), offsets)]
        merge = delayed(_merge, pure=True)
        while len(parts) > 1:
            groups = [parts[i : i + _SPLIT_EVERY] for i in range(0, len(parts), _SPLIT_EVERY)]
            parts = [merge(*group, k=k) if len(group) > 1 else group[0] for group in groups]
        bv, bi, wv, wi, flagged = compute(parts[0])[0]
        self._note_first_order(flagged, stacklevel=3)  # the user's explain
        return explain_result(bi, bv, wi, wv)


def _row_block_values(X, y, sample_weight):
    """``(X block, y block, sample_weight block or None)`` delayed values, one per row block."""
    Xb = X.to_delayed().ravel()
    yb = y.to_delayed().ravel()
    wb = [None] * len(Xb) if sample_weight is None else sample_weight.to_delayed().ravel()
    return list(zip(Xb, yb, wb))


def _check_supported(template, owner):
    """Refuse what has no path on row blocks, saying why; True if the weights are a mean
    over the training set (handled by :func:`_objective`)."""
    name = type(template.estimator).__name__
    if not (isinstance(template, LinearObjective) and template.linear_in_params):
        raise TypeError(
            f"{owner} on dask arrays supports the linear models and GLMs whose parameters "
            f"are the coefficients and intercepts of X @ coef.T + intercept; {name} is not "
            "one of them (HuberRegressor also fits a scale; neural networks and kernel "
            "models need the whole training set in memory): pass numpy arrays."
        )
    if getattr(template, "active", None) is not None:
        raise TypeError(
            f"{owner} on dask arrays does not support the L1 / elastic-net {name}: its "
            "removals check the KKT conditions on the whole training set and refit the "
            "ones that change the active set. Pass numpy arrays, or explain an L2 model "
            "(Ridge, LogisticRegression) on dask arrays."
        )
    if template.n_params > EXACT_MAX_PARAMS:
        raise ValueError(
            f"{owner} on dask arrays factorises the dense Hessian on the client; {name} has "
            f"{template.n_params} parameters (at most {EXACT_MAX_PARAMS})."
        )
    if template.removal_reweighting() is None:
        return False
    if _mean_units(template, None) is None:
        raise ValueError(
            f"{owner} on dask arrays: {name}'s sample weights depend on the class counts "
            "of the whole training set (class_weight='balanced'), which row blocks cannot "
            "see. Pass the weights as sample_weight (or a class_weight dict) instead."
        )
    return True


def fit_dask(explainer, X, y, sample_weight):
    """:meth:`InfluenceFunctions.fit` on dask arrays (see the module docstring)."""
    name = type(explainer).__name__
    if not isinstance(explainer.estimator, FrozenEstimator):
        raise TypeError(
            f"{name} on dask arrays explains a model already fitted (by scikit-learn on a "
            "sample, by partial_fit, ...): wrap it in sklearn.frozen.FrozenEstimator."
        )
    if not (isinstance(explainer.solver, str) and explainer.solver in ("auto", "exact")):
        raise ValueError(f"{name} on dask arrays uses the exact solver (the Hessian summed "
                         f"over the row blocks); got solver={explainer.solver!r}.")
    if explainer.refine not in ("auto", 0):
        raise ValueError(f"{name} on dask arrays does not refit points exactly (a refit "
                         "needs the whole training set in memory); use refine=0.")
    validate_data(explainer, frame_meta(X), skip_check_array=True)  # a DataFrame's names
    approximation = "newton" if explainer.approximation == "auto" else explainer.approximation
    glm = DaskGLM.fit(explainer.estimator, X, y, sample_weight, damping=explainer.damping,
                      approximation=approximation, owner=name, stacklevel=3)  # user's fit
    explainer.estimator_ = explainer.estimator
    if is_classifier(glm.estimator):
        explainer.classes_ = glm.estimator.classes_
    explainer.objective_ = glm
    explainer.solver_ = glm.solver
    explainer.approximation_ = approximation
    explainer.refined_indices_ = np.array([], dtype=np.intp)
    explainer.solver_info_ = glm.solver.info()
    explainer.n_iter_ = 1
    explainer._removal = None
    explainer._output_labels = glm.n_train
    return explainer
