"""The regression path of :class:`~skinfluence.InfluenceCleaner` (a mixin of it)."""

import numbers
import time

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.utils import check_array
from sklearn.utils.validation import _check_sample_weight

from ..objectives import unwrap_frozen
from ..trees._oob import bagged_forest, oob_predict
from ..utils._routing import routed_for_cv
from ._loo import leverage_loo_outputs
from ._regression import combined_scores, robust_z, signed_residuals, tweedie_power

__all__ = ["RegressionCleaning", "forget_regression"]

_CLASSIFICATION_ATTRS = ("classes_", "proba_", "noise_joint_")
_REGRESSION_ATTRS = ("predictions_", "z_scores_")


def _forget(est, names):
    """Drop the fitted attributes of the other task left by an earlier fit."""
    for name in names:
        vars(est).pop(name, None)


def forget_regression(est):
    """Drop the attributes of an earlier regression fit (before a classification fit)."""
    _forget(est, _REGRESSION_ATTRS)


def _predictions(obj, Z, n_targets):
    """Predictions ``(n, n_targets)`` from raw outputs: for one target, the model's
    prediction from its outputs (the inverse link of a GLM; a HuberRegressor's first
    output, its second being the scale); several targets are least-squares targets,
    predicted by the outputs themselves."""
    if n_targets == 1:
        return np.asarray(obj.prediction_from_outputs(Z), dtype=np.float64)[:, None]
    return np.asarray(Z, dtype=np.float64)


class RegressionCleaning:
    """``fit`` of :class:`~skinfluence.InfluenceCleaner` on regression targets.

    Sets ``predictions_`` (leave-one-out, in-sample or cross-validated, by ``method``),
    ``z_scores_`` (their standardised residuals, see :mod:`._regression`), ``scores_``,
    ``issues_``, ``n_issues_`` and ``suggested_labels_``.
    """

    def _fit_regression(self, X, y, X_val, y_val, sample_weight):
        X, y, Y = self._check_xy(X, y, regression=True)
        Y = np.asarray(Y, dtype=np.float64)
        Y2 = Y.reshape(Y.shape[0], -1)
        n = Y2.shape[0]
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, np.empty((n, 0)))
        if y_val is not None:
            y_val = check_array(y_val, ensure_2d=False, dtype=np.float64, input_name="y_val")
        _forget(self, _CLASSIFICATION_ATTRS)
        t0 = time.perf_counter()
        self.influence_ = None
        leverage = None
        if self.method in ("loo", "self_influence", "validation"):
            pred, leverage = self._regression_loo(X, y, sample_weight, Y2.shape[1])
        else:
            self.estimator_ = self._fit_estimator(X, y, sample_weight)
            if self.method == "loss":
                pred = self.estimator_.predict(X)
            else:
                pred = self._cross_val_predictions(X, y, sample_weight)
        pred = np.asarray(pred, dtype=np.float64).reshape(Y2.shape)
        self._log(f"predictions in {time.perf_counter() - t0:.3f} s")
        if not np.all(np.isfinite(pred)):
            raise FloatingPointError(
                "the leave-one-out predictions contain NaN/inf; try damping > 0."
            )
        power = tweedie_power(self.estimator_)
        u = signed_residuals(Y2, pred, power)
        reference = signed_residuals(Y2, np.broadcast_to(Y2.mean(axis=0), Y2.shape), power)
        z, _ = robust_z(u, leverage, reference, stacklevel=4)
        z_scores = combined_scores(z)
        if self.method == "self_influence":
            scores = np.asarray(self.influence_.self_influence_, dtype=np.float64)
        elif self.method == "validation":
            scores = self._validation_scores(X_val, y_val, n)
        else:
            scores = z_scores
        single = Y.ndim == 1
        self.predictions_ = pred[:, 0] if single else pred
        self.z_scores_ = z[:, 0] if single else z
        self._targets = Y
        self.scores_ = scores
        self._flag_regression(scores, z_scores)
        self._log(f"flagged {self.n_issues_} of {n} samples")
        return self

    def _regression_loo(self, X, y, sample_weight, n_targets):
        """``(leave-one-out predictions (n, K), leverages (n, K) or None)``; fits
        ``estimator_`` (and ``influence_`` outside the leverage fast path)."""
        # the influence objective is the final step's weighted loss: the weights must reach it
        self.estimator_ = self._fit_estimator(X, y, sample_weight, final_step=True)
        if self.method == "loo" and bagged_forest(self.estimator_) is not None:
            return oob_predict(self.estimator_, X)[:, None], None  # out-of-bag: no refit
        # the score methods flag as many rows as the leave-one-out rule: the same
        # (leverage-corrected) residuals as method="loo" wherever the fast path applies
        out = leverage_loo_outputs(self.estimator_, X, y, sample_weight, self.damping,
                                   depth=5, return_leverage=True)
        if self.method != "loo":
            infl = self._influence_engine(X, y, sample_weight)
        if out is not None:
            obj, Z_loo, leverage = out
            return _predictions(obj, Z_loo, n_targets), leverage
        if self.method == "loo":
            infl = self._influence_engine(X, y, sample_weight)
        return _predictions(infl.objective_, infl.loo_decision_function(), n_targets), None

    def _cross_val_predictions(self, X, y, sample_weight):
        cv = self.cv
        n = len(y)
        if isinstance(cv, numbers.Integral):
            if n < cv:
                raise ValueError(f"method='cross_val' with cv={cv} needs at least {cv} "
                                 f"samples; got {n}.")
            cv = KFold(cv, shuffle=True, random_state=0)
        # a frozen model's clone is itself: the folds need fresh fits of what it wraps
        estimator = clone(unwrap_frozen(self._template_estimator()))
        fold_model, params = routed_for_cv(estimator, sample_weight)
        return cross_val_predict(fold_model, X, y, cv=cv, n_jobs=self.n_jobs, params=params)

    def _flag_regression(self, scores, z_scores):
        """Set ``issues_``, ``n_issues_`` and ``suggested_labels_``."""
        n = scores.shape[0]
        if isinstance(self.threshold, str):  # "auto"
            if self.method in ("loo", "loss", "cross_val"):
                issues = z_scores > self.z_threshold
            else:  # as many top-scored rows as the leave-one-out rule flags
                issues = self._top(scores, int((z_scores > self.z_threshold).sum()))
                if self.method == "validation":
                    issues &= scores > 0  # only rows that actually hurt the trusted set
        else:
            issues = self._top(scores, int(round(self.threshold * n)))
        self.issues_ = issues
        self.n_issues_ = int(issues.sum())
        self.suggested_labels_ = self._relabelled(issues)

    def _relabelled(self, mask):
        """The targets with the rows of ``mask`` replaced by their ``predictions_``."""
        m = mask if self._targets.ndim == 1 else mask[:, None]
        return np.where(m, self.predictions_, self._targets)
