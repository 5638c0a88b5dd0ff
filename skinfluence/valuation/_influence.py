"""Approximate leave-one-out values and group removal effects from influence functions."""

import numbers
import warnings

import numpy as np
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import _num_samples, check_is_fitted

from ..linalg import CholeskyFactor
from ..utils._output import TrainingColumnsMixin, check_dense_output, row_labels
from ._base import BaseValuation, check_groups, check_validation

# validation rows x training points of influence values per block (32 MiB of float64;
# transform's temporaries about double it)
_BLOCK_ENTRIES = 1 << 22


def _solve(influence, H, B):
    """``H^{-1} B`` as ``influence``'s exact solver would solve it.

    The same damping and flat directions (pseudo-inverse there), by the shared
    :class:`~skinfluence.linalg.CholeskyFactor`.
    """
    solver = influence.solver_
    factor = CholeskyFactor(H, solver.null_space, solver.damping_, stacklevel=3)
    return factor.solve(B)


def _objective_of(influence):
    check_is_fitted(influence, "objective_")
    obj = influence.objective_
    if getattr(obj.estimator, "class_weight", None) == "balanced":
        warnings.warn("class_weight='balanced' changes with the removed rows; group removal "
                      "keeps the fitted class weights.", UserWarning)
    return obj


def removal_parameter_change(influence, indices, order=2):
    """Predicted parameter change when the training rows ``indices`` are removed together.

    Parameters
    ----------
    influence : InfluenceFunctions
        Fitted on the training set.
    indices : array-like of int
        Training rows removed at once.
    order : {1, 2}, default=2
        ``1``: the first-order group influence
        ``dtheta = H^{-1} sum_{j in S} w_j g_j`` (Koh et al., 2019).
        ``2``: one Newton step of the objective *without* the group, with its
        exact Hessian ``H_{-S} = H - sum_{j in S} w_j J_j^T S_j J_j``
        (``dtheta = H_{-S}^{-1} sum_{j in S} w_j g_j``): exact curvature for
        GLMs, Gauss-Newton curvature for neural networks.

    Returns
    -------
    ndarray of shape (n_params,)
        ``theta(refit without S) - theta`` in the layout of ``objective_.theta``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import InfluenceFunctions
    >>> from skinfluence.valuation import removal_parameter_change
    >>> X, y = make_classification(n_samples=100, n_features=4, random_state=0)
    >>> inf = InfluenceFunctions(LogisticRegression()).fit(X, y)
    >>> removal_parameter_change(inf, [0, 1, 2]).shape
    (5,)
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}.")
    obj = _objective_of(influence)
    idx = np.unique(np.asarray(indices, dtype=np.intp))
    if idx.size == 0:
        return np.zeros(obj.n_params)
    if idx.min() < 0 or idx.max() >= obj.n_train:
        raise ValueError(f"indices must lie in [0, {obj.n_train}).")
    if idx.size == obj.n_train:
        raise ValueError("Cannot predict the removal of every training point.")
    Xs = obj.X[idx]
    ys = obj.y[idx]
    w = obj.weights[idx]
    G = obj.sample_gradients(Xs, ys)  # (|S|, p), unweighted
    rhs = G.T @ w
    H = obj.hessian()
    if order == 2:
        Z = obj.outputs(Xs)
        _, S = obj.loss_derivatives(Z, ys)
        J = obj.jvp(Xs, np.eye(obj.n_params))  # (|S|, K, p)
        H = H - np.einsum("i,ikp,ikl,ilq->pq", w, J, S, J, optimize=True)
    return _solve(influence, H, rhs)


def predict_removal_effect(influence, indices, X, y, order=2):
    """Predicted change of each sample's loss when the training rows ``indices`` are removed.

    The parameter change of :func:`removal_parameter_change` is applied and
    the loss re-evaluated exactly at the new parameters (for ``order=1`` the
    linear prediction ``g_i^T dtheta`` of the classic group influence).

    Parameters
    ----------
    influence : InfluenceFunctions
    indices : array-like of int
    X, y : array-like
        Samples whose loss change is predicted.
    order : {1, 2}, default=2

    Returns
    -------
    ndarray of shape (n_samples,)
        ``loss_i(refit without S) - loss_i(model)``; positive: the group helps sample ``i``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import InfluenceFunctions
    >>> from skinfluence.valuation import predict_removal_effect
    >>> X, y = make_classification(n_samples=120, n_features=4, random_state=0)
    >>> inf = InfluenceFunctions(LogisticRegression()).fit(X[:100], y[:100])
    >>> predict_removal_effect(inf, range(10), X[100:], y[100:]).shape
    (20,)
    """
    obj = _objective_of(influence)
    dtheta = removal_parameter_change(influence, indices, order=order)
    Xf = obj.features(X)
    yv = obj.encode_target(np.asarray(y))
    if order == 1:
        return obj.sample_gradients(Xf, yv) @ dtheta
    return obj.sample_losses(Xf, yv, obj.theta + dtheta) - obj.sample_losses(Xf, yv)


class InfluenceValuation(TrainingColumnsMixin, BaseValuation):
    """Approximate leave-one-out values from influence functions: no refits.

    Wraps :class:`skinfluence.InfluenceFunctions`.  The value of training point
    ``j`` is the predicted increase of the mean validation *loss* when ``j``
    is removed and the model refit (the loss the estimator minimises, e.g.
    the log-loss for logistic regression) -- not of a scorer such as
    accuracy, which has no useful derivative.  With ``groups``, each group is
    removed as a whole and the effect predicted by :func:`predict_removal_effect`.

    Parameters
    ----------
    estimator : estimator
        A model supported by :mod:`skinfluence.objectives` (or a Pipeline ending in one).
    approximation : {"newton", "first_order"}, default="newton"
        Passed to :class:`~skinfluence.InfluenceFunctions`.
    group_order : {1, 2}, default=2
        Order of the group removal prediction when ``groups`` is given.
    solver : str, default="auto"
    damping : float, default=0.0
    n_jobs : int, default=None
    verbose : int, default=0

    Attributes
    ----------
    values_ : ndarray of shape (n_players,)
        Mean predicted validation loss increase on removal (positive: helps).
    influence_ : InfluenceFunctions
        The fitted influence engine (``transform`` delegates to it).
    estimator_ : estimator
        The fitted model (``predict``/``score`` delegate to it).
    group_labels_ : ndarray
        The distinct groups, when ``groups`` was passed to ``fit``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.valuation import InfluenceValuation
    >>> X, y = make_classification(n_samples=120, n_features=4, random_state=0)
    >>> iv = InfluenceValuation(LogisticRegression())
    >>> iv = iv.fit(X[:100], y[:100], X_val=X[100:], y_val=y[100:])
    >>> iv.values_.shape
    (100,)
    """

    _parameter_constraints = {
        "estimator": [object],
        "approximation": [StrOptions({"newton", "first_order"})],
        "group_order": [numbers.Integral],
        "solver": [object],
        "damping": [numbers.Real],
        "n_jobs": [None, numbers.Integral],
        "verbose": ["verbose"],
    }

    def __init__(self, estimator, *, approximation="newton", group_order=2, solver="auto",
                 damping=0.0, n_jobs=None, verbose=0):
        self.estimator = estimator
        self.approximation = approximation
        self.group_order = group_order
        self.solver = solver
        self.damping = damping
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X, y, *, X_val=None, y_val=None, sample_weight=None, groups=None):
        """Fit the model once and predict every point's (or group's) leave-out effect.

        Parameters
        ----------
        X : array-like of shape (n_train, n_features)
        y : array-like of shape (n_train,)
        X_val, y_val : array-like
            Validation set (required).
        sample_weight : array-like of shape (n_train,), default=None
        groups : array-like of shape (n_train,), default=None

        Returns
        -------
        self
        """
        from skinfluence.influence import InfluenceFunctions

        self._validate_params()
        if int(self.group_order) not in (1, 2):
            raise ValueError(f"group_order must be 1 or 2, got {self.group_order!r}.")
        self.influence_ = InfluenceFunctions(
            self.estimator, approximation=self.approximation, solver=self.solver,
            damping=self.damping, n_jobs=self.n_jobs, verbose=self.verbose,
        ).fit(X, y, sample_weight=sample_weight)
        self.estimator_ = self.influence_.estimator_
        self.n_features_in_ = self.influence_.n_features_in_
        if hasattr(self.influence_, "feature_names_in_"):
            self.feature_names_in_ = self.influence_.feature_names_in_
        n_train = self.influence_.objective_.n_train
        self._output_labels = row_labels(X, n_train)
        X_checked, y_val = check_validation(self, X_val, y_val, required=True)
        # a DataFrame goes on as it is: the model (and a pipeline's steps) saw its column names
        if not hasattr(X_val, "iloc"):
            X_val = X_checked
        labels, members = check_groups(groups, n_train)
        if labels is None:
            self.values_ = self._mean_influence(X_val, y_val)
        else:
            order = int(self.group_order)
            self.values_ = np.array([
                predict_removal_effect(self.influence_, m, X_val, y_val, order=order).mean()
                for m in members
            ])
            self.group_labels_ = labels
        return self

    def _mean_influence(self, X_val, y_val):
        """Mean over the validation rows of ``influence_.transform``, never materialising
        the ``n_val x n_train`` matrix.

        Summed in blocks of validation rows (at most about ``_BLOCK_ENTRIES`` values each)
        when the training points' parameter changes are cached (or the queries are solved
        for): each block then reuses them.  Otherwise every ``transform`` call would solve
        them all again, so the sums are taken over chunks of training points instead, each
        solved once (blocks of ``n_val`` rows by at least 256 points).
        """
        inf = self.influence_
        n_val, n_train = y_val.shape[0], inf.objective_.n_train
        total = np.zeros(n_train)
        if inf._ensure_directions() or inf._query_side(n_val, y_val):
            rows = max(1, min(n_val, _BLOCK_ENTRIES // max(n_train, 1)))
            for start in range(0, n_val, rows):
                block = slice(start, min(start + rows, n_val))
                Xb = X_val.iloc[block] if hasattr(X_val, "iloc") else X_val[block]
                total += np.asarray(inf.transform(Xb, y_val[block])).sum(axis=0)
            return total / n_val
        Xf, Z0, y_enc = inf._prepare_queries(X_val, y_val)

        def column_sums(cols):  # summed in the worker: only n_train values are kept
            return cols, inf._block(Xf, Z0, y_enc, cols).sum(axis=0)

        for cols, sums in inf._iter_chunks(column_sums, inf._column_chunks(n_val), "values"):
            total[cols] = sums
        return total / n_val

    def transform(self, X, y):
        """Per-sample attributions: predicted loss change at each sample when each point is removed.

        Returns
        -------
        ndarray of shape (n_samples, n_train)
        """
        check_is_fitted(self, "values_")
        check_dense_output(_num_samples(X), self.influence_.objective_.n_train,
                           type(self).__name__, explain="influence_.explain")
        return self.influence_.transform(X, y)
