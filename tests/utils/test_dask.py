"""Dask inputs on the client: the values of dask frames, gathered partition by partition."""

import numpy as np
import pytest

from skinfluence.utils._dask import compute_values

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")
pd = pytest.importorskip("pandas")


def _largest_result(client, func):
    """``func()`` and the bytes of the largest result of a task it ran on the cluster."""
    with distributed.get_task_stream(client) as stream:
        out = func()
    return out, max(t["nbytes"] for t in stream.data)


def test_frame_values_are_gathered_on_the_client_not_on_one_worker(dask_client):
    rng = np.random.default_rng(0)
    labels = pd.Series(rng.integers(0, 3, 4000))
    series = dd.from_pandas(labels, npartitions=8)
    whole = labels.memory_usage(index=True)
    # dask's own compute concatenates the partitions in one task: a worker holds them all
    got, largest = _largest_result(dask_client, series.compute)
    assert largest >= whole
    values, largest = _largest_result(dask_client, lambda: compute_values(series))
    assert largest <= 2 * whole / 8  # no task holds more than about one partition
    np.testing.assert_array_equal(values, np.asarray(got))
    assert values.dtype == np.asarray(got).dtype
    frame = dd.from_pandas(pd.DataFrame({"a": labels, "b": labels * 0.5}), npartitions=3)
    np.testing.assert_array_equal(compute_values(frame), np.asarray(frame.compute()))
    np.testing.assert_array_equal(compute_values(da.from_array(labels.to_numpy(), 700)),
                                  labels.to_numpy())
    np.testing.assert_array_equal(compute_values([1, 2]), [1, 2])
