"""The :class:`InfluenceFunctions` estimator: validation and orchestration.

The removal approximations live in their own modules (``_first_order.py``,
``_newton.py``, ``_point_hessian.py``, ``_active_set.py`` for L1 least squares), exact
refits in ``_refit.py`` and the influence blocks of ``transform`` / ``explain`` in
``_blocks.py`` (run by :class:`~skinfluence.base.BaseExplainer`'s block runner).
"""

import numbers

import numpy as np
from sklearn.base import TransformerMixin, is_classifier
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ..base import BaseExplainer, estimator_has
from ..linalg import HessianSolver, make_solver
from ..objectives import (make_objective, split_pipeline, stationarity, unwrap_frozen,
                          warn_if_not_stationary)
from ..utils._output import TrainingColumnsMixin, check_dense_output, check_out, row_labels
from ..utils._parallel import chunk_slices
from ._active_set import ActiveSetRemoval
from ._boosting import APPROXIMATIONS as BOOSTING_APPROXIMATIONS
from ._boosting import is_boosted, prepare_boosting
from ._dask import DaskGLM, fit_dask, frame_meta, is_dask_collection
from ._first_order import FirstOrder
from ._kernel import closed_form_removal
from ._newton import Newton
from ._point_hessian import PointHessianNewton, point_hessians_apply
from ._refit import refine_largest
from ._reselect import fit_reselect, reselect_kind


