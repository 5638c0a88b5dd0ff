"""Gradient Rollback and the neural matrix factorisation models it explains.

* :class:`DistMult`, :class:`ComplEx`: knowledge-graph embeddings for tail
  prediction (softmax cross-entropy, sampled negatives or full softmax).
* :class:`MatrixFactorization`: biased matrix factorisation for ratings.
* :class:`GradientRollback`: records, while training a clone of one of these,
  the parameter updates each training example caused, and rolls them back at
  explanation time (Lawrence, Sztyler & Niepert, AAAI 2021).
"""

from .models import ComplEx, DistMult, MatrixFactorization
from ._rollback import GradientRollback

__all__ = ["GradientRollback", "DistMult", "ComplEx", "MatrixFactorization"]
