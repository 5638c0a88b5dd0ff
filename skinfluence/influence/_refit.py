"""Exact leave-one-out parameters of the points with the largest predicted change.

Each refit minimises the objective *without* point ``j`` -- the objective's own
arrays with the weight vector ``removal_weights(j)`` passed in, never a modified
objective -- warm-started at the one-step estimate:

* GLMs: chord iterations on the factorised Hessian (one gradient each), falling
  back to damped Newton where they stall;
* neural networks: chord iterations on the exact Hessian of the objective without
  ``j`` at the fitted parameters, falling back to L-BFGS.

A fit stopped short of its optimum (scikit-learn's ``tol``) leaves a residual
gradient.  The refits minimise the objective tilted by it, for which the fitted
parameters are exactly stationary: they measure the point's removal, not the rest
of the optimisation (which the one-step estimates ignore too).
"""

import warnings

import numpy as np
import scipy.linalg as la
import scipy.optimize

from ..objectives import Objective
from ..utils._progress import progress
from ..utils._parallel import chunk_slices
from ._base import BLOCK_ENTRIES, parameter_chunks


class WithoutPoint:
    """The objective without training point ``j``, tilted by the fit's residual gradient.

    Evaluated on the objective's arrays with the weights ``removal_weights(j)``;
    gradients are projected off the solver's structurally flat directions.
    """

    def __init__(self, objective, j, residual, null_space, scale):
        self.objective = objective
        self.j = j
        self.weights = objective.removal_weights(j)
        self.residual = residual
        self.null_space = null_space
        self.scale = scale  # convergence is relative to the summed per-point gradients

    def value(self, theta):
        return self.objective.objective_value(theta, weights=self.weights) - self.residual @ theta

    def gradient(self, theta):
        g = self.objective.objective_gradient(theta, weights=self.weights) - self.residual
        N = self.null_space
        if N is not None:
            g = g - N @ (N.T @ g)
        return g

    def hessian(self, theta):
        """The Hessian at ``theta``, lifted along the flat directions to be invertible."""
        H = self.objective.hessian(theta, weights=self.weights)
        if self.null_space is not None:
            N = self.null_space
            H = H + np.mean(np.abs(np.diag(H))) * (N @ N.T)
        return H

    def converged(self, g):
        return np.abs(g).max() <= 1e-10 * self.scale


def n_refine(refine, removal):
    """How many points get an exact refit (see ``InfluenceFunctions(refine=...)``)."""
    obj, solver = removal.objective, removal.solver
    if refine == 0 or (refine == "auto" and not obj.linear_in_params):
        # a neural net's refit is an L-BFGS run of its own: on request only
        return 0
    if (
        (obj.linear_in_params and removal.approximation != "newton")
        or not (removal.leverages is not None or removal.cacheable)
        or solver.damping_ > 0  # a refit solves the undamped problem
        or (
            # weights that move on removal need the family's own removal_weights
            type(obj).removal_weights is Objective.removal_weights
            and obj.removal_reweighting() is not None
        )
        or obj.removal_weights(0) is None
    ):
        return 0
    if refine == "auto":
        cheap = solver.inverse() is not None and obj.n_train * obj.n_params <= 2e6
        return min(obj.n_train, 32) if cheap else 0
    return min(int(refine), obj.n_train)


def _largest_changes(removal, count):
    """The ``count`` points with the largest predicted change in the Hessian norm.

    ``dtheta^T H dtheta`` is ``(w c_j)^T J_j dtheta_j``: ``(w c_j)^T M_j (w c_j)``
    from the leverages when there are some (without the reweighting term).
    """
    obj, a = removal.objective, removal.coef
    if removal.leverages is not None:
        size = np.einsum("ik,ikl,il->i", a, removal.leverages, a)
    else:
        size = np.empty(obj.n_train)
        for sl in parameter_chunks(obj):
            G = obj.vjp(obj.X[sl], a[sl])  # (m, p): J_j^T w c_j
            size[sl] = np.einsum("ip,pi->i", G, removal.directions(sl))
    return np.argsort(-np.abs(size), kind="stable")[:count]


