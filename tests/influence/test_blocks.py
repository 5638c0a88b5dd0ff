"""The blocks of explain and transform written into per-thread buffers reused across blocks
(``_blocks._Scratch``): the same values as fresh arrays, and no buffer shared by threads."""

import threading

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from threadpoolctl import threadpool_info, threadpool_limits

from skinfluence import InfluenceFunctions
from skinfluence.influence import _base
from skinfluence.influence._blocks import _Scratch
from skinfluence.utils import _parallel


def test_scratch_reuses_a_buffer_per_name_and_thread():
    scratch = _Scratch()
    a = scratch.get("values", (3, 4))
    b = scratch.get("values", (3, 2))  # smaller: the same memory, contiguous
    assert np.shares_memory(a, b) and b.shape == (3, 2) and b.flags.c_contiguous
    assert not np.shares_memory(scratch.get("changes", (3, 4)), a)
    c = scratch.get("values", (5, 4))  # larger: a new buffer, kept from then on
    assert not np.shares_memory(a, c)
    assert np.shares_memory(scratch.get("values", (2, 2)), c)
    other = []
    thread = threading.Thread(target=lambda: other.append(scratch.get("values", (3, 4))))
    thread.start()
    thread.join()
    assert not np.shares_memory(other[0], c)


@pytest.mark.parametrize("approximation", ["first_order", "newton"])
def test_query_blocks_in_reused_buffers_equal_fresh_blocks(approximation):
    X, y = make_classification(n_samples=300, n_features=5, random_state=3)
    inf = InfluenceFunctions(LogisticRegression(), approximation=approximation,
                             refine=0).fit(X[:250], y[:250])
    blocks = inf._blocks()
    Xf, Z0, y_enc = inf._queries(X[250:], y[250:])
    values = blocks._query_block(Xf, Z0, y_enc)
    chunks = [slice(0, 64), slice(64, 128), slice(128, 250)]  # the last one wider
    got = []
    for cols in chunks:
        block = values(cols)
        assert block.shape == (50, cols.stop - cols.start)
        got.append((block, block.copy()))
    # one buffer for all the blocks of this thread, each block right when it was made
    assert np.shares_memory(got[0][0], got[1][0])
    for cols, (_, copy) in zip(chunks, got):
        np.testing.assert_array_equal(copy, blocks.block(Xf, Z0, y_enc, cols))
    # with out= (transform), the values land there and not in the buffer
    out = np.empty((50, 250))
    values(slice(0, 250), out=out)
    np.testing.assert_array_equal(out, inf.transform(X[250:], y[250:]))



def _blas_threads():
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


@pytest.mark.parametrize("approximation", ["first_order", "newton"])
def test_blocks_with_one_blas_thread_give_the_same_bytes(approximation, monkeypatch):
    # small blocks, so explain and transform loop over many of them
    monkeypatch.setattr(_base, "BLOCK_ENTRIES", 4096)
    monkeypatch.setattr(_base, "EXPLAIN_BLOCK_ENTRIES", 4096)
    monkeypatch.setattr(_base, "ROW_BLOCK_ENTRIES", 4096)
    X, y = make_classification(n_samples=1200, n_features=30, random_state=4)
    inf = InfluenceFunctions(LogisticRegression(), approximation=approximation,
                             refine=0).fit(X[:1000], y[:1000])
    seen, directions = [], inf._removal.directions

    def spy(cols):  # the BLAS threads each block's products run with
        seen.append(_blas_threads())
        return directions(cols)

    monkeypatch.setattr(inf._removal, "directions", spy)

    def run():
        seen.clear()
        ex = inf.explain(X[1000:], y[1000:], k=5)
        threads = set(seen)
        return threads, [ex[name] for name in sorted(ex)] + [
            inf.transform(X[1000:], y[1000:]), inf.transform(X[1000:])]

    if not threadpool_info() or _blas_threads() < 1:
        pytest.skip("no BLAS library found by threadpoolctl")
    with threadpool_limits(limits=2, user_api="blas"):
        if _blas_threads() < 2:
            pytest.skip("the BLAS library does not allow two threads here")
        monkeypatch.setattr(_parallel, "BLAS_PARALLEL_MIN_ENTRIES", 0)  # never limited
        threads_free, free = run()
        monkeypatch.setattr(_parallel, "BLAS_PARALLEL_MIN_ENTRIES", 1 << 24)
        threads_limited, limited = run()
    assert threads_free == {2} and threads_limited == {1}
    for a, b in zip(free, limited):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
