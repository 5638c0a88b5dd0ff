"""Cheap utility for binary L2 logistic regression: warm-started Newton solves in numba.

Sampling-based valuation refits the model thousands of times on nested or
random subsets.  For binary ``LogisticRegression`` with an L2 (or no) penalty
every refit solves the same strictly convex problem as scikit-learn,

    min_{w, b}  C * sum_i sw_i * log(1 + exp(-s_i (w.x_i + b))) + 1/2 ||w||^2,

(scikit-learn divides this by ``C * sum(sw)``, which does not move the
minimiser; the intercept is not penalised), so we solve it here exactly with
Newton's method started from the previous prefix's solution: a refit then
costs one or two Newton steps on ``p + 1`` parameters instead of a full
scikit-learn ``fit`` call.  Scores are computed in the same kernel.
"""

import numpy as np
from sklearn.linear_model import LogisticRegression

from .._numba import njit

_SCORERS = {None: 0, "accuracy": 0, "neg_brier_score": 1, "neg_log_loss": 2}


def fast_logistic_spec(estimator, scoring, X, y, sample_weight):
    """Scorer code when the fast path reproduces ``estimator`` + ``scoring``, else ``None``."""
    if type(estimator) is not LogisticRegression:
        return None
    if not isinstance(scoring, (str, type(None))) or scoring not in _SCORERS:
        return None
    if hasattr(X, "tocsr") or np.unique(y).size != 2:
        return None
    params = estimator.get_params()
    penalty = params.get("penalty", "deprecated")
    l1_ratio = params.get("l1_ratio")
    if penalty not in ("deprecated", "l2") or (l1_ratio not in (None, 0, 0.0)):
        return None
    C = params["C"]
    if not np.isfinite(C) or C <= 0:
        return None  # unpenalised fits diverge on separable subsets
    if params["solver"] == "liblinear" or params["class_weight"] is not None:
        return None  # liblinear penalises the intercept; class weights change the loss
    return _SCORERS[scoring]


@njit(cache=True, nogil=True)
def _log1pexp(z):  # pragma: no cover - numba
    if z > 0:
        return z + np.log1p(np.exp(-z))
    return np.log1p(np.exp(z))


@njit(cache=True, nogil=True)
def _objective(X, t, sw, rows, k, theta, C, fit_intercept):  # pragma: no cover - numba
    p = X.shape[1]
    J = 0.0
    for a in range(k):
        i = rows[a]
        z = theta[p] if fit_intercept else 0.0
        for c in range(p):
            z += X[i, c] * theta[c]
        J += C * sw[i] * (_log1pexp(z) - t[i] * z)
    for c in range(p):
        J += 0.5 * theta[c] * theta[c]
    return J


@njit(cache=True, nogil=True)
def _newton(X, t, sw, rows, k, theta, C, fit_intercept, max_iter):  # pragma: no cover - numba
    """Minimise the objective on ``rows[:k]`` from ``theta`` (in place); returns iterations."""
    p = X.shape[1]
    d = p + 1 if fit_intercept else p
    g = np.empty(d)
    H = np.empty((d, d))
    xa = np.empty(d)
    it = 0
    while it < max_iter:
        it += 1
        g[:] = 0.0
        H[:, :] = 0.0
        J = 0.0
        for a in range(k):
            i = rows[a]
            for c in range(p):
                xa[c] = X[i, c]
            if fit_intercept:
                xa[p] = 1.0
            z = 0.0
            for c in range(d):
                z += xa[c] * theta[c]
            if z >= 0:
                e = np.exp(-z)
                sig = 1.0 / (1.0 + e)
            else:
                e = np.exp(z)
                sig = e / (1.0 + e)
            J += C * sw[i] * (_log1pexp(z) - t[i] * z)
            r = C * sw[i] * (sig - t[i])
            h = C * sw[i] * sig * (1.0 - sig)
            for c in range(d):
                g[c] += r * xa[c]
                hc = h * xa[c]
                for e2 in range(c + 1):
                    H[c, e2] += hc * xa[e2]
        for c in range(p):
            J += 0.5 * theta[c] * theta[c]
            g[c] += theta[c]
            H[c, c] += 1.0
        for c in range(d):
            for e2 in range(c):
                H[e2, c] = H[c, e2]
        step = np.linalg.solve(H, g)
        dec = 0.0
        for c in range(d):
            dec += g[c] * step[c]
        if not dec > 1e-10 * (1.0 + abs(J)):
            # inside the quadratic region: this last full step lands at machine precision
            for c in range(d):
                theta[c] -= step[c]
            break
        s = 1.0
        new = theta - step
        while s > 1e-10:
            new = theta - s * step
            if _objective(X, t, sw, rows, k, new, C, fit_intercept) <= J - 1e-4 * s * dec:
                break
            s *= 0.5
        if s <= 1e-10:  # no decrease possible any more: rounding level reached
            break
        theta[:] = new
    return it


