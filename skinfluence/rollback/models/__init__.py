"""The models Gradient Rollback explains, one module each.

* :mod:`.distmult`, :mod:`.complex`: knowledge-graph embeddings.  Each module
  defines the model's query and its backward pass as numba functions on
  embedding rows, registers them with :func:`skinfluence.rollback._interface.register`
  under a spec namedtuple, and subclasses the shared estimator
  (:class:`skinfluence.rollback._kg_estimator._KGEmbedding`).  Training, the
  first-order and full rollbacks and the trajectory replay reach the model only
  through that interface: a new model whose score is ``query(e_h, w_r) . e_t``
  is one new module here.
* :mod:`.mf`: biased matrix factorisation for ratings.

Every model has the interface :class:`~skinfluence.GradientRollback` uses:
``fit_with_rollback(X, y, sample_weight, record_negatives=..., trajectory=...)``
returning a :class:`~skinfluence.rollback._base.RollbackRecord`, and
``rollback_model()`` returning the fitted parameters with the rollback kernels
(:mod:`skinfluence.rollback._rollback_models`).
"""

from .complex import ComplEx
from .distmult import DistMult
from .mf import MatrixFactorization

__all__ = ["DistMult", "ComplEx", "MatrixFactorization"]
