"""Memory bounds: blockwise validation means, streamed top-k merges, and dense outputs that
are refused up front when they cannot fit."""

import threading
import tracemalloc
import weakref

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, SGDClassifier
from threadpoolctl import threadpool_limits

import skinfluence.influence._base as influence_base
import skinfluence.tracin as tracin_module
import skinfluence.base as base_module
import skinfluence.valuation._influence as valuation_influence
from skinfluence import InfluenceFunctions, TracIn
from skinfluence.valuation import InfluenceValuation, KNNShapley, LOOValuation


@pytest.fixture(autouse=True)
def _single_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _data(n_train, n_test, n_classes=2, seed=0):
    X, y = make_classification(n_samples=n_train + n_test, n_features=5, n_informative=3,
                               n_classes=n_classes, random_state=seed)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


# ------------------------------------------------ InfluenceValuation: blockwise mean
@pytest.mark.parametrize("n_classes", [2, 3])
def test_influence_valuation_block_mean_equals_full_mean(monkeypatch, n_classes):
    X, y, Xv, yv = _data(200, 61, n_classes=n_classes)
    model = LogisticRegression(max_iter=1000)
    full = InfluenceValuation(model).fit(X, y, X_val=Xv, y_val=yv)
    reference = full.influence_.transform(Xv, yv).mean(axis=0)
    np.testing.assert_array_equal(full.values_, reference)  # one block: the same reduction
    # 7 validation rows per block: 9 blocks, the last one short
    monkeypatch.setattr(valuation_influence, "_BLOCK_ENTRIES", 7 * 200)
    blocked = InfluenceValuation(model).fit(X, y, X_val=Xv, y_val=yv)
    np.testing.assert_allclose(blocked.values_, reference, rtol=1e-12,
                               atol=1e-12 * np.abs(reference).max())


@pytest.mark.parametrize("approximation, n_val", [("newton", 200), ("first_order", 200),
                                                   ("first_order", 60)])
def test_influence_valuation_without_cached_directions(monkeypatch, approximation, n_val):
    # parameter changes too many to cache: sums over chunks of training points, each
    # solved once, with the same numbers as the full matrix
    X, y, Xv, yv = _data(400, 200, n_classes=3)
    Xv, yv = Xv[:n_val], yv[:n_val]  # 60 x 3 outputs < 400: cg solves for the queries
    monkeypatch.setattr(influence_base, "CACHE_ENTRIES", 0)
    monkeypatch.setattr(influence_base, "BLOCK_ENTRIES", 1)  # chunks of 256 points
    model = LogisticRegression(max_iter=1000)
    for solver in ("exact", "cg") if approximation == "first_order" else ("exact",):
        iv = InfluenceValuation(model, approximation=approximation, solver=solver).fit(
            X, y, X_val=Xv, y_val=yv)
        assert not iv.influence_._removal.cached
        assert iv.influence_._blocks().query_side(n_val, yv) == (solver == "cg" and n_val == 60)
        reference = iv.influence_.transform(Xv, yv).mean(axis=0)
        np.testing.assert_allclose(iv.values_, reference, rtol=1e-12,
                                   atol=1e-12 * np.abs(reference).max())


@pytest.mark.parametrize("cached", [True, False])
def test_influence_valuation_peak_memory_is_bounded(monkeypatch, cached):
    # the full 4000 x 4000 influence matrix takes 128 MB; blocks of 50 validation rows take
    # 1.6 MB, chunks of 256 training points 8 MB
    n = 4000
    X, y, Xv, yv = _data(n, n)
    # raising=False: the test runs (and fails on the peak) where there is no such setting
    monkeypatch.setattr(valuation_influence, "_BLOCK_ENTRIES", 50 * n, raising=False)
    if not cached:
        monkeypatch.setattr(influence_base, "CACHE_ENTRIES", 0)
        monkeypatch.setattr(influence_base, "BLOCK_ENTRIES", 1)
    InfluenceValuation(LogisticRegression()).fit(X[:50], y[:50], X_val=Xv[:50], y_val=yv[:50])
    tracemalloc.start()  # after a first fit: numba's one-off compilation is not counted
    try:
        iv = InfluenceValuation(LogisticRegression()).fit(X, y, X_val=Xv, y_val=yv)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert iv.influence_._removal.cacheable == cached
    assert peak < (0.1 if cached else 0.25) * n * n * 8, f"peak {peak / 2**20:.1f} MiB"
    assert iv.values_.shape == (n,)


