"""What the ``(n_samples, n_train)`` outputs share: column names and an up-front memory check."""

import numbers
import os

import numpy as np
from sklearn.utils._set_output import _SetOutputMixin
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

# A dense output may take at most this share of the memory available when it is requested:
# the rest is left for the blocks computed while filling it and for the rest of the system.
_MEMORY_SHARE = 0.8


def available_memory():
    """Bytes of memory available to a new allocation without swapping, or None if unknown.

    ``MemAvailable`` of ``/proc/meminfo`` (Linux), else the free physical pages
    (``os.sysconf``); None where neither exists.
    """
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_dense_output(n_rows, n_columns, owner, *, explain="explain", out_keyword=False):
    """Raise a MemoryError before allocating an ``(n_rows, n_columns)`` float64 result of
    ``owner.transform`` that cannot fit in the memory available now.

    ``explain`` names the top-k alternative to point to (None if there is none);
    ``out_keyword``: ``transform`` can write into a caller's array (``out=``).
    """
    nbytes = 8 * int(n_rows) * int(n_columns)
    available = available_memory()
    if available is None or nbytes <= _MEMORY_SHARE * available:
        return
    alternatives = "call transform on blocks of rows of X and reduce each block in turn"
    if out_keyword:
        alternatives = (
            "pass out= an array to write it into block by block, e.g. a file on disk: "
            f"out=np.lib.format.open_memmap(path, mode='w+', dtype=np.float64, "
            f"shape=({n_rows}, {n_columns})); or give X and y as dask arrays for a lazy "
            "result computed by row blocks; or " + alternatives)
    if explain is not None:
        alternatives = (f"use {explain}(X, y, k) for the k most helpful and harmful training "
                        "points of each sample (computed in blocks), or " + alternatives)
    raise MemoryError(
        f"{owner}.transform would return a dense {n_rows} x {n_columns} float64 array "
        f"({nbytes / 2**30:.1f} GiB), more than the {available / 2**30:.1f} GiB of memory "
        f"available now can hold with room to compute it. Instead, {alternatives}."
    )


def check_out(out, shape, method):
    """Check ``out=``, the caller's array a ``method`` writes its ``shape`` float64 result
    into: a writeable ndarray (e.g. an ``np.memmap``) of exactly that shape and dtype."""
    if not isinstance(out, np.ndarray):
        raise TypeError(
            f"{method}(out=...) must be a numpy array or np.memmap; got {type(out).__name__}."
        )
    if out.shape != tuple(shape) or out.dtype != np.float64:
        raise ValueError(
            f"{method}(out=...) must have shape {tuple(shape)} and dtype float64; got shape "
            f"{out.shape} and dtype {out.dtype}."
        )
    if not out.flags.writeable:
        raise ValueError(f"{method}(out=...) is read-only.")


def row_labels(X, n_rows):
    """What names the ``n_rows`` rows of ``X`` in ``get_feature_names_out``: a DataFrame's
    index, else the number of rows (names ``train0, train1, ...``)."""
    index = getattr(X, "index", None)
    if index is not None and not callable(index) and len(index) == n_rows:
        return index
    return int(n_rows)


class TrainingColumnsMixin(_SetOutputMixin):
    """``get_feature_names_out`` naming the output columns by the training rows they stand
    for (``_output_labels``, from :func:`row_labels` in ``fit``), which makes
    ``set_output(transform="pandas")`` available: the DataFrame then has these columns and
    the index of the transformed X."""

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: the training rows (or groups) they stand for.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Only checked against the features seen in ``fit``: the columns of the
            output are training rows, not input features.

        Returns
        -------
        ndarray of str objects
            The training DataFrame's index labels as strings, or ``train0, train1, ...``
            when it was fit on an array.
        """
        check_is_fitted(self, "_output_labels")
        _check_feature_names_in(self, input_features)
        labels = self._output_labels
        if isinstance(labels, numbers.Integral):
            return np.asarray([f"train{i}" for i in range(labels)], dtype=object)
        return np.asarray([str(label) for label in labels], dtype=object)
