"""Rows and labels of the cleaned training set in the containers they came in."""

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, softmax

__all__ = ["replace_labels", "scores_to_proba", "take_rows_like"]


def scores_to_proba(Z, n_classes):
    """Map raw decision values to pseudo-probabilities (sigmoid / softmax).

    Confident learning only needs per-class thresholds on a monotone
    confidence, so this is enough for estimators without ``predict_proba``.
    """
    Z = np.asarray(Z, dtype=np.float64)
    if n_classes == 2:
        z = Z.reshape(Z.shape[0], -1)
        if z.shape[1] == 2:  # two columns: use their difference
            z = z[:, 1] - z[:, 0]
        else:
            z = z[:, 0]
        p = expit(z)
        return np.column_stack([1.0 - p, p])
    return softmax(Z, axis=1)


def take_rows_like(X, mask):
    """Row-select ``X`` keeping its container: pandas (with its index), each sparse format
    (sparse array or matrix), list, else ndarray."""
    rows = np.flatnonzero(mask)
    if hasattr(X, "iloc"):
        return X.iloc[rows]
    if isinstance(X, list):
        return [X[i] for i in rows]
    if sp.issparse(X):
        # CSR row-indexes every format; converting back keeps CSC, COO, ... as given
        return X.tocsr()[rows].asformat(X.format)
    return np.asarray(X)[mask]


def replace_labels(y, new_values):
    """Return ``y`` with all values replaced, keeping a pandas container or a list."""
    if hasattr(y, "columns"):  # a DataFrame of several targets
        return y.__class__(new_values, index=y.index, columns=y.columns)
    if hasattr(y, "iloc"):
        return y.__class__(new_values, index=y.index, name=getattr(y, "name", None))
    if isinstance(y, list):
        return new_values.tolist()
    return new_values
