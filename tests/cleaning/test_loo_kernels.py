"""The cleaner's Newton-step kernel: rows solved side by side equal rows solved one by one."""

import numpy as np
import pytest

from skinfluence.cleaning._loo_kernels import _newton_row, newton_step_outputs


def _softmax_case(n, K, leverage_scale, seed):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, K))
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    r = P.copy()
    r[np.arange(n), rng.integers(0, K, n)] -= 1.0
    S = P[:, :, None] * np.eye(K) - P[:, :, None] * P[:, None, :]
    w = rng.uniform(0.5, 2.0, n)
    ks, ls = np.triu_indices(K)
    Mp = rng.standard_normal((n, ks.size)) * leverage_scale
    return Z, r, S, w, Mp, ks, ls


def _one_by_one(Z, r, S, w, Mp, ks, ls):
    K = Z.shape[1]
    out = np.empty_like(Z)
    singular = np.array([
        _newton_row(i, Z, r, S, w, Mp, ks, ls, out, np.empty((K, K)), np.empty((K, K)),
                    np.empty(K), np.empty(K))
        for i in range(Z.shape[0])
    ])
    return out, singular


# small leverages: no row exchange anywhere; large ones: partial pivoting exchanges rows
# in most systems, which the kernel must hand to the pivoted one-row solve
@pytest.mark.parametrize("K, n, leverage_scale", [(4, 300, 0.01), (10, 130, 0.05),
                                                  (3, 200, 3.0), (2, 150, 50.0)])
def test_blocked_solve_is_the_pivoted_solve_bit_for_bit(K, n, leverage_scale):
    args = _softmax_case(n, K, leverage_scale, seed=K)
    Z, r, S, w, Mp, ks, ls = args
    out = np.empty_like(Z)
    singular = newton_step_outputs(*args, out)
    expected, expected_singular = _one_by_one(*args)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(singular, expected_singular)
    # and the step is the formula: z + w M (I - w S M)^-1 r
    M = np.empty((n, K, K))
    M[:, ks, ls] = Mp
    M[:, ls, ks] = Mp
    A = np.eye(K) - w[:, None, None] * S @ M
    step = w[:, None] * (M @ np.linalg.solve(A, r[:, :, None]))[:, :, 0]
    np.testing.assert_allclose(out, Z + step, rtol=1e-9, atol=1e-12)


def test_singular_rows_keep_the_first_order_step():
    # one output, S = w = 1: I - M is zero where the leverage M is one
    n = 100
    Z, r, S, w = np.zeros((n, 1)), np.ones((n, 1)), np.ones((n, 1, 1)), np.ones(n)
    Mp = np.full((n, 1), 0.5)
    Mp[::7] = 1.0
    ks, ls = np.triu_indices(1)
    out = np.empty_like(Z)
    singular = newton_step_outputs(Z, r, S, w, Mp, ks, ls, out)
    np.testing.assert_array_equal(singular, np.arange(n) % 7 == 0)
    np.testing.assert_array_equal(out[singular, 0], 1.0)  # M r, first order
    np.testing.assert_allclose(out[~singular, 0], 1.0)  # 0.5 / (1 - 0.5)


def test_pair_block_hessian_is_the_objective_hessian(monkeypatch):
    """The large-n Hessian (pair blocks, one GEMM per row block) against the objective's own."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from skinfluence.cleaning import _loo
    from skinfluence.objectives import make_objective

    X, y = make_classification(300, 6, n_informative=4, n_classes=4, random_state=0)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    obj = make_objective(LogisticRegression().fit(X, y, sample_weight=w), X, y, w)
    Z = obj.outputs(obj.X)
    _, S = obj.loss_derivatives(Z, obj.y)
    order = _loo._augmented_order(obj)
    expected = obj.hessian()[np.ix_(order, order)] - np.diag(obj.penalty_diagonal()[order])
    monkeypatch.setattr(_loo, "_GRAM_ENTRIES", 1000)  # 16-row blocks, the last one short
    Xa = _loo._AugmentedRows(obj.X, None, obj.fit_intercept)
    H = _loo._pair_block_hessian(Xa, S, obj.weights, obj.n_outputs)
    np.testing.assert_allclose(H, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    np.testing.assert_array_equal(H, H.T)
