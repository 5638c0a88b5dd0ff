"""In-memory ``explain`` under numba's thread settings, on a quiet core and next to a busy one.

Issue 18: the loss-change kernels are ``parallel=True`` and ``explain`` calls them once per
cache-sized block (about a thousand times here).  Each call was a parallel region; when
another process keeps a core busy, every region waits for a descheduled numba thread.

Each configuration runs in a fresh process (numba reads ``NUMBA_NUM_THREADS`` and
``NUMBA_THREADING_LAYER`` at start): binary logistic regression in ``FrozenEstimator``,
``--rows`` x 50 training rows, the first 1000 as queries, k=10, best of ``--repeat``.
"competing" runs a ``while True: pass`` process beside it (stopped afterwards).  BLAS has
one thread throughout.  ``--baseline`` times the skinfluence at that path too::

    python benchmarks/bench_threads.py --rows 500000 --baseline /tmp/before

``--blas`` times BLAS's thread count instead (numba at its default): the BLAS thread pool
left as it starts (``OPENBLAS_NUM_THREADS`` etc. unset), limited to 1 or 2 threads with
threadpoolctl, and ``OPENBLAS_NUM_THREADS=2`` set in the environment; for ``explain`` (1000
queries) and ``transform`` (200 queries, a ``--rows`` x 200 output) on ``--rows`` x 50, and
``transform`` of 1000 queries on 50,000 x 200 (``first_order``; 201 x 50,000 parameter changes
are above the cache budget of a linear model, so it runs column blocks of 1000 x 524, each a
GEMM with p=201)::

    python benchmarks/bench_threads.py --blas --repeat 3
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def measure(rows, repeat, n_jobs):
    import numba
    import numpy as np
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression

    from skinfluence import InfluenceFunctions

    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, 50))
    y = (X[:, 0] + rng.standard_normal(rows) > 0).astype(int)
    model = LogisticRegression(max_iter=500).fit(X[:20000], y[:20000])
    inf = InfluenceFunctions(FrozenEstimator(model), n_jobs=n_jobs).fit(X, y)
    inf.explain(X[:50], y[:50])  # compile / load the kernels
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        inf.explain(X[:1000], y[:1000], k=10)
        best = min(best, time.perf_counter() - start)
    return {"seconds": best, "layer": numba.threading_layer(),
            "threads": numba.get_num_threads(), "load": os.getloadavg()[0]}


def measure_blas(rows, repeat, limit):
    import contextlib

    import numpy as np
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_info, threadpool_limits

    from skinfluence import InfluenceFunctions

    def problem(n, d, approximation):
        rng = np.random.default_rng(0)
        X = rng.standard_normal((n, d))
        y = (X[:, 0] + rng.standard_normal(n) > 0).astype(int)
        model = LogisticRegression(max_iter=500).fit(X[:20000], y[:20000])
        return X, y, InfluenceFunctions(FrozenEstimator(model),
                                        approximation=approximation).fit(X, y)

    X, y, inf = problem(rows, 50, "newton")
    Xg, yg, infg = problem(50_000, 200, "first_order")
    Xq, yq = Xg[:1000] + 0.5, yg[:1000]
    calls = {"explain": lambda: inf.explain(X[:1000], y[:1000], k=10),
             "transform": lambda: inf.transform(X[:200], y[:200]),
             "transform GEMM": lambda: infg.transform(Xq, yq)}
    ctx = (contextlib.nullcontext() if limit is None
           else threadpool_limits(limits=limit, user_api="blas"))
    out = {}
    with ctx:
        threads = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        inf.explain(X[:50], y[:50])  # compile / load the kernels
        infg.transform(Xq[:10], yq[:10])
        for name, call in calls.items():
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                call()
                best = min(best, time.perf_counter() - start)
            out[name] = best
    return {"seconds": out, "blas_threads": threads, "load": os.getloadavg()[0]}


BLAS_CONFIGS = [  # (label, environment, threadpoolctl limit)
    ("unset", {}, None),
    ("threadpoolctl 1", {}, 1),
    ("threadpoolctl 2", {}, 2),
    ("OPENBLAS_NUM_THREADS=2", {"OPENBLAS_NUM_THREADS": "2"}, None),
]


def run_blas(code, env, rows, repeat, limit):
    base = {k: v for k, v in os.environ.items()
            if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env = dict(base, PYTHONPATH=code, **env)
    out = subprocess.run([sys.executable, "-W", "ignore", __file__, "--json", str(rows),
                          "--repeat", str(repeat), "--blas-limit", str(limit or 0)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main_blas(args, codes):
    rows = []
    for competing in (False, True):
        busy = (subprocess.Popen([sys.executable, "-c", "while True: pass"])
                if competing else None)
        try:
            for label, env, limit in BLAS_CONFIGS:
                for name, code in codes:
                    res = run_blas(code, env, args.rows, args.repeat, limit)
                    rows.append((competing, label, name, res))
                    secs = "  ".join(f"{k} {v:7.3f} s" for k, v in res["seconds"].items())
                    print(f"{'busy' if competing else 'quiet':5s} {label:24s} {name:6s} {secs}"
                          f"  blas={res['blas_threads']} load={res['load']:.1f}", flush=True)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    print(f"\n| machine | BLAS threads | code | explain, {args.rows:,} x 50 | "
          f"transform 200 x {args.rows:,} | transform 1000 x 50,000, d=200 | load |")
    print("|---|---|---|---|---|---|---|")
    for competing, label, name, res in rows:
        s = res["seconds"]
        print(f"| {'one busy process' if competing else 'quiet'} | {label} | {name} | "
              f"{s['explain']:.2f} s | {s['transform']:.2f} s | {s['transform GEMM']:.2f} s | "
              f"{res['load']:.1f} |")


CONFIGS = [  # (label, environment, n_jobs, baseline only)
    ("numba default (2 threads)", {}, None, False),
    ("NUMBA_NUM_THREADS=1", {"NUMBA_NUM_THREADS": "1"}, None, False),
    ("workqueue layer", {"NUMBA_THREADING_LAYER": "workqueue"}, None, True),
    ("OMP_WAIT_POLICY=passive", {"OMP_WAIT_POLICY": "passive"}, None, True),
    ("n_jobs=2 (threads over blocks)", {}, 2, False),
]


def run(code, env, rows, repeat, n_jobs):
    env = dict(os.environ, PYTHONPATH=code, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", **env)
    out = subprocess.run([sys.executable, "-W", "ignore", __file__, "--json", str(rows),
                          "--repeat", str(repeat), "--n-jobs", str(n_jobs or 0)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--baseline", help="also time the skinfluence at this path")
    parser.add_argument("--json", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--n-jobs", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--blas", action="store_true", help="time BLAS thread counts")
    parser.add_argument("--blas-limit", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json and args.blas_limit is not None:
        print(json.dumps(measure_blas(args.json, args.repeat, args.blas_limit or None)))
        return
    if args.json:
        print(json.dumps(measure(args.json, args.repeat, args.n_jobs or None)))
        return
    codes = [("after", ROOT)]
    if args.baseline:
        codes.insert(0, ("before", os.path.abspath(args.baseline)))
    if args.blas:
        return main_blas(args, codes)
    rows = []
    for competing in (False, True):
        busy = (subprocess.Popen([sys.executable, "-c", "while True: pass"])
                if competing else None)
        try:
            for label, env, n_jobs, baseline_only in CONFIGS:
                for name, code in codes:
                    if baseline_only and name != "before":
                        continue
                    res = run(code, env, args.rows, args.repeat, n_jobs)
                    rows.append((competing, label, name, res))
                    print(f"{'busy' if competing else 'quiet':5s} {label:32s} {name:6s} "
                          f"{res['seconds']:7.3f} s  layer={res['layer']} "
                          f"threads={res['threads']} load={res['load']:.1f}", flush=True)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    print(f"\n| machine | numba setting | code | explain, {args.rows:,} rows | load |")
    print("|---|---|---|---|---|")
    for competing, label, name, res in rows:
        print(f"| {'one busy process' if competing else 'quiet'} | {label} | {name} | "
              f"{res['seconds']:.2f} s | {res['load']:.1f} |")


if __name__ == "__main__":
    main()
