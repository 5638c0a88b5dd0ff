"""The removal-invariant random stream of the training loops, and a prefetch hint.

Batch order and negative samples come from a counter-based hash (splitmix64)
of ``(seed, epoch, content of the example)`` instead of a sequential
generator.  Consequences, both needed for faithful retraining experiments:

* an example with ``sample_weight=0`` is skipped (no gradient, no optimizer
  state touched) while every other example sees exactly the same batch
  neighbours and negatives as in the full run;
* with ``batch_size=1`` physically deleting a row of ``X`` gives bit-for-bit
  the same model as giving it weight 0, because the order is an argsort of
  per-example hashes (deleting one key keeps the relative order of the rest).

Nothing here is compiled at import time; every kernel is ``cache=True`` and
``nogil=True`` so that independent fits can run in threads.
"""

import numpy as np
from llvmlite import ir
from llvmlite.binding import llvm_version_info
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .._numba import njit

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_NEG = np.uint64(0x632BE59BD9B4E019)

@njit(cache=True, nogil=True, inline="always")
def _mix(z):
    z = z + _GOLD
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def content_keys(cols, seed):
    """Hash of each row's integer content, salted by ``seed`` (uint64)."""
    n, m = cols.shape
    keys = np.empty(n, dtype=np.uint64)
    for i in range(n):
        z = _mix(seed)
        for j in range(m):
            z = _mix(z ^ np.uint64(cols[i, j]))
        keys[i] = z
    return keys


@njit(cache=True, nogil=True)
def _epoch_order(keys, epoch):
    salt = _mix(np.uint64(epoch) * _NEG + _GOLD)
    n = keys.shape[0]
    ek = np.empty(n, dtype=np.uint64)
    for i in range(n):
        ek[i] = _mix(keys[i] ^ salt)
    # mergesort is stable: duplicated examples keep their relative order
    return np.argsort(ek, kind="mergesort"), ek


@njit(cache=True, nogil=True)
def epoch_negatives(keys, epoch, tails, n_entities, n_neg):
    """Negatives each example sees in ``epoch`` (for tests and inspection)."""
    _, ek = _epoch_order(keys, epoch)
    n = keys.shape[0]
    out = np.empty((n, n_neg), dtype=np.int64)
    for i in range(n):
        for s in range(n_neg):
            out[i, s] = _negative(ek[i], s, tails[i], n_entities)
    return out


@njit(cache=True, nogil=True, inline="always")
def _negative(ek, s, t, n_entities):
    u = _mix(ek + np.uint64(s + 1) * _NEG)
    neg = np.int64(u % np.uint64(n_entities - 1))
    if neg >= t:  # uniform over entities other than the true tail
        neg += 1
    return neg


# the intrinsic is mangled by pointer type: opaque pointers from LLVM 17 on
_PREFETCH_NAME = ("llvm.prefetch.p0" if llvm_version_info[0] >= 17
                  else "llvm.prefetch.p0i8")


@intrinsic
def _prefetch(typingctx, arr, row, col):
    """Hint the CPU to fetch ``arr[row, col]``'s cache line for writing
    (``llvm.prefetch``; no effect on results).  The bookkeeping arrays are
    indexed by example in shuffled order, so their rows are cache misses:
    prefetching a few examples ahead overlaps them with the training work."""
    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        r = context.cast(builder, args[1], signature.args[1], types.intp)
        c = context.cast(builder, args[2], signature.args[2], types.intp)
        ptr = cgutils.get_item_pointer2(
            context, builder, data=ary.data, shape=cgutils.unpack_tuple(builder, ary.shape),
            strides=cgutils.unpack_tuple(builder, ary.strides), layout=aryty.layout,
            inds=[r, c])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            _PREFETCH_NAME)
        # rw=1 (write), locality=3 (keep in all levels), data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 1),
                          ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.void(arr, row, col), codegen


_AHEAD = 8  # examples to prefetch ahead


@njit(cache=True, nogil=True, inline="always")
def _prefetch_row(arr, row):
    """Prefetch every cache line of ``arr[row]`` (8 doubles per line)."""
    for c in range(0, arr.shape[1], 8):
        _prefetch(arr, row, c)
    _prefetch(arr, row, arr.shape[1] - 1)
