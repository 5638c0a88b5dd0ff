"""The running top-k of ``explain`` (``skinfluence.utils._top_k``, ``base.RunningTopK``) against
a stable sort of the whole matrix, and ``top_k_over_blocks(fast=...)`` against the reference
selection (per-block ``np.argpartition`` merged by stable sorts), ties included."""

import numpy as np
import pytest

from skinfluence.base import RunningTopK, run_blocks, top_k_over_blocks
from skinfluence.utils._parallel import chunk_slices

FIELDS = ["helpful_indices", "helpful_values", "harmful_indices", "harmful_values"]


def stable_sort_top_k(M, k):
    """First ``k`` of a stable sort of each row; NaN and the sentinel infinities excluded,
    missing slots index -1 with value -inf (largest) / +inf (smallest)."""
    n = M.shape[0]
    out = [np.full((n, k), -1), np.full((n, k), -np.inf), np.full((n, k), -1),
           np.full((n, k), np.inf)]
    for a, row in enumerate(M):
        for pos, (keep, key) in enumerate(((row > -np.inf, -row), (row < np.inf, row))):
            cols = np.flatnonzero(keep)
            cols = cols[np.argsort(key[cols], kind="stable")][:k]
            out[2 * pos][a, :cols.size] = cols
            out[2 * pos + 1][a, :cols.size] = row[cols]
    return dict(zip(FIELDS, out))


def assert_same(result, expected):
    for name in FIELDS:
        np.testing.assert_array_equal(result[name], expected[name], err_msg=name)


def tied_matrix(n, m, seed):
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(size=(n, m)), 1)  # about 60 distinct values: many ties


def fold_all(M, k, width):
    top = RunningTopK(M.shape[0], k)
    for cols in chunk_slices(M.shape[1], width):
        top.fold(M[:, cols], cols.start)
    return top


def select(M, k, ref_width, fast_width, n_jobs=None, serial=True):
    """``top_k_over_blocks`` of ``M`` with and without the fast path."""
    def run(f, c):
        return run_blocks(f, c, "test", n_jobs=n_jobs)

    args = (lambda cols: M[:, cols], chunk_slices(M.shape[1], ref_width), run, M.shape[0],
            M.shape[1], k)
    fast = (lambda cols: M[:, cols], chunk_slices(M.shape[1], fast_width),
            lambda rows: (lambda cols: M[rows][:, cols]))
    return top_k_over_blocks(*args), top_k_over_blocks(*args, fast=fast, serial=serial)


@pytest.mark.parametrize("k", [1, 3, 10])
@pytest.mark.parametrize("width", [1, 7, 64, 1000])
def test_running_selection_is_the_stable_sort_and_flags_ties(k, width):
    M = tied_matrix(6, 300, seed=k + width)
    M[5] = np.arange(300.0)  # a row without ties
    top = fold_all(M, k, width)
    assert_same(top.result(), stable_sort_top_k(M, k))
    # every row whose selection depends on how equal values are ordered is flagged
    for i, row in enumerate(M):
        for s in (np.sort(row)[::-1], np.sort(row)):
            if len(np.unique(s[:k + 1])) < min(k + 1, s.size):
                assert top.tied[i]
    assert not top.tied[5]


@pytest.mark.parametrize("n_jobs, serial", [(None, True), (None, False), (2, False)])
@pytest.mark.parametrize("k", [1, 4, 30])
def test_fast_path_orders_ties_as_the_reference_selection(n_jobs, serial, k):
    # rows with and without ties; blocks of the fast path unlike the reference's
    rng = np.random.default_rng(k)
    M = rng.normal(size=(12, 700))
    M[::3] = np.round(M[::3], 1)  # ties everywhere
    M[1, [10, 400, 650]] = M[1].max() + 1.0  # three equal largest values
    M[2, 5] = M[2, 600] = np.sort(M[2])[k]  # two equal values at the k-th place
    ref, fast = select(M, k, ref_width=256, fast_width=50, n_jobs=n_jobs, serial=serial)
    assert_same(fast, ref)
    clean = [i for i in range(12) if i % 3 and i not in (1, 2)]
    assert_same({f: fast[f][clean] for f in FIELDS}, stable_sort_top_k(M[clean], k))


def test_parallel_merge_flags_the_same_rows_as_the_serial_fold():
    M = tied_matrix(9, 2000, seed=3)
    M[4] = np.random.default_rng(0).normal(size=2000)
    serial = fold_all(M, 5, 50)
    top = RunningTopK(9, 5)
    for cols in chunk_slices(2000, 50):
        part = top.seeded()
        part.fold(M[:, cols], cols.start)
        top.merge(part)
    assert_same(top.result(), serial.result())
    np.testing.assert_array_equal(top.tied, serial.tied)


def test_k_at_least_the_number_of_columns_returns_every_column_in_order():
    M = tied_matrix(4, 9, seed=1)
    ref, fast = select(M, 50, ref_width=4, fast_width=2)
    assert fast.helpful_indices.shape == (4, 9)
    assert_same(fast, ref)
    assert_same(fast, stable_sort_top_k(M, 9))


def test_nan_and_infinities_are_never_selected_where_they_cannot_win():
    rng = np.random.default_rng(2)
    M = rng.normal(size=(5, 40))
    M[0, :] = np.nan  # nothing to select: -1 everywhere
    M[1, ::2] = np.nan
    M[2, 3] = np.inf  # the largest, never among the smallest
    M[2, 5] = -np.inf  # the smallest, never among the largest
    M[3, :37] = -np.inf  # only three finite values for the largest
    ref, fast = select(M, 6, ref_width=8, fast_width=8)
    assert_same(fast, ref)
    assert_same(fast, stable_sort_top_k(M, 6))
    assert np.all(fast.helpful_indices[0] == -1) and np.all(fast.harmful_indices[0] == -1)
    assert fast.helpful_indices[2, 0] == 3 and fast.harmful_indices[2, 0] == 5
    assert list(fast.helpful_indices[3, 3:]) == [-1, -1, -1]


def test_read_only_and_non_contiguous_blocks():
    M = tied_matrix(5, 120, seed=4)
    M.setflags(write=False)
    top = fold_all(M, 4, 30)  # read-only, strided views
    assert_same(top.result(), stable_sort_top_k(M, 4))
    MF = np.asfortranarray(M)
    MF.setflags(write=False)
    top_f = RunningTopK(5, 4)
    top_f.fold(MF, 0)
    assert_same(top_f.result(), stable_sort_top_k(M, 4))


def test_distinct_values_match_a_numpy_selection():
    rng = np.random.default_rng(5)
    M = rng.normal(size=(20, 5000))
    top = fold_all(M, 10, 333)
    assert not top.tied.any()
    got = top.result()
    part = np.argpartition(-M, 9, axis=1)[:, :10]
    order = np.take_along_axis(part, np.argsort(-np.take_along_axis(M, part, 1), 1), 1)
    np.testing.assert_array_equal(got.helpful_indices, order)
    np.testing.assert_array_equal(got.harmful_values, np.sort(M, axis=1)[:, :10])
