"""The sampling tasks of the Monte-Carlo semivalues: a batch of permutations or subsets
scored with the utility, reduced to per-player sums."""

import copy

import numpy as np

__all__ = ["permutation_task", "subset_task"]


def _utility_copy(utility):
    """The utility with its own cache and fit counters (tasks may share the object)."""
    u = copy.copy(utility)
    u._cache = {}
    u.n_fits = 0
    u.n_failures = 0
    return u


def permutation_task(utility, fast, u_full, trunc_abs, weights, seed, n_perm):
    """``n_perm`` random player orders: sums and sums of squares of each player's
    (weighted) marginal contributions, ``n_perm``, the fits made and the failed ones."""
    rng = np.random.default_rng(seed)
    n = utility.n_players
    orders = np.array([rng.permutation(n) for _ in range(n_perm)], dtype=np.int64)
    if fast is not None:
        scores, n_fits = fast.prefix_scores(orders, u_full, trunc_abs)
        failures = 0
    else:
        utility = _utility_copy(utility)
        scores = np.array([utility.prefix_scores(o, u_full, trunc_abs) for o in orders])
        n_fits, failures = utility.n_fits, utility.n_failures
    marg = np.diff(scores, axis=1, prepend=utility.empty_score)
    if weights is not None:
        marg = marg * weights[None, :]  # importance weight of the position (coalition size)
    s = np.zeros(n)
    ss = np.zeros(n)
    for r in range(n_perm):
        s[orders[r]] += marg[r]
        ss[orders[r]] += marg[r] ** 2
    return s, ss, n_perm, n_fits, failures


def subset_task(utility, fast, seed, n_sub):
    """``n_sub`` random subsets (each player in with probability 1/2): per player, the
    sums, sums of squares and counts of the utilities of the subsets with and without it,
    then ``n_sub``, the fits made and the failed ones."""
    rng = np.random.default_rng(seed)
    n = utility.n_players
    masks = rng.random((n_sub, n)) < 0.5
    if fast is not None:
        u, n_fits = fast.subset_scores(masks)
        failures = 0
    else:
        utility = _utility_copy(utility)
        u = np.array([utility(np.flatnonzero(m)) for m in masks])
        n_fits, failures = utility.n_fits, utility.n_failures
    m = masks.astype(np.float64)
    return (u @ m, (u**2) @ m, m.sum(0), u @ (1 - m), (u**2) @ (1 - m), (1 - m).sum(0),
            n_sub, n_fits, failures)
