"""The same valuation calls run unchanged on a dask.distributed cluster through joblib."""

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.datasets import make_classification
from sklearn.tree import DecisionTreeClassifier

from skinfluence.valuation import DataOOB, LOOValuation, TMCShapley


@pytest.mark.dask
def test_dask_backend_gives_the_same_values(dask_client):
    import distributed

    X, y = make_classification(n_samples=60, n_features=4, n_redundant=0, random_state=0)
    X, Xv, y, yv = X[:20], X[20:], y[:20], y[20:]
    est = DecisionTreeClassifier(max_depth=2, random_state=0)
    tmc = TMCShapley(est, max_iter=16, batch_size=4, tol=None, random_state=0, n_jobs=2)
    loo = LOOValuation(est, n_jobs=2)
    oob = DataOOB(est, n_estimators=16, random_state=0, n_jobs=2)
    # results depend on random_state and batch_size only, so a sequential run is the reference
    with parallel_config(backend="sequential"):
        local = [m.fit(X, y, X_val=Xv, y_val=yv).values_ for m in (tmc, loo)]
        local.append(oob.fit(X, y).values_)
    with parallel_config(backend="dask"):
        with distributed.get_task_stream(dask_client) as stream:
            remote = [m.fit(X, y, X_val=Xv, y_val=yv).values_ for m in (tmc, loo)]
            remote.append(oob.fit(X, y).values_)
    assert len(stream.data) >= 3  # the work really ran as tasks on the cluster
    for a, b in zip(local, remote):
        np.testing.assert_array_equal(a, b)
