"""Build the documentation, gallery included, with warnings as errors.

Sphinx and sphinx-gallery write generated files next to the sources, so the
build runs on a copy of ``docs/`` and ``examples/`` in a temporary directory.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NEEDED = ("sphinx", "sphinx_gallery", "numpydoc", "matplotlib")


def test_docs_build_without_warnings(tmp_path):
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"documentation tools not installed: {', '.join(missing)} "
                    "(pip install -e '.[docs]')")
    if not (ROOT / "docs" / "conf.py").exists():
        pytest.fail("docs/conf.py is missing")
    src = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", src, ignore=shutil.ignore_patterns(
        "_build", "generated", "auto_examples", "sg_execution_times.rst"))
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    # one BLAS thread: the examples are small and pytest -n 2 already uses both cores
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore::DeprecationWarning",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(src), str(tmp_path / "html")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, (
        f"sphinx-build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )
    html = tmp_path / "html"
    for page in ("index.html", "getting_started.html", "cli.html", "api.html",
                 "user_guide/influence.html", "auto_examples/index.html"):
        assert (html / page).exists(), page
    # every gallery example ran and produced at least one figure
    examples = sorted(p.stem for p in (ROOT / "examples").glob("plot_*.py"))
    assert examples
    for name in examples:
        assert (html / "auto_examples" / f"{name}.html").exists(), name
        assert list((html / "_images").glob(f"sphx_glr_{name}_*.png")), f"{name} drew nothing"
