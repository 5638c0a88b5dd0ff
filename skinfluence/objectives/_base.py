"""The objective layer's contract.

Every supported model family describes the training objective scikit-learn
minimised, in *output space*:

    J(theta) = sum_j w_j * loss(f(x_j; theta), y_j) + R(theta)

* ``f(x; theta)`` is the model's raw output, a vector of ``n_outputs`` (K)
  numbers per sample (the decision function / linear predictor);
* ``loss(z, y)`` is the per-sample loss as a function of that output;
* ``w_j`` are the effective sample weights (``sample_weight`` times
  ``class_weight`` times any constant the estimator uses, e.g. ``C``);
* ``R`` is the penalty, scaled so that ``J`` has the same minimiser as the
  estimator's own objective.  Only the *ratio* of penalty to data term
  matters for influence, so ``J`` may differ from scikit-learn's objective by
  a positive constant factor.

Everything above this layer (influence functions, valuation, cleaning) only
talks to an :class:`Objective` through the methods below, so a new model
family is one new module here.  Callers never modify an objective: whatever is
evaluated on the training set *without* some points takes the weight vector as
an argument (``objective_value``, ``objective_gradient``, ``hessian``, ``hvp``
with ``weights=``, e.g. ``removal_weights(j)``).

The per-sample gradient of the loss is ``J_j^T r_j`` where ``J_j`` is the
``(K, p)`` Jacobian of the output and ``r_j = dloss/dz``: :meth:`vjp` with
``r`` gives all per-sample gradients at once.  For models whose output is
linear in the parameters (all GLMs), ``J_j = I_K kron [x_j, 1]`` and the
Hessian of ``J`` is ``sum_j w_j J_j^T S_j J_j + R''`` with ``S_j`` the
``(K, K)`` second derivative of the loss in ``z``: the removal of one point is
then a rank-K update, which the influence engine exploits.
"""

from abc import ABC, abstractmethod

import numpy as np

# rows x parameters of the Jacobian blocks in the generic jacobian_quadratic_forms (64 MiB)
_QUADRATIC_FORM_ENTRIES = 1 << 23
# Sums over the training set that need an (n, width) temporary (weighted Grams, per-sample
# gradients) run over row blocks of this many float64 entries (8 MiB), so that no copy of
# the data is made; data that fit in one block are summed in one call, as they always were.
ROW_BLOCK_ENTRIES = 1 << 20


