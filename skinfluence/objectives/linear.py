"""Least-squares linear models: LinearRegression, Ridge and RidgeClassifier.

This module also holds the machinery shared by every linear model whose loss
is a *sum over outputs of a scalar loss* ``sum_k a_k L(t_k, z_k)`` (squared
error, squared hinge, Huber, ...): the numba kernels and
:class:`ElementwiseObjective`, reused by :mod:`.sgd` and :mod:`.svm`.  For such
losses the output Hessian ``S_i`` is diagonal, so a multi-output model is a
set of independent problems sharing ``X`` (block-diagonal Hessian).

Objectives scikit-learn minimises here (``s`` = ``sample_weight``, times the
class weight for :class:`~sklearn.linear_model.RidgeClassifier`):

* ``LinearRegression``: ``sum_i s_i ||y_i - z_i||^2``;
* ``Ridge``: ``sum_i s_i ||y_i - z_i||^2 + sum_k alpha_k ||coef_k||^2`` with
  the intercept unpenalised (``alpha`` may be one value per target);
* ``RidgeClassifier``: ``Ridge`` on targets in {-1, 1} per class
  (``LabelBinarizer(pos_label=1, neg_label=-1)``; one output when binary).
"""

import numpy as np
from numba import prange
from sklearn.utils.validation import check_array


from .._numba import njit, parallel_above
from . import register_objective
from ._linear import LinearObjective, check_features
from .logistic import encode_classes

# Scalar losses L(t, z) of a target t and an output z.  The margin losses
# (log, modified Huber, squared hinge) take t in {-1, 1}.
LOSS_CODES = {
    "log_loss": 0,
    "modified_huber": 1,
    "squared_hinge": 2,
    "squared_error": 3,  # 1/2 (z - t)^2, scikit-learn's SGD "squared_error"
    "huber": 4,
    "squared_epsilon_insensitive": 5,
    "least_squares": 6,  # (z - t)^2, the Ridge / LinearRegression data term
}


@njit(cache=True, nogil=True)
def _scalar_loss(code, eps, t, z):
    """``(L, dL/dz, d2L/dz2)``; at the kinks of once-differentiable losses the
    second derivative is the one-sided value (it exists almost everywhere)."""
    if code == 0:
        m = -t * z
        if m > 0.0:
            e = np.exp(-m)
            loss = m + np.log1p(e)
            sig = 1.0 / (1.0 + e)  # sigmoid(m)
        else:
            e = np.exp(m)
            loss = np.log1p(e)
            sig = e / (1.0 + e)
        return loss, -t * sig, sig * (1.0 - sig)
    if code == 1:
        m = t * z
        if m >= 1.0:
            return 0.0, 0.0, 0.0
        if m >= -1.0:
            return (1.0 - m) * (1.0 - m), -2.0 * t * (1.0 - m), 2.0 * t * t
        return -4.0 * m, -4.0 * t, 0.0
    if code == 2:
        u = 1.0 - t * z
        if u > 0.0:
            return u * u, -2.0 * t * u, 2.0 * t * t
        return 0.0, 0.0, 0.0
    if code == 3:
        r = z - t
        return 0.5 * r * r, r, 1.0
    if code == 4:
        r = z - t
        if abs(r) <= eps:
            return 0.5 * r * r, r, 1.0
        return eps * (abs(r) - 0.5 * eps), eps * np.sign(r), 0.0
    if code == 5:
        r = z - t
        a = abs(r) - eps
        if a > 0.0:
            return a * a, 2.0 * a * np.sign(r), 2.0
        return 0.0, 0.0, 0.0
    r = z - t
    return r * r, 2.0 * r, 2.0


@njit(cache=True, nogil=True)
def elementwise_derivatives(code, eps, T, A, Z, loss, R, S):
    """``loss[i] = sum_k A[i,k] L(T[i,k], Z[i,k])``, ``R`` its gradient, ``S`` its
    (diagonal) Hessian in ``z``; ``S`` must be zero-initialised."""
    n, K = Z.shape
    for i in range(n):
        acc = 0.0
        for k in range(K):
            v, d1, d2 = _scalar_loss(code, eps, T[i, k], Z[i, k])
            a = A[i, k]
            acc += a * v
            R[i, k] = a * d1
            S[i, k, k] = a * d2
        loss[i] = acc


@parallel_above(work=lambda *args: args[-2].size)  # D: (n, K, m)
@njit(cache=True, nogil=True, parallel=True)
def elementwise_loss_change(code, eps, T, A, Z0, D, out):
    """``out[i, j] = loss(z_i + D[i, :, j]) - loss(z_i)`` fused over a block of columns."""
    n, K, m = D.shape
    for i in prange(n):
        for j in range(m):
            out[i, j] = 0.0
        for k in range(K):
            t = T[i, k]
            z = Z0[i, k]
            a = A[i, k]
            base = _scalar_loss(code, eps, t, z)[0]
            for j in range(m):
                out[i, j] += a * (_scalar_loss(code, eps, t, z + D[i, k, j])[0] - base)
    return out


