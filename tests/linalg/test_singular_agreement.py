"""The cleaner, InfluenceValuation and InfluenceFunctions agree on singular Hessians.

All three invert the Hessian through :class:`skinfluence.linalg.CholeskyFactor`,
so flat directions (pseudo-inverse), decoupled parameters and numerically
singular Hessians (damping) give the same leave-one-out predictions; where
the refit is well defined, those predictions match it.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_wine, make_classification
from sklearn.linear_model import LogisticRegression

from skinfluence import InfluenceCleaner, InfluenceFunctions
from skinfluence.valuation import removal_parameter_change

ROWS = [0, 3, 11, 42, 77]


pytestmark = pytest.mark.usefixtures("single_blas_thread")


def _problem(name):
    """Data and model whose Hessian is singular in the way ``name`` says."""
    n_classes = 3 if name == "duplicated_column_multinomial" else 2
    X, y = make_classification(n_samples=120, n_features=3, n_informative=3, n_redundant=0,
                               n_classes=n_classes, flip_y=0.15, class_sep=0.8,
                               random_state=0)
    if name == "zero_column_unpenalised":
        X = np.column_stack([X, np.zeros(len(X))])
    else:
        X = np.column_stack([X[:, :2], X[:, 0], X[:, 2]])
    C = 1.0 if name == "duplicated_column_multinomial" else np.inf
    return X, y, LogisticRegression(C=C, tol=1e-12, max_iter=100_000)


# the warnings each problem must give: none where the pseudo-inverse is exact, the
# damping warning where the Hessian is singular in a direction nothing declares flat
PROBLEMS = {
    # L2 penalty, unpenalised intercepts: the multinomial intercept shift is flat
    "duplicated_column_multinomial": None,
    # no penalty, a feature that is zero everywhere: its coefficient is decoupled and flat
    "zero_column_unpenalised": None,
    # no penalty, a duplicated feature: singular to rounding, damped
    "duplicated_column_unpenalised": "The Hessian is numerically singular",
}


def _run(func, expected):
    """``func()``, asserting it warns ``expected`` (a message start) or nothing."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = func()
    messages = [str(w.message) for w in record]
    if expected is None:
        assert not messages
    else:
        assert messages and all(m.startswith(expected) for m in messages), messages
    return out


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_cleaner_valuation_and_influence_agree(name):
    X, y, est = _problem(name)
    expected = PROBLEMS[name]
    cleaner = _run(lambda: InfluenceCleaner(est).fit(X, y), expected)
    assert cleaner.influence_ is None  # the cleaner's own fast path
    engine = _run(lambda: InfluenceFunctions(est, refine=0).fit(X, y), expected)
    first = _run(lambda: InfluenceFunctions(est, refine=0, approximation="first_order")
                 .fit(X, y), expected)
    loo = engine.loo_predict_proba()
    change = np.abs(loo - engine.estimator_.predict_proba(X)).max()
    np.testing.assert_allclose(cleaner.proba_, loo, rtol=0, atol=1e-9 * change)

    obj = engine.objective_
    for j in ROWS:
        newton = engine.parameter_changes([j])[:, 0]
        d2 = _run(lambda: removal_parameter_change(engine, [j], order=2), None)
        np.testing.assert_allclose(d2, newton, rtol=0, atol=1e-9 * np.abs(newton).max())
        d1 = _run(lambda: removal_parameter_change(engine, [j], order=1), None)
        ref = first.parameter_changes([j])[:, 0]
        np.testing.assert_allclose(d1, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
        # the group step evaluated at the point: the cleaner's leave-one-out prediction
        z = obj.outputs(obj.X[j : j + 1], obj.theta + d2)
        np.testing.assert_allclose(obj.proba_from_outputs(z)[0], cleaner.proba_[j], rtol=0,
                                   atol=1e-9 * change)


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_leave_one_out_predictions_match_refits(name):
    """Predictions are unique even where parameters are not: they match actual refits."""
    X, y, est = _problem(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the damping warning, tested above
        cleaner = InfluenceCleaner(est).fit(X, y)
    full = cleaner.estimator_.predict_proba(X)
    err, shift = [], []
    for j in ROWS:
        keep = np.arange(len(y)) != j
        exact = clone(est).fit(X[keep], y[keep]).predict_proba(X[j : j + 1])[0]
        err.append(np.abs(cleaner.proba_[j] - exact).max())
        shift.append(np.abs(full[j] - exact).max())
    err, shift = np.asarray(err), np.asarray(shift)
    # one Newton step: an error second order in the change, a small fraction of it
    assert np.all(err < 0.1 * shift), (err, shift)
    assert err.sum() < 0.05 * shift.sum(), (err, shift)


def test_group_removal_moves_nothing_along_flat_directions():
    """Whatever rounding does to the Cholesky factor of the singular H (on these data it
    "succeeds"), the group step is the pseudo-inverse one: no intercept shift, and no warning."""
    X, y = load_wine(return_X_y=True)
    idx = np.random.RandomState(0).permutation(len(y))[:70]
    X, y = X[idx, :5], y[idx]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    est = LogisticRegression(tol=1e-10, max_iter=10_000)
    engine = _run(lambda: InfluenceFunctions(est, refine=0).fit(X, y), None)
    first = _run(lambda: InfluenceFunctions(est, refine=0, approximation="first_order")
                 .fit(X, y), None)
    N = engine.solver_.null_space
    assert N.shape[1] == 1  # the shift of the three unpenalised intercepts
    for group in ([1, 4, 9, 16], [3], list(range(0, 70, 3))):
        for order, ref in ((1, first), (2, engine)):
            d = _run(lambda: removal_parameter_change(engine, group, order=order), None)
            assert np.abs(N.T @ d).max() < 1e-12 * np.abs(d).max()
            if len(group) == 1:
                expected = ref.parameter_changes(group)[:, 0]
                np.testing.assert_allclose(d, expected, rtol=0,
                                           atol=1e-9 * np.abs(expected).max())
