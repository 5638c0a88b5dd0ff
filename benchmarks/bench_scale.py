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
    parser.add_argument("--speed", action="store_true",
                        help="explain throughput vs the DGEMM roofline instead of memory")
    parser.add_argument("--baseline", help="--speed: also time the skinfluence at this path")
    parser.add_argument("--repeat", type=int, default=2, help="--speed: best of this many")
    parser.add_argument("--json", help=argparse.SUPPRESS)  # internal: measuring process
    parser.add_argument("--speed-json", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", help=argparse.SUPPRESS)  # internal: data process
    args = parser.parse_args()
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
