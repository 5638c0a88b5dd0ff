"""CleanClassifier: fit, remove or relabel flagged points, refit."""

import numbers
import warnings

import numpy as np
from sklearn.base import ClassifierMixin, clone
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, check_memory

from ..base import BaseExplainer, estimator_has
from ..objectives import unwrap_frozen
from ..utils._deprecation import positional_deprecated
from ._cleaner import InfluenceCleaner, _default_estimator
from ._regression import is_regression_task

__all__ = ["CleanClassifier"]


def _fit_cleaner(cleaner, X, y, X_val, y_val, sample_weight):
    # module-level so that joblib.Memory can key its cache on the arguments; the
    # validation set only when given (a cleaner's fit may predate these parameters)
    val = {} if X_val is None and y_val is None else {"X_val": X_val, "y_val": y_val}
    return cleaner.fit(X, y, sample_weight=sample_weight, **val)


class CleanClassifier(ClassifierMixin, BaseExplainer):
    """Classifier trained on its own data with suspected label errors removed or fixed.

    ``fit`` runs ``cleaner`` on the training data, removes (or relabels) the
    flagged points, then fits a fresh clone of ``estimator`` on the result.
    Because ``fraction`` is an ordinary hyper-parameter,
    ``GridSearchCV(CleanClassifier(model), {"fraction": [0, .05, .1, .2]})``
    searches over cleaned subsets of the training data, scored on held-out
    folds that are *not* cleaned.

    Parameters
    ----------
    estimator : classifier, default=None
        The final model (unfitted). ``None`` means ``LogisticRegression(max_iter=1000)``.
        A model already fitted on the training data can come wrapped in
        :class:`~sklearn.frozen.FrozenEstimator`: the cleaner then scores
        with it as it is (no fit), and the final model is a fresh clone of the
        estimator it wraps, fitted on the cleaned data.
    cleaner : InfluenceCleaner, default=None
        The cleaner; ``None`` means ``InfluenceCleaner(estimator)`` (approximate
        leave-one-out probabilities + confident learning).  Its ``action``
        (``"remove"`` or ``"relabel"``) is used.
    fraction : float in [0, 1) or None, default=None
        ``None``: clean the points the cleaner flags (its threshold).  A
        float: clean that fraction of the training set with the highest
        ``scores_`` (``0`` refits on the data as given).
    memory : str, joblib.Memory or None, default=None
        Caches the fitted cleaner, keyed on the training data and the
        cleaner's parameters (as ``Pipeline(memory=...)`` caches
        transformers).  In a grid search over ``fraction`` or over parameters
        of the final fit only, the cleaner then runs once per fold instead of
        once per candidate and fold.  A string is a cache directory.
    n_jobs : int, default=None
        Passed to the default cleaner (``cleaner=None``); a given cleaner uses its own.
    verbose : int, default=0
        Passed to the default cleaner (``cleaner=None``); a given cleaner uses its own.

    Attributes
    ----------
    cleaner_ : InfluenceCleaner
        The fitted cleaner.
    estimator_ : estimator
        The estimator fitted on the cleaned data.
    classes_ : ndarray of shape (n_classes,)
    cleaned_mask_ : ndarray of shape (n_samples,), dtype=bool
        Training points removed or relabelled.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when ``X`` has string column names.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skinfluence import CleanClassifier
    >>> from skinfluence.datasets import make_noisy_labels
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> y_noisy, _ = make_noisy_labels(y, 0.2, random_state=0)
    >>> model = make_pipeline(StandardScaler(), LogisticRegression())
    >>> grid = {"fraction": [0.0, 0.1, 0.2, None]}  # None: the cleaner's own threshold
    >>> search = GridSearchCV(CleanClassifier(model), grid, cv=3).fit(X, y_noisy)
    >>> search.best_params_["fraction"] in grid["fraction"]
    True
    >>> search.best_estimator_.cleaned_mask_.shape
    (569,)

    With ``memory``, the cleaner runs once per fold, not once per candidate:

    >>> from tempfile import mkdtemp
    >>> cached = CleanClassifier(model, memory=mkdtemp())
    >>> cached_search = GridSearchCV(cached, grid, cv=3).fit(X, y_noisy)
    >>> cached_search.best_params_ == search.best_params_
    True
    """

    _parameter_constraints = {
        "estimator": [None, HasMethods(["fit"])],
        "cleaner": [None, InfluenceCleaner],
        "fraction": [None, Interval(numbers.Real, 0, 1, closed="left")],
        "memory": [None, str, HasMethods(["cache"])],
        "n_jobs": [None, numbers.Integral],
        "verbose": ["verbose"],
    }

    @positional_deprecated("cleaner", "fraction", "memory")
    def __init__(self, estimator=None, *, cleaner=None, fraction=None, memory=None,
                 n_jobs=None, verbose=0):
        self.estimator = estimator
        self.cleaner = cleaner
        self.fraction = fraction
        self.memory = memory
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _template_estimator(self):
        return self.estimator if self.estimator is not None else _default_estimator()

    def _make_cleaner(self):
        """The unfitted cleaner: ``cleaner`` (given the estimator if it has none), or the
        default one on ``estimator`` with this classifier's ``n_jobs`` and ``verbose``."""
        estimator = self._template_estimator()
        if self.cleaner is None:
            return InfluenceCleaner(clone(estimator), n_jobs=self.n_jobs, verbose=self.verbose)
        cleaner = clone(self.cleaner)
        if cleaner.estimator is None:
            cleaner.set_params(estimator=clone(estimator))
        return cleaner

    @positional_deprecated("sample_weight")
    def fit(self, X, y, *, X_val=None, y_val=None, sample_weight=None):
        """Clean the training data, then fit the estimator on it.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        X_val, y_val : array-like, default=None
            Trusted clean data for a cleaner with ``method="validation"``
            (see :meth:`InfluenceCleaner.fit`).
        sample_weight : array-like of shape (n_samples,), default=None
            Used by the cleaner and, for kept points, by the final fit.

        Returns
        -------
        self : CleanClassifier
        """
        self._validate_params()
        if is_regression_task(self.estimator, y):
            raise ValueError(
                "CleanClassifier cleans class labels; y is a regression target or the "
                "estimator a regressor. Clean regression targets with "
                "InfluenceCleaner(regressor).fit_resample(X, y) and fit on the result.")
        memory = check_memory(self.memory)
        with warnings.catch_warnings():
            if self.fraction is not None:  # the cleaner's own threshold is not used
                warnings.filterwarnings("ignore", message=".*confident learning \\(threshold")
            cleaner = memory.cache(_fit_cleaner)(self._make_cleaner(), X, y, X_val, y_val,
                                                 sample_weight)
        self.cleaner_ = cleaner
        if self.fraction is None:
            mask = cleaner.issues_
        else:
            n_clean = int(round(self.fraction * cleaner.scores_.shape[0]))
            mask = cleaner._top(cleaner.scores_, n_clean)
        self.cleaned_mask_ = mask
        same_model = self.cleaner is None or self.cleaner.estimator is None
        if same_model and not mask.any():
            # nothing cleaned: the cleaner already fitted this estimator on this data
            self.estimator_ = cleaner.estimator_
        else:
            X_fit, y_fit = cleaner._apply(X, y, mask)
            sw = sample_weight
            if sw is not None and cleaner.action == "remove":
                sw = np.asarray(sw)[~mask]
            # a frozen model is the one fitted on the noisy data; the cleaned fit is a new one
            estimator = unwrap_frozen(self._template_estimator())
            self.estimator_ = self._fit_estimator(X_fit, y_fit, sw, estimator=estimator)
        self.classes_ = cleaner.classes_
        self.n_features_in_ = cleaner.n_features_in_
        if hasattr(cleaner, "feature_names_in_"):
            self.feature_names_in_ = cleaner.feature_names_in_
        return self

    # the wrapped model's score (accuracy for classifiers), like every explainer
    score = BaseExplainer.score

    @available_if(estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the estimator fitted on the cleaned data.

        Columns follow ``classes_``; a class that cleaning removed entirely
        gets probability zero.
        """
        check_is_fitted(self)
        return self._align(self.estimator_.predict_proba(X))

    @available_if(estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities (see :meth:`predict_proba`)."""
        check_is_fitted(self)
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def _align(self, P):
        est_classes = getattr(self.estimator_, "classes_", self.classes_)
        if len(est_classes) == len(self.classes_):
            return P
        out = np.zeros((P.shape[0], len(self.classes_)))
        out[:, np.searchsorted(self.classes_, est_classes)] = P
        return out
