"""TracIn (Pruthi et al., 2020): influence traced through training checkpoints."""

import copy
import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import TransformerMixin, clone, is_classifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .base import BaseExplainer
from .objectives import make_objective
from .utils._deprecation import positional_deprecated
from .utils._output import TrainingColumnsMixin, check_dense_output, row_labels
from .utils._parallel import chunk_slices
from .utils._progress import progress

try:  # scikit-learn's factor on intercept steps of SGD over sparse data (make_dataset)
    from sklearn.linear_model._base import SPARSE_INTERCEPT_DECAY
except ImportError:  # pragma: no cover - private name moved; the value has been 0.01 for years
    SPARSE_INTERCEPT_DECAY = 0.01

_SUPPORTED = ("SGDClassifier", "SGDRegressor", "MLPClassifier", "MLPRegressor")
# training gradients are materialised this many float64 entries at a time (64 MiB)
_BLOCK_ENTRIES = 1 << 23


# ----------------------------------------------------------------- learning rates
def _sgd_loss_gradient(loss_function, y, p):
    """d loss / d p of an SGD estimator's internal loss object at a single point."""
    if hasattr(loss_function, "py_dloss"):
        return float(loss_function.py_dloss(p, y))
    g = np.empty(1)
    loss_function.gradient(
        np.array([y], dtype=np.float64), np.array([p], dtype=np.float64), None, g
    )
    return float(g[0])


def sgd_learning_rate(estimator, t):
    """The step size scikit-learn's SGD uses for its ``t``-th update (``t`` counts from 1).

    Mirrors ``_plain_sgd``: ``"constant"`` and ``"adaptive"`` (within one epoch)
    use ``eta0``; ``"invscaling"`` ``eta0 / t ** power_t``; ``"optimal"``
    ``1 / (alpha * (t0 + t - 1))`` with Bottou's ``t0`` from the loss.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDRegressor
    >>> from skinfluence.tracin import sgd_learning_rate
    >>> X, y = np.eye(3), np.arange(3.0)
    >>> sgd = SGDRegressor(learning_rate="invscaling", eta0=0.1, power_t=0.5).partial_fit(X, y)
    >>> round(sgd_learning_rate(sgd, 4), 3)       # the 4th update's step: 0.1 / 4 ** 0.5
    0.05
    """
    schedule = estimator.learning_rate
    eta0 = float(estimator.eta0)
    if schedule in ("constant", "adaptive"):
        return eta0
    if schedule == "invscaling":
        return eta0 / float(t) ** float(estimator.power_t)
    if schedule == "optimal":
        alpha = float(estimator.alpha)
        typw = np.sqrt(1.0 / np.sqrt(alpha))
        dloss = _sgd_loss_gradient(estimator._loss_function_, 1.0, -typw)
        initial_eta0 = typw / max(1.0, dloss)
        optimal_init = 1.0 / (initial_eta0 * alpha)
        return 1.0 / (alpha * (optimal_init + t - 1))
    raise ValueError(f"TracIn does not support SGD learning_rate={schedule!r}.")


