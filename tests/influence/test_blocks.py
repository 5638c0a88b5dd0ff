"""The blocks of explain and transform written into per-thread buffers reused across blocks
(``_blocks._Scratch``): the same values as fresh arrays, and no buffer shared by threads."""

import threading

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skinfluence import InfluenceFunctions
from skinfluence.influence._blocks import _Scratch


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
