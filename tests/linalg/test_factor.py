"""CholeskyFactor against numpy: solutions, inverse, damping and its warning."""

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from skinfluence.linalg import CholeskyFactor, SingularMatrixError


def _rotation(p, seed=0):
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(p, p)))[0]


def _matrix(eigenvalues, seed=0):
    Q = _rotation(len(eigenvalues), seed)
    H = (Q * np.asarray(eigenvalues, dtype=float)) @ Q.T
    return 0.5 * (H + H.T), Q


def _no_warnings(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return func(*args, **kwargs)


def _check(factor, reference, B):
    """solve and inverse equal ``reference @ B`` and ``reference``."""
    scale = np.abs(reference).max()
    np.testing.assert_allclose(factor.solve(B), reference @ B, rtol=1e-10,
                               atol=1e-12 * scale * np.abs(B).max())
    np.testing.assert_allclose(factor.solve(B[:, 0]), reference @ B[:, 0], rtol=1e-10,
                               atol=1e-12 * scale * np.abs(B).max())
    inv = factor.inverse()
    np.testing.assert_array_equal(inv, inv.T)
    np.testing.assert_allclose(inv, reference, rtol=1e-10, atol=1e-12 * scale)


@pytest.mark.parametrize("damping", [0.0, 0.7])
def test_positive_definite(damping):
    H, _ = _matrix([0.5, 1.0, 2.0, 4.0, 9.0])
    B = np.random.default_rng(1).normal(size=(5, 3))
    H_before = H.copy()
    factor = _no_warnings(CholeskyFactor, H, damping=damping)
    np.testing.assert_array_equal(H, H_before)  # not overwritten unless asked
    assert factor.damping_ == damping and factor.min_eigenvalue_ is None
    assert factor.null_space_ is None
    _check(factor, np.linalg.inv(H + damping * np.eye(5)), B)


def test_badly_scaled_positive_definite_is_rescaled_not_damped():
    A, _ = _matrix([1.0, 2.0, 3.0, 4.0])
    d = np.array([1e8, 1.0, 1e-4, 1.0])
    H = A * d[:, None] * d[None, :]
    # the unscaled factorisation is numerically singular: pivots span more than 1e13
    L = np.linalg.cholesky(H)
    assert np.diag(L).min() ** 2 < 1e-13 * np.diag(L).max() ** 2
    factor = _no_warnings(CholeskyFactor, H)
    assert factor.damping_ == 0.0 and factor.min_eigenvalue_ is None
    # the exact inverse, D^-1 A^-1 D^-1, to the accuracy the well-conditioned A allows
    ref = np.linalg.inv(A) / d[:, None] / d[None, :]
    B = np.random.default_rng(2).normal(size=(4, 2))
    np.testing.assert_allclose(factor.solve(B), ref @ B, rtol=1e-10)
    inv = factor.inverse()
    np.testing.assert_allclose(inv @ B, ref @ B, rtol=1e-10)
    # every entry to the relative accuracy of A's: compare D inv D with A^-1
    np.testing.assert_allclose(inv * d[:, None] * d[None, :], np.linalg.inv(A), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("damping", [0.0, 0.3])
def test_known_null_space_gives_the_pseudo_inverse(damping):
    # flat along N: H = P A P with P the projector off N (as the softmax intercept shift)
    p = 6
    A, _ = _matrix([0.2, 0.5, 1.0, 2.0, 3.0, 5.0], seed=3)
    N = np.zeros((p, 1))
    N[3:, 0] = 1.0 / np.sqrt(3.0)
    P = np.eye(p) - N @ N.T
    H = P @ A @ P
    H = 0.5 * (H + H.T)
    factor = _no_warnings(CholeskyFactor, H, null_space=N, damping=damping)
    assert factor.damping_ == damping and factor.min_eigenvalue_ is None
    np.testing.assert_array_equal(factor.null_space_, N)
    ref = np.linalg.pinv(P @ (H + damping * np.eye(p)) @ P, rcond=1e-10)
    B = np.random.default_rng(4).normal(size=(p, 3))
    _check(factor, ref, B)
    assert np.abs(N.T @ factor.solve(B)).max() < 1e-14


def test_decoupled_flat_parameters_are_found():
    # a parameter with no curvature at all (an all-zero feature without penalty) next to a
    # known flat direction: both get the pseudo-inverse, without damping or a warning
    p = 6
    A, _ = _matrix([0.2, 0.5, 1.0, 2.0, 3.0, 5.0], seed=5)
    N = np.zeros((p, 1))
    N[4:, 0] = 1.0 / np.sqrt(2.0)
    keep = np.ones(p)
    keep[1] = 0.0
    P = (np.eye(p) - N @ N.T) * keep[:, None] * keep[None, :]
    H = P @ A @ P
    H = 0.5 * (H + H.T)
    assert not H[1].any()
    factor = _no_warnings(CholeskyFactor, H, null_space=N)
    assert factor.damping_ == 0.0 and factor.min_eigenvalue_ is None
    E = np.zeros((p, 1))
    E[1, 0] = 1.0
    np.testing.assert_array_equal(factor.null_space_, np.column_stack([N, E]))
    ref = np.linalg.pinv(H, rcond=1e-10)
    _check(factor, ref, np.random.default_rng(6).normal(size=(p, 2)))
    # without the known direction the shift is a numerically singular direction: damped
    with pytest.warns(RuntimeWarning, match="numerically singular|not positive definite"):
        assert CholeskyFactor(H).damping_ > 0


def test_singular_without_known_null_space_is_damped_with_a_warning():
    # a duplicated feature without penalty: X^T X is singular to rounding
    X = np.random.default_rng(7).normal(size=(50, 3))
    X = np.column_stack([X, X[:, 0]])
    H = X.T @ X
    lam = np.linalg.eigvalsh(H)
    with pytest.warns(RuntimeWarning) as record:
        factor = CholeskyFactor(H)
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith("The Hessian is numerically singular (its smallest eigenvalue")
    # (a smallest eigenvalue of either sign within rounding of zero is "numerically
    # singular", not "not positive definite"); the damping: 1e-6 of the largest eigenvalue,
    # plus the rounding-size smallest if negative
    assert factor.damping_ == pytest.approx(1e-6 * lam[-1] + max(0.0, -lam[0]), rel=1e-9)
    assert factor.min_eigenvalue_ == pytest.approx(lam[0], abs=1e-12 * lam[-1])
    assert f"added damping {factor.damping_:.3g} (total damping {factor.damping_:.3g})" in message
    assert message.endswith("Influence values are those of the damped problem.")
    _check(factor, np.linalg.inv(H + factor.damping_ * np.eye(4)),
           np.random.default_rng(8).normal(size=(4, 2)))


def test_indefinite_is_damped_past_its_negative_eigenvalue():
    H, _ = _matrix([-0.5, 1.0, 2.0, 3.0], seed=9)
    with pytest.warns(RuntimeWarning) as record:
        factor = CholeskyFactor(H, damping=0.25)
    message = str(record[0].message)
    assert re.match(r"The Hessian is not positive definite \(smallest eigenvalue -0\.25, "
                    r"largest 3\.25\); added damping 0\.25 \(total damping 0\.5\)", message)
    # user damping 0.25 leaves -0.25; the automatic part lifts it to 1e-6 * 3.25
    assert factor.damping_ == pytest.approx(0.5 + 3.25e-6, rel=1e-12)
    assert factor.min_eigenvalue_ == pytest.approx(-0.25, rel=1e-12)
    _check(factor, np.linalg.inv(H + factor.damping_ * np.eye(4)),
           np.random.default_rng(10).normal(size=(4, 3)))


def test_ill_conditioned_positive_definite_is_damped_and_said_so():
    H, _ = _matrix([1e-14, 0.5, 1.0, 1.0], seed=11)
    with pytest.warns(RuntimeWarning, match="positive definite but too ill-conditioned"):
        factor = CholeskyFactor(H)
    assert factor.damping_ == pytest.approx(1e-6, rel=1e-6)
    _check(factor, np.linalg.inv(H + factor.damping_ * np.eye(4)),
           np.random.default_rng(12).normal(size=(4, 2)))


def test_warning_points_at_the_caller_and_damping_is_checked():
    H, _ = _matrix([-1.0, 1.0, 2.0])
    with pytest.warns(RuntimeWarning) as record:
        CholeskyFactor(H)
    assert record[0].filename == __file__
    with pytest.raises(ValueError, match="damping must be >= 0"):
        CholeskyFactor(np.eye(2), damping=-1.0)


_REFUSAL = "The model has no unique fit. Increase alpha."


def test_refuse_mode_factorises_what_damp_mode_factorises_without_damping():
    # positive definite, and badly scaled but positive definite: the same factor as the
    # default mode (bit for bit), no warning, and exact solves
    A, _ = _matrix([1.0, 2.0, 3.0, 4.0])
    d = np.array([1e8, 1.0, 1e-4, 1.0])
    B = np.random.default_rng(13).normal(size=(4, 2))
    for H in (A, A * d[:, None] * d[None, :]):
        refused = _no_warnings(CholeskyFactor, H, on_singular="raise", message=_REFUSAL)
        damped = _no_warnings(CholeskyFactor, H)
        assert refused.damping_ == 0.0 and refused.null_space_ is None
        np.testing.assert_array_equal(refused.solve(B), damped.solve(B))
        np.testing.assert_allclose(refused.solve(B), np.linalg.solve(H, B), rtol=1e-9)
    # known flat directions are still lifted (the pseudo-inverse), not refused
    N = np.full((4, 1), 0.5)
    P = np.eye(4) - N @ N.T
    H = P @ A @ P
    factor = _no_warnings(CholeskyFactor, 0.5 * (H + H.T), null_space=N, on_singular="raise")
    _check(factor, np.linalg.pinv(P @ A @ P, rcond=1e-10), B)


@pytest.mark.parametrize("case", ["indefinite", "singular", "ill-conditioned", "flat"])
def test_refuse_mode_raises_the_callers_message_with_the_diagnosis(case):
    if case == "indefinite":
        H = _matrix([-0.5, 1.0, 2.0, 3.0], seed=9)[0]
        diagnosis = (r"The matrix is not positive definite \(smallest eigenvalue -0\.5, "
                     r"largest 3\)\.")
    elif case == "singular":  # a duplicated feature: X^T X singular to rounding
        X = np.random.default_rng(7).normal(size=(50, 3))
        X = np.column_stack([X, X[:, 0]])
        H = X.T @ X
        diagnosis = r"The matrix is numerically singular \(its smallest eigenvalue, "
    elif case == "ill-conditioned":
        H = _matrix([1e-14, 0.5, 1.0, 1.0], seed=11)[0]
        diagnosis = r"The matrix is positive definite but too ill-conditioned to invert "
    else:  # an all-zero row: the default mode lifts it silently, this mode refuses it
        H = np.diag([1.0, 0.0, 2.0])
        _no_warnings(CholeskyFactor, H)
        diagnosis = r"The matrix is numerically singular \(its smallest eigenvalue, 0, "
    H_before = H.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused, never damped with a warning
        with pytest.raises(SingularMatrixError, match=re.escape(_REFUSAL) + " " + diagnosis):
            CholeskyFactor(H, on_singular="raise", message=_REFUSAL)
        # without a message, the diagnosis alone; a ValueError as any other bad input
        with pytest.raises(ValueError, match="^" + diagnosis):
            CholeskyFactor(H, on_singular="raise")
    np.testing.assert_array_equal(H, H_before)
    with pytest.raises(ValueError, match="on_singular must be 'damp' or 'raise', got 'warn'"):
        CholeskyFactor(np.eye(2), on_singular="warn")


def test_overwrite_uses_the_matrix_as_workspace():
    H, _ = _matrix([1.0, 2.0, 3.0])
    ref = np.linalg.inv(H)
    factor = CholeskyFactor(H.copy(), overwrite=True)
    np.testing.assert_allclose(factor.inverse(), ref, rtol=1e-12)


def test_solvers_is_a_deprecated_alias_the_library_does_not_use():
    import skinfluence.linalg as linalg

    with pytest.warns(FutureWarning, match="import ExactSolver from skinfluence.linalg"):
        from skinfluence.solvers import ExactSolver
    assert ExactSolver is linalg.ExactSolver
    with pytest.warns(FutureWarning, match="skinfluence.linalg"):
        import skinfluence

        assert skinfluence.solvers.EXACT_MAX_PARAMS == linalg.EXACT_MAX_PARAMS
    package = Path(linalg.__file__).resolve().parents[1]
    uses = re.compile(r"(from\s+\.+solvers\b|skinfluence\.solvers\b|from\s+\.\s+import\s+solvers)")
    offenders = [
        str(path.relative_to(package)) for path in package.rglob("*.py")
        if path.parent.name != "solvers" and uses.search(path.read_text(encoding="utf-8"))
    ]
    assert not offenders


@pytest.mark.parametrize("p", [1, 2, 31, 32, 33, 70])
@pytest.mark.parametrize("order", ["C", "F"])
def test_mirror_lower_equals_the_symmetrised_triangle(p, order):
    from skinfluence.linalg._kernels import mirror_lower

    A = np.asarray(np.random.default_rng(p).normal(size=(p, p)), order=order)
    tri = np.tril(A)
    expected = tri + tri.T
    expected[np.diag_indices(p)] *= 0.5
    got = mirror_lower(A.copy(order=order))
    np.testing.assert_array_equal(got, expected)
