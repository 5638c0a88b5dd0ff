"""Fixtures shared by the tests that read fitted gradient-boosting models."""

import numpy as np
import pytest

from skinfluence.trees import _boosting_kernels as kernels


def _recompute_leaf_values(model, leaves, l2_regularization, float32_gradients, *leaf_eps):
    rows = model.rows
    yy, ww = model.y_train[rows], model.weights[rows]
    np.testing.assert_allclose(model.intercept(yy, ww), model.baseline, rtol=1e-13, atol=1e-13)
    F = np.tile(model.baseline, (rows.size, 1))
    values = np.empty(model.n_leaves)
    kernels.refit_leaf_values(model.loss, yy, ww, leaves, F, model.leaf_start, model.fixed_zero,
                              model.n_iter, model.learning_rate, l2_regularization,
                              float32_gradients, values, *leaf_eps)
    return values


@pytest.fixture(scope="session")
def recompute_leaf_values():
    """``recompute_leaf_values(model, leaves, l2_regularization, float32_gradients,
    *leaf_eps)``: every leaf value of a read boosting model (``trees/_hgb.py``,
    ``trees/_gb.py``) recomputed from the training rows that grew its trees (``leaves``:
    their leaf in each tree), after checking that the model's baseline is the loss's
    optimal constant on those rows (to 1e-13)."""
    return _recompute_leaf_values
