"""Semivalue weights and exact semivalues by enumeration (tests, tiny games)."""

import numpy as np
from scipy.special import betaln, gammaln

__all__ = ["exact_semivalues", "semivalue_weights"]


def semivalue_weights(n, kind, alpha=1.0, beta=1.0):
    """Probability ``p(k)`` that a semivalue gives to coalitions of size ``k = 0..n-1``.

    The semivalue of player ``j`` is ``sum_k p(k) * mean_{|S|=k, j not in S} [U(S+j) - U(S)]``.
    Shapley: ``p(k) = 1/n``; Beta(alpha, beta) Shapley (Kwon & Zou, 2022):
    ``p(k) = C(n-1, k) B(k + beta, n - 1 - k + alpha) / B(alpha, beta)``;
    Banzhaf: ``p(k) = C(n-1, k) / 2^(n-1)``.
    """
    k = np.arange(n)
    log_binom = gammaln(n) - gammaln(k + 1) - gammaln(n - k)
    if kind == "shapley":
        return np.full(n, 1.0 / n)
    if kind == "beta":
        return np.exp(log_binom + betaln(k + beta, n - 1 - k + alpha) - betaln(alpha, beta))
    if kind == "banzhaf":
        return np.exp(log_binom - (n - 1) * np.log(2.0))
    raise ValueError(kind)



def exact_semivalues(utility, kind="shapley", alpha=1.0, beta=1.0):
    """Exact semivalues by enumerating all ``2^n`` coalitions (``n <= 20``; tests, tiny games).

    Parameters
    ----------
    utility : callable
        ``utility(players)`` -> float for an integer array of players ``0..n-1``;
        must have an ``n_players`` attribute.
    kind : {"shapley", "beta", "banzhaf"}

    Returns
    -------
    ndarray of shape (n_players,)
    """
    n = utility.n_players
    if n > 20:
        raise ValueError(f"Exact enumeration of 2^{n} coalitions is too expensive; use sampling.")
    U = np.empty(1 << n)
    for mask in range(1 << n):
        U[mask] = utility(np.array([j for j in range(n) if mask >> j & 1], dtype=np.intp))
    p = semivalue_weights(n, kind, alpha, beta)
    log_binom = gammaln(n) - gammaln(np.arange(n) + 1) - gammaln(n - np.arange(n))
    coef = p / np.exp(log_binom)  # weight of each single coalition of size k
    values = np.zeros(n)
    sizes = np.array([bin(m).count("1") for m in range(1 << n)])
    for j in range(n):
        for mask in range(1 << n):
            if not mask >> j & 1:
                values[j] += coef[sizes[mask]] * (U[mask | 1 << j] - U[mask])
    return values
