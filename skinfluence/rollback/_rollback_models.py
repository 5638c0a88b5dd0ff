"""What :class:`~skinfluence.GradientRollback` sees of a fitted model.

``model.rollback_model()`` returns one of the classes here: the trained
parameters and the rollback computations (candidates, predicted drops,
residuals) on the :class:`~skinfluence.rollback._base.RollbackRecord` that
``model.fit_with_rollback`` returned.  Both classes have the same methods, so
:class:`~skinfluence.GradientRollback` never branches on the model.
"""

import numpy as np

from ..utils._parallel import chunk_slices
from ._base import TRAJECTORY_KG_ONLY, unexplained_share
from ._index import kg_candidates, mf_candidates
from ._kg_rollback import kg_first_order_deltas, kg_rollback_deltas, kg_rollback_deltas_dense
from ._kg_train import KGData, KGRecord
from ._mf import mf_first_order_deltas, mf_rollback_deltas
from ._optim import hyper_of
from ._trajectory import kg_proba_grads, kg_trajectory_deltas

__all__ = ["KGRollbackModel", "MFRollbackModel"]

# queries per pass of the trajectory rollback: each pass replays the training run once,
# about as long as the adjoints of 2-3 queries, and ticks the progress bar once
_TRAJECTORY_CHUNK = 16


def _columns(X):
    return tuple(np.ascontiguousarray(X[:, c]) for c in range(X.shape[1]))


def _serial(func, chunks, desc):
    """The default chunk runner of :meth:`KGRollbackModel.deltas`: in order, in this thread."""
    return map(func, chunks)


class KGRollbackModel:
    """A fitted knowledge-graph model as :class:`~skinfluence.GradientRollback` uses it.

    Made by ``DistMult.rollback_model()`` (any :mod:`~skinfluence.rollback.models`
    knowledge-graph model): the trained parameters, the model's spec for the
    kernels, and the rollback computations on a
    :class:`~skinfluence.rollback._base.RollbackRecord` of the same fit.

    Attributes
    ----------
    kind : str
        ``"kg"``.
    spec : namedtuple
        The model's spec (see :mod:`skinfluence.rollback._interface`).
    entity_embeddings, relation_embeddings : ndarray
        The trained parameters (not copies).
    hyper : Hyper
        The training hyper-parameters, for the trajectory replay.
    """

    kind = "kg"

    def __init__(self, estimator):
        self.estimator = estimator
        self.spec = estimator._spec
        self.entity_embeddings = estimator.entity_embeddings_
        self.relation_embeddings = estimator.relation_embeddings_
        n_neg = estimator.n_negatives if estimator.n_negatives is not None else -1
        self.hyper = hyper_of(estimator, n_neg)

    def queries(self, X):
        """Validated ``(n, 3)`` triples to explain; ``(h, r)`` queries get their top-1 tail."""
        est = self.estimator
        shape = np.shape(X)
        if len(shape) == 2 and shape[1] not in (2, 3):
            raise ValueError(
                "X must be (n, 3) (head, relation, tail) triples to explain, or "
                f"(n, 2) (head, relation) queries (their top-1 tail); got {shape}."
            )
        if len(shape) == 2 and shape[1] == 2:
            X2 = est._check_queries(X, 2)
            return np.column_stack([X2, est._top_tail(X2)])
        return est._check_queries(X, 3)  # also the error of anything not 2-D

    def candidates(self, X, record, scope):
        """CSR ``(ptr, idx)`` of the training triples scored for each triple of ``X``."""
        (ent_ptr, ent_idx), (rel_ptr, rel_idx) = record.index
        return kg_candidates(*_columns(X), ent_ptr, ent_idx, rel_ptr, rel_idx,
                             record.X.shape[0], scope == "all")

    def _kernel_inputs(self, record):
        g = record.gamma
        neg = g.get("negatives")
        rec = KGRecord(2 if neg is not None else 1, g["head"], g["relation"], g["tail"],
                       neg if neg is not None else np.zeros((1, 1, 1)))
        return KGData(*record.columns, record.sample_weight, record.keys), rec

    def deltas(self, X, ptr, idx, record, rollback, run_blocks=_serial):
        """Predicted drop of ``p(t | h, r)`` per (query, candidate) of the CSR ``ptr, idx``.

        ``rollback``: ``"auto"`` or ``"first_order"`` (``grad p . gamma_j``), ``"full"``
        (exact, ``gamma_j`` subtracted) or ``"trajectory"`` (``w_j dp/dw_j`` through
        the training run; needs a record fitted with ``trajectory=True``).  The
        trajectory replays run over chunks of queries by ``run_blocks(func, chunks,
        desc)``, which yields ``func(chunk)`` in order (GradientRollback's
        :meth:`~skinfluence.base.BaseExplainer._run_blocks`: threads, progress).
        """
        data, rec = self._kernel_inputs(record)
        if rollback == "trajectory":
            return self._trajectory_deltas(X, ptr, idx, data, record, run_blocks)
        E, R = self.entity_embeddings, self.relation_embeddings
        if rollback in ("auto", "first_order"):
            fn = kg_first_order_deltas
        else:
            fn = kg_rollback_deltas_dense if rec.mode == 2 else kg_rollback_deltas
        return fn(self.spec, E, R, *_columns(X), ptr, idx, data, rec)

    def _trajectory_deltas(self, X, ptr, idx, data, record, run_blocks):
        ck = record.checkpoints
        if ck is None:
            raise ValueError(
                "rollback='trajectory' needs the training-run checkpoints taken during fit; "
                "fit with rollback='trajectory' (set_params after fit is not enough)."
            )
        E, R = self.entity_embeddings, self.relation_embeddings
        n_train = record.X.shape[0]

        def chunk(sl):
            Xc = X[sl]
            lamE = np.empty((Xc.shape[0],) + E.shape)
            lamR = np.empty((Xc.shape[0],) + R.shape)
            kg_proba_grads(self.spec, E, R, *_columns(Xc), lamE, lamR)
            out = np.zeros((Xc.shape[0], n_train))
            kg_trajectory_deltas(self.spec, data, self.hyper, ck, lamE, lamR, out)
            return sl, out

        # the kernels release the GIL: chunks can run in threads
        chunks = chunk_slices(X.shape[0], _TRAJECTORY_CHUNK)
        vals = np.empty(idx.shape[0])
        for sl, out in run_blocks(chunk, chunks, "trajectory rollback"):
            for a in range(sl.stop - sl.start):
                seg = slice(ptr[sl.start + a], ptr[sl.start + a + 1])
                vals[seg] = out[a, idx[seg]]
        return vals

    def residuals(self, record):
        """Share of each parameter group's movement the records do not account for."""
        X, g = record.X, record.gamma
        neg = g.get("negatives")
        return {
            "entity": unexplained_share(
                self.entity_embeddings, record.init["entity"],
                [(X[:, 0], g["head"]), (X[:, 2], g["tail"])],
                neg.sum(axis=0) if neg is not None else None),
            "relation": unexplained_share(self.relation_embeddings, record.init["relation"],
                                          [(X[:, 1], g["relation"])]),
        }