def kink_crossings(removal):
    """Points whose predicted removal moves another training point across a kink of its loss,
    or leaves the active set of a sparse fit.

    Their step assumed the wrong curvature for that point (see
    :meth:`~skinfluence.objectives.Objective.crosses_kink`) or the wrong active set
    (:meth:`~skinfluence.objectives.Objective.active_set_changes`), so they are refit
    exactly.  For kinks, the point itself and points of zero weight do not count.
    """
    obj = removal.objective
    Z = removal.train_outputs
    kinks = obj.crosses_kink(Z[:1], obj.y[:1], np.zeros((1, obj.n_outputs, 1))) is not None
    active = obj.active_set_changes(np.zeros((obj.n_params, 1)), slice(0, 1)) is not None
    if not (kinks or active):
        return np.array([], dtype=np.intp)
    n = obj.n_train
    counted = obj.weights > 0
    found = []
    for sl in chunk_slices(n, max(1, BLOCK_ENTRIES // max(n * obj.n_outputs, 1))):
        cols = np.arange(n)[sl]
        D = removal.directions(sl)
        hit = np.zeros(cols.size, dtype=bool)
        if kinks:
            mask = obj.crosses_kink(Z, obj.y, obj.jvp(obj.X, D))
            mask[cols, np.arange(cols.size)] = False
            hit |= mask[counted].any(axis=0)
        if active:
            hit |= obj.active_set_changes(D, sl) & counted[cols]
        found.append(cols[hit])
    return np.concatenate(found)


def refit_active_set_changes(removal, refine, verbose=0):
    """Exact refits ``{j: dtheta_j}`` of the removals whose exact step leaves its piece.

    For removals whose steps are exact while the active set (or loss piece) holds
    (``removal.exact_steps``): only the removals flagged by :func:`kink_crossings` are
    refit, by the objective's own ``refit_without``; all of them are recorded in
    ``removal.crossings``.  ``refine=0`` detects them but refits none.
    """
    obj = removal.objective
    removal.crossings = kink_crossings(removal)
    if refine == 0:
        return {}
    refined = {}
    for j in progress(removal.crossings, desc="exact refits", verbose=verbose):
        theta = obj.refit_without(int(j))
        if theta is not None:
            refined[int(j)] = theta - obj.theta
    return refined


def refine_largest(removal, refine, verbose=0):
    """Exact leave-one-out parameter changes ``{j: dtheta_j}`` of the largest changes,
    and of the removals that move another point across a kink of its loss.

    Points whose refit does not converge keep their one-step estimate (absent).
    """
    if getattr(removal, "exact_steps", False):
        return refit_active_set_changes(removal, refine, verbose)
    count = n_refine(refine, removal)
    obj, solver = removal.objective, removal.solver
    # sparse fits (objectives/sparse.py): removals that change the active set are always
    # found (and recorded), and refit by the objective's own refit_without
    refit_own = getattr(obj, "refit_without", None)
    if refit_own is not None:
        removal.crossings = kink_crossings(removal)
    if count == 0:
        return {}
    order = _largest_changes(removal, count)
    crossing = kink_crossings(removal) if refit_own is None else removal.crossings
    order = np.concatenate([order, crossing[~np.isin(crossing, order)]])
    own = set(crossing.tolist()) if refit_own is not None else set()
    residual = obj.objective_gradient(obj.theta)
    w = obj.weights
    scale = np.abs(w[:, None] * obj.sample_gradients(obj.X, obj.y)).sum(axis=0).max() or 1.0
    N = solver.null_space
    if N is not None:
        residual -= N @ (N.T @ residual)
    Hinv = solver.inverse()
    newton_is_cheap = obj.n_train * obj.n_params**2 <= 1e8
    refined = {}
    for j in progress(order, desc="exact refits", verbose=verbose):
        j = int(j)
        problem = WithoutPoint(obj, j, residual, N, scale)
        if j in own:  # the fitted active set changes: a fixed-set refit would be wrong
            theta = refit_own(j)
        elif obj.linear_in_params:
            start = obj.theta + removal.directions(np.array([j]))[:, 0]
            theta = chord_refit(problem, start, Hinv) if Hinv is not None else None
            if theta is None and (refine != "auto" or newton_is_cheap):
                theta = newton_refit(problem, start)  # a new Hessian per iteration
        else:
            theta = nonlinear_refit(problem)
        if theta is not None:
            refined[j] = theta - obj.theta
    if refit_own is not None:  # candidates within the objective's margin: keep the changes
        removal.crossings = np.array(
            [j for j in crossing if j not in refined
             or obj.support_changed(obj.theta + refined[j])], dtype=np.intp)
    return refined


def chord_refit(problem, theta, Hinv, max_iter=40):
    """Minimise the objective without ``j`` by chord iterations from ``theta`` (GLMs).

    The Hessian is frozen at the fitted parameters, minus ``j``'s own curvature:
    ``H_{-j}^{-1} = H^{-1} + U (I - w S M)^{-1} w S U^T`` with ``U = H^{-1} J_j^T``
    (Woodbury), so an iteration costs one gradient, O(n p), instead of a new
    Hessian and factorisation.  Convergence is linear with the (small) change of
    the Hessian along the way; None if it stalls or does not reach 1e-10.
    """
    obj, j = problem.objective, problem.j
    K = obj.n_outputs
    Xj = obj.X[j : j + 1]
    E = np.eye(K)
    Jt = np.column_stack([obj.vjp(Xj, E[k : k + 1])[0] for k in range(K)])  # (p, K)
    U = Hinv @ Jt
    _, S = obj.loss_derivatives(obj.outputs(Xj), obj.y[j : j + 1])
    wS = obj.weights[j] * S[0]
    core = np.linalg.solve(E - wS @ (Jt.T @ U), wS)  # (I - w S M)^{-1} w S
    sizes = []
    for _ in range(max_iter):
        g = problem.gradient(theta)
        size = np.abs(g).max()
        if not np.isfinite(size):
            return None
        if problem.converged(g):
            return theta
        sizes.append(size)
        # stalled: no progress, or too slow a contraction to finish in max_iter
        if len(sizes) > 2 and size >= sizes[-2] and sizes[-2] >= sizes[-3]:
            return None
        if len(sizes) > 8 and size > 1e-3 * sizes[0]:
            return None
        theta = theta - (Hinv @ g + U @ (core @ (U.T @ g)))
    return None


def newton_refit(problem, theta, max_iter=50):
    """Minimise the objective without ``j`` by damped Newton from ``theta``.

    Returns the minimiser, or None (keeping the one-step estimate) if Newton did not
    reach a relative gradient of 1e-10 -- e.g. when the point's removal leaves the
    problem without a minimiser.
    """
    f = problem.value(theta)
    for _ in range(max_iter):
        g = problem.gradient(theta)
        if problem.converged(g):
            return theta
        H = problem.hessian(theta)
        try:
            with warnings.catch_warnings():
                # scipy's rcond warning fires on merely badly scaled Hessians (features
                # in large units); the gradient test above decides convergence, so an
                # inaccurate step costs iterations, never a wrong refit
                warnings.simplefilter("ignore", la.LinAlgWarning)
                step = la.solve(H, g, assume_a="pos")
        except (la.LinAlgError, ValueError):
            return None
        t = 1.0
        slack = 1e-12 * max(1.0, abs(f))  # objective values stop resolving near the optimum
        while t > 1e-8:  # backtracking keeps Newton monotone far from the optimum
            f_new = problem.value(theta - t * step)
            if f_new <= f - 1e-4 * t * (g @ step) + slack:
                break
            t *= 0.5
        theta, f = theta - t * step, f_new
    return None


def nonlinear_refit(problem, max_iter=50):
    """Exact leave-one-out parameters of a non-linear model (a neural net).

    The local minimum of the objective without ``j`` reached from the fitted
    parameters, as a warm-started refit finds it: chord iterations with the exact
    Hessian of that objective at the fitted parameters, ``H - w_j H_j``,
    factorised once (the first iteration is its exact Newton step).  When that
    Hessian is not positive definite, or the iterations stall, L-BFGS from the
    fitted parameters.  None if neither reaches a small gradient.
    """
    obj, j = problem.objective, problem.j
    factor = None
    if obj.has_point_hessians:
        Hm = obj.hessian() - obj.weights[j] * obj.sample_hessian(j)
        N = problem.null_space
        if N is not None:  # flat directions: fixed by projecting the gradient
            Hm += np.mean(np.abs(np.diag(Hm))) * (N @ N.T)
        try:
            factor = la.cho_factor(Hm, check_finite=False)
        except la.LinAlgError:
            factor = None
    if factor is not None:
        theta = obj.theta.copy()
        first = None
        for _ in range(max_iter):
            g = problem.gradient(theta)
            size = np.abs(g).max()
            first = size if first is None else first
            if not size <= 2 * first:  # diverging (or NaN): the Hessian moved too much
                break
            if problem.converged(g):
                return theta
            theta = theta - la.cho_solve(factor, g, check_finite=False)
    return lbfgs_refit(problem, obj.theta)


def lbfgs_refit(problem, theta, max_iter=10000):
    """Local minimum of the objective without ``j`` reached by L-BFGS from ``theta``.

    For non-convex objectives, where Newton's method needs a positive definite
    Hessian it may not have along the way.  Returns None unless the gradient
    (off the structurally flat directions) falls to 1e-8 relative.
    """

    def fun(t):
        return problem.value(t), problem.gradient(t)

    res = scipy.optimize.minimize(
        fun, theta, jac=True, method="L-BFGS-B",
        options={"maxiter": max_iter, "maxfun": 2 * max_iter, "ftol": 0.0,
                 "gtol": 1e-10 * problem.scale, "maxcor": 30},
    )
    g = fun(res.x)[1]
    if not np.all(np.isfinite(g)) or np.abs(g).max() > 1e-8 * problem.scale:
        return None
    return res.x
