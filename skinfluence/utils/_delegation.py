"""Former home of the delegation and top-k helpers, now in :mod:`skinfluence.base`.

Kept importable while modules still import them from here.
"""

from ..base import DelegatingMixin, check_k, estimator_has, top_k_over_blocks

__all__ = ["DelegatingMixin", "check_k", "estimator_has", "top_k_over_blocks"]
