"""The one progress helper: costs nothing when ``verbose=0``, needs no hard dependency.

:func:`progress` wraps an iterable (a loop over blocks, rounds or epochs);
:func:`progress_bar` is a bar advanced by hand, for loops that run inside a compiled
kernel or report a figure (a loss) at each step.  Both use tqdm when it is importable,
else plain lines on stderr about every 10% of the way.
"""

import sys
import time


class _PlainBar:
    """Fallback when tqdm is not installed: a line every ~10% on stderr."""

    def __init__(self, total, desc):
        self.total = total
        self.desc = desc
        self.n = 0
        self.postfix = ""
        self._start = time.perf_counter()
        self._step = max(1, (total or 1) // 10)

    def update(self, n=1):
        self.n += n
        if self.total and (self.n % self._step == 0 or self.n == self.total):
            elapsed = time.perf_counter() - self._start
            extra = f" {self.postfix}" if self.postfix else ""
            print(f"{self.desc}: {self.n}/{self.total}{extra} ({elapsed:.1f} s)",
                  file=sys.stderr)

    def set_postfix(self, **values):
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def close(self):
        pass


class _PlainProgress:
    """An iterable advancing a :class:`_PlainBar` after each item."""

    def __init__(self, iterable, total, desc):
        self.iterable = iterable
        self.bar = _PlainBar(total, desc)

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.bar.update()


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def progress(iterable, *, total=None, desc="", verbose=0):
    """Wrap ``iterable`` in a progress bar when ``verbose`` is truthy, else return it as is.

    ``total`` defaults to ``len(iterable)`` when the iterable has a length.
    """
    if not verbose:
        return iterable
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    tqdm = _tqdm()
    if tqdm is None:
        return _PlainProgress(iterable, total, desc)
    return tqdm(iterable, total=total, desc=desc, leave=False)


def progress_bar(total, *, desc="", verbose=0):
    """A bar of ``total`` steps advanced by hand (``update(n)``, ``set_postfix(**values)``,
    ``close()``), or None when ``verbose`` is falsy."""
    if not verbose:
        return None
    tqdm = _tqdm()
    if tqdm is None:
        return _PlainBar(total, desc)
    return tqdm(total=total, desc=desc, leave=False)
