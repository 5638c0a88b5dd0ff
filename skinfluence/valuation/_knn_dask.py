"""KNNShapley on dask arrays: exact values with the training points in their row blocks.

The closed forms of Jia et al. are recursions over each validation point's ranking of
*all* training points by distance, so a row block cannot value its points alone: a point's
value depends on its global rank and on the labels (targets) of every farther point.  The
reduction keeps the result exact by building that global ranking as a tree of sorted
merges:

1. the validation points are held in memory and broadcast, in chunks;
2. for each (validation chunk, training row block), a task computes the squared distances
   exactly as the in-memory path does (``-2 x_v . x_j + ||x_j||^2``) and sorts each row
   stably, so that ties are broken by training index;
3. consecutive blocks' sorted lists are merged pairwise (``merge_sorted_rows``; on equal
   distances the earlier block's point first), up to one list per validation point: the
   same ranking as the in-memory argsort with ties broken by index;
4. the last task runs the in-memory kernel on that ranking and, for ``fit``, sums its rows
   over the chunk; the chunks' sums are added as a tree (``tree_sum``).

The distances are never summed or rounded differently from the in-memory path, and the
kernel is the same, so the values are those of the in-memory path.  A validation chunk's
last task holds ``chunk x n_train`` distances, indices and values (the chunk is sized as
in memory, about 4M entries, at least one row).  dask is imported only when dask arrays
are passed.
"""

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_y, validate_data

from ..linalg import tree_sum
from ..utils._dask import frame_meta, row_blocked
from ..utils._parallel import one_numba_thread
from ._knn_kernels import (
    knn_classifier_shapley_rows,
    knn_regressor_shapley_rows,
    merge_sorted_rows,
)

__all__ = ["fit_dask", "transform_dask"]

# Sorted lists merged per task of the tree of merges
_SPLIT_EVERY = 2


@one_numba_thread
def _sorted_block(Xv, Xp, offset):
    """Each validation row's distances to a training block, sorted (ties by index), with
    the global training indices: ``(d, idx)`` of shape ``(m, n_block)``."""
    # as KNNShapley._rows: ||x_v||^2 is dropped, only the order within a row matters
    D = np.matmul(Xv, -2.0 * Xp.T)
    D += np.einsum("ij,ij->i", Xp, Xp)
    if not np.isfinite(D).all():
        raise ValueError("KNNShapley: X or X_val contains NaN or infinity (distances to "
                         f"training rows {offset} onwards are not finite).")
    order = np.argsort(D, axis=1, kind="stable")
    return np.take_along_axis(D, order, axis=1), order + offset


@one_numba_thread
def _merge(*parts):
    d, idx = parts[0]
    for nd, nidx in parts[1:]:
        d, idx = merge_sorted_rows(d, idx, nd, nidx)
    return d, idx


@one_numba_thread
def _game(ranked, y_train, y_val, exclude, *, k, regression, reduce):
    """The in-memory kernel on the global ranking of a validation chunk: the values of every
    training point, ``(m, n_train)``, or their sum over the chunk (``reduce``)."""
    import numba

    d, order = ranked
    D = np.empty_like(d)
    np.put_along_axis(D, order, d, axis=1)  # distances by training index, as the kernel reads
    out = np.empty(d.shape)
    kernel = knn_regressor_shapley_rows if regression else knn_classifier_shapley_rows
    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # the cluster's workers are the parallelism
    try:
        kernel(D, order, y_train, y_val, k, exclude, out)
    finally:
        numba.set_num_threads(threads)
    return out.sum(axis=0) if reduce else out


def _ranked(Xv, train_blocks, offsets):
    """The delayed global ranking of a validation chunk (a tree of sorted merges)."""
    from dask import delayed

    sort, merge = delayed(_sorted_block, pure=True), delayed(_merge, pure=True)
    parts = [sort(Xv, Xp, int(offset)) for Xp, offset in zip(train_blocks, offsets)]
    while len(parts) > 1:
        parts = [merge(*parts[i : i + _SPLIT_EVERY]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), _SPLIT_EVERY)]
    return parts[0]


