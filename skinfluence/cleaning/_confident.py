"""Confident learning (Northcutt, Jiang & Chuang, JAIR 2021), written from the paper.

Everything here works on *any* ``(n_samples, n_classes)`` matrix of
out-of-sample class probabilities ``P`` and integer-coded given labels
``labels`` in ``0..K-1``.  In skinfluence ``P`` normally comes from one fit
through the influence machinery (approximate leave-one-out probabilities);
the paper uses K-fold cross-validated probabilities, which work here too.

Notation of the paper (Section 3):

* per-class threshold ``t_j``: the average self-confidence
  ``mean(P[x, j] for x labelled j)``;
* confident joint ``C[i, j]``: the number of samples labelled ``i`` whose
  probability for class ``j`` reaches ``t_j`` (ties between several such
  ``j`` go to the largest probability);
* calibrated joint ``Q``: each row of ``C`` rescaled to the class count
  ``|X_{y=i}|``, then the whole matrix normalised to sum to one;
* pruning rules that turn ``Q`` into a set of label issues.
"""

import numpy as np

from ._confident_kernels import assign_confident

__all__ = [
    "per_class_thresholds",
    "confident_joint",
    "estimate_joint",
    "estimate_noise_count",
    "find_label_issues",
    "issue_scores",
    "FILTERS",
]

FILTERS = (
    "prune_globally",
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_joint",
    "predicted_neq_given",
)


def _check(labels, P):
    P = np.asarray(P, dtype=np.float64)
    labels = np.asarray(labels)
    if P.ndim != 2:
        raise ValueError(f"pred_probs must be 2-D (n_samples, n_classes); got shape {P.shape}.")
    if labels.ndim != 1 or labels.shape[0] != P.shape[0]:
        raise ValueError(
            f"labels has shape {labels.shape}; expected ({P.shape[0]},) to match pred_probs."
        )
    if labels.dtype.kind not in "iu":
        raise ValueError("labels must be integer class codes in 0..n_classes-1.")
    if labels.size and (labels.min() < 0 or labels.max() >= P.shape[1]):
        raise ValueError(f"labels must lie in 0..{P.shape[1] - 1}.")
    if not np.all(np.isfinite(P)):
        raise ValueError("pred_probs contains NaN or infinite values.")
    return labels.astype(np.intp), P


def per_class_thresholds(labels, P):
    """Average self-confidence ``t_j`` of each class (Eq. 2 of the paper).

    Classes with no labelled sample get ``+inf`` (nothing is counted into them).
    """
    labels, P = _check(labels, P)
    K = P.shape[1]
    counts = np.bincount(labels, minlength=K)
    sums = np.bincount(labels, weights=P[np.arange(labels.shape[0]), labels], minlength=K)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)
    return t


def confident_joint(labels, P, thresholds=None):
    """Confident joint ``C`` of given (rows) and latent true (columns) labels.

    Returns
    -------
    C : ndarray of shape (K, K), dtype=int64
    assigned : ndarray of shape (n_samples,), dtype=intp
        The latent class each sample was counted into, ``-1`` if none of its
        probabilities reached the class threshold.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.cleaning import confident_joint
    >>> labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> P = np.array([[.9, .1], [.8, .2], [.85, .15], [.1, .9],
    ...               [.1, .9], [.2, .8], [.05, .95], [.15, .85]])
    >>> C, assigned = confident_joint(labels, P)
    >>> C.tolist()
    [[3, 1], [0, 2]]
    >>> assigned.tolist()  # -1: no class probability reached its threshold
    [0, 0, 0, 1, 1, -1, 1, -1]
    """
    labels, P = _check(labels, P)
    K = P.shape[1]
    t = per_class_thresholds(labels, P) if thresholds is None else np.asarray(thresholds)
    t = np.ascontiguousarray(np.broadcast_to(np.asarray(t, dtype=np.float64), (K,)))
    return assign_confident(labels, P, t)


