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

**L1 and elastic-net penalties.**  With ``penalty="l1"`` (``l1_ratio = 1``) or
``"elasticnet"`` the penalty is ``alpha (l1_ratio ||coef||_1 + (1 - l1_ratio)/2
||coef||^2)``, the intercept again unpenalised, and ``E`` is the objective of an
existing L1 model:

- ``SGDRegressor(loss="squared_error")``: ``E = 1/n sum_i s_i (y_i - z_i)^2 / 2 +
  penalty`` is ``ElasticNet(alpha, l1_ratio)``'s ``1/(2 S) sum_i s_i r_i^2 + penalty``
  for constant ``sample_weight`` (``S = n s``; ElasticNet's ``alpha`` is SGD's over
  ``s``).  Without point ``j`` both are means over ``n - 1`` points.  Varying weights
  are refused: SGD divides by ``n``, ElasticNet by ``S``, so their refits differ.
- binary ``SGDClassifier(loss="log_loss")``: ``E / alpha`` is
  ``LogisticRegression(C=1/(n alpha), l1_ratio, solver="saga")``'s objective with the
  same sample (times class) weights; without ``j``, SGD's mean over ``n - 1`` points
  scales the other weights by ``n / (n - 1)`` (``C = 1/((n - 1) alpha)``).

Losses are SGD's own: the regressor's objective is ElasticNet's halved
(``loss_unit = 1``), whose per-sample loss is ``1/2 (y - z)^2`` as with an L2
penalty, so influence values are half those of the equivalent ElasticNet (its
parameter changes are the same); the classifier's log loss is
LogisticRegression's.

The objectives are those of :mod:`.sparse` (:class:`~.sparse.ElasticNetObjective`,
:class:`~.sparse.SparseLogisticObjective`) built at SGD's ``coef_`` and
``intercept_``: removal on SGD's active set (its exact zeros; the truncated-gradient
updates clip coefficients at zero), the KKT check, and refits of the removals that
change the active set.  SGD stops short of the L1 optimum (its active set and
near-zero coefficients carry the noise of the last epochs), so the numbers estimate
the removal effect **at the optimum of E**: ``theta*_{-j} - theta*``, linearised
around SGD's parameters.  When SGD's fit is not stationary on its active set
(:func:`~skinfluence.objectives.stationarity` above 1%), fitting warns
(``NotStationaryWarning``) that the estimates are then off by about SGD's distance
from the optimum.  Refits use the deterministic solver of the equivalent model
(coordinate descent of ``ElasticNet``, ``saga`` of ``LogisticRegression``), since
another SGD run would not reach the optimum either; a refit's parameter change is
``theta*_{-j} - theta*``, the difference of two deterministic fits (with and without
``j``), so SGD's own distance from the optimum does not enter it.

Other losses with an L1 penalty, multiclass classifiers with an L1 penalty and
``class_weight="balanced"`` with an L1 penalty are refused (see the messages).
"""

import warnings

import numpy as np

from . import STATIONARY_TOL, NotStationaryWarning, register_objective, stationarity
from .linear import (
    ElementwiseObjective,
    _check_xy,
    RemovalReweighting,
    class_share_ratio,
    linear_parameters,
    unsupported,
)
from .logistic import encode_classes
from .sparse import ElasticNetObjective, SparseLogisticObjective

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


def _l1_ratio(estimator):
    """The share of the penalty that is L1 (0 for L2 or no penalty), as SGD applies it."""
    if estimator.penalty == "l1":
        return 1.0
    if estimator.penalty == "elasticnet":
        return float(estimator.l1_ratio)
    return 0.0


def _sgd_penalty(estimator):
    """``alpha`` of the L2 penalty ``alpha/2 ||coef||^2`` (0 without penalty)."""
    return 0.0 if estimator.penalty is None else float(estimator.alpha)


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


class _SGDOptimum:
    """What the L1 objectives of SGD add to those of :mod:`.sparse` (module docstring):
    the stationarity warning, and refits as differences of two deterministic fits."""

    # InfluenceFunctions: this check replaces its generic one for frozen models
    reports_stationarity = True
    _optimum = None

    def _equivalent(self):
        raise NotImplementedError

    def check_minimum(self):
        """Warn when SGD's fit is not stationary on its active set (module docstring)."""
        super().check_minimum()
        ratio = stationarity(self)
        if ratio > STATIONARY_TOL:
            est = self.estimator
            warnings.warn(
                f"{type(est).__name__}(penalty={est.penalty!r}) is not at the optimum of its "
                f"objective: on its active set the largest gradient entry is {ratio:.1%} of "
                f"the data's per-sample gradient scale (converged fits stay below "
                f"{STATIONARY_TOL:.0%}); SGD stops short of an L1 optimum. Influence and "
                "leave-one-out values estimate the removal effect at that optimum (the fit "
                f"of {self._equivalent()}), linearised around SGD's parameters and active "
                "set: they are off by about SGD's distance from it. For exact values, explain "
                f"{self._equivalent()} fitted on the same data.",
                NotStationaryWarning, stacklevel=3,
            )

    def refit_without(self, j):
        """SGD's parameters plus ``theta*_{-j} - theta*``: the change between the exact fits
        of the equivalent model without and with ``j`` (None if either does not converge)."""
        theta = super().refit_without(j)
        if theta is None:
            return None
        if self._optimum is None:
            self._optimum = super().refit_without(np.zeros(0, dtype=np.intp))
            if self._optimum is None:
                return None
        return self.theta + (theta - self._optimum)


