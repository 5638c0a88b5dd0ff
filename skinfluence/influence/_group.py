"""Predicted effect of removing a group of training points together."""

import warnings

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..linalg import CholeskyFactor


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
        Kernel models (KernelRidge, GaussianProcessRegressor) ignore it: their
        group removal is exact in closed form.

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
    if obj.closed_form_removal:  # kernel models: exact, whatever the order (see _kernel.py)
        return influence._removal.group_change(idx)
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
    if order == 1 and not obj.closed_form_removal:
        return obj.sample_gradients(Xf, yv) @ dtheta
    return obj.sample_losses(Xf, yv, obj.theta + dtheta) - obj.sample_losses(Xf, yv)