@njit(cache=True, nogil=True)
def _score(Xv, tv, theta, fit_intercept, code):  # pragma: no cover - numba
    """accuracy (0), negative Brier score (1) or negative log loss (2) on the validation set."""
    m, p = Xv.shape
    eps = np.finfo(np.float64).eps
    total = 0.0
    for i in range(m):
        z = theta[p] if fit_intercept else 0.0
        for c in range(p):
            z += Xv[i, c] * theta[c]
        if code == 0:
            pred = 1.0 if z > 0 else 0.0
            total += 1.0 if pred == tv[i] else 0.0
        else:
            if z >= 0:
                p1 = 1.0 / (1.0 + np.exp(-z))
            else:
                e = np.exp(z)
                p1 = e / (1.0 + e)
            if code == 1:
                total -= (p1 - tv[i]) ** 2
            else:
                q = p1 if tv[i] == 1.0 else 1.0 - p1
                q = min(max(q, eps), 1.0 - eps)
                total += np.log(q)
    return total / m


@njit(cache=True, nogil=True)
def _append(rows, k, ptr, members, player, t, n_pos):  # pragma: no cover - numba
    for a in range(ptr[player], ptr[player + 1]):
        i = members[a]
        rows[k] = i
        k += 1
        if t[i] == 1.0:
            n_pos += 1
    return k, n_pos


@njit(cache=True, nogil=True)
def lr_prefix_scores(X, t, sw, ptr, members, orders, theta_full, C, fit_intercept, Xv, tv, code,
                     const_scores, empty, u_full, trunc_abs, max_newton):  # pragma: no cover
    """Scores of all prefixes of each player order (rows of ``orders``), truncated like TMC."""
    m, n_players = orders.shape
    scores = np.empty((m, n_players))
    rows = np.empty(members.shape[0], dtype=np.int64)
    theta = theta_full.copy()
    n_fits = 0
    for r in range(m):
        k = 0
        n_pos = 0
        prev = empty
        warm = False
        for j in range(n_players):
            if trunc_abs > 0 and abs(u_full - prev) <= trunc_abs:
                for jj in range(j, n_players):
                    scores[r, jj] = u_full
                break
            if j == n_players - 1:
                scores[r, j] = u_full
                break
            k, n_pos = _append(rows, k, ptr, members, orders[r, j], t, n_pos)
            if k == 0:
                s = empty
            elif n_pos == 0:
                s = const_scores[0]
                warm = False
            elif n_pos == k:
                s = const_scores[1]
                warm = False
            else:
                if not warm:
                    theta[:] = theta_full
                _newton(X, t, sw, rows, k, theta, C, fit_intercept, max_newton)
                n_fits += 1
                warm = True
                s = _score(Xv, tv, theta, fit_intercept, code)
            scores[r, j] = s
            prev = s
    return scores, n_fits


@njit(cache=True, nogil=True)
def lr_subset_scores(X, t, sw, ptr, members, masks, theta_full, C, fit_intercept, Xv, tv, code,
                     const_scores, empty, max_newton):  # pragma: no cover - numba
    """Scores of the subsets given as boolean player masks (rows of ``masks``)."""
    m, n_players = masks.shape
    out = np.empty(m)
    rows = np.empty(members.shape[0], dtype=np.int64)
    theta = np.empty_like(theta_full)
    n_fits = 0
    for r in range(m):
        k = 0
        n_pos = 0
        for j in range(n_players):
            if masks[r, j]:
                k, n_pos = _append(rows, k, ptr, members, j, t, n_pos)
        if k == 0:
            out[r] = empty
        elif n_pos == 0:
            out[r] = const_scores[0]
        elif n_pos == k:
            out[r] = const_scores[1]
        else:
            theta[:] = theta_full
            _newton(X, t, sw, rows, k, theta, C, fit_intercept, max_newton)
            n_fits += 1
            out[r] = _score(Xv, tv, theta, fit_intercept, code)
    return out, n_fits


