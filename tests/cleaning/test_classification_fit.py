"""The cleaner's integer label encoding equals ``np.unique(y, return_inverse=True)``."""

import numpy as np
import pytest

from skinfluence.cleaning._classification_fit import _unique_integers


@pytest.mark.parametrize("y", [
    np.random.default_rng(0).integers(0, 4, 5000),
    np.random.default_rng(1).integers(-3, 7, 999).astype(np.int32),
    np.random.default_rng(2).integers(1, 10, 300).astype(np.uint8),  # no 0, unsigned
    np.array([5, 3, 3, 1_000_000]),  # sparse range: np.unique itself
    np.array([2**62, -(2**62), 0]),  # range beyond int64: np.unique itself
])
def test_unique_integers_is_np_unique(y):
    classes, codes = _unique_integers(y)
    expect_classes, expect_codes = np.unique(y, return_inverse=True)
    np.testing.assert_array_equal(classes, expect_classes)
    assert classes.dtype == expect_classes.dtype
    np.testing.assert_array_equal(codes, expect_codes)
