"""Progress bars that cost nothing when ``verbose=0`` and need no hard dependency."""

import sys
import time


class _PlainProgress:
    """Fallback when tqdm is not installed: a line every ~10% on stderr."""

    def __init__(self, iterable, total, desc):
        self.iterable = iterable
        self.total = total
        self.desc = desc

    def __iter__(self):
        start = time.perf_counter()
        step = max(1, (self.total or 1) // 10)
        for i, item in enumerate(self.iterable, 1):
            yield item
            if self.total and (i % step == 0 or i == self.total):
                elapsed = time.perf_counter() - start
                print(f"{self.desc}: {i}/{self.total} ({elapsed:.1f} s)", file=sys.stderr)


def progress(iterable, *, total=None, desc="", verbose=0):
    """Wrap ``iterable`` in a progress bar when ``verbose`` is truthy.

    Uses tqdm when it is importable, else prints plain progress lines to stderr.
    """
    if not verbose:
        return iterable
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _PlainProgress(iterable, total, desc)
    return tqdm(iterable, total=total, desc=desc, leave=False)
