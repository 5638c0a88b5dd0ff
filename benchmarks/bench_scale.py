"""Peak memory and time of the in-memory path on large data, one fresh process per size.

Binary logistic regression, ``d`` standard-normal features, a model already fitted by
scikit-learn (``LogisticRegression(C=1)``, lbfgs) wrapped in ``FrozenEstimator``.  For
each number of rows:

1. a preparation process draws ``X`` (float64) and ``y``, fits the model and saves the
   three to a temporary directory (its memory is not measured);
2. a fresh measuring process imports skinfluence, warms up the numba kernels on a tiny
   problem, loads ``X`` and ``y`` and runs, in order:

   * ``fit``: ``InfluenceFunctions(FrozenEstimator(model)).fit(X, y)``;
   * ``self_influence_``;
   * ``explain``: 1000 training rows as queries, ``k=10``;
   * ``cleaner``: ``InfluenceCleaner(FrozenEstimator(model)).fit(X, y)`` (``"loo"``).

   After each stage it records the wall time and ``ru_maxrss`` (the peak resident set
   size of the process so far).
3. another fresh process runs ``fit`` and ``transform`` of ``--transform-rows`` queries
   written into an ``np.memmap`` on disk (``out=``; dask: ``da.to_npy_stack``), whose
   pages count in the resident set while they are written.

The table prints the seconds per stage, the peak RSS, the RSS before ``X`` was loaded
(interpreter and libraries) and ``(peak - before) / size of X``: the memory the
computation needed on top of the libraries, in units of the data.  The target of
issue 18 is at most 1.5 (``X`` itself plus half of it) plus ``O(p^2)``.

``--dask`` adds the same stages on dask arrays (row blocks of ``--chunk-rows``, read
from ``.npy`` files on disk by the tasks: ``X`` is never held whole) on a ``LocalCluster``
of one worker thread in the measuring process (``processes=False``), with the peak of
that process; ``--chunk-rows`` defaults to 250,000.

``--parquet ROWS`` measures the cluster path on a file larger than memory instead:

1. a ``ROWS x 20`` logistic-regression data set (columns ``x0..x19`` float64 and ``y``)
   is written as Parquet, one file per ``--partition-rows`` rows, each partition drawn
   and written in turn (never the whole set in memory), into ``--dir`` (kept for reuse
   when it holds the same set) or a temporary directory;
2. ``LogisticRegression(C=1)`` is fitted on the first partition (a model fitted on a
   sample, as one would; the stationarity warning on all rows is expected);
3. a ``LocalCluster`` of ``--workers`` worker processes, one thread each,
   ``memory_limit=--memory-limit``, reads the file with ``dask.dataframe`` and runs
   ``InfluenceFunctions(FrozenEstimator(model)).fit`` on the DataFrame, ``explain`` of
   ``--queries`` rows (``k``) and ``InfluenceCleaner(FrozenEstimator(model)).fit``;
4. it reports the wall time per stage, each worker's peak RSS (``ru_maxrss`` of the
   worker process), the bytes it spilled to disk, whether any worker was killed (its
   process id changed or it disappeared), the client's peak RSS, and rows/s against
   the in-memory path on ``--inmemory-rows`` rows of the same data (a fresh process).

``--speed`` measures instead the throughput of ``explain`` (``--queries`` training rows as
queries, ``k``) with ``approximation="first_order"`` and ``"newton"`` (``refine=0``: the
one-step formulas), each against, in the same process, the DGEMM roofline (the time of the
same-size product ``(queries x p) @ (p x rows)`` in column blocks, the best block width of a
few, best of the repeats) and a naive numpy top-k (the same blocked product followed by
``np.argpartition`` of every block, 2048 columns a block).  ``--baseline PATH`` runs the same
measurement with the skinfluence at ``PATH`` (e.g. an older checkout) in a fresh process of
the same run, alternating with the current code, so before/after ratios share the machine's
load.

Run (BLAS pinned to one thread for stable timings)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_scale.py --rows 200000
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_scale.py --rows 200000,2000000
    python benchmarks/bench_scale.py --rows 20000 --trace   # + tracemalloc top allocations
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_scale.py --parquet 5000000
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_scale.py --speed --rows 200000,2000000 \
        --baseline /tmp/skinfluence-before
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

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def rss_mib():
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 2**20 if sys.platform == "darwin" else kb / 1024.0


def current_rss_mib():
    """Resident set size now, in MiB (Linux; else the peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return rss_mib()


# --------------------------------------------------------------------- preparation
def prepare(directory, n, d, chunk_rows=0, seed=0):
    """Draw the data, fit the model, save ``X.npy``, ``y.npy`` and ``model.pkl``; with
    ``chunk_rows``, also ``X`` and ``y`` as dask npy stacks of that many rows a block."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.standard_normal(d) / np.sqrt(d)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(X @ w + 0.3)))).astype(np.int64)
    model = LogisticRegression(C=1.0, tol=1e-8, max_iter=1000).fit(X, y)
    np.save(os.path.join(directory, "X.npy"), X)
    np.save(os.path.join(directory, "y.npy"), y)
    with open(os.path.join(directory, "model.pkl"), "wb") as f:
        pickle.dump(model, f)
    if chunk_rows:
        import dask
        import dask.array as da

        with dask.config.set(scheduler="synchronous"):
            da.to_npy_stack(os.path.join(directory, "X_stack"),
                            da.from_array(X, chunks=(chunk_rows, d)))
            da.to_npy_stack(os.path.join(directory, "y_stack"),
                            da.from_array(y, chunks=chunk_rows))


# ----------------------------------------------------------------------- measuring
def _warm_up():
    """Compile/load the numba kernels on a tiny problem so that no stage pays for it."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression

    from skinfluence import InfluenceFunctions
    from skinfluence.cleaning import InfluenceCleaner

    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 5))
    y = (X[:, 0] + rng.standard_normal(200) > 0).astype(int)
    m = LogisticRegression().fit(X, y)
    inf = InfluenceFunctions(FrozenEstimator(m)).fit(X, y)
    inf.self_influence_
    inf.explain(X[:5], y[:5], k=3)
    inf.transform(X[:5], y[:5])
    InfluenceCleaner(FrozenEstimator(m)).fit(X, y)