def _games(knn, chunks, reduce):
    """One delayed ``_game`` per validation chunk ``(Xv, y_val, exclude, n_rows)``."""
    from dask import delayed

    X = knn._X
    train_blocks = X.to_delayed().ravel()
    offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]])
    y_train = delayed(knn._y_train, pure=True)  # one copy in the graph
    game = delayed(_game, pure=True)
    k = int(knn.n_neighbors)
    return [game(_ranked(Xv, train_blocks, offsets), y_train, yv, exclude, k=k,
                 regression=knn.task_ == "regression", reduce=reduce)
            for Xv, yv, exclude, _ in chunks]


def _chunk_rows(knn, n_val):
    from ._knn import _CHUNK_ELEMENTS

    return max(1, min(n_val, _CHUNK_ELEMENTS // max(knn._X.shape[0], 1)))


def _memory_chunks(knn, Xv, yv):
    """Validation chunks of points held in memory."""
    rows = _chunk_rows(knn, Xv.shape[0])
    none = np.full(rows, -1, dtype=np.intp)
    return [(Xv[s : s + rows], yv[s : s + rows], none[: min(rows, Xv.shape[0] - s)],
             min(rows, Xv.shape[0] - s)) for s in range(0, Xv.shape[0], rows)]


def _training_chunks(knn):
    """The training points as validation chunks, each leaving itself out of its game."""
    X = knn._X
    rows = _chunk_rows(knn, X.shape[0])
    blocks = X.rechunk({0: rows}).to_delayed().ravel()
    starts = range(0, X.shape[0], rows)
    return [(Xv, knn._y_train[s : s + rows], np.arange(s, min(s + rows, X.shape[0])),
             min(rows, X.shape[0] - s)) for Xv, s in zip(blocks, starts)]


def _queries(knn, X, y):
    """Validation points (dask or in memory) checked and brought into memory."""
    from dask import compute

    X, y = compute(X, y)  # a dask DataFrame becomes a pandas one: its names are checked
    X, y = validate_data(knn, X, y, reset=False, accept_sparse=False,
                         y_numeric=knn.task_ == "regression")
    return np.asarray(X, dtype=np.float64), knn._encode(y)


def fit_dask(knn, X, y, X_val=None, y_val=None):
    """:meth:`KNNShapley.fit` on dask arrays or DataFrames (see the module docstring)."""
    from dask import compute

    validate_data(knn, frame_meta(X), skip_check_array=True)  # a DataFrame's column names
    X, y, _ = row_blocked(X, y, owner="KNNShapley")
    y = _check_y(np.asarray(y.compute()), multi_output=False,
                 y_numeric=knn.task == "regression", estimator=knn)
    if knn.task == "classification":
        check_classification_targets(y)
    knn.task_ = knn._resolve_task(y)
    if knn.task_ == "regression":
        y = np.asarray(y, dtype=np.float64)
        knn._y_offset = float(np.mean(y))
        knn._y_train = y - knn._y_offset
    else:
        check_classification_targets(y)
        knn._classes, knn._y_train = np.unique(y, return_inverse=True)
    knn._X = X.astype(np.float64)
    if (X_val is None) != (y_val is None):
        raise ValueError("Pass both X_val and y_val, or neither.")
    if X_val is None:
        chunks = _training_chunks(knn)
    else:
        chunks = _memory_chunks(knn, *_queries(knn, X_val, y_val))
    (total,) = compute(tree_sum(_games(knn, chunks, reduce=True)))
    count = sum(c[3] for c in chunks)
    # the training set is not in memory: no KNN model to delegate predict / score to
    knn.estimator_ = None
    knn.values_ = total / count
    knn.n_validation_ = count
    knn._output_labels = X.shape[0]
    return knn


def transform_dask(knn, X, y):
    """:meth:`KNNShapley.transform` after a fit on dask arrays: a lazy ``(n, n_train)``
    array, one block per (query chunk, training row block)."""
    import dask.array as da

    if y is None:
        raise ValueError(
            "KNNShapley fitted on dask arrays keeps no KNN model in memory to predict the "
            "labels of X: pass y (the labels or targets to attribute), e.g. "
            "transform(X, knn_model.predict(X)) with a KNN fitted on a sample."
        )
    chunks = _memory_chunks(knn, *_queries(knn, X, y))
    n = int(knn._X.shape[0])
    rows = [da.from_delayed(g, shape=(c[3], n), dtype=np.float64)
            for g, c in zip(_games(knn, chunks, reduce=False), chunks)]
    return da.concatenate(rows, axis=0).rechunk({1: knn._X.chunks[0]})
