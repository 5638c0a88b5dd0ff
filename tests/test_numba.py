"""Where numba's compiled kernels go: never inside the package, and no crash without a cache."""

import os
import subprocess
import sys
import textwrap

import skinfluence

PACKAGE_DIR = os.path.dirname(os.path.abspath(skinfluence.__file__))

# compiles one cached kernel and reports where numba put (or did not put) its cache
PROBE = textwrap.dedent(
    """
    import numpy as np
    import scipy.sparse as sp
    from skinfluence import _numba
    from skinfluence.objectives._kernels import csr_weighted_gram

    X = sp.random(20, 4, density=0.5, format="csr", random_state=0)
    w = np.linspace(0.5, 1.5, 20)
    G = csr_weighted_gram(X.data, X.indices, X.indptr, 4, w)
    assert np.allclose(G, (X.T @ sp.diags(w) @ X).toarray())
    cache = csr_weighted_gram._cache
    print(type(cache).__name__)
    print(getattr(cache, "_cache_path", ""))
    print(_numba.cache_enabled())
    """
)


def _probe(env_updates):
    skip = ("NUMBA_CACHE_DIR", "SKINFLUENCE_CACHE_DIR")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    env.update(env_updates)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split("\n")


def _nb_files(root):
    found = set()
    for dirpath, _, files in os.walk(root):
        found.update(os.path.join(dirpath, f) for f in files if f.endswith((".nbi", ".nbc")))
    return found


def test_kernels_are_cached_outside_the_package(tmp_path):
    # An installed package must not get files pip's RECORD does not list: uninstalling would
    # leave site-packages/skinfluence/ behind as a namespace package shadowing later installs.
    before = _nb_files(PACKAGE_DIR)
    kind, path, enabled = _probe({"SKINFLUENCE_CACHE_DIR": str(tmp_path)})[:3]
    assert enabled == "True"
    assert kind != "NullCache"
    assert os.path.commonpath([path, str(tmp_path)]) == str(tmp_path)
    assert os.listdir(path), "the kernel was not written to the cache directory"
    assert _nb_files(PACKAGE_DIR) <= before


def test_default_cache_directory_follows_xdg(tmp_path):
    kind, path, _ = _probe({"XDG_CACHE_HOME": str(tmp_path)})[:3]
    assert path.startswith(os.path.join(str(tmp_path), "skinfluence", "numba"))


def test_no_writable_cache_location_still_works():
    # /dev/null is a file, so nothing below it can be created, even by root.
    kind, path, enabled = _probe(
        {"SKINFLUENCE_CACHE_DIR": "/dev/null/skinfluence", "HOME": "/dev/null"}
    )[:3]
    assert enabled == "False"
    assert kind == "NullCache"


# ------------------------------------------------------------------ cache_dir precedence
_CACHE_VARS = ("SKINFLUENCE_CACHE_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME")


def _cache_dir_with(monkeypatch, **env):
    from skinfluence._numba import cache_dir

    for var in _CACHE_VARS:
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return cache_dir()


def test_cache_dir_precedence(monkeypatch, tmp_path):
    sk, nb, xdg = (str(tmp_path / name) for name in ("sk", "nb", "xdg"))
    # 1. SKINFLUENCE_CACHE_DIR, as given
    assert _cache_dir_with(monkeypatch, SKINFLUENCE_CACHE_DIR=sk, NUMBA_CACHE_DIR=nb,
                           XDG_CACHE_HOME=xdg) == sk
    # 2. numba's own NUMBA_CACHE_DIR, under skinfluence/
    assert _cache_dir_with(monkeypatch, NUMBA_CACHE_DIR=nb, XDG_CACHE_HOME=xdg) == (
        os.path.join(nb, "skinfluence"))
    # 3. XDG_CACHE_HOME/skinfluence/numba, else ~/.cache/skinfluence/numba
    assert _cache_dir_with(monkeypatch, XDG_CACHE_HOME=xdg) == (
        os.path.join(xdg, "skinfluence", "numba"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _cache_dir_with(monkeypatch) == (
        os.path.join(str(tmp_path / "home"), ".cache", "skinfluence", "numba"))


def test_cache_dir_empty_variables_are_unset(monkeypatch, tmp_path):
    xdg = str(tmp_path / "xdg")
    assert _cache_dir_with(monkeypatch, SKINFLUENCE_CACHE_DIR="", NUMBA_CACHE_DIR="",
                           XDG_CACHE_HOME=xdg) == os.path.join(xdg, "skinfluence", "numba")


def test_cache_dir_relative_paths_become_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert _cache_dir_with(monkeypatch, SKINFLUENCE_CACHE_DIR="rel") == str(tmp_path / "rel")
    assert _cache_dir_with(monkeypatch, NUMBA_CACHE_DIR="nb") == (
        os.path.join(str(tmp_path / "nb"), "skinfluence"))


def test_cache_dir_on_windows_uses_localappdata(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "win32")
    local = str(tmp_path / "Local")
    assert _cache_dir_with(monkeypatch, LOCALAPPDATA=local, XDG_CACHE_HOME="ignored") == (
        os.path.join(local, "skinfluence", "numba"))


# ------------------------------------------------------------------ nothing compiled at import
IMPORT_ALL = textwrap.dedent(
    """
    import gc
    import importlib
    import pkgutil

    import skinfluence
    from numba.core.dispatcher import Dispatcher

    for info in pkgutil.walk_packages(skinfluence.__path__, "skinfluence."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
    compiled = sorted(
        f"{d.py_func.__module__}.{d.py_func.__name__}"
        for d in gc.get_objects()
        if isinstance(d, Dispatcher) and d.py_func.__module__.startswith("skinfluence")
        and d.overloads
    )
    kernels = sum(isinstance(d, Dispatcher) and d.py_func.__module__.startswith("skinfluence")
                  for d in gc.get_objects())
    print(kernels)
    print(" ".join(compiled))
    """
)


def test_importing_every_module_compiles_no_kernel(tmp_path):
    # kernels compile on first call: no njit signatures, no kernel call at module level
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["SKINFLUENCE_CACHE_DIR"] = str(tmp_path)  # an empty cache: nothing to load either
    out = subprocess.run([sys.executable, "-c", IMPORT_ALL], env=env, capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stderr
    kernels, compiled = out.stdout.split("\n")[:2]
    assert int(kernels) > 10  # the probe saw the package's kernels
    assert compiled == "", f"compiled at import: {compiled}"


def test_first_use_is_remembered_per_key_and_installation(monkeypatch, tmp_path):
    from skinfluence import _numba

    monkeypatch.setenv("SKINFLUENCE_CACHE_DIR", str(tmp_path))
    assert _numba.first_use("cli-explain-forest")
    _numba.mark_used("cli-explain-forest")
    assert not _numba.first_use("cli-explain-forest")
    assert _numba.first_use("cli-explain-hgb")
    assert os.path.dirname(_numba._marker("a/b c")) == str(tmp_path / "used")
    monkeypatch.setattr(_numba, "cache_enabled", lambda: False)  # compiled in every run
    assert not _numba.first_use("cli-explain-hgb")
    _numba.mark_used("cli-explain-hgb")
    assert not (tmp_path / "used" / "cli-explain-hgb").exists()
