"""The one explainer base: what every meta-estimator of skinfluence shares.

:class:`BaseExplainer` is the base of the estimators that wrap a model and explain it
(InfluenceFunctions, TracIn, GradientRollback, the valuation estimators, InfluenceCleaner,
CleanClassifier).  It owns, once: the methods delegated to the fitted model
(``predict``, ``predict_proba``, ``predict_log_proba``, ``decision_function``, ``score``,
``classes_``), the tags taken from the wrapped model, fitting a clone of it with sample
weights routed as scikit-learn routes them, the block runner of the blockwise
computations, and the common result of ``explain``.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils import Bunch, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .utils._parallel import (
    blas_and_numba_threads,
    effective_n_jobs,
    imap_ordered,
    numba_single_thread,
)
from .utils._progress import progress
from .utils._top_k import empty_selection, top_k_merge, top_k_update
from .utils._routing import fit_weighted

__all__ = [
    "BaseExplainer",
    "DelegatingMixin",
    "check_k",
    "estimator_has",
    "explain_result",
    "top_k_of_rows",
    "top_k_over_blocks",
    "run_blocks",
]


# ------------------------------------------------------------------ delegation
def estimator_has(attr):
    """``available_if`` check: the fitted (else the unfitted) wrapped model has ``attr``."""

    def check(self):
        target = self._delegate_target()
        return target is not None and hasattr(target, attr)

    return check


class DelegatingMixin:
    """``predict``, ``predict_proba``, ``predict_log_proba``, ``decision_function``,
    ``score`` and ``classes_`` delegated to ``estimator_``, each present only if the
    wrapped model has it, so that an explainer works as the last step of a Pipeline and
    inside GridSearchCV (which scores with ``score``)."""

    def _template_estimator(self):
        """The unfitted model the methods are looked up on before ``fit``."""
        return getattr(self, "estimator", None)

    def _delegate_target(self):
        if "estimator_" in vars(self):
            return self.estimator_
        return self._template_estimator()

    @available_if(estimator_has("predict"))
    def predict(self, X):
        """Predict with the wrapped model fitted in ``fit``."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)

    @available_if(estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the wrapped model fitted in ``fit``."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    @available_if(estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities of the wrapped model fitted in ``fit``."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_log_proba(X)

    @available_if(estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the wrapped model fitted in ``fit``."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.decision_function(X)

    @available_if(estimator_has("score"))
    def score(self, X, y=None, sample_weight=None):
        """Score of the wrapped model fitted in ``fit`` (its own ``score``)."""
        check_is_fitted(self, "estimator_")
        if sample_weight is None:
            return self.estimator_.score(X, y)
        return self.estimator_.score(X, y, sample_weight=sample_weight)

    @property
    def classes_(self):
        """Class labels: those set by ``fit``, else the fitted wrapped model's."""
        if "classes_" in vars(self):
            return vars(self)["classes_"]
        check_is_fitted(self, "estimator_")
        return self.estimator_.classes_

    @classes_.setter
    def classes_(self, value):
        vars(self)["classes_"] = value


# ------------------------------------------------------------------ explain results
def check_k(k):
    """``k`` of an ``explain``: an integer >= 1 (not a float or bool that would be truncated)."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(
            f"k must be an integer >= 1 (the number of training points to return per "
            f"sample); got {k!r}."
        )
    return int(k)


def explain_result(helpful_indices, helpful_values, harmful_indices, harmful_values):
    """The result of every ``explain``: a Bunch of four ``(n_queries, k)`` arrays.

    ``helpful_*``: the training points with the largest values, largest first;
    ``harmful_*``: those with the most negative values, most negative first.  Index
    ``-1`` with value NaN pads rows with fewer than ``k`` candidates.
    """
    shapes = {np.shape(a) for a in (helpful_indices, helpful_values, harmful_indices,
                                    harmful_values)}
    if len(shapes) != 1:
        raise ValueError(f"explain arrays must share one (n_queries, k) shape; got {shapes}.")
    return Bunch(helpful_indices=helpful_indices, helpful_values=helpful_values,
                 harmful_indices=harmful_indices, harmful_values=harmful_values)


def top_k_over_blocks(block_values, column_chunks, run, n_rows, n_columns, k, *,
                      fast=None, serial=False):
    """The ``k`` largest and ``k`` smallest entries per row of a matrix seen in column blocks.

    ``block_values(cols)`` returns the ``(n_rows, len(cols))`` block for a slice of
    columns; ``run(func, chunks)`` maps a function over the chunks (serially or in
    parallel) and yields the results in order; each is merged as it arrives, so only
    ``n_rows x 2k`` values are kept between blocks.  ``k`` is capped at ``n_columns``.
    Equal values come in the order a per-block ``np.argpartition`` followed by stable
    merges gives them (by column when ``k`` covers a whole block).

    ``fast = (fast_values, fast_chunks, rows_values)`` selects with the running kernels
    of :class:`RunningTopK` instead, over ``fast_values(cols)`` blocks of ``fast_chunks``
    giving the same values (e.g. cache-sized, with the query side built once); only rows
    where equal values compete are then selected again, from ``rows_values(rows)(cols)``
    (the rows ``rows`` of ``block_values(cols)``) over ``column_chunks``, so the result
    is the same.  ``serial``: the consumer folds the blocks itself (no worker threads).
    Returns the :func:`explain_result` Bunch.
    """
    k = min(check_k(k), n_columns)
    if fast is None:
        return _reference_top_k(block_values, column_chunks, run, n_rows, k)
    fast_values, fast_chunks, rows_values = fast
    top = RunningTopK(n_rows, k)
    if serial:
        for cols, vals in run(lambda cols: (cols, fast_values(cols)), fast_chunks):
            top.fold(vals, cols.start)
    else:
        def select(cols):
            part = top.seeded()
            part.fold(fast_values(cols), cols.start)
            return part

        for part in run(select, fast_chunks):
            top.merge(part)
    result = top.result()
    tied = np.flatnonzero(top.tied)
    if tied.size:  # equal values compete: the reference selection orders them
        ref = _reference_top_k(rows_values(tied), column_chunks, run, tied.size, k)
        for key in result:
            result[key][tied] = ref[key]
    return result


def _reference_top_k(block_values, column_chunks, run, n_rows, k):
    """Per-block ``np.argpartition`` merged by stable sorts: the selection that defines
    the order of equal values."""
    best_val = np.full((n_rows, k), -np.inf)
    best_idx = np.full((n_rows, k), -1, dtype=np.intp)
    worst_val = np.full((n_rows, k), np.inf)
    worst_idx = np.full((n_rows, k), -1, dtype=np.intp)

    def both(cols):
        vals = block_values(cols)
        idx = np.arange(cols.start, cols.stop)
        return _top_k(vals, idx, k, largest=True), _top_k(vals, idx, k, largest=False)

    for (bv, bi), (wv, wi) in run(both, column_chunks):
        best_val, best_idx = _merge_top_k(best_val, best_idx, bv, bi, k, largest=True)
        worst_val, worst_idx = _merge_top_k(worst_val, worst_idx, wv, wi, k, largest=False)
    return explain_result(best_idx, best_val, worst_idx, worst_val)


class RunningTopK:
    """Each row's ``k`` largest and ``k`` smallest values (and columns) seen so far.

    Columns are folded in increasing order (:meth:`fold`, one block at a time, or
    :meth:`merge` of a later block's selection).  Equal values are kept in column order,
    and rows where equal values compete are flagged in :attr:`tied`.  See
    :mod:`skinfluence.utils._top_k` for the kernels.
    """

    def __init__(self, n_rows, k):
        self.k = k
        self.arrays = empty_selection(n_rows, k)

    @property
    def tied(self):
        """(n_rows,) bool: two selected values are equal, or one equal to the ``k``-th was
        passed over."""
        return self.arrays[4]

    def fold(self, block, col0):
        """Fold the ``(n_rows, m)`` values of columns ``col0 .. col0 + m - 1``."""
        top_k_update(np.ascontiguousarray(block, dtype=np.float64), col0, *self.arrays)

    def seeded(self):
        """An empty selection that only admits values beating this one's ``k``-th now.

        Its empty slots (index ``-1``) hold the current thresholds: what does not beat
        them cannot enter the final selection, so a worker selecting from a later block
        keeps only candidates (equal ones flag the row as tied).  A worker may read the
        thresholds while the consumer merges: every value read is one the ``k``-th held at
        some point, and the thresholds only tighten, so it is still a valid bound.
        """
        part = RunningTopK.__new__(RunningTopK)
        part.k = self.k
        bv, bi, wv, wi, tied = self.arrays
        part.arrays = (np.repeat(bv[:, -1:], self.k, axis=1), np.full_like(bi, -1),
                       np.repeat(wv[:, -1:], self.k, axis=1), np.full_like(wi, -1),
                       np.zeros_like(tied))
        return part

    def merge(self, later):
        """Fold in the selection of a block of later columns."""
        top_k_merge(*self.arrays, *later.arrays)

    def result(self):
        """The :func:`explain_result` Bunch (unfilled slots: index -1, value -inf / +inf)."""
        bv, bi, wv, wi, _ = self.arrays
        return explain_result(bi, bv, wi, wv)


def _top_k(vals, idx, k, largest):
    """Per-row top-k of a block: (values, global indices), each (n, min(k, m))."""
    m = vals.shape[1]
    kk = min(k, m)
    key = -vals if largest else vals
    if kk < m:
        part = np.argpartition(key, kk - 1, axis=1)[:, :kk]
    else:
        part = np.tile(np.arange(m), (vals.shape[0], 1))
    return np.take_along_axis(vals, part, axis=1), idx[part]


def _merge_top_k(cur_v, cur_i, new_v, new_i, k, largest):
    v = np.concatenate([cur_v, new_v], axis=1)
    i = np.concatenate([cur_i, new_i], axis=1)
    key = -v if largest else v
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(v, order, axis=1), np.take_along_axis(i, order, axis=1)


def top_k_of_rows(ptr, idx, vals, k):
    """:func:`explain_result` of a sparse matrix in CSR parts (row ``a``: columns
    ``idx[ptr[a]:ptr[a+1]]`` with values ``vals[...]``), ties broken by column.

    ``k`` is capped at the largest number of entries of a row (at least 1); rows with
    fewer entries are padded with ``-1`` / NaN.
    """
    k = min(check_k(k), max(1, int(np.diff(ptr).max(initial=0))))
    n = len(ptr) - 1
    out = [np.full((n, k), -1, dtype=np.int64), np.full((n, k), np.nan)]
    out += [out[0].copy(), out[1].copy()]
    for a in range(n):
        cols, v = idx[ptr[a]:ptr[a + 1]], vals[ptr[a]:ptr[a + 1]]
        m = min(k, v.size)
        for sign, (oi, ov) in ((-1, out[:2]), (1, out[2:])):
            key = sign * v
            top = np.argpartition(key, m - 1)[:m] if m < v.size else np.arange(v.size)
            top = top[np.lexsort((cols[top], key[top]))]
            oi[a, :m], ov[a, :m] = cols[top], v[top]
    return explain_result(*out)


# ------------------------------------------------------------------ the base
def run_blocks(func, chunks, desc, n_jobs=None, verbose=0):
    """``func(chunk)`` for each chunk, yielded in order as soon as it is ready.

    With ``n_jobs`` > 1 the chunks run on that many threads, each with one BLAS and
    one numba thread, at most ``2 n_jobs`` ahead of the consumer, so the memory held
    does not grow with the number of chunks.  A progress bar counts the chunks
    consumed under ``verbose``.  Exhaust the generator for side effects only.
    """
    chunks = list(chunks)
    n_workers = min(effective_n_jobs(n_jobs), max(len(chunks), 1))

    def work(chunk):
        numba_single_thread()  # thread-local: the parallelism is over chunks
        return func(chunk)

    results = imap_ordered(work if n_workers > 1 else func, chunks, n_workers)
    with blas_and_numba_threads(n_workers):
        yield from progress(results, total=len(chunks), desc=desc, verbose=verbose)


class BaseExplainer(DelegatingMixin, MetaEstimatorMixin, BaseEstimator):
    """Base of the meta-estimators: a wrapped model (``estimator``) fitted into
    ``estimator_``, explained by the subclass.

    Subclasses set ``_parameter_constraints`` and implement ``fit``; they get the
    delegated methods of :class:`DelegatingMixin`, tags from the wrapped model, and the
    helpers :meth:`_fit_estimator`, :meth:`_run_blocks`, :meth:`_explain_blocks`,
    :meth:`_check_k` and :meth:`_explain_result`.  A subclass whose wrapped model is not
    the ``estimator`` parameter overrides :meth:`_template_estimator`.
    """

    def _wrapped_tags(self):
        """Tags of the wrapped model, or None for a duck-typed model without them."""
        template = self._template_estimator()
        if template is None:
            return None
        try:
            return get_tags(template)
        except (AttributeError, TypeError):
            return None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self._wrapped_tags()
        if inner is None:
            return tags
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        for name in ("sparse", "allow_nan", "string", "categorical"):
            setattr(tags.input_tags, name, getattr(inner.input_tags, name))
        for name in ("required", "single_output", "multi_output"):
            setattr(tags.target_tags, name, getattr(inner.target_tags, name))
        return tags

    def _fit_estimator(self, X, y, sample_weight=None, *, estimator=None, final_step=False,
                       **fit_params):
        """A clone of ``estimator`` (default: the wrapped model) fitted on ``(X, y)``.

        ``sample_weight`` reaches a Pipeline's last step with metadata routing off, the
        steps that request it when routing is on (``final_step=True``: the last step
        must); see :mod:`skinfluence.utils._routing`.  A
        :class:`~sklearn.frozen.FrozenEstimator` is returned as it is, not refit.
        """
        estimator = self._template_estimator() if estimator is None else estimator
        if isinstance(estimator, FrozenEstimator):
            return estimator.fit(X, y)  # a no-op that checks the wrapped model is fitted
        return fit_weighted(clone(estimator), X, y, sample_weight, final_step=final_step,
                            **fit_params)

    def _run_blocks(self, func, chunks, desc):
        """:func:`run_blocks` under this explainer's ``n_jobs`` and ``verbose``."""
        return run_blocks(func, chunks, desc, getattr(self, "n_jobs", None),
                          getattr(self, "verbose", 0))

    def _explain_blocks(self, block_values, chunks, n_rows, n_columns, k, desc="explain",
                        fast=None):
        """:func:`top_k_over_blocks` of the blocks ``block_values(cols)`` of the column
        ``chunks`` (and ``fast``, see there), run by :meth:`_run_blocks`."""
        return top_k_over_blocks(block_values, chunks,
                                 lambda func, c: self._run_blocks(func, c, desc),
                                 n_rows, n_columns, k, fast=fast,
                                 serial=effective_n_jobs(getattr(self, "n_jobs", None)) <= 1)

    @staticmethod
    def _check_k(k):
        """See :func:`check_k`."""
        return check_k(k)

    @staticmethod
    def _explain_result(helpful_indices, helpful_values, harmful_indices, harmful_values):
        """See :func:`explain_result`."""
        return explain_result(helpful_indices, helpful_values, harmful_indices,
                              harmful_values)
