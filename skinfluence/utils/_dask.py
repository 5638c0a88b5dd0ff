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


def row_blocked(X, y, sample_weight=None, *, owner="InfluenceFunctions"):
    """``X``, ``y`` and ``sample_weight`` as dask arrays on the same row blocks.

    ``X`` becomes a 2-D dask array with whole rows in each block (features in one
    chunk); ``y`` and ``sample_weight`` (dask or in memory) are chunked like its rows.
    Dask DataFrames are refused with the conversion to use; unknown block sizes
    (e.g. after boolean indexing) with the call that computes them.
    """
    import dask.array as da

    if not isinstance(X, da.Array):
        raise TypeError(
            f"{owner} takes dask arrays, not {type(X).__name__}: convert a dask DataFrame "
            "with X.to_dask_array(lengths=True) (numeric columns only)."
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
