"""Fixtures shared by the influence tests."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def diabetes_shuffled(diabetes_standardised):
    """The standardised diabetes rows (``diabetes_standardised``) in the order of
    ``default_rng(0).permutation``: ``(X, y)``, read-only.  The first rows train and the
    next ones are queries in the L1, elastic-net and Huber tests."""
    X, y = diabetes_standardised
    idx = np.random.default_rng(0).permutation(len(y))
    X, y = X[idx], y[idx]
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def _cells(n=120, kind="regression", seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 2, size=(n, 2)).astype(float)
    z = 1.5 * X[:, 0] - X[:, 1] + 0.8 * X[:, 0] * X[:, 1] + rng.normal(scale=0.7, size=n)
    if kind == "regression":
        return X, 3 * z + 10
    if kind == "binary":
        return X, (z + rng.logistic(size=n) > 0.5).astype(int)
    return X, np.digitize(z + rng.normal(size=n), [0.0, 1.0])


def _same_partitions(leaves_a, leaves_b):
    for a, b in zip(leaves_a, leaves_b):
        pairs = np.unique(np.stack([a, b]), axis=1)
        if pairs.shape[1] != np.unique(a).size or pairs.shape[1] != np.unique(b).size:
            return False
    return True


@pytest.fixture(scope="session")
def cells():
    """``cells(n=120, kind="regression", seed=0) -> (X, y)``: two binary features and a
    noisy target (``kind`` "regression", "binary" or "multiclass"), on which depth-2 trees
    of the boosting tests always split the same 4 cells."""
    return _cells


@pytest.fixture(scope="session")
def same_partitions():
    """``same_partitions(leaves_a, leaves_b)``: whether every tree's leaves (one array of
    leaf indices per tree) split the rows into the same groups in both."""
    return _same_partitions
