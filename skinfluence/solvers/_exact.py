"""Exact inverse-Hessian products by Cholesky factorisation."""

import warnings

import numpy as np
import scipy.linalg as la

from ._base import HessianSolver


class ExactSolver(HessianSolver):
    """Cholesky factorisation of the dense Hessian.

    Structural flat directions of the objective (``objective.null_space()``,
    e.g. the shift of all unpenalised multinomial intercepts) are lifted to unit
    curvature for the factorisation and projected out of every solution: the
    result is the pseudo-inverse there.  A positive definite Hessian that is
    only badly scaled (features on very different scales) is factorised after
    symmetric diagonal scaling to a unit diagonal, which restores the accuracy
    of the factorisation and leaves the solutions unchanged.  If the Hessian is
    still numerically singular, its extreme eigenvalues are computed and damping
    is added, with a warning stating the amount and whether the Hessian was
    indefinite (non-convex models), singular to rounding (e.g. collinear features
    without a penalty) or positive definite but too ill-conditioned to invert
    accurately.

    Attributes
    ----------
    damping_ : float
        The damping actually used (user damping plus any automatic damping).
    min_eigenvalue_ : float or None
        Smallest eigenvalue of the (null-space-lifted) Hessian when it had to be
        computed, else None.  Both are set by ``prepare``.
    """

    name = "exact"

    def _prepare(self):
        H = np.array(self.objective.hessian(), dtype=np.float64, copy=True)
        p = H.shape[0]
        N = self.null_space
        scale = float(np.mean(np.abs(np.diag(H)))) or 1.0
        if N is not None:
            H += scale * (N @ N.T)
        self._lift = scale
        H[np.diag_indices(p)] += self.damping
        self.min_eigenvalue_ = None
        self._unscale = None
        self._chol = _checked_cholesky(H)
        if self._chol is None and np.all(np.diag(H) > 0):
            # badly scaled but positive definite (e.g. a feature in units of 1e8): factorise
            # D H D with D = diag(H)^(-1/2), whose conditioning is what limits the accuracy
            d = 1.0 / np.sqrt(np.diag(H))
            self._chol = _checked_cholesky(H * d[:, None] * d[None, :], estimate_condition=True)
            self._unscale = d if self._chol is not None else None
        if self._chol is None:
            eigvals = la.eigvalsh(H)
            lam_min, lam_max = float(eigvals[0]), float(eigvals[-1])
            self.min_eigenvalue_ = lam_min
            if lam_min <= 0:
                problem = (
                    f"The Hessian is not positive definite (smallest eigenvalue {lam_min:.3g}, "
                    f"largest {lam_max:.3g})"
                )
            elif lam_min <= p * np.finfo(np.float64).eps * lam_max:
                problem = (
                    f"The Hessian is numerically singular (its smallest eigenvalue, {lam_min:.3g}, "
                    f"is rounding noise next to its largest, {lam_max:.3g})"
                )
            else:
                d = 1.0 / np.sqrt(np.diag(H))
                ev = la.eigvalsh(H * d[:, None] * d[None, :])
                problem = (
                    "The Hessian is positive definite but too ill-conditioned to invert "
                    f"accurately (eigenvalues {lam_min:.3g} to {lam_max:.3g}; condition number "
                    f"{ev[-1] / ev[0]:.3g} even after scaling it to a unit diagonal)"
                )
            extra = max(0.0, -lam_min) + 1e-6 * max(abs(lam_max), 1e-12)
            H[np.diag_indices(p)] += extra
            self.damping_ = self.damping + extra
            warnings.warn(
                f"{problem}; added damping {extra:.3g} (total damping {self.damping_:.3g}) to "
                "make it invertible. Influence values are those of the damped problem.",
                RuntimeWarning,
                stacklevel=3,
            )
            self._chol = la.cho_factor(H, lower=True, check_finite=True)
        self._inverse = None

    def solve(self, B):
        B = self._project(np.asarray(B, dtype=np.float64))
        d = self._unscale
        if d is None:
            return self._project(la.cho_solve(self._chol, B, check_finite=False))
        # H^{-1} = D (D H D)^{-1} D
        d = d.reshape((-1,) + (1,) * (B.ndim - 1))
        return self._project(d * la.cho_solve(self._chol, d * B, check_finite=False))

    def inverse(self):
        if self._inverse is None:
            c, lower = self._chol
            # LAPACK's inverse from the factor: half the flops of solving for the identity
            inv, info = la.lapack.dpotri(c, lower=lower)
            if info != 0:
                inv = la.cho_solve(self._chol, np.eye(c.shape[0]), check_finite=False)
            else:
                tri = np.tril(inv) if lower else np.triu(inv)
                inv = tri + tri.T
                inv[np.diag_indices_from(inv)] *= 0.5
            if self._unscale is not None:
                inv *= self._unscale[:, None] * self._unscale[None, :]
            N = self.null_space
            if N is not None:
                # the flat directions are eigenvectors of the lifted Hessian with
                # eigenvalue lift + damping: removing them leaves the pseudo-inverse
                inv -= (N @ N.T) / (self._lift + self.damping_)
            self._inverse = 0.5 * (inv + inv.T)
        return self._inverse

    def info(self):
        out = super().info()
        out["min_eigenvalue"] = self.min_eigenvalue_
        return out


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
    if diag.min() ** 2 < 1e-13 * diag.max() ** 2:
        return None
    if estimate_condition:
        rcond, info = la.lapack.dpocon(chol[0], np.abs(H).sum(axis=0).max(), uplo="L")
        if info != 0 or rcond < 1e-13:
            return None
    return chol