class FastLogisticUtility:
    """Picklable bundle of the arrays the kernels need (built from a :class:`SubsetUtility`)."""

    max_newton = 100

    def __init__(self, utility, code):
        est = utility.estimator
        self.code = code
        self.X = np.ascontiguousarray(utility.X, dtype=np.float64)
        classes = utility.classes
        self.t = (utility.y == classes[1]).astype(np.float64)
        self.tv = (np.asarray(utility.y_val) == classes[1]).astype(np.float64)
        self.Xv = np.ascontiguousarray(utility.X_val, dtype=np.float64)
        n = self.X.shape[0]
        self.sw = (np.ones(n) if utility.sample_weight is None
                   else np.asarray(utility.sample_weight, dtype=np.float64))
        if utility.members is None:
            self.ptr = np.arange(n + 1, dtype=np.int64)
            self.members = np.arange(n, dtype=np.int64)
        else:
            sizes = np.array([len(m) for m in utility.members])
            self.ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
            self.members = np.concatenate(utility.members).astype(np.int64)
        self.C = float(est.C)
        self.fit_intercept = bool(est.fit_intercept)
        self.const_scores = np.array([utility.constant_score(0), utility.constant_score(1)])
        self.empty = utility.empty_score
        self.n_players = utility.n_players
        p = self.X.shape[1]
        d = p + 1 if self.fit_intercept else p
        theta = np.zeros(d)
        all_rows = np.arange(n, dtype=np.int64)
        _newton(self.X, self.t, self.sw, all_rows, n, theta, self.C, self.fit_intercept,
                self.max_newton)
        self.theta_full = theta
        self.u_full = _score(self.Xv, self.tv, theta, self.fit_intercept, self.code)

    def prefix_scores(self, orders, u_full, trunc_abs):
        return lr_prefix_scores(self.X, self.t, self.sw, self.ptr, self.members,
                                np.ascontiguousarray(orders, dtype=np.int64), self.theta_full,
                                self.C, self.fit_intercept, self.Xv, self.tv, self.code,
                                self.const_scores, self.empty, u_full, trunc_abs, self.max_newton)

    def subset_scores(self, masks):
        return lr_subset_scores(self.X, self.t, self.sw, self.ptr, self.members,
                                np.ascontiguousarray(masks), self.theta_full, self.C,
                                self.fit_intercept, self.Xv, self.tv, self.code,
                                self.const_scores, self.empty, self.max_newton)


@njit(cache=True, nogil=True)
def lr_bag_decisions(X, t, sw, counts, theta_full, C, fit_intercept, max_newton):  # pragma: no cover
    """Decision values of every point under the model fitted on each bootstrap bag.

    A bag with ``counts[b, i]`` copies of row ``i`` is the weighted problem with
    weights ``counts * sw``.  Single-class bags give +-inf (the constant predictor).
    """
    B, n = counts.shape
    p = X.shape[1]
    out = np.empty((B, n))
    rows = np.empty(n, dtype=np.int64)
    w = np.empty(n)
    theta = np.empty_like(theta_full)
    for b in range(B):
        k = 0
        n_pos = 0.0
        total = 0.0
        for i in range(n):
            w[i] = counts[b, i] * sw[i]
            if counts[b, i] > 0:
                rows[k] = i
                k += 1
                n_pos += counts[b, i] * t[i]
                total += counts[b, i]
        if n_pos == 0.0 or n_pos == total:
            out[b, :] = np.inf if n_pos > 0 else -np.inf
            continue
        theta[:] = theta_full
        _newton(X, t, w, rows, k, theta, C, fit_intercept, max_newton)
        for i in range(n):
            z = theta[p] if fit_intercept else 0.0
            for c in range(p):
                z += X[i, c] * theta[c]
            out[b, i] = z
    return out
