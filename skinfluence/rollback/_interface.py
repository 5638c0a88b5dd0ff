"""The one interface a knowledge-graph model implements for training and rollback.

The models here are *bilinear in the tail*: the score of ``(h, r, t)`` is
``query(e_h, w_r) . e_t``, with ``query`` a model-specific map of the head's
and the relation's embedding rows (DistMult: the element-wise product;
ComplEx: the complex product).  A model is two numba functions on rows:

``query(eh, wr, q)``
    writes the query vector of head row ``eh`` and relation row ``wr`` into ``q``;
``query_backward(eh, wr, dq, gh, gr)``
    writes into ``gh`` and ``gr`` the gradient of ``dq . query(eh, wr)`` with
    respect to ``eh`` and ``wr`` (the backward pass of ``query``).

:func:`register` ties them to a *spec* class, a namedtuple that stands for the
model inside the kernels: every kernel takes the spec instance as its first
argument and calls :func:`query` / :func:`query_backward` below, which numba
resolves at compile time to the registered model's functions (one compiled
and cached specialisation per model; no branch on a model code).  Training
(``_kg_train``), the first-order and full rollbacks (``_kg_rollback``) and the
trajectory replay (``_trajectory``) all go through these two functions, so a
new bilinear model is one new module in :mod:`skinfluence.rollback.models`.

numba caches each kernel by its own source file: after editing a model's
functions in a development checkout, clear the kernel cache
(:func:`skinfluence._numba.cache_dir`) or touch the kernel modules.
"""

from numba import types
from numba.extending import overload

from .._numba import njit

__all__ = ["register", "query", "query_backward", "tail_scores", "query_scores"]


def query(model, eh, wr, q):
    """The query vector of rows ``eh``, ``wr`` of ``model`` into ``q`` (numba only)."""
    raise NotImplementedError("query is resolved inside numba kernels only")


def query_backward(model, eh, wr, dq, gh, gr):
    """The backward pass of ``query`` into ``gh``, ``gr`` (numba only)."""
    raise NotImplementedError("query_backward is resolved inside numba kernels only")


def register(spec, *, query, query_backward):
    """Make the numba functions ``query``, ``query_backward`` the model ``spec`` stands for.

    ``spec`` is a namedtuple class defined at module level (numba keys the
    compiled kernels by it, and the kernel cache pickles it by name).
    """

    def _is_spec(model):
        return isinstance(model, types.BaseNamedTuple) and model.instance_class is spec

    q_impl, b_impl = query, query_backward

    @overload(globals()["query"], inline="always")
    def _query(model, eh, wr, q):
        if _is_spec(model):
            return lambda model, eh, wr, q: q_impl(eh, wr, q)
        return None

    @overload(globals()["query_backward"], inline="always")
    def _query_backward(model, eh, wr, dq, gh, gr):
        if _is_spec(model):
            return lambda model, eh, wr, dq, gh, gr: b_impl(eh, wr, dq, gh, gr)
        return None

    return spec


@njit(cache=True, nogil=True, inline="always")
def tail_scores(q, E, out):
    """``out[e] = q . E[e]``: the query's score for every candidate tail."""
    for e in range(E.shape[0]):
        s_ = 0.0
        for k in range(E.shape[1]):
            s_ += q[k] * E[e, k]
        out[e] = s_


@njit(cache=True, nogil=True, inline="always")
def query_scores(model, E, R, h, r, q, out):
    """The query vector of ``(h, r)`` into ``q`` and every tail's score into ``out``."""
    query(model, E[h], R[r], q)
    tail_scores(q, E, out)