def check_regression_target(y, n_outputs, name="y"):
    """Finite float targets of shape (n,) for one output or (n, K) for K outputs."""
    y = check_array(
        y, ensure_2d=False, dtype=np.float64, ensure_all_finite=True, input_name=name
    )
    if y.ndim == 2 and y.shape[1] == 1 and n_outputs == 1:
        y = y[:, 0]
    if n_outputs == 1 and y.ndim != 1:
        raise ValueError(f"{name} must have shape (n_samples,) for this model, got {y.shape}.")
    if n_outputs > 1 and (y.ndim != 2 or y.shape[1] != n_outputs):
        raise ValueError(
            f"{name} must have shape (n_samples, {n_outputs}) for this {n_outputs}-target "
            f"model, got {y.shape}."
        )
    return y


def unsupported(estimator, what, supported):
    """``ValueError`` for an unsupported configuration, naming what is supported."""
    return ValueError(
        f"{type(estimator).__name__} with {what} is not supported by skinfluence's objective "
        f"layer. Supported: {supported}."
    )


class RemovalReweighting:
    """Weights that move in groups when a training point is removed and the model refit.

    Each sample's loss terms (one per output) belong to one of ``q`` parts; all
    terms of part ``c`` are rescaled by ``ratio[j, c]`` when point ``j`` is
    removed (a mean over the training set, ``1/n``, becomes ``1/(n - 1)``; a
    "balanced" class weight follows the class totals).

    Parameters
    ----------
    ratio : ndarray of shape (n, q)
        Ratios that are not finite (removing the last point of a class leaves
        no refit) are treated as 1.
    sample_parts : ndarray of shape (n,) or None
        The part of every term of each sample, when parts are per sample.
    ovr_classes : int or None
        Otherwise, one-vs-rest parts: part 0 holds the negative terms of every
        binary problem, part ``1 + k`` the positive terms of class ``k``.
    """

    def __init__(self, ratio, sample_parts=None, ovr_classes=None):
        self.ratio = np.where(np.isfinite(ratio), ratio, 1.0)
        self.sample_parts = None if sample_parts is None else np.asarray(sample_parts, np.intp)
        self.ovr_classes = ovr_classes

    def _masks(self, y, n_outputs):
        if self.sample_parts is not None:
            parts = self.sample_parts
            return [np.repeat((parts == c)[:, None], n_outputs, axis=1)
                    for c in range(self.ratio.shape[1])]
        n, K = y.shape[0], self.ovr_classes
        pos = np.zeros((n, K), dtype=bool)
        pos[np.arange(n), y] = True
        return [~pos] + [pos & (y == c)[:, None] for c in range(K)]

    def gradient_terms(self, objective):
        """``(factor, B, coeff)`` of :meth:`Objective.removal_reweighting`.

        At the fitted parameters the gradient of the objective without ``j`` is
        ``sum_c (ratio[j, c] - 1) G_c - ratio[j, own_j] w_j g_j`` with ``G_c`` the
        part's summed weighted gradient and ``own_j`` the part of ``j``'s terms.
        With one-vs-rest parts, ``j``'s terms span two parts and ``own_j`` is
        its positive part: the error is second order in the ratios' distance
        from 1, O(1/n^2) like the change of the Hessian the Newton step ignores.
        """
        X, y, w = objective.X, objective.y, objective.weights
        R, _ = objective.loss_derivatives(objective.outputs(X), y)
        WR = w[:, None] * R
        masks = self._masks(y, objective.n_outputs)
        B = np.column_stack([objective.vjp_T(X, WR * m).sum(axis=1) for m in masks])
        own = self.sample_parts if self.sample_parts is not None else y + 1
        factor = self.ratio[np.arange(self.ratio.shape[0]), own]
        return factor, B, self.ratio - 1.0

    def weights_without(self, objective, j):
        """Per-sample weights of the objective refit without ``j``; None for one-vs-rest
        parts, whose per-output rescaling per-sample weights cannot express."""
        if self.sample_parts is None:
            return None
        w = objective.weights * self.ratio[j, self.sample_parts]
        w[j] = 0.0
        return w


def class_share_ratio(y_enc, s, n_classes):
    """``ratio[j, c] = (S'/S) (S_c / S_c')``: how ``S / S_c`` moves when point ``j`` leaves.

    ``S`` is the total and ``S_c`` the class-``c`` total of the weights ``s``
    (ones for counts); primes are the totals without ``j``.  This is the change
    of a "balanced" class weight ``S / (n_classes S_c)``.
    """
    n = y_enc.shape[0]
    S = s.sum()
    S_c = np.bincount(y_enc, weights=s, minlength=n_classes)
    S_c_new = np.broadcast_to(S_c, (n, n_classes)).copy()
    S_c_new[np.arange(n), y_enc] -= s
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((S - s) / S)[:, None] * (S_c[None, :] / S_c_new)


