"""SGDClassifier and SGDRegressor with smooth losses and an L2 (or no) penalty.

scikit-learn's SGD estimators approximately minimise (see the SGD user guide
and ``sklearn/linear_model/_sgd_fast.pyx.tp``)

    E(coef, b) = 1/n sum_i s_i c_i L(t_i, z_i) + alpha/2 ||coef||^2

with the intercept unpenalised, ``s`` the ``sample_weight`` and ``c`` the
class weight (the weight of the sample's class in a binary problem).  Every
update is scaled by ``s_i c_i`` and samples are drawn uniformly, so the
expected step is the gradient of ``E``.  Classifiers use targets ``t`` in
{-1, 1} (positive class ``classes_[1]``); a multiclass classifier is fitted
one-versus-all, i.e. ``K`` independent binary problems whose objectives add
up: ``K`` outputs and a block-diagonal Hessian.  In the binary problem of
class ``k`` only the positive examples carry the weight of class ``k`` (the
others weigh 1), so with ``class_weight`` the multiclass per-sample loss is
``sum_k a_k L(t_k, z_k)`` with ``a_k = class_weight[k]`` when ``y = k`` and 1
otherwise.

Supported losses: ``log_loss``, ``modified_huber``, ``squared_hinge``,
``squared_error`` (``1/2 (y - z)^2``), ``huber`` and
``squared_epsilon_insensitive`` (with ``epsilon``).  ``modified_huber``,
``squared_hinge``, ``huber`` and ``squared_epsilon_insensitive`` are only
once differentiable: at their kinks (a set of measure zero) the Hessian uses
the one-sided second derivative, which exists almost everywhere.

Because ``E`` is a mean, a refit without point ``j`` rescales every other
weight by ``n / (n - 1)`` (and "balanced" class weights move with the class
counts): :meth:`~ElementwiseObjective.removal_reweighting` reports this.

SGD's solution is only approximately optimal (it is stochastic): influence
estimates describe the exact minimiser of ``E`` near the fitted parameters.
"""

import numpy as np

from . import register_objective
from .linear import (
    ElementwiseObjective,
    _check_xy,
    RemovalReweighting,
    class_share_ratio,
    linear_parameters,
    unsupported,
)
from .logistic import encode_classes

def _mean_reweighting(n):
    """All weights are ``1/n`` means: removing a point scales them by ``n / (n - 1)``."""
    return RemovalReweighting(np.full((n, 1), n / (n - 1.0)), sample_parts=np.zeros(n))


def _balanced_reweighting(y_enc, n_classes):
    """SGD's "balanced" weights ``n / (n_classes n_c)`` (counts, no sample_weight) over ``n``."""
    n = y_enc.shape[0]
    # the class weight's n cancels the mean's 1/n: the positives of class c weigh 1/n_c
    cls = class_share_ratio(y_enc, np.ones(n), n_classes) * (n / (n - 1.0))
    if n_classes == 2:
        return RemovalReweighting(cls, sample_parts=y_enc)
    # one-vs-rest: negative terms are plain means, positive terms of class k weigh 1/n_k
    ratio = np.column_stack([np.full(n, n / (n - 1.0)), cls])
    return RemovalReweighting(ratio, ovr_classes=n_classes)


_CLASSIFIER_LOSSES = (
    "log_loss",
    "modified_huber",
    "squared_hinge",
    "squared_error",
    "huber",
    "squared_epsilon_insensitive",
)
_REGRESSOR_LOSSES = ("squared_error", "huber", "squared_epsilon_insensitive")
# non-differentiable losses -> the smooth ones closest to them
_CLOSEST = {
    "hinge": "'squared_hinge' and 'modified_huber'",
    "perceptron": "'squared_hinge' and 'modified_huber'",
    "epsilon_insensitive": "'squared_epsilon_insensitive' and 'huber'",
}


def _sgd_penalty(estimator):
    """``alpha`` of the L2 penalty ``alpha/2 ||coef||^2`` (0 without penalty)."""
    penalty = estimator.penalty
    if penalty is None:
        return 0.0
    if penalty == "l2" or (penalty == "elasticnet" and estimator.l1_ratio == 0):
        return float(estimator.alpha)
    raise unsupported(
        estimator,
        f"penalty={penalty!r}" + (f" (l1_ratio={estimator.l1_ratio})" if penalty == "elasticnet"
                                  else "") + " (SGD's truncated-gradient L1 steps stop short of "
        "the L1 optimum, whose active set and KKT conditions the removal is built on)",
        "penalty='l2', penalty=None or penalty='elasticnet' with l1_ratio=0; for an L1 "
        "penalty the closest supported models are Lasso / ElasticNet (squared error) and "
        "LogisticRegression(l1_ratio=..., solver='saga') (log loss)",
    )


