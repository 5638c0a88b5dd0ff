"""LinearSVC with the squared hinge loss and an L2 penalty (liblinear's L2-loss SVM).

liblinear minimises, for each binary problem (Fan et al., 2008, JMLR 9)

    1/2 ||w||^2 + sum_i C_i max(0, 1 - t_i w^T x_i)^2,   C_i = C * s_i * c_i

with ``s`` the ``sample_weight``, ``c`` the class weight (scikit-learn computes
"balanced" weights *with* ``sample_weight`` here) and ``t`` in {-1, 1}
(positive class ``classes_[1]``).  With ``fit_intercept`` liblinear appends a
constant feature ``intercept_scaling`` whose weight is penalised like the
others, so the intercept ``b = intercept_scaling * w_b`` carries the penalty
``1/2 (b / intercept_scaling)^2``.  A multiclass model is one-vs-rest: ``K``
independent binary problems in which only the positive examples of class
``k`` get ``C * class_weight[k]`` (the rest get ``C``), hence per-output loss
factors as in :mod:`.sgd`.

With ``class_weight="balanced"`` the class weights depend on the training set
and move when a point is removed (:meth:`removal_reweighting`).

The squared hinge is once differentiable: at the kink ``t z = 1`` (measure
zero) the Hessian uses the one-sided second derivative.
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

_SUPPORTED = "penalty='l2', loss='squared_hinge', multi_class='ovr'"


@register_objective("LinearSVC")
def _build_linear_svc(estimator, Xf, y, sample_weight, feature_map):
    from sklearn.utils.class_weight import compute_class_weight

    if estimator.loss != "squared_hinge":
        raise unsupported(
            estimator, f"loss={estimator.loss!r} (the hinge loss is not differentiable; the "
            "closest supported model is LinearSVC(loss='squared_hinge'))",
            _SUPPORTED,
        )
    if estimator.penalty != "l2":
        raise unsupported(
            estimator, f"penalty={estimator.penalty!r} (not twice differentiable)", _SUPPORTED
        )
    if estimator.multi_class != "ovr":
        raise unsupported(estimator, f"multi_class={estimator.multi_class!r}", _SUPPORTED)
    classes = np.asarray(estimator.classes_)
    y_enc = encode_classes(classes, y)
    X = _check_xy(estimator, Xf, y_enc)
    sw = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    cw = np.asarray(
        compute_class_weight(
            estimator.class_weight, classes=classes, y=classes[y_enc], sample_weight=sw
        ),
        dtype=np.float64,
    )
    C = float(estimator.C)
    out_cw = None
    K = len(classes)
    reweighting = None
    if estimator.class_weight == "balanced":  # S / (K S_c) moves when a point leaves
        ratio = class_share_ratio(y_enc, sw, K)
        if K == 2:
            reweighting = RemovalReweighting(ratio, sample_parts=y_enc)
        else:  # only the positive terms of each one-vs-rest problem are class-weighted
            ratio = np.column_stack([np.ones(len(y_enc)), ratio])
            reweighting = RemovalReweighting(ratio, ovr_classes=K)

    if K == 2:
        sw = sw * cw[y_enc]
    elif np.any(cw != 1.0):
        out_cw = cw
    coef, intercept = linear_parameters(estimator)
    intercept_penalty = 0.0
    if intercept is not None:
        intercept_penalty = 1.0 / float(estimator.intercept_scaling) ** 2
    return ElementwiseObjective(
        estimator, X, y_enc, C * sw, coef, intercept, 1.0, intercept_penalty, feature_map,
        loss="squared_hinge", classes=classes, output_class_weight=out_cw,
        reweighting=reweighting,
    )
