"""Faithfulness as an API: how far can a method's numbers be trusted on *this* data?

Every function compares what a method predicts with what actually happens when the
model is retrained, through one retraining engine (:class:`Retrainer`): joblib-parallel,
warm-started where the estimator allows, and cached on disk with ``memory=`` (as
scikit-learn's ``Pipeline``), so that with a fixed ``random_state`` every method is
scored against the same retrained models, computed once.

* :func:`linear_datamodeling_score`: Spearman correlation, over random training
  subsets, of predicted and actual retrained losses (TRAK's LDS).
* :func:`lds_ceiling`: the LDS of one retraining against another (stochastic
  training): the scale on which to read a method's LDS.
* :func:`loo_correlation`: correlation with actual leave-one-out retraining.
* :func:`removal_curve`: held-out score after removing the highest- / lowest-valued
  points (pyDVL's point-removal experiment).
* :func:`brittleness`: fewest top-attributed points whose removal flips a prediction.
* :func:`lds_scorer`, :func:`loo_scorer`: the same as GridSearchCV scorers, to tune an
  explainer's own parameters by faithfulness.
"""

from ._faithfulness import lds_ceiling, linear_datamodeling_score, loo_correlation
from ._removal import brittleness, removal_curve
from ._retrain import Retrainer, random_subsets
from ._scorers import lds_scorer, loo_scorer, training_data

__all__ = [
    "Retrainer",
    "brittleness",
    "lds_ceiling",
    "lds_scorer",
    "linear_datamodeling_score",
    "loo_correlation",
    "loo_scorer",
    "random_subsets",
    "removal_curve",
    "training_data",
]