class _Trace:
    """tracemalloc's largest allocation sites of a stage (``--trace``)."""

    def __init__(self, enabled):
        self.enabled = enabled
        if enabled:
            import tracemalloc

            self.tm = tracemalloc
            tracemalloc.start(8)
        self.report = {}

    def stage(self, name, before):
        if not self.enabled:
            return
        snap = self.tm.take_snapshot()
        _, peak = self.tm.get_traced_memory()
        stats = snap.compare_to(before, "traceback")[:4]
        self.report[name] = {
            "peak_mib": peak / 2**20,
            "held": [(s.size_diff / 2**20, s.traceback.format()[-6:]) for s in stats],
        }
        self.tm.reset_peak()

    def snapshot(self):
        return self.tm.take_snapshot() if self.enabled else None


def measure(directory, n_queries, k, transform_rows, trace, dask_chunk):
    """Run the stages on the saved data; return a dict of times and peaks (MiB).

    With ``transform_rows`` only ``fit`` and ``transform`` into a memmap run (in their
    own process: the memmap's pages count in the resident set while they are written).
    """
    import warnings

    from sklearn.frozen import FrozenEstimator

    from skinfluence import InfluenceFunctions
    from skinfluence.cleaning import InfluenceCleaner

    _warm_up()
    out = {"rss_libraries": current_rss_mib()}
    client = None
    if dask_chunk:  # the blocks are read from disk by the tasks: X is never in memory
        import dask.array as da
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                               dashboard_address=":0")
        client = Client(cluster)
        X = da.from_npy_stack(os.path.join(directory, "X_stack"))
        y = da.from_npy_stack(os.path.join(directory, "y_stack"))
        Xq = np.array(np.load(os.path.join(directory, "X.npy"), mmap_mode="r")[:n_queries])
        yq = np.array(np.load(os.path.join(directory, "y.npy"), mmap_mode="r")[:n_queries])
        out["x_mib"] = X.size * 8 / 2**20
    else:
        X = np.load(os.path.join(directory, "X.npy"))
        y = np.load(os.path.join(directory, "y.npy"))
        Xq, yq = X[:n_queries], y[:n_queries]
        out["x_mib"] = X.nbytes / 2**20
    with open(os.path.join(directory, "model.pkl"), "rb") as f:
        model = pickle.load(f)
    out["rows"], out["features"] = X.shape
    out["rss_loaded"] = rss_mib()
    tr = _Trace(trace)

    def stage(name, func):
        before = tr.snapshot()
        t0 = time.perf_counter()
        result = func()
        out[f"t_{name}"] = time.perf_counter() - t0
        out[f"peak_{name}"] = rss_mib()
        tr.stage(name, before)
        return result

    def computed(a):
        return a.compute() if hasattr(a, "compute") else a

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stationarity or damping warning is a bad setup
        inf = stage("fit", lambda: InfluenceFunctions(FrozenEstimator(model)).fit(X, y))
        if transform_rows:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "influence.npy")

                def transform():
                    if dask_chunk:  # a lazy result, stored block by block
                        da.to_npy_stack(tmp, inf.transform(Xq[:transform_rows],
                                                           yq[:transform_rows]))
                        return
                    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64,
                                                   shape=(transform_rows, out["rows"]))
                    inf.transform(Xq[:transform_rows], yq[:transform_rows], out=mm)
                    mm.flush()

                stage("transform", transform)
        else:
            stage("self_influence", lambda: computed(inf.self_influence_))
            stage("explain", lambda: inf.explain(Xq, yq, k=k))
            del inf
            stage("cleaner", lambda: InfluenceCleaner(FrozenEstimator(model)).fit(X, y))
    if client is not None:
        client.close()
    out["peak"] = rss_mib()
    if trace:
        out["trace"] = tr.report
    return out


