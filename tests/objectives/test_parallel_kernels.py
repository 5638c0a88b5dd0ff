"""The row-parallel kernels give the same bits on one thread and on several (issue #18).

Small calls run on one numba thread (``skinfluence._numba.parallel_above``); these tests
compare that path with the same kernels forced parallel, entry by entry, byte for byte.
"""

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from numba import prange
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, PoissonRegressor, Ridge

from skinfluence import InfluenceFunctions
from skinfluence import _numba
from skinfluence.objectives import _kernels, glm, linear
from skinfluence.utils._parallel import one_numba_thread

several_threads = pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2, reason="numba has one thread on this machine"
)


@numba.njit(parallel=True)
def _threads_seen(out):
    for i in prange(out.shape[0]):
        out[i] = numba.get_num_threads()
    return out


@pytest.fixture(autouse=True)
def _restore_numba_threads():
    before = numba.get_num_threads()
    yield
    numba.set_num_threads(before)


_probe = _numba.parallel_above(min_entries=100)(_threads_seen)


@several_threads
def test_small_calls_run_on_one_thread_and_the_count_is_restored():
    numba.set_num_threads(2)
    assert np.all(_probe(np.zeros(99)) == 1)
    assert numba.get_num_threads() == 2
    assert np.all(_probe(np.zeros(100)) == 2)  # at the threshold: the caller's count
    assert _probe.kernel is _threads_seen and _probe.__doc__ == _threads_seen.__doc__
    # never raised above the caller's limit (dask tasks run under one_numba_thread)
    assert np.all(one_numba_thread(_probe)(np.zeros(1000)) == 1)
    assert numba.get_num_threads() == 2


def _bytes_equal(a, b):
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def _both_paths(kernel, *args):
    """``kernel(*args)`` through the wrapper (one thread here) and forced onto two threads."""
    serial = kernel(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    numba.set_num_threads(2)
    parallel = kernel.kernel(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    return serial, parallel


@several_threads
def test_loss_change_kernels_same_bits_on_one_and_two_threads():
    rng = np.random.default_rng(0)
    n, K, m = 301, 3, 37
    # output changes spanning the series (|d| <= 1e-3) and the exact branch
    D = rng.standard_normal((n, m)) * 10.0 ** rng.integers(-6, 1, (n, m))
    z = 3 * rng.standard_normal(n)
    y = (rng.random(n) < 0.5).astype(np.float64)
    got = _both_paths(_kernels.binary_logloss_change, z, y, D, np.empty((n, m)))
    assert _bytes_equal(*got)
    got = _both_paths(_kernels.binary_logloss_change, z, y, D.copy(), D.copy())  # in place
    assert _bytes_equal(*got)

    D3 = rng.standard_normal((n, K, m))
    Z = rng.standard_normal((n, K))
    labels = rng.integers(0, K, n).astype(np.intp)
    assert _bytes_equal(*_both_paths(_kernels.multinomial_logloss_change, Z, labels, D3,
                                     np.empty((n, m))))
    counts = rng.poisson(2.0, n).astype(np.float64)
    assert _bytes_equal(*_both_paths(glm.glm_loss_change, 1.0, True, counts, 0.1 * z,
                                     0.1 * D, np.empty((n, m))))
    code = linear.LOSS_CODES["huber"]
    T, A = rng.standard_normal((n, K)), rng.random((n, K))
    assert _bytes_equal(*_both_paths(linear.elementwise_loss_change, code, 1.35, T, A, Z, D3,
                                     np.empty((n, m))))
    X = sp.random(n, 40, density=0.2, format="csr", random_state=0)
    B = rng.standard_normal((40, m))
    got = _both_paths(_kernels.csr_matmul_dense, X.data, X.indices, X.indptr, B,
                      np.empty((n, m)))
    assert _bytes_equal(*got)
    np.testing.assert_allclose(got[0], X @ B, rtol=1e-12, atol=1e-12)


def _data(n=400, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n)


def _models():  # each reaches one of the wrapped kernels in explain and transform
    X, t = _data()
    yield "binary", LogisticRegression().fit(X, t > 0), X, t > 0
    classes = np.digitize(t, [-1.0, 1.0])
    yield "multinomial", LogisticRegression().fit(X, classes), X, classes
    counts = np.random.default_rng(1).poisson(np.exp(0.3 * X[:, 0]))
    yield "poisson", PoissonRegressor(alpha=0.1).fit(X, counts), X, counts
    yield "ridge", Ridge(alpha=1.0).fit(X, t), X, t
    Xs = sp.csr_matrix(np.where(np.abs(X) > 0.8, X, 0.0))
    yield "sparse", LogisticRegression().fit(Xs, t > 0), Xs, t > 0


@several_threads
@pytest.mark.parametrize("name", ["binary", "multinomial", "poisson", "ridge", "sparse"])
def test_explain_and_transform_same_bits_with_every_block_parallel(name, monkeypatch):
    model, X, y = next(m for m in _models() if m[0] == name)[1:]
    inf = InfluenceFunctions(FrozenEstimator(model)).fit(X, y)
    Xq, yq = X[:60], y[:60]
    numba.set_num_threads(2)
    serial = inf.explain(Xq, yq, k=7), inf.transform(Xq, yq)
    monkeypatch.setattr(_numba, "PARALLEL_MIN_ENTRIES", 0)  # a parallel region per block
    parallel = inf.explain(Xq, yq, k=7), inf.transform(Xq, yq)
    for key in ("helpful_indices", "helpful_values", "harmful_indices", "harmful_values"):
        assert _bytes_equal(np.asarray(serial[0][key]), np.asarray(parallel[0][key])), key
    assert _bytes_equal(np.asarray(serial[1]), np.asarray(parallel[1]))