class SGDElasticNetObjective(_SGDOptimum, ElasticNetObjective):
    """SGDRegressor(loss="squared_error") with an L1 / elastic-net penalty: the
    :class:`~.sparse.ElasticNetObjective` of its ElasticNet in SGD's loss units
    ``1/2 (y - z)^2`` (module docstring)."""

    loss_unit = 1.0

    def _equivalent(self):
        m = self.refit_model
        return f"ElasticNet(alpha={m.alpha:.6g}, l1_ratio={m.l1_ratio:.6g})"


class SGDLogisticObjective(_SGDOptimum, SparseLogisticObjective):
    """Binary SGDClassifier(loss="log_loss") with an L1 / elastic-net penalty: the
    :class:`~.sparse.SparseLogisticObjective` of its LogisticRegression, whose other
    weights scale by ``n / (n - 1)`` when a point is removed (module docstring)."""

    def __init__(self, estimator, X, y, sample_weight, feature_map, equivalent):
        super().__init__(equivalent, X, y, sample_weight, feature_map)
        self.estimator = estimator
        self._reweighting = _mean_reweighting(self.n_train)

    def _equivalent(self):
        m = self._fixed_model
        return f"LogisticRegression(C={m.C:.6g}, l1_ratio={m.l1_ratio:.6g}, solver='saga')"

    def removal_reweighting(self):
        return self._reweighting.gradient_terms(self)

    def removal_weights(self, j):
        return self._reweighting.weights_without(self, j)

    def _refit_sample_weight(self, j):
        n = self.n_train
        sw = self._sample_weight * (n / (n - np.arange(n)[j].size))
        sw[j] = 0.0
        return sw


def _refuse_l1(estimator, what, closest):
    raise unsupported(
        estimator, f"penalty={estimator.penalty!r} with {what}",
        f"{closest}; or penalty='l2' with this loss",
    )


def _sgd_logistic_l1(estimator, X, y_enc, sw, classes, feature_map):
    """The L1 / elastic-net objective of a binary log-loss SGDClassifier."""
    from sklearn.linear_model import LogisticRegression

    if estimator.loss != "log_loss":
        _refuse_l1(estimator, f"loss={estimator.loss!r} (only log_loss has an equivalent L1 "
                   "model with an exact refit)", "SGDClassifier(loss='log_loss')")
    if len(classes) != 2:
        _refuse_l1(estimator, f"{len(classes)} classes (SGD fits them one-vs-rest, which no "
                   "L1 model of skinfluence reproduces)",
                   "LogisticRegression(l1_ratio=..., solver='saga') (multinomial), or one "
                   "binary SGDClassifier per class")
    if estimator.class_weight == "balanced":
        _refuse_l1(estimator, "class_weight='balanced'", "class_weight=None or a dict")
    n = X.shape[0]
    equivalent = LogisticRegression(
        C=1.0 / (n * float(estimator.alpha)), l1_ratio=_l1_ratio(estimator), solver="saga",
        fit_intercept=estimator.fit_intercept, max_iter=max(int(estimator.max_iter), 1000),
    )
    # the fitted SGD's parameters, as the equivalent model's
    coef, intercept = linear_parameters(estimator)
    equivalent.coef_ = coef.copy()
    equivalent.intercept_ = intercept.copy() if intercept is not None else np.zeros(1)
    equivalent.classes_ = classes
    equivalent.n_features_in_ = X.shape[1]
    return SGDLogisticObjective(estimator, X, classes[y_enc], sw, feature_map, equivalent)


def _sgd_elastic_net(estimator, X, y, sample_weight, feature_map):
    """The L1 / elastic-net objective of a squared-error SGDRegressor."""
    from sklearn.linear_model import ElasticNet

    if estimator.loss != "squared_error":
        _refuse_l1(estimator, f"loss={estimator.loss!r} (only squared_error has an "
                   "equivalent L1 model with an exact refit)",
                   "SGDRegressor(loss='squared_error'), or Lasso / ElasticNet")
    s = 1.0
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.float64)
        if sw.size and np.any(sw != sw[0]):
            _refuse_l1(estimator, "varying sample_weight (SGD's mean divides by n, "
                       "ElasticNet's by the weights' sum: their refits differ)",
                       "ElasticNet(alpha=..., l1_ratio=...) with sample_weight")
        s = float(sw[0]) if sw.size else 1.0
    ratio = _l1_ratio(estimator)
    alpha = float(estimator.alpha) / s
    refit = ElasticNet(alpha=alpha, l1_ratio=ratio, fit_intercept=estimator.fit_intercept,
                       precompute=False, selection="cyclic")
    coef, intercept = linear_parameters(estimator)
    return SGDElasticNetObjective(estimator, X, y, sample_weight, coef, intercept, alpha,
                                  ratio, feature_map, refit)


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
    if _l1_ratio(estimator) > 0:
        return _sgd_logistic_l1(estimator, X, y_enc, sw, classes, feature_map)
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
    if _l1_ratio(estimator) > 0:
        return _sgd_elastic_net(estimator, X, y, sample_weight, feature_map)
    n = X.shape[0]
    sw = np.ones(n) if sample_weight is None else sample_weight
    coef, intercept = linear_parameters(estimator)
    return SGDObjective(
        estimator, X, y, sw / n, coef, intercept, alpha, 0.0, feature_map,
        loss=estimator.loss, epsilon=estimator.epsilon, reweighting=_mean_reweighting(n),
    )