def estimate_joint(C, class_counts):
    """Calibrate the confident joint into the joint distribution ``Q`` (Eq. 3).

    Rows are rescaled to the observed class counts so that row sums match
    ``|X_{y=i}|``; a class none of whose samples was confidently counted is
    taken as noise-free (all its mass on the diagonal).

    Parameters
    ----------
    C : ndarray of shape (n_classes, n_classes)
        Confident joint from :func:`confident_joint`.
    class_counts : ndarray of shape (n_classes,)
        Number of samples with each given label.

    Returns
    -------
    Q : ndarray of shape (n_classes, n_classes)
        Estimated joint distribution of given (rows) and true (columns) labels;
        ``n * (1 - trace(Q))`` estimates the number of label errors.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.cleaning import estimate_joint
    >>> Q = estimate_joint(np.array([[3, 1], [0, 2]]), np.array([4, 4]))
    >>> Q.tolist()
    [[0.375, 0.125], [0.0, 0.5]]
    """
    C = np.asarray(C, dtype=np.float64)
    class_counts = np.asarray(class_counts, dtype=np.float64)
    K = C.shape[0]
    row = C.sum(axis=1)
    Ct = np.zeros_like(C)
    has = row > 0
    Ct[has] = C[has] / row[has, None] * class_counts[has, None]
    empty = np.flatnonzero(~has)
    Ct[empty, empty] = class_counts[empty]
    total = Ct.sum()
    if total <= 0:
        return np.eye(K) / K
    return Ct / total


def estimate_noise_count(labels, P):
    """Number of mislabelled samples estimated by confident learning: ``n (1 - trace Q)``."""
    labels, P = _check(labels, P)
    K = P.shape[1]
    C, _ = confident_joint(labels, P)
    Q = estimate_joint(C, np.bincount(labels, minlength=K))
    return int(round(labels.shape[0] * (1.0 - np.trace(Q))))


def _cap_per_class(selected, labels, K, min_keep=1):
    """Never flag a whole class: keep at least ``min_keep`` samples of each given label."""
    for i in range(K):
        members = np.flatnonzero(labels == i)
        excess = selected[members].sum() - (members.shape[0] - min_keep)
        if excess > 0:
            chosen = members[selected[members]]
            selected[chosen[:excess]] = False
    return selected


def find_label_issues(labels, P, *, filter_by="prune_by_noise_rate", frac_noise=1.0):
    """Boolean mask of samples whose given label confident learning rejects.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
        Integer-coded given labels.
    P : ndarray of shape (n_samples, n_classes)
        Out-of-sample predicted probabilities.
    filter_by : {"prune_by_noise_rate", "prune_globally", "prune_by_class", "both", \
            "confident_joint", "predicted_neq_given"}, default="prune_by_noise_rate"
        ``prune_by_noise_rate`` (the paper's PBNR): for every off-diagonal
        cell ``(i, j)`` flag the ``n Q[i, j]`` samples labelled ``i`` with
        the largest margin ``P[x, j] - P[x, i]``.  ``prune_by_class`` (PBC):
        per class ``i`` flag the ``n sum_{j != i} Q[i, j]`` samples with the
        lowest self-confidence.  ``both``: the intersection.
        ``prune_globally``: the same total count ``n (1 - trace Q)`` as PBC,
        but the samples with the lowest self-confidence over the whole set
        (not per class).
        ``confident_joint``: the off-diagonal of ``C``.
        ``predicted_neq_given``: the argmax of ``P`` differs from the label.
    frac_noise : float in (0, 1], default=1.0
        Scales the estimated number of issues (PBNR, PBC and both).

    Returns
    -------
    issues : ndarray of shape (n_samples,), dtype=bool

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.cleaning import find_label_issues
    >>> labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> P = np.array([[.9, .1], [.8, .2], [.85, .15], [.1, .9],
    ...               [.1, .9], [.2, .8], [.05, .95], [.15, .85]])
    >>> find_label_issues(labels, P).tolist()
    [False, False, False, True, False, False, False, False]
    """
    labels, P = _check(labels, P)
    if filter_by not in FILTERS:
        raise ValueError(f"filter_by must be one of {FILTERS}; got {filter_by!r}.")
    if not 0.0 < frac_noise <= 1.0:
        raise ValueError(f"frac_noise must be in (0, 1]; got {frac_noise!r}.")
    return _label_issues(labels, P, filter_by, frac_noise)


def _lowest_k(values, k):
    """Mask of the ``k`` smallest values, ties broken by index (as a stable sort), in O(n)."""
    n = values.shape[0]
    mask = np.zeros(n, dtype=bool)
    k = min(max(int(k), 0), n)
    if k == 0:
        return mask
    kth = np.partition(values, k - 1)[k - 1]
    mask = values < kth
    need = k - int(mask.sum())
    mask[np.flatnonzero(values == kth)[:need]] = True
    return mask


