"""Exact leave-one-out errors of ridge regression against actual refits without each row."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge, RidgeCV

from skinfluence.linalg import ridge_loo_path


def _refit_loo_residuals(X, y, alpha, fit_intercept):
    out = np.empty_like(y)
    for i in range(X.shape[0]):
        keep = np.arange(X.shape[0]) != i
        model = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="cholesky")
        out[i] = y[i] - model.fit(X[keep], y[keep]).predict(X[i:i + 1])[0]
    return out


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("shape", [(30, 4), (12, 20)])  # n > p and p > n (rank-deficient)
def test_loo_residuals_equal_refits(fit_intercept, shape):
    rng = np.random.default_rng(shape[1])
    X = rng.normal(size=shape) + 2.0
    y = X[:, :3] @ [1.0, -2.0, 0.5] + 5.0 + rng.normal(size=shape[0])
    alphas = [1e-2, 0.3, 10.0]
    path = ridge_loo_path(X, y, alphas=alphas, fit_intercept=fit_intercept)
    for alpha, mse in zip(alphas, path.loo_mse):
        ref = _refit_loo_residuals(X, y, alpha, fit_intercept)
        assert mse == pytest.approx(np.mean(ref ** 2), rel=1e-9)
    ref = _refit_loo_residuals(X, y, path.alpha, fit_intercept)
    np.testing.assert_allclose(path.loo_residuals, ref, rtol=1e-8, atol=1e-10)
    assert path.alpha == alphas[int(np.argmin(path.loo_mse))]


def test_default_grid_agrees_with_ridgecv_and_scales_with_x():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    path = ridge_loo_path(X, y)
    assert path.alphas.shape == (41,) and not path.at_edge
    # scikit-learn's own efficient leave-one-out picks the same penalty from the same grid
    assert RidgeCV(alphas=path.alphas).fit(X, y).alpha_ == pytest.approx(path.alpha)
    # the default grid follows the scale of X: rescaling X rescales the chosen alpha
    scaled = ridge_loo_path(10.0 * X, y)
    assert scaled.alpha == pytest.approx(100.0 * path.alpha, rel=1e-12)
    np.testing.assert_allclose(scaled.loo_mse, path.loo_mse, rtol=1e-9)


def test_multi_output_and_errors():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(25, 3))
    Y = np.column_stack([X @ [1.0, 0.0, 2.0], X @ [0.0, -1.0, 0.0]]) + rng.normal(size=(25, 2))
    path = ridge_loo_path(X, Y, alphas=[0.1, 1.0])
    assert path.loo_residuals.shape == (25, 2)
    single = [ridge_loo_path(X, Y[:, j], alphas=[0.1, 1.0]).loo_mse for j in range(2)]
    np.testing.assert_allclose(path.loo_mse, np.mean(single, axis=0), rtol=1e-12)
    with pytest.raises(ValueError, match="positive"):
        ridge_loo_path(X, Y[:, 0], alphas=[0.0, 1.0])
    with pytest.raises(ValueError, match="inconsistent"):
        ridge_loo_path(X, Y[:10, 0])
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ridge_loo_path(X_nan, Y[:, 0])
    # a constant target: every penalty fits it; the largest is kept
    flat = ridge_loo_path(X, np.ones(25), alphas=[0.1, 1.0, 10.0])
    assert flat.alpha == 10.0 and np.allclose(flat.loo_residuals, 0.0)
