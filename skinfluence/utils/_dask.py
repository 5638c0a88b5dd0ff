"""Dask inputs: recognising them and aligning training arrays on the same row blocks.

dask is imported only when a dask collection is passed (it is an optional dependency).
"""

import sys

import numpy as np


def is_dask_collection(x):
    """Whether ``x`` is a dask collection (False, without importing dask, if dask is not
    loaded: then ``x`` cannot be one)."""
    if "dask" not in sys.modules:
        return False
    from dask import is_dask_collection as is_collection

    return is_collection(x)


def is_dask_frame(x):
    """Whether ``x`` is a dask DataFrame or Series."""
    if "dask.dataframe" not in sys.modules:
        return False
    import dask.dataframe as dd

    return isinstance(x, (dd.DataFrame, dd.Series))


def frame_meta(x):
    """What ``validate_data(..., skip_check_array=True)`` reads the feature names and count
    from: a dask DataFrame's empty pandas frame (scikit-learn does not read dask's
    columns), anything else as it is."""
    return x._meta if is_dask_frame(x) else x


def _part_values(part):
    return np.asarray(part)


def compute_values(v):
    """The values of ``v`` (a dask collection, or anything ``np.asarray`` takes) as one
    numpy array on the client.

    A dask frame's partitions come as arrays, one by one, and are concatenated here: dask's
    own ``compute`` of a frame concatenates them in one task on one worker, which then holds
    every partition, their index and the result at once (several times the column) before
    sending it -- for the labels of a large set, a worker's memory limit.

    >>> compute_values(np.arange(3))
    array([0, 1, 2])
    """
    if is_dask_frame(v):
        from dask import compute, delayed

        part = delayed(_part_values, pure=True)
        parts = list(compute(*[part(p) for p in v.to_delayed()]))
        # copied into place one by one, each dropped once copied: the values and one
        # partition at a time, not twice the values as np.concatenate would hold
        out = np.empty((sum(len(a) for a in parts),) + parts[0].shape[1:],
                       dtype=np.result_type(*parts))
        start = 0
        for i, a in enumerate(parts):
            out[start:start + len(a)] = a
            start += len(a)
            parts[i] = None
        return out
    return np.asarray(v.compute() if is_dask_collection(v) else v)


# rows per partition of the dask frames counted so far, by name: the same frame passed to
# several estimators (an explainer, then a cleaner) is counted once
_COUNTED = {}


def _frame_values(part, n_rows):
    if len(part) != n_rows:  # counted earlier: the data changed since
        raise ValueError(f"a partition of the dask DataFrame has {len(part)} rows, but "
                         f"{n_rows} were counted when it was first passed; the data "
                         "changed in between: pass a new DataFrame (dd.read_parquet again).")
    return part.to_numpy()


def _frame_length(part):
    return len(part)


def _check_numeric(v, owner):
    import dask.dataframe as dd

    if isinstance(v, dd.DataFrame):
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        bad = [str(c) for c, t in v.dtypes.items()
               if not (is_numeric_dtype(t) or is_bool_dtype(t))]
        if bad:
            raise TypeError(
                f"{owner} takes numeric feature columns; column(s) {', '.join(bad[:5])} of "
                "the dask DataFrame are not numeric: encode them first (e.g. with "
                "dask_ml.preprocessing or DataFrame.categorize() and get_dummies)."
            )


def counted_lengths(v, n_parts):
    """The rows per partition of the dask frame ``v`` counted so far, or None."""
    lengths = _COUNTED.get(getattr(v, "_name", None))
    return lengths if lengths is not None and len(lengths) == n_parts else None


def remember_lengths(v, lengths):
    """Keep the rows per partition of the dask frame ``v`` (by its name, which is a hash of
    how it is made), so that :func:`to_dask_array` does not count them again."""
    key = getattr(v, "_name", None)
    if key is not None:
        if len(_COUNTED) >= 64:
            _COUNTED.pop(next(iter(_COUNTED)))
        _COUNTED[key] = tuple(int(n) for n in lengths)


