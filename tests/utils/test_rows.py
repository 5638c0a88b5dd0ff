"""Row-wise max and sum of narrow arrays equal numpy's ``axis=1`` reductions bit for bit."""

import numpy as np
import pytest

from skinfluence.utils._rows import row_max, row_sum


@pytest.mark.parametrize("K", [1, 2, 3, 4, 7, 8, 10])
def test_row_reductions_equal_numpy(K):
    rng = np.random.default_rng(K)
    Z = rng.standard_normal((3000, K)) * 5
    E = np.exp(Z)
    ties = np.round(Z / 4)  # rows with several maxima
    nan = Z.copy()
    nan[rng.random(Z.shape) < 0.05] = np.nan  # NaN is the maximum, as in numpy
    for A in (Z, ties, nan, np.full_like(Z, -np.inf), Z[:, ::-1], np.asfortranarray(Z)):
        np.testing.assert_array_equal(row_max(A), A.max(axis=1, keepdims=True))
    for A in (E, E[:, ::-1], np.asfortranarray(E), E[:5]):  # strided / short: numpy's own sum
        np.testing.assert_array_equal(row_sum(A), A.sum(axis=1, keepdims=True))
