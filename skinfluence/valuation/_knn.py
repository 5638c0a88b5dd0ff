"""Exact Shapley values of the K-nearest-neighbour classifier utility (Jia et al., VLDB 2019)."""

import numbers

import numpy as np
from joblib import effective_n_jobs
from numba import prange
from sklearn.base import TransformerMixin
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils import TransformerTags
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from .._numba import njit
from ..utils._output import TrainingColumnsMixin, check_dense_output, row_labels
from ..utils._progress import progress
from ._base import BaseValuation, check_train

# chunk of validation rows x training points held at once (float64 entries)
_CHUNK_ELEMENTS = 1 << 22


@njit(parallel=True, cache=True)
def _knn_shapley_rows(D, orders, y_train, y_val, k, exclude, out):  # pragma: no cover - numba
    """Row ``i`` of ``out`` gets the Shapley values of all training points for validation row ``i``.

    Recursion of Jia et al. (Theorem 1) on the training points sorted by
    distance, nearest first (ties broken by index):
    ``s[N] = 1[y_N = y] / N * min(K, N) / K``,
    ``s[i] = s[i+1] + (1[y_i = y] - 1[y_{i+1} = y]) / K * min(K, i) / i``.
    ``orders`` holds an (unstable, fast) argsort of each row of ``D``; runs of
    equal distances are re-sorted by index here so ties break deterministically.
    ``exclude[i] >= 0`` removes that training point from the game of row ``i``
    (used when the training set values itself).
    """
    m, n = D.shape
    for r in prange(m):
        order = orders[r].copy()
        d = D[r]
        t = 1
        while t < n:
            if d[order[t]] == d[order[t - 1]]:
                a = t - 1
                while t < n and d[order[t]] == d[order[a]]:
                    t += 1
                order[a:t] = np.sort(order[a:t])
            else:
                t += 1
        row = out[r]
        skip = exclude[r]
        if skip >= 0:
            # move the excluded point out of the order; it takes part in no game
            order2 = np.empty(n - 1, dtype=order.dtype)
            j = 0
            for t in range(n):
                if order[t] != skip:
                    order2[j] = order[t]
                    j += 1
            order = order2
            row[skip] = 0.0
        n_eff = order.shape[0]
        if n_eff == 0:  # a one-point training set valuing itself: no game, all values 0
            continue
        yv = y_val[r]
        last = order[n_eff - 1]
        match_next = 1.0 if y_train[last] == yv else 0.0
        # the farthest point counts only in coalitions smaller than K (all of them if K >= N)
        s = match_next * min(k, n_eff) / (n_eff * k)
        row[last] = s
        for i in range(n_eff - 1, 0, -1):  # i is the 1-based rank of order[i - 1]
            idx = order[i - 1]
            match = 1.0 if y_train[idx] == yv else 0.0
            s = s + (match - match_next) / k * min(k, i) / i
            row[idx] = s
            match_next = match


