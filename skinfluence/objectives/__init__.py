"""Training objectives of fitted estimators: losses, gradients, Hessians and HVPs.

:func:`make_objective` turns a fitted estimator (or a :class:`~sklearn.pipeline.Pipeline`
ending in one) plus its training data into an :class:`Objective`.  Each model
family lives in its own module and registers a builder with
:func:`register_objective`; modules are imported on first use.
"""

import importlib
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import is_classifier
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_array
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._base import Objective, row_blocks

__all__ = [
    "Objective",
    "make_objective",
    "register_objective",
    "supported_estimators",
    "unwrap_frozen",
    "NotStationaryWarning",
    "stationarity",
    "warn_if_not_stationary",
]

# A frozen model whose largest objective-gradient entry exceeds this share of the
# per-sample gradient scale is not at the optimum of the data it was given: converged
# fits stay well below it, fits on other data well above (docs/user_guide/cleaning.rst).
STATIONARY_TOL = 1e-2

# estimator class name -> (module that registers it, description shown in errors)
_FAMILY_MODULES = {
    "LogisticRegression": "logistic",
    "LinearRegression": "linear",
    "Ridge": "linear",
    "RidgeClassifier": "linear",
    "SGDClassifier": "sgd",
    "SGDRegressor": "sgd",
    "LinearSVC": "svm",
    "PoissonRegressor": "glm",
    "GammaRegressor": "glm",
    "TweedieRegressor": "glm",
    "MLPClassifier": "mlp",
    "MLPRegressor": "mlp",
    "RidgeCV": "cv",
    "RidgeClassifierCV": "cv",
    "LogisticRegressionCV": "cv",
    "KernelRidge": "kernel",
    "GaussianProcessRegressor": "kernel",
    "HuberRegressor": "huber",
    "Lasso": "sparse",
    "ElasticNet": "sparse",
    "LassoCV": "sparse",
    "ElasticNetCV": "sparse",
    "MultiTaskLasso": "sparse",
    "MultiTaskElasticNet": "sparse",
}

_REGISTRY = {}

_KERNEL_SVM = (
    "a kernel SVM's hinge loss is not differentiable: its fit is a vertex of a quadratic "
    "program, which no Newton step or derivative follows when a point is removed. Closest "
    "supported: {closest}"
)
# refused on purpose: why, and the closest supported model
_REFUSED = {
    "QuantileRegressor": (
        "its pinball loss is piecewise linear, so the fit sits at a vertex (as many zero "
        "residuals as parameters) that no derivative follows when a point is removed. "
        "Closest supported: HuberRegressor (robust, smooth near zero) or "
        "SGDRegressor(loss='huber')"
    ),
    "SVC": _KERNEL_SVM.format(closest="KernelRidge on the labels (exact leave-one-out), or "
                              "make_pipeline(Nystroem(kernel=...), LogisticRegression())"),
    "NuSVC": _KERNEL_SVM.format(closest="KernelRidge on the labels (exact leave-one-out), or "
                                "make_pipeline(Nystroem(kernel=...), LogisticRegression())"),
    "SVR": _KERNEL_SVM.format(closest="KernelRidge (exact leave-one-out)"),
    "NuSVR": _KERNEL_SVM.format(closest="KernelRidge (exact leave-one-out)"),
}


def register_objective(*class_names):
    """Class decorator / function registering a builder for estimator classes (by class name).

    The builder is called as ``builder(estimator, Xf, y, sample_weight, feature_map)`` where
    ``estimator`` is the fitted final estimator, ``Xf`` the training features it saw,
    ``feature_map`` a callable validating raw ``X`` and mapping it to features.
    """

    def decorator(builder):
        for name in class_names:
            _REGISTRY[name] = builder
        return builder

    return decorator


def supported_estimators():
    """Names of the estimator classes the objective layer supports."""
    return sorted(_FAMILY_MODULES)


def _unsupported(estimator, reason=None):
    msg = f"{type(estimator).__name__} is not supported by skinfluence's objective layer"
    if reason:
        msg += f": {reason}"
    msg += ". Supported estimators: " + ", ".join(supported_estimators()) + (
        " (or a Pipeline ending in one of them)."
    )
    return TypeError(msg)


def _builder_for(estimator):
    name = type(estimator).__name__
    module = _FAMILY_MODULES.get(name)
    if module is None:
        raise _unsupported(estimator, _REFUSED.get(name))
    importlib.import_module(f"{__name__}.{module}")
    try:
        return _REGISTRY[name]
    except KeyError:  # module exists in the plan but did not register (should not happen)
        raise _unsupported(estimator, "its objective module is not available") from None


