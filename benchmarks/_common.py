"""Helpers shared by the benchmark scripts: wall-clock timing, DGEMM speed, tables."""

import gc
import resource
import sys
import time

import numpy as np


def best_of(func, repeat=3, warmup=0):
    """Run ``func()`` ``warmup`` untimed then ``repeat`` timed times.

    Returns ``(best wall seconds, result of the last call)``.  The best time is the
    least disturbed by other processes, which matters on a shared 2-core machine.
    """
    result = None
    for _ in range(warmup):
        result = func()
        result = None
    best = np.inf
    for _ in range(max(1, repeat)):
        result = None  # free the previous output before timing the next call
        gc.collect()
        t0 = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - t0)
    return best, result


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t0
        return False


def dgemm_flops(n=4000, repeat=3, seed=0):
    """Measured DGEMM speed (FLOP/s) of a square ``n x n`` product, best of ``repeat``."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    B = rng.standard_normal((n, n))
    C = np.empty((n, n))
    best, _ = best_of(lambda: np.matmul(A, B, out=C), repeat=repeat)
    return 2.0 * n**3 / best


def peak_rss_mib():
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":  # bytes there
        return kb / 2**20
    return kb / 1024.0


def fmt(value, spec=".3g"):
    """Format numbers for tables; strings pass through, None/NaN become '-'."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return "-"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return format(float(value), spec)


def print_table(rows, columns, title=None, spec=".3g", file=None):
    """Print ``rows`` (list of dicts) as an aligned plain-text table of ``columns``.

    ``columns`` is a list of keys or ``(key, header)`` pairs; missing keys print '-'.
    """
    file = sys.stdout if file is None else file
    cols = [(c, c) if isinstance(c, str) else c for c in columns]
    cells = [[fmt(r.get(k), spec) for k, _ in cols] for r in rows]
    widths = [
        max([len(h)] + [len(row[i]) for row in cells]) for i, (_, h) in enumerate(cols)
    ]
    if title:
        print(f"\n{title}", file=file)
    header = "  ".join(h.rjust(w) if i else h.ljust(w) for i, ((_, h), w) in enumerate(zip(cols, widths)))
    print(header, file=file)
    print("-" * len(header), file=file)
    for row in cells:
        print(
            "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))),
            file=file,
        )
    file.flush()
