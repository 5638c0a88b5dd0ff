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
