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
family is one new module here.

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


class Objective(ABC):
    """Training objective of one fitted estimator, evaluated on its training set.

    Subclasses are built by :func:`skinfluence.objectives.make_objective` and
    must set these attributes in ``__init__``:

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
    """

    linear_in_params = False

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
        """Output Jacobian times vectors: ``(n, K, m)`` array ``J_i @ V`` for ``V`` of shape ``(p, m)``."""

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

    # ------------------------------------------------------------- hessian
    @abstractmethod
    def hessian(self, theta=None):
        """Dense ``(p, p)`` Hessian of ``J`` (data term plus penalty)."""

    @abstractmethod
    def hvp(self, V, theta=None):
        """Hessian of ``J`` times ``V`` (shape ``(p,)`` or ``(p, m)``), without forming it."""

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

    def objective_value(self, theta=None):
        """``J(theta)`` on the training set (for tests and line searches)."""
        losses = self.sample_losses(self.X, self.y, theta)
        return float(self.weights @ losses) + self.penalty_value(theta)

    @abstractmethod
    def penalty_value(self, theta=None):
        """``R(theta)``."""

    def penalty_gradient(self, theta=None):
        """``R'(theta)``; needed for exact refits (:meth:`objective_gradient`)."""
        raise NotImplementedError(f"{type(self).__name__} does not provide penalty_gradient")

    def objective_gradient(self, theta=None):
        """Gradient of ``J`` on the training set (with the current ``weights``)."""
        G = self.sample_gradients(self.X, self.y, theta)
        return self.weights @ G + self.penalty_gradient(theta)
