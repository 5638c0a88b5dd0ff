"""Reading a fitted HistGradientBoosting model from scikit-learn's own arrays.

:class:`BoostedModel` flattens ``_predictors`` (each predictor's ``nodes`` structured
array and categorical bitsets) into global node and leaf arrays, keeps the bin mapper,
the baseline and the loss, and offers what the influence code needs: the leaves of raw
or binned rows, the model's outputs, per-sample losses and the target encoding.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted, column_or_1d

from . import _boosting_kernels as kernels

_LOSS_CODES = {
    "HalfSquaredError": kernels.SQUARED_ERROR,
    "HalfBinomialLoss": kernels.BINOMIAL,
    "HalfMultinomialLoss": kernels.MULTINOMIAL,
    "HalfPoissonLoss": kernels.POISSON,
    "HalfGammaLoss": kernels.GAMMA,
}
SUPPORTED_LOSSES = ("squared_error", "poisson", "gamma", "log_loss")


def is_hist_gradient_boosting(estimator):
    """Whether ``estimator`` is a HistGradientBoostingRegressor or -Classifier."""
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import (
        BaseHistGradientBoosting,
    )

    return isinstance(estimator, BaseHistGradientBoosting)


def check_supported(est):
    """Raise a ``ValueError`` naming what the boosting influence does not handle."""
    name = type(est).__name__
    loss_name = type(getattr(est, "_loss", None)).__name__
    if loss_name not in _LOSS_CODES:
        raise ValueError(
            f"{name}(loss={est.loss!r}) is not supported by the boosting influence: its leaf "
            f"values are not Newton steps of a differentiable loss.  Supported losses: "
            f"{', '.join(SUPPORTED_LOSSES)}."
        )
    mono = getattr(est, "monotonic_cst", None)
    if mono is not None and (isinstance(mono, dict) and any(mono.values())
                             or not isinstance(mono, dict) and np.any(np.asarray(mono) != 0)):
        raise ValueError(
            f"{name} with monotonic_cst is not supported by the boosting influence: the "
            "constraints clip leaf values to bounds that move when a point is removed.  "
            "Supported: unconstrained models (interaction_cst, categorical features, "
            "missing values, sample weights and early stopping are handled)."
        )
    if isinstance(getattr(est, "class_weight", None), str):
        raise ValueError(
            f"{name}(class_weight={est.class_weight!r}) is not supported by the boosting "
            "influence: balanced weights of every point change when one is removed.  Pass "
            "the weights as sample_weight (with class_weight=None) to explain the model "
            "under fixed weights."
        )


def training_rows(est, y_enc, n_samples):
    """Indices of the rows the trees were grown on (all, unless early stopping held out a
    validation split, which is recomputed as scikit-learn drew it)."""
    if not (est.do_early_stopping_ and est.validation_fraction is not None):
        return np.arange(n_samples)
    from sklearn.model_selection import train_test_split

    stratify = y_enc if hasattr(est._loss, "predict_proba") else None
    train, _ = train_test_split(
        np.arange(n_samples), test_size=est.validation_fraction, stratify=stratify,
        random_state=est._random_seed,
    )
    return train


class BoostedModel:
    """A fitted HistGradientBoosting model as flat arrays.

    Parameters
    ----------
    estimator : HistGradientBoostingRegressor or HistGradientBoostingClassifier
        Fitted.

    Attributes
    ----------
    loss : int
        Loss code of :mod:`skinfluence.trees._boosting_kernels`.
    n_iter, n_outputs, n_trees, n_leaves : int
        Iterations, trees per iteration ``K``, ``n_iter * K`` and leaves of all trees.
    baseline : ndarray of shape (K,)
    learning_rate, l2_regularization : float
    values : ndarray of shape (n_leaves,)
        The fitted leaf values (learning rate included).
    leaf_start : ndarray of shape (n_trees + 1,)
        Tree ``s`` owns leaves ``leaf_start[s]:leaf_start[s + 1]``.
    fixed_zero : ndarray of bool, shape (n_leaves,)
        Leaves that are a whole tree (scikit-learn leaves their value at 0).
    leaf_tree : ndarray of shape (n_leaves,)
        The tree of each leaf.
    """

    # added to every leaf's Hessian sum, as HistGradientBoosting does
    leaf_eps = kernels.LEAF_EPS

    def __init__(self, estimator, preprocessing=None):
        check_is_fitted(estimator)
        self.preprocessing = preprocessing
        check_supported(estimator)
        self.estimator = estimator
        self.loss = _LOSS_CODES[type(estimator._loss).__name__]
        self.n_outputs = int(estimator.n_trees_per_iteration_)
        self.n_iter = len(estimator._predictors)
        self.n_trees = self.n_iter * self.n_outputs
        self.baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).ravel()
        self.learning_rate = float(estimator.learning_rate)
        self.l2_regularization = float(estimator.l2_regularization)
        self._flatten([p for it in estimator._predictors for p in it])
        mapper = estimator._bin_mapper
        self.missing_bin = int(mapper.missing_values_bin_idx_)
        known, self.f_idx_map = mapper.make_known_categories_bitsets()
        self.known_bitsets = known if len(known) else np.zeros((1, 8), dtype=np.uint32)

    def _flatten(self, predictors):
        """Concatenate the trees' nodes and bitsets, with global child and leaf indices."""
        nodes = [p.nodes for p in predictors]
        sizes = np.array([len(nd) for nd in nodes])
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        allnodes = np.concatenate(nodes)
        self.roots = offsets[:-1].astype(np.int64)
        shift = np.repeat(offsets[:-1], sizes)
        leaf = allnodes["is_leaf"].astype(bool)
        self.left = np.where(leaf, -1, allnodes["left"].astype(np.int64) + shift)
        self.right = np.where(leaf, -1, allnodes["right"].astype(np.int64) + shift)
        self.feature = allnodes["feature_idx"].astype(np.int64)
        self.threshold = allnodes["num_threshold"].astype(np.float64)
        self.bin_threshold = allnodes["bin_threshold"].astype(np.int64)
        self.missing_left = allnodes["missing_go_to_left"].astype(np.uint8)
        self.is_cat = allnodes["is_categorical"].astype(np.uint8)
        # bitset rows are per predictor: shift them into the concatenated arrays
        n_bits = np.array([len(p.raw_left_cat_bitsets) for p in predictors])
        bit_shift = np.repeat(np.concatenate([[0], np.cumsum(n_bits)])[:-1], sizes)
        self.bitset = allnodes["bitset_idx"].astype(np.int64) + bit_shift
        empty = np.zeros((1, 8), dtype=np.uint32)
        self.raw_bitsets = np.concatenate(
            [p.raw_left_cat_bitsets for p in predictors] + [empty]).astype(np.uint32)
        self.binned_bitsets = np.concatenate(
            [p.binned_left_cat_bitsets for p in predictors] + [empty]).astype(np.uint32)
        self.leaf_id = np.full(len(allnodes), -1, dtype=np.int64)
        self.leaf_id[leaf] = np.arange(leaf.sum())
        self.n_leaves = int(leaf.sum())
        per_tree = np.array([int(nd["is_leaf"].sum()) for nd in nodes], dtype=np.int64)
        self.leaf_start = np.concatenate([[0], np.cumsum(per_tree)]).astype(np.int64)
        self.values = allnodes["value"][leaf].astype(np.float64)
        self.leaf_tree = np.repeat(np.arange(len(nodes)), per_tree)
        # a tree that is only its root keeps the value 0 scikit-learn gave it
        self.fixed_zero = (per_tree == 1)[self.leaf_tree]
        self.tree_output = np.arange(len(nodes)) % self.n_outputs

    def check_values(self, values):
        """Nothing to check: the fit rounded its gradients to float32, the float64
        recomputation differs from the fitted values by that rounding."""

    @property
    def n_params(self):
        """Baselines and leaf values: ``K + n_leaves``."""
        return self.n_outputs + self.n_leaves

    # ----------------------------------------------------------------- features
    def features(self, X):
        """``X`` validated and encoded as the model's predictor reads it (float64)."""
        if self.preprocessing is not None:
            X = self.preprocessing.transform(X)
        return np.ascontiguousarray(self.estimator._preprocess_X(X, reset=False),
                                    dtype=np.float64)

    def binned(self, Xf):
        """The bins of preprocessed rows ``Xf``, as the model's training saw them."""
        return np.ascontiguousarray(self.estimator._bin_mapper.transform(Xf))

    def apply(self, Xf):
        """Global leaf of each preprocessed row in each tree: ``(n_trees, n)`` int32."""
        return kernels.route(
            Xf, False, -1, self.roots, self.feature, self.threshold, self.missing_left,
            self.is_cat, self.bitset, self.left, self.right, self.leaf_id, self.raw_bitsets,
            self.known_bitsets, self.f_idx_map,
        )

    def apply_binned(self, Xb):
        """Global leaves ``(n_trees, n)`` of binned rows, routed as in training."""
        return kernels.route(
            Xb, True, self.missing_bin, self.roots, self.feature, self.bin_threshold,
            self.missing_left, self.is_cat, self.bitset, self.left, self.right, self.leaf_id,
            self.binned_bitsets, self.known_bitsets, self.f_idx_map,
        )

    def attach(self, X, y, sample_weight=None):
        """Attach the training data: features ``X_train``, encoded ``y_train``, the
        weights the trees were grown with (class weights included) and ``rows``, the
        rows that grew them (``row_position`` maps a row to its place there, or -1)."""
        est = self.estimator
        self.X_train = self.features(X)
        self.y_train = self.encode_target(y)
        n = self.n_train = self.X_train.shape[0]
        if self.y_train.shape[0] != n:
            raise ValueError(f"X has {n} samples but y has {self.y_train.shape[0]}.")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.shape != (n,):
                raise ValueError(
                    f"sample_weight has shape {sample_weight.shape}; expected ({n},).")
        w = est._finalize_sample_weight(sample_weight, self.y_train)
        self.weights = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
        self.rows = training_rows(est, self.y_train, n)
        self.row_position = np.full(n, -1, dtype=np.int64)
        self.row_position[self.rows] = np.arange(self.rows.size)
        return self

    # ------------------------------------------------------------------ outputs
    def outputs(self, Xf):
        """Raw outputs ``(n, K)`` of preprocessed rows (``decision_function``'s values)."""
        return self.outputs_from_leaves(self.apply(Xf))

    def outputs_from_leaves(self, leaves, values=None, baseline=None):
        """Raw outputs ``(n, K)``: baseline plus the leaf values of each row's leaves."""
        values = self.values if values is None else values
        baseline = self.baseline if baseline is None else baseline
        K = self.n_outputs
        Z = np.tile(baseline, (leaves.shape[1], 1))
        for s in range(self.n_trees):
            Z[:, s % K] += values[leaves[s]]
        return Z

    def encode_target(self, y):
        """Targets as the loss reads them: class indices (float) or float64 values."""
        est = self.estimator
        y = column_or_1d(y, warn=True)
        if hasattr(est, "classes_"):
            classes = est.classes_
            pos = np.searchsorted(classes, y)
            pos = np.clip(pos, 0, len(classes) - 1)
            if not np.all(classes[pos] == y):
                unseen = np.setdiff1d(np.unique(y), classes)
                raise ValueError(f"y contains labels the model has not seen: {unseen[:5]}.")
            return pos.astype(np.float64)
        return np.asarray(y, dtype=np.float64)

    def loss_from_outputs(self, Z, y):
        """The model's own per-sample (unweighted) loss at raw outputs ``Z`` (n, K)."""
        raw = Z[:, 0] if self.n_outputs == 1 else np.ascontiguousarray(Z)
        return self.estimator._loss.loss(y_true=y, raw_prediction=raw)

    def loss_change(self, Z0, y, D):
        """Exact loss changes ``loss(z_i + D[i, :, c]) - loss(z_i)``: ``(n, m)``."""
        n, K, m = D.shape
        Z = (Z0[:, :, None] + D).transpose(0, 2, 1).reshape(n * m, K)
        new = self.loss_from_outputs(Z, np.repeat(y, m)).reshape(n, m)
        return new - self.loss_from_outputs(Z0, y)[:, None]

    def prediction_change(self, Z0, D):
        """Change ``(n, m)`` of the prediction (regressors), decision value (binary) or
        predicted class's decision value (multiclass) when outputs move by ``D``."""
        n, K, m = D.shape
        if K > 1:
            return D[np.arange(n), np.argmax(Z0, axis=1)]
        Z = (Z0[:, :, None] + D).transpose(0, 2, 1).reshape(n * m, 1)
        new = self.prediction_from_outputs(Z).reshape(n, m)
        return new - self.prediction_from_outputs(Z0)[:, None]

    def prediction_from_outputs(self, Z):
        """What ``predict`` returns for regressors and ``decision_function`` for
        binary classifiers, from raw outputs ``(n, 1)``."""
        if hasattr(self.estimator, "classes_"):
            return Z[:, 0]
        return self.estimator._loss.link.inverse(Z[:, 0])

    def proba_from_outputs(self, Z):
        """Class probabilities from raw outputs, as ``predict_proba`` computes them."""
        if not hasattr(self.estimator, "classes_"):
            raise AttributeError("a regressor has no class probabilities")
        raw = Z[:, 0] if self.n_outputs == 1 else np.ascontiguousarray(Z)
        return self.estimator._loss.predict_proba(raw)

    # ---------------------------------------------------------------- baselines
    def _intercept_bounds(self):
        loss = self.estimator._loss
        if self.loss == kernels.MULTINOMIAL:
            eps = np.finfo(np.float64).eps
            return eps, 1 - eps
        eps = 10 * np.finfo(np.float64).eps
        iv = loss.interval_y_pred
        lo = None if iv.low == -np.inf else (iv.low if iv.low_inclusive else iv.low + eps)
        hi = None if iv.high == np.inf else (iv.high if iv.high_inclusive else iv.high - eps)
        return lo, hi

    def _targets_matrix(self, y):
        """``y`` as (n, K): one-hot classes for the multinomial loss."""
        if self.loss == kernels.MULTINOMIAL:
            return (y[:, None] == np.arange(self.n_outputs)[None, :]).astype(np.float64)
        return y[:, None].astype(np.float64)

    def intercept(self, y, w):
        """The baseline scikit-learn fits to targets ``y`` with weights ``w``: (K,)."""
        Y = self._targets_matrix(y)
        return self._link_clipped((w @ Y / w.sum())[None, :])[0]

    def _link_clipped(self, avg):
        lo, hi = self._intercept_bounds()
        if lo is not None or hi is not None:
            avg = np.clip(avg, lo, hi)
        link = self.estimator._loss.link.link
        return link(avg) if self.loss == kernels.MULTINOMIAL else link(avg[:, 0])[:, None]

    def intercepts_without(self, y, w, cols):
        """Baselines (m, K) refit without each training point ``cols[c]``."""
        Y = self._targets_matrix(y)
        S, W = w @ Y, w.sum()
        avg = (S[None, :] - w[cols, None] * Y[cols]) / (W - w[cols])[:, None]
        return self._link_clipped(avg)

    def intercept_derivatives(self, y, w):
        """Derivative (n, K) of the baseline in each training point's weight."""
        Y = self._targets_matrix(y)
        W = w.sum()
        avg = (w @ Y) / W
        lo, hi = self._intercept_bounds()
        inside = np.ones_like(avg, dtype=bool)
        if lo is not None:
            inside &= avg > lo
        if hi is not None:
            inside &= avg < hi
        d_avg = (Y - avg[None, :]) / W * inside[None, :]
        if self.loss == kernels.SQUARED_ERROR:
            return d_avg

        def over(scale):  # a baseline clipped at its bound (one class only) does not move
            return np.divide(d_avg, scale[None, :], out=np.zeros_like(d_avg),
                             where=inside[None, :])

        if self.loss == kernels.BINOMIAL:
            return over(avg * (1 - avg))
        if self.loss in (kernels.POISSON, kernels.GAMMA):
            return over(avg)
        d_log = over(avg)  # symmetric multinomial logit: log p - mean(log p)
        return d_log - d_log.mean(axis=1, keepdims=True)
