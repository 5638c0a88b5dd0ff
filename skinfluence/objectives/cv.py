"""Cross-validated estimators: RidgeCV, RidgeClassifierCV and LogisticRegressionCV.

A cross-validated estimator selects its regularisation by cross-validation and
then fits the model with it on all the data.  Its objective is the one of the
equivalent fixed-regularisation model with the selected value, and influence
holds that value fixed: a refit without point ``j`` is the equivalent model
refit without ``j``, not a new cross-validation.

* ``RidgeCV`` / ``RidgeClassifierCV``: ``Ridge(alpha=alpha_)`` /
  ``RidgeClassifier(alpha=alpha_)``, ``sum_i s_i ||y_i - z_i||^2 +
  alpha_ ||coef||^2`` (``alpha_`` one value per target with
  ``alpha_per_target=True``).  The leave-one-out (GCV) and K-fold selections
  both refit on all the data with the same penalty scale as :class:`Ridge`.
* ``LogisticRegressionCV`` (``refit=True``): ``LogisticRegression(C=C_,
  l1_ratio=l1_ratio_)`` with the same solver, intercept and class weights;
  ``C_`` holds the same value for every class (one multinomial fit).
  ``refit=False`` averages the coefficients of the folds, which minimise no
  objective on the data, and is refused.
"""

import numpy as np

from . import register_objective
from .linear import _build_ridge_classifier, _least_squares, unsupported
from .logistic import _build as _build_logistic


@register_objective("RidgeCV")
def _build_ridge_cv(estimator, Xf, y, sample_weight, feature_map):
    return _least_squares(estimator, Xf, y, sample_weight, feature_map, estimator.alpha_)


@register_objective("RidgeClassifierCV")
def _build_ridge_classifier_cv(estimator, Xf, y, sample_weight, feature_map):
    return _build_ridge_classifier(estimator, Xf, y, sample_weight, feature_map,
                                   alpha=float(estimator.alpha_))


def _selected(values, name, default=None):
    """The one selected value of ``C_`` / ``l1_ratio_`` (repeated per class; ``default``
    for None, the legacy ``l1_ratio_`` without ``l1_ratios``)."""
    values = [default if v is None else v for v in np.ravel(np.asarray(values, dtype=object))]
    values = np.unique(np.asarray(values, dtype=np.float64))
    if values.size != 1:  # one multinomial fit: never happens with refit=True
        raise ValueError(f"LogisticRegressionCV selected several values of {name}: {values}.")
    return float(values[0])


def equivalent_logistic_regression(estimator):
    """A fitted ``LogisticRegression`` with the selected ``C_`` and ``l1_ratio_`` and the
    coefficients of a fitted ``LogisticRegressionCV``."""
    from sklearn.linear_model import LogisticRegression

    if not estimator.refit:
        raise unsupported(
            estimator,
            "refit=False (its coefficients average the folds' fits and minimise no "
            "objective on the training data)",
            "refit=True",
        )
    # without l1_ratios the penalty is L2, or L1 through the deprecated penalty="l1"
    l1_ratio = _selected(estimator.l1_ratio_, "l1_ratio_",
                         1.0 if getattr(estimator, "penalty", None) == "l1" else 0.0)
    C = _selected(estimator.C_, "C_")
    eq = LogisticRegression(
        C=C,
        l1_ratio=l1_ratio,
        solver=estimator.solver,
        fit_intercept=estimator.fit_intercept,
        intercept_scaling=estimator.intercept_scaling,
        class_weight=estimator.class_weight,
        tol=estimator.tol,
        max_iter=estimator.max_iter,
    )
    eq.classes_ = estimator.classes_
    eq.coef_ = estimator.coef_
    eq.intercept_ = estimator.intercept_
    eq.n_features_in_ = estimator.n_features_in_
    return eq


@register_objective("LogisticRegressionCV")
def _build_logistic_cv(estimator, Xf, y, sample_weight, feature_map):
    # through LogisticRegression's builder: L1 / elastic net get objectives/sparse.py's
    obj = _build_logistic(equivalent_logistic_regression(estimator), Xf, y, sample_weight,
                          feature_map)
    obj.estimator = estimator  # predictions, with_params and class weights: the CV model's
    return obj
