"""What the meta-estimators share: delegation to ``estimator_`` and blockwise top-k."""

import numbers

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted


def estimator_has(attr):
    """``available_if`` check: the fitted (else the unfitted) wrapped estimator has ``attr``."""

    def check(self):
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(self.estimator, attr)

    return check


class DelegatingMixin:
    """``predict``, ``predict_proba``, ``predict_log_proba``, ``decision_function`` and ``score``
    delegated to ``estimator_``, each present only if the wrapped estimator has it, so that the
    meta-estimators work as the last step of a Pipeline and inside GridSearchCV."""

    @available_if(estimator_has("predict"))
    def predict(self, X):
        """Predict with the wrapped estimator."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)

    @available_if(estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from the wrapped estimator."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    @available_if(estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities from the wrapped estimator."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_log_proba(X)

    @available_if(estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the wrapped estimator."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.decision_function(X)

    @available_if(estimator_has("score"))
    def score(self, X, y, sample_weight=None):
        """Score of the wrapped estimator."""
        check_is_fitted(self, "estimator_")
        if sample_weight is None:
            return self.estimator_.score(X, y)
        return self.estimator_.score(X, y, sample_weight=sample_weight)


def check_k(k):
    """``k`` of an ``explain``: an integer >= 1 (not a float or bool that would be truncated)."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(
            f"k must be an integer >= 1 (the number of training points to return per "
            f"sample); got {k!r}."
        )
    return int(k)


def top_k_over_blocks(block_values, column_chunks, run, n_rows, n_columns, k):
    """The ``k`` largest and ``k`` smallest entries per row of a matrix seen in column blocks.

    ``block_values(cols)`` returns the ``(n_rows, len(cols))`` block for a slice of
    columns; ``run(func, chunks)`` maps a function over the chunks (serially or in
    parallel) and yields the results in order; each is merged as it arrives, so only
    ``n_rows x 2k`` values are kept between blocks.  ``k`` is capped at ``n_columns``.

    Returns
    -------
    Bunch with ``helpful_indices``, ``helpful_values`` (largest first),
    ``harmful_indices``, ``harmful_values`` (smallest first), each ``(n_rows, k)``.
    """
    k = min(check_k(k), n_columns)
    best_val = np.full((n_rows, k), -np.inf)
    best_idx = np.full((n_rows, k), -1, dtype=np.intp)
    worst_val = np.full((n_rows, k), np.inf)
    worst_idx = np.full((n_rows, k), -1, dtype=np.intp)

    def both(cols):
        vals = block_values(cols)
        idx = np.arange(cols.start, cols.stop)
        return _top_k(vals, idx, k, largest=True), _top_k(vals, idx, k, largest=False)

    for (bv, bi), (wv, wi) in run(both, column_chunks):
        best_val, best_idx = _merge_top_k(best_val, best_idx, bv, bi, k, largest=True)
        worst_val, worst_idx = _merge_top_k(worst_val, worst_idx, wv, wi, k, largest=False)
    return Bunch(
        helpful_indices=best_idx,
        helpful_values=best_val,
        harmful_indices=worst_idx,
        harmful_values=worst_val,
    )


def _top_k(vals, idx, k, largest):
    """Per-row top-k of a block: (values, global indices), each (n, min(k, m))."""
    m = vals.shape[1]
    kk = min(k, m)
    key = -vals if largest else vals
    if kk < m:
        part = np.argpartition(key, kk - 1, axis=1)[:, :kk]
    else:
        part = np.tile(np.arange(m), (vals.shape[0], 1))
    return np.take_along_axis(vals, part, axis=1), idx[part]


def _merge_top_k(cur_v, cur_i, new_v, new_i, k, largest):
    v = np.concatenate([cur_v, new_v], axis=1)
    i = np.concatenate([cur_i, new_i], axis=1)
    key = -v if largest else v
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(v, order, axis=1), np.take_along_axis(i, order, axis=1)