# ---------------------------------------------------------------- Parquet on a cluster
PARQUET_FEATURES = 20


def _partition(i, rows, d, w):
    """Partition ``i``: its own stream of random numbers, so any partition can be redrawn."""
    rng = np.random.default_rng([0, i])
    X = rng.standard_normal((rows, d))
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-(X @ w + 0.3)))).astype(np.int64)
    return X, y


def write_parquet(directory, n, partition_rows, d=PARQUET_FEATURES):
    """Write ``n`` rows as Parquet files of ``partition_rows`` rows, one at a time; return
    the seconds taken (0 when ``directory`` already holds this data set)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    stamp = os.path.join(directory, "_DATASET")
    key = f"{n} {partition_rows} {d}"
    if os.path.exists(stamp) and open(stamp).read() == key:
        return 0.0
    os.makedirs(directory, exist_ok=True)
    w = np.random.default_rng(12345).standard_normal(d) / np.sqrt(d)
    t0 = time.perf_counter()
    starts = range(0, n, partition_rows)
    for i, start in enumerate(starts):
        X, y = _partition(i, min(partition_rows, n - start), d, w)
        columns = {f"x{j}": X[:, j] for j in range(d)}
        columns["y"] = y
        pq.write_table(pa.table(columns), os.path.join(directory, f"part.{i:05d}.parquet"))
        del X, y, columns
    with open(stamp, "w") as f:
        f.write(key)
    return time.perf_counter() - t0


def _worker_report(dask_worker):
    """Peak RSS (MiB) of a worker process, the bytes it has spilled to disk, its pid."""
    spilled = sum(v for k, v in dask_worker.digests_total.items()
                  if "disk-write" in k and "bytes" in k)
    return {"peak_mib": rss_mib(), "spilled_bytes": float(spilled), "pid": os.getpid()}


def peak_since_reset_mib(reset=True):
    """Peak RSS (MiB) of this process since the last reset (Linux ``VmHWM``), then, with
    ``reset``, start a new peak from the RSS now (``clear_refs`` 5); None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        if reset:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
    except (OSError, StopIteration):
        return None
    return hwm / 1024.0


def _stages(X, y, Xq, yq, model, k, t, phase=None):
    """fit, explain and the cleaner, timed into ``t``; ``phase(name)`` is called before the
    first stage (``None``) and after each."""
    import warnings

    from sklearn.frozen import FrozenEstimator

    from skinfluence import InfluenceFunctions
    from skinfluence.cleaning import InfluenceCleaner
    from skinfluence.objectives import NotStationaryWarning

    with warnings.catch_warnings():
        # the model was fitted on a sample: not at the optimum of all rows, as expected
        warnings.simplefilter("ignore", NotStationaryWarning)
        phase = phase or (lambda name: None)
        phase(None)
        t0 = time.perf_counter()
        inf = InfluenceFunctions(FrozenEstimator(model)).fit(X, y)
        t["fit"] = time.perf_counter() - t0
        phase("fit")
        t0 = time.perf_counter()
        inf.explain(Xq, yq, k=k)
        t["explain"] = time.perf_counter() - t0
        phase("explain")
        del inf
        t0 = time.perf_counter()
        InfluenceCleaner(FrozenEstimator(model)).fit(X, y)
        t["cleaner"] = time.perf_counter() - t0
        phase("cleaner")
    return t


