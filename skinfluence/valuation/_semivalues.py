"""Monte-Carlo semivalues: truncated Monte-Carlo Shapley, Beta Shapley, MSR Banzhaf."""

import numbers
import time
import warnings

import numpy as np
from joblib import effective_n_jobs
from scipy.stats import spearmanr
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _num_samples

from ..utils._deprecation import positional_deprecated
from ..utils._progress import progress
from ._base import (
    BaseValuation,
    SubsetUtility,
    check_groups,
    check_train,
    check_validation,
    full_score,
    spawn_seeds,
)
from ._exact import semivalue_weights
from ._fast_logistic import FastLogisticUtility, fast_logistic_spec
from ._tasks import permutation_task, subset_task


class _SemivalueBase(BaseValuation):
    """Shared fit loop: rounds of parallel sampling tasks until convergence or budget."""

    _parameter_constraints = {
        "estimator": [object],
        "scoring": [None, str, callable],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [None, Interval(numbers.Real, 0, None, closed="left")],
        "rank_tol": [None, Interval(numbers.Real, 0, 1, closed="both")],
        "max_time": [None, Interval(numbers.Real, 0, None, closed="neither")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "fast_utility": ["boolean"],
        "empty_score": [None, numbers.Real],
        "error_score": [StrOptions({"raise"}), numbers.Real],
        "random_state": ["random_state"],
        "n_jobs": [None, numbers.Integral],
        "verbose": ["verbose"],
    }

    _kind = None  # "permutation" or "subset"

    def _weights(self, n):
        return None

    def _trunc(self):
        return 0.0

    def fit(self, X, y, *, X_val=None, y_val=None, sample_weight=None, groups=None):
        """Estimate the value of every training point (or group).

        Parameters
        ----------
        X : array-like of shape (n_train, n_features)
        y : array-like of shape (n_train,)
        X_val, y_val : array-like
            Validation set on which the utility (the score of the refitted
            estimator) is measured.  Required.
        sample_weight : array-like of shape (n_train,), default=None
            Passed to the estimator's ``fit`` (restricted to each subset).
        groups : array-like of shape (n_train,), default=None
            Value groups of points instead of single points: the players of
            the game are the distinct group labels (``group_labels_``).

        Returns
        -------
        self
        """
        self._validate_params()
        X, y, sample_weight = check_train(self, X, y, sample_weight)
        X_val, y_val = check_validation(self, X_val, y_val, required=True)
        labels, members = check_groups(groups, _num_samples(X))
        utility = SubsetUtility(
            self.estimator, X, y, X_val, y_val, scoring=self.scoring, sample_weight=sample_weight,
            members=members, empty_score=self.empty_score, error_score=self.error_score,
        )
        if utility.n_players < 2:
            raise ValueError("Valuation needs at least two training points; got "
                             f"n_samples = {utility.n_players}.")
        u_full, self.estimator_ = full_score(utility)
        fast = None
        if self.fast_utility:
            code = fast_logistic_spec(self.estimator, self.scoring, X, y, sample_weight)
            if code is not None:
                fast = FastLogisticUtility(utility, code)
                u_full = fast.u_full  # exact optimum of the same objective (sklearn stops at tol)
        self.fast_utility_ = fast is not None
        self.utility_full_ = u_full
        self.utility_empty_ = utility.empty_score
        acc, n_fits, failures, checked_before, exhausted = self._sample(utility, fast, u_full)
        self.values_, self.stderr_ = self._estimate(acc)
        self.n_iter_ = self._n_sampled(acc)
        self.n_fits_ = int(n_fits)
        self.n_failed_fits_ = int(failures)
        if failures:
            warnings.warn(f"{failures} subset fits failed and were scored error_score="
                          f"{self.error_score}.", RuntimeWarning)
        if labels is not None:
            self.group_labels_ = labels
        if self.tol is not None and not self.converged_ and exhausted:
            self._warn_not_converged(checked_before, u_full, utility.empty_score,
                                     utility.n_players)
        return self

    def _n_sampled(self, acc):
        """Permutations or subsets sampled so far (``n_iter_``)."""
        return int(acc[2] if self._kind == "permutation" else acc[6])

    def _batch(self, fast):
        if self.batch_size != "auto":
            return self.batch_size
        if self._kind == "permutation":
            return 64 if fast is not None else 4
        return 512 if fast is not None else 16

    def _sample(self, utility, fast, u_full):
        """Rounds of ``n_jobs`` sampling tasks until the stopping rule, ``max_iter`` or
        ``max_time``; sets ``converged_`` and ``history_``.

        Returns the accumulated sums, the numbers of fits and of failed fits, the values
        of the check before the last one and whether the ``max_iter`` budget ran out.
        """
        n = utility.n_players
        trunc_abs = self._trunc() * abs(u_full)
        weights = self._weights(n)
        batch = self._batch(fast)
        n_tasks_total = -(-self.max_iter // batch)
        seeds = spawn_seeds(self.random_state, n_tasks_total)
        per_round = max(1, effective_n_jobs(self.n_jobs))
        acc = prev_values = checked_before = None
        self.converged_ = False
        n_fits = failures = done = 0
        t0 = time.perf_counter()
        self.history_ = []
        # the numba fast path releases the GIL: threads avoid process start-up and data copies
        prefer = "threads" if fast is not None else None
        rounds = range(0, n_tasks_total, per_round)
        for start in progress(rounds, desc=type(self).__name__, verbose=self.verbose):
            stop = min(start + per_round, n_tasks_total)
            sizes = [min(batch, self.max_iter - t * batch) for t in range(start, stop)]
            if self._kind == "permutation":
                func = permutation_task
                tasks = [(utility, fast, u_full, trunc_abs, weights, seeds[t], sizes[t - start])
                         for t in range(start, stop)]
            else:
                func = subset_task
                tasks = [(utility, fast, seeds[t], sizes[t - start]) for t in range(start, stop)]
            for res in self._run_tasks(func, tasks, None, prefer=prefer, verbose=0):
                part = res[:-2]
                acc = list(part) if acc is None else [a + b for a, b in zip(acc, part)]
                n_fits += res[-2]
                failures += res[-1]
            done = stop
            values, stderr = self._estimate(acc)
            self.history_.append((self._n_sampled(acc), time.perf_counter() - t0))
            if self._converged(values, stderr, prev_values, u_full, utility.empty_score, n):
                self.converged_ = True
                break
            checked_before = prev_values  # what the last check compared with
            prev_values = values
            if self.max_time is not None and time.perf_counter() - t0 >= self.max_time:
                break
        return acc, n_fits, failures, checked_before, done >= n_tasks_total

    def _warn_not_converged(self, prev_values, u_full, u_empty, n):
        """Report the last check of the stopping rule: each quantity next to its tolerance."""
        rel, rho = self._convergence_stats(self.values_, self.stderr_, prev_values,
                                           u_full, u_empty, n)
        scale = abs(u_full - u_empty) / n
        se = self.stderr_.max()
        if scale == 0:
            parts = ["U(N) = U(empty): the value scale |U(N) - U(empty)| / n that tol is "
                     "relative to is 0"]
        elif not np.isfinite(rel):
            parts = ["some standard errors are not finite yet (too few samples)"]
        else:
            parts = [f"largest standard error / value scale |U(N) - U(empty)| / n = "
                     f"{se:.3g} / {scale:.3g} = {rel:.3g} {'<=' if rel <= self.tol else '>'} "
                     f"tol={self.tol}"]
        if self.rank_tol is not None:
            if rho is None:
                parts.append("no earlier check to compare the ranking of the values with")
            else:
                ok = rho >= 1 - self.rank_tol
                parts.append(f"Spearman correlation with the values of the previous check = "
                             f"{rho:.3g} {'>=' if ok else '<'} 1 - rank_tol = "
                             f"{1 - self.rank_tol:.3g}")
        warnings.warn(
            f"{type(self).__name__} did not reach tol={self.tol} within max_iter="
            f"{self.max_iter} ({'; '.join(parts)}). Increase max_iter (or loosen tol or "
            "rank_tol) for more precise values.", UserWarning)

    def _estimate(self, acc):
        if self._kind == "permutation":
            s, ss, count = acc[0], acc[1], acc[2]
            mean = s / count
            var = np.maximum(ss / count - mean**2, 0.0) * count / max(count - 1, 1)
            return mean, np.sqrt(var / count)
        s_in, ss_in, n_in, s_out, ss_out, n_out = acc[:6]
        with np.errstate(invalid="ignore", divide="ignore"):
            m_in = s_in / n_in
            m_out = s_out / n_out
            v_in = np.maximum(ss_in / n_in - m_in**2, 0) * n_in / np.maximum(n_in - 1, 1)
            v_out = np.maximum(ss_out / n_out - m_out**2, 0) * n_out / np.maximum(n_out - 1, 1)
            se = np.sqrt(v_in / n_in + v_out / n_out)
        return m_in - m_out, se

    def _convergence_stats(self, values, stderr, prev_values, u_full, u_empty, n):
        """What the stopping rule compares with ``tol`` and ``rank_tol``: the largest
        standard error relative to the average value size ``|U(N) - U(empty)| / n`` (inf
        when that is 0 or an error is not finite), and the Spearman correlation of the
        values with those of the previous check (None without one or without ``rank_tol``).
        """
        scale = abs(u_full - u_empty) / n
        finite = np.all(np.isfinite(stderr))
        rel = stderr.max() / scale if scale > 0 and finite else np.inf
        rho = None
        if self.rank_tol is not None and prev_values is not None:
            rho = spearmanr(values, prev_values).statistic
        return rel, rho

    def _converged(self, values, stderr, prev_values, u_full, u_empty, n):
        if self.tol is None or prev_values is None or not np.all(np.isfinite(stderr)):
            return False
        scale = abs(u_full - u_empty) / n  # the average value size (efficiency, for Shapley)
        if scale == 0 or stderr.max() > self.tol * scale:
            return False
        if self.rank_tol is not None:
            rho = spearmanr(values, prev_values).statistic
            if not rho >= 1 - self.rank_tol:
                return False
        return True


_COMMON_DOC = """
    estimator : estimator
        Any scikit-learn estimator; it is cloned and refitted on subsets.
    scoring : str or callable, default=None
        Scorer of the utility on ``(X_val, y_val)``; ``None`` uses the
        estimator's ``score``.
    max_iter : int
        Budget: number of {unit} sampled at most.
    tol : float or None, default=0.05
        Stop early once every standard error is below ``tol`` times the
        average value size ``|U(N) - U(empty)| / n`` and (with ``rank_tol``)
        the ranking is stable between checks.  ``None`` always uses ``max_iter``.
    rank_tol : float or None, default=0.01
        Rank stability part of the criterion: the Spearman correlation between
        the values at two successive checks must be at least ``1 - rank_tol``.
    max_time : float or None, default=None
        Wall-clock budget in seconds (checked between rounds).
    batch_size : int or "auto", default="auto"
        {unit_cap} per parallel task.  Results depend only on ``random_state``
        and ``batch_size``, not on ``n_jobs``, when the run ends by ``max_iter``.
    fast_utility : bool, default=True
        For binary ``LogisticRegression`` with an L2 penalty and the accuracy,
        Brier or log-loss scorer, compute the utility with an in-house
        warm-started Newton solver of the same objective (exact optimum,
        where scikit-learn stops at its ``tol``) instead of ``fit`` calls: one
        or two Newton steps per subset.  Other estimators always use ``fit``.
    empty_score : float or None, default=None
        Utility of the empty set.  ``None``: for classifiers the mean score of
        the constant predictors of each class, for regressors the score of
        predicting the training mean.  Subsets with a single class have the
        utility of the constant predictor of that class.
    error_score : "raise" or float, default="raise"
        Utility of subsets on which ``fit`` fails (a warning counts them).
    random_state : int, RandomState or None, default=None
    n_jobs : int, default=None
        Parallel tasks through joblib (any backend, e.g. dask).
    verbose : int, default=0
        Progress bar over sampling rounds.
"""

_ATTR_DOC = """
    values_ : ndarray of shape (n_players,)
        Estimated value of each training point (or group, see ``group_labels_``).
    stderr_ : ndarray of shape (n_players,)
        Monte-Carlo standard error of each value.
    n_iter_ : int
        Number of {unit} sampled.
    n_fits_ : int
        Number of actual model fits (single-class and empty subsets, cache
        hits and truncated tails cost none).
    converged_ : bool
        Whether the ``tol``/``rank_tol`` criterion stopped the run.
    utility_full_, utility_empty_ : float
        ``U(N)`` and ``U(empty)``.
    fast_utility_ : bool
        Whether the Newton fast path computed the utility.
    estimator_ : estimator
        The estimator fitted on the whole training set (``predict``/``score``
        delegate to it).
    group_labels_ : ndarray
        The distinct groups, when ``groups`` was passed to ``fit``.
    history_ : list of (n_iter, seconds)
        Progress at each convergence check.
"""


class TMCShapley(_SemivalueBase):
    __doc__ = """Data Shapley by truncated Monte-Carlo permutation sampling (Ghorbani & Zou, 2019).

    Each sampled permutation adds the points one at a time and credits every
    point with the change of the validation score it causes.  Once the score
    of the growing prefix is within ``truncation_tol * |U(N)|`` of the
    full-data score, the rest of the permutation is credited zero without
    fitting (truncation: a small bias for a large saving; set
    ``truncation_tol=0`` for the unbiased estimator).  Along a permutation
    each fit is warm-started from the previous one when the estimator
    supports ``warm_start``.

    Parameters
    ----------""" + _COMMON_DOC.format(unit="permutations", unit_cap="Permutations") + """
    truncation_tol : float, default=0.01
        Relative truncation tolerance (0 disables truncation).

    Attributes
    ----------""" + _ATTR_DOC.format(unit="permutations") + """
    See Also
    --------
    BetaShapley : semivalue emphasising small coalitions.
    BanzhafValuation : maximum-sample-reuse Banzhaf values.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.valuation import TMCShapley
    >>> X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    >>> tmc = TMCShapley(LogisticRegression(), max_iter=50, tol=None, random_state=0)
    >>> tmc.fit(X[:40], y[:40], X_val=X[40:], y_val=y[40:]).values_.shape
    (40,)
    """

    _parameter_constraints = {
        **_SemivalueBase._parameter_constraints,
        "truncation_tol": [Interval(numbers.Real, 0, None, closed="left")],
    }
    _kind = "permutation"

    def __init__(self, estimator, *, scoring=None, max_iter=500, tol=0.05, rank_tol=0.01,
                 max_time=None, truncation_tol=0.01, batch_size="auto", fast_utility=True,
                 empty_score=None, error_score="raise", random_state=None, n_jobs=None,
                 verbose=0):
        self.estimator = estimator
        self.scoring = scoring
        self.max_iter = max_iter
        self.tol = tol
        self.rank_tol = rank_tol
        self.max_time = max_time
        self.truncation_tol = truncation_tol
        self.batch_size = batch_size
        self.fast_utility = fast_utility
        self.empty_score = empty_score
        self.error_score = error_score
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _trunc(self):
        return self.truncation_tol


class BetaShapley(TMCShapley):
    __doc__ = """Beta(alpha, beta) Shapley values (Kwon & Zou, 2022) by permutation sampling.

    A semivalue whose weight on coalitions of size ``k`` is
    ``p(k) = C(n-1, k) B(k + beta, n - 1 - k + alpha) / B(alpha, beta)``
    (Kwon & Zou's convention): ``alpha > beta`` emphasises small coalitions,
    where one point's effect is largest and least noisy, which helps find
    mislabelled points; ``alpha = beta = 1`` is the Shapley value.  Sampled
    like :class:`TMCShapley`, each marginal contribution importance-weighted
    by ``n p(k)`` (with truncation, the late and mostly zero-weight positions
    are not fitted at all).

    Parameters
    ----------
    alpha, beta : float, default=16, 1
        Parameters of the Beta weighting.""" + _COMMON_DOC.format(
        unit="permutations", unit_cap="Permutations") + """
    truncation_tol : float, default=0.01
        Relative truncation tolerance (0 disables truncation).

    Attributes
    ----------""" + _ATTR_DOC.format(unit="permutations") + """
    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.valuation import BetaShapley
    >>> X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    >>> beta = BetaShapley(LogisticRegression(), max_iter=50, tol=None, random_state=0)
    >>> beta.fit(X[:40], y[:40], X_val=X[40:], y_val=y[40:]).values_.shape
    (40,)
    """

    _parameter_constraints = {
        **TMCShapley._parameter_constraints,
        "alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "beta": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    @positional_deprecated("alpha", "beta")
    def __init__(self, estimator, *, alpha=16.0, beta=1.0, scoring=None, max_iter=500, tol=0.05,
                 rank_tol=0.01, max_time=None, truncation_tol=0.01, batch_size="auto",
                 fast_utility=True, empty_score=None, error_score="raise", random_state=None,
                 n_jobs=None, verbose=0):
        super().__init__(estimator, scoring=scoring, max_iter=max_iter, tol=tol,
                         rank_tol=rank_tol, max_time=max_time, truncation_tol=truncation_tol,
                         batch_size=batch_size, fast_utility=fast_utility,
                         empty_score=empty_score, error_score=error_score,
                         random_state=random_state, n_jobs=n_jobs, verbose=verbose)
        self.alpha = alpha
        self.beta = beta

    def _weights(self, n):
        return n * semivalue_weights(n, "beta", self.alpha, self.beta)


class BanzhafValuation(_SemivalueBase):
    __doc__ = """Data Banzhaf values by maximum sample reuse (Wang & Jia, AISTATS 2023).

    Every sampled subset (each point included with probability 1/2) is fitted
    once and its score is reused for every point: the value of ``j`` is the
    mean utility of the sampled subsets containing ``j`` minus the mean of
    those without it.  The Banzhaf value is the most robust semivalue to noisy
    utilities; its signal is the effect of a point on half-size subsets.

    Parameters
    ----------""" + _COMMON_DOC.format(unit="subsets", unit_cap="Subsets") + """
    Attributes
    ----------""" + _ATTR_DOC.format(unit="subsets") + """
    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.valuation import BanzhafValuation
    >>> X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    >>> bz = BanzhafValuation(LogisticRegression(), max_iter=200, tol=None, random_state=0)
    >>> bz.fit(X[:40], y[:40], X_val=X[40:], y_val=y[40:]).values_.shape
    (40,)
    """

    _kind = "subset"

    def __init__(self, estimator, *, scoring=None, max_iter=5000, tol=0.05, rank_tol=0.01,
                 max_time=None, batch_size="auto", fast_utility=True, empty_score=None,
                 error_score="raise", random_state=None, n_jobs=None, verbose=0):
        self.estimator = estimator
        self.scoring = scoring
        self.max_iter = max_iter
        self.tol = tol
        self.rank_tol = rank_tol
        self.max_time = max_time
        self.batch_size = batch_size
        self.fast_utility = fast_utility
        self.empty_score = empty_score
        self.error_score = error_score
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
