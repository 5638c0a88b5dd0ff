"""Shared machinery of the valuation estimators: the base, input checks, the subset utility."""

import numbers
import warnings
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import clone, is_classifier
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import check_scoring
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing, check_random_state, get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    _check_y,
    _num_samples,
    check_consistent_length,
    validate_data,
)
from threadpoolctl import threadpool_limits

from ..base import BaseExplainer
from ..objectives import unwrap_frozen
from ..utils._progress import progress
from ..utils._routing import fit_weighted


def _one_blas_thread(func, *args):
    # many small fits: BLAS threads only add contention (the parallelism is across tasks)
    with threadpool_limits(limits=1):
        return func(*args)


class BaseValuation(BaseExplainer):
    """Base of the valuation estimators: tags, delegation to the model fitted on all the
    training points (``estimator_``), and the task runner of the refits."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # values are changes of a score of (X, y)
        tags.target_tags.single_output = True  # y is validated as one column
        tags.target_tags.multi_output = False
        if tags.classifier_tags is not None:
            tags.classifier_tags = replace(tags.classifier_tags, multi_label=False)
        return tags

    def _run_tasks(self, func, tasks, desc, *, prefer=None, verbose=None):
        """``[func(*args) for args in tasks]`` through joblib with ``n_jobs`` (any backend,
        e.g. dask; ``prefer="threads"`` for tasks that release the GIL), each task on one
        BLAS thread, a progress bar over the tasks dispatched under ``verbose`` (default:
        the estimator's)."""
        tasks = list(tasks)
        verbose = self.verbose if verbose is None else verbose
        jobs = (delayed(_one_blas_thread)(func, *args)
                for args in progress(tasks, desc=desc, verbose=verbose))
        return Parallel(n_jobs=self.n_jobs, prefer=prefer)(jobs)

    def _task_chunks(self, n):
        """``range(n)`` split into about ``4 n_jobs`` consecutive index arrays."""
        n_chunks = min(n, 4 * max(1, effective_n_jobs(self.n_jobs)))
        return np.array_split(np.arange(n), n_chunks)


# ---------------------------------------------------------------- inputs
def takes_raw_input(estimator):
    """Whether ``estimator`` validates its own ``X``: the valuation passes ``X`` on as given.

    True for a Pipeline (its steps may encode strings or impute missing values) and
    for estimators whose tags accept strings, categories, dicts or NaN; False for
    plain numeric estimators (and duck-typed ones without tags), whose ``X`` is
    validated here as a finite numeric array.  A FrozenEstimator is judged by the
    model it wraps.
    """
    estimator = unwrap_frozen(estimator)
    if isinstance(estimator, Pipeline):
        return True
    try:
        tags = get_tags(estimator).input_tags
    except (AttributeError, TypeError, ValueError):
        return False
    return bool(tags.string or tags.categorical or tags.dict or tags.allow_nan)


def check_inputs(est, X, y, *, reset, accept_sparse="csr", y_numeric=False):
    """Validate ``(X, y)`` for ``est.estimator``; sparse ``X`` becomes CSR (row-indexable).

    With :func:`takes_raw_input` ``X`` keeps its type, dtype and missing values
    (DataFrames, object arrays, lists): only its length (against ``y``) and feature
    names/count are checked here; the wrapped estimator validates it.  Rows are taken
    with :func:`take_rows`.
    """
    if not takes_raw_input(getattr(est, "estimator", None)):
        return validate_data(est, X, y, reset=reset, accept_sparse=accept_sparse,
                             ensure_all_finite=True, y_numeric=y_numeric, multi_output=False)
    if sp.issparse(X):
        if not accept_sparse:
            # scikit-learn's message for a model without sparse support
            return validate_data(est, X, y, reset=reset, accept_sparse=False)
        X = X.tocsr()
    validate_data(est, X, reset=reset, skip_check_array=True)  # feature names and count
    y = _check_y(y, multi_output=False, y_numeric=y_numeric, estimator=est)
    check_consistent_length(X, y)
    return X, y


def take_rows(X, idx):
    """Rows ``idx`` of ``X`` (array, CSR matrix, DataFrame or list)."""
    if isinstance(X, np.ndarray):
        return X[idx]
    return _safe_indexing(X, idx)


def check_train(est, X, y, sample_weight, *, reset=True, accept_sparse="csr", y_numeric=False,
                class_targets=None):
    """Validate the training set (see :func:`check_inputs`), the classes of a classifier's
    targets (``class_targets``: None means ``is_classifier(est)``) and the sample weights."""
    X, y = check_inputs(est, X, y, reset=reset, accept_sparse=accept_sparse, y_numeric=y_numeric)
    if is_classifier(est) if class_targets is None else class_targets:
        check_classification_targets(y)  # "Unknown label type" for continuous or object y
    if sample_weight is not None:
        # lists, pandas Series; checks shape, finiteness, negativity; always a fresh copy
        sample_weight = _check_sample_weight(sample_weight, np.empty((_num_samples(X), 0)),
                                             dtype=np.float64, ensure_non_negative=True,
                                             copy=True)
    return X, y, sample_weight


def check_validation(est, X_val, y_val, *, required, name="X_val"):
    """Validate the validation set against the training features; ``None`` when absent."""
    if X_val is None and y_val is None:
        if required:
            raise ValueError(
                f"{type(est).__name__} needs a validation set: pass X_val= and y_val= to fit. "
                "Values measure how much each training point improves the score on it; "
                "valuing on the training set itself would reward memorisation."
            )
        return None, None
    if X_val is None or y_val is None:
        raise ValueError("Pass both X_val and y_val, or neither.")
    return check_inputs(est, X_val, y_val, reset=False)


def check_groups(groups, n_samples):
    """``groups`` -> (labels, list of index arrays); ``None``: one point per player."""
    if groups is None:
        return None, None
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != n_samples:
        raise ValueError(
            f"groups must have shape ({n_samples},), got {groups.shape}."
        )
    labels, inverse = np.unique(groups, return_inverse=True)
    if labels.shape[0] < 2:
        raise ValueError("groups must contain at least two distinct groups.")
    members = [np.flatnonzero(inverse == g) for g in range(labels.shape[0])]
    return labels, members


def spawn_seeds(random_state, n):
    """``n`` independent integer seeds derived reproducibly from ``random_state``."""
    rng = check_random_state(random_state)
    base = int(rng.randint(np.iinfo(np.int32).max))
    return [np.random.SeedSequence(base, spawn_key=(i,)) for i in range(n)]


# --------------------------------------------------------------- utility
class SubsetUtility:
    """``U(S)``: score on the validation set of the estimator refitted on the subset ``S``.

    Subsets on which the estimator cannot be fitted meaningfully are defined
    explicitly instead of failing:

    * the empty set has utility ``empty_score`` (default: for classifiers, the
      mean score of the constant predictors of each class, i.e. an uninformed
      guess; for regressors, the score of predicting the training mean);
      so has a subset whose points all have sample weight 0 (nothing to fit);
    * a subset whose points all carry one class has the utility of the
      constant predictor of that class (a classifier cannot learn more from it).

    ``players`` are indices into ``members`` (groups) or training indices.
    """

    def __init__(self, estimator, X, y, X_val, y_val, *, scoring=None, sample_weight=None,
                 members=None, empty_score=None, error_score="raise", warm_start=True,
                 cache_size=4096):
        self.estimator = estimator
        self.X, self.y, self.X_val, self.y_val = X, y, X_val, y_val
        self.n_samples = _num_samples(X)
        self.sample_weight = sample_weight
        self.members = members
        self.scorer = check_scoring(estimator, scoring=scoring)
        self.classifier = is_classifier(estimator)
        self.error_score = error_score
        self.warm_start = warm_start and "warm_start" in estimator.get_params()
        self.cache_size = cache_size
        self._cache = {}
        self.n_fits = 0
        self.n_failures = 0
        if self.classifier:
            self.classes, self.y_codes = np.unique(y, return_inverse=True)
        self._constant = {}
        self.empty_score = self._empty(empty_score)

    @property
    def n_players(self):
        return self.n_samples if self.members is None else len(self.members)

    def indices(self, players):
        players = np.asarray(players, dtype=np.intp)
        if self.members is None:
            return players
        if players.size == 0:
            return players
        return np.concatenate([self.members[p] for p in players])

    # -- degenerate subsets ------------------------------------------------
    def constant_score(self, code):
        if code not in self._constant:
            # a one-element array: DummyClassifier takes no scalar float class label
            dummy = DummyClassifier(strategy="constant", constant=self.classes[code:code + 1])
            dummy.fit(self.X, self.y)  # only sets classes_ (all training classes)
            self._constant[code] = float(self.scorer(dummy, self.X_val, self.y_val))
        return self._constant[code]

    def _empty(self, empty_score):
        if empty_score is not None:
            if not isinstance(empty_score, numbers.Real):
                raise ValueError(f"empty_score must be a real number or None, got {empty_score!r}.")
            return float(empty_score)
        if self.classifier:
            return float(np.mean([self.constant_score(c) for c in range(len(self.classes))]))
        dummy = DummyRegressor(strategy="mean")
        dummy.fit(self.X, self.y, sample_weight=self.sample_weight)
        return float(self.scorer(dummy, self.X_val, self.y_val))

    # -- fitting ------------------------------------------------------------
    def _fit_score(self, idx, model=None):
        """Score of the estimator refitted on rows ``idx`` (``model``: warm-start from it)."""
        if idx.size == 0 or (self.sample_weight is not None
                             and not np.any(self.sample_weight[idx] > 0)):
            return self.empty_score, None
        if self.classifier:
            codes = self.y_codes[idx]
            if codes.min() == codes.max():
                return self.constant_score(int(codes[0])), None
        est = model if model is not None else clone(self.estimator)
        # taking the rows is outside the try: a failure there is a bug, never a subset's score
        X_sub = take_rows(self.X, idx)
        sw = None if self.sample_weight is None else self.sample_weight[idx]
        self.n_fits += 1
        try:
            with warnings.catch_warnings():
                # tiny subsets often stop early; that is the utility, not an error
                warnings.filterwarnings("ignore", message=".*converge.*")
                fit_weighted(est, X_sub, self.y[idx], sw)
            return float(self.scorer(est, self.X_val, self.y_val)), est
        except Exception as exc:
            if isinstance(self.error_score, str) and self.error_score == "raise":
                raise RuntimeError(
                    f"Fitting {type(self.estimator).__name__} on a subset of {idx.size} training "
                    f"points failed (the fit on all points succeeded): {exc}. Pass "
                    "error_score=<number> to use a fixed score for such subsets."
                ) from exc
            self.n_failures += 1
            return float(self.error_score), None

    def __call__(self, players):
        idx = np.sort(self.indices(players))
        key = idx.tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        value, _ = self._fit_score(idx)
        if len(self._cache) < self.cache_size:
            self._cache[key] = value
        return value

    def prefix_scores(self, order, u_full, trunc_abs):
        """``U`` of every prefix of the player order ``order`` (truncated Monte Carlo).

        Returns the scores ``s[k] = U(order[:k+1])``; after truncation (the
        running score is within ``trunc_abs`` of ``u_full``) the remaining
        prefixes get ``u_full``, i.e. zero marginal contributions.
        """
        n = len(order)
        scores = np.empty(n)
        prev = self.empty_score
        model = None
        model_classes = None
        idx = np.empty(0, dtype=np.intp)
        for k in range(n):
            if trunc_abs > 0 and abs(u_full - prev) <= trunc_abs:
                scores[k:] = u_full
                break
            if k == n - 1:  # the full set is known already
                scores[k] = u_full
                break
            idx = np.concatenate([idx, self.indices(order[k : k + 1])])
            sorted_idx = np.sort(idx)
            key = sorted_idx.tobytes()
            hit = self._cache.get(key)
            if hit is not None:  # coalition seen before (small games, repeated small prefixes)
                scores[k] = prev = hit
                model = None
                continue
            warm = None
            if self.warm_start and model is not None:
                # warm starts only while the class set is unchanged (coef shapes must match)
                if not self.classifier or model_classes == _n_classes(self.y_codes[idx]):
                    warm = model
            score, fitted = self._fit_score(sorted_idx, warm)
            if len(self._cache) < self.cache_size:
                self._cache[key] = score
            if self.warm_start and fitted is not None:
                if fitted is not warm:
                    fitted.set_params(warm_start=True)
                model = fitted
                model_classes = _n_classes(self.y_codes[idx]) if self.classifier else None
            scores[k] = score
            prev = score
        return scores


def _n_classes(codes):
    return np.unique(codes).size


def full_score(utility):
    """``U(N)`` and the estimator fitted on all training points."""
    est = fit_weighted(clone(utility.estimator), utility.X, utility.y, utility.sample_weight)
    return float(utility.scorer(est, utility.X_val, utility.y_val)), est