class MFRollbackModel:
    """A fitted :class:`~skinfluence.MatrixFactorization` as GradientRollback uses it.

    Same methods as :class:`KGRollbackModel`; the explained quantity is the
    predicted rating.

    Attributes
    ----------
    kind : str
        ``"mf"``.
    user_rows, item_rows : ndarray of shape (n_users, k + 1), (n_items, k + 1)
        Trained user / item rows, the bias in the last column (not copies).
    """

    kind = "mf"

    def __init__(self, estimator):
        self.estimator = estimator
        self.user_rows = estimator._P
        self.item_rows = estimator._Q

    def queries(self, X):
        """Validated ``(n, 2)`` ``(user, item)`` pairs."""
        return self.estimator._check_queries(X)

    def candidates(self, X, record, scope):
        """CSR ``(ptr, idx)`` of the ratings sharing the user or the item of each pair
        (the only ones whose rollback moves the prediction, whatever ``scope``)."""
        (u_ptr, u_idx), (i_ptr, i_idx) = record.index
        return mf_candidates(*_columns(X), u_ptr, u_idx, i_ptr, i_idx, record.X.shape[0])

    def deltas(self, X, ptr, idx, record, rollback, run_blocks=_serial):
        """Predicted drop of the rating per (query, candidate): ``"first_order"`` or the
        exact rollback (``"full"``, ``"auto"``); one kernel call (``run_blocks`` unused)."""
        if rollback == "trajectory":
            raise ValueError(TRAJECTORY_KG_ONLY)
        fn = mf_first_order_deltas if rollback == "first_order" else mf_rollback_deltas
        g = record.gamma
        return fn(self.user_rows, self.item_rows, *_columns(X), ptr, idx, *record.columns,
                  g["user"], g["item"])

    def residuals(self, record):
        """Share of each parameter group's movement the records do not account for."""
        X, g = record.X, record.gamma
        return {
            "user": unexplained_share(self.user_rows, record.init["user"],
                                      [(X[:, 0], g["user"])]),
            "item": unexplained_share(self.item_rows, record.init["item"],
                                      [(X[:, 1], g["item"])]),
        }
