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
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure(args.json, args.repeat, args.n_jobs or None)))
        return
    codes = [("after", ROOT)]
    if args.baseline:
        codes.insert(0, ("before", os.path.abspath(args.baseline)))
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
