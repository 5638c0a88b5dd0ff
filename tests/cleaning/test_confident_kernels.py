"""Confident learning's row kernels equal their numpy definitions (ties, rows with no class
reaching its threshold)."""

import numpy as np
import pytest

from skinfluence.cleaning import confident_joint
from skinfluence.cleaning._confident_kernels import best_other_class


@pytest.mark.parametrize("K", [2, 3, 4, 10])
def test_confident_joint_is_argmax_over_classes_reaching_their_threshold(K):
    rng = np.random.default_rng(K)
    n = 2000
    P = rng.dirichlet(np.ones(K), n)
    P[: n // 4] = np.round(P[: n // 4] * 4) / 4  # ties between classes
    labels = rng.integers(0, K, n)
    t = np.full(K, 0.6)  # many rows reach no threshold
    above = P >= t
    masked = np.where(above, P, -np.inf)
    expect = np.argmax(masked, axis=1)
    expect[~above.any(axis=1)] = -1
    C, assigned = confident_joint(labels, P, thresholds=t)
    np.testing.assert_array_equal(assigned, expect)
    ok = expect >= 0
    np.testing.assert_array_equal(
        C, np.bincount(labels[ok] * K + expect[ok], minlength=K * K).reshape(K, K))
    assert (assigned == -1).any() and (assigned >= 0).any()
    # default thresholds and a scalar threshold broadcast to every class
    C0, a0 = confident_joint(labels, P)
    assert C0.sum() == (a0 >= 0).sum()
    np.testing.assert_array_equal(confident_joint(labels, P, thresholds=0.6)[1], assigned)
    other = P.copy()
    other[np.arange(n), labels] = -np.inf
    np.testing.assert_array_equal(best_other_class(P, labels), np.argmax(other, axis=1))