def _check_common(estimator, losses):
    if estimator.learning_rate in ("pa1", "pa2"):
        raise unsupported(
            estimator,
            f"learning_rate={estimator.learning_rate!r} (passive-aggressive updates do not "
            "minimise a regularised objective)",
            "learning_rate in 'constant', 'optimal', 'invscaling', 'adaptive'",
        )
    if estimator.loss not in losses:
        raise unsupported(
            estimator,
            f"loss={estimator.loss!r} (not differentiable; the closest supported losses are "
            f"{_CLOSEST[estimator.loss]})" if estimator.loss in _CLOSEST
            else f"loss={estimator.loss!r}",
            "loss in " + ", ".join(repr(s) for s in losses),
        )
    if estimator.early_stopping:
        raise unsupported(
            estimator,
            "early_stopping=True (the model is fitted on a random subset of the data)",
            "early_stopping=False",
        )


class SGDObjective(ElementwiseObjective):
    """Objective of a fitted SGDClassifier / SGDRegressor (see the module docstring)."""

    def proba_from_outputs(self, Z):
        """Class probabilities as ``predict_proba`` computes them (log_loss, modified_huber)."""
        if self.classes is None:
            raise AttributeError("SGDRegressor has no predict_proba.")
        if self.loss == "log_loss":
            P = 1.0 / (1.0 + np.exp(-Z))
        elif self.loss == "modified_huber":
            P = (np.clip(Z, -1.0, 1.0) + 1.0) / 2.0
        else:
            raise AttributeError(
                f"SGDClassifier(loss={self.loss!r}) has no predict_proba; "
                "only 'log_loss' and 'modified_huber' do."
            )
        if self.binary:
            return np.column_stack([1.0 - P[:, 0], P[:, 0]])
        # one-vs-rest normalisation; all-zero rows become uniform, as in scikit-learn
        tot = P.sum(axis=1)
        zero = tot == 0
        if np.any(zero):
            P[zero] = 1.0
            tot[zero] = P.shape[1]
        return P / tot[:, None]


@register_objective("SGDClassifier")
def _build_sgd_classifier(estimator, Xf, y, sample_weight, feature_map):
    from sklearn.utils.class_weight import compute_class_weight

    _check_common(estimator, _CLASSIFIER_LOSSES)
    alpha = _sgd_penalty(estimator)
    classes = np.asarray(estimator.classes_)
    y_enc = encode_classes(classes, y)
    X = _check_xy(estimator, Xf, y_enc)
    n = X.shape[0]
    sw = np.ones(n) if sample_weight is None else sample_weight
    # SGD computes class weights without sample_weight (so "balanced" counts samples)
    cw = np.asarray(
        compute_class_weight(estimator.class_weight, classes=classes, y=classes[y_enc]),
        dtype=np.float64,
    )
    out_cw = None
    if len(classes) == 2:
        sw = sw * cw[y_enc]
    elif np.any(cw != 1.0):
        out_cw = cw
    if estimator.class_weight == "balanced":
        reweighting = _balanced_reweighting(y_enc, len(classes))
    else:
        reweighting = _mean_reweighting(n)
    coef, intercept = linear_parameters(estimator)
    return SGDObjective(
        estimator, X, y_enc, sw / n, coef, intercept, alpha, 0.0, feature_map,
        loss=estimator.loss, epsilon=estimator.epsilon, classes=classes,
        output_class_weight=out_cw, reweighting=reweighting,
    )


@register_objective("SGDRegressor")
def _build_sgd_regressor(estimator, Xf, y, sample_weight, feature_map):
    from .linear import check_regression_target

    _check_common(estimator, _REGRESSOR_LOSSES)
    alpha = _sgd_penalty(estimator)
    y = check_regression_target(y, 1)
    X = _check_xy(estimator, Xf, y)
    n = X.shape[0]
    sw = np.ones(n) if sample_weight is None else sample_weight
    coef, intercept = linear_parameters(estimator)
    return SGDObjective(
        estimator, X, y, sw / n, coef, intercept, alpha, 0.0, feature_map,
        loss=estimator.loss, epsilon=estimator.epsilon, reweighting=_mean_reweighting(n),
    )
