"""MLPClassifier / MLPRegressor: scikit-learn's multi-layer perceptron objective.

scikit-learn minimises (``_backprop`` in ``sklearn/neural_network``)

    1 / sum(s) * [ sum_i s_i * loss(z_i, y_i) + alpha / 2 * sum_l ||W_l||^2 ]

with ``s`` the sample weights (ones by default), ``z_i`` the pre-activation of
the output layer and the penalty on ``coefs_`` only (never ``intercepts_``).
The loss is softmax cross-entropy (multiclass), logistic loss with a single
output unit (binary), a sum of logistic losses (multilabel), half squared
error summed over outputs, or the half Poisson deviance with an ``exp``
output.  Dropping the positive factor ``1 / sum(s)`` gives

    J(theta) = sum_i s_i * loss(z_i, y_i) + alpha / 2 * sum_l ||W_l||^2,

which has the same stationary points and -- unlike the mean -- keeps its
penalty unchanged when a training point is removed, exactly as a refit of
scikit-learn's mean objective on ``n - 1`` points does.

Note on multi-output squared error: scikit-learn *reports* ``loss_`` as the
mean over outputs but its gradient is that of the *sum* over outputs; the
gradient defines the fitted parameters, so ``J`` uses the sum.

Parameters are ``coefs_`` then ``intercepts_``, flattened in scikit-learn's own
``_pack`` order.  The output is not linear in the parameters, so the Hessian
has an output-curvature term and may be indefinite: :meth:`MLPObjective.hessian`
and :meth:`MLPObjective.hvp` are exact (Pearlmutter's R-operator),
:meth:`MLPObjective.gauss_newton` / :meth:`MLPObjective.gauss_newton_hvp` give
the positive semi-definite Gauss-Newton matrix, and
:meth:`MLPObjective.min_eigenvalue` reports the curvature for damping decisions.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_array

from . import register_objective
from . import _mlp_curvature as _curvature
from . import _mlp_hvp_kernels as KH_
from . import _mlp_kernels as K_
from . import _mlp_losses as _losses
from ._base import Objective

# dense exact Hessian only up to this many parameters (p^2 doubles in memory)
DENSE_HESSIAN_MAX_PARAMS = 20_000


def _as_c64(A):
    """Writable C-contiguous float64 copy-if-needed (numba kernels take one array type)."""
    A = np.asarray(A, dtype=np.float64)
    if not A.flags.c_contiguous or not A.flags.writeable:
        A = np.array(A, dtype=np.float64, order="C", copy=True)
    return A


def _curvature_factor(S):
    """``L`` (n, K, K) with ``S_i = L_i L_i^T``: ``S_i`` is PSD for every MLP loss."""
    evals, evecs = np.linalg.eigh(S)
    return evecs * np.sqrt(np.clip(evals, 0.0, None))[:, None, :]


class MLPObjective(Objective):
    """Objective of a fitted :class:`~sklearn.neural_network.MLPClassifier` or
    :class:`~sklearn.neural_network.MLPRegressor`.

    Built by :func:`skinfluence.objectives.make_objective`; see the module
    docstring for the exact objective.

    Attributes
    ----------
    kind : {"multiclass", "binary", "multilabel", "squared_error", "poisson"}
        The output loss.
    sizes : ndarray of int
        Layer widths ``[n_features, hidden..., n_outputs]``.
    alpha : float
        L2 penalty on ``coefs_``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.neural_network import MLPClassifier
    >>> from skinfluence.objectives import make_objective
    >>> X, y = load_iris(return_X_y=True)
    >>> mlp = MLPClassifier(hidden_layer_sizes=(4,), activation="tanh", solver="lbfgs",
    ...                     max_iter=2000, random_state=0).fit(X, y)
    >>> obj = make_objective(mlp, X, y)
    >>> obj.n_params                       # 4*4 + 4 + 4*3 + 3
    35
    >>> obj.sample_gradients(obj.X, obj.y).shape
    (150, 35)
    >>> bool(np.allclose(obj.hessian() @ np.ones(35), obj.hvp(np.ones(35))))
    True
    """

    linear_in_params = False
    has_point_hessians = True

    def __init__(self, estimator, X, y, sample_weight, feature_map):
        self.estimator = estimator
        self._feature_map = feature_map
        coefs = [np.asarray(c, dtype=np.float64) for c in estimator.coefs_]
        intercepts = [np.asarray(b, dtype=np.float64) for b in estimator.intercepts_]
        self.sizes = np.array([coefs[0].shape[0]] + [c.shape[1] for c in coefs], dtype=np.int64)
        self.n_outputs = int(self.sizes[-1])
        self.n_features = int(self.sizes[0])
        activation = estimator.activation
        if activation not in K_.ACTIVATION_CODES:
            raise ValueError(f"Unsupported MLP activation {activation!r}.")
        self.activation = activation
        self._act = K_.ACTIVATION_CODES[activation]
        self.alpha = float(estimator.alpha)
        out_act = estimator.out_activation_
        if hasattr(estimator, "classes_"):
            lb = estimator._label_binarizer
            if out_act == "softmax":
                self.kind = "multiclass"
            elif lb.y_type_ == "multilabel-indicator":
                self.kind = "multilabel"
            else:
                self.kind = "binary"
            self.classes = np.asarray(estimator.classes_)
        else:
            self.kind = "poisson" if out_act == "exp" else "squared_error"
            self.classes = None
        self.shift_invariant = self.kind == "multiclass"
        self.theta = np.concatenate([c.ravel() for c in coefs] + [b.ravel() for b in intercepts])
        self._coef_off, self._int_off = K_.param_offsets(self.sizes)
        self.X = self._check_features(X)
        self.y = self.encode_target(y)
        if self.y.shape[0] != self.X.shape[0]:
            raise ValueError(f"X has {self.X.shape[0]} samples but y has {self.y.shape[0]}.")
        n = self.X.shape[0]
        self.weights = np.ones(n) if sample_weight is None else _as_c64(sample_weight)
        self._cache = {}

    # ------------------------------------------------------------ inputs
    def _check_features(self, X, name="X"):
        if sp.issparse(X):
            # the kernels are dense; an MLP's first layer is dense anyway
            X = X.toarray()
        X = check_array(X, dtype=np.float64, ensure_all_finite=True, input_name=name)
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"{name} has {X.shape[1]} features, but the fitted MLP expects {self.n_features}."
            )
        return _as_c64(X)

    def features(self, X):
        if self._feature_map is not None:
            X = self._feature_map(X)
        return self._check_features(X)

    def encode_target(self, y):
        """Class indices (n,) for single-label classifiers, an indicator / value matrix
        (n, K) for multilabel and multi-output regression, values (n,) otherwise."""
        y = np.asarray(y)
        if self.kind in ("multiclass", "binary"):
            from .logistic import encode_classes

            return encode_classes(self.classes, y)
        if self.kind == "multilabel":
            if y.ndim != 2 or y.shape[1] != self.n_outputs:
                raise ValueError(
                    f"multilabel y must have shape (n, {self.n_outputs}), got {y.shape}."
                )
            Y = np.asarray(self.estimator._label_binarizer.transform(y), dtype=np.float64)
            return _as_c64(Y)
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if self.n_outputs == 1:
            if y.ndim != 1:
                raise ValueError(f"y must be 1-dimensional for this regressor, got {y.shape}.")
        elif y.ndim != 2 or y.shape[1] != self.n_outputs:
            raise ValueError(f"y must have shape (n, {self.n_outputs}), got {y.shape}.")
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity.")
        if self.kind == "poisson" and np.any(y < 0):
            raise ValueError("Poisson loss needs non-negative targets.")
        return _as_c64(y)

    # ------------------------------------------------------ forward state
    def _state(self, Xf, theta):
        """Forward pass (cached for the training set at the fitted parameters)."""
        key = None
        if Xf is self.X and theta is None:
            key = "train"
            if key in self._cache:
                return self._cache[key]
        th = self.theta if theta is None else _as_c64(theta)
        if th.shape != self.theta.shape:
            raise ValueError(f"theta has shape {th.shape}; expected {self.theta.shape}.")
        state = K_.forward(_as_c64(Xf), th, self.sizes, self._act)
        if key is not None:
            self._cache[key] = state
        return state

    # ------------------------------------------------------ output and loss
    def outputs(self, Xf, theta=None):
        return self._state(Xf, theta)[0].copy()

    def loss_from_outputs(self, Z, y):
        return _losses.loss(self.kind, Z, y, self.n_outputs)

    def loss_derivatives(self, Z, y):
        return _losses.loss_derivatives(self.kind, Z, y, self.n_outputs)

    def prediction_from_outputs(self, Z):
        """Binary: the decision value; multiclass: the largest decision value (that of
        the predicted class); regression: the prediction (mean over outputs for
        multi-output models); multilabel: the mean decision value."""
        Z = np.asarray(Z, dtype=np.float64)
        if self.kind == "binary":
            return Z[:, 0].copy()
        if self.kind == "multiclass":
            return Z.max(axis=1)
        if self.kind == "poisson":
            return np.exp(Z).mean(axis=1)
        return Z.mean(axis=1)

    def proba_from_outputs(self, Z):
        """Probabilities as ``predict_proba`` computes them from raw outputs (classifiers)."""
        return _losses.proba(self.kind, Z)

    # ------------------------------------------------------------ jacobian
    def jvp(self, Xf, V, theta=None):
        V = _as_c64(V)
        if V.ndim == 1:
            V = V[:, None].copy()
        Xf = _as_c64(Xf)
        Z, A, D1, _ = self._state(Xf, theta)
        th = self.theta if theta is None else _as_c64(theta)
        out = np.empty((Xf.shape[0], self.n_outputs, V.shape[1]))
        step = self._block_columns()
        for start in range(0, V.shape[1], step):
            stop = min(V.shape[1], start + step)
            out[:, :, start:stop] = K_.jvp_block(
                Xf, th, self.sizes, A, D1, _as_c64(V[:, start:stop])
            )
        return out

    def vjp(self, Xf, C, theta=None):
        Xf = _as_c64(Xf)
        C = _as_c64(np.asarray(C, dtype=np.float64).reshape(Xf.shape[0], self.n_outputs))
        _, A, D1, _ = self._state(Xf, theta)
        th = self.theta if theta is None else _as_c64(theta)
        return K_.per_sample_gradients(Xf, th, self.sizes, A, D1, C)

    def jvp_diagonal(self, Xf, V, theta=None):
        """``J_j V[:, j]`` for each row j, (n, K): one backprop per output unit."""
        Xf = _as_c64(Xf)
        n = Xf.shape[0]
        V = np.asarray(V, dtype=np.float64)
        out = np.empty((n, self.n_outputs))
        for k in range(self.n_outputs):
            E = np.zeros((n, self.n_outputs))
            E[:, k] = 1.0
            out[:, k] = np.einsum("jp,pj->j", self.vjp(Xf, E, theta), V)
        return out

    def gradient(self, theta=None, *, weights=None):
        """Gradient of ``J`` (data term plus penalty), shape (p,), by batched backprop."""
        Z, A, D1, _ = self._state(self.X, theta)
        r, _ = self.loss_derivatives(Z, self.y)
        th = self.theta if theta is None else _as_c64(theta)
        rw = _as_c64(r * self._weights(weights)[:, None])
        g = K_.summed_gradient(self.X, th, self.sizes, A, D1, rw)
        return g + self.penalty_diagonal() * th

    def objective_gradient(self, theta=None, *, weights=None):
        """Gradient of ``J`` with ``weights`` (default: :attr:`weights`); see :meth:`gradient`."""
        return self.gradient(theta, weights=weights)

    # ------------------------------------------------------------- hessian
    def penalty_diagonal(self):
        """Diagonal of ``R''``: ``alpha`` on every coef, 0 on intercepts."""
        d = np.zeros(self.n_params)
        d[: self._coef_off[-1]] = self.alpha
        return d

    def penalty_gradient(self, theta=None):
        theta = self.theta if theta is None else np.asarray(theta, dtype=np.float64)
        return self.penalty_diagonal() * theta

    def penalty_value(self, theta=None):
        theta = self.theta if theta is None else np.asarray(theta, dtype=np.float64)
        W = theta[: self._coef_off[-1]]
        return 0.5 * self.alpha * float(W @ W)

    def curvature(self, theta=None, *, weights=None):
        """``w_i * S_i`` (n, K, K), the loss curvature in output space."""
        Z = self._state(self.X, theta)[0]
        _, S = self.loss_derivatives(Z, self.y)
        return S * self._weights(weights)[:, None, None]

    def _products(self, V, theta, gauss_newton, weights=None):
        V = np.asarray(V, dtype=np.float64)
        squeeze = V.ndim == 1
        if squeeze:
            V = V[:, None]
        if V.shape[0] != self.n_params:
            raise ValueError(f"V has {V.shape[0]} rows; expected n_params={self.n_params}.")
        Z, A, D1, D2 = self._state(self.X, theta)
        r, S = self.loss_derivatives(Z, self.y)
        w = self._weights(weights)
        th = self.theta if theta is None else _as_c64(theta)
        delta_out = _as_c64(r * w[:, None])
        Sw = _as_c64(S * w[:, None, None])
        out = np.empty(V.shape)
        step = self._block_columns()
        for start in range(0, V.shape[1], step):
            stop = min(V.shape[1], start + step)
            out[:, start:stop] = KH_.hvp_block(
                self.X, th, self.sizes, A, D1, D2, delta_out, Sw, _as_c64(V[:, start:stop]),
                bool(gauss_newton),
            )
        out += self.penalty_diagonal()[:, None] * V
        return out[:, 0] if squeeze else out

    def _block_columns(self, budget_bytes=2**27):
        """Directions per batched R-operator pass so its buffers stay under ~128 MiB."""
        per_direction = 8 * 4 * self.X.shape[0] * max(1, int(self.sizes[1:].sum()))
        return int(max(1, min(512, budget_bytes // per_direction)))

    def hvp(self, V, theta=None, *, weights=None):
        """Exact Hessian of ``J`` times ``V`` ((p,) or (p, m)) by the R-operator."""
        return self._products(V, theta, gauss_newton=False, weights=weights)

    def gauss_newton_hvp(self, V, theta=None, *, weights=None):
        """Gauss-Newton matrix ``sum_i w_i J_i^T S_i J_i + R''`` times ``V``."""
        return self._products(V, theta, gauss_newton=True, weights=weights)

    def _check_dense(self):
        if self.n_params > DENSE_HESSIAN_MAX_PARAMS:
            raise MemoryError(
                f"The MLP has {self.n_params} parameters; a dense Hessian is only built up to "
                f"{DENSE_HESSIAN_MAX_PARAMS}. Use Hessian-vector products (solver='cg' or "
                "'lissa')."
            )

    def hessian(self, theta=None, *, weights=None, block_size=None):
        """Dense exact Hessian (p, p), assembled from R-operator products with unit vectors
        (cached at the fitted parameters and own weights)."""
        self._check_dense()
        own = theta is None and weights is None
        if own and "hessian" in self._cache:
            return self._cache["hessian"].copy()
        p = self.n_params
        block_size = block_size or self._block_columns()
        H = np.empty((p, p))
        for start in range(0, p, block_size):
            stop = min(p, start + block_size)
            E = np.zeros((p, stop - start))
            E[np.arange(start, stop), np.arange(stop - start)] = 1.0
            H[:, start:stop] = self.hvp(E, theta, weights=weights)
        # exact in exact arithmetic; symmetrise the rounding
        H = 0.5 * (H + H.T)
        if own:
            self._cache["hessian"] = H
            return H.copy()
        return H

    def sample_hessian(self, j, theta=None):
        """Exact Hessian (p, p) of training point ``j``'s unweighted loss, no penalty.

        One R-operator pass over a single sample with the ``p`` unit directions:
        ``O(p^2)``, so a refit without ``j`` can use the exact Hessian
        ``H - w_j H_j`` of its objective.
        """
        self._check_dense()
        th = self.theta if theta is None else _as_c64(theta)
        Xj = _as_c64(self.X[j : j + 1])
        Z, A, D1, D2 = self._state(Xj, th)
        r, S = self.loss_derivatives(Z, self.y[j : j + 1])
        H = KH_.hvp_block(
            Xj, th, self.sizes, A, D1, D2, _as_c64(r), _as_c64(S), np.eye(self.n_params),
            False,
        )
        return 0.5 * (H + H.T)

    def sample_hvps(self, V, rows=None, theta=None):
        """``w_i H_i v_i`` (p, m): each training point's own weighted loss Hessian times
        its own column of ``V`` (p, m), for the training points ``rows`` (all by default).

        What a Newton step of the objective without one point needs for every point
        at once: ``(H - w_j H_j) x_j`` is ``H x_j`` minus column ``j`` of this.
        """
        th = self.theta if theta is None else _as_c64(theta)
        rows = np.arange(self.n_train) if rows is None else np.asarray(rows)
        X = self.X[rows]
        X = _as_c64(X.toarray() if sp.issparse(X) else X)
        Z = self._state(X, th)[0]
        r, S = self.loss_derivatives(Z, self.y[rows])
        w = self.weights[rows]
        return KH_.hvp_diagonal(
            X, th, self.sizes, self._act, _as_c64(r * w[:, None]), _as_c64(S * w[:, None, None]),
            _as_c64(V),
        )

    def gauss_newton(self, theta=None):
        """Dense Gauss-Newton matrix ``sum_i w_i J_i^T S_i J_i + R''`` (p, p), PSD when w >= 0."""
        self._check_dense()
        Z = self._state(self.X, theta)[0]
        _, S = self.loss_derivatives(Z, self.y)
        Lf = _curvature_factor(S)  # one vjp per column of L
        H = np.zeros((self.n_params, self.n_params))
        for m in range(self.n_outputs):
            G = self.vjp(self.X, Lf[:, :, m], theta)
            H += G.T @ (G * self.weights[:, None])
        H[np.diag_indices_from(H)] += self.penalty_diagonal()
        return H

    def hessian_diagonal(self, theta=None):
        """Exact diagonal when the dense Hessian is affordable, else the Gauss-Newton diagonal
        (used only as a preconditioner)."""
        if self.n_params <= 4000:
            return np.diag(self.hessian(theta)).copy()
        Z = self._state(self.X, theta)[0]
        _, S = self.loss_derivatives(Z, self.y)
        Lf = _curvature_factor(S)
        diag = self.penalty_diagonal()
        for m in range(self.n_outputs):
            G = self.vjp(self.X, Lf[:, :, m], theta)
            diag = diag + self.weights @ (G * G)
        return diag

    def min_eigenvalue(self, theta=None, gauss_newton=False):
        """Smallest eigenvalue of the Hessian of ``J`` (exact: dense ``eigvalsh`` up to
        ``EXACT_MAX_PARAMS`` parameters, else Lanczos on Hessian-vector products).

        A negative value means the fitted parameters are not at a strict local
        minimum of ``J`` (or the net is in a non-convex region); the influence
        engine then needs damping.
        """
        return _curvature.min_eigenvalue(self, theta, gauss_newton)

    def curvature_report(self, theta=None):
        """Dict with the smallest / largest Hessian eigenvalues and whether damping is needed."""
        return _curvature.curvature_report(self, theta)

    def suggest_damping(self, theta=None, relative=1e-8):
        """Smallest damping ``lam`` making ``H + lam I`` positive definite, with a warning.

        Returns 0.0 when the Hessian is already positive definite.  Otherwise warns
        with the smallest eigenvalue and returns ``-min_eig + relative * max(1, |max_eig|)``.
        Directions in :meth:`null_space` are excluded (they are handled by pseudo-inverse).
        """
        return _curvature.suggest_damping(self, theta, relative)

    def null_space(self):
        """Exactly flat directions of ``J``.

        * multiclass: adding the same constant to every output intercept (softmax is
          shift invariant and intercepts are unpenalised);
        * ReLU units that are inactive on every training point: their intercept (and,
          with ``alpha == 0``, their incoming and outgoing weights) carry neither
          gradient nor curvature.
        """
        cols = []
        p = self.n_params
        if self.shift_invariant:
            v = np.zeros(p)
            L = len(self.sizes) - 1
            v[self._int_off[L - 1] : self._int_off[L]] = 1.0 / np.sqrt(self.n_outputs)
            cols.append(v)
        if self.activation == "relu":
            n = self.X.shape[0]
            _, A, _, _ = self._state(self.X, None)
            hoff = K_.hidden_offsets(self.sizes, n)
            for layer in range(1, len(self.sizes) - 1):
                d = int(self.sizes[layer])
                Ab = A[hoff[layer] : hoff[layer] + n * d].reshape(n, d)
                dead = np.flatnonzero(~np.any(Ab > 0.0, axis=0))
                for u in dead:
                    idx = [self._int_off[layer - 1] + u]
                    if self.alpha == 0.0:
                        d_in, d_out = self.sizes[layer - 1], self.sizes[layer + 1]
                        c_in = self._coef_off[layer - 1] + np.arange(d_in) * d + u
                        c_out = self._coef_off[layer] + u * d_out + np.arange(d_out)
                        idx = list(c_in) + idx + list(c_out)
                    for i in idx:
                        e = np.zeros(p)
                        e[i] = 1.0
                        cols.append(e)
        return np.column_stack(cols) if cols else None

    # ---------------------------------------------------------- parameters
    def unflatten(self, theta):
        theta = np.asarray(theta, dtype=np.float64)
        L = len(self.sizes) - 1
        coefs, intercepts = [], []
        for layer in range(L):
            a, b = self._coef_off[layer], self._coef_off[layer + 1]
            coefs.append(theta[a:b].reshape(self.sizes[layer], self.sizes[layer + 1]).copy())
            a = self._int_off[layer]
            intercepts.append(theta[a : a + self.sizes[layer + 1]].copy())
        return {"coefs_": coefs, "intercepts_": intercepts}


@register_objective("MLPClassifier", "MLPRegressor")
def _build(estimator, Xf, y, sample_weight, feature_map):
    return MLPObjective(estimator, Xf, y, sample_weight, feature_map)
