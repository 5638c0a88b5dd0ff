"""InfluenceCleaner on dask arrays: the leave-one-out path by row blocks.

The leave-one-out outputs of a GLM's training points need each point's row and the
factorised Hessian only (see ``_loo.py``): :class:`~skinfluence.influence._dask.DaskGLM`
sums the Hessian over the row blocks, factorises it on the client, and computes the
Newton step without each point block by block.  The labels and the ``(n, K)``
probabilities come back to the client, where confident learning flags the issues as for
arrays in memory (its per-class thresholds and rankings are over the whole set).
"""

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import validate_data

from . import _confident as cl
from ..influence._dask import DaskGLM
from ..utils._dask import compute_values, frame_meta
from ._containers import scores_to_proba


def fit_dask(cleaner, X, y, *, X_val=None, y_val=None, sample_weight=None):
    """:meth:`InfluenceCleaner.fit` on dask arrays (``method="loo"``, a fitted GLM)."""
    if cleaner.method != "loo":
        raise ValueError(
            "InfluenceCleaner on dask arrays has method='loo' (the leave-one-out outputs, "
            f"row block by row block); got method={cleaner.method!r}."
        )
    cleaner._validation_set(X_val, y_val)  # "loo" ignores them, with a warning
    estimator = cleaner._template_estimator()
    if not isinstance(estimator, FrozenEstimator):
        raise TypeError(
            "InfluenceCleaner on dask arrays cleans with a model already fitted (by "
            "scikit-learn on a sample, by partial_fit, ...): wrap it in "
            "sklearn.frozen.FrozenEstimator."
        )
    # the labels come to the client, checked and encoded (classes_) as for arrays in
    # memory; a one-column placeholder stands for the features, which stay in their blocks.
    # A dask Series comes partition by partition (not concatenated on one worker)
    labels = compute_values(y)
    _, _, codes, _ = cleaner._check_training(np.zeros((labels.shape[0], 1)), labels, None)
    del labels  # the client keeps one number per row where it can (codes from here on)
    validate_data(cleaner, frame_meta(X), skip_check_array=True)  # of the real X
    # the frames as they are: the fit counts their rows while it reads them for the Hessian
    glm = DaskGLM.fit(estimator, X, y, sample_weight, damping=cleaner.damping,
                      approximation="newton", owner="InfluenceCleaner",
                      stacklevel=4)  # the user's fit, through its positional_deprecated wrapper
    Z_loo = glm.compute_loo_outputs(stacklevel=4)  # the user's fit, as above
    P = None
    if hasattr(estimator, "predict_proba"):
        try:
            P = glm.template.proba_from_outputs(Z_loo)
        except AttributeError:  # no probability link
            pass
    if P is None:
        P = scores_to_proba(Z_loo, cleaner.classes_.shape[0])
    del Z_loo
    if not np.all(np.isfinite(P)):
        raise FloatingPointError(
            "the out-of-sample probabilities contain NaN/inf; try damping > 0."
        )
    cleaner.estimator_ = estimator
    cleaner.influence_ = None
    cleaner.proba_ = P
    cleaner.scores_ = cl.issue_scores(codes, P, "self_confidence")
    cleaner._flag(codes, P, cleaner.scores_)
    return cleaner
