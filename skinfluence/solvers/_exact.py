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
    result is the pseudo-inverse there.  If the Hessian is still not positive
    definite (non-convex models, or a singular unpenalised problem), the
    smallest eigenvalue is computed and damping is added so that it becomes
    positive, with a warning stating the amount.

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
        try:
            self._chol = la.cho_factor(H, lower=True, check_finite=True)
            # A factorisation can succeed on a numerically singular matrix: check conditioning.
            diag = np.diag(self._chol[0])
            if diag.min() ** 2 < 1e-13 * diag.max() ** 2:
                raise la.LinAlgError("numerically singular")
        except la.LinAlgError:
            eigvals = la.eigvalsh(H)
            lam_min, lam_max = float(eigvals[0]), float(eigvals[-1])
            self.min_eigenvalue_ = lam_min
            extra = max(0.0, -lam_min) + 1e-6 * max(abs(lam_max), 1e-12)
            H[np.diag_indices(p)] += extra
            self.damping_ = self.damping + extra
            warnings.warn(
                f"The Hessian is not positive definite (smallest eigenvalue {lam_min:.3g}, "
                f"largest {lam_max:.3g}); added damping {extra:.3g} (total damping "
                f"{self.damping_:.3g}) to make it invertible. Influence values are those of the "
                "damped problem.",
                RuntimeWarning,
                stacklevel=3,
            )
            self._chol = la.cho_factor(H, lower=True, check_finite=True)
        self._inverse = None

    def solve(self, B):
        B = np.asarray(B, dtype=np.float64)
        X = la.cho_solve(self._chol, self._project(B), check_finite=False)
        return self._project(X)

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
