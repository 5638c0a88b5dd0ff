"""The classification path of :class:`~skinfluence.InfluenceCleaner` (a mixin of it):
out-of-sample class probabilities and confident learning."""

import numbers
import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight

from . import _confident as cl
from ..influence._boosting import is_boosted
from ..objectives import unwrap_frozen
from ..trees._oob import all_tree_proba, bagged_forest, oob_proba
from ..utils._routing import routed_for_cv
from ._confident_kernels import best_other_class
from ._containers import scores_to_proba
from ._loo import leverage_loo_proba

__all__ = ["ClassificationCleaning"]


def _unique_integers(y):
    """``np.unique(y, return_inverse=True)`` for integer labels, by counting instead of
    sorting when their range is at most a few times their number (the usual case)."""
    lo, hi = int(y.min()), int(y.max())
    if hi - lo > 4 * y.shape[0] + 1024:
        return np.unique(y, return_inverse=True)
    shifted = (y - lo).astype(np.intp, copy=False) if lo else y.astype(np.intp, copy=False)
    present = np.bincount(shifted, minlength=hi - lo + 1) > 0
    classes = np.flatnonzero(present)
    index = np.cumsum(present) - 1
    return (classes + lo).astype(y.dtype, copy=False), index[shifted]


class ClassificationCleaning:
    """``fit`` of :class:`~skinfluence.InfluenceCleaner` on class labels.

    Sets ``classes_``, ``proba_``, ``noise_joint_``, ``scores_``, ``issues_``,
    ``n_issues_`` and ``suggested_labels_``.
    """

    def _fit_classification(self, X, y, X_val, y_val, sample_weight):
        X, y, codes, sample_weight = self._check_training(X, y, sample_weight)
        if y_val is not None:
            y_val = np.asarray(y_val.to_numpy() if hasattr(y_val, "to_numpy") else y_val)
            unseen = np.setdiff1d(np.unique(y_val), self.classes_)
            if unseen.size:
                raise ValueError(f"y_val has labels not seen in training: {unseen!r}.")
        K = self.classes_.shape[0]
        t0 = time.perf_counter()
        self.influence_ = None
        self._rank_proba = None  # a bagged forest's all-tree probabilities (_fit_influence)
        if self.method in ("loo", "self_influence", "validation"):
            P = self._fit_influence(X, y, sample_weight, K, codes)
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
            rank = P if self._rank_proba is None else self._rank_proba
            scores = cl.issue_scores(codes, rank, "self_confidence")
        self.scores_ = scores
        self._flag(codes, P, scores, rank=self._rank_proba)
        self._log(f"flagged {self.n_issues_} of {codes.shape[0]} samples")
        return self

    def _check_training(self, X, y, sample_weight):
        """Validated ``(X, y, codes, sample_weight)``; sets ``classes_``."""
        X, y, y_arr = self._check_xy(X, y)
        if y_arr.ndim != 1:
            raise ValueError(f"y must be one-dimensional; got shape {y_arr.shape}.")
        if type_of_target(y_arr, input_name="y") not in ("binary", "multiclass"):
            try:
                check_classification_targets(y_arr)  # scikit-learn's message
            except ValueError as exc:
                raise ValueError(
                    f"{exc} InfluenceCleaner cleans the labels of a classifier here; pass "
                    "a regressor (e.g. Ridge()) to clean regression targets.") from None
            raise ValueError("InfluenceCleaner needs binary or multiclass labels.")
        if y_arr.dtype.kind in "iu" and y_arr.size:
            self.classes_, codes = _unique_integers(y_arr)
        elif y_arr.dtype.kind in "biuf":
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

    def _flag(self, codes, P, scores, rank=None):
        """Set ``noise_joint_``, ``issues_``, ``n_issues_`` and ``suggested_labels_``;
        ``rank``: probabilities that order the rows within confident learning's counts."""
        n, K = P.shape
        joint = cl.confident_joint(codes, P)
        self.noise_joint_ = cl.estimate_joint(joint[0], np.bincount(codes, minlength=K))
        if isinstance(self.threshold, str):  # "auto"
            if self.method in ("loo", "loss", "cross_val"):
                issues = cl._label_issues(codes, P, self.filter_by, joint=joint, rank=rank)
            else:
                k = int(round(n * (1.0 - np.trace(self.noise_joint_))))
                issues = self._top(scores, k)
                if self.method == "validation":
                    issues &= scores > 0  # only points that actually hurt the trusted set
        else:
            issues = self._top(scores, int(round(self.threshold * n)))
        self.issues_ = issues
        self.n_issues_ = int(issues.sum())
        self._alternative_codes = best_other_class(P, codes)
        self._codes = codes
        self.suggested_labels_ = self.classes_[np.where(issues, self._alternative_codes, codes)]

    def _fit_influence(self, X, y, sample_weight, K, codes):
        # the influence objective is the final step's weighted loss: the weights must reach it
        self.estimator_ = self._fit_estimator(X, y, sample_weight, final_step=True)
        if self.method == "loo" and bagged_forest(self.estimator_) is not None:
            if self.forest_trees == "out_of_bag":
                return oob_proba(self.estimator_, X)  # a bagged forest: out-of-bag probabilities
            # confident learning counts on the out-of-bag probabilities (unbiased) and ranks
            # by those of every tree (the ones that saw a row through their leave-one-out
            # read: lower variance, biased towards the given label)
            forest = bagged_forest(self.estimator_)[1]
            if not np.array_equal(forest.classes_, self.classes_):
                raise ValueError(f"the forest was fitted on the classes {forest.classes_!r}; "
                                 f"y has {self.classes_!r}: pass the labels it was fitted on.")
            P_all, P_oob = all_tree_proba(self.estimator_, X, codes)
            self._rank_proba = P_all
            return P_oob
        if self.method == "loo":
            P = leverage_loo_proba(self.estimator_, X, y, sample_weight, K, self.damping)
            if P is not None:
                return P
        infl = self._influence_engine(X, y, sample_weight)
        if self.method == "loo" and isinstance(self.threshold, str) and is_boosted(
                unwrap_frozen(self.estimator_)):
            warnings.warn(
                "gradient-boosted trees: the leave-one-out probabilities keep every tree's "
                "splits, including those grown around the row itself, so they stay close to "
                "the in-sample ones and confident learning (threshold='auto') may flag few "
                "mislabelled rows. scores_ still ranks them: pass threshold=<fraction to "
                "flag> (CleanClassifier(fraction=...)), or method='cross_val' (refits).",
                UserWarning, stacklevel=5)
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

