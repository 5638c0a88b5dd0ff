"""Tree models read from scikit-learn's own arrays, and the numba kernels over them.

``_hgb.py`` reads fitted HistGradientBoosting models; ``_boosting_kernels.py`` routes
rows to leaves and recomputes (or differentiates) leaf values with the structure fixed.
The removal approximations built on them live in :mod:`skinfluence.influence`.
"""
