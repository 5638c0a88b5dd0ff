"""Approximate leave-one-out values and group removal effects from influence functions."""

import numbers

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import _num_samples, check_is_fitted

from ..influence._blocks import mean_influence
from ..influence._boosting import APPROXIMATIONS as _BOOSTING_APPROXIMATIONS
from ..influence._boosting import is_boosted
from ..influence._forest import TREE_APPROXIMATIONS as _TREE_APPROXIMATIONS
from ..influence._forest import is_tree_model
from ..influence._group import predict_removal_effect, removal_parameter_change  # noqa: F401
from ..utils._output import TrainingColumnsMixin, check_dense_output, row_labels
from ._base import BaseValuation, check_groups, check_validation

# validation rows x training points of influence values per block (32 MiB of float64;
# transform's temporaries about double it)
_BLOCK_ENTRIES = 1 << 22


def _tree_ensemble(estimator):
    """Whether ``estimator`` (bare, frozen or a Pipeline's last step) is a tree model."""
    from ..objectives import unwrap_frozen

    return is_tree_model(estimator) or is_boosted(unwrap_frozen(estimator))


class InfluenceValuation(TrainingColumnsMixin, TransformerMixin, BaseValuation):
    """Approximate leave-one-out values from influence functions: no refits.

    Wraps :class:`skinfluence.InfluenceFunctions`.  The value of training point
    ``j`` is the predicted increase of the mean validation *loss* when ``j``
    is removed and the model refit (the loss the estimator minimises, e.g.
    the log-loss for logistic regression) -- not of a scorer such as
    accuracy, which has no useful derivative.  With ``groups``, each group is
    removed as a whole and the effect predicted by :func:`predict_removal_effect`.

    Parameters
    ----------
    estimator : estimator
        A model supported by :mod:`skinfluence.objectives`, a tree or forest
        (``DecisionTree*``, ``ExtraTree*``, ``RandomForest*``, ``ExtraTrees*``) or a
        ``HistGradientBoosting*`` model, or a Pipeline ending in one.
    approximation : {"auto", "newton", "first_order", "exact", "fixed_structure", \
            "leaf_refit", "leaf_influence", "boostin"}, default="auto"
        Passed to :class:`~skinfluence.InfluenceFunctions`.  ``"auto"``: ``"newton"``
        for models with parameters, ``"exact"`` (every tree regrown without the point)
        for trees and forests, ``"leaf_influence"`` for gradient boosting.  The tree
        approximations apply to their family only (trees and forests: ``"exact"``,
        ``"fixed_structure"``; gradient boosting: ``"leaf_refit"``,
        ``"leaf_influence"``, ``"boostin"``); another combination raises a
        ``ValueError`` naming the approximations of the model.
    group_order : {1, 2}, default=2
        Order of the group removal prediction when ``groups`` is given.
    solver : str, default="auto"
    damping : float, default=0.0
    n_jobs : int, default=None
    verbose : int, default=0

    Attributes
    ----------
    values_ : ndarray of shape (n_players,)
        Mean predicted validation loss increase on removal (positive: helps).
    influence_ : InfluenceFunctions
        The fitted influence engine (``transform`` delegates to it).
    estimator_ : estimator
        The fitted model (``predict``/``score`` delegate to it).
    group_labels_ : ndarray
        The distinct groups, when ``groups`` was passed to ``fit``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.valuation import InfluenceValuation
    >>> X, y = make_classification(n_samples=120, n_features=4, random_state=0)
    >>> iv = InfluenceValuation(LogisticRegression())
    >>> iv = iv.fit(X[:100], y[:100], X_val=X[100:], y_val=y[100:])
    >>> iv.values_.shape
    (100,)
    """

    _parameter_constraints = {
        "estimator": [object],
        "approximation": [StrOptions({"auto", "newton", "first_order", *_TREE_APPROXIMATIONS,
                                      *_BOOSTING_APPROXIMATIONS})],
        "group_order": [numbers.Integral],
        "solver": [object],
        "damping": [numbers.Real],
        "n_jobs": [None, numbers.Integral],
        "verbose": ["verbose"],
    }

    def __init__(self, estimator, *, approximation="auto", group_order=2, solver="auto",
                 damping=0.0, n_jobs=None, verbose=0):
        self.estimator = estimator
        self.approximation = approximation
        self.group_order = group_order
        self.solver = solver
        self.damping = damping
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X, y, *, X_val=None, y_val=None, sample_weight=None, groups=None):
        """Fit the model once and predict every point's (or group's) leave-out effect.

        Parameters
        ----------
        X : array-like of shape (n_train, n_features)
        y : array-like of shape (n_train,)
        X_val, y_val : array-like
            Validation set (required).
        sample_weight : array-like of shape (n_train,), default=None
        groups : array-like of shape (n_train,), default=None

        Returns
        -------
        self
        """
        from skinfluence.influence import InfluenceFunctions

        self._validate_params()
        if int(self.group_order) not in (1, 2):
            raise ValueError(f"group_order must be 1 or 2, got {self.group_order!r}.")
        if self.approximation == "boostin_contribution_greedy":
            # its values are marginals at each query's own removal state: not one row's effect
            raise ValueError(
                "approximation='boostin_contribution_greedy' orders rows per query (its "
                "values are marginals after different removals), so they do not average into "
                "a row's value; use 'boostin_contribution' or 'leaf_influence'.")
        self.influence_ = InfluenceFunctions(
            self.estimator, approximation=self._approximation(), solver=self.solver,
            damping=self.damping, n_jobs=self.n_jobs, verbose=self.verbose,
        ).fit(X, y, sample_weight=sample_weight)
        self.estimator_ = self.influence_.estimator_
        self.n_features_in_ = self.influence_.n_features_in_
        if hasattr(self.influence_, "feature_names_in_"):
            self.feature_names_in_ = self.influence_.feature_names_in_
        n_train = self.influence_.objective_.n_train
        self._output_labels = row_labels(X, n_train)
        X_checked, y_val = check_validation(self, X_val, y_val, required=True)
        # a DataFrame goes on as it is: the model (and a pipeline's steps) saw its column names
        if not hasattr(X_val, "iloc"):
            X_val = X_checked
        labels, members = check_groups(groups, n_train)
        if labels is None:
            # blockwise: never the n_val x n_train matrix
            self.values_ = mean_influence(self.influence_, X_val, y_val, _BLOCK_ENTRIES)
        else:
            order = int(self.group_order)
            self.values_ = np.array([
                predict_removal_effect(self.influence_, m, X_val, y_val, order=order).mean()
                for m in members
            ])
            self.group_labels_ = labels
        return self

    def _approximation(self):
        """``approximation`` for :class:`InfluenceFunctions`: ``"auto"`` is ``"newton"`` for
        models with parameters (the default before tree models were accepted) and the
        engine's own default for tree ensembles."""
        if self.approximation != "auto" or _tree_ensemble(self.estimator):
            return self.approximation
        return "newton"

    def transform(self, X, y=None):
        """Per-sample attributions: predicted loss change at each sample when each point is removed.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            Targets of the samples; without them the attributions are those of the
            model's output (see :meth:`InfluenceFunctions.transform
            <skinfluence.InfluenceFunctions.transform>`).

        Returns
        -------
        ndarray of shape (n_samples, n_train)
        """
        check_is_fitted(self, "values_")
        check_dense_output(_num_samples(X), self.influence_.objective_.n_train,
                           type(self).__name__, explain="influence_.explain")
        return self.influence_.transform(X, y)