def row_blocks(n_rows, width):
    """Slices of ``n_rows`` rows whose ``(rows, width)`` blocks hold about ROW_BLOCK_ENTRIES."""
    step = max(1, ROW_BLOCK_ENTRIES // max(int(width), 1))
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


class Objective(ABC):
    """Training objective of one fitted estimator, evaluated on its training set.

    Subclasses are built by :func:`skinfluence.objectives.make_objective`.  The
    contract has three parts:

    * required (abstract): :meth:`features`, :meth:`encode_target`,
      :meth:`outputs`, :meth:`loss_from_outputs`, :meth:`loss_derivatives`,
      :meth:`prediction_from_outputs`, :meth:`jvp`, :meth:`vjp`, :meth:`hessian`,
      :meth:`hvp`, :meth:`penalty_value`, :meth:`unflatten`;
    * with a generic default that families override when they can do better:
      :meth:`jvp_diagonal`, :meth:`vjp_T`, :meth:`jacobian_quadratic_forms`,
      :meth:`hessian_diagonal`, :meth:`loss_change`, :meth:`prediction_change`,
      :meth:`null_space`, :meth:`check_minimum`, :meth:`removal_reweighting`,
      :meth:`removal_weights`, :meth:`objective_value`, :meth:`objective_gradient`;
    * optional capabilities, whose default raises: :meth:`penalty_gradient`
      (exact refits), :meth:`proba_from_outputs` (``AttributeError`` without a
      probability link), :meth:`sample_hessian` and :meth:`sample_hvps` (each
      point's full loss Hessian; available when ``has_point_hessians``).

    Every method that sums over the training set takes ``weights=None``: the
    objective's own :attr:`weights` by default, or the given vector (the
    objective without some points), so that no caller has to modify it.

    Subclasses must set these attributes in ``__init__``:

    Attributes
    ----------
    estimator : estimator
        The fitted final estimator (last step of a pipeline).
    theta : ndarray of shape (n_params,)
        The fitted parameters, flattened (see :meth:`unflatten`).
    n_outputs : int
        K, the number of raw outputs per sample.
    X : ndarray or sparse matrix of shape (n_train, n_features)
        Training features as the final estimator sees them.
    y : ndarray of shape (n_train,)
        Encoded training targets (class indices for classifiers).
    weights : ndarray of shape (n_train,)
        Effective weight ``w_j`` of each training point in ``J``.
    linear_in_params : bool
        True when ``f`` is linear in ``theta`` (then the Hessian has no
        output-curvature term and Gauss-Newton is exact).
    has_point_hessians : bool
        True when :meth:`sample_hessian` and :meth:`sample_hvps` are available.
    shift_invariant : bool
        True for softmax losses, unchanged when the same number is added to
        every output.
    closed_form_removal : bool
        True for kernel models, whose refits without each point are exact in
        closed form (:mod:`skinfluence.influence._kernel`) instead of a Newton step.
    """

    linear_in_params = False
    has_point_hessians = False
    shift_invariant = False
    closed_form_removal = False

    # ---------------------------------------------------------------- sizes
    @property
    def n_params(self):
        return self.theta.shape[0]

    @property
    def n_train(self):
        return self.X.shape[0]

    # ------------------------------------------------------------- targets
    @abstractmethod
    def features(self, X):
        """Validate ``X`` and map it to the features the final estimator sees."""

    @abstractmethod
    def encode_target(self, y):
        """Encode targets as the loss expects them; raise ``ValueError`` on unseen labels."""

    # ------------------------------------------------------ output and loss
    @abstractmethod
    def outputs(self, Xf, theta=None):
        """Raw outputs ``f(x; theta)`` of shape ``(n, K)`` for features ``Xf``."""

    @abstractmethod
    def loss_from_outputs(self, Z, y):
        """Unweighted per-sample loss ``loss(z_i, y_i)``, shape ``(n,)``."""

    @abstractmethod
    def loss_derivatives(self, Z, y):
        """First and second derivative of the loss in ``z``.

        Returns
        -------
        r : ndarray of shape (n, K)
        S : ndarray of shape (n, K, K)
        """

    @abstractmethod
    def prediction_from_outputs(self, Z):
        """The scalar output explained when no target is given, shape ``(n,)``.

        The decision function for binary classifiers, the prediction for
        regressors (through the inverse link), and for multiclass models the
        decision value of the class predicted at the fitted parameters.
        """

    # ------------------------------------------------------------ jacobian
    @abstractmethod
    def jvp(self, Xf, V, theta=None):
        """Output Jacobian times vectors: ``(n, K, m)`` array ``J_i @ V`` for ``V`` (p, m)."""

    def jvp_diagonal(self, Xf, V, theta=None):
        """``J_j @ V[:, j]`` for each row ``j`` of ``Xf``: shape ``(n, K)``.

        The diagonal of a :meth:`jvp` block, used for each training point's
        change of its own output; this default costs one jvp per row.
        """
        out = np.empty((Xf.shape[0], self.n_outputs))
        for j in range(Xf.shape[0]):
            out[j] = self.jvp(Xf[j : j + 1], V[:, j : j + 1], theta)[0, :, 0]
        return out

    @abstractmethod
    def vjp(self, Xf, C, theta=None):
        """Per-sample transposed Jacobian products: ``(n, p)`` array with rows ``J_i^T c_i``.

        With ``C = r`` (from :meth:`loss_derivatives`) the rows are the
        per-sample loss gradients.
        """

    def vjp_T(self, Xf, C, theta=None):
        """``(p, n)`` matrix whose column ``j`` is ``J_j^T c_j``: :meth:`vjp` transposed,
        in the parameter-major layout the solvers consume."""
        return np.ascontiguousarray(self.vjp(Xf, C, theta).T)

    def jacobian_quadratic_forms(self, Xf, A):
        """``M_i = J_i A J_i^T`` (K, K) for each row of ``Xf``: shape ``(n, K, K)``.

        ``A`` is a symmetric ``(p, p)`` array, or a callable returning ``A @ B``
        for a ``(p, m)`` block ``B`` (an inverse Hessian applied by a solver).
        With ``A = H^{-1}`` these are the leverages.  This default builds the
        rows ``J_i^T e_k`` with one :meth:`vjp` per output, in chunks of rows.
        """
        n, K = Xf.shape[0], self.n_outputs
        M = np.empty((n, K, K))
        chunk = max(1, _QUADRATIC_FORM_ENTRIES // max(self.n_params * K, 1))
        for start in range(0, n, chunk):
            sl = slice(start, min(start + chunk, n))
            m = sl.stop - sl.start
            Js = []
            for k in range(K):
                E = np.zeros((m, K))
                E[:, k] = 1.0
                Js.append(self.vjp(Xf[sl], E))  # (m, p): rows J_j^T e_k
            for k in range(K):
                Y = A(Js[k].T).T if callable(A) else Js[k] @ A
                for l in range(k, K):
                    q = np.einsum("ip,ip->i", Y, Js[l])
                    M[sl, k, l] = q
                    M[sl, l, k] = q
        return M

    # ------------------------------------------------------------- hessian
    @abstractmethod
    def hessian(self, theta=None, *, weights=None):
        """Dense ``(p, p)`` Hessian of ``J`` (data term plus penalty)."""

    @abstractmethod
    def hvp(self, V, theta=None, *, weights=None):
        """Hessian of ``J`` times ``V`` (shape ``(p,)`` or ``(p, m)``), without forming it."""

    def sample_hessian(self, j, theta=None):
        """Exact ``(p, p)`` Hessian of training point ``j``'s unweighted loss (no penalty).

        Only when ``has_point_hessians``; the default raises ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not provide point Hessians")

    def sample_hvps(self, V, rows=None, theta=None):
        """``w_i H_i v_i`` (p, m): each training point's weighted loss Hessian times its own
        column of ``V``, for the training points ``rows`` (all by default).

        Only when ``has_point_hessians``; the default raises ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not provide point Hessians")

    def hessian_diagonal(self, theta=None):
        """Diagonal of the Hessian (for preconditioning); subclasses should override."""
        return np.diag(self.hessian(theta)).copy()

    def null_space(self):
        """Orthonormal basis ``(p, r)`` of directions along which ``J`` is exactly flat.

        These are *structural* flat directions (e.g. adding a constant to all
        unpenalised multinomial intercepts), on which the solvers use a
        pseudo-inverse instead of damping.  ``None`` when there are none.
        """
        return None

    def check_minimum(self):
        """Raise ``ValueError`` when ``J`` provably has no minimiser on the training data.

        Influence, leave-one-out outputs and refits are all defined through the
        optimum; without one the fitted parameters are wherever the solver stopped.
        Families that can certify this (unpenalised logistic regression on
        separable data) override it; the default checks nothing.
        """

    def removal_reweighting(self):
        """How removing a point changes the *other* points' weights, if it does.

        Some weights depend on the training set itself (``class_weight="balanced"``
        is computed from class counts), so a refit without point ``j`` reweights
        everything.  Return ``None`` when weights are fixed, else
        ``(factor, B, coeff)`` such that the gradient of the objective without
        ``j`` at the fitted parameters is
        ``-factor[j] * w_j * g_j + B @ coeff[j]``: ``factor`` (n,), ``B`` (p, q),
        ``coeff`` (n, q).
        """
        return None

    def removal_weights(self, j):
        """The effective weights of a refit without training point ``j`` (``w_j = 0``).

        Families whose weights depend on the training set (balanced class
        weights, means over the training set) override this with the recomputed
        weights, or return None when per-sample weights cannot express them.
        """
        w = self.weights.copy()
        w[j] = 0.0
        return w

    # ---------------------------------------------------------- parameters
    @abstractmethod
    def unflatten(self, theta):
        """Dict of estimator attribute name -> array for a flat parameter vector."""

    def with_params(self, theta):
        """A shallow copy of the final estimator with its parameters replaced by ``theta``."""
        import copy

        est = copy.copy(self.estimator)
        for name, value in self.unflatten(theta).items():
            setattr(est, name, value)
        return est

    # ------------------------------------------- changes of loss and output
    def loss_change(self, Z0, y, D, out=None):
        """Exact loss change ``loss(z_i + D[i, :, j], y_i) - loss(z_i, y_i)``.

        ``Z0`` is ``(n, K)``, ``D`` is ``(n, K, m)``; returns ``(n, m)``, written
        into ``out`` when given (so the influence engine fills its output in
        place); ``out`` must not share memory with ``D``.  Families
        override this with a fused kernel; this default is correct for any loss.
        """
        base = self.loss_from_outputs(Z0, y)
        m = D.shape[2]
        if out is None:
            out = np.empty((Z0.shape[0], m))
        for j in range(m):
            out[:, j] = self.loss_from_outputs(Z0 + D[:, :, j], y) - base
        return out

    def crosses_kink(self, Z0, y, D):
        """Whether outputs moved by ``D`` (n, K, m) cross a kink of sample ``i``'s loss: (n, m).

        For losses that are only piecewise twice differentiable, where a Newton step
        is exact only while no other point changes piece; the removals flagged here
        are refit exactly.  None (this default): not tracked.
        """
        return None

    def active_set_changes(self, D, cols):
        """Whether parameter changes ``D`` (p, m) of removing training points ``cols`` leave
        the active set of a sparse fit (the pieces its exact step assumed): (m,) bool.

        The removals flagged here are refit exactly.  None (this default): not tracked.
        """
        return None

    def proba_from_outputs(self, Z):
        """Class probabilities as ``predict_proba`` computes them from raw outputs ``Z``.

        Raises ``AttributeError`` for models without a probability link (this default).
        """
        raise AttributeError(f"{type(self.estimator).__name__} objective has no probability link.")

    def prediction_change(self, Z0, D):
        """Change of :meth:`prediction_from_outputs` when the outputs move by ``D``: ``(n, m)``.

        For multiclass models the class whose decision value is tracked is the
        one predicted at ``Z0``.
        """
        base = self.prediction_from_outputs(Z0)
        m = D.shape[2]
        out = np.empty((Z0.shape[0], m))
        if Z0.shape[1] > 1:
            cls = np.argmax(Z0, axis=1)
            rows = np.arange(Z0.shape[0])
            for j in range(m):
                out[:, j] = D[rows, cls, j]
            return out
        for j in range(m):
            out[:, j] = self.prediction_from_outputs(Z0 + D[:, :, j]) - base
        return out

    # ------------------------------------------------------ conveniences
    def sample_gradients(self, Xf, y, theta=None):
        """Per-sample loss gradients ``(n, p)`` (unweighted)."""
        Z = self.outputs(Xf, theta)
        r, _ = self.loss_derivatives(Z, y)
        return self.vjp(Xf, r, theta)

    def sample_losses(self, Xf, y, theta=None):
        return self.loss_from_outputs(self.outputs(Xf, theta), y)

    def _weights(self, weights):
        return self.weights if weights is None else weights

    def objective_value(self, theta=None, *, weights=None):
        """``J(theta)`` on the training set, with ``weights`` (default: :attr:`weights`)."""
        losses = self.sample_losses(self.X, self.y, theta)
        return float(self._weights(weights) @ losses) + self.penalty_value(theta)

    @abstractmethod
    def penalty_value(self, theta=None):
        """``R(theta)``."""

    def penalty_gradient(self, theta=None):
        """``R'(theta)``; needed for exact refits (:meth:`objective_gradient`)."""
        raise NotImplementedError(f"{type(self).__name__} does not provide penalty_gradient")

    def objective_gradient(self, theta=None, *, weights=None):
        """Gradient of ``J`` on the training set, with ``weights`` (default: :attr:`weights`)."""
        G = self.sample_gradients(self.X, self.y, theta)
        return self._weights(weights) @ G + self.penalty_gradient(theta)
