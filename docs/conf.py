"""Sphinx configuration for skinfluence's documentation.

Build with ``sphinx-build -W --keep-going docs docs/_build/html``; the gallery
in ``examples/`` is executed on every build (each example takes seconds).
"""

import os
import warnings

import skinfluence

project = "skinfluence"
author = "The skinfluence developers"
copyright = "2026, The skinfluence developers"
release = skinfluence.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5"]
root_doc = "index"
default_role = "literal"

# -- API reference -------------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"  # types are in the numpydoc sections
# Class pages list their methods through the autosummary template; numpydoc's own
# member tables would duplicate them and reference undocumented inherited members.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# -- gallery -------------------------------------------------------------------
# Examples run in the build; keep matplotlib headless and fail the build on errors.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings(
    "ignore", category=UserWarning,
    message="Matplotlib is currently using agg, which is a non-GUI backend",
)
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    "within_subsection_order": "FileNameSortKey",
    "reference_url": {"skinfluence": None},
}

# -- HTML ----------------------------------------------------------------------
try:  # the nicer theme when installed; alabaster ships with sphinx
    import pydata_sphinx_theme  # noqa: F401

    html_theme = "pydata_sphinx_theme"
    html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
except ImportError:
    html_theme = "alabaster"
    html_theme_options = {"description": "Which training examples made my model do this?"}
if os.environ.get("SKINFLUENCE_DOCS_THEME"):  # e.g. test the fallback theme locally
    html_theme = os.environ["SKINFLUENCE_DOCS_THEME"]
    html_theme_options = {}
html_title = f"skinfluence {release}"
html_static_path = []

