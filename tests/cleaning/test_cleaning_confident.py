"""Confident learning, noise injection and the cleaning curve, checked against brute force."""

import numpy as np
import pytest

from skinfluence.cleaning import (
    cleaning_curve,
    confident_joint,
    estimate_joint,
    find_label_issues,
    issue_scores,
)
from skinfluence.cleaning._confident import estimate_noise_count, per_class_thresholds
from skinfluence.datasets import make_noisy_labels


def _random_problem(n=60, K=3, seed=0):
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, K, n)
    labels[:K] = np.arange(K)  # every class present
    logits = rng.normal(size=(n, K))
    logits[np.arange(n), labels] += 1.5
    P = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return labels, P


# ---------------------------------------------------------------- noise
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.33, 1.0])
def test_make_noisy_labels_counts_and_flips(rate):
    y = np.repeat(np.arange(4), 25)
    y_noisy, flipped = make_noisy_labels(y, rate, random_state=0)
    assert flipped.dtype == bool and flipped.sum() == round(rate * 100)
    assert np.all(y_noisy[flipped] != y[flipped])
    assert np.all(y_noisy[~flipped] == y[~flipped])
    assert set(np.unique(y_noisy)) <= set(np.unique(y))
    assert y_noisy.dtype == y.dtype


def test_make_noisy_labels_uniform_over_other_classes():
    y = np.zeros(30000, dtype=int)
    y[:3] = [1, 2, 3]
    y_noisy, flipped = make_noisy_labels(y, 0.5, random_state=1)
    targets = y_noisy[flipped & (y == 0)]
    freq = np.bincount(targets, minlength=4)[1:] / targets.size
    # 15000 draws: each of the 3 other classes within 4 standard errors of 1/3
    assert np.all(np.abs(freq - 1 / 3) < 4 * np.sqrt(2 / 9 / targets.size))


def test_make_noisy_labels_strings_pandas_and_reproducible():
    pd = pytest.importorskip("pandas")
    y = np.array(["cat", "dog", "bird"] * 10)
    a, fa = make_noisy_labels(y, 0.3, random_state=3)
    b, fb = make_noisy_labels(y, 0.3, random_state=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fa, fb)
    assert a.dtype == y.dtype
    s = pd.Series(y, index=np.arange(100, 130), name="animal")
    sn, fs = make_noisy_labels(s, 0.3, random_state=3)
    assert isinstance(sn, pd.Series) and sn.name == "animal"
    np.testing.assert_array_equal(sn.index, s.index)
    np.testing.assert_array_equal(sn.to_numpy(), a)
    np.testing.assert_array_equal(fs, fa)


@pytest.mark.parametrize(
    "y, rate, match",
    [
        (np.zeros(10), 0.1, "at least two classes"),
        (np.arange(10), 1.5, "rate must be"),
        (np.arange(10), -0.1, "rate must be"),
        (np.arange(10).reshape(5, 2), 0.1, "one-dimensional"),
        (np.array([0.0, 1.0, np.nan]), 0.1, "NaN"),
    ],
)
def test_make_noisy_labels_errors(y, rate, match):
    with pytest.raises(ValueError, match=match):
        make_noisy_labels(y, rate)


# ----------------------------------------------------- confident joint
def test_thresholds_and_confident_joint_match_brute_force():
    labels, P = _random_problem(n=80, K=4, seed=1)
    K = P.shape[1]
    t = per_class_thresholds(labels, P)
    for j in range(K):
        assert t[j] == pytest.approx(P[labels == j, j].mean())
    C, assigned = confident_joint(labels, P)
    C_ref = np.zeros((K, K), dtype=int)
    for x in range(labels.shape[0]):
        cand = [j for j in range(K) if P[x, j] >= t[j]]
        if not cand:
            assert assigned[x] == -1
            continue
        j_star = max(cand, key=lambda j: P[x, j])
        assert assigned[x] == j_star
        C_ref[labels[x], j_star] += 1
    np.testing.assert_array_equal(C, C_ref)


def test_estimate_joint_calibration():
    labels, P = _random_problem(n=90, K=3, seed=2)
    C, _ = confident_joint(labels, P)
    counts = np.bincount(labels, minlength=3)
    Q = estimate_joint(C, counts)
    assert Q.sum() == pytest.approx(1.0)
    # rows calibrated to the observed class prior
    np.testing.assert_allclose(Q.sum(axis=1), counts / counts.sum())
    # within a row, the same proportions as the confident joint
    for i in range(3):
        np.testing.assert_allclose(Q[i] / Q[i].sum(), C[i] / C[i].sum())
    # a class never confidently counted is treated as noise-free
    C2 = C.copy()
    C2[1] = 0
    Q2 = estimate_joint(C2, counts)
    assert Q2[1, 1] == pytest.approx(counts[1] / counts.sum()) and Q2[1, [0, 2]].sum() == 0