# ------------------------------------------------ explain: merge as the chunks arrive
class _AliveCounter:
    """Counts the per-chunk top-k results that exist at once."""

    def __init__(self):
        self.alive = 0
        self.peak = 0
        self.calls = 0
        self._lock = threading.Lock()

    def _dead(self):
        with self._lock:
            self.alive -= 1

    def wrap(self, top_k):
        def counted(vals, idx, k, largest):
            values, indices = top_k(vals, idx, k, largest)
            if largest:  # one count per chunk result
                with self._lock:
                    self.calls += 1
                    self.alive += 1
                    self.peak = max(self.peak, self.alive)
                weakref.finalize(values, self._dead)
            return values, indices

        return counted


def _count_explain(monkeypatch, explain):
    counter = _AliveCounter()
    monkeypatch.setattr(base_module, "_top_k", counter.wrap(base_module._top_k))
    result = explain()
    return counter, result


def _count_running_explain(monkeypatch, explain):
    """Counts the blocks folded into InfluenceFunctions' running top-k that exist at once."""
    counter = _AliveCounter()
    fold = base_module.RunningTopK.fold

    def counted(self, block, col0):
        with counter._lock:
            counter.calls += 1
            counter.alive += 1
            counter.peak = max(counter.peak, counter.alive)
        weakref.finalize(block, counter._dead)
        return fold(self, block, col0)

    monkeypatch.setattr(base_module.RunningTopK, "fold", counted)
    return counter, explain()


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_influence_explain_holds_a_bounded_number_of_chunk_results(monkeypatch, n_jobs):
    X, y, Xt, yt = _data(5000, 30, n_classes=3)
    inf = InfluenceFunctions(LogisticRegression(max_iter=1000), n_jobs=n_jobs).fit(X, y)
    # the running top-k folds columns in chunks of 64 training points: 79 chunks
    monkeypatch.setattr(influence_base, "BLOCK_ENTRIES", 1)
    counter, result = _count_running_explain(monkeypatch, lambda: inf.explain(Xt, yt, k=40))
    assert counter.calls == 79
    workers = 1 if n_jobs is None else n_jobs
    assert counter.peak <= 2 * workers + 2
    # the same top-k as the full matrix
    T = inf.transform(Xt, yt)
    order = np.argsort(-T, axis=1, kind="stable")[:, :40]
    np.testing.assert_array_equal(result.helpful_indices, order)
    np.testing.assert_allclose(result.helpful_values, np.take_along_axis(T, order, axis=1),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_tracin_explain_holds_a_bounded_number_of_chunk_results(monkeypatch, n_jobs):
    X, y, Xt, yt = _data(3000, 20)
    tr = TracIn(SGDClassifier(loss="log_loss", random_state=0), n_epochs=2, random_state=0,
                n_jobs=n_jobs).fit(X, y)
    monkeypatch.setattr(tracin_module, "_BLOCK_ENTRIES", 1)  # chunks of 64 points: 47
    counter, result = _count_explain(monkeypatch, lambda: tr.explain(Xt, yt, k=5))
    assert counter.calls == 47
    workers = 1 if n_jobs is None else n_jobs
    assert counter.peak <= 2 * workers + 2
    T = tr.transform(Xt, yt)
    order = np.argsort(T, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(result.harmful_indices, order)


def test_explain_is_the_same_for_any_n_jobs(monkeypatch):
    X, y, Xt, yt = _data(2000, 15, n_classes=3)
    monkeypatch.setattr(influence_base, "BLOCK_ENTRIES", 1)
    one = InfluenceFunctions(LogisticRegression(max_iter=1000)).fit(X, y).explain(Xt, yt, k=6)
    two = InfluenceFunctions(LogisticRegression(max_iter=1000), n_jobs=2).fit(X, y).explain(
        Xt, yt, k=6)
    for key in one:
        np.testing.assert_array_equal(one[key], two[key])


def test_imap_ordered_propagates_errors_in_order():
    from skinfluence.utils._parallel import imap_ordered

    def square_or_fail(i):
        if i == 5:
            raise RuntimeError("chunk 5")
        return i * i

    assert list(imap_ordered(square_or_fail, range(5), 3)) == [0, 1, 4, 9, 16]
    seen = []
    with pytest.raises(RuntimeError, match="chunk 5"):
        for value in imap_ordered(square_or_fail, range(20), 2):
            seen.append(value)
    assert seen == [0, 1, 4, 9, 16]


# ------------------------------------------------ transform that cannot fit: refused
def _little_memory(monkeypatch, nbytes):
    monkeypatch.setattr("skinfluence.utils._output.available_memory", lambda: nbytes)


def test_influence_transform_refuses_what_cannot_fit(monkeypatch):
    X, y, Xt, yt = _data(300, 40)
    inf = InfluenceFunctions(LogisticRegression()).fit(X, y)
    _little_memory(monkeypatch, 2**30)  # 1 GiB: the 40 x 300 result fits
    assert inf.transform(Xt, yt).shape == (40, 300)
    _little_memory(monkeypatch, 8 * 40 * 300)  # no room left to compute it
    with pytest.raises(MemoryError, match=r"40 x 300 float64 array \(0\.0 GiB\).*explain"):
        inf.transform(Xt, yt)
    with pytest.raises(MemoryError, match="blocks of rows"):
        inf.transform(Xt)  # output changes: the same size
    assert inf.explain(Xt, yt, k=3).helpful_indices.shape == (40, 3)  # the alternative works


def test_transform_memory_message_gives_gib(monkeypatch):
    from skinfluence.utils import _output as output

    _little_memory(monkeypatch, 3 * 2**30)
    with pytest.raises(MemoryError) as err:
        output.check_dense_output(20000, 200000, "InfluenceFunctions")
    msg = str(err.value)
    assert "20000 x 200000" in msg and "(29.8 GiB)" in msg and "3.0 GiB" in msg
    assert "explain(X, y, k)" in msg and "blocks of rows" in msg
    output.check_dense_output(1000, 1000, "InfluenceFunctions")  # 7.6 MiB: fine
    _little_memory(monkeypatch, None)  # unknown: no check
    output.check_dense_output(20000, 200000, "InfluenceFunctions")


def test_available_memory_is_plausible():
    from skinfluence.utils import _output as output

    avail = output.available_memory()
    assert avail is None or 0 < avail < 2**50


@pytest.mark.parametrize("make", ["tracin", "knn", "loo", "influence_valuation"])
def test_other_transforms_refuse_what_cannot_fit(monkeypatch, make):
    X, y, Xt, yt = _data(60, 10)
    est = {
        "tracin": lambda: TracIn(SGDClassifier(loss="log_loss", random_state=0), n_epochs=2,
                                 random_state=0).fit(X, y),
        "knn": lambda: KNNShapley(3).fit(X, y),
        "loo": lambda: LOOValuation(LogisticRegression()).fit(X, y, X_val=Xt, y_val=yt),
        "influence_valuation": lambda: InfluenceValuation(LogisticRegression()).fit(
            X, y, X_val=Xt, y_val=yt),
    }[make]()
    expected = est.transform(Xt, yt)
    assert expected.shape == (10, 60)
    _little_memory(monkeypatch, 8 * 10 * 60)
    with pytest.raises(MemoryError, match=rf"{type(est).__name__}\.transform .* 10 x 60"):
        est.transform(Xt, yt)
    _little_memory(monkeypatch, 2**30)
    np.testing.assert_array_equal(est.transform(Xt, yt), expected)


# ------------------------------------------------ transform into the caller's array (out=)
@pytest.mark.parametrize("approximation", ["newton", "first_order"])
@pytest.mark.parametrize("cached", [True, False])
def test_influence_transform_writes_into_a_memmap(tmp_path, monkeypatch, approximation,
                                                  cached):
    X, y, Xt, yt = _data(700, 30, n_classes=3)
    if not cached:  # parameter changes computed per chunk of 256 training points
        monkeypatch.setattr(influence_base, "CACHE_ENTRIES", 0)
        monkeypatch.setattr(influence_base, "BLOCK_ENTRIES", 1)
    inf = InfluenceFunctions(LogisticRegression(max_iter=1000),
                             approximation=approximation).fit(X, y)
    assert inf._removal.cacheable == cached
    for target in (yt, None):
        expected = inf.transform(Xt, target)
        path = tmp_path / f"influence_{target is None}.npy"
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(30, 700))
        got = inf.transform(Xt, target, out=mm)
        assert got is mm
        mm.flush()
        del mm, got
        np.testing.assert_array_equal(np.load(path), expected)


def test_influence_transform_out_is_checked_and_lifts_the_refusal(monkeypatch):
    X, y, Xt, yt = _data(300, 40)
    inf = InfluenceFunctions(LogisticRegression()).fit(X, y)
    expected = inf.transform(Xt, yt)
    _little_memory(monkeypatch, 8 * 40 * 300)  # no room for a new result ...
    with pytest.raises(MemoryError, match=r"out=np\.lib\.format\.open_memmap") as err:
        inf.transform(Xt, yt)
    assert "shape=(40, 300)" in str(err.value)
    out = np.empty((40, 300))  # ... but the caller's own array is written into
    assert inf.transform(Xt, yt, out=out) is out
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match=r"shape \(40, 300\) and dtype float64"):
        inf.transform(Xt, yt, out=np.empty((40, 299)))
    with pytest.raises(ValueError, match="dtype float64"):
        inf.transform(Xt, yt, out=np.empty((40, 300), dtype=np.float32))
    with pytest.raises(TypeError, match="numpy array or np.memmap"):
        inf.transform(Xt, yt, out=[[0.0] * 300] * 40)
    read_only = np.empty((40, 300))
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        inf.transform(Xt, yt, out=read_only)


