"""scikit-learn's ``simultaneous_sort`` (introsort, 3-way partition) in numba.

The order it leaves equal values in decides the order in which the tree criterion sums
its samples, hence the rounding of those sums: the replica of :mod:`._builder` sorts
exactly as scikit-learn's ``sklearn/utils/_sorting.pyx`` does.
"""

import numpy as np

from .._numba import njit


@njit(cache=True, nogil=True, inline="always")
def _swap(v, s, i, j):
    t = v[i]
    v[i] = v[j]
    v[j] = t
    u = s[i]
    s[i] = s[j]
    s[j] = u


@njit(cache=True, nogil=True)
def _sift_down(v, s, off, start, end):
    root = start
    while True:
        child = root * 2 + 1
        maxind = root
        if child < end and v[off + maxind] < v[off + child]:
            maxind = child
        if child + 1 < end and v[off + maxind] < v[off + child + 1]:
            maxind = child + 1
        if maxind == root:
            break
        _swap(v, s, off + root, off + maxind)
        root = maxind


@njit(cache=True, nogil=True)
def _heapsort(v, s, off, n):
    start = (n - 2) // 2
    while True:
        _sift_down(v, s, off, start, n)
        if start == 0:
            break
        start -= 1
    end = n - 1
    while end > 0:
        _swap(v, s, off, off + end)
        _sift_down(v, s, off, 0, end)
        end -= 1


@njit(cache=True, nogil=True)
def _insertion_sort(v, s, off, n):
    for i in range(1, n):
        tv = v[off + i]
        ti = s[off + i]
        j = i
        while j > 0 and v[off + j - 1] > tv:
            v[off + j] = v[off + j - 1]
            s[off + j] = s[off + j - 1]
            j -= 1
        v[off + j] = tv
        s[off + j] = ti


@njit(cache=True, nogil=True, inline="always")
def _median3(v, off, n):
    a = v[off]
    b = v[off + n // 2]
    c = v[off + n - 1]
    if a < b:
        if b < c:
            return b
        elif a < c:
            return c
        return a
    elif b < c:
        if a < c:
            return a
        return c
    return b


@njit(cache=True, nogil=True)
def _sort(v, s, lo, n):
    """``simultaneous_sort(v[lo:lo+n], s[lo:lo+n], use_three_way_partition=True)``.

    The recursion on the left part is a stack here; parts are disjoint, so the order in
    which they are sorted does not change the result.
    """
    if n <= 15:
        _insertion_sort(v, s, lo, n)
        return
    st_off = np.empty(136, dtype=np.intp)
    st_n = np.empty(136, dtype=np.intp)
    st_d = np.empty(136, dtype=np.intp)
    st_off[0] = lo
    st_n[0] = n
    st_d[0] = 2 * int(np.log2(n))
    top = 1
    while top > 0:
        top -= 1
        off = st_off[top]
        m = st_n[top]
        maxd = st_d[top]
        heap = False
        while m > 15:
            if maxd <= 0:
                _heapsort(v, s, off, m)
                heap = True
                break
            maxd -= 1
            pivot = _median3(v, off, m)
            i = 0
            left = 0
            r = m
            while i < r:
                if v[off + i] < pivot:
                    _swap(v, s, off + i, off + left)
                    i += 1
                    left += 1
                elif v[off + i] > pivot:
                    r -= 1
                    _swap(v, s, off + i, off + r)
                else:
                    i += 1
            st_off[top] = off
            st_n[top] = left
            st_d[top] = maxd
            top += 1
            off += r
            m -= r
        if not heap:
            _insertion_sort(v, s, off, m)
