"""Predicted effect of removing a group of training points together."""

import warnings

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..linalg import CholeskyFactor


# the smallest eigenvalue of H^{-1} H_{-S} below which the Hessian without the group is
# (nearly) indefinite and its Newton step meaningless: the per-point engine's threshold
_NEAR_INDEFINITE = 0.1


def _factor(influence, H):
    """:class:`~skinfluence.linalg.CholeskyFactor` of ``H`` as ``influence``'s exact solver
    would factorise it: the same damping and flat directions (pseudo-inverse there)."""
    solver = influence.solver_
    # stack: _factor, _group_step, the public function, its caller
    return CholeskyFactor(H, solver.null_space, solver.damping_, stacklevel=4)


def _smallest_relative_eigenvalue(factor, J, S, w):
    """Smallest real eigenvalue of ``H^{-1} H_{-S}``, ``H_{-S} = H - sum_j w_j J_j^T S_j J_j``.

    Computed as ``I - H^{-1} sum_j w_j J_j^T S_j J_j`` in the smaller of the parameter
    space and the group's output space (the same nonzero spectrum); ``H^{-1}`` is
    ``factor``'s (damped, pseudo-) inverse.
    """
    m, K, p = J.shape
    if m * K < p:
        JHJ = (J.reshape(m * K, p) @ factor.solve(J.reshape(m * K, p).T)).reshape(m, K, m, K)
        A = np.eye(m * K) - np.einsum("i,ikc,icjl->ikjl", w, S, JHJ).reshape(m * K, m * K)
    else:
        A = np.eye(p) - factor.solve(np.einsum("i,ikp,ikl,ilq->pq", w, J, S, J,
                                               optimize=True))
    return float(np.linalg.eigvals(A).real.min())


def _objective_of(influence):
    check_is_fitted(influence, "objective_")
    if getattr(influence, "hyperparameters", "fixed") == "reselect":
        raise ValueError(
            "Group removal holds the fitted hyperparameters fixed; it is not available for "
            "an InfluenceFunctions with hyperparameters='reselect'. Use "
            "hyperparameters='fixed'.")
    obj = influence.objective_
    if getattr(obj.estimator, "class_weight", None) == "balanced":
        warnings.warn("class_weight='balanced' changes with the removed rows; group removal "
                      "keeps the fitted class weights.", UserWarning)
    return obj


def _exact_groups(influence):
    """Whether group removals are exact: kernel models (``_kernel.py``) and L1 /
    elastic-net models (``_active_set.py``; the multi-task ones by refitting)."""
    obj = influence.objective_
    return (obj.closed_form_removal or hasattr(influence._removal, "group_change")
            or hasattr(obj, "refit_without"))


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
        GLMs, Gauss-Newton curvature for neural networks.  For a neural network
        whose ``H_{-S}`` is (nearly) indefinite relative to ``H`` (an eigenvalue of
        ``H^{-1} H_{-S}`` below 0.1), where that step is meaningless, the
        first-order step is returned instead, with a ``RuntimeWarning``.
        Kernel models (KernelRidge, GaussianProcessRegressor) ignore ``order``: their
        group removal is exact in closed form.  So do L1 / elastic-net models (Lasso,
        ElasticNet and their CV forms): exact on the fitted active set, refit when the
        group's removal changes it; the multi-task ones are refit.

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
    return _group_step(influence, indices, order)[0]


def _group_step(influence, indices, order):
    """``(dtheta, order used)`` of :func:`removal_parameter_change` (order 2 falls back
    to order 1, with a warning, where the Hessian without the group is indefinite)."""
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}.")
    obj = _objective_of(influence)
    idx = np.unique(np.asarray(indices, dtype=np.intp))
    if idx.size == 0:
        return np.zeros(obj.n_params), order
    if idx.min() < 0 or idx.max() >= obj.n_train:
        raise ValueError(f"indices must lie in [0, {obj.n_train}).")
    if idx.size == obj.n_train:
        raise ValueError("Cannot predict the removal of every training point.")
    if hasattr(influence._removal, "group_change"):  # kernel, L1: exact, whatever the order
        return influence._removal.group_change(idx), order
    if hasattr(obj, "refit_without"):  # multi-task L1: scikit-learn's refit without them
        theta = obj.refit_without(idx)
        if theta is None:
            raise RuntimeError(f"The refit of {type(obj.estimator).__name__} without the "
                               "group did not converge.")
        return theta - obj.theta, order
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
        if not obj.linear_in_params:
            # non-convex: removing the group's Gauss-Newton curvature can leave the
            # Hessian (nearly) indefinite, where the Newton step is meaningless
            factor = _factor(influence, H)
            lam = _smallest_relative_eigenvalue(factor, J, S, w)
            if lam < _NEAR_INDEFINITE:
                warnings.warn(
                    f"Removing the group of {idx.size} training point(s) leaves the Hessian "
                    f"(nearly) indefinite (smallest eigenvalue of H^-1 H_-S: {lam:.3g}), "
                    "where its Newton step is meaningless; its removal uses the "
                    "first-order group step (order=1) instead.",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return factor.solve(rhs), 1
        H = H - np.einsum("i,ikp,ikl,ilq->pq", w, J, S, J, optimize=True)
    return _factor(influence, H).solve(rhs), order


def predict_removal_effect(influence, indices, X, y, order=2):
    """Predicted change of each sample's loss when the training rows ``indices`` are removed.

    The parameter change of :func:`removal_parameter_change` is applied and
    the loss re-evaluated exactly at the new parameters (for ``order=1``, and
    where ``order=2`` falls back to it, the linear prediction ``g_i^T dtheta`` of
    the classic group influence).

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
    dtheta, order = _group_step(influence, indices, order)
    Xf = obj.features(X)
    yv = obj.encode_target(np.asarray(y))
    if order == 1 and not _exact_groups(influence):
        return obj.sample_gradients(Xf, yv) @ dtheta
    return obj.sample_losses(Xf, yv, obj.theta + dtheta) - obj.sample_losses(Xf, yv)