# ------------------------------------------------ large data: nothing as large as X is held
def _frozen_logistic(n, d, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, 3] = 0.0  # a feature that is zero on every row (the cleaner drops it)
    W = rng.standard_normal((d, n_classes)) / np.sqrt(d)
    Z = X @ W + rng.gumbel(size=(n, n_classes))
    y = np.argmax(Z, axis=1)
    model = LogisticRegression(tol=1e-10, max_iter=1000).fit(X, y)
    return X, y, model


def _traced_peak(func):
    tracemalloc.start()
    try:
        result = func()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


def test_glm_influence_and_cleaning_never_copy_the_data(monkeypatch):
    from sklearn.frozen import FrozenEstimator

    import skinfluence.objectives._base as objectives_base
    from skinfluence.cleaning import InfluenceCleaner

    # row blocks and influence blocks of 2 MiB (raising=False: the bound is checked on
    # code without them too)
    monkeypatch.setattr(objectives_base, "ROW_BLOCK_ENTRIES", 1 << 18, raising=False)
    monkeypatch.setattr(influence_base, "BLOCK_ENTRIES", 1 << 18)

    # 60,000 x 100 float64: X is 45.8 MiB, a vector over its rows 0.46 MiB (1/100 of it),
    # too many for the parameter changes to be cached (101 x 60,000 > LINEAR_CACHE_ENTRIES).
    # Fit, self-influence, explain and the cleaner's leave-one-out path each keep their
    # temporaries to a few such vectors and blocks of a few MiB: a copy of X (an augmented
    # [X, 1], per-sample gradients, a weighted X for the Hessian, the (p, n) parameter
    # changes) would alone exceed the bound.
    X, y, model = _frozen_logistic(60_000, 100)
    small_X, small_y = X[:300], y[:300]
    InfluenceFunctions(FrozenEstimator(LogisticRegression().fit(small_X, small_y))).fit(
        small_X, small_y).explain(small_X[:5], small_y[:5], k=2)  # numba compiled, not counted
    bound = 0.5 * X.nbytes
    peak, inf = _traced_peak(lambda: InfluenceFunctions(FrozenEstimator(model)).fit(X, y))
    assert not inf._removal.cacheable
    assert peak < bound, f"fit: {peak / 2**20:.1f} MiB"
    peak, _ = _traced_peak(lambda: inf.self_influence_)
    assert peak < bound, f"self_influence_: {peak / 2**20:.1f} MiB"
    peak, _ = _traced_peak(lambda: inf.explain(X[:200], y[:200], k=5))
    assert peak < bound, f"explain: {peak / 2**20:.1f} MiB"
    inf = None  # the cleaner runs without the explainer's arrays
    peak, cleaner = _traced_peak(lambda: InfluenceCleaner(FrozenEstimator(model)).fit(X, y))
    assert peak < bound, f"cleaner: {peak / 2**20:.1f} MiB"
    assert cleaner.influence_ is None  # the leverage fast path ran