class TracIn(TrainingColumnsMixin, TransformerMixin, BaseExplainer):
    """TracInCP: influence of training points summed over training checkpoints.

    Trains a clone of ``estimator`` for ``n_epochs`` epochs with ``partial_fit``,
    keeping the parameters (and the learning rate in use) at each checkpoint.
    The influence of training point ``j`` on a test point ``z`` is then

        TracIn(j, z) = sum_k eta_k * s_j * grad loss(z; theta_k) . D grad loss(z_j; theta_k)

    (Pruthi et al., 2020, eq. 3, without the constant ``1 / batch_size``), with
    ``eta_k`` the learning rate the estimator used in the epoch ending at
    checkpoint ``k``, ``s_j`` the training point's relative weight in the
    training objective (1 for unweighted data) and ``D`` the diagonal scaling of
    the step per parameter, so that ``eta_k * D * grad`` is the update the
    estimator makes.  ``D`` is the identity, except for ``SGDClassifier`` and
    ``SGDRegressor`` on sparse input: scikit-learn then multiplies every
    intercept step by ``intercept_decay_`` (0.01), and the intercept entries of
    ``D`` are that factor.  Positive values: training on
    ``j`` decreased the test loss (a proponent); negative: an opponent.
    ``self_influence_`` is ``TracIn(j, z_j)``, large for mislabelled or atypical
    points.

    Only checkpoints are stored, never per-sample gradients: they are recomputed
    per checkpoint in chunks of training points (in parallel with ``n_jobs``).

    A :class:`~sklearn.ensemble.HistGradientBoostingClassifier` or ``-Regressor`` (bare,
    in a Pipeline or frozen) is trained by its own ``fit``: its boosting iterations are
    the checkpoints, and TracIn over them is BoostIn (Brophy, Hammoudeh & Lowd, JMLR
    2023, TracIn adapted to gradient-boosted trees): each tree's leaves move by the point's
    own gradient at that iteration and the query's loss is linearised with its gradient
    there.  ``transform``, ``explain`` and ``self_influence_`` are then those of
    ``InfluenceFunctions(estimator, approximation="boostin")`` (kept as ``influence_``),
    with the same signs; ``n_epochs`` and ``random_state`` do not apply.  Such a model has
    no ``partial_fit`` and no parameter vector whose gradients could be traced.

    Parameters
    ----------
    estimator : estimator
        :class:`~sklearn.linear_model.SGDClassifier`,
        :class:`~sklearn.linear_model.SGDRegressor` (smooth losses),
        :class:`~sklearn.neural_network.MLPClassifier` or
        :class:`~sklearn.neural_network.MLPRegressor` (``solver="sgd"`` or
        ``"adam"``), trained with ``partial_fit``; or a ``HistGradientBoosting*`` model
        (see above).  It is cloned, never modified.
    n_epochs : int, default=10
        Passes over the training data.
    checkpoints : int, array-like of int or None, default=None
        ``None``: a checkpoint after every epoch.  An int ``k``: ``k`` checkpoints
        evenly spaced over the epochs, the last one after the final epoch.  An
        array: the (1-based) epochs after which to checkpoint.
    batch_size : int or None, default=None
        Training points per ``partial_fit`` call.  ``None`` passes the whole
        (shuffled) training set once per epoch.  The estimator's own mini-batching
        (MLP ``batch_size``) applies within each call.
    random_state : int, RandomState or None, default=None
        Shuffling of the training data between epochs.
    n_jobs : int, default=None
        Threads over chunks of training points.
    verbose : int, default=0
        Progress bars when positive.

    Attributes
    ----------
    estimator_ : estimator
        The estimator after the last epoch (predictions are delegated to it).
    checkpoints_ : list of estimators or None
        Copies of the estimator at each checkpoint (parameters only; optimiser
        state is dropped).  None for a gradient-boosted model, whose checkpoints are its
        own trees.
    checkpoint_epochs_ : ndarray of int
        The epoch after which each checkpoint was taken (boosted models: the
        iterations, ``1 ... n_iter_``).
    influence_ : InfluenceFunctions
        Gradient-boosted models only: the BoostIn engine ``transform`` and ``explain``
        delegate to.
    learning_rates_ : ndarray of float
        ``eta_k`` of each checkpoint.  SGD estimators: the step size of the last
        update before the checkpoint, from their ``learning_rate`` schedule
        (``"optimal"``, ``"invscaling"``, ...).  MLP with ``solver="sgd"``: the
        optimiser's learning rate in that epoch (``learning_rate_init`` for a
        constant schedule).  MLP with ``solver="adam"``: Adam's bias-corrected
        global step size ``learning_rate_init * sqrt(1 - beta_2^t) / (1 - beta_1^t)``
        at the last update; Adam's per-coordinate scaling ``1 / (sqrt(v) + eps)``
        is *not* applied to the gradients (as in the TracIn paper).
    intercept_decay_ : float
        Factor of the intercept entries of ``D``: scikit-learn's
        ``SPARSE_INTERCEPT_DECAY`` (0.01) for an SGD estimator with an
        intercept trained on sparse input, else 1.
    self_influence_ : ndarray of shape (n_train,)
        ``sum_k eta_k s_j grad loss(z_j; theta_k) . D grad loss(z_j; theta_k)``.
    n_features_in_ : int

    See Also
    --------
    skinfluence.InfluenceFunctions : Influence at the final model, by the Hessian.

    References
    ----------
    Pruthi, Liu, Kale, Sundararajan (2020). Estimating Training Data Influence by
    Tracing Gradient Descent. NeurIPS.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.neural_network import MLPClassifier
    >>> from skinfluence import TracIn
    >>> X, y = load_iris(return_X_y=True)
    >>> mlp = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.05,
    ...                     random_state=0)
    >>> tracin = TracIn(mlp, n_epochs=5, random_state=0).fit(X[::2], y[::2])
    >>> tracin.transform(X[1::50], y[1::50]).shape
    (3, 75)
    >>> tracin.learning_rates_
    array([0.05, 0.05, 0.05, 0.05, 0.05])
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],  # partial_fit, or a boosted model (BoostIn)
        "n_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "checkpoints": [Interval(numbers.Integral, 1, None, closed="left"), "array-like", None],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator,
        *,
        n_epochs=10,
        checkpoints=None,
        batch_size=None,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.n_epochs = n_epochs
        self.checkpoints = checkpoints
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _checkpoint_epochs(self):
        E = self.n_epochs
        if self.checkpoints is None:
            return np.arange(1, E + 1)
        if isinstance(self.checkpoints, numbers.Integral):
            k = min(int(self.checkpoints), E)
            return np.unique(np.round(np.linspace(E / k, E, k)).astype(int))
        epochs = np.unique(np.asarray(self.checkpoints, dtype=int))
        if epochs.size == 0 or epochs.min() < 1 or epochs.max() > E:
            raise ValueError(
                f"checkpoints must be epochs between 1 and n_epochs={E}; got {epochs.tolist()}."
            )
        return epochs

    def _learning_rate_before(self, est):
        """Learning rate the next update will use (MLP-sgd, SGD) -- None if it is only known after."""
        name = type(est).__name__
        if name.startswith("MLP"):
            if est.solver == "adam":
                return None
            opt = getattr(est, "_optimizer", None)
            return float(est.learning_rate_init) if opt is None else float(opt.learning_rate)
        return None

    def _learning_rate_after(self, est, before):
        name = type(est).__name__
        if name.startswith("MLP"):
            if est.solver == "adam":
                return float(est._optimizer.learning_rate)
            return before
        # SGD: est.t_ is one more than the number of updates made so far
        return sgd_learning_rate(est, est.t_ - 1)

    def _check_estimator(self):
        """The wrapped estimator's class name, once it is known to be trainable here."""
        name = type(self.estimator).__name__
        if name not in _SUPPORTED:
            raise TypeError(
                f"TracIn supports {', '.join(_SUPPORTED)}; got {name}. (It needs partial_fit "
                "and a supported objective for per-sample gradients.)"
            )
        if name.startswith("MLP") and self.estimator.solver == "lbfgs":
            raise ValueError(
                "TracIn trains with partial_fit, which MLP solver='lbfgs' does not have; use "
                "solver='sgd' or 'adam'."
            )
        if name.startswith("MLP") and getattr(self.estimator, "early_stopping", False):
            raise ValueError("TracIn trains with partial_fit, which forbids early_stopping=True.")
        return name

    def _train(self, X, y, sample_weight, epochs):
        """Train a clone for ``n_epochs`` epochs of ``partial_fit`` calls on shuffled
        batches; returns it, its copies after ``epochs`` and the learning rates then."""
        n = X.shape[0]
        rng = check_random_state(self.random_state)
        est = clone(self.estimator)
        extra = {}
        if is_classifier(est):
            extra["classes"] = np.unique(y) if np.ndim(y) == 1 else None
            if extra["classes"] is None:  # multilabel indicator
                extra["classes"] = np.arange(y.shape[1])
        batch = n if self.batch_size is None else min(int(self.batch_size), n)
        checkpoints, rates = [], []
        for epoch in progress(range(1, self.n_epochs + 1), desc="TracIn epochs",
                              verbose=self.verbose):
            order = rng.permutation(n)
            lr = None
            for sl in chunk_slices(n, batch):
                idx = order[sl]
                before = self._learning_rate_before(est)
                kw = dict(extra)
                if sample_weight is not None:
                    kw["sample_weight"] = sample_weight[idx]
                with warnings.catch_warnings():
                    # one partial_fit call per batch: no "max_iter reached" noise
                    warnings.filterwarnings("ignore", message=".*Maximum iterations.*")
                    est.partial_fit(X[idx], y[idx], **kw)
                lr = self._learning_rate_after(est, before)
            if epoch in epochs:
                snap = copy.deepcopy(est)
                for attr in ("_optimizer", "_best_coefs", "_best_intercepts"):
                    if hasattr(snap, attr):
                        delattr(snap, attr)
                checkpoints.append(snap)
                rates.append(lr)
        return est, checkpoints, rates

    @positional_deprecated("sample_weight")
    def fit(self, X, y, *, sample_weight=None):
        """Train with ``partial_fit`` for ``n_epochs`` epochs, keeping checkpoints.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : TracIn
        """
        self._validate_params()
        if _boosted(self.estimator):  # the boosting rounds are the checkpoints: BoostIn
            return self._fit_boosted(X, y, sample_weight)
        self.influence_ = None
        name = self._check_estimator()
        X_in = X  # a DataFrame index names the columns of transform
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=np.float64, multi_output=True,
            y_numeric=not is_classifier(self.estimator),
        )
        if is_classifier(self.estimator) and y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        n = X.shape[0]
        if n < 2:
            raise ValueError(f"TracIn needs at least two training samples; got {n} sample.")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.shape != (n,):
                raise ValueError(f"sample_weight has shape {sample_weight.shape}; expected ({n},).")
        epochs = self._checkpoint_epochs()
        est, checkpoints, rates = self._train(X, y, sample_weight, epochs)
        self.estimator_ = est
        self.checkpoints_ = checkpoints
        self.checkpoint_epochs_ = np.asarray(epochs)
        self.learning_rates_ = np.asarray(rates, dtype=np.float64)
        if is_classifier(est):
            self.classes_ = est.classes_
        self._objectives = [make_objective(c, X, y, sample_weight) for c in checkpoints]
        # scikit-learn's SGD shrinks intercept steps on sparse data (make_dataset)
        sgd = not name.startswith("MLP")
        self.intercept_decay_ = SPARSE_INTERCEPT_DECAY if sgd and sp.issparse(X) else 1.0
        self._step_scales = [self._step_scale(obj) for obj in self._objectives]
        w = self._objectives[0].weights
        self._train_scale = w * (w.shape[0] / w.sum()) if w.sum() > 0 else np.ones_like(w)
        self.self_influence_ = self._self_influence()
        self._output_labels = row_labels(X_in, n)
        return self

    def _fit_boosted(self, X, y, sample_weight):
        """A gradient-boosted model: its own fit, then BoostIn over its iterations."""
        from .influence import InfluenceFunctions

        for name in ("checkpoints", "batch_size"):
            if getattr(self, name) is not None:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} does not apply to a gradient-boosted "
                    "model: it is trained by its own fit and every boosting iteration is a "
                    f"checkpoint; leave {name}=None.")
        inf = InfluenceFunctions(self.estimator, approximation="boostin", n_jobs=self.n_jobs,
                                 verbose=self.verbose).fit(X, y, sample_weight=sample_weight)
        self.influence_ = inf
        self.estimator_ = inf.estimator_
        model = inf.objective_
        self.checkpoints_ = None
        self.checkpoint_epochs_ = np.arange(1, model.n_iter + 1)
        self.learning_rates_ = np.full(model.n_iter, float(model.learning_rate))
        self.intercept_decay_ = 1.0
        self.self_influence_ = inf.self_influence_
        for attr in ("classes_", "n_features_in_", "feature_names_in_", "_output_labels"):
            if hasattr(inf, attr):
                setattr(self, attr, getattr(inf, attr))
        return self

    # ------------------------------------------------------------- internals
    def _step_scale(self, obj):
        """Diagonal of ``D`` for one checkpoint's objective, or None for the identity."""
        if self.intercept_decay_ == 1.0 or not getattr(obj, "fit_intercept", False):
            return None
        scale = np.ones(obj.n_params)
        scale[obj.n_outputs * obj.n_features:] = self.intercept_decay_  # [coef, intercept]
        return scale

    def _train_gradients(self, k, cols):
        obj = self._objectives[k]
        return obj.sample_gradients(obj.X[cols], obj.y[cols])

    def _query_gradients(self, X, y):
        """Per-checkpoint gradients of the queries: list of (n, p) arrays."""
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        if y is not None and is_classifier(self.estimator_):
            y = np.asarray(y)
            if y.ndim == 2 and y.shape[1] == 1:
                y = column_or_1d(y, warn=True)
        out = []
        for obj in self._objectives:
            Xf = obj.features(X)
            Z = obj.outputs(Xf)
            if y is None:
                C = _prediction_cotangent(obj, Z)
            else:
                y_enc = obj.encode_target(y)
                if y_enc.shape[0] != Xf.shape[0]:
                    raise ValueError(f"X has {Xf.shape[0]} samples but y has {y_enc.shape[0]}.")
                C, _ = obj.loss_derivatives(Z, y_enc)
            out.append(obj.vjp(Xf, C))
        return out

    def _chunks(self, n_rows):
        p = max(o.n_params for o in self._objectives)
        size = max(64, _BLOCK_ENTRIES // max(p + n_rows, 1))
        return chunk_slices(self._objectives[0].n_train, size)

    def _block(self, Gq, cols):
        acc = None
        for k, eta in enumerate(self.learning_rates_):
            G = self._train_gradients(k, cols) * (eta * self._train_scale[cols])[:, None]
            if self._step_scales[k] is not None:
                G *= self._step_scales[k]
            term = Gq[k] @ G.T
            acc = term if acc is None else acc + term
        return acc

    def _self_influence(self):
        n = self._objectives[0].n_train
        out = np.zeros(n)

        def fill(cols):
            for k, eta in enumerate(self.learning_rates_):
                G = self._train_gradients(k, cols)
                DG = G if self._step_scales[k] is None else G * self._step_scales[k]
                out[cols] += eta * self._train_scale[cols] * np.einsum("ip,ip->i", DG, G)

        for _ in self._run_blocks(fill, self._chunks(1), "TracIn self-influence"):
            pass
        return out

    # --------------------------------------------------------- public API
    def transform(self, X, y=None):
        """TracIn scores of every training point for each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            With targets, the gradients are those of the loss at ``(x, y)``.
            Without, those of the model's output (decision function of the
            predicted class for classifiers, the prediction for regressors).

        Returns
        -------
        scores : ndarray of shape (n_samples, n_train)
        """
        check_is_fitted(self, "checkpoints_")
        if self.influence_ is not None:  # boosted: BoostIn
            return self.influence_.transform(X, y)
        Gq = self._query_gradients(X, y)
        n = Gq[0].shape[0]
        check_dense_output(n, self._objectives[0].n_train, type(self).__name__)
        out = np.empty((n, self._objectives[0].n_train))

        def fill(cols):
            out[:, cols] = self._block(Gq, cols)

        for _ in self._run_blocks(fill, self._chunks(n), "TracIn"):
            pass
        return out

    def explain(self, X, y=None, k=10):
        """The ``k`` strongest proponents and opponents of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            See :meth:`transform`.
        k : int, default=10
            Training points per sample and direction (at most ``n_train`` are returned).

        Returns
        -------
        result : Bunch
            ``helpful_indices``, ``helpful_values`` (largest score first),
            ``harmful_indices``, ``harmful_values`` (most negative first), each of
            shape ``(n_samples, min(k, n_train))``.
        """
        k = self._check_k(k)
        check_is_fitted(self, "checkpoints_")
        if self.influence_ is not None:  # boosted: BoostIn
            return self.influence_.explain(X, y, k)
        Gq = self._query_gradients(X, y)
        n = Gq[0].shape[0]
        return self._explain_blocks(lambda cols: self._block(Gq, cols), self._chunks(n), n,
                                    self._objectives[0].n_train, k, "TracIn explain")


def _boosted(estimator):
    """Whether ``estimator`` (bare, frozen or a Pipeline's last step) is gradient-boosted."""
    from .influence._boosting import is_boosted
    from .objectives import unwrap_frozen

    return is_boosted(unwrap_frozen(estimator))


def _prediction_cotangent(obj, Z):
    """``d prediction / d z`` per sample, (n, K): what a loss-free gradient differentiates."""
    n, K = Z.shape
    if getattr(obj, "is_classifier", False):
        if K == 1:
            return np.ones((n, 1))
        if getattr(obj, "kind", None) == "multilabel":
            return np.full((n, K), 1.0 / K)
        C = np.zeros((n, K))
        C[np.arange(n), np.argmax(Z, axis=1)] = 1.0  # decision value of the predicted class
        return C
    kind = getattr(obj, "kind", None)
    if kind == "poisson":  # MLP with exp output: prediction mean(exp(z))
        return np.exp(Z) / K
    # MLP squared error (prediction = mean of outputs) and SGDRegressor (prediction = z)
    return np.full((n, K), 1.0 / K)
