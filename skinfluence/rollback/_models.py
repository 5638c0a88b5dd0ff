"""Neural matrix factorisation estimators trained by the numba loops in
:mod:`._kernels`: DistMult and ComplEx for knowledge-base completion and a
biased matrix factorisation for (user, item, rating) data.
"""

import numbers
import time

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    validate_data,
)

from . import _kernels as K

__all__ = ["DistMult", "ComplEx", "MatrixFactorization"]


def _as_ids(X, n_cols, what):
    """Integer id matrix of shape (n, n_cols) from an already validated array."""
    X = np.asarray(X)
    if X.dtype.kind in "iuf" and X.size and np.nanmin(X) < 0:
        raise ValueError(f"Negative values in data: {what} contains negative ids; "
                         "ids must be >= 0.")
    if X.ndim != 2 or X.shape[1] != n_cols:
        got = (f"{X.shape[0]} sample(s) with {X.shape[1]} feature(s)"
               if X.ndim == 2 else f"shape {X.shape}")
        raise ValueError(
            f"{what} must have shape (n_samples, {n_cols}) of integer ids; got {got}."
        )
    if X.dtype.kind == "f":
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{what} contains NaN or infinity; ids must be integers.")
        if not np.all(X == np.round(X)):
            raise ValueError(f"{what} must contain integer ids; got non-integer values.")
    elif X.dtype.kind not in "iub":
        raise ValueError(f"{what} must contain integer ids; got dtype {X.dtype}.")
    X = X.astype(np.int64)
    if X.size and X.min() < 0:
        raise ValueError(f"Negative values in data: {what} contains negative ids; "
                         "ids must be >= 0.")
    return np.ascontiguousarray(X)


def _check_range(col, n, name, what):
    if col.size and col.max() >= n:
        raise ValueError(
            f"{what} contains {name} id {int(col.max())} but the model has only "
            f"{n} {name}s (ids 0..{n - 1}); pass n_{name}s= explicitly at fit if "
            f"evaluation data holds ids absent from training."
        )


def _zeros_blocks(m, n, d):
    """``m`` zero C-contiguous ``(n, d)`` arrays carved from one allocation.

    One large block instead of ``m`` separate ones: numpy asks the kernel for
    huge pages on allocations of 4 MiB or more, and the bookkeeping arrays
    are first touched inside the training loop, where thousands of 4 KiB
    page faults measurably add to the fit time.
    """
    buf = np.zeros(m * n * d)
    return [buf[j * n * d:(j + 1) * n * d].reshape(n, d) for j in range(m)]


def _progress(verbose, total, desc):
    if not verbose:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional
        return None
    return tqdm(total=total, desc=desc)


class _SparseSGDMixin:
    """Shared optimisation parameters and the epoch loop with progress."""

    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "optimizer": [StrOptions({"sgd", "adam"})],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "learning_rate_decay": [Interval(numbers.Real, 0, 1, closed="right")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "init_scale": [Interval(numbers.Real, 0, None, closed="neither")],
        "beta1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def _run_epochs(self, step, desc):
        """Call ``step(epoch_start, n_epochs, losses_slice)`` over all epochs."""
        losses = np.empty(self.max_iter)
        bar = _progress(self.verbose, self.max_iter, desc)
        t0 = time.perf_counter()
        if not self.verbose:
            step(0, self.max_iter, losses)
        else:
            for ep in range(self.max_iter):
                step(ep, 1, losses[ep:ep + 1])
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[ep]:.4f}")
                else:
                    print(f"[{desc}] epoch {ep + 1}/{self.max_iter} "
                          f"loss={losses[ep]:.4f} ({time.perf_counter() - t0:.1f}s)")
            if bar is not None:
                bar.close()
        if not np.all(np.isfinite(losses)):
            raise FloatingPointError(
                f"{desc}: training diverged (non-finite loss); lower learning_rate "
                f"or add alpha / max_norm regularisation."
            )
        return losses