@pytest.mark.parametrize("n_classes", [2, 3])
def test_glm_row_blocks_give_the_numbers_of_one_block(monkeypatch, n_classes):
    from sklearn.frozen import FrozenEstimator

    import skinfluence.cleaning._loo as loo
    import skinfluence.objectives._base as objectives_base
    from skinfluence.cleaning import InfluenceCleaner
    from skinfluence.objectives import make_objective, stationarity

    # 9000 x 30: too many rows for the cleaner's pair products (its other kernels run)
    X, y, model = _frozen_logistic(9000, 30, n_classes=n_classes)
    frozen = FrozenEstimator(model)

    def run():
        inf = InfluenceFunctions(frozen).fit(X, y)
        obj = make_objective(model, X, y)
        cleaner = InfluenceCleaner(frozen).fit(X, y)
        return (obj.hessian(), stationarity(obj), inf.self_influence_,
                inf.transform(X[:20], y[:20]), cleaner.proba_)

    one = run()
    # blocks of 20,000 entries (at most 666 rows), the cleaner's [X, 1] built per block
    monkeypatch.setattr(objectives_base, "ROW_BLOCK_ENTRIES", 20_000)
    monkeypatch.setattr(loo, "_MATERIALISED_ENTRIES", 0)
    blocked = run()
    hessian, station, *rest = one
    np.testing.assert_allclose(blocked[0], hessian, rtol=1e-12, atol=1e-14 * hessian.max())
    # a ratio to the gradient scale, near zero at the optimum: rounding of the sums is ~1e-16
    assert abs(blocked[1] - station) < 1e-13
    for a, b in zip(rest, blocked[2:]):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13 * np.abs(a).max())
