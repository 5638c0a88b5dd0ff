"""Biased matrix factorisation for ratings, with rollback bookkeeping.

The numba kernels (training, the rating, its rollbacks) are in
:mod:`skinfluence.rollback._mf`.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from .._base import (
    TRAJECTORY_KG_ONLY,
    RollbackRecord,
    _as_ids,
    _check_range,
    _checked_weights,
    _SparseSGDMixin,
    _stream_keys,
    _zeros_blocks,
)
from .._index import csr_of_ids
from .._mf import MFData, MFRecord, mf_fit
from .._optim import hyper_of, zero_state
from .._rollback_models import MFRollbackModel

__all__ = ["MatrixFactorization"]


class MatrixFactorization(RegressorMixin, _SparseSGDMixin, BaseEstimator):
    """Biased matrix factorisation for explicit ``(user, item, rating)`` data.

    ``y_hat(u, i) = mu + b_u + b_i + p_u . q_i`` trained on squared error with
    per-example L2 penalty by mini-batch SGD or lazy Adam in a numba loop,
    with the same removal-invariant random stream as :class:`DistMult` (order
    hashed from the seed, the epoch and the ``(user, item)`` pair).

    Parameters
    ----------
    n_components : int, default=10
        Latent dimension ``k``.
    n_users, n_items : int, default=None
        Number of user / item ids; ``None`` infers ``max id + 1``.
    fit_intercept : bool, default=True
        If True ``mu`` is the weighted mean training rating (a fixed data
        statistic, not a learned parameter); otherwise 0.
    optimizer : {"adam", "sgd"}, default="adam"
    learning_rate : float, default=0.01
    learning_rate_decay : float in (0, 1], default=1.0
        Epoch ``e`` (from 0) uses ``learning_rate * learning_rate_decay ** e``.
    batch_size : int, default=32
    max_iter : int, default=30
        Number of epochs.
    alpha : float, default=0.01
        L2 penalty ``alpha/2 * (|p_u|^2 + b_u^2 + |q_i|^2 + b_i^2)`` per
        rating.
    init_scale : float, default=0.1
    beta1, beta2, epsilon : float
        Adam parameters.
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users_, n_components)
    item_factors_ : ndarray of shape (n_items_, n_components)
    user_bias_ : ndarray of shape (n_users_,)
    item_bias_ : ndarray of shape (n_items_,)
    intercept_ : float
    n_users_, n_items_ : int
    loss_curve_ : ndarray of shape (max_iter,)
    n_iter_ : int
    n_features_in_ : int
        Always 2.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence import MatrixFactorization
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([rng.integers(0, 30, 600), rng.integers(0, 20, 600)])
    >>> y = (X[:, 0] % 5 + X[:, 1] % 3).astype(float)
    >>> mf = MatrixFactorization(n_components=4, random_state=0).fit(X, y)
    >>> mf.predict(X[:3]).shape
    (3,)
    """

    _rollback_model_class = MFRollbackModel
    _parameter_constraints = {
        **_SparseSGDMixin._parameter_constraints,
        "n_users": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_items": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "fit_intercept": ["boolean"],
    }

    def __init__(
        self,
        n_components=10,
        *,
        n_users=None,
        n_items=None,
        fit_intercept=True,
        optimizer="adam",
        learning_rate=0.01,
        learning_rate_decay=1.0,
        batch_size=32,
        max_iter=30,
        alpha=0.01,
        init_scale=0.1,
        beta1=0.9,
        beta2=0.999,
        epsilon=1e-8,
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.n_users = n_users
        self.n_items = n_items
        self.fit_intercept = fit_intercept
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.learning_rate_decay = learning_rate_decay
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.alpha = alpha
        self.init_scale = init_scale
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # ids are >= 0
        return tags

    def fit(self, X, y, sample_weight=None):
        """Train on ratings ``y`` of ``(user, item)`` pairs.

        Parameters
        ----------
        X : array-like of shape (n_ratings, 2)
            Integer ``(user, item)`` ids.
        y : array-like of shape (n_ratings,)
            Ratings.
        sample_weight : array-like of shape (n_ratings,), default=None
            Weight 0 removes a rating without changing the random stream the
            others see.

        Returns
        -------
        self : object
        """
        self._fit(X, y, sample_weight, record=False)
        return self

    def fit_with_rollback(self, X, y=None, sample_weight=None, *, record_negatives=False,
                          trajectory=False):
        """Fit as :meth:`fit` while recording each rating's updates (for GradientRollback).

        Training is the same as :meth:`fit` (bit for bit).

        Parameters
        ----------
        X, y, sample_weight
            As in :meth:`fit`.
        record_negatives : bool, default=False
            Ignored (no negative sampling in this model).
        trajectory : bool, default=False
            Not supported: raises ``ValueError`` if True.

        Returns
        -------
        record : RollbackRecord
            ``gamma`` holds ``"user"`` and ``"item"`` (last column: bias).
        """
        if trajectory:
            raise ValueError(TRAJECTORY_KG_ONLY)
        if y is None:
            raise ValueError("MatrixFactorization needs ratings y.")
        return self._fit(X, y, sample_weight, record=True)

    def _validated(self, X, y, sample_weight):
        """Training ids, ratings, weights and the user / item counts."""
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=None, y_numeric=True)
        X = _as_ids(X, 2, "X")
        y = np.ascontiguousarray(y, dtype=np.float64)
        sw = _checked_weights(sample_weight, X, "rating")
        nu = self.n_users if self.n_users is not None else int(X[:, 0].max()) + 1
        ni = self.n_items if self.n_items is not None else int(X[:, 1].max()) + 1
        _check_range(X[:, 0], nu, "user", "X")
        _check_range(X[:, 1], ni, "item", "X")
        return X, y, sw, nu, ni

    def _fit(self, X, y, sample_weight, record):
        """Train; with ``record`` returns the :class:`RollbackRecord`."""
        X, y, sw, nu, ni = self._validated(X, y, sample_weight)
        n = X.shape[0]
        mu = float(np.average(y, weights=sw)) if self.fit_intercept else 0.0
        rs = check_random_state(self.random_state)
        d = self.n_components + 1
        P = rs.normal(scale=self.init_scale, size=(nu, d))
        Q = rs.normal(scale=self.init_scale, size=(ni, d))
        P[:, -1] = 0.0
        Q[:, -1] = 0.0
        data = MFData(np.ascontiguousarray(X[:, 0]), np.ascontiguousarray(X[:, 1]), y, sw,
                      mu, _stream_keys(rs, X))
        init = {"user": P.copy(), "item": Q.copy()} if record else None
        hp = hyper_of(self)
        stP, stQ = zero_state(P), zero_state(Q)
        gP, gQ = _zeros_blocks(2, n, d) if record else (np.zeros((1, d)),) * 2
        rec = MFRecord(bool(record), gP, gQ)

        def step(start, n_ep, out):
            mf_fit(P, Q, data, hp, stP, stQ, rec, start, n_ep, out)

        self.loss_curve_ = self._run_epochs(step, "MatrixFactorization")
        self._P = P
        self._Q = Q
        self.user_factors_ = P[:, :-1]
        self.item_factors_ = Q[:, :-1]
        self.user_bias_ = P[:, -1]
        self.item_bias_ = Q[:, -1]
        self.intercept_ = mu
        self.n_users_ = nu
        self.n_items_ = ni
        self.n_iter_ = self.max_iter
        if not record:
            return None
        # examples holding each user / item
        index = (csr_of_ids(np.ascontiguousarray(X[:, :1]), nu),
                 csr_of_ids(np.ascontiguousarray(X[:, 1:2]), ni))
        return RollbackRecord(gamma={"user": gP, "item": gQ}, init=init, X=X, sample_weight=sw,
                              index=index, keys=data.keys, columns=tuple(data[:2]))

    def _check_queries(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=None, reset=False)
        X = _as_ids(X, 2, "X")
        _check_range(X[:, 0], self.n_users_, "user", "X")
        _check_range(X[:, 1], self.n_items_, "item", "X")
        return X

    def predict(self, X):
        """Predicted ratings.

        Parameters
        ----------
        X : array-like of shape (n, 2)
            ``(user, item)`` ids.

        Returns
        -------
        y_pred : ndarray of shape (n,)
        """
        X = self._check_queries(X)
        P = self._P[X[:, 0]]
        Q = self._Q[X[:, 1]]
        return (self.intercept_ + np.einsum("ij,ij->i", P[:, :-1], Q[:, :-1])
                + P[:, -1] + Q[:, -1])
