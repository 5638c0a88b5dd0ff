"""Tree models read from scikit-learn's fitted arrays, and the numba kernels that explain them."""
