"""Influence functions for fitted scikit-learn estimators.

:class:`InfluenceFunctions` (``_estimator.py``) validates and orchestrates; each
removal approximation implements :class:`~skinfluence.influence._base.Removal`:

* ``_first_order.py``: Koh & Liang's first-order influence function;
* ``_newton.py``: one Newton step, the rank-K Woodbury update of GLMs;
* ``_point_hessian.py``: Newton steps of neural networks with each point's Hessian;

``_refit.py`` computes exact refits of the points with the largest changes,
``_blocks.py`` runs ``transform`` and ``explain`` in blocks and ``_group.py``
predicts the removal of groups of points.
"""

from ._estimator import InfluenceFunctions

__all__ = ["InfluenceFunctions"]