def measure_parquet(directory, n_queries, k, workers, memory_limit):
    """The cluster path on the Parquet files of ``directory`` (see the module docstring)."""
    import dask.dataframe as dd
    import pyarrow.parquet as pq
    from distributed import Client, LocalCluster
    from sklearn.linear_model import LogisticRegression

    _warm_up()
    first = pq.read_table(os.path.join(directory, "part.00000.parquet")).to_pandas()
    columns = [f"x{j}" for j in range(PARQUET_FEATURES)]
    Xs, ys = first[columns].to_numpy(), first["y"].to_numpy()
    model = LogisticRegression(C=1.0, tol=1e-8, max_iter=1000).fit(Xs, ys)
    Xq, yq = Xs[:n_queries].copy(), ys[:n_queries].copy()
    del first, Xs, ys
    out = {"rss_libraries": current_rss_mib()}
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      memory_limit=memory_limit, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        client.run(_warm_up)
        before = client.run(_worker_report)
        ddf = dd.read_parquet(directory)
        t, phases = {}, {}

        def phase(name):  # each worker's (and the client's) peak RSS in the stage
            peaks = client.run(peak_since_reset_mib)
            phases[name] = {"workers": [peaks[a] for a in sorted(peaks)],
                            "client": peak_since_reset_mib()}

        t0 = time.perf_counter()
        _stages(ddf[columns], ddf["y"], Xq, yq, model, k, t, phase)
        out["t_total"] = time.perf_counter() - t0
        after = client.run(_worker_report)
        out.update({f"t_{s}": v for s, v in t.items()})
        start = phases.pop(None)
        out["phases"] = phases
        # the peaks of the stages: a worker's ru_maxrss counts from the fork that started it
        # (as much as the client held then) and is reset with VmHWM; ru_maxrss elsewhere
        measured = phases and None not in start["workers"]
        out["workers"] = [
            {"peak_mib": (max(ph["workers"][i] for ph in phases.values()) if measured
                          else after[a]["peak_mib"]),
             "spilled_bytes": after[a]["spilled_bytes"]}
            for i, a in enumerate(sorted(after))]
        pids_before = sorted(r["pid"] for r in before.values())
        pids_after = sorted(r["pid"] for r in after.values())
        out["killed"] = pids_before != pids_after
        out["rows"] = int(sum(pq.ParquetFile(os.path.join(directory, f)).metadata.num_rows
                              for f in sorted(os.listdir(directory)) if f.endswith(".parquet")))
    out["client_peak_mib"] = (max([start["client"]] + [ph["client"] for ph in phases.values()])
                              if measured else rss_mib())
    return out


def measure_inmemory(directory, n_rows, n_queries, k, partition_rows):
    """The in-memory path on the first ``n_rows`` rows of the same data set."""
    import pyarrow.parquet as pq
    from sklearn.linear_model import LogisticRegression

    _warm_up()
    files = sorted(f for f in os.listdir(directory) if f.endswith(".parquet"))
    columns = [f"x{j}" for j in range(PARQUET_FEATURES)]
    X = np.empty((n_rows, PARQUET_FEATURES))
    y = np.empty(n_rows, dtype=np.int64)
    start = 0
    for f in files:
        if start >= n_rows:
            break
        part = pq.read_table(os.path.join(directory, f)).to_pandas()
        m = min(len(part), n_rows - start)
        X[start:start + m] = part[columns].to_numpy()[:m]
        y[start:start + m] = part["y"].to_numpy()[:m]
        start += m
        del part
    X, y = X[:start], y[:start]
    m0 = min(partition_rows, start)  # the model of the cluster run: the first partition
    model = LogisticRegression(C=1.0, tol=1e-8, max_iter=1000).fit(X[:m0], y[:m0])
    t = {}
    t0 = time.perf_counter()
    _stages(X, y, X[:n_queries], y[:n_queries], model, k, t)
    out = {f"t_{s}": v for s, v in t.items()}
    out["t_total"] = time.perf_counter() - t0
    out["rows"] = int(start)
    out["peak_mib"] = rss_mib()
    return out