def _cap_if_needed(selected, labels, self_conf, K):
    """Per-class cap (never flag a whole class), dropping the least suspicious first."""
    counts = np.bincount(labels, minlength=K)
    if np.all(np.bincount(labels[selected], minlength=K) <= np.maximum(counts - 1, 0)):
        return selected  # the common case: nothing to cap, no sort needed
    order = np.argsort(-self_conf, kind="stable")
    capped = _cap_per_class(selected[order].copy(), labels[order], K)
    out = np.empty(selected.shape[0], dtype=bool)
    out[order] = capped
    return out


def _label_issues(labels, P, filter_by, frac_noise=1.0, joint=None, rank=None):
    """:func:`find_label_issues` on checked input; ``joint`` is a precomputed confident joint.
    ``rank``: other probabilities (same shape) that order the rows within the counts
    ``P`` gives (self-confidence, PBNR's margins), e.g. lower-variance but biased ones."""
    n, K = P.shape
    if filter_by == "predicted_neq_given":
        return _cap_per_class(np.argmax(P, axis=1) != labels, labels, K)
    C, assigned = confident_joint(labels, P) if joint is None else joint
    if filter_by == "confident_joint":
        return _cap_per_class((assigned >= 0) & (assigned != labels), labels, K)
    Q = estimate_joint(C, np.bincount(labels, minlength=K))
    if rank is not None:
        P = rank
    self_conf = P[np.arange(n), labels]

    if filter_by == "prune_globally":
        k = int(round(n * (1.0 - np.trace(Q)) * frac_noise))
        return _cap_if_needed(_lowest_k(self_conf, k), labels, self_conf, K)

    pbnr = np.zeros(n, dtype=bool)
    pbc = np.zeros(n, dtype=bool)
    if filter_by in ("prune_by_noise_rate", "both"):
        for i in range(K):
            members = np.flatnonzero(labels == i)
            for j in range(K):
                if j == i:
                    continue
                k = int(round(n * Q[i, j] * frac_noise))
                if k <= 0:
                    continue
                margin = P[members, j] - P[members, i]
                k = min(k, members.shape[0])
                top = np.argpartition(-margin, k - 1)[:k]
                pbnr[members[top]] = True
    if filter_by in ("prune_by_class", "both"):
        for i in range(K):
            members = np.flatnonzero(labels == i)
            k = int(round(n * (Q[i].sum() - Q[i, i]) * frac_noise))
            k = min(k, members.shape[0])
            if k <= 0:
                continue
            low = np.argpartition(self_conf[members], k - 1)[:k]
            pbc[members[low]] = True
    if filter_by == "prune_by_noise_rate":
        selected = pbnr
    elif filter_by == "prune_by_class":
        selected = pbc
    else:
        selected = pbnr & pbc
    return _cap_if_needed(selected, labels, self_conf, K)


def issue_scores(labels, P, method="normalized_margin"):
    """Per-sample score, higher = more likely mislabelled, in ``[0, 1]``.

    ``self_confidence``: ``1 - P[x, label]``.  ``normalized_margin``:
    ``(1 + max_{j != label} P[x, j] - P[x, label]) / 2``.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
        Integer-coded given labels.
    P : ndarray of shape (n_samples, n_classes)
        Out-of-sample predicted probabilities.
    method : {"self_confidence", "normalized_margin"}, default="normalized_margin"

    Returns
    -------
    scores : ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.cleaning import issue_scores
    >>> issue_scores(np.array([0, 1]), np.array([[.9, .1], [.6, .4]]), "self_confidence")
    array([0.1, 0.6])
    """
    labels, P = _check(labels, P)
    idx = np.arange(P.shape[0])
    self_conf = P[idx, labels]
    if method == "self_confidence":
        return 1.0 - self_conf
    if method == "normalized_margin":
        other = P.copy()
        other[idx, labels] = -np.inf
        return 0.5 * (1.0 + other.max(axis=1) - self_conf)
    raise ValueError(
        f"method must be 'self_confidence' or 'normalized_margin'; got {method!r}."
    )
