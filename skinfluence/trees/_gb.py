"""Reading a fitted GradientBoosting model (scikit-learn's non-histogram boosting).

:class:`GradientBoostingModel` offers what :class:`~skinfluence.trees._hgb.BoostedModel`
offers for HistGradientBoosting, read from ``estimators_`` (one ``DecisionTreeRegressor``
per stage and output), ``init_`` and the loss, so the same kernels and removals serve.

A stage's tree is grown on the negative gradients; scikit-learn then sets every leaf to
one Newton step of the loss over the leaf's rows (``_update_terminal_regions``): the
weighted mean residual for ``squared_error``, ``sum w (y - p) / sum w p (1 - p)`` for the
binary log loss, and that times ``(K - 1) / K`` for the multinomial one (Friedman's
factor).  No l2 term; an empty leaf gets 0.  So a leaf value is ``-G / H`` times the
learning rate, times ``(K - 1) / K`` for K > 2 classes: the HistGradientBoosting
formula with ``l2 = 0`` and that factor folded into the step.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _boosting_kernels as kernels
from ._hgb import BoostedModel

_LOSS_CODES = {
    "HalfSquaredError": kernels.SQUARED_ERROR,
    "HalfBinomialLoss": kernels.BINOMIAL,
    "HalfMultinomialLoss": kernels.MULTINOMIAL,
}
# added to every leaf's Hessian sum: exact division for any sum above 1e-284, and 0 (not
# NaN) for a leaf a removal empties, as scikit-learn's _safe_divide gives
_GB_LEAF_EPS = 1e-300


def is_gradient_boosting(estimator):
    """Whether ``estimator`` is a GradientBoostingRegressor or -Classifier."""
    from sklearn.ensemble._gb import BaseGradientBoosting

    return isinstance(estimator, BaseGradientBoosting)


def check_supported(est):
    """Raise a ``ValueError`` naming what the boosting influence does not handle."""
    name = type(est).__name__
    loss = est.loss
    if loss in ("absolute_error", "huber", "quantile"):
        raise ValueError(
            f"{name}(loss={loss!r}) is not supported by the boosting influence: its leaf "
            "values are medians or quantiles of residuals, not Newton steps of a "
            "differentiable loss, so they have no derivative in a row's weight.  Closest "
            f"supported: {name}(loss='squared_error') (or HistGradientBoostingRegressor with "
            "loss='squared_error', 'poisson' or 'gamma').")
    if loss == "exponential":
        raise ValueError(
            f"{name}(loss='exponential') is not supported by the boosting influence (the "
            "AdaBoost loss is not implemented).  Closest supported: "
            f"{name}(loss='log_loss').")
    if type(getattr(est, "_loss", None)).__name__ not in _LOSS_CODES:
        raise ValueError(
            f"{name}(loss={loss!r}) is not supported by the boosting influence; supported: "
            "loss='squared_error' (regressor) and 'log_loss' (classifier).")
    if est.init is not None and not (isinstance(est.init, str) and est.init == "zero"):
        raise ValueError(
            f"{name} with a user init estimator ({type(est.init).__name__}) is not "
            "supported by the boosting influence: how that estimator's predictions move "
            "when a row is removed is not modelled.  Supported: init=None (the class prior "
            "or the mean, whose change is exact) or init='zero'.")
    if est.subsample < 1.0:
        raise ValueError(
            f"{name}(subsample={est.subsample}) is not supported by the boosting influence: "
            "each stage grows its tree and sets its leaves on a random subsample whose "
            "draws are not stored in the fitted model (they interleave with the trees' own "
            "draws from the random state), so the removal cannot be replayed on them.  Fit "
            "with subsample=1.0, or use HistGradientBoosting (no row subsampling).")
    if est.n_iter_no_change is not None and not isinstance(est.random_state, (int,
                                                                              np.integer)):
        raise ValueError(
            f"{name}(n_iter_no_change={est.n_iter_no_change}) with random_state="
            f"{est.random_state!r} is not supported by the boosting influence: the rows "
            "held out for early stopping can only be recomputed from an integer "
            "random_state.  Fit with random_state=<int>, or n_iter_no_change=None.")


class GradientBoostingModel(BoostedModel):
    """A fitted GradientBoosting model as flat arrays (the attributes of
    :class:`~skinfluence.trees._hgb.BoostedModel`).

    ``learning_rate`` is the factor of each leaf's Newton step: the model's learning
    rate, times ``(K - 1) / K`` for the multinomial loss; ``l2_regularization`` is 0.

    Parameters
    ----------
    estimator : GradientBoostingRegressor or GradientBoostingClassifier
        Fitted.
    preprocessing : transformer or None
        The steps of a Pipeline before it.
    """

    leaf_eps = _GB_LEAF_EPS

    def __init__(self, estimator, preprocessing=None):
        check_is_fitted(estimator)
        check_supported(estimator)
        self.preprocessing = preprocessing
        self.estimator = estimator
        self.loss = _LOSS_CODES[type(estimator._loss).__name__]
        trees = estimator.estimators_
        self.n_iter, self.n_outputs = trees.shape
        self.n_trees = self.n_iter * self.n_outputs
        lr = float(estimator.learning_rate)
        K = self.n_outputs
        self.learning_rate = lr * (K - 1) / K if self.loss == kernels.MULTINOMIAL else lr
        self.l2_regularization = 0.0
        self.zero_init = isinstance(estimator.init_, str)
        self.baseline = self._read_baseline()
        flat = [t.tree_ for t in trees.ravel()]  # stage-major: tree s = t * K + k
        leaf = [tr.children_left == -1 for tr in flat]
        per_tree = np.array([lf.sum() for lf in leaf], dtype=np.int64)
        self.leaf_start = np.concatenate([[0], np.cumsum(per_tree)]).astype(np.int64)
        self.n_leaves = int(self.leaf_start[-1])
        # node id -> global leaf id, one row per tree
        self.node_leaf = np.full((self.n_trees, max(tr.node_count for tr in flat)), -1,
                                 dtype=np.int32)
        for s, lf in enumerate(leaf):
            self.node_leaf[s, np.flatnonzero(lf)] = np.arange(self.leaf_start[s],
                                                              self.leaf_start[s + 1])
        self.values = lr * np.concatenate([tr.value[lf, 0, 0] for tr, lf in zip(flat, leaf)])
        self.leaf_tree = np.repeat(np.arange(self.n_trees), per_tree)
        self.fixed_zero = np.zeros(self.n_leaves, dtype=bool)
        self.tree_output = np.arange(self.n_trees) % K

    def _read_baseline(self):
        """The initial raw prediction (K,): 0, the mean, or the link of the clipped
        class prior, as ``_init_raw_predictions`` computes it."""
        est = self.estimator
        if self.zero_init:
            return np.zeros(self.n_outputs)
        if hasattr(est, "classes_"):
            prior = np.asarray(est.init_.class_prior_, dtype=np.float64)
            return self._link_clipped(
                prior[None, 1:] if self.n_outputs == 1 else prior[None, :])[0]
        return np.asarray(est.init_.constant_, dtype=np.float64).ravel()[:1]

    # ----------------------------------------------------------------- features
    def features(self, X):
        """``X`` validated as the model's trees read it (float32, dense or CSR)."""
        if self.preprocessing is not None:
            X = self.preprocessing.transform(X)
        # as GradientBoosting's predict validates (finite values, its number of features)
        return validate_data(self.estimator, X, dtype=np.float32, order="C",
                             accept_sparse="csr", reset=False)

    def binned(self, Xf):
        """The trees were grown on the features themselves."""
        return Xf

    def apply(self, Xf):
        """Global leaf of each row in each tree: ``(n_trees, n)`` int32."""
        nodes = self.estimator.apply(Xf).astype(np.intp)  # (n, n_iter, K)
        nodes = nodes.reshape(nodes.shape[0], self.n_trees).T
        return np.ascontiguousarray(np.take_along_axis(self.node_leaf, nodes, axis=1))

    apply_binned = apply

    def attach(self, X, y, sample_weight=None):
        """Attach the training data: features ``X_train``, encoded ``y_train``, the
        weights and ``rows``, the rows that grew the trees (all, unless early stopping
        held out a validation split, recomputed as scikit-learn drew it)."""
        est = self.estimator
        self.X_train = self.features(X)
        self.y_train = self.encode_target(y)
        n = self.n_train = self.X_train.shape[0]
        if self.y_train.shape[0] != n:
            raise ValueError(f"X has {n} samples but y has {self.y_train.shape[0]}.")
        if sample_weight is None:
            self.weights = np.ones(n)
        else:
            self.weights = np.asarray(sample_weight, dtype=np.float64)
            if self.weights.shape != (n,):
                raise ValueError(
                    f"sample_weight has shape {self.weights.shape}; expected ({n},).")
        self.rows = np.arange(n)
        if est.n_iter_no_change is not None:
            from sklearn.model_selection import train_test_split

            stratify = self.y_train if hasattr(est, "classes_") else None
            self.rows, _ = train_test_split(
                self.rows, random_state=est.random_state, test_size=est.validation_fraction,
                stratify=stratify)
        self.row_position = np.full(n, -1, dtype=np.int64)
        self.row_position[self.rows] = np.arange(self.rows.size)
        return self

    def check_values(self, values):
        """Raise when leaf values recomputed from the attached data are not the fitted
        ones (GradientBoosting computes them in float64: they agree to rounding)."""
        scale = np.abs(self.values).max() if self.n_leaves else 0.0
        if not np.allclose(values, self.values, rtol=1e-7, atol=1e-9 * scale):
            raise ValueError(
                f"The leaf values of the fitted {type(self.estimator).__name__} cannot be "
                "recomputed from the X, y and sample_weight passed to fit: pass the data "
                "(and weights) the model was trained on.")

    # ---------------------------------------------------------------- baselines
    def _intercept_bounds(self):
        # _init_raw_predictions clips the prior to [eps, 1 - eps]; the mean is not clipped
        if hasattr(self.estimator, "classes_"):
            eps = np.finfo(np.float64).eps
            return eps, 1 - eps
        return None, None

    def intercept(self, y, w):
        if self.zero_init:
            return np.zeros(self.n_outputs)
        return super().intercept(y, w)

    def intercepts_without(self, y, w, cols):
        if self.zero_init:
            return np.zeros((len(cols), self.n_outputs))
        return super().intercepts_without(y, w, cols)

    def intercept_derivatives(self, y, w):
        if self.zero_init:
            return np.zeros((y.shape[0], self.n_outputs))
        return super().intercept_derivatives(y, w)
