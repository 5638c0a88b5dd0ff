"""Numba kernels of the dense factorisations (kept apart from the solver classes)."""

from .._numba import njit

# tile edge of the blocked transpose: two 32 x 32 float64 tiles stay in L1
_TILE = 32


@njit(cache=True, nogil=True)
def mirror_lower(A):
    """Copy the strict lower triangle of the square ``A`` onto its upper one, in place.

    Tile by tile, so that the transposed reads stay in cache: one pass over the matrix
    instead of ``tril(A) + tril(A).T`` and its temporaries.
    """
    p = A.shape[0]
    for i0 in range(0, p, _TILE):
        for j0 in range(0, i0 + 1, _TILE):
            for i in range(i0, min(i0 + _TILE, p)):
                for j in range(j0, min(j0 + _TILE, i)):
                    A[j, i] = A[i, j]
    return A
