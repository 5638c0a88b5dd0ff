"""Gradient Rollback (Lawrence, Sztyler & Niepert, AAAI 2021)."""

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import TransformerMixin, clone
from sklearn.utils import Bunch
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..base import BaseExplainer, top_k_of_rows

__all__ = ["GradientRollback"]


class GradientRollback(TransformerMixin, BaseExplainer):
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
        Unfitted model to train with rollback bookkeeping.  GradientRollback
        uses only its ``fit_with_rollback`` and ``rollback_model`` methods
        (see :mod:`skinfluence.rollback.models`).
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
    n_jobs : int, default=None
        Threads for the trajectory rollback (each thread replays the training
        run for its own queries; the numbers do not depend on ``n_jobs``).
        ``None`` means 1, ``-1`` all cores.
    verbose : int, default=0
        Show a progress bar for the trajectory rollback.

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
    n_features_in_ : int
        Columns of the training ids: 3 (triples) or 2 (pairs).
    feature_names_in_ : ndarray of str
        The columns of a training DataFrame (queries given as DataFrames must use
        the same names).

    Examples
    --------
    >>> from skinfluence import DistMult, GradientRollback
    >>> from skinfluence.datasets import load_nations
    >>> data = load_nations()
    >>> gr = GradientRollback(DistMult(n_entities=data.n_entities,
    ...                                n_relations=data.n_relations,
    ...                                random_state=0)).fit(data.train)
    >>> ex = gr.explain(data.test[:3, :2], k=5)   # top-1 predictions
    >>> ex.helpful_indices.shape, ex.harmful_values.shape
    ((3, 5), (3, 5))
    >>> bool(ex.helpful_values[0, 0] >= ex.helpful_values[0, 1])
    True
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "scope": [StrOptions({"neighbourhood", "all"})],
        "record_negatives": ["boolean"],
        "rollback": [StrOptions({"auto", "full", "first_order", "trajectory"})],
        "n_jobs": [numbers.Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(self, estimator, *, scope="neighbourhood", record_negatives=False,
                 rollback="auto", n_jobs=None, verbose=0):
        self.estimator = estimator
        self.scope = scope
        self.record_negatives = record_negatives
        self.rollback = rollback
        self.n_jobs = n_jobs
        self.verbose = verbose

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
        if not (hasattr(self.estimator, "fit_with_rollback")
                and hasattr(self.estimator, "rollback_model")):
            raise TypeError(
                "GradientRollback supports skinfluence.DistMult, ComplEx and "
                f"MatrixFactorization; got {type(self.estimator).__name__}, which has no "
                "fit_with_rollback / rollback_model: other models do not expose the "
                "per-example sparse updates Gradient Rollback records."
            )
        # not _fit_estimator: the model is trained by fit_with_rollback, which records the
        # per-example updates on the way (a plain fit would not)
        est = clone(self.estimator)
        rec = est.fit_with_rollback(X, y, sample_weight,
                                    record_negatives=self.record_negatives,
                                    trajectory=self.rollback == "trajectory")
        model = est.rollback_model()
        self.estimator_ = est
        self.n_features_in_ = est.n_features_in_
        if hasattr(est, "feature_names_in_"):
            self.feature_names_in_ = est.feature_names_in_
        self.kind_ = model.kind
        self.gamma_ = rec.gamma
        self.init_params_ = rec.init
        self.residual_ = model.residuals(rec)
        self.X_train_ = rec.X
        self.sample_weight_ = rec.sample_weight
        self.n_train_ = rec.X.shape[0]
        self._record = rec
        self._model = model
        return self

    # -- tags ---------------------------------------------------------------
    def _wrapped_tags(self):
        """None: GradientRollback keeps its own (transformer) tags.

        The wrapped model's would make ``GradientRollback(MatrixFactorization())`` a
        regressor; but its outputs (``transform``, ``explain``) are those of a transformer
        of query ids, and ``predict`` / ``score`` are only delegated, so the regressor
        checks of scikit-learn would test the wrapped model through it, not Gradient
        Rollback.
        """
        return None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # ids are >= 0
        tags.input_tags.allow_nan = False
        return tags

    # -- explanations -------------------------------------------------------
    def _queries(self, X):
        check_is_fitted(self)
        # as given: the model checks the ids and a DataFrame's column names
        return self._model.queries(X)

    def _deltas(self, X):
        model = self._model
        rec = self._record
        ptr, idx = model.candidates(X, rec, self.scope)
        vals = model.deltas(X, ptr, idx, rec, self.rollback, run_blocks=self._run_blocks)
        # zero-weight examples never updated anything: drop them explicitly
        keep = self.sample_weight_[idx] > 0
        if not np.all(keep):
            kept_before = np.concatenate([[0], np.cumsum(keep)])
            ptr = kept_before[ptr]
            idx, vals = idx[keep], vals[keep]
        return ptr, idx, vals

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
        """The ``k`` training examples whose rollback lowers (raises) the prediction most.

        Parameters
        ----------
        X : array-like
            As in :meth:`transform`.
        k : int, default=10
            Number of explanations per query, capped at the largest number of
            candidates (training examples in :attr:`scope`) of the queries.

        Returns
        -------
        result : Bunch
            ``helpful_indices``, ``helpful_values``: rows of the training data and
            their predicted drops, largest drop first (negative values mean even
            the best candidates *opposed* the prediction); ``harmful_indices``,
            ``harmful_values``: the same, most negative first (the examples
            whose rollback would raise the prediction most).  Each of shape
            ``(n, min(k, m))``, ``m`` the largest number of candidates of a
            query; ties are ordered by training index, and ``-1`` / ``nan``
            pad queries with fewer candidates.
        """
        k = self._check_k(k)
        X = self._queries(X)
        ptr, idx, vals = self._deltas(X)
        return _Explanation(**top_k_of_rows(ptr, idx, vals, k))


class _Explanation(Bunch):
    """:meth:`GradientRollback.explain`'s Bunch.  Unpacking it as the former
    ``(indices, values)`` pair still gives the helpful pair, with a FutureWarning,
    for one release; iterating over its keys then needs ``.keys()``."""

    def __iter__(self):
        warnings.warn(
            "GradientRollback.explain returns a Bunch since 0.2.0; unpacking it as "
            "(indices, values) is deprecated and will stop working in 0.3.0: use "
            "result.helpful_indices and result.helpful_values.",
            FutureWarning, stacklevel=2,
        )
        return iter((self["helpful_indices"], self["helpful_values"]))
