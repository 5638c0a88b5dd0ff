"""Gradient Rollback (Lawrence, Sztyler & Niepert, AAAI 2021)."""

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, MetaEstimatorMixin, TransformerMixin, clone
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from ..utils._delegation import check_k
from . import _kernels as K
from . import _trajectory as TR
from ._models import MatrixFactorization, _KGEmbedding, _progress

# queries per pass of the trajectory rollback: each pass replays the training run once,
# about as long as the adjoints of 2-3 queries, and ticks the progress bar once
_TRAJECTORY_CHUNK = 16

__all__ = ["GradientRollback"]


class GradientRollback(MetaEstimatorMixin, TransformerMixin, BaseEstimator):
    """Explain neural matrix factorisation predictions by Gradient Rollback.

    Training a clone of ``estimator`` (:class:`~skinfluence.DistMult`,
    :class:`~skinfluence.ComplEx` or :class:`~skinfluence.MatrixFactorization`),
    every training example ``i`` accumulates ``gamma_i``, the sum of the
    parameter updates it caused on the rows it owns (head, relation and tail
    embeddings of a triple; user and item rows, biases included, of a
    rating).  Memory is ``O(n_train * n_components)`` whatever the batch size
    or optimizer.  At explanation time ``gamma_j`` is subtracted from those
    rows and the prediction recomputed exactly (``rollback="full"``; for
    knowledge graphs the default scores its first-order part, see below):
    the change is GR's estimate of what retraining without example ``j``
    would do.

    **Exactness.**

    * Plain SGD, any batch size: ``gamma_i`` is exactly ``-learning_rate``
      times the sum of example ``i``'s gradients on its rows (batches are an
      additive split).  If no other example touches those rows, rolling ``i``
      back equals retraining with ``sample_weight[i] = 0`` up to floating
      point rounding (the random stream does not depend on ``i``).  Otherwise
      the error is the indirect effect of ``i`` through other examples'
      later gradients, which the paper bounds by SGD's stability.
    * Adam (lazy, row-wise): ``gamma_i`` adds ``-lr * g_i / (sqrt(v_hat) +
      eps)`` at each step, i.e. each gradient's total effect through the
      first moment (its momentum tail sums to one step) scaled by the
      preconditioner of the step it was computed in.  Approximated: the
      second-moment preconditioner ``v_hat`` (built from all examples) is
      not rolled back, and momentum is credited when the gradient is computed
      rather than spread over the following steps.
    * Knowledge graphs: by default a triple's updates to the rows of its
      *sampled negatives* are not recorded (as in the paper; memory stays
      ``O(n_train * dim)``); its head, relation and tail rows are.  With
      ``record_negatives=True`` they are recorded too (dense
      ``n_train * n_entities * dim`` table, fine for small graphs such as
      Nations, Kinships, UMLS), which makes the split of the trajectory
      exact for every row under SGD.  The softmax over all tails is
      recomputed exactly when rolling back.
    * Norm constraints (``max_norm``) are not rolled back: the recorded step
      is the unprojected one.

    **Full or first-order rollback.**  ``rollback="full"`` (the paper's
    estimator) recomputes the prediction with ``gamma_j`` subtracted.  After
    long training ``gamma_j`` also holds the updates by which ``j`` pulled
    against the other examples near the optimum (which retraining without
    ``j`` would not undo: the others move too), so the full rollback
    overshoots; on Nations the rolled-back probability of the explained tail
    falls to almost 0 for many candidates, and the top-ranked one among
    these saturated candidates is then close to arbitrary.
    ``rollback="first_order"`` scores ``grad p . gamma_j``, the derivative of
    the rollback path at the trained parameters, which does not saturate
    and is cheaper (``O(dim)`` per candidate after one ``O(n_entities *
    dim)`` gradient per query).  Its values are a linearised drop (they can
    exceed ``p``); its rankings agreed better with actual retraining in
    ``benchmarks/gr_evaluation.py``.

    **Trajectory rollback** (``rollback="trajectory"``, knowledge graphs).
    Rolling back ``gamma_j`` assumes ``j``'s updates persist unchanged;
    retraining without ``j`` also changes every later step (other triples'
    gradients, Adam's moments, the negatives' rows).  Training is a
    deterministic, differentiable function of the sample weights (the random
    stream does not depend on them), so this mode reports ``w_j dp/dw_j``:
    the derivative through the *whole training run*, by the adjoint method
    (the prediction's gradient carried back through every optimizer step,
    Adam's first and second moments included; Hara et al., NeurIPS 2019, for
    SGD).  It equals central differences of actual retraining in ``w_j`` to
    about 8 digits (tested), and is the first-order change of ``p`` when ``j``
    is removed.  ``fit`` keeps the optimizer state at the start of every epoch
    (``O(max_iter * (n_entities + n_relations) * dim)`` memory, the training
    is unchanged); each :meth:`transform` call replays the run once and
    costs about three training passes per query (0.4 s per query on Nations),
    so this is the slow, faithful mode, not the millisecond one.  Adam or
    SGD, any batch size, sampled or full softmax, learning-rate decay; not
    ``max_norm``.

    Parameters
    ----------
    estimator : DistMult, ComplEx or MatrixFactorization
        Unfitted model to train with rollback bookkeeping.
    scope : {"neighbourhood", "all"}, default="neighbourhood"
        Which training examples :meth:`transform` scores for a query
        ``(h, r, t)``: those sharing the head/tail entity or the relation
        (the paper's candidate set, whose rollback moves the query's own
        score) or every training triple (rolling back any triple moves the
        softmax normaliser).  For ratings the neighbourhood (same user or
        item) is exact: no other example can change the prediction.
    record_negatives : bool, default=False
        Knowledge graphs only: also record each triple's updates to its
        sampled negatives' entity rows (memory ``n_train * n_entities *
        dim``).
    rollback : {"auto", "full", "first_order", "trajectory"}, default="auto"
        How :meth:`transform` turns ``gamma_j`` into a predicted drop: the
        exact prediction with ``gamma_j`` subtracted (``"full"``, the paper's
        estimator), or its first-order part ``grad p . gamma_j``.
        ``"auto"``: first order for knowledge graphs (where the full
        rollback saturates the softmax, see above), full for ratings (the
        rating is bilinear, so the two differ only for examples holding both
        the query's user and item, and the full rollback is the exact one
        under SGD).  ``"trajectory"`` (knowledge graphs): ``w_j dp/dw_j``
        through the whole training run (see above); it must be set before
        :meth:`fit`, which then keeps per-epoch checkpoints.  The other
        choices only affect explanations, not :meth:`fit`.

    Attributes
    ----------
    estimator_ : estimator
        The clone trained with bookkeeping (same parameters as a plain fit
        with the same ``random_state``).
    gamma_ : dict of ndarray
        Per-example recorded updates: ``"head"``, ``"relation"``, ``"tail"``
        of shape ``(n_train, dim)`` for knowledge graphs (plus
        ``"negatives"`` of shape ``(n_train, n_entities, dim)`` with
        ``record_negatives=True``); ``"user"``,
        ``"item"`` of shape ``(n_train, n_components + 1)`` (last column: bias)
        for ratings.
    init_params_ : dict of ndarray
        Parameters before training (``"entity"``/``"relation"`` or
        ``"user"``/``"item"``).
    residual_ : dict of float
        ``|theta_final - theta_init - sum_i gamma_i| / |theta_final -
        theta_init|`` per parameter group: the share of the training
        trajectory the recorded updates do not account for.  Zero (up to
        rounding) under plain SGD for relation, user and item rows; under
        Adam it measures the momentum / preconditioner approximation; for
        entity rows it also contains the unrecorded negative-sample updates.
    X_train_ : ndarray of shape (n_train, 3) or (n_train, 2)
        Training ids, row ``j`` of :meth:`transform` columns.
    n_train_ : int

    Examples
    --------
    >>> from skinfluence import DistMult, GradientRollback
    >>> from skinfluence.datasets import load_nations
    >>> data = load_nations()
    >>> gr = GradientRollback(DistMult(n_entities=data.n_entities,
    ...                                n_relations=data.n_relations,
    ...                                random_state=0)).fit(data.train)
    >>> idx, delta = gr.explain(data.test[:3, :2], k=5)   # top-1 predictions
    >>> idx.shape, delta.shape
    ((3, 5), (3, 5))
    >>> bool(delta[0, 0] >= delta[0, 1])
    True
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "scope": [StrOptions({"neighbourhood", "all"})],
        "record_negatives": ["boolean"],
        "rollback": [StrOptions({"auto", "full", "first_order", "trajectory"})],
    }

    def __init__(self, estimator, *, scope="neighbourhood", record_negatives=False,
                 rollback="auto"):
        self.estimator = estimator
        self.scope = scope
        self.record_negatives = record_negatives
        self.rollback = rollback

    def _kind(self, est):
        if isinstance(est, _KGEmbedding):
            return "kg"
        if isinstance(est, MatrixFactorization):
            return "mf"
        raise TypeError(
            "GradientRollback supports skinfluence.DistMult, ComplEx and "
            f"MatrixFactorization; got {type(est).__name__}. Other models do not "
            "expose the per-example sparse updates Gradient Rollback records."
        )

    def fit(self, X, y=None, sample_weight=None):
        """Train a clone of the estimator while recording per-example updates.

        Parameters
        ----------
        X : array-like
            ``(n, 3)`` triples for knowledge-graph models, ``(n, 2)``
            ``(user, item)`` pairs for :class:`MatrixFactorization`.
        y : array-like of shape (n,), default=None
            Ratings (MatrixFactorization only).
        sample_weight : array-like of shape (n,), default=None

        Returns
        -------
        self : object
        """
        self._validate_params()
        kind = self._kind(self.estimator)
        est = clone(self.estimator)
        if kind == "kg":
            trajectory = self.rollback == "trajectory"
            self._check_memory(est, X, trajectory)
            rec = est._fit(X, sample_weight, record=2 if self.record_negatives else 1,
                           checkpoint=trajectory)
            self._checkpoints = rec["checkpoints"]
            self.gamma_ = {k: rec[k] for k in ("head", "relation", "tail")}
            if self.record_negatives:
                self.gamma_["negatives"] = rec["negatives"]
        else:
            if self.rollback == "trajectory":
                raise ValueError(
                    "rollback='trajectory' is implemented for the knowledge-graph models "
                    "(DistMult, ComplEx); use 'full' or 'first_order' for MatrixFactorization."
                )
            if y is None:
                raise ValueError("MatrixFactorization needs ratings y.")
            rec = est._fit(X, y, sample_weight, record=True)
            self.gamma_ = {k: rec[k] for k in ("user", "item")}
        self.estimator_ = est
        self.kind_ = kind
        self.init_params_ = rec["init"]
        self.residual_ = self._residuals(est, rec)
        self.X_train_ = rec["X"]
        self.sample_weight_ = rec["sample_weight"]
        self.n_train_ = rec["X"].shape[0]
        Xt = np.ascontiguousarray(self.X_train_)
        if kind == "kg":
            # examples holding each entity (as head or tail) / relation
            self._ent_index = K.csr_of_ids(np.ascontiguousarray(Xt[:, [0, 2]]),
                                           est.n_entities_)
            self._rel_index = K.csr_of_ids(np.ascontiguousarray(Xt[:, 1:2]),
                                           est.n_relations_)
        else:
            self._user_index = K.csr_of_ids(np.ascontiguousarray(Xt[:, :1]), est.n_users_)
            self._item_index = K.csr_of_ids(np.ascontiguousarray(Xt[:, 1:2]), est.n_items_)
        return self

    def _check_memory(self, est, X, trajectory):
        """Clear errors before training for the optional dense records."""
        if trajectory and est.max_norm is not None:
            raise ValueError(
                "rollback='trajectory' differentiates the optimizer steps and does not "
                "cover the max_norm projection; use max_norm=None or another rollback."
            )
        if not (trajectory or self.record_negatives):
            return
        X = np.asarray(X)
        ne = (est.n_entities if est.n_entities is not None
              else int(np.max(X[:, [0, 2]])) + 1)
        nr = est.n_relations if est.n_relations is not None else int(np.max(X[:, 1])) + 1
        dim = est.n_components * (2 if est._model_id == K.COMPLEX else 1)
        if self.record_negatives:
            nbytes = 8 * X.shape[0] * ne * dim
            if nbytes > 4 * 2**30:
                raise ValueError(
                    f"record_negatives=True needs n_train * n_entities * dim * 8 = "
                    f"{nbytes / 2**30:.1f} GiB; use record_negatives=False (O(n_train * dim))."
                )
        if trajectory:
            steps = -(-X.shape[0] // est.batch_size)
            # per-epoch checkpoints, one epoch of per-step states, per-triple batch gradients
            nbytes = 8 * dim * ((ne + nr) * 3 * (est.max_iter + steps) + est.batch_size * ne)
            if nbytes > 4 * 2**30:
                raise ValueError(
                    f"rollback='trajectory' needs about {nbytes / 2**30:.1f} GiB for the "
                    "training-run checkpoints; use 'first_order' for models this large."
                )

    @staticmethod
    def _residuals(est, rec):
        """Relative part of each parameter group's movement not accounted for
        by the recorded per-example updates."""
        X = rec["X"]
        if "user" in rec:
            groups = {"user": (est._P, [(X[:, 0], rec["user"])]),
                      "item": (est._Q, [(X[:, 1], rec["item"])])}
        else:
            groups = {"entity": (est.entity_embeddings_,
                                 [(X[:, 0], rec["head"]), (X[:, 2], rec["tail"])]),
                      "relation": (est.relation_embeddings_, [(X[:, 1], rec["relation"])])}
        out = {}
        for name, (final, parts) in groups.items():
            moved = final - rec["init"][name]
            acc = np.zeros_like(final)
            for rows, gam in parts:
                K.scatter_add_rows(acc, np.ascontiguousarray(rows), gam)
            if name == "entity" and rec.get("negatives") is not None:
                acc += rec["negatives"].sum(axis=0)
            den = np.linalg.norm(moved)
            out[name] = float(np.linalg.norm(moved - acc) / den) if den > 0 else 0.0
        return out

    # -- delegation ---------------------------------------------------------
    def predict(self, X):
        """Delegate to ``estimator_.predict``."""
        check_is_fitted(self)
        return self.estimator_.predict(X)

    def predict_proba(self, X):
        """Delegate to ``estimator_.predict_proba`` (knowledge-graph models)."""
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    def decision_function(self, X):
        """Delegate to ``estimator_.decision_function`` (knowledge-graph models)."""
        check_is_fitted(self)
        return self.estimator_.decision_function(X)

    def score(self, X, y=None):
        """Delegate to ``estimator_.score``."""
        check_is_fitted(self)
        if self.kind_ == "kg":
            return self.estimator_.score(X)
        return self.estimator_.score(X, y)

    # -- explanations -------------------------------------------------------
    def _queries(self, X):
        check_is_fitted(self)
        est = self.estimator_
        X = check_array(X, dtype=None)
        if self.kind_ == "kg":
            if X.ndim != 2 or X.shape[1] not in (2, 3):
                raise ValueError(
                    "X must be (n, 3) (head, relation, tail) triples to explain, or "
                    f"(n, 2) (head, relation) queries (their top-1 tail); got {X.shape}."
                )
            if X.shape[1] == 2:
                X2 = est._check_queries(X, 2)
                t = est.predict(X2)
                X = np.column_stack([X2, t])
            else:
                X = est._check_queries(X, 3)
        else:
            X = est._check_queries(X)
        return X

    def _deltas(self, X):
        est = self.estimator_
        g = self.gamma_
        Xt = self.X_train_
        if self.kind_ == "kg":
            qh, qr, qt = (np.ascontiguousarray(X[:, c]) for c in range(3))
            ptr, idx = K.kg_candidates(qh, qr, qt, *self._ent_index, *self._rel_index,
                                       self.n_train_, self.scope == "all")
            cols = [np.ascontiguousarray(Xt[:, c]) for c in range(3)]
            if self.rollback == "trajectory":
                vals = self._trajectory_deltas(X, ptr, idx)
            elif self.rollback in ("auto", "first_order"):
                neg = g.get("negatives")
                vals = K.kg_first_order_deltas(
                    est._model_id, est.entity_embeddings_, est.relation_embeddings_,
                    qh, qr, qt, ptr, idx, *cols, g["head"], g["relation"], g["tail"],
                    neg if neg is not None else np.zeros((1, 1, 1)), neg is not None)
            elif "negatives" in g:
                vals = K.kg_rollback_deltas_dense(
                    est._model_id, est.entity_embeddings_, est.relation_embeddings_,
                    qh, qr, qt, ptr, idx, *cols, g["head"], g["relation"], g["tail"],
                    g["negatives"])
            else:
                vals = K.kg_rollback_deltas(
                    est._model_id, est.entity_embeddings_, est.relation_embeddings_,
                    qh, qr, qt, ptr, idx, *cols, g["head"], g["relation"], g["tail"])
        else:
            qu, qi = np.ascontiguousarray(X[:, 0]), np.ascontiguousarray(X[:, 1])
            ptr, idx = K.mf_candidates(qu, qi, *self._user_index, *self._item_index,
                                       self.n_train_)
            fn = (K.mf_first_order_deltas if self.rollback == "first_order"
                  else K.mf_rollback_deltas)
            vals = fn(est._P, est._Q, qu, qi, ptr, idx, np.ascontiguousarray(Xt[:, 0]),
                      np.ascontiguousarray(Xt[:, 1]), g["user"], g["item"])
        # zero-weight examples never updated anything: drop them explicitly
        keep = self.sample_weight_[idx] > 0
        if not np.all(keep):
            kept_before = np.concatenate([[0], np.cumsum(keep)])
            ptr = kept_before[ptr]
            idx, vals = idx[keep], vals[keep]
        return ptr, idx, vals

    def _trajectory_deltas(self, X, ptr, idx):
        ck = getattr(self, "_checkpoints", None)
        if ck is None:
            raise ValueError(
                "rollback='trajectory' needs the training-run checkpoints taken during fit; "
                "fit with rollback='trajectory' (set_params after fit is not enough)."
            )
        est = self.estimator_
        E, R = est.entity_embeddings_, est.relation_embeddings_
        Xt = self.X_train_
        cols = [np.ascontiguousarray(Xt[:, c]) for c in range(3)]
        opt = K.ADAM if est.optimizer == "adam" else K.SGD
        vals = np.empty(idx.shape[0])
        starts = range(0, X.shape[0], _TRAJECTORY_CHUNK)
        # the estimator's verbose setting: these passes take seconds per query
        bar = _progress(est.verbose, len(starts), "trajectory rollback")
        for lo in starts:
            Xc = X[lo:lo + _TRAJECTORY_CHUNK]
            lamE = np.empty((Xc.shape[0],) + E.shape)
            lamR = np.empty((Xc.shape[0],) + R.shape)
            TR.kg_proba_grads(est._model_id, E, R, *(np.ascontiguousarray(Xc[:, c])
                                                     for c in range(3)), lamE, lamR)
            out = np.zeros((Xc.shape[0], self.n_train_))
            TR.kg_trajectory_deltas(
                est._model_id, *cols, self.sample_weight_, ck["keys"], est.batch_size,
                ck["n_negatives"], float(est.learning_rate), float(est.learning_rate_decay),
                float(est.alpha), opt, float(est.beta1), float(est.beta2), float(est.epsilon),
                ck["E"], ck["R"], ck["mE"], ck["vE"], ck["tE"], ck["mR"], ck["vR"], ck["tR"],
                lamE, lamR, out)
            for a in range(Xc.shape[0]):
                sl = slice(ptr[lo + a], ptr[lo + a + 1])
                vals[sl] = out[a, idx[sl]]
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return vals

    def transform(self, X):
        """Predicted effect of rolling back each training example.

        Parameters
        ----------
        X : array-like
            Knowledge graphs: ``(n, 3)`` triples ``(h, r, t)`` or ``(n, 2)``
            queries ``(h, r)`` (explaining the model's top-1 tail).  Ratings:
            ``(n, 2)`` ``(user, item)`` pairs.

        Returns
        -------
        deltas : scipy.sparse.csr_matrix of shape (n, n_train)
            ``deltas[a, j]`` is the predicted *drop* (to first order under
            ``rollback="first_order"``, the knowledge-graph default) of ``p(t | h, r)`` (or of
            the predicted rating) when example ``j``'s updates are rolled
            back: positive means ``j`` supported the prediction.  Examples
            outside :attr:`scope` are structural zeros.
        """
        X = self._queries(X)
        ptr, idx, vals = self._deltas(X)
        return sp.csr_matrix((vals, idx, ptr), shape=(X.shape[0], self.n_train_))

    def explain(self, X, k=10):
        """The ``k`` training examples whose rollback lowers the prediction most.

        Parameters
        ----------
        X : array-like
            As in :meth:`transform`.
        k : int, default=10
            Number of explanations per query, capped at the largest number of
            candidates (training examples in :attr:`scope`) of the queries.

        Returns
        -------
        indices : ndarray of shape (n, min(k, m))
            Rows of the training data, most influential (largest predicted
            drop) first, where ``m`` is the largest number of candidates of a
            query (at least 1); ``-1`` pads queries with fewer candidates.
        deltas : ndarray of shape (n, min(k, m))
            The predicted drops (``nan`` where padded).  Negative values mean
            even the best candidates *opposed* the prediction.
        """
        k = check_k(k)
        X = self._queries(X)
        ptr, idx, vals = self._deltas(X)
        n = X.shape[0]
        k = min(k, max(1, int(np.diff(ptr).max(initial=0))))
        out_i = np.full((n, k), -1, dtype=np.int64)
        out_d = np.full((n, k), np.nan)
        for a in range(n):
            lo, hi = ptr[a], ptr[a + 1]
            if hi == lo:
                continue
            v = vals[lo:hi]
            m = min(k, hi - lo)
            top = np.argpartition(-v, m - 1)[:m] if m < v.size else np.arange(v.size)
            # sort by drop, ties by training index for determinism
            top = top[np.lexsort((idx[lo:hi][top], -v[top]))]
            out_i[a, :m] = idx[lo:hi][top]
            out_d[a, :m] = v[top]
        return out_i, out_d
