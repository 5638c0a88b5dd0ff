"""skinfluence: which training examples made my model do this, and what is each one worth?

Influence functions, Gradient Rollback, data valuation and label cleaning for
scikit-learn models, as ordinary scikit-learn estimators.

Public names are imported lazily so that ``import skinfluence`` stays cheap
(no numba compilation and no heavy submodule imports happen at import time).
"""

import importlib

__version__ = "0.1.0.dev0"

# public name -> submodule that defines it
_LAZY = {
    "InfluenceFunctions": "skinfluence.influence",
    "TracIn": "skinfluence.tracin",
    "GradientRollback": "skinfluence.rollback",
    "DistMult": "skinfluence.rollback",
    "ComplEx": "skinfluence.rollback",
    "MatrixFactorization": "skinfluence.rollback",
    "LOOValuation": "skinfluence.valuation",
    "InfluenceValuation": "skinfluence.valuation",
    "KNNShapley": "skinfluence.valuation",
    "TMCShapley": "skinfluence.valuation",
    "BetaShapley": "skinfluence.valuation",
    "BanzhafValuation": "skinfluence.valuation",
    "DataOOB": "skinfluence.valuation",
    "InfluenceCleaner": "skinfluence.cleaning",
    "CleanClassifier": "skinfluence.cleaning",
}
_SUBMODULES = {"objectives", "linalg", "datasets", "valuation", "cleaning", "rollback", "plot",
               "cli", "metrics", "sampling"}
# still importable, not advertised: a deprecated alias (it warns on use)
_DEPRECATED_SUBMODULES = {"solvers"}

__all__ = sorted(_LAZY) + sorted(_SUBMODULES)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES or name in _DEPRECATED_SUBMODULES:
        module = importlib.import_module(f"skinfluence.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'skinfluence' has no attribute {name!r}")


def __dir__():
    return __all__
