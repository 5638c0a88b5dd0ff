"""Cost of Gradient Rollback: bookkeeping overhead during training and the
latency of one explanation.

For each dataset / model / optimizer setting the script times a plain ``fit``
and ``GradientRollback(...).fit`` (same parameters, same seed; after a warm-up
that compiles the kernels, the two are run alternately at least ``--repeats``
times and until each has used ``--min-time`` seconds, and the minimum of each
is kept), and reports the ratio (target: <= 1.3).  Short fits thus get more
pairs, so a burst of load from another job is less likely to hit every
sample of one side.  Times
are CPU seconds of this process (``time.process_time``; BLAS limited to one
thread, the kernels are single-threaded), which other jobs on a shared machine
disturb far less than wall-clock time; ``--wall`` uses wall-clock time.
It then times ``explain`` for single test queries (median wall-clock over
``--n-queries`` queries; target: milliseconds).

Usage::

    python benchmarks/bench_rollback.py            # all three graphs
    python benchmarks/bench_rollback.py --dataset nations --repeats 5
    python benchmarks/bench_rollback.py --dataset ratings   # ratings rows only
"""

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from skinfluence import ComplEx, DistMult, GradientRollback, MatrixFactorization
from skinfluence.datasets import load_kinships, load_nations, load_umls

LOADERS = {"nations": load_nations, "kinships": load_kinships, "umls": load_umls}


CLOCK = time.process_time


MIN_TIME = 1.0


def paired_times(plain, gr, repeats):
    """Minimum time of ``plain()`` and of ``gr()``, run alternately so that a
    burst of load on the machine hits both; at least ``repeats`` pairs and
    until each side has run for ``MIN_TIME`` seconds in total."""
    best = [np.inf, np.inf]
    total = [0.0, 0.0]
    done = 0
    with threadpool_limits(1):
        while done < repeats or min(total) < MIN_TIME:
            for j, fn in enumerate((plain, gr)):
                t0 = CLOCK()
                fn()
                t = CLOCK() - t0
                best[j] = min(best[j], t)
                total[j] += t
            done += 1
    return best


def bench_kg(dataset, repeats, n_queries):
    data = LOADERS[dataset]()
    rows = []
    settings = [
        ("adam, batch 32 (default)", dict()),
        ("adam, batch 1", dict(batch_size=1, max_iter=20)),
        ("sgd, batch 32", dict(optimizer="sgd", learning_rate=0.2)),
    ]
    for cls in (DistMult, ComplEx):
        for label, kw in settings:
            est = cls(n_entities=data.n_entities, n_relations=data.n_relations,
                      random_state=0, **kw)
            # warm-up compiles every kernel used below
            GradientRollback(est).fit(data.train).explain(data.test[:1, :2])
            t_plain, t_gr = paired_times(lambda: est.fit(data.train),
                                         lambda: GradientRollback(est).fit(data.train), repeats)
            gr = GradientRollback(est).fit(data.train)
            lat = []
            for q in data.test[:n_queries, :2]:
                t0 = time.perf_counter()
                gr.explain(q[None, :], k=10)
                lat.append(time.perf_counter() - t0)
            rows.append((dataset, cls.__name__, label, t_plain, t_gr, np.median(lat),
                         gr.gamma_["head"].nbytes * 3 / 2**20))
    return rows


def bench_mf(repeats, n_queries):
    rows = []
    rng = np.random.default_rng(0)
    for n_users, n_items, n in ((500, 300, 20_000), (2000, 1000, 100_000)):
        X = np.column_stack([rng.integers(0, n_users, n), rng.integers(0, n_items, n)])
        y = rng.normal(size=n) + (X[:, 0] % 5) - (X[:, 1] % 3)
        for opt in ("adam", "sgd"):
            est = MatrixFactorization(n_components=16, max_iter=10, optimizer=opt,
                                      random_state=0)
            GradientRollback(est).fit(X[:1000], y[:1000]).explain(X[:1])
            t_plain, t_gr = paired_times(lambda: est.fit(X, y),
                                         lambda: GradientRollback(est).fit(X, y), repeats)
            gr = GradientRollback(est).fit(X, y)
            lat = []
            for q in X[:n_queries]:
                t0 = time.perf_counter()
                gr.explain(q[None, :], k=10)
                lat.append(time.perf_counter() - t0)
            mem = sum(g.nbytes for g in gr.gamma_.values()) / 2**20
            rows.append((f"ratings {n // 1000}k", "MatrixFactorization",
                         f"{opt}, batch 32", t_plain, t_gr, np.median(lat), mem))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="all", choices=[*LOADERS, "ratings", "all"],
                    help="one graph (plus the ratings rows), only the ratings rows, or all")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=1.0,
                    help="keep alternating until each side used this many seconds")
    ap.add_argument("--wall", action="store_true", help="wall-clock instead of CPU time")
    ap.add_argument("--n-queries", type=int, default=50)
    args = ap.parse_args(argv)
    global CLOCK, MIN_TIME
    CLOCK = time.perf_counter if args.wall else time.process_time
    MIN_TIME = args.min_time
    rows = []
    graphs = {"all": list(LOADERS), "ratings": []}.get(args.dataset, [args.dataset])
    for ds in graphs:
        rows += bench_kg(ds, args.repeats, args.n_queries)
    rows += bench_mf(args.repeats, args.n_queries)
    print(f"| {'data':<12} | {'model':<19} | {'setting':<24} | {'fit s':>7} | "
          f"{'GR fit s':>8} | {'ratio':>5} | {'explain ms':>10} | {'gamma MiB':>9} |")
    print("|" + "|".join("-" * w for w in (14, 21, 26, 9, 10, 7, 12, 11)) + "|")
    for ds, model, label, tp, tg, lat, mem in rows:
        print(f"| {ds:<12} | {model:<19} | {label:<24} | {tp:7.3f} | {tg:8.3f} | "
              f"{tg / tp:5.2f} | {lat * 1e3:10.2f} | {mem:9.2f} |")
    ratios = [tg / tp for *_, tp, tg, _, _ in rows]
    print(f"\nmax overhead ratio {max(ratios):.2f} (target <= 1.3); "
          f"median explanation latency {np.median([r[5] for r in rows]) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