def test_prune_rules_match_brute_force():
    labels, P = _random_problem(n=120, K=3, seed=4)
    n, K = P.shape
    C, _ = confident_joint(labels, P)
    Q = estimate_joint(C, np.bincount(labels, minlength=K))
    # PBNR: per off-diagonal cell, the round(n Q_ij) largest margins among labelled-i
    ref = np.zeros(n, dtype=bool)
    for i in range(K):
        for j in range(K):
            if i == j:
                continue
            members = [x for x in range(n) if labels[x] == i]
            members.sort(key=lambda x: -(P[x, j] - P[x, i]))
            for x in members[: int(round(n * Q[i, j]))]:
                ref[x] = True
    np.testing.assert_array_equal(find_label_issues(labels, P), ref)
    # PBC: per class, the round(n sum_{j!=i} Q_ij) lowest self-confidences
    ref = np.zeros(n, dtype=bool)
    for i in range(K):
        members = sorted((x for x in range(n) if labels[x] == i), key=lambda x: P[x, i])
        for x in members[: int(round(n * (Q[i].sum() - Q[i, i])))]:
            ref[x] = True
    pbc = find_label_issues(labels, P, filter_by="prune_by_class")
    np.testing.assert_array_equal(pbc, ref)
    both = find_label_issues(labels, P, filter_by="both")
    np.testing.assert_array_equal(both, pbc & find_label_issues(labels, P))
    # global: the n(1 - tr Q) lowest self-confidences overall
    k = int(round(n * (1 - np.trace(Q))))
    assert estimate_noise_count(labels, P) == k
    self_conf = P[np.arange(n), labels]
    glob = find_label_issues(labels, P, filter_by="prune_globally")
    assert glob.sum() == k
    assert self_conf[glob].max() <= self_conf[~glob].min()
    # the remaining simple rules
    cj = find_label_issues(labels, P, filter_by="confident_joint")
    _, assigned = confident_joint(labels, P)
    np.testing.assert_array_equal(cj, (assigned >= 0) & (assigned != labels))
    neq = find_label_issues(labels, P, filter_by="predicted_neq_given")
    np.testing.assert_array_equal(neq, P.argmax(1) != labels)


def test_prune_globally_ties_and_cap_match_stable_sort():
    """The O(n) selection equals 'first k of a stable sort', ties included, and the cap
    (never empty a class) drops the most confident flagged members first."""
    from skinfluence.cleaning._confident import _cap_if_needed, _cap_per_class, _lowest_k

    rng = np.random.default_rng(3)
    for trial in range(20):
        values = rng.integers(0, 6, size=50).astype(float) / 5  # many ties
        for k in (0, 1, 7, 23, 50):
            ref = np.zeros(50, dtype=bool)
            ref[np.argsort(values, kind="stable")[:k]] = True
            np.testing.assert_array_equal(_lowest_k(values, k), ref)
    # a selection covering all of class 1: the cap keeps its most confident member,
    # exactly as capping along the full confidence order does
    labels = np.repeat([0, 1, 2], [30, 4, 30])
    self_conf = rng.uniform(0.5, 1.0, 64)
    self_conf[30:34] = [0.1, 0.13, 0.11, 0.12]
    for selected in (self_conf < 0.6, (self_conf < 0.6) | (labels == 1)):
        order = np.argsort(-self_conf, kind="stable")
        ref = np.empty(64, dtype=bool)
        ref[order] = _cap_per_class(selected[order].copy(), labels[order], 3)
        got = _cap_if_needed(selected.copy(), labels, self_conf, 3)
        np.testing.assert_array_equal(got, ref)
    assert got[30:34].tolist() == [True, False, True, True]  # 0.13 kept