class ElementwiseObjective(LinearObjective):
    """Linear model with loss ``sum_k a_k(y) L(t_k(y), z_k)`` for a scalar loss ``L``.

    Parameters
    ----------
    estimator, X, y, weights, coef, intercept, coef_penalty, intercept_penalty, feature_map
        As :class:`~skinfluence.objectives._linear.LinearObjective`; ``y`` holds
        class indices for classifiers and float targets for regressors.
    loss : str
        A key of ``LOSS_CODES``.
    epsilon : float
        Threshold of the Huber / epsilon-insensitive losses.
    classes : ndarray or None
        Class labels for classifiers (targets ``t_k`` in {-1, 1}, one-vs-rest);
        None for regressors (``t = y``).
    output_class_weight : ndarray of shape (K,) or None
        For multiclass one-vs-rest fits whose class weight multiplies only the
        *positive* examples of each binary problem (SGD, liblinear): the loss
        of output ``k`` is scaled by ``output_class_weight[k]`` when ``y = k``.
        These factors differ per output, so they live in the loss, not in
        ``weights``.
    reweighting : RemovalReweighting or None
        When the weights depend on the training set (means over it, "balanced"
        class weights); see :meth:`removal_reweighting`.
    """

    def __init__(
        self,
        estimator,
        X,
        y,
        weights,
        coef,
        intercept,
        coef_penalty,
        intercept_penalty=0.0,
        feature_map=None,
        *,
        loss,
        epsilon=0.0,
        classes=None,
        output_class_weight=None,
        reweighting=None,
    ):
        self.loss = loss
        self._reweighting = reweighting
        self._code = LOSS_CODES[loss]
        self.epsilon = float(epsilon)
        self.classes = None if classes is None else np.asarray(classes)
        self.output_class_weight = (
            None if output_class_weight is None else np.asarray(output_class_weight, float)
        )
        penalty = np.asarray(coef_penalty, dtype=np.float64)
        super().__init__(
            estimator,
            X,
            y,
            weights,
            coef,
            intercept,
            float(penalty.max()) if penalty.ndim else float(penalty),
            intercept_penalty,
            feature_map,
        )
        if penalty.ndim:  # one penalty per output (Ridge with an alpha per target)
            self.coef_penalty = np.broadcast_to(penalty, (self.n_outputs,)).copy()

    def removal_reweighting(self):
        """How the other points' weights move when one is removed (None: they do not)."""
        if self._reweighting is None:
            return None
        return self._reweighting.gradient_terms(self)

    def removal_weights(self, j):
        """Weights of the objective refit without point ``j`` (``weights`` with
        ``w_j = 0``, rescaled as the estimator rescales them), or None when they
        are not per-sample weights (one-vs-rest "balanced" class weights)."""
        if self._reweighting is None:
            w = self.weights.copy()
            w[j] = 0.0
            return w
        return self._reweighting.weights_without(self, j)

    @property
    def binary(self):
        return self.classes is not None and self.n_outputs == 1

    def penalty_diagonal(self):
        if not np.ndim(self.coef_penalty):
            return super().penalty_diagonal()
        K, d = self.n_outputs, self.n_features
        diag = np.full(self.n_params, self.intercept_penalty)
        diag[: K * d] = np.repeat(self.coef_penalty, d)
        return diag

    # ---------------------------------------------------------- targets
    def encode_target(self, y):
        if self.classes is not None:
            return encode_classes(self.classes, y)
        return check_regression_target(y, self.n_outputs)

    def _targets(self, y, n):
        """Per-output targets ``T`` and loss factors ``A``, both (n, K)."""
        K = self.n_outputs
        A = np.ones((n, K))
        if self.classes is None:
            T = np.asarray(y, dtype=np.float64).reshape(n, K)
            return T, A
        y = np.asarray(y, dtype=np.intp)
        if K == 1:
            return np.where(y == 1, 1.0, -1.0)[:, None], A
        T = -np.ones((n, K))
        rows = np.arange(n)
        T[rows, y] = 1.0
        if self.output_class_weight is not None:
            A[rows, y] = self.output_class_weight[y]
        return T, A

    # ------------------------------------------------------------- loss
    def loss_derivatives(self, Z, y):
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        n, K = Z.shape
        T, A = self._targets(y, n)
        loss, R, S = np.empty(n), np.empty((n, K)), np.zeros((n, K, K))
        elementwise_derivatives(self._code, self.epsilon, T, A, Z, loss, R, S)
        return R, S

    def loss_from_outputs(self, Z, y):
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        n, K = Z.shape
        T, A = self._targets(y, n)
        loss = np.empty(n)
        elementwise_derivatives(
            self._code, self.epsilon, T, A, Z, loss, np.empty((n, K)), np.zeros((n, K, K))
        )
        return loss

    def loss_change(self, Z0, y, D, out=None):
        Z0 = np.ascontiguousarray(Z0, dtype=np.float64)
        D = np.ascontiguousarray(D, dtype=np.float64)
        T, A = self._targets(y, Z0.shape[0])
        if out is None:
            out = np.empty((Z0.shape[0], D.shape[2]))
        return elementwise_loss_change(self._code, self.epsilon, T, A, Z0, D, out)

    # -------------------------------------------------------- prediction
    def prediction_from_outputs(self, Z):
        """Decision function (classifiers) or prediction (regressors).

        Multiclass: decision value of the top class.  Multi-target regression:
        the mean over targets (there is no single scalar prediction).
        """
        if self.n_outputs == 1:
            return Z[:, 0].copy()
        if self.classes is not None:
            return Z.max(axis=1)
        return Z.mean(axis=1)

    def prediction_change(self, Z0, D):
        if self.classes is None and self.n_outputs > 1:
            return D.mean(axis=1)
        return super().prediction_change(Z0, D)