def uncounted_partitions(X, y, sample_weight, owner):
    """``[(X, y, sample_weight or None) partitions]`` of the dask DataFrame ``X`` and the
    dask Series ``y`` (and ``sample_weight``), one triple per partition, when none of their
    rows are counted yet and they have as many partitions: a pass over them can then count the
    rows while it reads them for something else (see :func:`remember_lengths`; whether the
    partitions hold the same rows is for that pass to check).  None otherwise."""
    if not (is_dask_frame(X) and is_dask_frame(y)):
        return None
    if sample_weight is not None and not is_dask_frame(sample_weight):
        return None
    frames = [v for v in (X, y, sample_weight) if v is not None]
    if X.ndim != 2 or y.ndim != 1:
        return None
    # the partitions of the optimised graphs (those to_dask_array reads): dask may combine
    # small Parquet partitions where fewer columns are read
    parts = [v.to_delayed() for v in frames]
    # a frame counted before keeps its counts, which its blocks are checked against
    if len({len(p) for p in parts}) != 1 or any(
            counted_lengths(v, len(p)) is not None for v, p in zip(frames, parts)):
        return None
    _check_numeric(X, owner)
    if sample_weight is None:
        parts.append([None] * len(parts[0]))
    return list(zip(*parts))


def to_dask_array(v, owner):
    """A dask DataFrame or Series as a dask array, one block per partition, with the
    rows of each partition counted (one pass over them, once per frame: the counts are
    kept by the frame's name and checked when the blocks are read); anything else is
    returned as it is.  DataFrame columns must be numeric (the features); a Series (labels) may hold
    any type.

    The blocks are the partitions of ``v.to_delayed()``: counting them with
    ``to_dask_array(lengths=True)`` may count the partitions of another, optimised
    graph (dask combines small Parquet partitions when fewer columns are read)."""
    if not is_dask_frame(v):
        return v
    import dask.array as da
    from dask import compute, delayed

    _check_numeric(v, owner)
    parts = v.to_delayed()
    lengths = counted_lengths(v, len(parts))
    if lengths is None:
        lengths = compute(*[delayed(_frame_length, pure=True)(p) for p in parts])
        remember_lengths(v, lengths)
    meta = v._meta.to_numpy()
    tail = meta.shape[1:]
    return da.concatenate([
        da.from_delayed(delayed(_frame_values, pure=True)(p, n), (n,) + tail,
                        dtype=meta.dtype, meta=meta) for p, n in zip(parts, lengths)])


def row_blocked(X, y, sample_weight=None, *, owner="InfluenceFunctions"):
    """``X``, ``y`` and ``sample_weight`` as dask arrays on the same row blocks.

    ``X`` becomes a 2-D dask array with whole rows in each block (features in one
    chunk); ``y`` and ``sample_weight`` (dask or in memory) are chunked like its rows.
    Dask DataFrames and Series become arrays partition by partition (their rows are
    counted: one pass over the partitions); unknown block sizes (e.g. after boolean
    indexing) are refused with the call that computes them.
    """
    import dask.array as da

    # each collection's partitions are counted (a Series need not share X's partitions)
    X, y, sample_weight = (to_dask_array(v, owner) for v in (X, y, sample_weight))
    if not isinstance(X, da.Array):
        raise TypeError(
            f"{owner} takes dask arrays or DataFrames, not {type(X).__name__} (or numpy "
            "arrays and pandas DataFrames in memory)."
        )
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array; got {X.ndim} dimension(s).")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            "X has row blocks of unknown size; call X.compute_chunk_sizes() first "
            "(or X.to_dask_array(lengths=True) for a DataFrame)."
        )
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})  # every block holds whole rows
    rows = X.chunks[0]
    y = _aligned(y, rows, "y", owner)
    if sample_weight is not None:
        sample_weight = _aligned(sample_weight, rows, "sample_weight", owner)
        if sample_weight.ndim != 1:
            raise ValueError(f"sample_weight must be 1-D; got shape {sample_weight.shape}.")
    return X, y, sample_weight


def _aligned(v, rows, name, owner):
    import dask.array as da

    n = int(sum(rows))
    if not isinstance(v, da.Array):
        if is_dask_collection(v):
            raise TypeError(f"{owner}: {name} must be a dask array or an array in memory, "
                            f"not {type(v).__name__}; use .to_dask_array(lengths=True).")
        v = np.asarray(v)
    if v.ndim not in (1, 2) or v.shape[0] != n or (v.ndim == 2 and np.isnan(v.shape[1])):
        raise ValueError(f"X has {n} rows but {name} has shape {v.shape}.")
    chunks = (rows,) + ((v.shape[1],) if v.ndim == 2 else ())
    if isinstance(v, da.Array):
        if any(np.isnan(c) for c in v.chunks[0]):
            raise ValueError(f"{name} has blocks of unknown size; call "
                             f"{name}.compute_chunk_sizes() first.")
        return v.rechunk(chunks) if v.chunks != chunks else v
    return da.from_array(v, chunks=chunks)
