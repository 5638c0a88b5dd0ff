"""What the ``(n_samples, n_train)`` outputs share: an up-front memory check."""

import os

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


def check_dense_output(n_rows, n_columns, owner, *, explain="explain"):
    """Raise a MemoryError before allocating an ``(n_rows, n_columns)`` float64 result of
    ``owner.transform`` that cannot fit in the memory available now.

    ``explain`` names the top-k alternative to point to (None if there is none).
    """
    nbytes = 8 * int(n_rows) * int(n_columns)
    available = available_memory()
    if available is None or nbytes <= _MEMORY_SHARE * available:
        return
    alternatives = "call transform on blocks of rows of X and reduce each block in turn"
    if explain is not None:
        alternatives = (f"use {explain}(X, y, k) for the k most helpful and harmful training "
                        "points of each sample (computed in blocks), or " + alternatives)
    raise MemoryError(
        f"{owner}.transform would return a dense {n_rows} x {n_columns} float64 array "
        f"({nbytes / 2**30:.1f} GiB), more than the {available / 2**30:.1f} GiB of memory "
        f"available now can hold with room to compute it. Instead, {alternatives}."
    )
