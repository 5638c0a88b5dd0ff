"""Label cleaning: find, remove or relabel mislabelled training examples.

* :class:`InfluenceCleaner` scores every training point from one fit
  (approximate leave-one-out probabilities, self-influence, influence on a
  trusted set, or the training loss) and flags suspects with confident
  learning; regression targets by their standardised leave-one-out residuals;
  ``fit_resample`` makes it a sampler for imbalanced-learn pipelines.
* :class:`CleanClassifier` fits, cleans and refits, so that the amount of
  cleaning is a hyper-parameter for :class:`~sklearn.model_selection.GridSearchCV`.
* :func:`find_label_issues`, :func:`confident_joint`, :func:`estimate_joint`:
  confident learning (Northcutt et al., JAIR 2021) on any probability matrix.
* :func:`cleaning_curve`: fraction of flipped labels found vs fraction checked.
"""

from ._classifier import CleanClassifier
from ._cleaner import InfluenceCleaner
from ._confident import confident_joint, estimate_joint, find_label_issues, issue_scores
from ._curve import cleaning_curve

__all__ = [
    "CleanClassifier",
    "InfluenceCleaner",
    "cleaning_curve",
    "confident_joint",
    "estimate_joint",
    "find_label_issues",
    "issue_scores",
]