def test_true_posteriors_recover_symmetric_noise():
    """With the true noisy-label posteriors, CL's noise estimate is close to the truth."""
    rng = np.random.RandomState(0)
    n, K, rate = 4000, 3, 0.2
    y_true = rng.randint(0, K, n)
    # clean posteriors: confident and correct
    clean = np.full((n, K), 0.05 / (K - 1))
    clean[np.arange(n), y_true] = 0.95
    y_noisy, flipped = make_noisy_labels(y_true, rate, random_state=1)
    issues = find_label_issues(y_noisy, clean)
    # flags exactly the points whose given label disagrees with a confident model
    np.testing.assert_array_equal(issues, flipped)
    assert estimate_noise_count(y_noisy, clean) == flipped.sum()


def test_clean_data_flags_nothing_and_class_is_never_emptied():
    labels = np.repeat([0, 1], 20)
    P = np.eye(2)[labels] * 0.9 + 0.05
    assert not find_label_issues(labels, P).any()
    # a class whose every label looks wrong still keeps one sample
    P_bad = P.copy()
    P_bad[labels == 1] = [0.9, 0.1]
    P_bad[labels == 0] = [0.6, 0.4]
    for rule in ("prune_by_noise_rate", "prune_by_class", "prune_globally", "predicted_neq_given"):
        issues = find_label_issues(labels, P_bad, filter_by=rule)
        assert (~issues & (labels == 1)).sum() >= 1, rule


def test_issue_scores():
    labels = np.array([0, 1, 2])
    P = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(issue_scores(labels, P, "self_confidence"), [0.3, 0.7, 0.2])
    np.testing.assert_allclose(
        issue_scores(labels, P, "normalized_margin"), [0.25, 0.6, 0.15]
    )


@pytest.mark.parametrize(
    "labels, P, kwargs, match",
    [
        (np.array([0, 1]), np.ones(2), {}, "2-D"),
        (np.array([0, 1, 1]), np.ones((2, 2)), {}, "match pred_probs"),
        (np.array([0.0, 1.0]), np.ones((2, 2)), {}, "integer class codes"),
        (np.array([0, 2]), np.ones((2, 2)), {}, "must lie in"),
        (np.array([0, 1]), np.array([[np.nan, 1], [0, 1]]), {}, "NaN"),
        (np.array([0, 1]), np.eye(2), {"filter_by": "nope"}, "filter_by"),
        (np.array([0, 1]), np.eye(2), {"frac_noise": 0}, "frac_noise"),
    ],
)
def test_find_label_issues_errors(labels, P, kwargs, match):
    with pytest.raises(ValueError, match=match):
        find_label_issues(labels, P, **kwargs)


# ------------------------------------------------------------- curve
def test_cleaning_curve_perfect_random_and_subsampled():
    is_noisy = np.zeros(100, dtype=bool)
    is_noisy[::10] = True
    checked, found, auc = cleaning_curve(is_noisy, is_noisy.astype(float))
    assert found[10] == 1.0 and found[9] == 0.9  # all 10 found after checking 10%
    assert checked[0] == 0 and checked[-1] == 1 and found[0] == 0 and found[-1] == 1
    assert np.all(np.diff(found) >= 0)
    # worst ranking finds them last; area of perfect + worst = 1 by symmetry
    _, _, auc_worst = cleaning_curve(is_noisy, -is_noisy.astype(float))
    assert auc + auc_worst == pytest.approx(1.0)
    # brute force: found after m checks = flips among the top m
    rng = np.random.RandomState(0)
    s = rng.rand(100)
    c, f, _ = cleaning_curve(is_noisy, s)
    order = np.argsort(-s)
    for m in (0, 7, 33, 100):
        assert f[m] == is_noisy[order[:m]].sum() / 10
    c2, f2, _ = cleaning_curve(is_noisy, s, n_points=11)
    assert c2.shape == (11,) and c2[0] == 0 and c2[-1] == 1
    np.testing.assert_allclose(f2, np.interp(c2, c, f))


@pytest.mark.parametrize(
    "is_noisy, scores, match",
    [
        (np.zeros(3, bool), [1, 2, 3], "at least one True"),
        (np.array([True, False]), [1.0], "equal length"),
        (np.array([2, 0]), [1.0, 0.0], "boolean"),
        (np.array([True, False]), [np.nan, 0.0], "NaN"),
    ],
)
def test_cleaning_curve_errors(is_noisy, scores, match):
    with pytest.raises(ValueError, match=match):
        cleaning_curve(is_noisy, scores)


