"""Fixtures shared by the test files of more than one folder."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture
def single_blas_thread():
    """One BLAS thread during the test; a module asks for it with
    ``pytestmark = pytest.mark.usefixtures("single_blas_thread")``.  Reference refits are
    many tiny problems, where BLAS threads only add contention (and the machine is shared).
    """
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def diabetes_standardised():
    """scikit-learn's diabetes data, every feature and the target standardised over all
    442 rows: ``(X, y)``, read-only (index or slice them; copy before writing)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


@pytest.fixture(scope="session")
def dask_cluster():
    """One in-process dask.distributed ``LocalCluster`` (a worker of 2 threads) for the whole
    session: starting one costs about a second.  Skips the test without distributed."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def dask_client(dask_cluster):
    """A client of the session's cluster for one test module.  It is closed after the
    module, so no other module computes on the cluster (the default client) unasked."""
    distributed = pytest.importorskip("distributed")
    with distributed.Client(dask_cluster) as client:
        yield client
