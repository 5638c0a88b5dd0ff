"""InfluenceCleaner: find mislabelled training points from one fit."""

import numbers
import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    validate_data,
)

from . import _confident as cl
from ..base import BaseExplainer
from ..objectives import NotStationaryWarning, unwrap_frozen
from ..utils._dask import is_dask_collection
from ..utils._deprecation import REMOVED_IN, positional_deprecated
from ..utils._routing import routed_for_cv
from ._containers import replace_labels, scores_to_proba, take_rows_like
from ._dask import fit_dask
from ._loo import leverage_loo_proba

__all__ = ["InfluenceCleaner", "scores_to_proba"]

METHODS = ("loo", "self_influence", "validation", "loss", "cross_val")
ACTIONS = ("remove", "relabel")


def _default_estimator():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000)


class InfluenceCleaner(BaseExplainer):
    """Find, remove or relabel mislabelled training examples with one fit.

    The estimator is fitted once on the (noisy) training data.  The influence
    machinery (:class:`skinfluence.InfluenceFunctions`) then gives every
    training point's predicted class probabilities *under the model refitted
    without that point* (a Newton step, exact Woodbury algebra for GLMs), which
    are the out-of-sample probabilities confident learning (Northcutt et al.,
    JAIR 2021) needs -- without the K-fold refits.

    Parameters
    ----------
    estimator : classifier, default=None
        The model whose training set is cleaned, unfitted.  Influence methods
        need an estimator supported by :mod:`skinfluence.objectives`
        (LogisticRegression, RidgeClassifier, LinearSVC, SGDClassifier, or a
        Pipeline ending in one).  ``None`` means ``LogisticRegression(max_iter=1000)``.
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

        With ``threshold="auto"`` the score-only methods (``self_influence``,
        ``validation``) flag as many top-scored points as confident learning
        estimates are mislabelled from the leave-one-out probabilities.
    threshold : "auto" or float in [0, 1), default="auto"
        ``"auto"``: confident learning decides (``filter_by``).  A float:
        flag that fraction of the training set with the highest scores.
    action : {"remove", "relabel"}, default="remove"
        What :meth:`fit_resample` does with flagged points.
    filter_by : str, default="prune_globally"
        Confident-learning pruning rule, see
        :func:`skinfluence.cleaning.find_label_issues`.  The default flags
        the ``n (1 - trace Q)`` samples with the lowest out-of-sample
        probability of their label (``Q``: calibrated confident joint);
        ``"prune_by_noise_rate"`` is the paper's (and cleanlab's) default.
    validation_data : tuple (X_val, y_val), default=None
        Deprecated since 0.2 (removed in 0.3): pass ``fit(X, y, X_val=X_val,
        y_val=y_val)`` instead.
    cv : int or cross-validation generator, default=5
        Folds for ``method="cross_val"``; an int means
        ``StratifiedKFold(cv, shuffle=True, random_state=0)``.
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
    classes_ : ndarray of shape (n_classes,)
    scores_ : ndarray of shape (n_samples,)
        Higher = more likely mislabelled.
    issues_ : ndarray of shape (n_samples,), dtype=bool
        Flagged samples.
    suggested_labels_ : ndarray of shape (n_samples,)
        For flagged samples, the most probable other class under the
        out-of-sample probabilities; for the others, the given label.
    proba_ : ndarray of shape (n_samples, n_classes)
        The probabilities confident learning used (leave-one-out,
        cross-validated or in-sample depending on ``method``).
    noise_joint_ : ndarray of shape (n_classes, n_classes)
        Confident-learning estimate of the joint distribution of given
        (rows) and true (columns) labels.
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
    """

    _parameter_constraints = {
        "estimator": [None, HasMethods(["fit"])],
        "method": [StrOptions(set(METHODS))],
        "threshold": [StrOptions({"auto"}), Interval(numbers.Real, 0, 1, closed="left")],
        "action": [StrOptions(set(ACTIONS))],
        "filter_by": [StrOptions(set(cl.FILTERS))],
        "validation_data": [None, tuple, list],
        "cv": ["cv_object"],
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
        validation_data=None,
        cv=5,
        damping=0.0,
        n_jobs=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.method = method
        self.threshold = threshold
        self.action = action
        self.filter_by = filter_by
        self.validation_data = validation_data
        self.cv = cv
        self.damping = damping
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _template_estimator(self):
        return self.estimator if self.estimator is not None else _default_estimator()

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

    def _check_training(self, X, y, sample_weight):
        """Validated ``(X, y, codes, sample_weight)``; sets ``classes_``.

        Shapes, NaN and labels are checked here for clear errors; the dtype is kept (a
        pipeline may hold its own preprocessing of strings) and DataFrames go to the
        estimator as they are.
        """
        tags = self.__sklearn_tags__()
        X_checked, y_checked = validate_data(
            self, X, y, reset=True, accept_sparse=tags.input_tags.sparse,
            ensure_all_finite=not tags.input_tags.allow_nan, dtype=None,
            skip_check_array=hasattr(X, "iloc"),
        )
        check_consistent_length(X, y)
        if not hasattr(X, "iloc"):
            X, y = X_checked, y_checked
        y_arr = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
        if y_arr.ndim != 1:
            raise ValueError(f"y must be one-dimensional; got shape {y_arr.shape}.")
        if type_of_target(y_arr, input_name="y") not in ("binary", "multiclass"):
            check_classification_targets(y_arr)  # scikit-learn's message for continuous y
            raise ValueError("InfluenceCleaner needs binary or multiclass labels.")
        if y_arr.dtype.kind in "biuf":
            self.classes_, codes = np.unique(y_arr, return_inverse=True)
        else:  # objects: LabelEncoder's checks for mixed types and missing values
            encoder = LabelEncoder().fit(y_arr)
            self.classes_, codes = encoder.classes_, encoder.transform(y_arr)
        if self.classes_.shape[0] < 2:
            raise ValueError(
                f"y contains only 1 class ({self.classes_[0]!r}); cleaning needs at least two."
            )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, np.empty((codes.shape[0], 0)))
        return X, y, codes.astype(np.intp), sample_weight

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
        y : array-like of shape (n_samples,)
            Possibly noisy class labels (any hashable type, e.g. strings).
        X_val, y_val : array-like, default=None
            Trusted clean data, required by ``method="validation"`` and used by no
            other method.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : InfluenceCleaner
        """
        self._validate_params()
        if is_dask_collection(X):  # row blocks of dask arrays: _dask.py
            return fit_dask(self, X, y, X_val=X_val, y_val=y_val, sample_weight=sample_weight)
        X_val, y_val = self._validation_set(X_val, y_val)
        X, y, codes, sample_weight = self._check_training(X, y, sample_weight)
        if y_val is not None:
            y_val = np.asarray(y_val.to_numpy() if hasattr(y_val, "to_numpy") else y_val)
            unseen = np.setdiff1d(np.unique(y_val), self.classes_)
            if unseen.size:
                raise ValueError(f"y_val has labels not seen in training: {unseen!r}.")
        K = self.classes_.shape[0]
        t0 = time.perf_counter()
        self.influence_ = None
        if self.method in ("loo", "self_influence", "validation"):
            P = self._fit_influence(X, y, sample_weight, K)
        else:
            self.estimator_ = self._fit_estimator(X, y, sample_weight)
            if self.method == "loss":
                P = self._proba_of(self.estimator_, X, K)
            else:
                P = self._cross_val_proba(X, y, codes, sample_weight, K)
        self._log(f"probabilities in {time.perf_counter() - t0:.3f} s")
        if not np.all(np.isfinite(P)):
            raise FloatingPointError(
                "the out-of-sample probabilities contain NaN/inf; try damping > 0."
            )
        self.proba_ = P
        # scores: higher = more suspicious
        if self.method == "self_influence":
            scores = np.asarray(self.influence_.self_influence_, dtype=np.float64)
        elif self.method == "validation":
            scores = self._validation_scores(X_val, y_val, codes.shape[0])
        else:
            scores = cl.issue_scores(codes, P, "self_confidence")
        self.scores_ = scores
        self._flag(codes, P, scores)
        self._log(f"flagged {self.n_issues_} of {codes.shape[0]} samples")
        return self

    def _flag(self, codes, P, scores):
        """Set ``noise_joint_``, ``issues_``, ``n_issues_`` and ``suggested_labels_``."""
        n, K = P.shape
        joint = cl.confident_joint(codes, P)
        self.noise_joint_ = cl.estimate_joint(joint[0], np.bincount(codes, minlength=K))
        if isinstance(self.threshold, str):  # "auto"
            if self.method in ("loo", "loss", "cross_val"):
                issues = cl._label_issues(codes, P, self.filter_by, joint=joint)
            else:
                k = int(round(n * (1.0 - np.trace(self.noise_joint_))))
                issues = self._top(scores, k)
                if self.method == "validation":
                    issues &= scores > 0  # only points that actually hurt the trusted set
        else:
            issues = self._top(scores, int(round(self.threshold * n)))
        self.issues_ = issues
        self.n_issues_ = int(issues.sum())
        other = P.copy()
        other[np.arange(n), codes] = -np.inf
        self._alternative_codes = np.argmax(other, axis=1)
        self._codes = codes
        self.suggested_labels_ = self.classes_[np.where(issues, self._alternative_codes, codes)]

    @staticmethod
    def _top(scores, k):
        mask = np.zeros(scores.shape[0], dtype=bool)
        k = max(0, min(int(k), scores.shape[0]))
        if k:
            # stable order so ties break by index (reproducible)
            mask[np.argsort(-scores, kind="stable")[:k]] = True
        return mask

    def _fit_influence(self, X, y, sample_weight, K):
        # the influence objective is the final step's weighted loss: the weights must reach it
        self.estimator_ = self._fit_estimator(X, y, sample_weight, final_step=True)
        # a user's FrozenEstimator: fitted elsewhere, so its stationarity is checked
        user_frozen = isinstance(self.estimator_, FrozenEstimator)
        if self.method == "loo":
            P = leverage_loo_proba(self.estimator_, X, y, sample_weight, K, self.damping)
            if P is not None:
                return P
        from ..influence import InfluenceFunctions

        # the fitted model goes in frozen (a user's FrozenEstimator as it is): not refit
        fitted = self.estimator_
        if not user_frozen:
            fitted = FrozenEstimator(fitted)
        # "loo" ranks by probabilities and never refits (exact refits of the largest
        # changes cost many times the fit and do not move the flagged set); the score
        # methods keep the engine's default, whose scores_ are the documented influences
        infl = InfluenceFunctions(
            fitted,
            refine=0 if self.method == "loo" else "auto",
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
                stacklevel=4,
            )
        if hasattr(self.estimator_, "predict_proba"):
            P = np.asarray(infl.loo_predict_proba(), dtype=np.float64)
        else:
            P = scores_to_proba(infl.loo_decision_function(), K)
        return P

    @staticmethod
    def _proba_of(est, X, K):
        if hasattr(est, "predict_proba"):
            return np.asarray(est.predict_proba(X), dtype=np.float64)
        return scores_to_proba(est.decision_function(X), K)

    def _cross_val_proba(self, X, y, codes, sample_weight, K):
        cv = self.cv
        if isinstance(cv, numbers.Integral):
            min_count = np.bincount(codes, minlength=K).min()
            if min_count < cv:
                raise ValueError(
                    f"method='cross_val' with cv={cv} needs at least {cv} samples per class; "
                    f"the smallest class has {min_count}."
                )
            cv = StratifiedKFold(cv, shuffle=True, random_state=0)
        # a frozen model's clone is itself: the folds need fresh fits of what it wraps
        estimator = self._template_estimator()
        fold_model, params = routed_for_cv(clone(unwrap_frozen(estimator)), sample_weight)
        method = "predict_proba" if hasattr(estimator, "predict_proba") else "decision_function"
        out = cross_val_predict(
            fold_model, X, y, cv=cv, method=method, n_jobs=self.n_jobs, params=params,
        )
        if method == "predict_proba":
            return np.asarray(out, dtype=np.float64)
        return scores_to_proba(out, K)

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
        y : array-like of shape (n_samples,)
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
            ``suggested_labels_`` (``action="relabel"``).  A Series keeps its
            index and name, a list stays a list, others become ndarrays.
        """
        self.fit(X, y, X_val=X_val, y_val=y_val, sample_weight=sample_weight)
        return self._apply(X, y, self.issues_)

    def _apply(self, X, y, mask, action=None):
        action = self.action if action is None else action
        if action == "remove":
            keep = ~mask
            return take_rows_like(X, keep), take_rows_like(y, keep)
        new_codes = np.where(mask, self._alternative_codes, self._codes)
        return X, replace_labels(y, self.classes_[new_codes])

    def get_mask(self):
        """Boolean mask of flagged samples (``issues_``)."""
        check_is_fitted(self, "issues_")
        return self.issues_
