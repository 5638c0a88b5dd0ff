"""The knowledge-graph embedding estimator shared by the models of :mod:`.models`.

A model subclass sets ``_spec`` (the spec registered with
:func:`._interface.register`) and may override :meth:`_KGEmbedding._width` and
:meth:`_KGEmbedding._init_embeddings`; everything else (validation, training,
prediction, ranking metrics, the rollback interface) lives here.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._base import (
    RollbackRecord,
    _as_ids,
    _check_query_names,
    _check_range,
    _checked_weights,
    _SparseSGDMixin,
    _stream_keys,
    _zeros_blocks,
)
from ._index import csr_of_ids
from ._kg_train import KGData, KGRecord, kg_fit, kg_scores
from ._optim import hyper_of, zero_state
from ._rollback_models import KGRollbackModel
from ._trajectory import Checkpoints

_GiB = 2**30


class _KGEmbedding(_SparseSGDMixin, BaseEstimator):
    _spec = None  # the model's spec (a namedtuple registered in ._interface)
    _rollback_model_class = KGRollbackModel
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

    # -- model hooks ------------------------------------------------------
    def _width(self):
        """Columns of the entity and relation embedding matrices."""
        return self.n_components

    def _init_embeddings(self, rs, n_entities, n_relations):
        """Initial ``(E, R)`` drawn from ``rs``."""
        d = self._width()
        E = rs.normal(scale=self.init_scale, size=(n_entities, d))
        R = rs.normal(scale=self.init_scale, size=(n_relations, d))
        return E, R

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
        self._fit(X, sample_weight, record=0)
        return self

    def fit_with_rollback(self, X, y=None, sample_weight=None, *, record_negatives=False,
                          trajectory=False):
        """Fit as :meth:`fit` while recording each triple's updates (for GradientRollback).

        Training is the same as :meth:`fit` (bit for bit).

        Parameters
        ----------
        X, y, sample_weight
            As in :meth:`fit`.
        record_negatives : bool, default=False
            Also record each triple's updates to its sampled negatives' rows
            (dense ``n_train * n_entities * dim``).
        trajectory : bool, default=False
            Also keep the optimizer state at the start of every epoch, for the
            trajectory rollback (not with ``max_norm``).

        Returns
        -------
        record : RollbackRecord
            ``gamma`` holds ``"head"``, ``"relation"``, ``"tail"`` (and ``"negatives"``).
        """
        self._check_memory(X, record_negatives, trajectory)
        return self._fit(X, sample_weight, record=2 if record_negatives else 1,
                         checkpoint=trajectory)

    def _check_memory(self, X, record_negatives, trajectory):
        """Clear errors before training for the optional dense records."""
        if trajectory and self.max_norm is not None:
            raise ValueError(
                "rollback='trajectory' differentiates the optimizer steps and does not "
                "cover the max_norm projection; use max_norm=None or another rollback."
            )
        if not (trajectory or record_negatives):
            return
        X = np.asarray(X)
        ne = (self.n_entities if self.n_entities is not None
              else int(np.max(X[:, [0, 2]])) + 1)
        nr = self.n_relations if self.n_relations is not None else int(np.max(X[:, 1])) + 1
        dim = self._width()
        if record_negatives:
            nbytes = 8 * X.shape[0] * ne * dim
            if nbytes > 4 * _GiB:
                raise ValueError(
                    f"record_negatives=True needs n_train * n_entities * dim * 8 = "
                    f"{nbytes / _GiB:.1f} GiB; use record_negatives=False (O(n_train * dim))."
                )
        if trajectory:
            steps = -(-X.shape[0] // self.batch_size)
            # per-epoch checkpoints, one epoch of per-step states, per-triple batch gradients
            nbytes = 8 * dim * ((ne + nr) * 3 * (self.max_iter + steps)
                                + self.batch_size * ne)
            if nbytes > 4 * _GiB:
                raise ValueError(
                    f"rollback='trajectory' needs about {nbytes / _GiB:.1f} GiB for the "
                    "training-run checkpoints; use 'first_order' for models this large."
                )

    def _validated(self, X, sample_weight):
        """Training ids, weights and the entity / relation counts."""
        self._validate_params()
        X = validate_data(self, X, dtype=None, ensure_min_samples=1)
        X = _as_ids(X, 3, "X")
        sw = _checked_weights(sample_weight, X, "triple")
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
        return X, sw, ne, nr

    def _fit(self, X, sample_weight, record, checkpoint=False):
        """Train; ``record`` 0 (none), 1 (own rows) or 2 (also negatives).  Returns the
        :class:`RollbackRecord` when recording."""
        X, sw, ne, nr = self._validated(X, sample_weight)
        n = X.shape[0]
        n_neg = self.n_negatives if self.n_negatives is not None else -1
        rs = check_random_state(self.random_state)
        E, R = self._init_embeddings(rs, ne, nr)
        d = E.shape[1]
        data = KGData(*(np.ascontiguousarray(X[:, c]) for c in range(3)), sw,
                      _stream_keys(rs, X))
        init = {"entity": E.copy(), "relation": R.copy()} if record else None
        hp = hyper_of(self, n_neg, self.max_norm)
        stE, stR = zero_state(E), zero_state(R)
        gH, gT, gR = _zeros_blocks(3, n, d) if record else (np.zeros((1, d)),) * 3
        rec = KGRecord(int(record), gH, gR, gT,
                       np.zeros((n, ne, d) if record == 2 else (1, 1, d)))

        def step(start, n_ep, out):
            kg_fit(self._spec, E, R, data, hp, stE, stR, rec, start, n_ep, out)

        ckpt = None
        if checkpoint:
            # optimizer state at the start of every epoch, for the trajectory rollback
            # (epochs run one kernel call at a time, as with verbose: bit-identical)
            ep_all = self.max_iter
            ckpt = Checkpoints(*(np.empty((ep_all,) + a.shape, dtype=a.dtype)
                                 for a in (E, R, *stE, *stR)))
            plain_step = step

            def step(start, n_ep, out):
                for e in range(start, start + n_ep):
                    for dst, src in zip(ckpt, (E, R, *stE, *stR)):
                        dst[e] = src
                    plain_step(e, 1, out[e - start:e - start + 1])

        self.loss_curve_ = self._run_epochs(step, type(self).__name__)
        self.entity_embeddings_ = E
        self.relation_embeddings_ = R
        self.n_entities_ = ne
        self.n_relations_ = nr
        self.n_iter_ = self.max_iter
        self.train_triples_ = X[sw > 0]
        if not record:
            return None
        gamma = {"head": gH, "relation": gR, "tail": gT}
        if record == 2:
            gamma["negatives"] = rec.negatives
        # examples holding each entity (as head or tail) / relation
        index = (csr_of_ids(np.ascontiguousarray(X[:, [0, 2]]), ne),
                 csr_of_ids(np.ascontiguousarray(X[:, 1:2]), nr))
        return RollbackRecord(gamma=gamma, init=init, X=X, sample_weight=sw, index=index,
                              keys=data.keys, columns=tuple(data[:3]), checkpoints=ckpt)

    # -- prediction -------------------------------------------------------
    def _check_queries(self, X, n_cols=2):
        check_is_fitted(self)
        # queries have 2 columns while training triples have 3, so the
        # feature-count and feature-name checks of validate_data(reset=False) do not apply
        _check_query_names(self, X)
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
        return self._scores(self._check_queries(X, 2))

    def _scores(self, X):
        """Scores of every tail for validated ``(head, relation)`` ids."""
        return kg_scores(self._spec, self.entity_embeddings_, self.relation_embeddings_,
                         np.ascontiguousarray(X[:, 0]), np.ascontiguousarray(X[:, 1]))

    def _top_tail(self, X):
        """Most probable tail of validated ``(head, relation)`` ids."""
        return np.argmax(self._scores(X), axis=1)

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
        return self._top_tail(self._check_queries(X, 2))

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
        scores = self._scores(X[:, :2])
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


KG_DOC = """{name} knowledge-graph embedding for tail prediction.

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
        Number of epochs.
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