def linear_parameters(estimator):
    """``(coef (K, d), intercept (K,) or None)`` of a fitted linear estimator."""
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    intercept = None
    if estimator.fit_intercept:
        intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64))
    return coef, intercept


def _check_xy(estimator, X, y_enc):
    X = check_features(X, np.atleast_2d(estimator.coef_).shape[1])
    if y_enc.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y_enc.shape[0]}.")
    return X


def _least_squares(estimator, X, y, sample_weight, feature_map, alpha):
    if getattr(estimator, "positive", False):
        raise unsupported(
            estimator,
            "positive=True (a constrained problem: the optimum is not a stationary point)",
            "positive=False",
        )
    coef, intercept = linear_parameters(estimator)
    K = coef.shape[0]
    y = check_regression_target(y, K)
    X = _check_xy(estimator, X, y)
    sw = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim and alpha.shape[0] not in (1, K):
        raise ValueError(f"alpha has {alpha.shape[0]} values for {K} targets.")
    if alpha.ndim and alpha.shape[0] == 1:
        alpha = alpha[0]
    # R = lambda/2 ||coef||^2 with lambda = 2 alpha matches alpha ||coef||^2
    return ElementwiseObjective(
        estimator, X, y, sw, coef, intercept, 2.0 * alpha, 0.0, feature_map,
        loss="least_squares",
    )


@register_objective("LinearRegression")
def _build_linear_regression(estimator, Xf, y, sample_weight, feature_map):
    return _least_squares(estimator, Xf, y, sample_weight, feature_map, 0.0)


@register_objective("Ridge")
def _build_ridge(estimator, Xf, y, sample_weight, feature_map):
    return _least_squares(estimator, Xf, y, sample_weight, feature_map, estimator.alpha)


@register_objective("RidgeClassifier")
def _build_ridge_classifier(estimator, Xf, y, sample_weight, feature_map, alpha=None):
    """RidgeClassifier with its ``alpha`` (or ``alpha``, e.g. RidgeClassifierCV's ``alpha_``)."""
    from sklearn.utils.class_weight import compute_sample_weight

    lb = getattr(estimator, "_label_binarizer", None)
    if lb is not None and lb.y_type_.startswith("multilabel"):
        raise unsupported(estimator, "multilabel targets", "binary and multiclass targets")
    if getattr(estimator, "positive", False):
        raise unsupported(estimator, "positive=True (a constrained problem)", "positive=False")
    classes = np.asarray(estimator.classes_)
    y_enc = encode_classes(classes, y)
    X = _check_xy(estimator, Xf, y_enc)
    coef, intercept = linear_parameters(estimator)
    sw = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    reweighting = None
    if estimator.class_weight:
        # RidgeClassifier reweights with compute_sample_weight(class_weight, y): its
        # "balanced" weights ignore sample_weight (they count samples).
        sw = sw * compute_sample_weight(estimator.class_weight, classes[y_enc])
        if isinstance(estimator.class_weight, str):  # "balanced" moves on removal
            ratio = class_share_ratio(y_enc, np.ones(len(y_enc)), len(classes))
            reweighting = RemovalReweighting(ratio, sample_parts=y_enc)

    alpha = estimator.alpha if alpha is None else alpha
    return ElementwiseObjective(
        estimator, X, y_enc, sw, coef, intercept, 2.0 * float(alpha), 0.0,
        feature_map, loss="least_squares", classes=classes, reweighting=reweighting,
    )