class InfluenceFunctions(TrainingColumnsMixin, TransformerMixin, BaseExplainer):
    """Influence of each training point on losses and predictions of a fitted model.

    Wraps a supported scikit-learn estimator (or a :class:`~sklearn.pipeline.Pipeline`
    ending in one), reconstructs the exact objective it minimised, and predicts
    what happens when a training point is removed and the model refit.  The unit
    of every number is the one you can check by retraining: ``transform(X, y)[i, j]``
    is ``loss_i(model refit without j) - loss_i(model)``.

    Parameters
    ----------
    estimator : estimator
        A supported estimator (see :func:`skinfluence.objectives.supported_estimators`),
        a Pipeline ending in one (earlier steps are a fixed feature map), or a fitted
        one wrapped in :class:`sklearn.frozen.FrozenEstimator` (then it is not refit:
        pass the data it was fitted on to :meth:`fit`; a model that is not at the
        optimum of that data gets a
        :class:`~skinfluence.objectives.NotStationaryWarning` for linear models).
    approximation : {"auto", "newton", "first_order"}, default="auto"
        ``"newton"``: one Newton step of the objective *without* the point from the
        fitted parameters, then the loss evaluated exactly at the model's new outputs.
        For GLMs the point's Hessian has rank ``K`` and the step is a rank-K Woodbury
        update.  For neural networks with a dense inverse (the exact solver) it uses
        each point's full Hessian, network curvature included, solved for all points
        at once (see Notes); with an iterative solver, the point's Gauss-Newton term
        only.  Points whose removal leaves the Hessian (nearly) indefinite, or whose
        step the objective does not confirm, use the first-order formula, with a
        warning.  ``"first_order"``: the classic influence function of Koh & Liang
        (2017), ``g_i^T H^{-1} g_j w_j``.  ``"auto"``: ``"newton"``, except for neural
        networks without a dense inverse (``"first_order"``), where the Gauss-Newton
        removal can be ill-posed (the user guide compares both against refits).
        Trees and forests (``DecisionTree*``, ``ExtraTree*``, ``RandomForest*``,
        ``ExtraTrees*``) take ``"exact"`` (the default under ``"auto"``: each tree regrown
        without the point, scikit-learn's own refit where the fit is deterministic) or
        ``"fixed_structure"`` (splits kept, leaf values recomputed); see
        :mod:`skinfluence.influence._forest`.
        For HistGradientBoosting and GradientBoosting models (``_boosting.py``), with
        every tree's structure fixed: ``"leaf_refit"`` recomputes the baseline and all
        leaf values without the point (later trees' gradients move with the earlier ones);
        ``"leaf_influence"`` is its first-order form (the default under ``"auto"``);
        ``"boostin"`` is the trajectory estimate of Brophy et al. (2023);
        ``"boostin_final"`` sums its leaf changes into the query's final outputs and
        evaluates the loss there; ``"boostin_contribution"`` does so with the point's
        share of each leaf value (the leaf's Hessian sum held fixed), which ranks sets of
        helpful rows better (see the user guide's boosting page);
        ``"boostin_contribution_greedy"`` (needs ``y``) orders each query's rows by
        removing them in steps of 1, 1, 2, 4, ... rows, recomputing those shares in the
        fixed-structure refit without the rows removed so far: ``transform`` gives each
        row's marginal predicted loss rise at the step it was ranked, ``explain``'s
        helpful rows are in removal order.
    solver : {"auto", "exact", "cg", "lissa"} or HessianSolver, default="auto"
        Inverse-Hessian products: dense Cholesky (``"exact"``), matrix-free conjugate
        gradients (``"cg"``) or the LiSSA recursion.  ``"auto"`` takes ``"exact"`` up
        to 3000 parameters (dense features) and ``"cg"`` beyond.
    refine : int or "auto", default="auto"
        With ``approximation="newton"`` on a GLM, this many training points with the
        largest predicted parameter change (in the Hessian norm) have their
        leave-one-out parameters computed exactly, by Newton's method on the
        objective without them, warm-started at the Newton-step estimate.  For a
        GLM the model's outputs are linear in the parameters, so the influence of
        these points becomes exact: the points whose one-step estimate is least
        accurate are the ones refit.  Each refit is a few chord iterations (one
        gradient each) with the factorised Hessian, so ``"auto"`` refines
        ``min(n_train, 32)`` points with the exact solver when
        ``n_train * n_params <= 2e6``, else none; a point whose chord iterations
        stall (a Hessian that changes much along the way) is refit by Newton's
        method when a Hessian is cheap (``n_train * n_params**2 <= 1e8``), else
        keeps its Newton-step estimate.  An integer refines that many points and
        always falls back to Newton's method where chords stall.  ``0`` turns
        it off.  Refits minimise the objective tilted by the fitted model's residual
        gradient, so a fit stopped at scikit-learn's ``tol`` is treated as the
        optimum it approximates, as the one-step estimates treat it.
        Skipped when the Hessian is damped: a refit solves the undamped problem.
        For neural networks only on request (an integer): each refit is an L-BFGS
        run from the fitted parameters (the local minimum a warm-started refit
        reaches), and the influence of a refit point is its exact loss change.
        L1 / elastic-net models (``Lasso``, ``ElasticNet`` and their CV forms) take
        steps that are exact while the fitted active set holds; ``refine`` other than
        ``0`` refits exactly the removals that change it (see
        ``active_set_changes_``), ``0`` keeps their fixed-active-set step.  The
        multi-task and logistic L1 models refine as GLMs do and also refit the
        removals that change the active set.
    damping : float, default=0.0
        Added to the Hessian diagonal.  More is added automatically, with a warning,
        when the Hessian is not positive definite.
    tol : float, default=1e-10
        Relative residual tolerance of the iterative solvers.
    max_iter : int, default=None
        Iteration cap of the iterative solvers.
    hyperparameters : {"fixed", "reselect"}, default="fixed"
        For models that choose hyperparameters from the data -- cross-validated
        ``*CV`` estimators (``RidgeCV``, ``RidgeClassifierCV``, ``LogisticRegressionCV``,
        ...) and ``GaussianProcessRegressor`` (its kernel hyperparameters) -- whether the
        refit without a point keeps the fitted choice (``"fixed"``: the equivalent
        fixed-hyperparameter model refit) or chooses again (``"reselect"``), exactly.
        ``RidgeCV`` / ``RidgeClassifierCV`` with their efficient leave-one-out selection
        (``cv=None``, ``scoring=None``) re-select in closed form: one SVD, then
        ``O(n_alphas n^2 r)`` for all ``n`` removals (``r = min(n, p)``), no refit.  Any
        other ``*CV`` estimator is refit without each point (its own folds and grid):
        ``n`` fits, refused above 10000 points, with a warning giving the estimated time
        when it exceeds a minute.  A Gaussian process is refit without each point with
        its optimiser started at the fitted ``kernel_`` and no restarts: the local
        optimum of the marginal likelihood that the fitted one moves to (it has then no
        ``parameter_changes``).  Other models refuse ``"reselect"``; ``approximation``
        and ``refine`` must keep their defaults with it.  See the user guide,
        "Which models" (re-selecting the hyperparameters).
    n_jobs : int, default=None
        Threads over chunks of training points (BLAS is limited to one thread per
        worker while they run).  ``None`` means one worker using all BLAS threads,
        usually the fastest on few cores.
    verbose : int, default=0
        Progress bars on long loops when positive.

    Attributes
    ----------
    estimator_ : estimator
        The fitted estimator (predictions are delegated to it).
    approximation_ : str
        The approximation used (``"auto"`` resolved).
    objective_ : skinfluence.objectives.Objective
        The reconstructed training objective (after a fit on dask arrays, a
        ``DaskGLM``: the objective on their row blocks, with the factorised Hessian).
    solver_ : skinfluence.linalg.HessianSolver
        The prepared inverse-Hessian solver; ``solver_info_`` has its diagnostics.
    solver_info_ : dict
        Solver name, damping used, iterations and residuals (iterative solvers).
    n_iter_ : int
        Iterations of the last Hessian solve of ``fit`` with an iterative solver
        (``solver_info_["n_iter"]``; 0 if ``fit`` needed no solve); 1 for a direct
        solver (the exact Cholesky factorisation) and for tree models.
    refined_indices_ : ndarray of int
        Training points whose leave-one-out parameters were computed exactly
        (see ``refine``).
    selected_hyperparameters_ : ndarray of shape (n_train, n_hyperparameters)
        Only with ``hyperparameters="reselect"``: what the refit without each point
        chose (``alpha_`` per target, ``C_`` and ``l1_ratio_``, or a Gaussian process's
        ``kernel_.theta``, the log-hyperparameters).
    hyperparameters_changed_ : ndarray of shape (n_train,) of bool
        Only with ``hyperparameters="reselect"``: whether that choice differs from the
        fitted model's (for a Gaussian process: a log-hyperparameter moved by more than
        ``1e-4``).
    active_set_changes_ : ndarray of int
        Only for L1 / elastic-net models: the training points whose removal changes
        the active set (a zero coefficient would leave zero, or a non-zero one change
        sign, by the KKT conditions after the fixed-active-set step).  They are refit
        with scikit-learn's solver, warm-started (unless ``refine=0``).  For ``Lasso``
        and ``ElasticNet`` every other removal is exact; for the models whose step is
        a Newton step, removals close to a change are refit too and listed here only
        when the refit confirms the change.
    n_active_set_changes_ : int
        Only for L1 / elastic-net models: ``active_set_changes_.size``.
    self_influence_ : ndarray of shape (n_train,)
        Predicted change of each training point's own loss when it is removed.
        Large values mark points the rest of the data does not explain (suspects).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    See Also
    --------
    skinfluence.TracIn : Influence from training checkpoints.
    skinfluence.InfluenceValuation : Data values from these influences.

    Notes
    -----
    For a GLM with ``K`` outputs, removing point ``j`` changes the Hessian by the
    rank-``K`` term ``w_j J_j^T S_j J_j``.  With ``M_j = J_j H^{-1} J_j^T`` the
    Newton step of the objective without ``j`` is
    ``dtheta_j = w_j H^{-1} J_j^T (I - w_j S_j M_j)^{-1} r_j``, costing one
    ``K x K`` solve per point on top of the first-order formula.

    A neural network's per-point Hessian ``H_j`` also carries the curvature of the
    network itself.  The steps ``(H - w_j H_j)^{-1} w_j g_j`` of all points are
    found together by conjugate gradients preconditioned with ``H^{-1}``, which
    turns each system into the identity plus a low-rank term; each iteration costs
    two matrix products and one per-point Hessian-vector product per point.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skinfluence import InfluenceFunctions
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), LogisticRegression())
    >>> inf = InfluenceFunctions(model).fit(X[:400], y[:400])
    >>> inf.transform(X[400:405], y[400:405]).shape
    (5, 400)
    >>> top = inf.explain(X[400:402], y[400:402], k=3)
    >>> top.helpful_indices.shape
    (2, 3)
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "approximation": [StrOptions({"auto", "newton", "first_order", "exact",
                                      "fixed_structure", *BOOSTING_APPROXIMATIONS})],
        "solver": [StrOptions({"auto", "exact", "cg", "lissa"}), HessianSolver],
        "refine": [StrOptions({"auto"}), Interval(numbers.Integral, 0, None, closed="left")],
        "damping": [Interval(numbers.Real, 0, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "hyperparameters": [StrOptions({"fixed", "reselect"})],
        "n_jobs": [numbers.Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator,
        *,
        approximation="auto",
        solver="auto",
        refine="auto",
        damping=0.0,
        tol=1e-10,
        max_iter=None,
        hyperparameters="fixed",
        n_jobs=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.approximation = approximation
        self.solver = solver
        self.refine = refine
        self.damping = damping
        self.tol = tol
        self.max_iter = max_iter
        self.hyperparameters = hyperparameters
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, sample_weight=None):
        """Fit the estimator (unless frozen) and prepare the Hessian.

        Parameters
        ----------
        X : array-like, sparse matrix or dask array of shape (n_samples, n_features)
            A dask array (with ``y`` and ``sample_weight`` dask arrays or in memory)
            keeps the training data in its row blocks: for a
            :class:`~sklearn.frozen.FrozenEstimator` of a fitted linear model or GLM,
            the Hessian is summed block by block and ``self_influence_`` and
            ``transform`` become lazy dask arrays (see the user guide, "Large data").
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
            With a Pipeline, passed to its final step; with scikit-learn's metadata
            routing enabled, to the steps that request it (the final step must).

        Returns
        -------
        self : InfluenceFunctions
        """
        self._validate_params()
        if y is None:
            raise ValueError(
                "InfluenceFunctions requires y to be passed, but the target y is None: influence "
                "is defined through the training loss."
            )
        reselect = self.hyperparameters == "reselect"
        if reselect and (self.approximation != "auto" or self.refine != "auto"):
            raise ValueError(
                "hyperparameters='reselect' computes exact refits: leave approximation and "
                "refine at 'auto', or use hyperparameters='fixed'.")
        if is_dask_collection(X):  # row blocks of dask arrays: _dask.py
            if reselect:
                raise ValueError("hyperparameters='reselect' needs the data in memory; use "
                                 "hyperparameters='fixed' on dask arrays.")
            return fit_dask(self, X, y, sample_weight)
        # Raw X may hold strings or NaN for a pipeline's own preprocessing; the objective
        # validates the features the final estimator sees.
        validate_data(self, X, skip_check_array=True)
        from ._forest import check_approximation, fit_tree_model, is_tree_model

        tree = is_tree_model(self.estimator)
        boosted = is_boosted(unwrap_frozen(self.estimator))  # trees: removals of their own
        check_approximation(self.approximation, tree=tree, boosted=boosted)
        if not boosted and self.approximation in BOOSTING_APPROXIMATIONS:
            raise ValueError(
                f"approximation={self.approximation!r} applies to gradient-boosted trees "
                "(HistGradientBoosting, GradientBoosting); use 'auto', 'newton' or 'first_order'.")
        # a Pipeline's weights reach its final step, metadata routing on or off; a
        # FrozenEstimator is kept as it is
        self.estimator_ = self._fit_estimator(X, y, sample_weight, final_step=True)
        fitted = unwrap_frozen(self.estimator_)
        if is_classifier(fitted):
            self.classes_ = fitted.classes_
        if reselect:  # refuses models that choose no hyperparameters from the data
            reselect_kind(split_pipeline(fitted)[1])
        if tree:  # trees and forests: removal by regrowing them (_forest.py)
            return fit_tree_model(self, fitted, X, y, sample_weight)
        if boosted:  # gradient-boosted trees: leaf-value removals (_boosting.py)
            return self._fit_boosting(fitted, X, y, sample_weight)
        self.objective_ = make_objective(fitted, X, y, sample_weight)
        self.objective_.check_minimum()
        if reselect:  # the removals choose the hyperparameters again: _reselect.py
            fit_reselect(self, fitted, X, y, sample_weight)
            self._output_labels = row_labels(X, self.objective_.n_train)
            return self
        if self.objective_.closed_form_removal:  # kernel models: exact, see _kernel.py
            self.solver_, self._removal = closed_form_removal(self.objective_, self.verbose)
            self.approximation_, self.refined_indices_ = "exact", np.array([], dtype=np.intp)
            self.solver_info_ = self.solver_.info()
            self._output_labels = row_labels(X, self.objective_.n_train)
            return self
        if (isinstance(self.estimator, FrozenEstimator) and self.objective_.linear_in_params
                and not getattr(self.objective_, "reports_stationarity", False)):  # SGD+L1
            # fitted elsewhere: check it is the (unique) optimum of this data.  Not for
            # networks, whose stochastic fits are rarely stationary to 1% by design
            warn_if_not_stationary(stationarity(self.objective_))
        self.solver_ = make_solver(
            self.solver, self.objective_, damping=self.damping, tol=self.tol,
            max_iter=self.max_iter,
        )
        self.approximation_ = self._resolve_approximation()
        removal = self._make_removal().prepare(self.objective_, self.solver_)
        refined = refine_largest(removal, self.refine, verbose=self.verbose)
        removal.set_refined(refined)
        self.refined_indices_ = np.array(sorted(refined), dtype=np.intp)
        if getattr(self.objective_, "active", None) is not None:  # L1: active-set changes
            self.active_set_changes_ = np.asarray(removal.crossings, dtype=np.intp)
            self.n_active_set_changes_ = int(self.active_set_changes_.size)
        if removal.leverages is not None or removal.cached:
            removal.self_side()
        # else (first order with an iterative solver): computed on first use, since it
        # costs one solve per training point and transform may not need any
        self._removal = removal
        self.solver_info_ = self.solver_.info()
        # iterative solvers report the iterations of their last solve; a direct one is one step
        self.n_iter_ = int(self.solver_info_.get("n_iter", 1))
        self._output_labels = row_labels(X, self.objective_.n_train)
        return self

    def _fit_boosting(self, fitted, X, y, sample_weight):
        """Gradient-boosted trees: the leaf-value removals of ``_boosting.py``."""
        self.objective_, self._removal, self.approximation_ = prepare_boosting(
            fitted, X, y, sample_weight, self.approximation, self.n_jobs, self.verbose)
        self.solver_, self.solver_info_ = None, {"solver": None}
        self.n_iter_ = 1  # direct: no iterative solve
        self.refined_indices_ = np.array([], dtype=np.intp)
        self._output_labels = row_labels(X, self.objective_.n_train)
        return self

    def _resolve_approximation(self):
        """``approximation`` with "auto" resolved for the objective and solver."""
        if self.approximation != "auto":
            return self.approximation
        # neural nets: Newton only with each point's exact Hessian; the Gauss-Newton
        # removal can be ill-posed
        if self.objective_.linear_in_params or point_hessians_apply(self.objective_,
                                                                    self.solver_):
            return "newton"
        return "first_order"

    def _make_removal(self):
        """The removal approximation object for ``approximation_``."""
        if self.approximation_ == "first_order":
            return FirstOrder(verbose=self.verbose)
        if getattr(self.objective_, "exact_active_set_steps", False):  # objectives/sparse.py
            return ActiveSetRemoval(verbose=self.verbose)
        if point_hessians_apply(self.objective_, self.solver_):
            return PointHessianNewton(verbose=self.verbose)
        return Newton(verbose=self.verbose)

    # ------------------------------------------------------------ queries
    def _queries(self, X, y):
        """Validated query features, their outputs and encoded targets (None without y)."""
        check_is_fitted(self, "objective_")
        obj = self.objective_
        shape = getattr(X, "shape", None)
        if shape is None or len(shape) == 2:  # 1-D arrays: features() asks for a reshape
            validate_data(self, X, skip_check_array=True, reset=False)
        Xf = obj.features(X)
        Z0 = obj.outputs(Xf)
        query_features = getattr(self._removal, "query_features", None)
        if query_features is not None:  # removals that read the queries themselves
            Xf = query_features(X)
        y_enc = None
        if y is not None:
            y_enc = obj.encode_target(y)
            if y_enc.shape[0] != Xf.shape[0]:
                raise ValueError(f"X has {Xf.shape[0]} samples but y has {y_enc.shape[0]}.")
        return Xf, Z0, y_enc

    def _blocks(self):
        """The influence blocks of the fitted removal, run by :meth:`_run_blocks`."""
        check_is_fitted(self, "objective_")
        return self._removal.blocks(self)

    # --------------------------------------------------------- public API
    def transform(self, X, y=None, out=None):
        """Influence of every training point on the loss (or output) at each sample.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            With targets, entry ``[i, j]`` is the predicted change of the loss at
            sample ``i`` when training point ``j`` is removed and the model refit
            (positive: ``j`` helps ``i``).  Without (as inside a Pipeline), it is the
            predicted change of the model's output at ``i``: the decision function
            for classifiers (of the predicted class for multiclass models), the
            prediction for regressors.
        out : ndarray of shape (n_samples, n_train), default=None
            A writeable float64 array the result is written into, block by block,
            e.g. a memory-mapped file for a matrix larger than memory
            (``np.lib.format.open_memmap(path, mode="w+", dtype=np.float64,
            shape=(n_samples, n_train))``).  Without it, a result that cannot fit in
            the memory available is refused up front with a ``MemoryError``.

        Returns
        -------
        influence : ndarray of shape (n_samples, n_train)
            ``out`` when it is given.
        """
        if self._on_dask():
            return self._dask_transform(X, y, out)
        Xf, Z0, y_enc = self._queries(X, y)
        shape = (Xf.shape[0], self.objective_.n_train)
        if out is None:
            check_dense_output(*shape, type(self).__name__, out_keyword=True)
        else:
            check_out(out, shape, "transform")
        return self._blocks().transform(Xf, Z0, y_enc, out=out)

    def explain(self, X, y=None, k=10):
        """The ``k`` most helpful and ``k`` most harmful training points for each sample.

        Computed in blocks, never materialising ``n_samples x n_train``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            See :meth:`transform` for what is explained with and without ``y``.
        k : int, default=10
            Training points per sample and direction (at most ``n_train`` are returned).

        Returns
        -------
        result : Bunch
            ``helpful_indices``, ``helpful_values`` (largest influence first),
            ``harmful_indices``, ``harmful_values`` (most negative first), each of
            shape ``(n_samples, min(k, n_train))``.
        """
        k = self._check_k(k)
        if self._on_dask():
            validate_data(self, frame_meta(X), skip_check_array=True, reset=False)
            return self.objective_.explain(X, y, k)
        Xf, Z0, y_enc = self._queries(X, y)
        return self._blocks().explain(Xf, Z0, y_enc, k)

    def parameter_changes(self, indices=None):
        """Predicted ``theta(refit without j) - theta`` for training points ``indices``.

        Returns
        -------
        changes : ndarray of shape (n_params, n_indices)
            In the flat layout of ``objective_.theta``
            (``objective_.unflatten`` maps a column back to ``coef_`` / ``intercept_``).
        """
        check_is_fitted(self, "objective_")
        if self._on_dask():
            raise NotImplementedError(
                "parameter_changes is not available after a fit on dask arrays (it is "
                "n_params x n_train); transform, explain and self_influence_ are."
            )
        removal = self._removal
        idx = np.arange(self.objective_.n_train) if indices is None else np.asarray(indices)
        if removal.ensure_cached():
            return removal.directions(idx).copy()
        out = np.empty((self.objective_.n_params, idx.size))
        for sl in chunk_slices(idx.size, 4096):
            out[:, sl] = removal.directions(idx[sl])
        return out

    @property
    def self_influence_(self):
        """Predicted change of each training point's own loss when it is removed: (n_train,).

        A lazy dask array after a fit on dask arrays.
        """
        check_is_fitted(self, "objective_")
        if self._on_dask():
            return self.objective_.self_influence()
        return self._removal.self_side().self_influence

    def loo_decision_function(self):
        """Raw outputs of each training point under the model refit without it: (n_train, K).

        A lazy dask array after a fit on dask arrays.
        """
        check_is_fitted(self, "objective_")
        if self._on_dask():
            return self.objective_.loo_outputs()
        return self._removal.self_side().loo_outputs.copy()

    @available_if(estimator_has("predict_proba"))
    def loo_predict_proba(self):
        """Approximate leave-one-out class probabilities of the training points.

        Each row is the model's ``predict_proba`` for a training point when the model is
        refit without that point (one Newton step; no K-fold refits).

        Returns
        -------
        proba : ndarray of shape (n_train, n_classes)
        """
        check_is_fitted(self, "objective_")
        if self._on_dask():
            Z = self.objective_.loo_outputs()
            return Z.map_blocks(self.objective_.template.proba_from_outputs, dtype=np.float64,
                                chunks=(Z.chunks[0], (len(self.classes_),)))
        return self.objective_.proba_from_outputs(self._removal.self_side().loo_outputs)

    # ----------------------------------------------------------------- dask
    def _on_dask(self):
        """Whether ``fit`` was given dask arrays (``objective_`` is then a DaskGLM)."""
        return isinstance(getattr(self, "objective_", None), DaskGLM)

    def _dask_transform(self, X, y, out):
        if out is not None:
            raise ValueError(
                "transform(out=...) writes a result in memory; after a fit on dask arrays "
                "the result is a lazy dask array: store it with dask (e.g. da.to_zarr or "
                "da.store into an np.memmap)."
            )
        validate_data(self, frame_meta(X), skip_check_array=True, reset=False)
        return self.objective_.transform(X, y)

    # ----------------------------------------------------------------- tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()  # the wrapped model's, from BaseExplainer
        tags.target_tags.required = True  # influence is defined through the training loss
        from ._forest import is_tree_model

        if is_tree_model(self.estimator):  # missing-value splits are not replayed (_forest.py)
            tags.input_tags.allow_nan = False
        return tags
