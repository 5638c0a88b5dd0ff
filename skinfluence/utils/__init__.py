"""Small shared helpers: progress reporting and thread control."""

from ._parallel import blas_and_numba_threads, chunk_slices, effective_n_jobs
from ._progress import progress

__all__ = ["progress", "chunk_slices", "effective_n_jobs", "blas_and_numba_threads"]
