"""KNNShapley on dask arrays and DataFrames gives the values of the in-memory path (to
1e-10) on a dask.distributed LocalCluster: the global ranking of the training points is
rebuilt exactly by the tree of sorted merges."""

import warnings

import numpy as np
import pytest

from skinfluence.valuation import KNNShapley

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

pytestmark = pytest.mark.dask

N, D, CHUNK = 230, 3, 50  # row blocks of 50, 50, 50, 50 and 30


def _data(task, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    # exact duplicates in other row blocks: ties in distance, broken by training index
    # across blocks as the in-memory argsort does
    X[[7, 60, 120, 220]] = X[3]
    X[[110, 180]] = X[55]
    signal = X @ rng.standard_normal(D) + 0.5 * rng.standard_normal(N)
    if task == "regression":
        return X, signal
    y = np.digitize(signal, [-0.5, 0.5])
    y[[7, 60]] = (y[3] + 1) % 3  # duplicates with other labels: the order of ties matters
    return X, y


def _close(got, expected):
    got = got.compute() if hasattr(got, "compute") else got
    np.testing.assert_allclose(got, expected, rtol=1e-10,
                               atol=1e-10 * np.abs(expected).max())


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("k", [1, 5])
def test_knn_shapley_on_dask_equals_in_memory(dask_client, task, k):
    X, y = _data(task)
    Xt, yt, Xv, yv = X[:200], y[:200], X[200:], y[200:]
    memory = KNNShapley(n_neighbors=k, task=task).fit(Xt, yt, X_val=Xv, y_val=yv)
    Xd, yd = da.from_array(Xt, chunks=(CHUNK, D)), da.from_array(yt, chunks=CHUNK)
    with distributed.get_task_stream(dask_client) as stream:
        lazy = KNNShapley(n_neighbors=k, task=task).fit(Xd, yd, X_val=Xv, y_val=yv)
    names = [str(t["key"]) for t in stream.data]
    assert sum("_sorted_block" in name for name in names) == 4  # one per row block
    assert sum("_merge" in name for name in names) == 3  # 4 sorted lists, merged as a tree
    assert lazy.task_ == memory.task_ == task
    assert lazy.n_validation_ == 30 and lazy.estimator_ is None
    _close(lazy.values_, memory.values_)
    # the values sum to the mean of U(all) - U(empty): the efficiency of the game
    np.testing.assert_allclose(lazy.values_.sum(), memory.values_.sum(), rtol=1e-12)
    rows = lazy.transform(da.from_array(Xv, chunks=7), yv)  # queries on dask too
    assert isinstance(rows, da.Array) and rows.chunks[1] == Xd.chunks[0]
    _close(rows, memory.transform(Xv, yv))


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_knn_shapley_on_dask_leave_self_out(dask_client, task, monkeypatch):
    import skinfluence.valuation._knn as knn_module

    monkeypatch.setattr(knn_module, "_CHUNK_ELEMENTS", 40 * N)  # validation chunks of 40
    X, y = _data(task)
    memory = KNNShapley(n_neighbors=3, task=task).fit(X, y)
    lazy = KNNShapley(n_neighbors=3, task=task).fit(da.from_array(X, chunks=(CHUNK, D)),
                                                     da.from_array(y, chunks=CHUNK))
    assert lazy.n_validation_ == N
    _close(lazy.values_, memory.values_)


def test_knn_shapley_on_dask_dataframes_keeps_the_column_names(dask_client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y = _data("classification")
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=y)
    memory = KNNShapley().fit(frame[["a", "b", "c"]][:200], y[:200],
                              X_val=frame[["a", "b", "c"]][200:], y_val=y[200:])
    ddf = dd.from_pandas(frame[:200], npartitions=3)
    lazy = KNNShapley().fit(ddf[["a", "b", "c"]], ddf["label"],
                            X_val=frame[["a", "b", "c"]][200:], y_val=y[200:])
    np.testing.assert_array_equal(lazy.feature_names_in_, ["a", "b", "c"])
    _close(lazy.values_, memory.values_)
    queries = dd.from_pandas(frame[200:], npartitions=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the query columns are checked by name, no warning
        rows = lazy.transform(queries[["a", "b", "c"]], queries["label"])
    _close(rows, memory.transform(frame[["a", "b", "c"]][200:], y[200:]))
    with pytest.raises(ValueError, match="feature names"):
        lazy.transform(frame[["c", "b", "a"]][200:], y[200:])


def test_knn_shapley_on_dask_refusals(dask_client):
    X, y = _data("classification")
    Xd, yd = da.from_array(X, chunks=(CHUNK, D)), da.from_array(y, chunks=CHUNK)
    lazy = KNNShapley().fit(Xd, yd, X_val=X[:5], y_val=y[:5])
    with pytest.raises(ValueError, match="pass y"):
        lazy.transform(X[:5])
    assert not hasattr(lazy, "predict")  # no KNN model in memory to delegate to
    bad = X.copy()
    bad[70, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        KNNShapley().fit(da.from_array(bad, chunks=(CHUNK, D)), yd, X_val=X[:5], y_val=y[:5])
    with pytest.raises(ValueError, match="both X_val and y_val"):
        KNNShapley().fit(Xd, yd, X_val=X[:5])