def parquet_main(args):
    directory = args.dir or tempfile.mkdtemp(prefix="bench_scale_parquet_")
    try:
        t_write = write_parquet(directory, args.parquet, args.partition_rows)
        print(f"data: {args.parquet} x {PARQUET_FEATURES} in {directory} "
              f"({'written in %.0f s' % t_write if t_write else 'reused'})", flush=True)
        common = ["--queries", str(args.queries), "--k", str(args.k),
                  "--partition-rows", str(args.partition_rows)]
        cluster = json.loads(_run([sys.executable, __file__, "--json-parquet",
                                   f"cluster:{directory}", "--workers", str(args.workers),
                                   "--memory-limit", args.memory_limit] + common))
        memory = json.loads(_run([sys.executable, __file__, "--json-parquet",
                                  f"memory:{directory}", "--inmemory-rows",
                                  str(args.inmemory_rows)] + common))
    finally:
        if not args.dir:
            import shutil

            shutil.rmtree(directory, ignore_errors=True)
    _print_parquet(cluster, memory, args)


def _print_parquet(cluster, memory, args):
    sys.path.insert(0, HERE)
    from _common import print_table

    rows = []
    for name, r in (("dask cluster, Parquet", cluster), ("in memory (numpy)", memory)):
        rows.append({"path": name, "rows": r["rows"], "fit": r["t_fit"],
                     "explain": r["t_explain"], "cleaner": r["t_cleaner"],
                     "total": r["t_total"], "rate": r["rows"] / r["t_total"]})
    print_table(rows, [("path", "path"), ("rows", "rows"), ("fit", "fit s"),
                       ("explain", f"explain {args.queries} q s"), ("cleaner", "cleaner s"),
                       ("total", "total s"), ("rate", "rows/s")],
                title=f"Parquet on a LocalCluster of {args.workers} workers "
                      f"(memory_limit={args.memory_limit}) against the in-memory path")
    ratio = rows[1]["rate"] / rows[0]["rate"]
    print(f"\nin-memory rows/s / cluster rows/s: {ratio:.2f} (target <= 2)")
    for i, w in enumerate(cluster["workers"]):
        print(f"worker {i}: peak RSS in the stages {w['peak_mib'] / 1024:.2f} GiB, spilled "
              f"to disk {w['spilled_bytes'] / 2**20:.0f} MiB")
    for name, ph in cluster.get("phases", {}).items():
        if None not in ph["workers"]:
            print(f"{name}: peak RSS in the stage, workers "
                  + ", ".join(f"{w / 1024:.2f}" for w in ph["workers"])
                  + f" GiB; client {ph['client'] / 1024:.2f} GiB")
    print(f"any worker killed: {'YES' if cluster['killed'] else 'no'}; client peak RSS "
          f"{cluster['client_peak_mib'] / 1024:.2f} GiB; in-memory peak RSS "
          f"{memory['peak_mib'] / 1024:.2f} GiB")


