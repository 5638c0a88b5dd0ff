"""Deprecated alias of :mod:`skinfluence.linalg` (removed in the release after 0.2.0).

Every name this module used to offer is still found here, with a
``FutureWarning`` naming its new home.
"""

import warnings

_NAMES = ("HessianSolver", "ExactSolver", "CGSolver", "LissaSolver", "make_solver",
          "EXACT_MAX_PARAMS")

__all__ = list(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        warnings.warn(
            f"skinfluence.solvers is deprecated and will be removed after 0.2.0; import "
            f"{name} from skinfluence.linalg instead.",
            FutureWarning,
            stacklevel=2,
        )
        from .. import linalg

        return getattr(linalg, name)
    raise AttributeError(f"module 'skinfluence.solvers' has no attribute {name!r}")


def __dir__():
    return list(_NAMES)
