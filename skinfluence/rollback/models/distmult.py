"""DistMult (Yang et al., 2015): ``s(h, r, t) = sum_k e_h[k] w_r[k] e_t[k]``.

The query of ``(h, r)`` is the element-wise product ``e_h * w_r``.
"""

from collections import namedtuple

from ..._numba import njit
from .._interface import register
from .._kg_estimator import KG_DOC, _KGEmbedding

__all__ = ["DistMult"]

#: DistMult inside the numba kernels.
DistMultSpec = namedtuple("DistMultSpec", [])


@njit(cache=True, nogil=True, inline="always")
def query(eh, wr, q):
    """``q = eh * wr``."""
    for k in range(q.shape[0]):
        q[k] = eh[k] * wr[k]


@njit(cache=True, nogil=True, inline="always")
def query_backward(eh, wr, dq, gh, gr):
    """``gh = dq * wr``, ``gr = dq * eh``."""
    for k in range(dq.shape[0]):
        gh[k] = dq[k] * wr[k]
        gr[k] = dq[k] * eh[k]


register(DistMultSpec, query=query, query_backward=query_backward)


class DistMult(_KGEmbedding):
    __doc__ = KG_DOC.format(
        name="DistMult",
        score="Score ``s(h, r, t) = sum_k e_h[k] w_r[k] e_t[k]`` (Yang et al., 2015).",
        complex_note="",
        init_note=" (relation vectors are centred at 1)",
        dim="n_components",
    )
    _spec = DistMultSpec()

    def _init_embeddings(self, rs, n_entities, n_relations):
        E, R = super()._init_embeddings(rs, n_entities, n_relations)
        # DistMult scores are products of three small numbers: start the
        # relation diagonals at 1 +- noise so early gradients are not tiny
        R += 1.0
        return E, R
