"""Bundled datasets and helpers for experiments.

* :func:`load_nations`, :func:`load_kinships`, :func:`load_umls`: knowledge-graph
  benchmarks (MIT-licensed data as distributed by PyKEEN) shipped inside the package.
* :func:`make_noisy_labels`: flip a fraction of labels for cleaning experiments.
"""

import importlib

_LAZY = {
    "load_nations": "._kg",
    "load_kinships": "._kg",
    "load_umls": "._kg",
    "make_noisy_labels": "._noise",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skinfluence.datasets' has no attribute {name!r}")


def __dir__():
    return __all__
