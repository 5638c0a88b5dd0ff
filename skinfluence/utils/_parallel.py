"""Chunking and thread control shared by the parallel loops."""

import functools
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import joblib
import numpy as np


def effective_n_jobs(n_jobs):
    """joblib's interpretation of ``n_jobs`` (None -> 1, -1 -> all cores)."""
    return joblib.effective_n_jobs(n_jobs)


def chunk_slices(n, chunk_size):
    """Consecutive slices of ``range(n)`` of at most ``chunk_size`` items."""
    chunk_size = max(1, int(chunk_size))
    return [slice(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]


@contextmanager
def blas_and_numba_threads(n_workers):
    """Limit BLAS to one thread while ``n_workers`` > 1 joblib workers run.

    Each joblib worker then uses one core for its GEMMs instead of every worker
    starting a full BLAS thread pool (oversubscription).  numba's own thread
    count is set per worker with :func:`numba_single_thread`.
    """
    if n_workers <= 1:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def numba_single_thread():
    """Make numba's parallel kernels run on one thread in the calling thread (thread-local)."""
    import numba

    numba.set_num_threads(1)


def one_numba_thread(func):
    """Run ``func`` with numba's parallel kernels on one thread (restored afterwards).

    For tasks on dask workers: the cluster's worker threads and processes are the
    parallelism, and every worker process spinning a full numba thread pool on the same
    cores makes the kernels several times slower.
    """
    @functools.wraps(func)
    def run(*args, **kwargs):
        import numba

        before = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return func(*args, **kwargs)
        finally:
            numba.set_num_threads(before)

    return run


def imap_ordered(func, items, n_workers):
    """``func(item)`` for each item, yielded in order as soon as it is ready.

    With ``n_workers > 1`` the items run on that many threads, at most
    ``2 * n_workers`` ahead of the consumer: a slow consumer holds back the
    workers instead of letting finished results pile up, so at most
    ``2 * n_workers`` results exist besides the one being consumed.
    """
    if n_workers <= 1:
        for item in items:
            yield func(item)
        return
    items = iter(items)
    pending = deque()
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        try:
            for item in items:
                pending.append(pool.submit(func, item))
                if len(pending) >= 2 * n_workers:
                    break
            while pending:
                result = pending.popleft().result()
                item = next(items, _DONE)
                if item is not _DONE:
                    pending.append(pool.submit(func, item))
                yield result
                del result
        finally:  # an error or an abandoned generator: do not start the rest
            for future in pending:
                future.cancel()


_DONE = object()


def as_float_array(a):
    return np.ascontiguousarray(a, dtype=np.float64)
