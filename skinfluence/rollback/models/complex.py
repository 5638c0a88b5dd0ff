"""ComplEx (Trouillon et al., 2016): ``s(h, r, t) = Re(sum_k e_h[k] w_r[k] conj(e_t[k]))``.

Rows hold complex vectors, real parts in the first half and imaginary parts in
the second; the query of ``(h, r)`` is the complex product ``e_h * w_r``, so the
score is its real dot product with ``e_t``.
"""

from collections import namedtuple

from ..._numba import njit
from .._interface import register
from .._kg_estimator import KG_DOC, _KGEmbedding

__all__ = ["ComplEx"]

#: ComplEx inside the numba kernels.
ComplExSpec = namedtuple("ComplExSpec", [])


@njit(cache=True, nogil=True, inline="always")
def query(eh, wr, q):
    """``q = eh * wr`` as complex numbers."""
    c = q.shape[0] // 2
    for k in range(c):
        hr, hi, rr, ri = eh[k], eh[c + k], wr[k], wr[c + k]
        q[k] = hr * rr - hi * ri
        q[c + k] = hr * ri + hi * rr


@njit(cache=True, nogil=True, inline="always")
def query_backward(eh, wr, dq, gh, gr):
    """Gradients of ``dq . query(eh, wr)`` with respect to ``eh`` (``gh``) and ``wr`` (``gr``)."""
    c = dq.shape[0] // 2
    for k in range(c):
        hr, hi, rr, ri = eh[k], eh[c + k], wr[k], wr[c + k]
        da, db = dq[k], dq[c + k]
        gh[k] = da * rr + db * ri
        gh[c + k] = -da * ri + db * rr
        gr[k] = da * hr + db * hi
        gr[c + k] = -da * hi + db * hr


register(ComplExSpec, query=query, query_backward=query_backward)


class ComplEx(_KGEmbedding):
    __doc__ = KG_DOC.format(
        name="ComplEx",
        score=("Score ``s(h, r, t) = Re(sum_k e_h[k] w_r[k] conj(e_t[k]))`` with "
               "complex embeddings (Trouillon et al., 2016)."),
        complex_note=" (complex numbers: real parts in the first half of each row, "
                     "imaginary parts in the second)",
        init_note="",
        dim="2 * n_components",
    )
    _spec = ComplExSpec()

    def _width(self):
        return 2 * self.n_components