class KNNShapley(TrainingColumnsMixin, TransformerMixin, BaseValuation):
    """Exact Shapley values of training points for the K-nearest-neighbour classifier.

    The utility of a subset ``S`` of the training set for one validation point
    ``(x, y)`` is ``U(S) = 1/K * #{ of the min(K, |S|) points of S nearest to x,
    those with label y }`` (the unweighted KNN classifier's likelihood of the
    right label; ``U(empty) = 0``).  Its Shapley values have the closed form of
    Jia et al. (VLDB 2019), computed here exactly in ``O(N log N)`` per
    validation point with a numba kernel, chunked over validation points and
    parallel over ``n_jobs`` threads.  Values are averaged over the validation set.

    Parameters
    ----------
    n_neighbors : int, default=5
        K of the utility.
    n_jobs : int, default=None
        Threads for the kernel and the distance computation (``-1``: all cores).
    verbose : int, default=0
        Progress bar over validation chunks.

    Attributes
    ----------
    values_ : ndarray of shape (n_train,)
        Shapley value of each training point, averaged over the validation
        points (higher: the point helps the KNN classify them correctly).  The
        values sum to the mean utility of the full training set.
    estimator_ : KNeighborsClassifier
        The KNN classifier on the whole training set (``predict`` and ``score``
        delegate to it).
    n_features_in_ : int

    Notes
    -----
    ``fit`` takes no ``sample_weight``: the closed form is that of the unweighted
    KNN utility.  Distances are Euclidean; scale the features first if they have different
    units.  Ties in distance are broken by training index.  When ``X_val`` is
    not given, every training point is valued against the others
    (leave-self-out), so values measure how much a point helps classify its
    fellow training points.  ``transform(X)`` without labels attributes the
    KNN's own predictions: which training points support the prediction.

    References
    ----------
    R. Jia et al., "Efficient task-specific data valuation for nearest
    neighbor algorithms", PVLDB 12(11), 2019.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skinfluence.valuation import KNNShapley
    >>> X, y = make_classification(n_samples=120, random_state=0)
    >>> knn = KNNShapley(n_neighbors=5).fit(X[:100], y[:100], X_val=X[100:], y_val=y[100:])
    >>> knn.values_.shape
    (100,)
    >>> rows = knn.transform(X[100:], y[100:])  # one row per validation point
    >>> bool(abs(rows.mean(0) - knn.values_).max() < 1e-12)
    True
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_jobs": [None, numbers.Integral],
        "verbose": ["verbose"],
    }

    def __init__(self, n_neighbors=5, *, n_jobs=None, verbose=0):
        self.n_neighbors = n_neighbors
        self.n_jobs = n_jobs
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        # transform gives per-sample attributions (columns: the training points)
        tags.transformer_tags = TransformerTags()
        return tags

    def _template_estimator(self):
        return KNeighborsClassifier(n_neighbors=self.n_neighbors, algorithm="brute")

    def fit(self, X, y, *, X_val=None, y_val=None):
        """Compute the Shapley value of every training point.

        Parameters
        ----------
        X : array-like of shape (n_train, n_features)
        y : array-like of shape (n_train,)
            Class labels.
        X_val, y_val : array-like, default=None
            Validation points; when omitted, each training point is valued on
            the others (leave-self-out).

        Returns
        -------
        self
        """
        self._validate_params()
        X_in = X  # a DataFrame index names the columns of transform
        X, y, _ = check_train(self, X, y, None, accept_sparse=False)
        check_classification_targets(y)
        X = np.asarray(X, dtype=np.float64)
        self._X = X
        self._classes, self._y_codes = np.unique(y, return_inverse=True)
        self.estimator_ = KNeighborsClassifier(
            n_neighbors=min(self.n_neighbors, X.shape[0]), algorithm="brute"
        ).fit(X, y)
        if (X_val is None) != (y_val is None):
            raise ValueError("Pass both X_val and y_val, or neither.")
        if X_val is None:
            rows = self._rows(X, self._y_codes, exclude_self=True)
        else:
            X_val, y_val = validate_data(self, X_val, y_val, reset=False, accept_sparse=False)
            rows = self._rows(np.asarray(X_val, dtype=np.float64), self._encode(y_val))
        total = np.zeros(X.shape[0])
        count = 0
        for block in rows:
            total += block.sum(axis=0)
            count += block.shape[0]
        self.values_ = total / count
        self.n_validation_ = count
        self._output_labels = row_labels(X_in, X.shape[0])
        return self

    def _encode(self, y):
        y = np.asarray(y)
        codes = np.searchsorted(self._classes, y)
        codes = np.clip(codes, 0, len(self._classes) - 1)
        # labels unseen in training match no training point: code -1
        return np.where(self._classes[codes] == y, codes, -1).astype(np.intp)

    def _rows(self, Xv, yv_codes, exclude_self=False):
        """Generator of ``(chunk, n_train)`` blocks of per-validation-point values."""
        X = self._X
        n = X.shape[0]
        k = int(self.n_neighbors)
        n_threads = max(1, effective_n_jobs(self.n_jobs))
        # only the order within a row matters: ||x_val||^2 is dropped
        sq_train = np.einsum("ij,ij->i", X, X)
        minus2_XT = -2.0 * X.T
        chunk = max(1, min(Xv.shape[0], _CHUNK_ELEMENTS // max(n, 1)))
        starts = range(0, Xv.shape[0], chunk)
        D_buf = np.empty((chunk, n))
        import numba

        old_threads = numba.get_num_threads()
        numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
        try:
            for start in progress(starts, desc="KNN-Shapley", verbose=self.verbose):
                stop = min(start + chunk, Xv.shape[0])
                D = D_buf[: stop - start]
                with threadpool_limits(limits=n_threads, user_api="blas"):
                    np.matmul(Xv[start:stop], minus2_XT, out=D)
                D += sq_train
                exclude = np.full(stop - start, -1, dtype=np.intp)
                if exclude_self:
                    exclude[:] = np.arange(start, stop)
                out = np.empty((stop - start, n))
                orders = np.argsort(D, axis=1)  # numpy's SIMD sort; ties fixed in the kernel
                _knn_shapley_rows(D, orders, self._y_codes, yv_codes[start:stop], k, exclude, out)
                yield out
        finally:
            numba.set_num_threads(old_threads)

    def transform(self, X, y=None):
        """Per-sample attributions: Shapley values of all training points for each row of ``X``.

        Row ``i`` holds the Shapley values of the training points in the game of the KNN
        utility of ``(X[i], y[i])``.  Without ``y`` each sample is labelled with the
        prediction of the fitted KNN classifier (:meth:`predict`), so the row says which
        training points support that prediction (and which speak against it).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            Labels of the samples; ``None`` uses the KNN's own predictions.

        Returns
        -------
        ndarray of shape (n_samples, n_train)
            Row ``i`` sums to the utility of the full training set for sample ``i``.
        """
        check_is_fitted(self, "values_")
        if y is None:
            X = validate_data(self, X, reset=False, accept_sparse=False)
            y = self.estimator_.predict(X)
        else:
            X, y = validate_data(self, X, y, reset=False, accept_sparse=False)
        check_dense_output(X.shape[0], self._X.shape[0], type(self).__name__, explain=None)
        out = np.empty((X.shape[0], self._X.shape[0]))
        start = 0
        for block in self._rows(np.asarray(X, dtype=np.float64), self._encode(y)):
            out[start:start + block.shape[0]] = block
            start += block.shape[0]
        return out