class _KGEmbedding(_SparseSGDMixin, BaseEstimator):
    _model_id = None
    _parameter_constraints = {
        **_SparseSGDMixin._parameter_constraints,
        "n_entities": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_relations": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_negatives": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "max_norm": [Interval(numbers.Real, 0, None, closed="neither"), None],
    }

    def __init__(
        self,
        n_components=10,
        *,
        n_entities=None,
        n_relations=None,
        n_negatives=13,
        optimizer="adam",
        learning_rate=0.01,
        learning_rate_decay=1.0,
        batch_size=32,
        max_iter=100,
        alpha=0.0,
        max_norm=None,
        init_scale=0.1,
        beta1=0.9,
        beta2=0.999,
        epsilon=1e-8,
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.n_entities = n_entities
        self.n_relations = n_relations
        self.n_negatives = n_negatives
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.learning_rate_decay = learning_rate_decay
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.alpha = alpha
        self.max_norm = max_norm
        self.init_scale = init_scale
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.allow_nan = False
        tags.input_tags.positive_only = True  # ids are >= 0
        return tags

    # -- fitting ----------------------------------------------------------
    def fit(self, X, y=None, sample_weight=None):
        """Train the embeddings on ``(head, relation, tail)`` triples.

        Parameters
        ----------
        X : array-like of shape (n_triples, 3)
            Integer ids: ``X[:, 0]`` heads and ``X[:, 2]`` tails in
            ``[0, n_entities)``, ``X[:, 1]`` relations in ``[0, n_relations)``.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_triples,), default=None
            Per-triple loss weights.  A weight of 0 removes the triple while
            every other triple keeps its batch neighbours and negatives.

        Returns
        -------
        self : object
        """
        self._fit(X, sample_weight, record=False)
        return self

    def _fit(self, X, sample_weight, record, checkpoint=False):
        self._validate_params()
        X = validate_data(self, X, dtype=None, ensure_min_samples=1)
        X = _as_ids(X, 3, "X")
        n = X.shape[0]
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if np.any(sw < 0):
            raise ValueError("sample_weight must be non-negative.")
        if not np.any(sw > 0):
            raise ValueError("sample_weight is zero for every triple; nothing to fit.")
        ne = (self.n_entities if self.n_entities is not None
              else int(max(X[:, 0].max(), X[:, 2].max())) + 1)
        nr = self.n_relations if self.n_relations is not None else int(X[:, 1].max()) + 1
        if max(X[:, 0].max(), X[:, 2].max()) >= ne:
            raise ValueError(
                f"X contains entity id {int(max(X[:, 0].max(), X[:, 2].max()))} but "
                f"n_entities={ne}."
            )
        _check_range(X[:, 1], nr, "relation", "X")
        if ne < 2:
            raise ValueError("Need at least 2 entities to rank tails.")
        n_neg = self.n_negatives
        if n_neg is None:
            n_neg = -1
        d = self.n_components * (2 if self._model_id == K.COMPLEX else 1)
        rs = check_random_state(self.random_state)
        E = rs.normal(scale=self.init_scale, size=(ne, d))
        R = rs.normal(scale=self.init_scale, size=(nr, d))
        if self._model_id == K.DISTMULT:
            # DistMult scores are products of three small numbers: start the
            # relation diagonals at 1 +- noise so early gradients are not tiny
            R += 1.0
        seed = np.uint64(rs.randint(0, 2**31 - 1)) * np.uint64(2**31) + np.uint64(
            rs.randint(0, 2**31 - 1))
        keys = K.content_keys(X, seed)
        init = {"entity": E.copy(), "relation": R.copy()} if record else None
        opt = K.ADAM if self.optimizer == "adam" else K.SGD
        mE, vE = np.zeros_like(E), np.zeros_like(E)
        mR, vR = np.zeros_like(R), np.zeros_like(R)
        tE = np.zeros(ne, dtype=np.int64)
        tR = np.zeros(nr, dtype=np.int64)
        if record:
            gH, gT, gR = _zeros_blocks(3, n, d)
        else:
            gH = gT = gR = np.zeros((1, d))
        gN = np.zeros((n, ne, d) if record == 2 else (1, 1, d))
        heads, rels, tails = (np.ascontiguousarray(X[:, c]) for c in range(3))
        max_norm = float(self.max_norm) if self.max_norm is not None else 0.0

        def step(start, n_ep, out):
            K.kg_fit(self._model_id, E, R, heads, rels, tails, sw, keys, start, n_ep,
                     self.batch_size, n_neg, float(self.learning_rate),
                     float(self.learning_rate_decay), float(self.alpha),
                     opt, float(self.beta1), float(self.beta2), float(self.epsilon),
                     max_norm, mE, vE, tE, mR, vR, tR, int(record), gH, gR, gT, gN, out)

        ckpt = None
        if checkpoint:
            # optimizer state at the start of every epoch, for the trajectory rollback
            # (epochs run one kernel call at a time, as with verbose: bit-identical)
            ep_all = self.max_iter
            ckpt = {"E": np.empty((ep_all, ne, d)), "R": np.empty((ep_all, nr, d)),
                    "mE": np.empty((ep_all, ne, d)), "vE": np.empty((ep_all, ne, d)),
                    "tE": np.empty((ep_all, ne), dtype=np.int64),
                    "mR": np.empty((ep_all, nr, d)), "vR": np.empty((ep_all, nr, d)),
                    "tR": np.empty((ep_all, nr), dtype=np.int64),
                    "keys": keys, "n_negatives": n_neg}
            plain_step = step

            def step(start, n_ep, out):
                for e in range(start, start + n_ep):
                    for name, arr in (("E", E), ("R", R), ("mE", mE), ("vE", vE), ("tE", tE),
                                      ("mR", mR), ("vR", vR), ("tR", tR)):
                        ckpt[name][e] = arr
                    plain_step(e, 1, out[e - start:e - start + 1])

        self.loss_curve_ = self._run_epochs(step, type(self).__name__)
        self.entity_embeddings_ = E
        self.relation_embeddings_ = R
        self.n_entities_ = ne
        self.n_relations_ = nr
        self.n_iter_ = self.max_iter
        self.train_triples_ = X[sw > 0]
        if record:
            return {"head": gH, "relation": gR, "tail": gT, "X": X, "sample_weight": sw,
                    "init": init, "negatives": gN if record == 2 else None,
                    "checkpoints": ckpt}
        return None

    # -- prediction -------------------------------------------------------
    def _check_queries(self, X, n_cols=2):
        check_is_fitted(self)
        # queries have 2 columns while training triples have 3, so the
        # feature-count check of validate_data(reset=False) does not apply
        X = check_array(X, dtype=None, ensure_all_finite=True)
        X = _as_ids(X, n_cols, "X")
        ent = X[:, 0] if n_cols == 2 else np.concatenate([X[:, 0], X[:, 2]])
        if ent.size and ent.max() >= self.n_entities_:
            raise ValueError(
                f"X contains entity id {int(ent.max())} but the model has "
                f"{self.n_entities_} entities; pass n_entities= at fit."
            )
        _check_range(X[:, 1], self.n_relations_, "relation", "X")
        return X

    def decision_function(self, X):
        """Scores of every tail for each ``(head, relation)`` query.

        Parameters
        ----------
        X : array-like of shape (n_queries, 2)
            ``(head, relation)`` ids.

        Returns
        -------
        scores : ndarray of shape (n_queries, n_entities)
        """
        X = self._check_queries(X, 2)
        return K.kg_scores(self._model_id, self.entity_embeddings_,
                           self.relation_embeddings_,
                           np.ascontiguousarray(X[:, 0]), np.ascontiguousarray(X[:, 1]))

    def predict_proba(self, X):
        """Softmax probability of every tail for each ``(head, relation)``.

        Parameters
        ----------
        X : array-like of shape (n_queries, 2)
            ``(head, relation)`` ids.

        Returns
        -------
        proba : ndarray of shape (n_queries, n_entities)
        """
        s = self.decision_function(X)
        s -= s.max(axis=1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=1, keepdims=True)
        return s

    def predict(self, X):
        """Most probable tail for each ``(head, relation)`` query.

        Parameters
        ----------
        X : array-like of shape (n_queries, 2)

        Returns
        -------
        tails : ndarray of shape (n_queries,)
        """
        return np.argmax(self.decision_function(X), axis=1)

    def evaluate(self, X, ks=(1, 3, 10), filter_triples=None):
        """Filtered tail-ranking metrics on ``(head, relation, tail)`` triples.

        Each true tail is ranked among all entities after removing the other
        known tails of the same ``(head, relation)`` (the *filtered* setting);
        ties count half.

        Parameters
        ----------
        X : array-like of shape (n_triples, 3)
        ks : tuple of int, default=(1, 3, 10)
            Cut-offs for Hits@k.
        filter_triples : array-like of shape (m, 3), default=None
            Known true triples to filter; ``None`` uses the training triples
            plus ``X``.

        Returns
        -------
        metrics : dict
            ``"mrr"``, ``"mean_rank"`` and ``"hits@k"`` for each ``k``.
        """
        X = self._check_queries(X, 3)
        if filter_triples is None:
            filter_triples = np.concatenate([self.train_triples_, X])
        else:
            filter_triples = _as_ids(check_array(filter_triples, dtype=None), 3,
                                     "filter_triples")
        scores = self.decision_function(X[:, :2])
        ne = self.n_entities_
        known = {}
        for h, r, t in filter_triples:
            known.setdefault((int(h), int(r)), []).append(int(t))
        ranks = np.empty(X.shape[0])
        for a, (h, r, t) in enumerate(X):
            s = scores[a].copy()
            st = s[t]
            others = [o for o in known.get((int(h), int(r)), ()) if o != t and o < ne]
            s[others] = -np.inf
            s[t] = -np.inf
            ranks[a] = 1.0 + np.sum(s > st) + 0.5 * np.sum(s == st)
        out = {"mrr": float(np.mean(1.0 / ranks)), "mean_rank": float(np.mean(ranks))}
        for k in ks:
            out[f"hits@{k}"] = float(np.mean(ranks <= k))
        return out

    def score(self, X, y=None):
        """Filtered mean reciprocal rank of the true tails of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_triples, 3)
        y : None
            Ignored.

        Returns
        -------
        mrr : float
        """
        return self.evaluate(X, ks=())["mrr"]


_KG_DOC = """{name} knowledge-graph embedding for tail prediction.

    {score}

    Trained with softmax cross-entropy of the true tail against
    ``n_negatives`` uniformly sampled other entities (or all entities when
    ``n_negatives=None``) by mini-batch SGD or (lazy, row-wise) Adam in a
    numba loop.  Batch order and negatives come from a hash of the random
    seed, the epoch and the triple's content, so ``random_state`` makes
    training bit-for-bit reproducible and ``sample_weight=0`` removes a triple
    without changing what any other triple sees.  Wrap it in
    :class:`~skinfluence.GradientRollback` to explain its predictions.

    Parameters
    ----------
    n_components : int, default=10
        Embedding size{complex_note}.
    n_entities, n_relations : int, default=None
        Number of entity / relation ids; ``None`` infers ``max id + 1`` from
        the training triples.  Pass the dataset's counts when test data may
        hold ids absent from training.
    n_negatives : int or None, default=13
        Sampled negatives per triple and epoch (drawn with replacement from
        the entities other than the true tail); ``None`` uses the full softmax
        over all entities.
    optimizer : {{"adam", "sgd"}}, default="adam"
        Adam is applied lazily: only rows a batch touches are updated, with
        per-row step counts.
    learning_rate : float, default=0.01
    learning_rate_decay : float in (0, 1], default=1.0
        Epoch ``e`` (from 0) uses ``learning_rate * learning_rate_decay ** e``
        (an exponential decay as in the paper's training schedule).
    batch_size : int, default=32
    max_iter : int, default=100
        Number of epochs.  The defaults reach a filtered test MRR of about
        0.72 (DistMult) on Nations in a fraction of a second.
    alpha : float, default=0.0
        L2 penalty ``alpha/2 * (|e_h|^2 + |w_r|^2 + |e_t|^2)`` added to each
        triple's loss (so it only touches that triple's rows).
    max_norm : float or None, default=None
        If set, entity rows are projected back to this L2 norm after each
        update (1.0 gives the unit-norm constraint).
    init_scale : float, default=0.1
        Standard deviation of the normal initialisation{init_note}.
    beta1, beta2, epsilon : float
        Adam parameters.
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
        Print (or show with tqdm) the loss per epoch.

    Attributes
    ----------
    entity_embeddings_ : ndarray of shape (n_entities_, {dim})
    relation_embeddings_ : ndarray of shape (n_relations_, {dim})
    n_entities_, n_relations_ : int
    loss_curve_ : ndarray of shape (max_iter,)
        Mean training loss per epoch.
    n_iter_ : int
    train_triples_ : ndarray of shape (n, 3)
        Training triples with positive weight (used to filter rankings).
    n_features_in_ : int
        Always 3.

    Examples
    --------
    >>> from skinfluence import {name}
    >>> from skinfluence.datasets import load_nations
    >>> data = load_nations()
    >>> model = {name}(n_entities=data.n_entities, n_relations=data.n_relations,
    ...                random_state=0).fit(data.train)
    >>> model.predict_proba(data.test[:2, :2]).shape
    (2, 14)
    >>> model.score(data.test) > 0.5
    True
    """


class DistMult(_KGEmbedding):
    __doc__ = _KG_DOC.format(
        name="DistMult",
        score="Score ``s(h, r, t) = sum_k e_h[k] w_r[k] e_t[k]`` (Yang et al., 2015).",
        complex_note="",
        init_note=" (relation vectors are centred at 1)",
        dim="n_components",
    )
    _model_id = K.DISTMULT


class ComplEx(_KGEmbedding):
    __doc__ = _KG_DOC.format(
        name="ComplEx",
        score=("Score ``s(h, r, t) = Re(sum_k e_h[k] w_r[k] conj(e_t[k]))`` with "
               "complex embeddings (Trouillon et al., 2016)."),
        complex_note=" (complex numbers: real parts in the first half of each row, "
                     "imaginary parts in the second)",
        init_note="",
        dim="2 * n_components",
    )
    _model_id = K.COMPLEX


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

    def _fit(self, X, y, sample_weight, record):
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=None, y_numeric=True)
        X = _as_ids(X, 2, "X")
        y = np.ascontiguousarray(y, dtype=np.float64)
        n = X.shape[0]
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if np.any(sw < 0):
            raise ValueError("sample_weight must be non-negative.")
        if not np.any(sw > 0):
            raise ValueError("sample_weight is zero for every rating; nothing to fit.")
        nu = self.n_users if self.n_users is not None else int(X[:, 0].max()) + 1
        ni = self.n_items if self.n_items is not None else int(X[:, 1].max()) + 1
        _check_range(X[:, 0], nu, "user", "X")
        _check_range(X[:, 1], ni, "item", "X")
        mu = float(np.average(y, weights=sw)) if self.fit_intercept else 0.0
        rs = check_random_state(self.random_state)
        d = self.n_components + 1
        P = rs.normal(scale=self.init_scale, size=(nu, d))
        Q = rs.normal(scale=self.init_scale, size=(ni, d))
        P[:, -1] = 0.0
        Q[:, -1] = 0.0
        seed = np.uint64(rs.randint(0, 2**31 - 1)) * np.uint64(2**31) + np.uint64(
            rs.randint(0, 2**31 - 1))
        keys = K.content_keys(X, seed)
        init = {"user": P.copy(), "item": Q.copy()} if record else None
        opt = K.ADAM if self.optimizer == "adam" else K.SGD
        mP, vP, mQ, vQ = (np.zeros_like(P), np.zeros_like(P),
                          np.zeros_like(Q), np.zeros_like(Q))
        tP = np.zeros(nu, dtype=np.int64)
        tQ = np.zeros(ni, dtype=np.int64)
        if record:
            gP, gQ = _zeros_blocks(2, n, d)
        else:
            gP = gQ = np.zeros((1, d))
        users = np.ascontiguousarray(X[:, 0])
        items = np.ascontiguousarray(X[:, 1])

        def step(start, n_ep, out):
            K.mf_fit(P, Q, users, items, y, sw, mu, keys, start, n_ep, self.batch_size,
                     float(self.learning_rate), float(self.learning_rate_decay),
                     float(self.alpha), opt,
                     float(self.beta1), float(self.beta2), float(self.epsilon),
                     mP, vP, tP, mQ, vQ, tQ, bool(record), gP, gQ, out)

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
        if record:
            return {"user": gP, "item": gQ, "X": X, "sample_weight": sw, "init": init}
        return None

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
