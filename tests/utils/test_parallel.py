"""Chunking and thread control of the parallel loops (``skinfluence.utils._parallel``)."""

import threading
import time

import joblib
import numba
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from skinfluence.utils._parallel import (
    blas_and_numba_threads,
    chunk_slices,
    effective_n_jobs,
    imap_ordered,
    numba_single_thread,
)


# ------------------------------------------------------------------ chunk_slices
@pytest.mark.parametrize("n, size", [(10, 3), (10, 5), (10, 10), (10, 20), (1, 1), (7, 1)])
def test_chunk_slices_cover_the_range_in_order(n, size):
    slices = chunk_slices(n, size)
    covered = [i for sl in slices for i in range(n)[sl]]
    assert covered == list(range(n))
    assert all(sl.step is None for sl in slices)
    assert all(0 < sl.stop - sl.start <= size for sl in slices)
    # only the last chunk may be short
    assert all(sl.stop - sl.start == size for sl in slices[:-1])


def test_chunk_slices_of_nothing_and_degenerate_sizes():
    assert chunk_slices(0, 5) == []
    # a size below one means one item per chunk; a float size is truncated
    assert chunk_slices(3, 0) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    assert chunk_slices(3, -4) == chunk_slices(3, 1)
    assert chunk_slices(5, 2.9) == chunk_slices(5, 2)


# ------------------------------------------------------------------ effective_n_jobs
def test_effective_n_jobs_follows_joblib():
    assert effective_n_jobs(None) == 1
    assert effective_n_jobs(1) == 1
    assert effective_n_jobs(3) == 3
    assert effective_n_jobs(-1) == joblib.cpu_count()


# ------------------------------------------------------------------ imap_ordered
class _Recorder:
    """``func`` for imap_ordered that counts the calls started, sleeping a little."""

    def __init__(self, fail_at=None, delay=0.0):
        self.started = 0
        self.fail_at = fail_at
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, item):
        with self.lock:
            self.started += 1
        if self.delay:
            time.sleep(self.delay * (item % 3))  # out of order finishing times
        if item == self.fail_at:
            raise RuntimeError(f"item {item} failed")
        return item * item


@pytest.mark.parametrize("n_workers", [1, 2, 3])
def test_imap_ordered_yields_in_input_order(n_workers):
    func = _Recorder(delay=0.002)
    out = list(imap_ordered(func, range(20), n_workers))
    assert out == [i * i for i in range(20)]
    assert func.started == 20


def test_imap_ordered_accepts_a_generator_and_nothing():
    assert list(imap_ordered(lambda x: -x, (i for i in range(5)), 2)) == [0, -1, -2, -3, -4]
    assert list(imap_ordered(lambda x: x, [], 2)) == []


@pytest.mark.parametrize("n_workers", [2, 3])
def test_imap_ordered_runs_at_most_two_per_worker_ahead(n_workers):
    # a slow consumer holds the workers back: when result i is handed out, at most
    # 2 n_workers items beyond it have been started
    func = _Recorder()
    for i, _ in enumerate(imap_ordered(func, range(40), n_workers)):
        time.sleep(0.005)  # let the workers run as far as they may
        with func.lock:
            started = func.started
        assert started <= i + 1 + 2 * n_workers, (i, started)
    assert func.started == 40


def test_imap_ordered_on_one_worker_is_lazy():
    func = _Recorder()
    gen = imap_ordered(func, range(10), 1)
    assert func.started == 0
    assert next(gen) == 0
    assert func.started == 1


def test_imap_ordered_error_stops_the_rest():
    n_workers = 2
    func = _Recorder(fail_at=3)
    with pytest.raises(RuntimeError, match="item 3 failed"):
        list(imap_ordered(func, range(50), n_workers))
    time.sleep(0.05)  # any item still allowed to start has started by now
    assert func.started <= 4 + 2 * n_workers


def test_imap_ordered_abandoned_generator_starts_nothing_more():
    n_workers = 2
    func = _Recorder()
    gen = imap_ordered(func, range(50), n_workers)
    assert next(gen) == 0
    gen.close()
    time.sleep(0.05)
    started = func.started
    assert started <= 1 + 2 * n_workers
    time.sleep(0.05)
    assert func.started == started


# ------------------------------------------------------------------ thread limits
def _blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_blas_limited_to_one_thread_only_with_several_workers():
    if not _blas_threads():
        pytest.skip("no BLAS library found by threadpoolctl")
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        if max(before) < 2:
            pytest.skip("the BLAS library does not allow two threads here")
        with blas_and_numba_threads(1):
            assert _blas_threads() == before  # one worker: BLAS keeps its threads
        with blas_and_numba_threads(2):
            assert _blas_threads() == [1] * len(before)
        assert _blas_threads() == before  # restored on exit


def test_blas_limit_is_restored_after_an_error():
    if not _blas_threads():
        pytest.skip("no BLAS library found by threadpoolctl")
    before = _blas_threads()
    with pytest.raises(ValueError):
        with blas_and_numba_threads(4):
            raise ValueError
    assert _blas_threads() == before


def test_numba_single_thread_is_thread_local():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba runs on a single thread here")
    main_before = numba.get_num_threads()
    seen = []

    def worker():
        numba_single_thread()
        seen.append(numba.get_num_threads())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [1]
    assert numba.get_num_threads() == main_before


def test_one_numba_thread_runs_on_one_thread_and_restores_the_count():
    import numba

    from skinfluence.utils._parallel import one_numba_thread

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread here")
    numba.set_num_threads(2)

    @one_numba_thread
    def task(x):
        if x < 0:
            raise ValueError("bad input")
        return numba.get_num_threads(), x

    assert task(3) == (1, 3)
    assert numba.get_num_threads() == 2
    with pytest.raises(ValueError):
        task(-1)
    assert numba.get_num_threads() == 2