def unwrap_frozen(estimator):
    """The fitted estimator inside (nested) :class:`~sklearn.frozen.FrozenEstimator` s."""
    while isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    return estimator


class NotStationaryWarning(UserWarning):
    """A frozen model is not at the optimum of the data it was explained on."""


def stationarity(obj):
    """``max |grad J(theta)|`` over the largest summed ``|w_i grad loss_i|`` entry.

    Zero at an exact optimum of the objective on ``obj``'s data; the share of the
    data's own gradient scale the fitted parameters leave unbalanced otherwise.
    """
    return stationarity_ratio(obj, *stationarity_sums(obj))


def stationarity_sums(obj):
    """``sum_i w_i grad loss_i`` and ``sum_i |w_i grad loss_i|`` over ``obj``'s training set.

    Summed over row blocks (the per-sample gradients are as large as the data); sums
    over the row blocks of larger data add up to those of the whole.
    """
    grad = np.zeros(obj.n_params)
    total = np.zeros(obj.n_params)
    for rows in row_blocks(obj.n_train, obj.n_params):
        G = obj.sample_gradients(obj.X[rows], obj.y[rows])
        grad += obj.weights[rows] @ G
        G *= obj.weights[rows, None]
        total += np.abs(G, out=G).sum(axis=0)
    return grad, total


def stationarity_ratio(obj, grad, total):
    """:func:`stationarity` from the sums of :func:`stationarity_sums` (penalty added here)."""
    grad = grad + obj.penalty_gradient()
    scale = total.max()
    return float(np.abs(grad).max() / scale) if scale > 0 else 0.0


def warn_if_not_stationary(ratio, stacklevel=3):
    """Warn that a frozen model is not at the optimum of the data it was given."""
    if ratio > STATIONARY_TOL:
        warnings.warn(
            "The frozen model is not at a minimum of its training objective on the data "
            f"passed to fit: its largest gradient entry is {ratio:.1%} of the data's "
            f"per-sample gradient scale (converged fits stay below {STATIONARY_TOL:.0%}). "
            "Was it fitted on exactly these X, y and sample_weight, and did it converge? "
            "Influence and leave-one-out values are computed from the optimum.",
            NotStationaryWarning,
            stacklevel=stacklevel,
        )


def split_pipeline(estimator):
    """Return ``(preprocessing, final_estimator)``; preprocessing is None for a bare estimator."""
    if isinstance(estimator, Pipeline):
        final = estimator.steps[-1][1]
        pre = estimator[:-1] if len(estimator.steps) > 1 else None
        return pre, final
    return None, estimator


class FeatureMap:
    """Raw ``X`` -> the features the final estimator sees (picklable, unlike a closure).

    For a bare estimator this validates ``X`` as a 2-D float64 array (CSR kept);
    for a pipeline it applies the fitted preprocessing steps.
    """

    def __init__(self, preprocessing=None):
        self.preprocessing = preprocessing

    def __call__(self, X):
        if self.preprocessing is not None:
            X = self.preprocessing.transform(X)
        if sp.issparse(X):
            return X.tocsr()
        return check_array(X, dtype=np.float64, ensure_all_finite=True, input_name="X")


def make_objective(estimator, X, y, sample_weight=None):
    """Build the training objective of a fitted estimator on its training data.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
        Earlier pipeline steps are treated as a fixed feature map.  A
        :class:`~sklearn.frozen.FrozenEstimator` stands for the model it wraps.
    X : array-like or sparse matrix of shape (n_samples, n_features)
        The data the estimator was fitted on.
    y : array-like of shape (n_samples,)
    sample_weight : array-like of shape (n_samples,), default=None
        The sample weights used in the fit.

    Returns
    -------
    objective : Objective

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.objectives import make_objective
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = X[:, :5]
    >>> model = LogisticRegression(max_iter=1000).fit(X, y)
    >>> obj = make_objective(model, X, y)
    >>> obj.n_params
    6
    """
    estimator = unwrap_frozen(estimator)
    check_is_fitted(estimator)
    pre, final = split_pipeline(estimator)
    builder = _builder_for(final)
    if pre is not None:
        check_is_fitted(pre)
    feature_map = FeatureMap(pre)
    Xf = feature_map(X)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        if sample_weight.ndim != 1 or sample_weight.shape[0] != Xf.shape[0]:
            raise ValueError(
                f"sample_weight has shape {sample_weight.shape}; expected ({Xf.shape[0]},)."
            )
    objective = builder(final, Xf, y, sample_weight, feature_map)
    objective.is_classifier = is_classifier(final)
    return objective
