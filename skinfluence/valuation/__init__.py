"""Data valuation: what is each training point worth to the model's validation score?

All valuation estimators share one shape: ``fit(X, y, *, X_val=None, y_val=None,
sample_weight=None)`` sets ``values_`` (one value per training point, higher =
the point helps the validation score more); methods that decompose over
samples also have ``transform(X, y)`` -> ``(n_samples, n_train)``; ``predict``
and ``score`` delegate to the model fitted on all the data.

* :class:`LOOValuation`: exact leave-one-out refits.
* :class:`InfluenceValuation`: approximate leave-one-out from influence
  functions, and :func:`predict_removal_effect` /
  :func:`removal_parameter_change` for "what if I drop these rows" (first- and
  second-order group influence).
* :class:`KNNShapley`: exact Shapley values of the KNN classifier utility.
* :class:`TMCShapley`, :class:`BetaShapley`, :class:`BanzhafValuation`:
  Monte-Carlo semivalues for any estimator and scorer.
* :class:`DataOOB`: out-of-bag values of a bagged ensemble.
"""

from ._influence import InfluenceValuation, predict_removal_effect, removal_parameter_change
from ._knn import KNNShapley
from ._loo import LOOValuation
from ._oob import DataOOB
from ._exact import exact_semivalues, semivalue_weights
from ._semivalues import BanzhafValuation, BetaShapley, TMCShapley

__all__ = [
    "LOOValuation",
    "InfluenceValuation",
    "KNNShapley",
    "TMCShapley",
    "BetaShapley",
    "BanzhafValuation",
    "DataOOB",
    "exact_semivalues",
    "semivalue_weights",
    "removal_parameter_change",
    "predict_removal_effect",
]
