"""InfluenceCleaner: find mislabelled training points from one fit."""

import numbers
import warnings

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_consistent_length, check_is_fitted, validate_data

from . import _confident as cl
from ..base import BaseExplainer
from ..objectives import NotStationaryWarning
from ..utils._dask import is_dask_collection
from ..utils._deprecation import REMOVED_IN, positional_deprecated
from ._containers import replace_labels, scores_to_proba, take_rows_like
from ._classification_fit import ClassificationCleaning
from ._regression import DEFAULT_Z, is_regression_task
from ._regression_fit import RegressionCleaning, forget_regression
from ._dask import fit_dask

__all__ = ["InfluenceCleaner", "scores_to_proba"]

METHODS = ("loo", "self_influence", "validation", "loss", "cross_val")
ACTIONS = ("remove", "relabel")


def _default_estimator():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000)


def _default_regressor():
    from sklearn.linear_model import Ridge

    return Ridge()


class InfluenceCleaner(ClassificationCleaning, RegressionCleaning, BaseExplainer):
    """Find, remove or relabel mislabelled training examples with one fit.

    The estimator is fitted once on the (noisy) training data.  The influence
    machinery (:class:`skinfluence.InfluenceFunctions`) then gives every
    training point's predicted class probabilities *under the model refitted
    without that point* (a Newton step, exact Woodbury algebra for GLMs), which
    are the out-of-sample probabilities confident learning (Northcutt et al.,
    JAIR 2021) needs -- without the K-fold refits.

    Regression targets (a regressor as ``estimator``, or continuous ``y`` with
    ``estimator=None``) are scored by their leave-one-out residual
    ``y_i - yhat_(i)``, exact for least squares (the PRESS residual
    ``e_i / (1 - h_ii)``; Ridge, LinearRegression, weighted, several targets),
    the Newton step for GLMs and the other supported regressors.  It is
    standardised to ``z_scores_``: times ``sqrt(1 - h_ii)`` where the leverage is
    known, centred on the median and divided by ``1.4826 MAD`` (deviance
    residuals for Poisson / Gamma / Tweedie GLMs), so that ``z_threshold`` flags
    the same share of clean rows on every data set.

    Parameters
    ----------
    estimator : classifier or regressor, default=None
        The model whose training set is cleaned, unfitted; a regressor cleans
        regression targets (even integer-valued ones).  Influence methods
        need an estimator supported by :mod:`skinfluence.objectives`
        (LogisticRegression, RidgeClassifier, LinearSVC, SGDClassifier, Ridge,
        LinearRegression, SGDRegressor, Poisson / Gamma / TweedieRegressor,
        MLPs, or a Pipeline ending in one), a tree or forest (``"loo"`` then uses a bagged
        forest's out-of-bag probabilities or predictions, and the exact leave-one-out ones
        of :class:`~skinfluence.InfluenceFunctions` otherwise), or a
        ``HistGradientBoosting*`` model (fixed-structure leave-one-out outputs, which stay
        close to in-sample ones: prefer a ``threshold`` fraction, see the trees guide).  ``None`` means
        ``LogisticRegression(max_iter=1000)`` for class labels and ``Ridge()``
        for continuous targets (``type_of_target``).
        A model already fitted on the training data can come wrapped in
        :class:`~sklearn.frozen.FrozenEstimator`; it is then scored as it is,
        without a fit (``method="cross_val"`` still refits clones of the
        estimator it wraps on the folds).
    method : {"loo", "self_influence", "validation", "loss", "cross_val"}, default="loo"
        How suspicion is scored (``scores_``):

        * ``"loo"``: one minus the approximate leave-one-out probability of
          the given label; flags by confident-learning thresholds on the
          leave-one-out probabilities.
        * ``"self_influence"``: predicted increase of a point's own loss when
          it is removed (Koh & Liang's self-influence).
        * ``"validation"``: harm to the loss on a trusted, clean validation
          set, ``fit(X, y, X_val=X_val, y_val=y_val)`` (minus the summed
          influence on it).
        * ``"loss"``: baseline -- one minus the in-sample probability of the
          given label (equivalent ranking to the training loss); confident
          learning on in-sample probabilities.
        * ``"cross_val"``: confident learning on ``cv``-fold cross-validated
          probabilities (what cleanlab does); works for any classifier.

        For regression targets ``"loo"``, ``"loss"`` and ``"cross_val"`` score
        by the standardised residual ``|z|`` of the leave-one-out, in-sample or
        cross-validated prediction (several targets: the ``|z|`` with the same
        Gaussian tail probability as ``sum_k z_k^2``).

        With ``threshold="auto"`` the score-only methods (``self_influence``,
        ``validation``) flag as many top-scored points as confident learning
        (regression: the ``z_threshold`` rule on leave-one-out residuals)
        estimates are mislabelled.
    threshold : "auto" or float in [0, 1), default="auto"
        ``"auto"``: confident learning decides (``filter_by``); regression
        targets are flagged where ``scores_ > z_threshold``.  A float:
        flag that fraction of the training set with the highest scores.
    action : {"remove", "relabel"}, default="remove"
        What :meth:`fit_resample` does with flagged points.
    filter_by : str, default="prune_globally"
        Confident-learning pruning rule, see
        :func:`skinfluence.cleaning.find_label_issues`.  The default flags
        the ``n (1 - trace Q)`` samples with the lowest out-of-sample
        probability of their label (``Q``: calibrated confident joint);
        ``"prune_by_noise_rate"`` is the paper's (and cleanlab's) default.
    forest_trees : {"out_of_bag", "all"}, default="out_of_bag"
        Bagged forest classifiers with ``method="loo"``: which trees rank the rows
        (``"all"``: random forests, whose thresholds lie midway between rows).
        ``"out_of_bag"``: each row's out-of-bag probabilities (the trees that left it
        out, ~37% of them) do everything.  ``"all"``: confident learning still counts
        the issues on those, but the rows are ranked (``scores_``, and which rows fill
        the counts) by the average over every tree, those that saw a row contributing
        their leave-one-out prediction read from the fitted tree (its thresholds moved
        as if placed without the row, no regrowth): lower variance, biased towards the
        given label, so not used for the counts.  See the trees user guide.
    validation_data : tuple (X_val, y_val), default=None
        Deprecated since 0.2 (removed in 0.3): pass ``fit(X, y, X_val=X_val,
        y_val=y_val)`` instead.
    cv : int or cross-validation generator, default=5
        Folds for ``method="cross_val"``; an int means
        ``StratifiedKFold(cv, shuffle=True, random_state=0)`` (``KFold`` for
        regression targets).
    z_threshold : float > 0, default=2.576
        Regression targets: the ``|z|`` above which ``threshold="auto"`` flags
        a row.  The default is the two-sided 1% point of the standard normal:
        about 1% of the rows of clean data with Gaussian noise are flagged (the
        cleaning user guide measures the rate on real data).
    damping : float, default=0.0
        Damping passed to :class:`~skinfluence.InfluenceFunctions`.
    n_jobs : int, default=None
        Passed to :class:`~skinfluence.InfluenceFunctions` / ``cross_val_predict``.
    verbose : int, default=0
        Print timings of the stages.

    Attributes
    ----------
    estimator_ : estimator
        The estimator fitted on all the data given to :meth:`fit`
        (``predict``, ``predict_proba``, ``score``, ... delegate to it).
    task_ : {"classification", "regression"}
        How ``y`` was cleaned (see ``estimator``).
    classes_ : ndarray of shape (n_classes,)
        Classification only.
    scores_ : ndarray of shape (n_samples,)
        Higher = more likely mislabelled.
    issues_ : ndarray of shape (n_samples,), dtype=bool
        Flagged samples.
    suggested_labels_ : ndarray of shape (n_samples,)
        For flagged samples, the most probable other class under the
        out-of-sample probabilities (regression: ``predictions_``); for the
        others, the given label.
    proba_ : ndarray of shape (n_samples, n_classes)
        The probabilities confident learning used (leave-one-out,
        cross-validated or in-sample depending on ``method``).  Classification only.
    noise_joint_ : ndarray of shape (n_classes, n_classes)
        Confident-learning estimate of the joint distribution of given
        (rows) and true (columns) labels.  Classification only.
    predictions_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
        Regression only: each row's prediction by the model refit without it
        (``method="loo"``, ``"self_influence"``, ``"validation"``), in-sample
        (``"loss"``) or cross-validated (``"cross_val"``).
    z_scores_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
        Regression only: the standardised residuals of ``predictions_``
        (positive: the target lies above the prediction); rows of leverage
        one (the model refit without them is not determined) get 0.
    n_issues_ : int
        Number of flagged samples.
    influence_ : InfluenceFunctions or None
        The fitted influence engine (methods ``self_influence`` and
        ``validation``, and ``loo`` for models outside the fast path).  None
        for ``loo`` on a GLM with at most 3000 parameters: its leave-one-out
        probabilities come straight from the ``K x K`` leverages
        ``J_j H^{-1} J_j^T`` (the same Newton step, without the engine's
        per-point parameter changes).

    Notes
    -----
    A row's leave-one-out prediction for a model in a Pipeline is that of the
    final step refit on the same features (earlier steps are a fixed feature map).

    Cost of ``method="loo"`` for a GLM with at most 3000 parameters ``p``
    (``K`` outputs, ``d`` features, ``n`` samples): one fit of the estimator,
    the Hessian and the leverages (``O(n K^2 d^2)`` each, as single BLAS
    calls) and one ``p x p`` Cholesky inverse.  cleanlab's recipe costs five
    fits on 80% of the data; ``benchmarks/bench_cleaning.py`` measures both.

    See Also
    --------
    CleanClassifier : fit, clean, refit in one estimator.
    skinfluence.cleaning.cleaning_curve : fraction of flips found vs checked.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skinfluence import InfluenceCleaner
    >>> from skinfluence.datasets import make_noisy_labels
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> y_noisy, flipped = make_noisy_labels(y, 0.1, random_state=0)
    >>> model = make_pipeline(StandardScaler(), LogisticRegression())
    >>> cleaner = InfluenceCleaner(model).fit(X, y_noisy)
    >>> precision = (cleaner.issues_ & flipped).sum() / cleaner.issues_.sum()
    >>> bool(precision > 0.8)
    True
    >>> X_clean, y_clean = cleaner.fit_resample(X, y_noisy)

    Regression targets, with 10% of them shifted:

    >>> import numpy as np
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.linear_model import Ridge
    >>> X, y = load_diabetes(return_X_y=True)
    >>> rng = np.random.default_rng(0)
    >>> shifted = rng.choice(len(y), 44, replace=False)
    >>> y_noisy = y.copy()
    >>> y_noisy[shifted] += 3 * y.std()
    >>> cleaner = InfluenceCleaner(Ridge(alpha=0.01)).fit(X, y_noisy)
    >>> cleaner.task_
    'regression'
    >>> bool(np.isin(np.flatnonzero(cleaner.issues_), shifted).mean() > 0.9)
    True
    """

    _parameter_constraints = {
        "estimator": [None, HasMethods(["fit"])],
        "method": [StrOptions(set(METHODS))],
        "threshold": [StrOptions({"auto"}), Interval(numbers.Real, 0, 1, closed="left")],
        "action": [StrOptions(set(ACTIONS))],
        "filter_by": [StrOptions(set(cl.FILTERS))],
        "forest_trees": [StrOptions({"out_of_bag", "all"})],
        "validation_data": [None, tuple, list],
        "cv": ["cv_object"],
        "z_threshold": [Interval(numbers.Real, 0, None, closed="neither")],
        "damping": [Interval(numbers.Real, 0, None, closed="left")],
        "n_jobs": [None, numbers.Integral],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        method="loo",
        threshold="auto",
        action="remove",
        filter_by="prune_globally",
        forest_trees="out_of_bag",
        validation_data=None,
        cv=5,
        z_threshold=DEFAULT_Z,
        damping=0.0,
        n_jobs=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.method = method
        self.threshold = threshold
        self.action = action
        self.filter_by = filter_by
        self.forest_trees = forest_trees
        self.validation_data = validation_data
        self.cv = cv
        self.z_threshold = z_threshold
        self.damping = damping
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _template_estimator(self):
        if self.estimator is not None:
            return self.estimator
        if getattr(self, "task_", None) == "regression":
            return _default_regressor()
        return _default_estimator()

    # ------------------------------------------------------------ checks
    def _validation_set(self, X_val, y_val):
        """The trusted set of ``method="validation"`` (``validation_data``: deprecated)."""
        if self.validation_data is not None:
            if X_val is not None or y_val is not None:
                raise ValueError("Pass the validation set once, as fit(X, y, X_val=X_val, "
                                 "y_val=y_val); validation_data= is deprecated.")
            if len(self.validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_val, y_val).")
            warnings.warn(
                "InfluenceCleaner(validation_data=(X_val, y_val)) is deprecated since "
                f"skinfluence 0.2 and will be removed in {REMOVED_IN}: pass "
                "fit(X, y, X_val=X_val, y_val=y_val) instead.", FutureWarning, stacklevel=4)
            X_val, y_val = self.validation_data
        if (X_val is None) != (y_val is None):
            raise ValueError("Pass both X_val and y_val, or neither.")
        if self.method == "validation" and X_val is None:
            raise ValueError("method='validation' needs a trusted clean validation set: "
                             "fit(X, y, X_val=X_val, y_val=y_val).")
        if self.method != "validation" and X_val is not None:
            warnings.warn(f"X_val and y_val are used only by method='validation'; "
                          f"method={self.method!r} ignores them.", UserWarning, stacklevel=4)
            return None, None
        return X_val, y_val

    def _check_xy(self, X, y, regression=False):
        """Validated ``(X, y, y as an ndarray)``.

        Shapes and NaN are checked here for clear errors; the dtype of ``X`` is kept (a
        pipeline may hold its own preprocessing of strings) and DataFrames go to the
        estimator as they are.
        """
        tags = self.__sklearn_tags__()
        X_checked, y_checked = validate_data(
            self, X, y, reset=True, accept_sparse=tags.input_tags.sparse,
            ensure_all_finite=not tags.input_tags.allow_nan, dtype=None,
            skip_check_array=hasattr(X, "iloc"), multi_output=regression,
            y_numeric=regression,
        )
        check_consistent_length(X, y)
        if not hasattr(X, "iloc"):
            X, y = X_checked, y_checked
        return X, y, np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)

    def _log(self, msg):
        if self.verbose:
            print(f"[InfluenceCleaner] {msg}")

    # --------------------------------------------------------------- fit
    @positional_deprecated("sample_weight")
    def fit(self, X, y, *, X_val=None, y_val=None, sample_weight=None):
        """Fit the estimator once and score every training point.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Training data; pandas DataFrames are passed to the estimator as is.  Dask
            arrays (``method="loo"``, a FrozenEstimator of a linear model or GLM) stay
            in their row blocks (see the user guide, "Large data").
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Possibly noisy class labels (any hashable type, e.g. strings), or
            regression targets (several columns for a multi-target regressor).
        X_val, y_val : array-like, default=None
            Trusted clean data, required by ``method="validation"`` and used by no
            other method.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : InfluenceCleaner
        """
        self._validate_params()
        if is_dask_collection(X):  # row blocks of dask arrays (class labels): _dask.py
            self.task_ = "classification"
            forget_regression(self)
            return fit_dask(self, X, y, X_val=X_val, y_val=y_val, sample_weight=sample_weight)
        X_val, y_val = self._validation_set(X_val, y_val)
        if is_regression_task(self.estimator, y):
            self.task_ = "regression"
            return self._fit_regression(X, y, X_val, y_val, sample_weight)
        self.task_ = "classification"
        forget_regression(self)
        return self._fit_classification(X, y, X_val, y_val, sample_weight)

    @staticmethod
    def _top(scores, k):
        mask = np.zeros(scores.shape[0], dtype=bool)
        k = max(0, min(int(k), scores.shape[0]))
        if k:
            # stable order so ties break by index (reproducible)
            mask[np.argsort(-scores, kind="stable")[:k]] = True
        return mask

    def _influence_engine(self, X, y, sample_weight, stacklevel=6):
        """:class:`~skinfluence.InfluenceFunctions` on ``estimator_``, fitted; sets
        ``influence_``.  ``stacklevel``: that of the user's call, counted from here."""
        from ..influence import InfluenceFunctions

        # a user's FrozenEstimator: fitted elsewhere, so its stationarity is checked
        user_frozen = isinstance(self.estimator_, FrozenEstimator)

        # the fitted model goes in frozen (a user's FrozenEstimator as it is): not refit
        fitted = self.estimator_
        if not user_frozen:
            fitted = FrozenEstimator(fitted)
        # "loo" ranks by probabilities and never refits (exact refits of the largest
        # changes cost many times the fit and do not move the flagged set); the score
        # methods keep the engine's default, whose scores_ are the documented influences
        # L1 models: a removal that changes the active set is refit (its step on the fitted
        # active set would be wrong, not approximate); every other removal is exact
        from ..objectives.sparse import is_sparse_model

        loo = self.method == "loo" and not is_sparse_model(fitted)
        infl = InfluenceFunctions(
            fitted,
            refine=0 if loo else "auto",
            damping=self.damping,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        with warnings.catch_warnings():
            if not user_frozen:  # fitted here, on this data (sklearn warns if unconverged)
                warnings.simplefilter("ignore", NotStationaryWarning)
            infl.fit(X, y, sample_weight=sample_weight)
        self.influence_ = infl
        if not getattr(infl.objective_, "linear_in_params", True):
            warnings.warn(
                f"{type(infl.objective_.estimator).__name__} is not a linear model: its "
                "leave-one-out outputs come from one Gauss-Newton step on a non-convex "
                "objective and rank mislabelled points less reliably than for linear "
                "models (see the cleaning user guide). method='cross_val' refits instead.",
                UserWarning,
                stacklevel=stacklevel,
            )
        return infl

    def _validation_scores(self, X_val, y_val, n_train):
        # positive entries of transform: training point j lowers the loss of validation
        # point i.  Summed in row chunks so memory stays O(chunk * n_train).
        n_val = y_val.shape[0]
        chunk = max(1, min(n_val, 20_000_000 // max(n_train, 1)))
        total = np.zeros(n_train)
        for start in range(0, n_val, chunk):
            rows = slice(start, min(start + chunk, n_val))
            Xc = X_val.iloc[rows] if hasattr(X_val, "iloc") else X_val[rows]
            total += np.asarray(self.influence_.transform(Xc, y_val[rows])).sum(axis=0)
        return -total

    # ------------------------------------------------------ resampling
    @positional_deprecated("sample_weight")
    def fit_resample(self, X, y, *, X_val=None, y_val=None, sample_weight=None):
        """Fit, then return the cleaned training set.

        Makes the cleaner usable as a sampler step in an imbalanced-learn
        :class:`~imblearn.pipeline.Pipeline` (the step is applied only
        during ``fit``; prediction data passes through untouched).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        X_val, y_val : array-like, default=None
            Trusted clean data of ``method="validation"`` (see :meth:`fit`).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        X_clean : same container as X
            ``X`` without the flagged rows (``action="remove"``) or ``X``
            itself.  A DataFrame keeps the index of the kept rows, a sparse
            matrix or array its format (CSR, CSC, COO, ...), a list stays a
            list; other array-likes become ndarrays.
        y_clean : same container as y
            The kept labels, or all labels with flagged ones replaced by
            ``suggested_labels_`` (``action="relabel"``; regression: the
            leave-one-out predictions).  A Series keeps its
            index and name, a list stays a list, others become ndarrays.
        """
        self.fit(X, y, X_val=X_val, y_val=y_val, sample_weight=sample_weight)
        return self._apply(X, y, self.issues_)

    def _apply(self, X, y, mask, action=None):
        action = self.action if action is None else action
        if action == "remove":
            keep = ~mask
            return take_rows_like(X, keep), take_rows_like(y, keep)
        if self.task_ == "regression":
            return X, replace_labels(y, self._relabelled(mask))
        new_codes = np.where(mask, self._alternative_codes, self._codes)
        return X, replace_labels(y, self.classes_[new_codes])

    def get_mask(self):
        """Boolean mask of flagged samples (``issues_``)."""
        check_is_fitted(self, "issues_")
        return self.issues_
