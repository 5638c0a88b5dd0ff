"""Exact factorisation of a symmetric positive semi-definite matrix such as a Hessian."""

import warnings

import numpy as np
import scipy.linalg as la

from ._kernels import mirror_lower

# squared pivot ratio / reciprocal condition estimate below which a Cholesky factor is
# treated as numerically singular
_RCOND = 1e-13


class SingularMatrixError(ValueError):
    """A matrix that :class:`CholeskyFactor` was asked not to damp is singular or indefinite."""


class CholeskyFactor:
    """Cholesky factorisation of ``H + damping I``, for solves and the (pseudo-)inverse.

    The one place where a dense Hessian is factorised: the exact solver, the
    cleaner's leave-one-out outputs and group removal in
    :class:`~skinfluence.valuation.InfluenceValuation` all use it, so they handle
    flat directions, bad scaling and singular or indefinite matrices alike.

    * Known flat directions (``null_space``, e.g. the shift of all unpenalised
      multinomial intercepts) are lifted to the curvature ``lift_`` for the
      factorisation and projected out of every solution and of the inverse: the
      result is the pseudo-inverse on them.
    * If the factorisation fails, parameters that are decoupled and flat (a row
      and column of ``H + damping I`` that are exactly zero, e.g. the coefficient
      of a feature that is zero on every row of an unpenalised model) are added
      to those directions, silently: the solutions do not move them.
    * A positive definite matrix that is only badly scaled (features on very
      different scales) is factorised after symmetric diagonal scaling to a unit
      diagonal, which restores the accuracy of the factorisation and leaves the
      solutions unchanged.
    * A matrix that is still numerically singular gets damping from its extreme
      eigenvalues, with a ``RuntimeWarning`` stating the amount and whether it
      was indefinite (non-convex models), singular to rounding (e.g. collinear
      features without a penalty) or positive definite but too ill-conditioned.
    * With ``on_singular="raise"`` it is refused instead, for callers to whom a
      singular matrix means a model without a unique solution (a kernel matrix,
      the Gram matrix of a Lasso's active set): a :class:`SingularMatrixError`
      with the caller's ``message`` and the same diagnosis.  Nothing is damped
      and no flat direction is added (only ``null_space`` is lifted).

    Parameters
    ----------
    H : ndarray of shape (p, p)
        Symmetric matrix.
    null_space : ndarray of shape (p, r) or None, default=None
        Orthonormal directions known to be flat (``H @ null_space == 0``).
    damping : float, default=0.0
        Added to the diagonal before factorising.
    overwrite : bool, default=False
        Whether ``H`` (float64) may be used as workspace.
    stacklevel : int, default=1
        Stack level of the damping warning, counted from the code constructing
        the factor (as for :func:`warnings.warn`).
    on_singular : {"damp", "raise"}, default="damp"
        What a matrix that cannot be factorised accurately gets: damping with a
        warning, or a :class:`SingularMatrixError`.
    message : str or None, default=None
        With ``on_singular="raise"``, the start of the error: what the singular
        matrix means for the caller's model and what to change.  A sentence on
        the matrix (indefinite or singular, with its extreme eigenvalues) follows.

    Attributes
    ----------
    damping_ : float
        The damping actually used (``damping`` plus any automatic damping).
    min_eigenvalue_ : float or None
        Smallest eigenvalue of the lifted, damped matrix when it had to be
        computed (automatic damping), else None.
    null_space_ : ndarray of shape (p, r') or None
        Every direction treated as flat: ``null_space`` and decoupled ones found.
    lift_ : float
        Curvature given to the flat directions (mean absolute diagonal of ``H``).

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.linalg import CholeskyFactor
    >>> CholeskyFactor(np.diag([2.0, 4.0])).solve(np.ones(2))
    array([0.5 , 0.25])
    >>> CholeskyFactor(np.ones((2, 2)), on_singular="raise",
    ...                message="The features are collinear.")
    Traceback (most recent call last):
    ...
    skinfluence.linalg._factor.SingularMatrixError: The features are collinear. The matrix is ...
    """

    def __init__(self, H, null_space=None, damping=0.0, overwrite=False, stacklevel=1,
                 on_singular="damp", message=None):
        damping = float(damping)
        if not damping >= 0:
            raise ValueError(f"damping must be >= 0, got {damping}.")
        if on_singular not in ("damp", "raise"):
            raise ValueError(f"on_singular must be 'damp' or 'raise', got {on_singular!r}.")
        H = np.asarray(H, dtype=np.float64) if overwrite else np.array(H, dtype=np.float64)
        p = H.shape[0]
        N = null_space
        self.lift_ = float(np.mean(np.abs(np.diag(H)))) or 1.0
        if N is not None:
            # only the rows N touches (often a few intercepts) move: N N^T is zero elsewhere
            rows = np.flatnonzero(N.any(axis=1))
            Nr = N[rows]
            H[np.ix_(rows, rows)] += self.lift_ * (Nr @ Nr.T)
        if damping:
            H[np.diag_indices(p)] += damping
        self.damping_ = damping
        self.min_eigenvalue_ = None
        self._scale = None
        chol = self._factorise(H)
        if chol is None and on_singular == "raise":
            problem = _diagnose(H, "The matrix")[0]
            raise SingularMatrixError(f"{message} {problem}." if message else f"{problem}.")
        if chol is None:
            flat = np.flatnonzero(~H.any(axis=1))
            if N is not None:
                flat = flat[~N[flat].any(axis=1)]  # unit vectors orthogonal to N
            if flat.size:
                E = np.zeros((p, flat.size))
                E[flat, np.arange(flat.size)] = 1.0
                N = E if N is None else np.column_stack([N, E])
                H[flat, flat] = self.lift_
                chol = self._factorise(H)
        self.null_space_ = N
        if chol is None:
            chol = self._damp(H, stacklevel + 2)
        self._chol = chol
        self._inverse = None

    def _factorise(self, H):
        """Factor of ``H``, after diagonal scaling if that is what makes it accurate; or None."""
        chol = _checked_cholesky(H)
        if chol is None and np.all(np.diag(H) > 0):
            # badly scaled but positive definite (e.g. a feature in units of 1e8): factorise
            # D H D with D = diag(H)^(-1/2), whose conditioning is what limits the accuracy
            d = 1.0 / np.sqrt(np.diag(H))
            chol = _checked_cholesky(H * d[:, None] * d[None, :], estimate_condition=True)
            self._scale = d if chol is not None else None
        return chol

    def _damp(self, H, stacklevel):
        """Add the damping that makes ``H`` safely positive definite, warn, and factorise.

        ``stacklevel`` is that of the warning counted from here.
        """
        p = H.shape[0]
        problem, lam_min, lam_max = _diagnose(H, "The Hessian")
        self.min_eigenvalue_ = lam_min
        extra = max(0.0, -lam_min) + 1e-6 * max(abs(lam_max), 1e-12)
        H[np.diag_indices(p)] += extra
        self.damping_ += extra
        warnings.warn(
            f"{problem}; added damping {extra:.3g} (total damping {self.damping_:.3g}) to "
            "make it invertible. Influence values are those of the damped problem.",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
        return la.cho_factor(H, lower=True, check_finite=True)

    def _project(self, B):
        N = self.null_space_
        if N is None:
            return B
        return B - N @ (N.T @ B)

    def solve(self, B):
        """``(H + damping_ I)^+ B`` for B of shape (p,) or (p, m)."""
        B = self._project(np.asarray(B, dtype=np.float64))
        d = self._scale
        if d is None:
            return self._project(la.cho_solve(self._chol, B, check_finite=False))
        # H^{-1} = D (D H D)^{-1} D
        d = d.reshape((-1,) + (1,) * (B.ndim - 1))
        return self._project(d * la.cho_solve(self._chol, d * B, check_finite=False))

    def inverse(self):
        """Dense symmetric ``(H + damping_ I)^+`` of shape (p, p), computed once."""
        if self._inverse is None:
            c, lower = self._chol
            # LAPACK's inverse from the factor: half the flops of solving for the identity
            inv, info = la.lapack.dpotri(c, lower=lower)
            if info != 0:
                inv = la.cho_solve(self._chol, np.eye(c.shape[0]), check_finite=False)
            else:  # LAPACK fills one triangle: copy it onto the other
                inv = mirror_lower(inv) if lower else mirror_lower(inv.T).T
                if not inv.flags.c_contiguous:
                    inv = inv.T  # the same symmetric matrix, row-major
            if self._scale is not None:
                inv *= self._scale[:, None] * self._scale[None, :]
            N = self.null_space_
            if N is not None:
                # the flat directions are eigenvectors of the lifted matrix with
                # eigenvalue lift + damping: removing them leaves the pseudo-inverse.  Only
                # the rows they touch change (often a few intercepts), and only those
                # can lose the exact symmetry that the rest has by construction.
                rows = np.ix_(*(2 * (np.flatnonzero(N.any(axis=1)),)))
                Nr = N[rows[0][:, 0]]
                block = inv[rows] - (Nr @ Nr.T) / (self.lift_ + self.damping_)
                inv[rows] = 0.5 * (block + block.T)
            self._inverse = inv
        return self._inverse


def _diagnose(H, name):
    """``(problem, smallest eigenvalue, largest)`` of a matrix that failed to factorise.

    ``problem`` says, starting with ``name``, whether ``H`` is indefinite, singular to
    rounding or positive definite but too ill-conditioned, with its eigenvalues.
    """
    p = H.shape[0]
    eigvals = la.eigvalsh(H)
    lam_min, lam_max = float(eigvals[0]), float(eigvals[-1])
    noise = p * np.finfo(np.float64).eps * abs(lam_max)  # rounding error of eigenvalues
    if lam_min < -noise:
        problem = (
            f"{name} is not positive definite (smallest eigenvalue {lam_min:.3g}, "
            f"largest {lam_max:.3g})"
        )
    elif lam_min <= noise:
        problem = (
            f"{name} is numerically singular (its smallest eigenvalue, {lam_min:.3g}, "
            f"is rounding noise next to its largest, {lam_max:.3g})"
        )
    else:
        d = 1.0 / np.sqrt(np.diag(H))
        ev = la.eigvalsh(H * d[:, None] * d[None, :])
        problem = (
            f"{name} is positive definite but too ill-conditioned to invert "
            f"accurately (eigenvalues {lam_min:.3g} to {lam_max:.3g}; condition number "
            f"{ev[-1] / ev[0]:.3g} even after scaling it to a unit diagonal)"
        )
    return problem, lam_min, lam_max


def _checked_cholesky(H, estimate_condition=False):
    """Lower Cholesky factor of ``H`` as ``cho_factor`` returns it, or None.

    None when the factorisation fails or succeeds on a numerically singular
    matrix: pivots spanning more than 1e13 in squared ratio or, with
    ``estimate_condition``, LAPACK's estimate of the condition number above 1e13.
    """
    try:
        chol = la.cho_factor(H, lower=True, check_finite=True)
    except la.LinAlgError:
        return None
    diag = np.diag(chol[0])
    if diag.min() ** 2 < _RCOND * diag.max() ** 2:
        return None
    if estimate_condition:
        rcond, info = la.lapack.dpocon(chol[0], np.abs(H).sum(axis=0).max(), uplo="L")
        if info != 0 or rcond < _RCOND:
            return None
    return chol
