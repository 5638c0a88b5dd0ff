"""Tree models read from scikit-learn's own arrays, and the numba kernels over them.

``_structure.py`` reads fitted decision trees and forests and replays scikit-learn's
builder (``_forest_kernels.py``); ``_hgb.py`` reads fitted HistGradientBoosting models
and ``_boosting_kernels.py`` routes rows to leaves and recomputes (or differentiates)
leaf values with the structure fixed; ``_oob.py`` gives a bagged forest's out-of-bag
probabilities, and with ``_oob_kernels.py`` those of every tree (the in-bag ones through
a leave-one-out read of the fitted tree).  The removal approximations built on them live in
:mod:`skinfluence.influence` (``_forest.py``, ``_boosting.py``).
"""
