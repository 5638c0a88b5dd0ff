"""One block of the dask ``explain``, timed where dask runs it and where it does not.

The same task function (``skinfluence.influence._dask._explain_block``: the top ``k`` of
one training block of ``--rows`` rows for ``--queries`` queries, binary logistic
regression, 20 features) on the same data, timed inside:

* ``plain``: this kind of process, started by the script (``python -c``);
* ``plain, MALLOC_TRIM_THRESHOLD_``: the same, with the variable dask's nanny sets in its
  worker processes (``distributed.nanny.pre-spawn-environ``);
* ``worker process``: a ``LocalCluster`` worker process (``processes=True``);
* ``worker thread``: a ``LocalCluster`` worker thread in the calling process
  (``processes=False``);

with the block read from Parquet by ``dask.dataframe`` (as the library reads it) or as
a fresh C-contiguous numpy array.  Reported: the best of ``--repeat`` calls after a
warm-up, and the minor page faults of the process during the timed calls
(``ru_minflt``).

Run (BLAS pinned to one thread)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_dask_block.py
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_dask_block.py --rows 250000 --repeat 2
"""

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
D = 20


def prepare(directory, rows, queries):
    """Write the block as Parquet, fit the model, prepare the shared context and queries."""
    import dask.array as da
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression

    from skinfluence.influence._dask import DaskGLM, _queries

    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, D))
    w = rng.standard_normal(D) / np.sqrt(D)
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-(X @ w)))).astype(np.int64)
    columns = {f"x{j}": X[:, j] for j in range(D)}
    columns["y"] = y
    os.makedirs(os.path.join(directory, "pq"))
    pq.write_table(pa.table(columns), os.path.join(directory, "pq", "part.0.parquet"))
    np.save(os.path.join(directory, "X.npy"), X)
    np.save(os.path.join(directory, "y.npy"), y)
    model = LogisticRegression(C=1.0, max_iter=1000).fit(X[: rows // 5], y[: rows // 5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fitted on a sample: not at the optimum of all
        glm = DaskGLM.fit(FrozenEstimator(model), da.from_array(X, chunks=(rows, D)),
                          da.from_array(y, chunks=rows))
    with open(os.path.join(directory, "state.pkl"), "wb") as f:
        pickle.dump((glm.context, _queries(glm.template, X[:queries], y[:queries])), f)


def _block(directory, source):
    if source == "numpy":
        return (np.ascontiguousarray(np.load(os.path.join(directory, "X.npy"))),
                np.load(os.path.join(directory, "y.npy")))
    import dask
    import dask.dataframe as dd

    from skinfluence.utils._dask import row_blocked

    ddf = dd.read_parquet(os.path.join(directory, "pq"))
    X, y, _ = row_blocked(ddf[[f"x{j}" for j in range(D)]], ddf["y"])
    return dask.compute(X.blocks[0], y.blocks[0], scheduler="sync")


def time_block(directory, source, repeat, k=10):
    """In the calling process: the best seconds of ``repeat`` calls and their page faults."""
    from skinfluence.influence._dask import _explain_block

    with open(os.path.join(directory, "state.pkl"), "rb") as f:
        context, queries = pickle.load(f)
    X, y = _block(directory, source)
    _explain_block(queries, X[:20000], y[:20000], None, 0, context=context, k=k)  # warm up
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        _explain_block(queries, X, y, None, 0, context=context, k=k)
        best = min(best, time.perf_counter() - t0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {"seconds": best, "faults": faults / repeat,
            "malloc_trim": os.environ.get("MALLOC_TRIM_THRESHOLD_")}


def run_where(where, directory, source, repeat):
    if where.startswith("worker"):
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=1, threads_per_worker=1,
                          processes=where == "worker process",
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            return client.submit(time_block, directory, source, repeat, pure=False).result()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + HERE + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    if where.endswith("MALLOC_TRIM_THRESHOLD_"):
        env["MALLOC_TRIM_THRESHOLD_"] = "65536"
    code = ("import json, bench_dask_block as b; "
            f"print(json.dumps(b.time_block({directory!r}, {source!r}, {repeat})))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    sys.path.insert(0, HERE)
    # the worker processes import this checkout's skinfluence and this script
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [ROOT, HERE] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    from _common import print_table

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_dask_block_") as directory:
        prepare(directory, args.rows, args.queries)
        for where in ("plain", "plain, MALLOC_TRIM_THRESHOLD_", "worker process",
                      "worker thread"):
            for source in ("parquet", "numpy"):
                res = run_where(where, directory, source, args.repeat)
                res["malloc_trim"] = res["malloc_trim"] or "-"
                rows.append({"where": where, "source": source, **res})
                print(f"{where:32s} {source:8s} {res['seconds']:.2f} s", file=sys.stderr,
                      flush=True)
    plain = min(r["seconds"] for r in rows if r["where"] == "plain")
    for r in rows:
        r["ratio"] = r["seconds"] / plain
    print_table(rows, [("where", "runs in"), ("source", "block from"),
                       ("malloc_trim", "MALLOC_TRIM_THRESHOLD_"), ("seconds", "best s"),
                       ("ratio", "/ plain"), ("faults", "page faults / call")],
                title=f"_explain_block: {args.rows} training rows x {args.queries} queries, "
                      "k=10")


if __name__ == "__main__":
    main()
