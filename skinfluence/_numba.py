"""Where numba keeps the compiled kernels of skinfluence: never inside the installed package.

numba's default cache lives in ``__pycache__`` next to the source.  For an installed package
that is ``site-packages/skinfluence/*/__pycache__``, files that pip's record of the installation
does not list: uninstalling (which ``pip install -e .`` does on its way) then leaves
``site-packages/skinfluence/`` behind as a directory without ``__init__.py``, a namespace package
that shadows every later install of skinfluence.  So the kernels of this package are cached in a
per-user directory instead:

1. ``$SKINFLUENCE_CACHE_DIR`` if set;
2. else numba's own ``$NUMBA_CACHE_DIR`` if set (under ``skinfluence/``);
3. else ``$XDG_CACHE_HOME/skinfluence/numba`` (``~/.cache/skinfluence/numba``; on Windows
   ``%LOCALAPPDATA%\\skinfluence\\numba``).

When no writable location exists (a read-only home, a locked-down container) the kernels are
compiled on first use in every process and not cached: slower to start, same results.

:func:`njit` is numba's ``njit``, with ``cache=True`` honoured only when that directory is
usable.  Nothing is compiled at import.

:func:`parallel_above` wraps a ``parallel=True`` kernel so that calls below a work threshold run
on one numba thread: a parallel region costs a wake-up and a barrier, and on a loaded core a
descheduled worker thread holds every region up for a scheduler time slice.
"""

import functools
import os
import sys
import tempfile

import numba
from numba.core import caching as _caching

__all__ = ["njit", "cache_dir", "cache_enabled", "first_use", "mark_used", "parallel_above",
           "PARALLEL_MIN_ENTRIES"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def cache_dir():
    """The directory skinfluence's compiled numba kernels are cached in (may not exist yet)."""
    explicit = os.environ.get("SKINFLUENCE_CACHE_DIR")
    if explicit:
        return os.path.abspath(explicit)
    numba_dir = os.environ.get("NUMBA_CACHE_DIR")
    if numba_dir:
        return os.path.join(os.path.abspath(numba_dir), "skinfluence")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "skinfluence", "numba")


def _usable(path):
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def _cache_usable(path):
    return _usable(path)


def cache_enabled():
    """Whether compiled kernels are written to :func:`cache_dir` (False: compiled per process)."""
    return _LOCATOR_REGISTERED and _cache_usable(cache_dir())


_LocatorBase = getattr(_caching, "_CacheLocator", None)
_SourceMixin = getattr(_caching, "_SourceFileBackedLocatorMixin", None)
_CacheImpl = getattr(_caching, "CacheImpl", None) or getattr(_caching, "_CacheImpl", None)


def _inside_package(py_file):
    try:
        return os.path.commonpath([os.path.abspath(py_file), _PACKAGE_DIR]) == _PACKAGE_DIR
    except ValueError:  # another drive (Windows)
        return False


if _LocatorBase is not None and _SourceMixin is not None and _CacheImpl is not None:

    class PackageCacheLocator(_SourceMixin, _LocatorBase):
        """numba cache locator for this package's source files: the per-user cache directory.

        The subdirectory is keyed by the source directory's absolute path (as numba's own
        locators do), so two installations (a wheel and an editable checkout) never share
        entries; numba's index also checks each source file's modification time and size.
        """

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            subdir = self.get_suitable_cache_subpath(py_file)
            self._cache_path = os.path.join(cache_dir(), subdir)

        def get_cache_path(self):
            return self._cache_path

        @classmethod
        def from_function(cls, py_func, py_file):
            if not os.path.exists(py_file) or not _inside_package(py_file):
                return None
            self = cls(py_func, py_file)
            try:
                self.ensure_cache_path()
            except OSError:
                return None
            return self

    if PackageCacheLocator not in _CacheImpl._locator_classes:
        # first, so that numba's in-tree locator never claims this package's files
        _CacheImpl._locator_classes.insert(0, PackageCacheLocator)
    _LOCATOR_REGISTERED = True
else:  # a numba whose private caching layout changed: compile per process, write nothing
    _LOCATOR_REGISTERED = False


def _marker(key):
    # keyed by the installation (its source directory), as the cached kernels are
    import hashlib

    tag = hashlib.sha1(_PACKAGE_DIR.encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in key)
    return os.path.join(cache_dir(), "used", f"{safe}-{tag}")


def first_use(key):
    """Whether the work named ``key`` (e.g. a command line's command and model) has not yet
    completed with this installation's kernel cache, so its kernels will be compiled now.

    False when nothing is cached at all (every process compiles: no first run to tell).
    """
    return cache_enabled() and not os.path.exists(_marker(key))


def mark_used(key):
    """Record that the work named ``key`` completed (its kernels are cached); best effort."""
    if not cache_enabled():
        return
    path = _marker(key)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a"):
            pass
    except OSError:
        pass


def njit(*args, **kwargs):
    """``numba.njit``; ``cache=True`` caches in :func:`cache_dir` when it is writable, else no cache.

    An explicit ``NUMBA_CACHE_LOCATOR_CLASSES`` setting bypasses the locator list this module
    extends, so caching is then left off rather than let numba write into the package.
    """
    if kwargs.get("cache"):
        overridden = getattr(numba.config, "CACHE_LOCATOR_CLASSES", None)
        kwargs["cache"] = cache_enabled() and not overridden
    return numba.njit(*args, **kwargs)


# Output entries below which a row-parallel kernel runs on the calling thread alone.  One
# entry of the loss-change kernels costs about a nanosecond; a parallel region costs tens of
# microseconds on idle cores but several milliseconds (a time slice) when any other process
# keeps a core busy, so a region pays off only with some 10 ms of work in it.
PARALLEL_MIN_ENTRIES = 1 << 24


def parallel_above(min_entries=None, work=None):
    """Decorator: run a ``parallel=True`` kernel on one numba thread below ``min_entries``
    (default :data:`PARALLEL_MIN_ENTRIES`, read at each call).

    ``work(*args)`` measures a call in entries' worth of work; by default the ``size`` of
    the kernel's last argument, its output array.

    The kernels wrapped are row-parallel with no reduction across rows, so every entry is
    computed by the same code whatever the thread count: the results are bit-identical.  A
    block loop (``explain``, ``transform``) then runs serial kernels per block, and its
    parallelism is over blocks (``n_jobs``) rather than a region per block.  The thread
    count is only lowered, never raised, so :func:`numba.set_num_threads` and
    :func:`skinfluence.utils._parallel.one_numba_thread` still bound it.  The wrapped
    dispatcher is ``.kernel``.
    """

    def wrap(kernel):
        def run(*args):
            least = PARALLEL_MIN_ENTRIES if min_entries is None else min_entries
            if (args[-1].size if work is None else work(*args)) >= least:
                return kernel(*args)
            threads = numba.get_num_threads()
            if threads == 1:
                return kernel(*args)
            numba.set_num_threads(1)  # thread-local: other threads keep their count
            try:
                return kernel(*args)
            finally:
                numba.set_num_threads(threads)

        functools.update_wrapper(run, kernel, updated=())
        run.kernel = kernel
        return run

    return wrap
