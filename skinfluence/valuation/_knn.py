"""Exact Shapley values of the K-nearest-neighbour utilities (Jia et al., VLDB 2019)."""

import numbers

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import TransformerMixin
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.utils import TransformerTags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from ..utils._dask import is_dask_collection
from ..utils._output import TrainingColumnsMixin, check_dense_output, row_labels
from ..utils._progress import progress
from ._base import BaseValuation, check_train
from ._knn_kernels import knn_classifier_shapley_rows, knn_regressor_shapley_rows

# chunk of validation rows x training points held at once (float64 entries)
_CHUNK_ELEMENTS = 1 << 22


class KNNShapley(TrainingColumnsMixin, TransformerMixin, BaseValuation):
    """Exact Shapley values of training points for a K-nearest-neighbour classifier or regressor.

    For one validation point ``(x, y)`` and a subset ``S`` of the training set, let
    ``N_K(S)`` be the ``min(K, |S|)`` points of ``S`` nearest to ``x``.  The utility is

    * classification: ``U(S) = 1/K * #{i in N_K(S): y_i = y}``, the unweighted KNN
      classifier's likelihood of the right label (``U(empty) = 0``);
    * regression: ``U(S) = -(c + 1/K * sum_{i in N_K(S)} (y_i - c) - y)^2``, the negative
      squared error of the KNN average, where a coalition with fewer than K points fills
      the empty places with ``c``, the mean training target (``U(empty) = -(c - y)^2``).

    Their Shapley values have the closed forms of Jia et al. (VLDB 2019), computed here
    exactly in ``O(N log N)`` per validation point with a numba kernel, chunked over
    validation points and parallel over ``n_jobs`` threads.  Values are averaged over the
    validation set.

    Parameters
    ----------
    n_neighbors : int, default=5
        K of the utility.
    task : {"auto", "classification", "regression"}, default="auto"
        Which utility: ``"auto"`` takes the regression utility when the target is
        continuous (:func:`~sklearn.utils.multiclass.type_of_target` ``"continuous"``:
        floats that are not all integers), else the classification utility.  Integer
        targets are class labels unless ``task="regression"``.
    n_jobs : int, default=None
        Threads for the kernel and the distance computation (``-1``: all cores).
    verbose : int, default=0
        Progress bar over validation chunks.

    Attributes
    ----------
    values_ : ndarray of shape (n_train,)
        Shapley value of each training point, averaged over the validation
        points (higher: the point helps the KNN classify them correctly, or brings
        its predictions closer to their targets).  The values sum to the mean of
        ``U(training set) - U(empty)``.
    task_ : str
        The utility used, ``"classification"`` or ``"regression"``.
    estimator_ : KNeighborsClassifier or KNeighborsRegressor
        The KNN model on the whole training set (``predict`` and ``score``
        delegate to it); None after a fit on dask data, which keeps no training set in
        memory.
    n_features_in_ : int

    Notes
    -----
    ``fit`` takes no ``sample_weight``: the closed forms are those of the unweighted
    KNN utilities.  Distances are Euclidean; scale the features first if they have
    different units.  Ties in distance are broken by training index.  When ``X_val`` is
    not given, every training point is valued against the others (leave-self-out), so
    values measure how much a point helps predict its fellow training points.

    *Classification* (Theorem 1 of Jia et al.).  With the training points ranked by
    distance to ``x`` (``1`` nearest), ``s_N = 1[y_N = y] / N * min(K, N) / K`` and
    ``s_i = s_{i+1} + (1[y_i = y] - 1[y_{i+1} = y]) / K * min(K, i) / i``.

    *Regression*.  The utility is that of Jia et al.'s KNN-regression theorem applied to
    the centred targets ``y_i - c``, ``y - c`` (the paper's form is ``c = 0``, which
    makes a small coalition predict towards 0 and so rewards large targets).  Write
    ``y_i`` for the centred targets in rank order, ``y`` for the centred validation
    target.  Points ``i`` and ``i + 1`` differ only when fewer than K points of the
    coalition are nearer; then the prediction moves by ``(y_i - y_{i+1}) / K`` and

    ``s_i = s_{i+1} - (y_i - y_{i+1}) / K * [((y_i + y_{i+1}) / K - 2 y) * min(K, i) / i
    + 2 / K * (w_{i+1} * (y_1 + ... + y_{i-1}) + w_{i+2} y_{i+2} + ... + w_N y_N)]``,

    ``w_j = L (L - 1) / (2 (j - 1) (j - 2))`` with ``L = min(K, j - 1)`` (``w_j = 0`` for
    ``j < 3``).  ``min(K, i) / i`` is the Shapley weight of the coalitions with fewer
    than K of the ``i - 1`` nearer points; ``w_{i+1}`` is the weight of those that also
    hold a given nearer point, and ``w_j`` (``j > i + 1``) the weight of those in which
    point ``j`` is among the K nearest: the expected sum of the other targets in the
    K-NN average.  The recursion starts from a phantom point ``N + 1`` with
    ``y_{N+1} = 0`` and ``s_{N+1} = 0``, which gives ``s_N`` exactly.  Each point costs
    ``O(1)`` after the sort.

    ``transform(X)`` without labels attributes the KNN's own predictions (the
    predicted class, or the predicted target for regression): which training points
    support the prediction.

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

    A continuous target selects the regression utility:

    >>> from sklearn.datasets import make_regression
    >>> X, y = make_regression(n_samples=120, n_features=4, noise=1.0, random_state=0)
    >>> KNNShapley(n_neighbors=5).fit(X, y).task_
    'regression'
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "task": [StrOptions({"auto", "classification", "regression"})],
        "n_jobs": [None, numbers.Integral],
        "verbose": ["verbose"],
    }

    def __init__(self, n_neighbors=5, *, task="auto", n_jobs=None, verbose=0):
        self.n_neighbors = n_neighbors
        self.task = task
        self.n_jobs = n_jobs
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        # transform gives per-sample attributions (columns: the training points)
        tags.transformer_tags = TransformerTags()
        return tags

    def _template_estimator(self):
        if self.task == "regression":
            return KNeighborsRegressor(n_neighbors=self.n_neighbors, algorithm="brute")
        return KNeighborsClassifier(n_neighbors=self.n_neighbors, algorithm="brute")

    def fit(self, X, y, *, X_val=None, y_val=None):
        """Compute the Shapley value of every training point.

        Parameters
        ----------
        X : array-like, dask array or dask DataFrame of shape (n_train, n_features)
            With dask, the training points stay in their row blocks and the values
            are exact, those of arrays in memory (see the user guide, "Large data");
            ``estimator_`` is then None and ``transform`` is lazy and needs ``y``.
        y : array-like of shape (n_train,)
            Class labels, or numeric targets for the regression utility (dask: brought
            into memory, one number per training point).
        X_val, y_val : array-like, default=None
            Validation points; when omitted, each training point is valued on
            the others (leave-self-out).  With dask training data they are held in
            memory and broadcast to the tasks.

        Returns
        -------
        self
        """
        self._validate_params()
        if is_dask_collection(X):  # training rows in dask blocks: _knn_dask.py
            from ._knn_dask import fit_dask

            return fit_dask(self, X, y, X_val=X_val, y_val=y_val)
        X_in = X  # a DataFrame index names the columns of transform
        X, y, _ = check_train(self, X, y, None, accept_sparse=False,
                              y_numeric=self.task == "regression",
                              class_targets=self.task == "classification")
        self.task_ = self._resolve_task(y)
        X = np.asarray(X, dtype=np.float64)
        self._X = X
        n_neighbors = min(self.n_neighbors, X.shape[0])
        if self.task_ == "regression":
            y = np.asarray(y, dtype=np.float64)
            # an empty place among the K predicts the mean target (see Notes)
            self._y_offset = float(np.mean(y))
            self._y_train = y - self._y_offset
            self.estimator_ = KNeighborsRegressor(n_neighbors=n_neighbors, algorithm="brute")
        else:
            check_classification_targets(y)
            self._classes, self._y_train = np.unique(y, return_inverse=True)
            self.estimator_ = KNeighborsClassifier(n_neighbors=n_neighbors, algorithm="brute")
        self.estimator_.fit(X, y)
        if (X_val is None) != (y_val is None):
            raise ValueError("Pass both X_val and y_val, or neither.")
        if X_val is None:
            rows = self._rows(X, self._y_train, exclude_self=True)
        else:
            X_val, y_val = validate_data(self, X_val, y_val, reset=False, accept_sparse=False,
                                         y_numeric=self.task_ == "regression")
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

    def _resolve_task(self, y):
        if self.task != "auto":
            return self.task
        return "regression" if type_of_target(y) == "continuous" else "classification"

    def _encode(self, y):
        """Targets of validation points as the kernel takes them."""
        if self.task_ == "regression":
            return np.asarray(y, dtype=np.float64) - self._y_offset
        y = np.asarray(y)
        codes = np.searchsorted(self._classes, y)
        codes = np.clip(codes, 0, len(self._classes) - 1)
        # labels unseen in training match no training point: code -1
        return np.where(self._classes[codes] == y, codes, -1).astype(np.intp)

    def _rows(self, Xv, y_val, exclude_self=False):
        """Generator of ``(chunk, n_train)`` blocks of per-validation-point values."""
        X = self._X
        n = X.shape[0]
        k = int(self.n_neighbors)
        kernel = (knn_regressor_shapley_rows if self.task_ == "regression"
                  else knn_classifier_shapley_rows)
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
                kernel(D, orders, self._y_train, y_val[start:stop], k, exclude, out)
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
            Labels, or targets for the regression utility; ``None`` uses the KNN's
            own predictions.

        Returns
        -------
        ndarray of shape (n_samples, n_train)
            Row ``i`` sums to ``U(training set) - U(empty)`` for sample ``i``.  A lazy
            dask array (blocks: query chunks by training row blocks) after a fit on dask
            data, which needs ``y``.
        """
        check_is_fitted(self, "values_")
        if is_dask_collection(self._X):
            from ._knn_dask import transform_dask

            return transform_dask(self, X, y)
        if y is None:
            X = validate_data(self, X, reset=False, accept_sparse=False)
            y = self.estimator_.predict(X)
        else:
            X, y = validate_data(self, X, y, reset=False, accept_sparse=False,
                                 y_numeric=self.task_ == "regression")
        check_dense_output(X.shape[0], self._X.shape[0], type(self).__name__, explain=None)
        out = np.empty((X.shape[0], self._X.shape[0]))
        start = 0
        for block in self._rows(np.asarray(X, dtype=np.float64), self._encode(y)):
            out[start:start + block.shape[0]] = block
            start += block.shape[0]
        return out