# ------------------------------------------------------------ docstrings
@pytest.mark.parametrize(
    "module",
    [
        "skinfluence.cleaning._cleaner",
        "skinfluence.cleaning._classifier",
        "skinfluence.cleaning._confident",
        "skinfluence.cleaning._curve",
        "skinfluence.datasets._noise",
    ],
)
def test_docstring_examples_run(module):
    import doctest
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------- the whole definition, written out loop by loop
def _cl_by_definition(labels, P, rule):
    """Confident learning as Northcutt et al. (JAIR 2021) define it, with plain loops:
    thresholds (Eq. 2), confident joint, calibrated joint (Eq. 3), the pruning rule, and
    the cap that keeps one member of every class (its most self-confident one)."""
    n, K = P.shape
    members = [[x for x in range(n) if labels[x] == i] for i in range(K)]
    t = [sum(P[x, j] for x in members[j]) / len(members[j]) for j in range(K)]
    C = [[0] * K for _ in range(K)]
    for x in range(n):
        above = [j for j in range(K) if P[x, j] >= t[j]]
        if above:
            C[labels[x]][max(above, key=lambda j: P[x, j])] += 1
    Qt = [[0.0] * K for _ in range(K)]
    for i in range(K):
        row = sum(C[i])
        for j in range(K):
            if row:
                Qt[i][j] = C[i][j] / row * len(members[i])
        if not row:
            Qt[i][i] = len(members[i])
    total = sum(map(sum, Qt))
    Q = [[q / total for q in r] for r in Qt]
    flag = set()
    if rule == "prune_globally":
        k = round(n * (1 - sum(Q[i][i] for i in range(K))))
        flag = set(sorted(range(n), key=lambda x: (P[x, labels[x]], x))[:k])
    if rule in ("prune_by_noise_rate", "both"):
        for i in range(K):
            for j in range(K):
                if j != i:
                    by_margin = sorted(members[i], key=lambda x: P[x, i] - P[x, j])
                    flag |= set(by_margin[:round(n * Q[i][j])])
    if rule in ("prune_by_class", "both"):
        pbc = set()
        for i in range(K):
            by_conf = sorted(members[i], key=lambda x: P[x, i])
            pbc |= set(by_conf[:round(n * (sum(Q[i]) - Q[i][i]))])
        flag = pbc if rule == "prune_by_class" else flag & pbc
    for i in range(K):  # never flag a whole class
        while len(flag & set(members[i])) >= len(members[i]):
            flag.remove(max(flag & set(members[i]), key=lambda x: P[x, i]))
    out = np.zeros(n, dtype=bool)
    out[sorted(flag)] = True
    return out


RULES = ("prune_globally", "prune_by_noise_rate", "prune_by_class", "both")


@pytest.mark.parametrize("K, n", [(2, 150), (3, 90), (5, 200)])
def test_every_rule_is_the_definition(K, n):
    for seed in range(4):
        labels, P = _random_problem(n=n, K=K, seed=10 + seed)
        for rule in RULES:
            np.testing.assert_array_equal(find_label_issues(labels, P, filter_by=rule),
                                          _cl_by_definition(labels, P, rule), err_msg=rule)
    # a class of two whose labels both look wrong: the cap keeps one
    labels = np.r_[np.zeros(40, int), [1, 1]]
    P = np.tile([0.8, 0.2], (42, 1)) + np.linspace(0, 0.05, 42)[:, None] * [-1, 1]
    P[40:] = [[0.9, 0.1], [0.85, 0.15]]
    for rule in RULES:
        got = find_label_issues(labels, P, filter_by=rule)
        np.testing.assert_array_equal(got, _cl_by_definition(labels, P, rule), err_msg=rule)


@pytest.mark.parametrize("rule", ["prune_globally", "prune_by_noise_rate"])
def test_forest_cleaner_flags_the_definition_on_sklearns_out_of_bag_probabilities(rule):
    """InfluenceCleaner(forest) end to end: the definition applied to scikit-learn's own
    out-of-bag probabilities of the same forest (``oob_decision_function_``)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    from skinfluence import InfluenceCleaner

    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[::2], y[::2]
    y_noisy, _ = make_noisy_labels(y, 0.2, random_state=0)
    forest = RandomForestClassifier(40, random_state=0)
    cleaner = InfluenceCleaner(forest, filter_by=rule).fit(X, y_noisy)
    P = forest.set_params(oob_score=True).fit(X, y_noisy).oob_decision_function_
    np.testing.assert_allclose(cleaner.proba_, P, rtol=1e-12, atol=1e-15)
    expected = _cl_by_definition(y_noisy, P, rule)
    assert expected.sum() > 20
    np.testing.assert_array_equal(cleaner.issues_, expected)