def measure_speed(directory, n_queries, k, repeat):
    """Seconds of ``explain`` (first order, newton) beside the roofline and a naive top-k."""
    import warnings

    from sklearn.frozen import FrozenEstimator

    import skinfluence
    from skinfluence import InfluenceFunctions

    _warm_up()
    X = np.load(os.path.join(directory, "X.npy"))
    y = np.load(os.path.join(directory, "y.npy"))
    with open(os.path.join(directory, "model.pkl"), "rb") as f:
        model = pickle.load(f)
    Xq, yq = X[:n_queries], y[:n_queries]
    n, p = X.shape[0], X.shape[1] + 1
    rng = np.random.default_rng(0)
    G = rng.standard_normal((n_queries, p))
    V = rng.standard_normal((p, n))

    def roofline(width):
        buf = np.empty((n_queries, width))
        for start in range(0, n, width):
            stop = min(start + width, n)
            np.matmul(G, V[:, start:stop], out=buf[:, :stop - start])

    def naive():
        best_i = np.empty((n_queries, 0), dtype=np.intp)
        best_v = np.empty((n_queries, 0))
        for start in range(0, n, 2048):
            B = G @ V[:, start:start + 2048]
            part = np.argpartition(-B, k - 1, axis=1)[:, :k]
            cand_v = np.concatenate([best_v, np.take_along_axis(B, part, 1)], axis=1)
            cand_i = np.concatenate([best_i, part + start], axis=1)
            order = np.argsort(-cand_v, axis=1, kind="stable")[:, :k]
            best_v = np.take_along_axis(cand_v, order, 1)
            best_i = np.take_along_axis(cand_i, order, 1)
            np.argpartition(B, k - 1, axis=1)  # the harmful side
        return best_i

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        infs = {a: InfluenceFunctions(FrozenEstimator(model), approximation=a,
                                      refine=0).fit(X, y)
                for a in ("first_order", "newton")}
    times = {"roofline": np.inf, "naive": np.inf, "first_order": np.inf, "newton": np.inf}
    for _ in range(repeat):  # alternated, so that all see the same background load
        for width in (256, 2048):
            t0 = time.perf_counter()
            roofline(width)
            times["roofline"] = min(times["roofline"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        naive()
        times["naive"] = min(times["naive"], time.perf_counter() - t0)
        for a, inf in infs.items():
            t0 = time.perf_counter()
            inf.explain(Xq, yq, k=k)
            times[a] = min(times[a], time.perf_counter() - t0)
    times["rows"], times["code"] = n, os.path.dirname(os.path.dirname(skinfluence.__file__))
    times["load"] = os.getloadavg()[0]
    return times


# ------------------------------------------------------------------------- driver
STAGES = ("fit", "self_influence", "explain", "cleaner", "transform")


def _run(cmd, code=ROOT):
    env = dict(os.environ, PYTHONPATH=code + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="200000", help="comma-separated numbers of rows")
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--transform-rows", type=int, default=16,
                        help="queries of the transform stage, written to a memmap (0: skip)")
    parser.add_argument("--trace", action="store_true", help="tracemalloc's top allocations")
    parser.add_argument("--dask", action="store_true", help="also on dask arrays")
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--parquet", type=int, metavar="ROWS",
                        help="the cluster path on ROWS x 20 rows of Parquet (see above)")
    parser.add_argument("--partition-rows", type=int, default=1_000_000,
                        help="rows per Parquet file (--parquet)")
    parser.add_argument("--workers", type=int, default=2, help="cluster workers (--parquet)")
    parser.add_argument("--memory-limit", default="4GB", help="per worker (--parquet)")
    parser.add_argument("--inmemory-rows", type=int, default=2_000_000,
                        help="rows of the in-memory comparison (--parquet)")
    parser.add_argument("--dir", help="where the Parquet files are written and kept "
                        "(--parquet; default: a temporary directory, removed)")
    parser.add_argument("--json-parquet", help=argparse.SUPPRESS)  # internal
    parser.add_argument("--speed", action="store_true",
                        help="explain throughput vs the DGEMM roofline instead of memory")
    parser.add_argument("--baseline", help="--speed: also time the skinfluence at this path")
    parser.add_argument("--repeat", type=int, default=2, help="--speed: best of this many")
    parser.add_argument("--speed-json", help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)  # internal: measuring process
    parser.add_argument("--prepare", help=argparse.SUPPRESS)  # internal: data process
    args = parser.parse_args()
    if args.json_parquet:
        kind, directory = args.json_parquet.split(":", 1)
        if kind == "cluster":
            res = measure_parquet(directory, args.queries, args.k, args.workers,
                                  args.memory_limit)
        else:
            res = measure_inmemory(directory, args.inmemory_rows, args.queries, args.k,
                                   args.partition_rows)
        print(json.dumps(res))
        return
    if args.parquet:
        parquet_main(args)
        return
    if args.prepare:
        directory, n = args.prepare.rsplit(":", 1)
        prepare(directory, int(n), args.features, args.chunk_rows)
        return
    if args.speed_json:
        print(json.dumps(measure_speed(args.speed_json, args.queries, args.k, args.repeat)))
        return
    if args.speed:
        _speed(args)
        return
    if args.json:
        directory, chunk = args.json.rsplit(":", 1)
        res = measure(directory, args.queries, args.k, args.transform_rows, args.trace,
                      int(chunk))
        print(json.dumps(res))
        return

    rows = []
    for n in (int(s) for s in args.rows.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            _run([sys.executable, __file__, "--prepare", f"{tmp}:{n}",
                  "--features", str(args.features),
                  "--chunk-rows", str(args.chunk_rows if args.dask else 0)])
            for chunk in [0] + ([args.chunk_rows] if args.dask else []):
                cmd = [sys.executable, __file__, "--json", f"{tmp}:{chunk}",
                       "--queries", str(args.queries), "--k", str(args.k)]
                cmd += ["--trace"] if args.trace else []
                res = json.loads(_run(cmd + ["--transform-rows", "0"]))
                if args.transform_rows:  # its own process: see measure()
                    tres = json.loads(_run(cmd + ["--transform-rows",
                                                  str(args.transform_rows)]))
                    res["t_transform"] = tres["t_transform"]
                    res["peak_transform"] = tres["peak"]
                    res.setdefault("trace", {}).update(tres.get("trace", {}))
                res["path"] = f"dask ({chunk} rows/chunk)" if chunk else "numpy"
                rows.append(res)
                _print_row(res)
    _print_table(rows, args.transform_rows)


def _speed(args):
    sys.path.insert(0, HERE)
    from _common import print_table

    codes = [ROOT] + ([os.path.abspath(args.baseline)] if args.baseline else [])
    rows = []
    for n in (int(s) for s in args.rows.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            _run([sys.executable, __file__, "--prepare", f"{tmp}:{n}",
                  "--features", str(args.features), "--chunk-rows", "0"])
            for code in codes[::-1]:  # the baseline first: it warms nothing up for us
                res = json.loads(_run([sys.executable, __file__, "--speed-json", tmp,
                                       "--queries", str(args.queries), "--k", str(args.k),
                                       "--repeat", str(args.repeat)], code))
                res["code"] = "baseline" if code != ROOT else "this"
                for key in ("naive", "first_order", "newton"):
                    res[f"{key}/roof"] = res[key] / res["roofline"]
                res["roof%"] = 100.0 * res["roofline"] / res["first_order"]
                res["newton/fo"] = res["newton"] / res["first_order"]
                rows.append(res)
    print_table(rows, [("rows", "rows"), ("code", "code"), ("load", "load"),
                       ("roofline", "roofline s"), ("naive", "naive top-k s"),
                       ("first_order", "first order s"), ("newton", "newton s"),
                       ("naive/roof", "naive/roof"), ("first_order/roof", "first order/roof"),
                       ("roof%", "first order % of roofline"),
                       ("newton/fo", "newton/first order")],
                title=f"explain of {args.queries} queries, k={args.k}, d={args.features} "
                      f"(best of {args.repeat}, seconds)")


def _print_row(res):
    if not res.get("trace"):
        return
    print(f"\n{res['rows']} rows, {res['path']}: tracemalloc")
    for name, rep in res["trace"].items():
        print(f"  {name}: traced peak {rep['peak_mib']:.0f} MiB; still held:")
        for size, tb in rep["held"]:
            print(f"    {size:+8.1f} MiB  " + " | ".join(line.strip() for line in tb[-2:]))


def _print_table(rows, transform_rows):
    sys.path.insert(0, HERE)
    from _common import print_table

    for r in rows:
        r["ratio"] = (r["peak"] - r["rss_libraries"]) / r["x_mib"]
        r["x_gib"] = r["x_mib"] / 1024
        r["peak_gib"] = r["peak"] / 1024
        r["lib_gib"] = r["rss_libraries"] / 1024
        if "peak_transform" in r:
            r["ratio_transform"] = (r["peak_transform"] - r["rss_libraries"]) / r["x_mib"]
    cols = [("rows", "rows"), ("path", "path"), ("x_gib", "X GiB")]
    cols += [(f"t_{s}", f"{s} s") for s in STAGES if s != "transform"]
    cols += [("lib_gib", "libs GiB"), ("peak_gib", "peak RSS GiB"),
             ("ratio", "(peak-libs)/X")]
    if transform_rows:
        cols += [("t_transform", f"transform {transform_rows} rows s"),
                 ("ratio_transform", "transform (peak-libs)/X")]
    print_table(rows, cols, title="Peak memory and time per stage (fresh processes)")
    print("\nPeak RSS after each stage (MiB, cumulative):")
    for r in rows:
        stages = ", ".join(f"{s} {r[f'peak_{s}']:.0f}" for s in STAGES if f"peak_{s}" in r)
        print(f"  {r['rows']} {r['path']}: libraries {r['rss_libraries']:.0f}, "
              f"loaded {r['rss_loaded']:.0f}, {stages}")


if __name__ == "__main__":
    main()
