"""Helpers shared by the rollback estimators, and the record of a fit with bookkeeping."""

import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, _get_feature_names, check_is_fitted

from ..utils._progress import progress_bar
from ._index import scatter_add_rows
from ._stream import content_keys

__all__ = ["RollbackRecord"]

TRAJECTORY_KG_ONLY = (
    "rollback='trajectory' is implemented for the knowledge-graph models "
    "(DistMult, ComplEx); use 'full' or 'first_order' for MatrixFactorization."
)


@dataclass
class RollbackRecord:
    """What a fit with rollback bookkeeping leaves for :class:`GradientRollback`.

    Returned by the models' ``fit_with_rollback``; read by their
    ``rollback_model()`` (:class:`~skinfluence.rollback._rollback_models.KGRollbackModel`,
    :class:`~skinfluence.rollback._rollback_models.MFRollbackModel`).

    Attributes
    ----------
    gamma : dict of ndarray
        Per-example recorded updates, one ``(n_train, dim)`` array per row role
        (``"head"``, ``"relation"``, ``"tail"`` (+ ``"negatives"``) or ``"user"``,
        ``"item"``).
    init : dict of ndarray
        Parameters before training.
    X : ndarray of shape (n_train, n_cols)
        Validated training ids.
    sample_weight : ndarray of shape (n_train,)
    index : tuple of (ptr, idx) pairs
        CSR lists of the examples holding each id, per id kind (entities and
        relations; users and items), to find the candidates of a query.
    keys : ndarray of shape (n_train,)
        The examples' random-stream keys (batch order and negatives).
    columns : tuple of ndarray
        The columns of ``X``, contiguous (as the kernels read them).
    checkpoints : namedtuple or None
        Per-epoch training state for the trajectory rollback (knowledge graphs).
    """

    gamma: dict
    init: dict
    X: np.ndarray
    sample_weight: np.ndarray
    index: tuple
    keys: np.ndarray
    columns: tuple
    checkpoints: Optional[Any] = None


def _as_ids(X, n_cols, what):
    """Integer id matrix of shape (n, n_cols) from an already validated array.

    Object arrays are read as numbers (as scikit-learn reads them), then checked as
    floats: finite and integer-valued.
    """
    X = np.asarray(X)
    if X.dtype.kind == "O":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what} must contain integer ids; got an object array with "
                             f"a value that is not a number ({exc}).") from exc
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


def _check_query_names(est, X):
    """A DataFrame of queries names its columns as the first columns seen in ``fit``.

    Queries may hold fewer columns than the training ids (``(head, relation)`` of
    ``(head, relation, tail)`` triples), so scikit-learn's check, which wants all of
    them, does not apply; mismatches raise, and names present on one side only warn,
    as scikit-learn does.
    """
    names = _get_feature_names(X)
    fitted = getattr(est, "feature_names_in_", None)
    name = type(est).__name__
    if names is None:
        if fitted is not None:
            warnings.warn(f"X does not have valid feature names, but {name} was fitted "
                          "with feature names", UserWarning, stacklevel=3)
        return
    if fitted is None:
        warnings.warn(f"X has feature names, but {name} was fitted without feature names",
                      UserWarning, stacklevel=3)
        return
    k = len(names)
    if k <= len(fitted) and np.array_equal(names, fitted[:k]):
        return
    raise ValueError(
        f"The feature names should match those that were passed during fit: queries of "
        f"{k} columns take the first {k} of {list(fitted)}; got {list(names)}."
    )


def _check_range(col, n, name, what):
    if col.size and col.max() >= n:
        raise ValueError(
            f"{what} contains {name} id {int(col.max())} but the model has only "
            f"{n} {name}s (ids 0..{n - 1}); pass n_{name}s= explicitly at fit if "
            f"evaluation data holds ids absent from training."
        )


def _checked_weights(sample_weight, X, what):
    """Validated non-negative ``sample_weight`` (float64), not all zero."""
    sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
    if np.any(sw < 0):
        raise ValueError("sample_weight must be non-negative.")
    if not np.any(sw > 0):
        raise ValueError(f"sample_weight is zero for every {what}; nothing to fit.")
    return sw


def _stream_keys(rs, X):
    """The examples' random-stream keys, salted by a seed drawn from ``rs``."""
    seed = np.uint64(rs.randint(0, 2**31 - 1)) * np.uint64(2**31) + np.uint64(
        rs.randint(0, 2**31 - 1))
    return content_keys(X, seed)


def _zeros_blocks(m, n, d):
    """``m`` zero C-contiguous ``(n, d)`` arrays carved from one allocation.

    One large block instead of ``m`` separate ones: numpy asks the kernel for
    huge pages on allocations of 4 MiB or more, and the bookkeeping arrays
    are first touched inside the training loop, where thousands of 4 KiB
    page faults measurably add to the fit time.
    """
    buf = np.zeros(m * n * d)
    return [buf[j * n * d:(j + 1) * n * d].reshape(n, d) for j in range(m)]


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

    def rollback_model(self):
        """The fitted parameters and the rollback kernels of this model, for GradientRollback.

        Returns
        -------
        model : KGRollbackModel or MFRollbackModel
            See :mod:`skinfluence.rollback._rollback_models`.
        """
        check_is_fitted(self)
        return self._rollback_model_class(self)

    def _run_epochs(self, step, desc):
        """Call ``step(epoch_start, n_epochs, losses_slice)`` over all epochs."""
        losses = np.empty(self.max_iter)
        bar = progress_bar(self.max_iter, desc=desc, verbose=self.verbose)
        if bar is None:
            step(0, self.max_iter, losses)
        else:  # one kernel call per epoch, to report its loss
            for ep in range(self.max_iter):
                step(ep, 1, losses[ep:ep + 1])
                bar.set_postfix(loss=f"{losses[ep]:.4f}")
                bar.update(1)
            bar.close()
        if not np.all(np.isfinite(losses)):
            raise FloatingPointError(
                f"{desc}: training diverged (non-finite loss); lower learning_rate "
                f"or add alpha / max_norm regularisation."
            )
        return losses


def unexplained_share(final, init, parts, extra=None):
    """``|final - init - sum of the records| / |final - init|`` of one parameter group.

    ``parts``: ``(rows, gamma)`` pairs, each example's recorded update ``gamma[i]``
    of row ``rows[i]``; ``extra``: recorded updates already summed per row.
    """
    moved = final - init
    acc = np.zeros_like(final)
    for rows, gam in parts:
        scatter_add_rows(acc, np.ascontiguousarray(rows), gam)
    if extra is not None:
        acc += extra
    den = np.linalg.norm(moved)
    return float(np.linalg.norm(moved - acc) / den) if den > 0 else 0.0
